//! Backpressure against a real TCP server that offers far more than a
//! deliberately slow pipeline can take: with backpressure on, the first
//! batch keeps to the initial rate, the scheduling delay stays bounded,
//! memory stays flat over a hundred batches, and no line is lost.
//!
//! Its own test binary, so that the memory it reads is its own.

use std::io::{BufWriter, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember::prelude::*;

/// A server writing `0, 1, 2, …` as fast as it is read.
fn firehose() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        let mut hold = conn.try_clone().unwrap();
        let mut out = BufWriter::with_capacity(1 << 16, conn);
        for i in 0u64.. {
            if writeln!(out, "{i}").is_err() {
                return;
            }
        }
        let _ = hold.read(&mut [0u8; 1]);
    });
    port
}

/// This process's resident memory in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

const INTERVAL_MS: u64 = 50;
const BATCHES: u64 = 100;
const INITIAL_RATE: f64 = 2_000.0;

#[test]
fn backpressure_bounds_delay_and_memory_and_loses_nothing() {
    let port = firehose();
    let conf = StreamingConf::new("backpressure", millis(INTERVAL_MS))
        .master("local[2]")
        .unwrap()
        .ui(None)
        .backpressure(true)
        .backpressure_initial_rate(INITIAL_RATE)
        // Draining what was received takes what it takes on a busy machine.
        .graceful_stop_timeout(seconds(60));
    let ssc = StreamingContext::new(conf).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ssc.define(move |s| {
        // About 50 µs a record: a few tens of thousands a second, where the
        // server offers millions.
        let slow = s.socket_text_stream("127.0.0.1", port).map(|l| {
            let until = Instant::now() + Duration::from_micros(50);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            l.parse::<u64>().expect("a numbered line")
        });
        let sink = sink.clone();
        slow.foreach_rdd(move |batch, _| sink.lock().unwrap().extend(batch));
    })
    .unwrap();
    ssc.start().unwrap();
    let first = ssc.first_batch_time().unwrap().milliseconds();
    let at = |n: u64| Time::from_millis(first + (n - 1) * INTERVAL_MS);

    ssc.await_batch(at(40)).unwrap();
    let rss_early = rss();
    ssc.await_batch(at(BATCHES)).unwrap();
    let rss_late = rss();
    let limit = ssc.receivers()[0].rate_limit;
    ssc.stop(true).unwrap();

    let batches = ssc.completed_batches();
    let report: Vec<String> = batches
        .iter()
        .map(|b| {
            format!(
                "{} recs, sched {:?} ms, proc {:?} ms",
                b.num_records(),
                b.scheduling_delay(),
                b.processing_delay()
            )
        })
        .collect();

    // The very first batch keeps to the initial rate: 2,000/s × 50 ms.
    let cap = (INITIAL_RATE * INTERVAL_MS as f64 / 1000.0) as u64;
    assert!(
        batches[0].num_records() <= cap,
        "first batch holds {} records, over the initial rate's {cap}: {report:#?}",
        batches[0].num_records()
    );
    // Once the estimator has settled, batches do not pile up: the
    // scheduling delay stays bounded (without backpressure this pipeline
    // falls behind by the whole receive buffer, tens of seconds here).
    let worst = batches[20..]
        .iter()
        .filter_map(|b| b.scheduling_delay())
        .max()
        .unwrap();
    assert!(
        worst <= 40 * INTERVAL_MS,
        "scheduling delay reached {worst} ms: {report:#?}"
    );
    // The estimate limits the receiver well below what the server offers.
    let limit = limit.expect("backpressure sets a rate");
    assert!(limit < 1_000_000.0, "estimated rate {limit}");
    // Memory stays flat between batch 40 and batch 100.
    let grew = rss_late.saturating_sub(rss_early);
    assert!(
        grew < 32 << 20,
        "resident memory grew by {} MB ({} → {} MB)",
        grew >> 20,
        rss_early >> 20,
        rss_late >> 20
    );
    // Nothing lost, nothing twice: the output is exactly the lines 0..n,
    // and n is everything the receiver read.
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, i as u64, "line {i} is missing or doubled");
    }
    assert_eq!(got.len() as u64, ssc.receivers()[0].num_records);
    eprintln!(
        "backpressure: {} lines in {} batches, worst scheduling delay {worst} ms, rate {limit:.0}/s, rss {} → {} MB",
        got.len(),
        batches.len(),
        rss_early >> 20,
        rss_late >> 20
    );
}
