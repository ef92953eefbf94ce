//! A program's own receiver, written with the public `Receiver` interface
//! only, gets what the built-in socket receiver gets: every record exactly
//! once in order, rate limits that cap batches, backpressure, restarts
//! reported to listeners, and errors of its own kind. (The write-ahead log
//! across kills: `recovery.rs`; the UI's receiver table: `ui.rs`.)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember::{
    millis, seconds, Error, ManualClock, Received, Receiver, ReceiverContext, StreamingConf,
    StreamingContext, Time,
};

/// Stores `0..until`, then ends.
pub(crate) struct Counter {
    pub(crate) next: u64,
    pub(crate) until: u64,
}

impl Receiver for Counter {
    type Record = u64;

    fn receive(&mut self, ctx: &mut ReceiverContext<'_, u64>) -> Received {
        while self.next < self.until {
            if !ctx.store(self.next) {
                return Received::Stopped;
            }
            self.next += 1;
        }
        Received::Finished("counted to the end".into())
    }
}

/// Waits until the context's only receiver has read `n` records.
fn await_read(ssc: &StreamingContext, n: u64) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let read = ssc.receivers().first().map_or(0, |r| r.num_records);
        if read >= n {
            return;
        }
        assert!(Instant::now() < until, "the receiver read {read} of {n}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

type Batches = Arc<Mutex<Vec<(u64, Vec<u64>)>>>;

/// A context on a manual clock running a counter of `n` records, its
/// batches collected in order of time.
fn counting(conf: StreamingConf, n: u64) -> (ManualClock, StreamingContext, Batches) {
    let clock = ManualClock::new();
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let seen: Batches = Arc::default();
    let out = seen.clone();
    ssc.define(move |s| {
        let out = out.clone();
        s.receiver_stream(Counter { next: 0, until: n })
            .foreach_rdd(move |b, t| out.lock().unwrap().push((t.milliseconds(), b)));
    })
    .unwrap();
    ssc.start().unwrap();
    (clock, ssc, seen)
}

#[test]
fn every_record_stored_arrives_once_in_order() {
    for workers in [1, 3] {
        let conf = StreamingConf::new("custom", seconds(1))
            .master(&format!("local[{workers}]"))
            .unwrap()
            .ui(None);
        let (clock, ssc, seen) = counting(conf, 10_000);
        await_read(&ssc, 10_000);
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(1000)).unwrap();
        ssc.stop(false).unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "local[{workers}]");
        // Gathered in partition order: sorted, it must be exactly 0..n.
        let mut got = seen[0].1.clone();
        got.sort_unstable();
        assert_eq!(got, (0..10_000).collect::<Vec<_>>(), "local[{workers}]");
        let info = &ssc.receivers()[0];
        assert_eq!(info.name, "Counter");
        assert_eq!(info.num_records, 10_000);
    }
}

#[test]
fn a_max_rate_paces_the_receiver_and_caps_each_batch() {
    // 1,000 records/s with 100 ms batches: at most 100 records a batch.
    let conf = StreamingConf::new("custom-rate", millis(100))
        .master("local[2]")
        .unwrap()
        .ui(None)
        .max_rate(1000.0);
    let started = Instant::now();
    let (clock, ssc, seen) = counting(conf, 250);
    await_read(&ssc, 250);
    // Pacing: 250 records at 1,000/s take at least 150 ms after the first
    // block's burst allowance (a 100 ms credit at most).
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "read 250 records in {:?} under a 1,000/s limit",
        started.elapsed()
    );
    for i in 1..=3 {
        clock.advance(millis(100));
        ssc.await_batch(Time::from_millis(i * 100)).unwrap();
    }
    ssc.stop(false).unwrap();
    let seen = seen.lock().unwrap().clone();
    let sizes: Vec<usize> = seen.iter().map(|(_, b)| b.len()).collect();
    assert_eq!(sizes, [100, 100, 50], "{seen:?}");
    // The records keep their order across batches.
    let mut all: Vec<u64> = Vec::new();
    for (_, mut b) in seen {
        b.sort_unstable();
        all.extend(b);
    }
    assert_eq!(all, (0..250).collect::<Vec<_>>());
}

/// Stores `0, 1, 2, …` as fast as it may.
struct Firehose {
    next: u64,
}

impl Receiver for Firehose {
    type Record = u64;

    fn receive(&mut self, ctx: &mut ReceiverContext<'_, u64>) -> Received {
        loop {
            if !ctx.store(self.next) {
                return Received::Stopped;
            }
            self.next += 1;
            if self.next % 1024 == 0 && ctx.is_stopped() {
                return Received::Stopped;
            }
        }
    }
}

