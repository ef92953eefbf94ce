//! Throughput of the JSON-lines receiver against a loopback HTTP server
//! that sends as fast as it can: a benchmark, not a test (ignored; see
//! `bench/sources/README.md`):
//!
//! ```text
//! cargo test --release -p ember-streaming-http --test throughput -- --ignored --nocapture
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_core::{seconds, StreamingConf, StreamingContext};
use ember_http::json_lines;

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn json_lines_records_per_second_at_local_2() {
    const RECORDS: u64 = 3_000_000;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/stream", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        let mut conn = std::io::BufWriter::with_capacity(1 << 20, conn);
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n"
        )
        .unwrap();
        for i in 0..RECORDS {
            writeln!(
                conn,
                "{{\"id\":{i},\"user\":\"user-{}\",\"text\":\"some words to count\"}}",
                i % 1000
            )
            .unwrap();
        }
        conn.flush().unwrap();
        // Keep the connection until the reader is done.
        std::thread::sleep(Duration::from_secs(120));
    });
    let conf = StreamingConf::new("http-throughput", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::new(conf).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    ssc.define(move |s| {
        let c = c.clone();
        s.receiver_stream(json_lines(&url))
            .count()
            .foreach_rdd(move |n, _| {
                c.fetch_add(n.iter().sum::<u64>(), Ordering::Relaxed);
            });
    })
    .unwrap();
    ssc.start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(110);
    let mut first = None;
    while count.load(Ordering::Relaxed) < RECORDS && Instant::now() < deadline {
        if first.is_none() && ssc.receivers().first().is_some_and(|r| r.num_records > 0) {
            first = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = first.map_or(Duration::ZERO, |f| f.elapsed());
    ssc.stop(false).unwrap();
    drop(server);
    let n = count.load(Ordering::Relaxed);
    println!(
        "http json_lines, local[2], 1 s batches: {n} records in {:.2} s (first record read to last \
         counted) = {:.0} records/s",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(n, RECORDS);
}
