//! `ember-bench serve`: the load generator as a standalone TCP server, so
//! that ember and Spark read the very same bytes at the same pace from the
//! same binary (see `bench/compare-spark/`).
//!
//! Every client gets its own pacer thread, started when it connects, that
//! replays the pre-generated [`Corpus`] at `--rate` words/s (the same text,
//! from its start, for every client). After every write it prints
//! `OFFER <client> <µs since the epoch> <words offered so far>` on stdout,
//! from which the words offered by any instant follow.
//!
//! `--self-test N` instead measures how fast the generator can offer: one
//! in-process client reads and discards everything for N seconds while the
//! pacer runs unthrottled.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::gen::{now_us, pace, Corpus};

/// Settings of the standalone generator.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0: any free port; the port is printed).
    #[arg(long, default_value_t = 9999)]
    port: u16,
    /// Words per second offered to each client.
    #[arg(long, default_value_t = 1_000_000)]
    rate: u64,
    /// Exit after this many seconds (0: run until killed).
    #[arg(long, default_value_t = 0)]
    seconds: u64,
    /// Instead of serving: measure the unthrottled offer rate into a
    /// draining local client for this many seconds, print it and exit.
    #[arg(long)]
    self_test: Option<u64>,
}

/// Runs the server (or the self-test).
pub(crate) fn run(args: &ServeArgs, corpus: &Arc<Corpus>) -> Result<(), String> {
    if let Some(secs) = args.self_test {
        return self_test(secs, corpus);
    }
    let listener = TcpListener::bind((args.host.as_str(), args.port)).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!(
        "LISTENING {port} rate {} words/s, {} bytes of text, {} words",
        args.rate,
        corpus.text.len(),
        corpus.chunk_words.iter().sum::<u64>()
    );
    if args.seconds > 0 {
        let secs = args.seconds;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            std::process::exit(0);
        });
    }
    let mut next_id = 0u64;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        next_id += 1;
        let (id, corpus, rate) = (next_id, corpus.clone(), args.rate);
        std::thread::Builder::new()
            .name(format!("serve-client-{id}"))
            .spawn(move || serve_client(id, conn, &corpus, rate))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Paces one client until it goes away.
fn serve_client(id: u64, mut conn: TcpStream, corpus: &Corpus, rate: u64) {
    let _ = conn.set_nodelay(true);
    println!("CLIENT {id} {} connected", now_us());
    let never = AtomicBool::new(false);
    let mut sent = 0u64;
    pace(corpus, rate, &never, |first, n| {
        let bytes = &corpus.text[corpus.chunk_bytes[first]..corpus.chunk_bytes[first + n]];
        if conn.write_all(bytes).is_err() {
            return false;
        }
        sent += corpus.chunk_words[first..first + n].iter().sum::<u64>();
        println!("OFFER {id} {} {sent}", now_us());
        true
    });
    println!("CLIENT {id} {} gone after {sent} words", now_us());
}

/// Offers as fast as possible to a client that discards what it reads.
fn self_test(secs: u64, corpus: &Arc<Corpus>) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let read_bytes = Arc::new(AtomicU64::new(0));
    let counter = read_bytes.clone();
    let reader = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect to the self-test server");
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    let (mut conn, _) = listener.accept().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        flag.store(true, Ordering::Release);
    });
    let start = Instant::now();
    let log = pace(corpus, u64::MAX / 4, &stop, |first, n| {
        let bytes = &corpus.text[corpus.chunk_bytes[first]..corpus.chunk_bytes[first + n]];
        conn.write_all(bytes).is_ok()
    });
    let elapsed = start.elapsed().as_secs_f64();
    drop(conn);
    let _ = reader.join();
    let words = log.total();
    println!(
        "SELFTEST {:.0} words/s ({:.0} MB/s) offered to a draining loopback client over {elapsed:.1} s",
        words as f64 / elapsed,
        read_bytes.load(Ordering::Relaxed) as f64 / elapsed / 1e6
    );
    Ok(())
}
