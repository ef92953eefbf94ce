//! Rate limits and stopping, against a real TCP server that writes as fast
//! as it is read: a max rate caps every batch and loses nothing; a graceful
//! stop processes every record received; a stop at once is prompt; a
//! graceful stop with checkpointing leaves a checkpoint of its last batch.

use std::io::{BufWriter, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember::prelude::*;

/// A server that writes the numbered lines `0, 1, 2, …` to one connection,
/// as fast as they are read (TCP slows it when the reader stops), up to
/// `limit` lines; then it keeps the connection open until the reader leaves.
fn firehose(limit: Option<u64>) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let written = Arc::new(AtomicU64::new(0));
    let count = written.clone();
    std::thread::spawn(move || {
        let Ok((conn, _)) = listener.accept() else {
            return;
        };
        let mut reader = conn.try_clone().unwrap();
        let mut out = BufWriter::with_capacity(1 << 16, conn);
        let end = limit.unwrap_or(u64::MAX);
        for i in 0..end {
            if writeln!(out, "{i}").is_err() {
                return;
            }
            // Count what left the buffer, so `written` never runs ahead.
            if out.buffer().is_empty() {
                count.store(i + 1, Ordering::Release);
            }
        }
        if out.flush().is_ok() {
            count.store(end, Ordering::Release);
        }
        // Hold the connection until the receiver closes it.
        let _ = reader.read(&mut [0u8; 1]);
    });
    (port, written)
}

/// Collects every line of every batch, as numbers.
fn collect(lines: &DStream<'_, String>, into: &Arc<Mutex<Vec<u64>>>) {
    let into = into.clone();
    lines.foreach_rdd(move |batch, _| {
        let mut v = into.lock().unwrap();
        v.extend(
            batch
                .iter()
                .map(|l| l.parse::<u64>().expect("a numbered line")),
        );
    });
}

/// Waits (bounded) until the receiver has read at least `n` lines.
fn await_read(ssc: &StreamingContext, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let read = ssc.receivers().first().map_or(0, |r| r.num_records);
        if read >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the receiver read only {read} of {n} lines"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The lines `0..n`, each once: nothing lost, nothing twice.
fn assert_exactly_prefix(mut got: Vec<u64>, what: &str) -> u64 {
    got.sort_unstable();
    let n = got.len() as u64;
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, i as u64, "{what}: line {i} is missing or doubled");
    }
    n
}

#[test]
fn max_rate_caps_every_batch_and_loses_nothing() {
    let (port, _) = firehose(None);
    let conf = StreamingConf::new("max-rate", millis(100))
        .master("local[2]")
        .unwrap()
        .ui(None)
        .max_rate(5_000.0)
        .graceful_stop_timeout(seconds(60));
    let ssc = StreamingContext::new(conf).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ssc.define(move |s| collect(&s.socket_text_stream("127.0.0.1", port), &sink))
        .unwrap();
    ssc.start().unwrap();
    let first = ssc.first_batch_time().unwrap().milliseconds();
    ssc.await_batch(Time::from_millis(first + 30 * 100))
        .unwrap();
    ssc.stop(true).unwrap();

    // 5,000 records/s in 100 ms batches: at most 500 a batch, the graceful
    // stop's last batches included.
    let batches = ssc.completed_batches();
    assert!(batches.len() >= 30, "{} batches", batches.len());
    for b in &batches {
        assert!(
            b.num_records() <= 500,
            "batch {} holds {} records, over the cap of 500",
            b.batch_time,
            b.num_records()
        );
    }
    let n = assert_exactly_prefix(seen.lock().unwrap().clone(), "max rate");
    let counted: u64 = batches.iter().map(|b| b.num_records()).sum();
    assert_eq!(counted, n, "batch statistics count what the output saw");
    let read = ssc.receivers()[0].num_records;
    assert_eq!(n, read, "every line read reached the output");
    assert_eq!(ssc.receivers()[0].rate_limit, Some(5_000.0));
    assert!(n > 0, "the limited stream still flowed");
}