#[test]
fn backpressure_limits_a_custom_receiver_and_loses_nothing() {
    const INTERVAL: u64 = 50;
    const INITIAL: f64 = 2_000.0;
    let conf = StreamingConf::new("custom-backpressure", millis(INTERVAL))
        .master("local[2]")
        .unwrap()
        .ui(None)
        .backpressure(true)
        .backpressure_initial_rate(INITIAL)
        .graceful_stop_timeout(seconds(60));
    let ssc = StreamingContext::new(conf).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ssc.define(move |s| {
        let sink = sink.clone();
        s.receiver_stream(Firehose { next: 0 })
            .map(|x| {
                // About 50 µs a record: far less than the firehose offers.
                let until = Instant::now() + Duration::from_micros(50);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                x
            })
            .foreach_rdd(move |b, _| sink.lock().unwrap().extend(b));
    })
    .unwrap();
    ssc.start().unwrap();
    let first = ssc.first_batch_time().unwrap().milliseconds();
    ssc.await_batch(Time::from_millis(first + 29 * INTERVAL))
        .unwrap();
    let limit = ssc.receivers()[0].rate_limit;
    ssc.stop(true).unwrap();
    let batches = ssc.completed_batches();
    let cap = (INITIAL * INTERVAL as f64 / 1000.0) as u64;
    assert!(
        batches[0].num_records() <= cap,
        "the first batch holds {} records, over the initial rate's {cap}",
        batches[0].num_records()
    );
    let limit = limit.expect("backpressure sets a rate");
    assert!(limit < 1_000_000.0, "estimated rate {limit}");
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, i as u64, "record {i} is missing or doubled");
    }
    assert_eq!(got.len() as u64, ssc.receivers()[0].num_records);
}

/// Fails to connect twice, then stores three records and fails the
/// context with an error of its own.
struct Flaky {
    tries: u32,
}

#[derive(Debug)]
struct Gone;

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the upstream is gone for good")
    }
}

impl std::error::Error for Gone {}

impl Receiver for Flaky {
    type Record = u64;

    fn name(&self) -> String {
        "flaky".into()
    }

    fn receive(&mut self, ctx: &mut ReceiverContext<'_, u64>) -> Received {
        self.tries += 1;
        if self.tries <= 2 {
            return ctx.restart_after(format!("attempt {} refused", self.tries), millis(10));
        }
        if !ctx.store_all([1, 2, 3]) || !ctx.flush() {
            return Received::Stopped;
        }
        ctx.report_error("running degraded");
        while !ctx.is_stopped() && self.tries < 4 {
            std::thread::sleep(millis(5));
            self.tries += 1;
        }
        Received::Failed(Error::connector(Gone))
    }
}

#[test]
fn restarts_are_reported_and_a_receivers_own_error_stops_the_context() {
    #[derive(Default)]
    struct Events(Mutex<Vec<String>>);
    impl ember::StreamingListener for Events {
        fn on_receiver_started(&self, r: &ember::ReceiverInfo) {
            self.0.lock().unwrap().push(format!("started {}", r.name));
        }
        fn on_receiver_error(&self, r: &ember::ReceiverInfo) {
            let e = r.last_error.clone().unwrap_or_default();
            self.0.lock().unwrap().push(format!("error {e}"));
        }
    }
    let events = Arc::new(Events::default());
    let conf = StreamingConf::new("flaky", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, ManualClock::new()).unwrap();
    ssc.add_streaming_listener(events.clone());
    ssc.define(|s| {
        s.receiver_stream(Flaky { tries: 0 }).foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    let e = match ssc.await_termination_or_timeout(Duration::from_secs(30)) {
        Err(e) => e,
        Ok(stopped) => panic!("expected the receiver's error; stopped = {stopped}"),
    };
    assert!(matches!(e, Error::Connector(_)), "{e:?}");
    assert!(e.downcast_ref::<Gone>().is_some(), "{e:?}");
    let events = events.0.lock().unwrap().clone();
    assert_eq!(
        events[..4],
        [
            "error attempt 1 refused",
            "error attempt 2 refused",
            "started flaky",
            "error running degraded",
        ],
        "{events:?}"
    );
}

/// `socket_stream` decodes a program's own records from the bytes: 4-byte
/// big-endian numbers, split across writes at odd places; when the server
/// closes, the receiver reconnects and goes on.
#[test]
fn socket_stream_decodes_records_across_reconnects() {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    const PER_CONNECTION: u32 = 5_000;
    let server = std::thread::spawn(move || {
        for connection in 0..2u32 {
            let (mut conn, _) = listener.accept().unwrap();
            let bytes: Vec<u8> = (connection * PER_CONNECTION..(connection + 1) * PER_CONNECTION)
                .flat_map(u32::to_be_bytes)
                .collect();
            // Writes of 7 bytes and then larger ones: records cut in two.
            for chunk in bytes.chunks(7).take(50) {
                conn.write_all(chunk).unwrap();
                conn.flush().unwrap();
            }
            conn.write_all(&bytes[350..]).unwrap();
        }
    });
    let clock = ManualClock::new();
    let conf = StreamingConf::new("socket-stream", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    ssc.define(move |s| {
        let out = out.clone();
        let options = ember::ReceiverOptions::default().reconnect_delay(millis(20));
        s.socket_stream_with(
            "127.0.0.1",
            port,
            |r: &mut dyn BufRead| {
                let mut b = [0u8; 4];
                match r.read_exact(&mut b) {
                    Ok(()) => Ok(Some(u32::from_be_bytes(b))),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(e),
                }
            },
            options,
        )
        .foreach_rdd(move |b, _| out.lock().unwrap().extend(b));
    })
    .unwrap();
    ssc.start().unwrap();
    await_read(&ssc, 2 * PER_CONNECTION as u64);
    server.join().unwrap();
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(1000)).unwrap();
    ssc.stop(false).unwrap();
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, (0..2 * PER_CONNECTION).collect::<Vec<_>>());
    assert_eq!(
        ssc.receivers()[0].name,
        format!("socket_stream(127.0.0.1:{port})")
    );
}
