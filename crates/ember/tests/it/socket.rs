//! `socket_text_stream` against a real TCP server: lines arrive, the server
//! closes, the receiver reconnects, and nothing sent afterwards is lost;
//! refused connections are retried; invalid UTF-8 never panics.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember::prelude::*;
use ember::SocketOptions;

/// Runs a socket stream on a manual clock, advancing one batch at a time
/// until `done` holds for everything received (each step waits for the
/// batch to complete: no sleeping). Fails after a generous deadline. `also`
/// may add further operations on the lines.
fn run_until(
    workers: usize,
    port: u16,
    server: impl FnOnce() + Send + 'static,
    done: impl Fn(&[String]) -> bool,
    also: impl Fn(&DStream<'_, String>) + Send + Sync + 'static,
) -> Vec<String> {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("socket", seconds(1))
        .master(&format!("local[{workers}]"))
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ssc.define(move |s| {
        let sink = sink.clone();
        let options = SocketOptions::default().reconnect_delay(millis(50));
        let lines = s.socket_text_stream_with("127.0.0.1", port, options);
        lines.foreach_rdd(move |batch, _| sink.lock().unwrap().extend(batch));
        also(&lines);
    })
    .unwrap();
    ssc.start().unwrap();
    let server = std::thread::spawn(server);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut t = 0;
    while !done(&seen.lock().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "timed out; got {:?}",
            seen.lock().unwrap()
        );
        clock.advance(seconds(1));
        t += 1000;
        ssc.await_batch(Time::from_millis(t)).unwrap();
    }
    ssc.stop(false).unwrap();
    server.join().unwrap();
    let got = seen.lock().unwrap().clone();
    got
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn receiver_reconnects_after_the_server_closes_and_loses_nothing() {
    for workers in [1, 3] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let first = numbered("a", 500);
        let second = numbered("b", 500);
        let (f, s) = (first.clone(), second.clone());
        let server = move || {
            let (mut c1, _) = listener.accept().unwrap();
            for l in &f {
                writeln!(c1, "{l}").unwrap();
            }
            drop(c1); // the server closes the connection
                      // Accepting again proves the receiver reconnected.
            let (mut c2, _) = listener.accept().unwrap();
            for l in &s {
                writeln!(c2, "{l}").unwrap();
            }
            c2.flush().unwrap();
            // Keep the connection open until the test is done reading.
            std::thread::sleep(Duration::from_millis(500));
        };
        let want: Vec<String> = first.iter().chain(&second).cloned().collect();
        let n = want.len();
        let mut got = run_until(workers, port, server, move |seen| seen.len() >= n, |_| {});
        if workers > 1 {
            // Blocks are spread over workers: order within a batch is by worker.
            got.sort();
            let mut w = want.clone();
            w.sort();
            assert_eq!(got, w, "workers = {workers}");
        } else {
            assert_eq!(got, want, "workers = {workers}");
        }
    }
}

#[test]
fn refused_connections_are_retried_until_the_server_comes_up() {
    // Find a free port, then leave it closed while the receiver starts.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = move || {
        std::thread::sleep(Duration::from_millis(300)); // the receiver is refused meanwhile
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let (mut c, _) = listener.accept().unwrap();
        writeln!(c, "finally").unwrap();
        std::thread::sleep(Duration::from_millis(300));
    };
    let got = run_until(2, port, server, |seen| !seen.is_empty(), |_| {});
    assert_eq!(got, ["finally"]);
}

#[test]
fn invalid_utf8_is_replaced_not_a_panic() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = move || {
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(b"ok\n\xff\xfe bad\r\nlast without newline")
            .unwrap();
        drop(c);
    };
    let got = run_until(1, port, server, |seen| seen.len() >= 3, |_| {});
    assert_eq!(got, ["ok", "\u{fffd}\u{fffd} bad", "last without newline"]);
}