#[test]
fn graceful_stop_processes_everything_received() {
    for workers in [1, 3] {
        const N: u64 = 20_000;
        let (port, written) = firehose(Some(N));
        let clock = ManualClock::new();
        let conf = StreamingConf::new("graceful", seconds(1))
            .master(&format!("local[{workers}]"))
            .unwrap()
            .ui(None);
        let ssc = StreamingContext::with_clock(conf, clock).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        ssc.define(move |s| collect(&s.socket_text_stream("127.0.0.1", port), &sink))
            .unwrap();
        ssc.start().unwrap();
        // The clock never moves: every line sits in the open batch.
        await_read(&ssc, N);
        assert_eq!(written.load(Ordering::Acquire), N);
        assert!(seen.lock().unwrap().is_empty(), "no batch closed yet");
        ssc.stop(true).unwrap();
        let n = assert_exactly_prefix(seen.lock().unwrap().clone(), "graceful stop");
        assert_eq!(n, N, "local[{workers}]: every line received was processed");
    }
}

#[test]
fn stop_at_once_is_prompt_even_with_work_queued() {
    let (port, _) = firehose(None);
    let interval = seconds(2);
    let conf = StreamingConf::new("prompt", interval)
        .master("local[1]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::new(conf).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ssc.define(move |s| {
        // About 200 µs a record: the queued lines are many seconds of work.
        let slow = s.socket_text_stream("127.0.0.1", port).map(|l| {
            let until = Instant::now() + Duration::from_micros(200);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            l
        });
        collect(&slow, &sink);
    })
    .unwrap();
    ssc.start().unwrap();
    await_read(&ssc, 50_000);
    let asked = Instant::now();
    ssc.stop(false).unwrap();
    let took = asked.elapsed();
    assert!(
        took < interval,
        "a stop at once took {took:?}, more than one batch interval"
    );
    ssc.await_termination().unwrap();
}

/// Each batch's sorted running counts.
type Seen = Arc<Mutex<Vec<(u64, Vec<(String, u64)>)>>>;

#[test]
fn graceful_stop_checkpoints_its_last_batch() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().to_path_buf();
    let clock = ManualClock::new();
    let run = |clock: &ManualClock, seen: &Seen| {
        let conf = StreamingConf::new("final-checkpoint", seconds(1))
            .master("local[2]")
            .unwrap()
            .ui(None);
        let checkpoint = checkpoint.clone();
        let seen = seen.clone();
        let clock = clock.clone();
        StreamingContext::get_or_create(checkpoint.clone(), move || {
            let ssc = StreamingContext::with_clock(conf, clock)?;
            ssc.checkpoint(&checkpoint);
            ssc.define(move |s| {
                let batches: Vec<Vec<String>> = (0..100).map(|_| vec!["a b".to_string()]).collect();
                let seen = seen.clone();
                s.queue_stream(batches, true, None)
                    .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
                    .map(|w| (w, 1u64))
                    .update_state_by_key(|vs: Vec<u64>, old: Option<u64>| {
                        Some(old.unwrap_or(0) + vs.iter().sum::<u64>())
                    })
                    .foreach_rdd(move |mut b, t| {
                        b.sort();
                        seen.lock().unwrap().push((t.milliseconds(), b));
                    });
            })?;
            Ok(ssc)
        })
        .unwrap()
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = run(&clock, &seen);
    ssc.start().unwrap();
    let first = ssc.first_batch_time().unwrap().milliseconds();
    // Three batches, far from the default 10 s checkpoint interval; the
    // stop closes a fourth.
    for i in 0..3 {
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(first + i * 1000))
            .unwrap();
    }
    ssc.stop(true).unwrap();
    let last = seen.lock().unwrap().last().cloned().unwrap();
    let w = |s: &str, n| (s.to_string(), n);
    let n = seen.lock().unwrap().len() as u64;
    assert_eq!(n, 4);
    assert_eq!(last, (first + 3000, vec![w("a", 4), w("b", 4)]));

    // The restart resumes after the stop's last batch, with its state.
    let again = Arc::new(Mutex::new(Vec::new()));
    let ssc = run(&clock, &again);
    ssc.start().unwrap();
    let next = last.0 + 1000;
    while clock.now_ms() < next {
        clock.advance(seconds(1));
    }
    ssc.await_batch(Time::from_millis(next)).unwrap();
    ssc.stop(false).unwrap();
    // Resumed from the checkpoint of the stop's last batch: no batch before
    // it runs again, and the counts go on.
    let got = again.lock().unwrap().clone();
    assert_eq!(got, [(next, vec![w("a", n + 1), w("b", n + 1)])]);
}
