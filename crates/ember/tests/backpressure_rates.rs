//! Where backpressure settles, against real TCP servers, over 150 batches
//! of 50 ms each:
//!
//! - a job that keeps up is not throttled below what the sender offers,
//!   and every line arrives;
//! - a job with a slow sink (a fixed cost per record) settles near what the
//!   sink sustains, not at the floor, and loses nothing;
//! - a job whose sink costs a fixed share of every interval, whatever the
//!   batch holds, is not held down.
//!
//! The limit is read after every batch (`StreamingContext::receivers`).
//! Assertions compare it with what was offered or measured, with wide
//! margins (the machine is shared), and never with wall-clock speed. The
//! tests of this binary take turns, as each measures a rate.

use std::io::{BufWriter, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember::prelude::*;
use ember::BatchInfo;

const INTERVAL_MS: u64 = 50;
const BATCHES: u64 = 150;
/// Batches left for the estimate to settle before it is judged.
const SETTLE: usize = 40;

/// One test at a time: each measures what the machine sustains.
static TURN: Mutex<()> = Mutex::new(());

/// A server writing `0, 1, 2, …` to the first connection: `per_second`
/// lines a second until `total` are written (a paced sender), or as fast
/// as they are read when `per_second` is `None` (a firehose). Returns the
/// port.
fn sender(per_second: Option<f64>, total: u64) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        let mut hold = conn.try_clone().unwrap();
        let mut out = BufWriter::with_capacity(1 << 16, conn);
        let start = Instant::now();
        let mut next = 0u64;
        while next < total {
            let due = match per_second {
                Some(r) => ((start.elapsed().as_secs_f64() * r) as u64).min(total),
                None => (next + 4096).min(total),
            };
            while next < due {
                if writeln!(out, "{next}").is_err() {
                    return;
                }
                next += 1;
            }
            if per_second.is_some() {
                if out.flush().is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let _ = out.flush();
        // Keep the connection open until the receiver goes away.
        let _ = hold.read(&mut [0u8; 1]);
    });
    port
}

/// What a run saw.
struct Run {
    /// The receiver's limit after each batch.
    limits: Vec<f64>,
    /// The completed batches.
    batches: Vec<BatchInfo>,
    /// Everything the sink got, sorted.
    lines: Vec<u64>,
    /// What the receiver read.
    read: u64,
    report: String,
}

impl Run {
    /// The limits once settled.
    fn settled(&self) -> &[f64] {
        &self.limits[SETTLE..]
    }

    /// The median of the settled limits.
    fn median(&self) -> f64 {
        let mut l = self.settled().to_vec();
        l.sort_by(f64::total_cmp);
        l[l.len() / 2]
    }

    /// Each line once, and all that was read.
    fn check_nothing_lost(&self) {
        for (i, v) in self.lines.iter().enumerate() {
            assert_eq!(
                *v, i as u64,
                "line {i} is missing or doubled\n{}",
                self.report
            );
        }
        assert_eq!(self.lines.len() as u64, self.read, "{}", self.report);
    }
}

