//! The listener API and batch statistics: events in Spark's order, record
//! counts equal to what was sent, output failures reported with their reason,
//! receiver errors while a server is down.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ember::prelude::*;
use ember::{BatchInfo, OutputOperationInfo, ReceiverInfo, StreamingListener};

/// Records every event as a line, and lets a test wait for a condition.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    batches: Mutex<Vec<BatchInfo>>,
    outputs: Mutex<Vec<OutputOperationInfo>>,
    changed: Condvar,
}

impl Recorder {
    fn push(&self, e: String) {
        self.events.lock().unwrap().push(e);
        self.changed.notify_all();
    }

    /// Waits (bounded) until `done` holds for the event lines.
    fn wait_for(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let mut events = self.events.lock().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done(&events) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting; events so far: {events:#?}"
            );
            events = self.changed.wait_timeout(events, left).unwrap().0;
        }
        events.clone()
    }
}

impl StreamingListener for Recorder {
    fn on_streaming_started(&self, _time: u64) {
        self.push("started".into());
    }
    fn on_receiver_started(&self, r: &ReceiverInfo) {
        self.push(format!("receiver started {}", r.name));
    }
    fn on_receiver_error(&self, r: &ReceiverInfo) {
        self.push(format!(
            "receiver error {}",
            r.last_error.clone().unwrap_or_default()
        ));
    }
    fn on_batch_submitted(&self, b: &BatchInfo) {
        self.push(format!("submitted {}", b.batch_time.milliseconds()));
    }
    fn on_batch_started(&self, b: &BatchInfo) {
        self.push(format!("batch started {}", b.batch_time.milliseconds()));
    }
    fn on_batch_completed(&self, b: &BatchInfo) {
        self.batches.lock().unwrap().push(b.clone());
        self.push(format!("completed {}", b.batch_time.milliseconds()));
    }
    fn on_output_operation_started(&self, o: &OutputOperationInfo) {
        self.push(format!(
            "output started {} {}",
            o.name,
            o.batch_time.milliseconds()
        ));
    }
    fn on_output_operation_completed(&self, o: &OutputOperationInfo) {
        self.outputs.lock().unwrap().push(o.clone());
        self.push(format!(
            "output completed {} {}",
            o.name,
            o.batch_time.milliseconds()
        ));
    }
}

fn count(events: &[String], prefix: &str) -> usize {
    events.iter().filter(|e| e.starts_with(prefix)).count()
}

#[test]
fn batches_are_submitted_started_and_completed_in_order_with_their_record_counts() {
    for workers in [1, 3] {
        let clock = ManualClock::new();
        let conf = StreamingConf::new("listener", seconds(1))
            .master(&format!("local[{workers}]"))
            .unwrap();
        let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
        let recorder = Arc::new(Recorder::default());
        ssc.add_streaming_listener(recorder.clone());
        ssc.define(|s| {
            let batches = vec![vec![1u32, 2, 3], vec![], vec![4, 5, 6, 7, 8]];
            s.queue_stream(batches, true, None).foreach_rdd(|_, _| {});
        })
        .unwrap();
        ssc.start().unwrap();
        for t in [1000, 2000, 3000] {
            clock.advance(seconds(1));
            ssc.await_batch(Time::from_millis(t)).unwrap();
        }
        let events =
            recorder.wait_for(|e| count(e, "completed") == 3 && count(e, "output completed") == 3);
        ssc.stop(false).unwrap();

        assert_eq!(events[0], "started");
        for t in [1000, 2000, 3000] {
            let at = |name: &str| {
                events
                    .iter()
                    .position(|e| *e == format!("{name} {t}"))
                    .unwrap()
            };
            assert!(at("submitted") < at("batch started"), "{events:#?}");
            assert!(at("batch started") < at("completed"), "{events:#?}");
            assert!(
                at("output started foreach_rdd") < at("output completed foreach_rdd"),
                "{events:#?}"
            );
            assert!(
                at("output completed foreach_rdd") < at("completed"),
                "{events:#?}"
            );
        }
        let batches = recorder.batches.lock().unwrap().clone();
        let records: Vec<u64> = batches.iter().map(BatchInfo::num_records).collect();
        assert_eq!(records, [3, 0, 5], "workers = {workers}");
        assert_eq!(
            batches[0].records_by_input.keys().collect::<Vec<_>>(),
            ["QueueStream"]
        );
        for b in &batches {
            let (sched, proc, total) = (
                b.scheduling_delay().unwrap(),
                b.processing_delay().unwrap(),
                b.total_delay().unwrap(),
            );
            assert!(sched + proc <= total + 1, "{b:?}");
        }
        // The context keeps the same statistics.
        let kept: Vec<u64> = ssc
            .completed_batches()
            .iter()
            .map(BatchInfo::num_records)
            .collect();
        assert_eq!(kept, [3, 0, 5]);
    }
}

#[test]
fn a_failing_output_operation_is_reported_with_its_reason() {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("listener", seconds(1))
        .master("local[2]")
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let recorder = Arc::new(Recorder::default());
    ssc.add_streaming_listener(recorder.clone());
    ssc.define(|s| {
        s.queue_stream(vec![vec![1u32], vec![2]], true, None)
            .foreach_rdd(|b, _| {
                if b == [2] {
                    panic!("cannot write record 2");
                }
            });
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    clock.advance(seconds(1));
    assert!(ssc.await_termination().is_err());
    recorder.wait_for(|e| count(e, "output completed") == 2);
    let outputs = recorder.outputs.lock().unwrap().clone();
    assert_eq!(outputs[0].failure_reason, None);
    assert_eq!(
        outputs[1].failure_reason.as_deref(),
        Some("cannot write record 2")
    );
    assert_eq!(outputs[1].batch_time, Time::from_millis(2000));
}

#[test]
fn a_receiver_reports_errors_while_its_server_is_down_and_starts_when_it_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = StreamingConf::new("listener", millis(100))
        .master("local[1]")
        .unwrap();
    let ssc = StreamingContext::new(conf).unwrap();
    let recorder = Arc::new(Recorder::default());
    ssc.add_streaming_listener(recorder.clone());
    ssc.define(move |s| {
        let options = ember::SocketOptions::default().reconnect_delay(millis(20));
        s.socket_text_stream_with("127.0.0.1", port, options)
            .foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    recorder.wait_for(|e| {
        e.iter()
            .any(|l| l.starts_with("receiver error cannot connect"))
    });
    let server = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let events = recorder.wait_for(|e| count(e, "receiver started") == 1);
    drop(server);
    ssc.stop(false).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e == &format!("receiver started socket_text_stream(127.0.0.1:{port})")),
        "{events:#?}"
    );
}
