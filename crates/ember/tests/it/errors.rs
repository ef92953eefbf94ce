//! Errors keep their kind and value wherever they travel: a program's own
//! error type returned from a fallible operation comes back from
//! `await_termination` by downcasting, with the operation and batch named;
//! a connector's error keeps its kind; a state that cannot be encoded for a
//! checkpoint fails at the checkpoint. Also `foreach_partition`, which runs
//! on every worker without gathering.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember::{
    millis, seconds, Error, ManualClock, StreamingConf, StreamingContext, StreamingScope, Time,
};

/// A program's own error type.
#[derive(Debug, PartialEq)]
struct Rejected {
    records: usize,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a batch of {} records is rejected", self.records)
    }
}

impl std::error::Error for Rejected {}

/// A connector's own error type.
#[derive(Debug)]
struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server {} unreachable", self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Runs `define` on `workers` workers, batch `i` at `i` s, advancing the
/// clock one batch at a time until the context stops (at most `batches`),
/// and returns the error it stopped with.
fn failure(
    workers: usize,
    batches: u64,
    define: impl Fn(&StreamingScope<'_>) + Send + Sync + 'static,
) -> Error {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("errors", seconds(1))
        .master(&format!("local[{workers}]"))
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.define(define).unwrap();
    ssc.start().unwrap();
    for i in 1..=batches {
        clock.advance(seconds(1));
        if ssc.await_batch(Time::from_millis(i * 1000)).is_err() {
            break;
        }
    }
    match ssc.await_termination_or_timeout(Duration::from_secs(30)) {
        Err(e) => e,
        Ok(stopped) => panic!("expected a failure; stopped = {stopped}"),
    }
}

/// Batches of 2, 3 and 1 records: a limit of 2 rejects the second.
fn three_batches() -> Vec<Vec<u64>> {
    vec![vec![1, 2], vec![3, 4, 5], vec![6]]
}

#[test]
fn a_user_error_from_try_foreach_rdd_is_downcast_with_operator_and_batch() {
    for workers in [1, 3] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = seen.clone();
        let e = failure(workers, 3, move |s| {
            let out = out.clone();
            s.queue_stream(three_batches(), true, None)
                .try_foreach_rdd(move |batch, time| {
                    if batch.len() > 2 {
                        return Err(Rejected {
                            records: batch.len(),
                        });
                    }
                    out.lock().unwrap().push((time.milliseconds(), batch));
                    Ok(())
                });
        });
        assert_eq!(
            e.downcast_ref::<Rejected>(),
            Some(&Rejected { records: 3 }),
            "local[{workers}]: {e:?}"
        );
        match &e {
            Error::User { operator, time, .. } => {
                assert_eq!(operator, "try_foreach_rdd");
                assert_eq!(*time, Time::from_millis(2000));
            }
            other => panic!("local[{workers}]: expected Error::User, got {other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "try_foreach_rdd failed at batch 2000 ms: a batch of 3 records is rejected"
        );
        // The batch before the failure was delivered; nothing after it.
        let mut seen = seen.lock().unwrap().clone();
        seen.iter_mut().for_each(|(_, b)| b.sort());
        assert_eq!(seen, [(1000, vec![1, 2])], "local[{workers}]");
    }
}

#[test]
fn try_transform_and_try_map_partitions_name_themselves() {
    for workers in [1, 3] {
        let e = failure(workers, 3, |s| {
            s.queue_stream(three_batches(), true, None)
                .try_transform(|batch, _| match batch.len() {
                    n if n > 2 => Err(Rejected { records: n }),
                    _ => Ok(batch),
                })
                .foreach_rdd(|_, _| {});
        });
        assert!(
            matches!(&e, Error::User { operator, time, .. }
                if operator == "try_transform" && time.milliseconds() == 2000),
            "local[{workers}]: {e:?}"
        );
        assert_eq!(e.downcast_ref::<Rejected>(), Some(&Rejected { records: 3 }));

        // Every worker sees its own part; the third batch has one record,
        // so the failing worker is whichever holds it.
        let e = failure(workers, 3, |s| {
            s.queue_stream(three_batches(), true, None)
                .try_map_partitions(|part| {
                    let part: Vec<u64> = part.collect();
                    match part.contains(&6) {
                        true => Err(Rejected {
                            records: part.len(),
                        }),
                        false => Ok(part),
                    }
                })
                .foreach_rdd(|_, _| {});
        });
        assert!(
            matches!(&e, Error::User { operator, time, .. }
                if operator == "try_map_partitions" && time.milliseconds() == 3000),
            "local[{workers}]: {e:?}"
        );
        assert_eq!(e.downcast_ref::<Rejected>(), Some(&Rejected { records: 1 }));
    }
}

#[test]
fn an_ember_error_returned_keeps_its_kind() {
    let e = failure(2, 2, |s| {
        s.queue_stream(three_batches(), true, None)
            .try_foreach_rdd(|_, _| Err(Error::connector(Unreachable("db:5432".into()))));
    });
    assert!(matches!(e, Error::Connector(_)), "{e:?}");
    assert_eq!(
        e.downcast_ref::<Unreachable>().map(|u| u.0.as_str()),
        Some("db:5432")
    );
    assert_eq!(e.to_string(), "server db:5432 unreachable");
    // Every caller gets the same error, kind and value included.
    let again = e.clone();
    assert!(again.downcast_ref::<Unreachable>().is_some());
}

#[test]
fn a_connector_thread_fails_the_context_through_its_handle() {
    let e = failure(2, 5, |s| {
        let handle = s.failure_handle();
        let once = std::sync::Once::new();
        s.queue_stream(three_batches(), true, None)
            .foreach_rdd(move |_, time| {
                if time.milliseconds() == 2000 {
                    let handle = handle.clone();
                    once.call_once(|| {
                        std::thread::spawn(move || {
                            handle.fail(Error::connector(Unreachable("broker:9092".into())))
                        })
                        .join()
                        .unwrap();
                    });
                }
            });
    });
    assert!(matches!(e, Error::Connector(_)), "{e:?}");
    assert!(e.downcast_ref::<Unreachable>().is_some(), "{e:?}");
}

#[test]
fn a_definition_refused_by_a_connector_fails_start_with_its_error() {
    let conf = StreamingConf::new("refused", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, ManualClock::new()).unwrap();
    ssc.define(|s| {
        let q = s.queue_stream(three_batches(), true, None);
        q.print();
        q.fail_definition(Error::connector(Unreachable("bad url".into())));
    })
    .unwrap();
    let e = ssc.start().unwrap_err();
    assert!(matches!(e, Error::Connector(_)), "{e:?}");
}

#[test]
fn foreach_partition_runs_on_every_worker_with_its_own_part() {
    for workers in [1, 3] {
        type Calls = Arc<Mutex<BTreeMap<u64, Vec<Vec<u64>>>>>;
        let calls: Calls = Arc::default();
        let into = calls.clone();
        let clock = ManualClock::new();
        let conf = StreamingConf::new("partitions", millis(1000))
            .master(&format!("local[{workers}]"))
            .unwrap()
            .ui(None);
        let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
        ssc.define(move |s| {
            let into = into.clone();
            let input: Vec<Vec<u64>> = vec![(1..=30).collect(), vec![], vec![7]];
            s.queue_stream(input, true, None)
                .repartition(workers)
                .foreach_partition(move |part, time| {
                    into.lock()
                        .unwrap()
                        .entry(time.milliseconds())
                        .or_default()
                        .push(part);
                });
        })
        .unwrap();
        ssc.start().unwrap();
        for i in 1..=3 {
            clock.advance(seconds(1));
            ssc.await_batch(Time::from_millis(i * 1000)).unwrap();
        }
        ssc.stop(false).unwrap();
        let calls = calls.lock().unwrap().clone();
        let want: [Vec<u64>; 3] = [(1..=30).collect(), vec![], vec![7]];
        for (i, want) in want.iter().enumerate() {
            let parts = &calls[&((i as u64 + 1) * 1000)];
            // One call per worker per batch, empty parts included.
            assert_eq!(
                parts.len(),
                workers,
                "local[{workers}] batch {i}: {parts:?}"
            );
            let mut all: Vec<u64> = parts.iter().flatten().copied().collect();
            all.sort();
            assert_eq!(&all, want, "local[{workers}] batch {i}");
        }
        if workers == 3 {
            // Not gathered: the 30 records of the first batch were spread.
            let first = &calls[&1000];
            assert!(first.iter().all(|p| p.len() == 10), "{first:?}");
        }
    }
}

#[test]
fn try_foreach_partition_fails_with_the_workers_error() {
    let e = failure(3, 3, |s| {
        s.queue_stream(three_batches(), true, None)
            .try_foreach_partition(|part, _| match part.contains(&4) {
                true => Err(Rejected {
                    records: part.len(),
                }),
                false => Ok(()),
            });
    });
    assert!(
        matches!(&e, Error::User { operator, time, .. }
            if operator == "try_foreach_partition" && time.milliseconds() == 2000),
        "{e:?}"
    );
    assert!(e.downcast_ref::<Rejected>().is_some(), "{e:?}");
}

/// A state whose `Serialize` needs a self-describing format.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Flattened {
    #[serde(flatten)]
    inner: Count,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Count {
    n: u64,
}

#[test]
fn a_state_that_cannot_be_encoded_fails_at_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().to_path_buf();
    let clock = ManualClock::new();
    let conf = StreamingConf::new("unencodable", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None)
        .checkpoint_interval(seconds(2));
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.checkpoint(&ckpt);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    ssc.define(move |s| {
        let out = out.clone();
        s.queue_stream(vec![vec!["a".to_string(), "b".to_string()]; 4], true, None)
            .map(|w| (w, 1u64))
            .update_state_by_key(|vs: Vec<u64>, s: Option<Flattened>| {
                let n = s.map_or(0, |s| s.inner.n) + vs.iter().sum::<u64>();
                Some(Flattened { inner: Count { n } })
            })
            .foreach_rdd(move |b, t| out.lock().unwrap().push((t.milliseconds(), b.len())));
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(1000)).unwrap();
    clock.advance(seconds(1));
    let e = match ssc.await_termination_or_timeout(Duration::from_secs(30)) {
        Err(e) => e,
        Ok(stopped) => panic!("expected a checkpoint error; stopped = {stopped}"),
    };
    match &e {
        Error::Checkpoint { path, message, .. } => {
            assert_eq!(path, &ckpt);
            assert!(
                message.contains(":update_state_by_key")
                    && message.contains("batch 2000 ms")
                    && message.contains("cannot be encoded"),
                "{message}"
            );
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
    // No checkpoint was committed with empty bytes in it.
    let committed: Vec<_> = std::fs::read_dir(&ckpt)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("COMMIT").exists())
        .collect();
    assert!(committed.is_empty(), "{committed:?}");
}