/// Runs a socket stream from `port` through `sink` (which gets each
/// batch's numbers) for `BATCHES` batches with backpressure on, then, when
/// `all` lines are expected, waits until the receiver read them all, and
/// stops gracefully.
fn run(
    name: &str,
    port: u16,
    all: Option<u64>,
    sink: impl FnMut(Vec<u64>) + Send + Sync + Clone + 'static,
) -> Run {
    let conf = StreamingConf::new(name, millis(INTERVAL_MS))
        .master("local[2]")
        .unwrap()
        .ui(None)
        .default_logging(false)
        .backpressure(true)
        // Draining what was received takes what it takes on a busy machine.
        .graceful_stop_timeout(seconds(120));
    let ssc = StreamingContext::new(conf).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    ssc.define(move |s| {
        let kept = kept.clone();
        let mut sink = sink.clone();
        s.socket_text_stream("127.0.0.1", port)
            .map(|l| l.parse::<u64>().expect("a numbered line"))
            .foreach_rdd(move |batch, _| {
                kept.lock().unwrap().extend_from_slice(&batch);
                sink(batch);
            });
    })
    .unwrap();
    ssc.start().unwrap();
    let first = ssc.first_batch_time().unwrap().milliseconds();
    let mut limits = Vec::new();
    for n in 0..BATCHES {
        ssc.await_batch(Time::from_millis(first + n * INTERVAL_MS))
            .unwrap();
        limits.push(
            ssc.receivers()[0]
                .rate_limit
                .expect("backpressure sets a rate"),
        );
    }
    if let Some(all) = all {
        let deadline = Instant::now() + Duration::from_secs(120);
        while ssc.receivers()[0].num_records < all && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    ssc.stop(true).unwrap();
    let batches = ssc.completed_batches();
    let report: String = batches
        .iter()
        .zip(limits.iter().map(Some).chain(std::iter::repeat(None)))
        .enumerate()
        .map(|(i, (b, limit))| {
            format!(
                "{i:4}: limit {:>10.0}/s  {:>7} recs  sched {:>5?} ms  total {:>5?} ms\n",
                limit.copied().unwrap_or(f64::NAN),
                b.num_records(),
                b.scheduling_delay(),
                b.total_delay()
            )
        })
        .collect();
    let mut lines = seen.lock().unwrap().clone();
    lines.sort_unstable();
    Run {
        limits,
        batches,
        lines,
        read: ssc.receivers()[0].num_records,
        report,
    }
}

#[test]
fn a_job_that_keeps_up_is_not_throttled() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // 10,000 lines/s for the 7.5 s of the run, into a sink waiting 1 ms
    // for every 25 lines (a remote store, say): it waits about 40% of each
    // interval, after the batch closes. Waiting, not computing, so that
    // other processes on the machine change it little.
    const OFFERED: f64 = 10_000.0;
    let total = (OFFERED * (BATCHES * INTERVAL_MS) as f64 / 1000.0) as u64;
    let port = sender(Some(OFFERED), total);
    let run = run("keeps-up", port, Some(total), |batch| {
        for _ in 0..batch.len().div_ceil(25) {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    run.check_nothing_lost();
    assert_eq!(run.lines.len() as u64, total, "{}", run.report);
    // Settled, the limit never falls under what is offered while batches
    // complete within their interval. The machine may hold the process up
    // (another one running): a batch that waited, or took longer than an
    // interval, may cut the limit, so the five batches after one are not
    // judged.
    let late: Vec<bool> = run
        .batches
        .iter()
        .map(|b| b.scheduling_delay() != Some(0) || b.total_delay() > Some(INTERVAL_MS))
        .collect();
    let mut judged = 0;
    for (n, limit) in run.limits.iter().enumerate().skip(SETTLE) {
        if late[n.saturating_sub(5)..=n].iter().any(|l| *l) {
            continue;
        }
        judged += 1;
        assert!(
            *limit >= OFFERED,
            "batch {n} completed in time after five that did, yet the limit is {limit:.0}/s, \
             under the {OFFERED}/s offered\n{}",
            run.report
        );
    }
    assert!(
        run.median() >= OFFERED,
        "median limit {}\n{}",
        run.median(),
        run.report
    );
    eprintln!(
        "keeps up: {OFFERED}/s offered, settled limits {:.0}..{:.0}/s (median {:.0}), {judged} of {} judged",
        run.settled().iter().copied().fold(f64::INFINITY, f64::min),
        run.settled().iter().copied().fold(0.0, f64::max),
        run.median(),
        run.settled().len()
    );
}

/// Busy-waits `d`.
fn spin(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

#[test]
fn a_slow_sink_settles_near_its_capacity() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let port = sender(None, u64::MAX);
    // 20 µs a record in the sink: at most 50,000 records/s.
    let calls = Arc::new(Mutex::new(Vec::new()));
    let calls_in = calls.clone();
    let run = run("slow-sink", port, None, move |batch| {
        let began = Instant::now();
        for _ in &batch {
            spin(Duration::from_micros(20));
        }
        let spent = began.elapsed().as_secs_f64();
        calls_in.lock().unwrap().push((batch.len() as f64, spent));
    });
    run.check_nothing_lost();
    // What the sink sustained, measured over the same settled batches as
    // the limits (records over the wall time spent in it): a machine busy
    // with other work slows both alike.
    let capacity = {
        let calls = calls.lock().unwrap();
        let settled = &calls[SETTLE..BATCHES as usize];
        let sunk: f64 = settled.iter().map(|(n, _)| n).sum();
        let spent: f64 = settled.iter().map(|(_, t)| t).sum();
        sunk / spent
    };
    let median = run.median();
    assert!(
        median >= 0.5 * capacity && median <= 2.0 * capacity,
        "median settled limit {median:.0}/s against a sink sustaining {capacity:.0}/s\n{}",
        run.report
    );
    // Not the floor (100/s): what batches carried is near the capacity too.
    let carried = run.batches[SETTLE..BATCHES as usize]
        .iter()
        .map(|b| b.num_records())
        .sum::<u64>() as f64
        / ((BATCHES as usize - SETTLE) as u64 * INTERVAL_MS) as f64
        * 1000.0;
    assert!(
        carried >= 0.3 * capacity,
        "{carried:.0}/s carried against a sink sustaining {capacity:.0}/s\n{}",
        run.report
    );
    eprintln!(
        "slow sink: capacity {capacity:.0}/s, settled limits median {median:.0}/s, {carried:.0}/s carried"
    );
}

#[test]
fn a_fixed_cost_per_batch_does_not_hold_the_rate_down() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    const OFFERED: f64 = 50_000.0;
    let total = (OFFERED * (BATCHES * INTERVAL_MS) as f64 / 1000.0) as u64;
    let port = sender(Some(OFFERED), total);
    let slept = Arc::new(AtomicBool::new(false));
    let slept_in = slept.clone();
    // 30% of every interval in the sink, whatever the batch holds.
    let run = run("fixed-cost", port, Some(total), move |_| {
        std::thread::sleep(Duration::from_millis(INTERVAL_MS * 3 / 10));
        slept_in.store(true, Ordering::Relaxed);
    });
    assert!(slept.load(Ordering::Relaxed));
    run.check_nothing_lost();
    assert_eq!(run.lines.len() as u64, total, "{}", run.report);
    let median = run.median();
    assert!(
        median >= OFFERED,
        "median settled limit {median:.0}/s under the {OFFERED}/s offered\n{}",
        run.report
    );
    eprintln!("fixed cost: {OFFERED}/s offered, settled limits median {median:.0}/s");
}
