//! The context's lifecycle rules (Spark's), configuration errors, and user
//! panics turning into typed errors instead of hangs.

use std::sync::{Arc, Mutex};

use ember::prelude::*;
use ember::Error;

fn context(workers: usize) -> (StreamingContext, ManualClock) {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("lifecycle", seconds(1))
        .master(&format!("local[{workers}]"))
        .unwrap();
    (
        StreamingContext::with_clock(conf, clock.clone()).unwrap(),
        clock,
    )
}

#[test]
fn start_without_output_operations_is_an_invalid_graph() {
    let (ssc, _) = context(2);
    ssc.define(|s| {
        s.queue_stream(vec![vec![1u32]], true, None).map(|x| x + 1);
    })
    .unwrap();
    let err = ssc.start().unwrap_err();
    assert!(matches!(err, Error::InvalidGraph(_)), "{err:?}");
    assert!(
        err.to_string().contains("no output operations registered"),
        "{err}"
    );

    let (empty, _) = context(1);
    assert!(matches!(empty.start().unwrap_err(), Error::InvalidGraph(_)));
}

#[test]
fn operations_cannot_be_added_after_start_and_a_stopped_context_cannot_restart() {
    let (ssc, _) = context(1);
    ssc.define(|s| {
        s.queue_stream(vec![vec![1u32]], true, None)
            .foreach_rdd(|_, _| {})
    })
    .unwrap();
    ssc.start().unwrap();
    ssc.start().unwrap(); // a second start only warns, as in Spark
    let err = ssc
        .define(|s| s.queue_stream(vec![vec![1u32]], true, None).print())
        .unwrap_err();
    assert!(err.to_string().contains("after starting"), "{err}");
    ssc.stop(false).unwrap();
    ssc.stop(false).unwrap(); // idempotent
    let err = ssc.start().unwrap_err();
    assert!(matches!(err, Error::IllegalState(_)), "{err:?}");
    assert!(err.to_string().contains("already been stopped"), "{err}");
    let err = ssc
        .define(|s| s.queue_stream(vec![vec![1u32]], true, None).print())
        .unwrap_err();
    assert!(err.to_string().contains("after stopping"), "{err}");
}

#[test]
fn waiting_on_a_context_that_never_started_is_an_error() {
    let (ssc, _) = context(1);
    assert!(matches!(
        ssc.await_termination().unwrap_err(),
        Error::IllegalState(_)
    ));
    ssc.stop(true).unwrap();
}

#[test]
fn await_termination_or_timeout_reports_whether_it_stopped() {
    let (ssc, _) = context(2);
    ssc.define(|s| {
        s.queue_stream(vec![vec![1u32]], true, None)
            .foreach_rdd(|_, _| {})
    })
    .unwrap();
    ssc.start().unwrap();
    assert!(!ssc.await_termination_or_timeout(millis(20)).unwrap());
    ssc.stop(false).unwrap();
    assert!(ssc.await_termination_or_timeout(millis(20)).unwrap());
}

#[test]
fn bad_master_and_interval_are_config_errors() {
    for bad in ["local[0]", "local[two]", "yarn", ""] {
        let err = StreamingConf::new("x", seconds(1)).master(bad).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad}: {err:?}");
    }
    let err = StreamingContext::new(StreamingConf::new("x", millis(0))).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let err = StreamingContext::new(StreamingConf::new(
        "x",
        std::time::Duration::from_micros(1500),
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("whole number of milliseconds"),
        "{err}"
    );
    let err = ember::parse_duration("-1s").unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[test]
fn a_panic_in_user_code_stops_the_context_with_a_typed_error() {
    for workers in [1, 3] {
        let (ssc, clock) = context(workers);
        ssc.define(|s| {
            s.queue_stream(vec![vec![1u32, 2, 3, 4, 5, 6]], true, None)
                .map(|x| if x == 5 { panic!("bad record {x}") } else { x })
                .count()
                .foreach_rdd(|_, _| {});
        })
        .unwrap();
        ssc.start().unwrap();
        clock.advance(seconds(1));
        let err = ssc.await_termination().unwrap_err();
        match err {
            Error::UserCode { message, .. } => {
                assert!(message.contains("bad record 5"), "{message}")
            }
            other => panic!("expected UserCode, got {other:?}"),
        }
    }
}

#[test]
fn stop_from_inside_foreach_rdd_ends_the_run() {
    let (ssc, clock) = context(2);
    let handle = ssc.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ssc.define(move |s| {
        let handle = handle.clone();
        let sink = sink.clone();
        s.queue_stream(vec![vec![1u32], vec![2], vec![3]], true, None)
            .foreach_rdd(move |batch, time| {
                sink.lock().unwrap().push((time.milliseconds(), batch));
                if time.milliseconds() == 2000 {
                    handle.stop(false).unwrap();
                }
            });
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    clock.advance(seconds(1));
    ssc.await_termination().unwrap();
    assert_eq!(*seen.lock().unwrap(), [(1000, vec![1]), (2000, vec![2])]);
}

#[test]
fn graceful_stop_processes_the_open_batch() {
    let (ssc, clock) = context(2);
    let queue: Queue<u32> = Queue::from(vec![vec![1], vec![2]]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let q = queue.clone();
    ssc.define(move |s| {
        let sink = sink.clone();
        s.queue_stream(q.clone(), true, None)
            .foreach_rdd(move |batch, time| {
                sink.lock().unwrap().push((time.milliseconds(), batch))
            });
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(1000)).unwrap();
    // The clock has not reached 2000: a graceful stop closes that batch now.
    ssc.stop(true).unwrap();
    assert_eq!(*seen.lock().unwrap(), [(1000, vec![1]), (2000, vec![2])]);
}

#[test]
fn a_graceful_stop_that_times_out_stops_for_real_and_reports_it() {
    use std::time::{Duration, Instant};
    let clock = ManualClock::new();
    let timeout = Duration::from_millis(500);
    let conf = StreamingConf::new("stop-timeout", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None)
        .graceful_stop_timeout(timeout);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let calls = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let record = calls.clone();
    ssc.define(move |s| {
        let record = record.clone();
        s.queue_stream(Vec::<Vec<u32>>::new(), true, None)
            .foreach_rdd(move |_, _| {
                record.lock().unwrap().push(Instant::now());
                // A slow sink: thirty batches of it take six seconds.
                std::thread::sleep(Duration::from_millis(200));
            });
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(30));
    // Wait for the backlog to be under way.
    while calls.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let asked = Instant::now();
    let err = ssc.stop(true).unwrap_err();
    let stopped = Instant::now();
    assert!(
        matches!(err, Error::StopTimeout(t) if t == timeout),
        "{err:?}"
    );
    // The timeout, then at most the call in progress (200 ms) and one
    // interval (1 s), with a second to spare on a busy machine; the thirty
    // batches' six seconds never run.
    let took = stopped - asked;
    assert!(
        took < timeout + Duration::from_millis(2200),
        "the stop took {took:?}"
    );
    let calls = calls.lock().unwrap().clone();
    assert!(
        calls
            .iter()
            .all(|c| *c < asked + timeout + Duration::from_millis(50)),
        "no call started after the stop at once: {:?}",
        calls
            .iter()
            .map(|c| c.duration_since(asked))
            .collect::<Vec<_>>()
    );
    assert!(calls.len() < 30, "{} batches ran", calls.len());
    // await_termination tells the program (and an example's exit status).
    let again = ssc.await_termination().unwrap_err();
    assert!(matches!(again, Error::StopTimeout(_)), "{again:?}");
}