#[test]
fn words_borrowed_from_received_lines_are_counted_like_owned_ones() {
    // flat_map_str reads a socket's lines in place in the received blocks;
    // the same lines also reach foreach_rdd as owned Strings.
    for workers in [1, 3] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let vocab = ["a", "to", "be", "Grüße", "", "longer-than-sixteen-bytes"];
        let lines: Vec<String> = (0..2000usize)
            .map(|i| {
                let n = i % 12; // 0 to 11 words, beyond 16 bytes and not
                (0..n)
                    .map(|j| vocab[(i * 7 + j * 3) % vocab.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        for w in lines.iter().flat_map(|l| l.split(' ')) {
            *want.entry(w.to_string()).or_default() += 1;
        }
        let sent = lines.clone();
        let server = move || {
            let (mut c, _) = listener.accept().unwrap();
            for l in &sent {
                writeln!(c, "{l}").unwrap();
            }
            c.flush().unwrap();
            std::thread::sleep(Duration::from_millis(500));
        };
        let counts = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
        let sink = counts.clone();
        let n = lines.len();
        let got = run_until(
            workers,
            port,
            server,
            move |seen| seen.len() >= n,
            move |lines| {
                let sink = sink.clone();
                lines
                    .flat_map_str(|l| l.split(' ').collect())
                    .map(|w| (w, 1u64))
                    .reduce_by_key(|a, b| a + b)
                    .foreach_rdd(move |batch, _| {
                        let mut counts = sink.lock().unwrap();
                        for (w, n) in batch {
                            *counts.entry(w).or_default() += n;
                        }
                    });
            },
        );
        assert_eq!(got.len(), lines.len(), "workers = {workers}");
        assert_eq!(*counts.lock().unwrap(), want, "workers = {workers}");
    }
}

/// A line longer than `max_line_bytes` (a peer that never sends a newline,
/// say) is dropped up to its newline instead of filling the memory; the
/// lines around it arrive. Shorter lines, and every line under the default
/// limit, are kept whole.
#[test]
fn a_line_over_the_limit_is_dropped_and_the_rest_kept() {
    let long = "x".repeat(3 << 20);
    for (limit, want) in [
        (
            Some(1 << 20),
            vec!["before".to_string(), "after".to_string()],
        ),
        (
            None,
            vec!["before".to_string(), long.clone(), "after".to_string()],
        ),
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = format!("before\n{long}\nafter\n");
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // Written in pieces, so the long line spans many reads.
            for piece in text.as_bytes().chunks(100_000) {
                conn.write_all(piece).unwrap();
            }
            // Held open until the test has what it needs.
            conn
        });
        let clock = ManualClock::new();
        let conf = StreamingConf::new("long-lines", seconds(1))
            .master("local[2]")
            .unwrap()
            .ui(None);
        let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        ssc.define(move |s| {
            let sink = sink.clone();
            let mut options = SocketOptions::default();
            if let Some(limit) = limit {
                options = options.max_line_bytes(limit);
            }
            s.socket_text_stream_with("127.0.0.1", port, options)
                .foreach_rdd(move |batch, _| sink.lock().unwrap().extend(batch));
        })
        .unwrap();
        ssc.start().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut batch = 0;
        while seen.lock().unwrap().last() != Some(&"after".to_string()) {
            assert!(Instant::now() < deadline, "no `after` line within 30 s");
            batch += 1;
            clock.advance(seconds(1));
            ssc.await_batch(Time::from_millis(batch * 1000)).unwrap();
        }
        ssc.stop(false).unwrap();
        drop(server.join().unwrap());
        let got = seen.lock().unwrap().clone();
        assert_eq!(got.len(), want.len(), "limit {limit:?}");
        assert!(got == want, "limit {limit:?}: the lines differ");
    }
}

#[test]
fn a_stop_at_once_closes_the_receivers_connection() {
    use std::io::Read;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conf = StreamingConf::new("socket-stop", millis(100))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::new(conf).unwrap();
    ssc.define(move |s| s.socket_text_stream("127.0.0.1", port).print())
        .unwrap();
    ssc.start().unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    ssc.stop(false).unwrap();
    // The receiver's thread ended with the context: its end of the
    // connection is closed, so a read sees the end of the stream.
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = conn
        .read(&mut buf)
        .expect("closed within 10 s, not timed out");
    assert_eq!(n, 0);
}

#[test]
fn raw_socket_frames_arrive_whole_and_a_hostile_length_loses_only_its_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let frame = |payload: &[u8]| [&(payload.len() as u32).to_be_bytes()[..], payload].concat();
    let (finished, wait) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        // First connection: two frames, split across writes, then a length
        // of 4 GiB - 1 (over the limit): the receiver drops the connection.
        let (mut c, _) = listener.accept().unwrap();
        let mut bytes = [frame(b"one"), frame(&[0, 1, 2, 255])].concat();
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        for piece in bytes.chunks(3) {
            c.write_all(piece).unwrap();
            c.flush().unwrap();
        }
        // Second connection: a frame, kept open until the test is done.
        let (mut c, _) = listener.accept().unwrap();
        c.write_all(&frame(b"after")).unwrap();
        let _ = wait.recv();
    });
    let clock = ManualClock::new();
    let conf = StreamingConf::new("raw", seconds(1))
        .master("local[2]")
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ssc.define(move |s| {
        let sink = sink.clone();
        let options = SocketOptions::default().reconnect_delay(millis(50));
        s.raw_socket_stream_with("127.0.0.1", port, options)
            .foreach_rdd(move |b, _| sink.lock().unwrap().extend(b));
    })
    .unwrap();
    ssc.start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut t = 0;
    while seen.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "got {:?}", seen.lock().unwrap());
        clock.advance(seconds(1));
        t += 1000;
        ssc.await_batch(Time::from_millis(t)).unwrap();
    }
    let error = ssc
        .receivers()
        .first()
        .and_then(|r| r.last_error.clone())
        .unwrap_or_default();
    ssc.stop(false).unwrap();
    finished.send(()).unwrap();
    server.join().unwrap();
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    assert_eq!(
        got,
        [vec![0, 1, 2, 255], b"after".to_vec(), b"one".to_vec()]
    );
    assert!(error.contains("4294967295 bytes"), "{error}");
}
