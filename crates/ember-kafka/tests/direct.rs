//! The direct stream and the sink against a real Kafka-protocol broker
//! (tansu, started by `.ci/test.sh`; its address in EMBER_TEST_KAFKA_BROKERS).
//!
//! - every record of a 4-partition topic lands in exactly one batch, with
//!   contiguous offset ranges that keep to the max rate per partition;
//! - after a crash, a restart from the checkpoint runs the batches planned
//!   since with the same ranges, and then goes on without gap or overlap;
//! - after a graceful stop, a restart re-reads nothing;
//! - a broker that is down at start, or goes away mid-run, only delays
//!   records: once it is back, every record arrives exactly once;
//! - `save_to_kafka` writes every record once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember_core::{seconds, ManualClock, StreamingConf, StreamingContext, Time};
use ember_kafka::{
    create_direct_stream, ConsumerRecord, KafkaExt, KafkaParams, KafkaSink, OffsetRange, Subscribe,
};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use ember_testkit::services::{create_topic, kafka_brokers as brokers, unique};

/// Produces `values` with keys spreading them over the partitions.
fn produce(brokers: &str, topic: &str, values: impl IntoIterator<Item = String>) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for (i, v) in values.into_iter().enumerate() {
        let key = format!("k{i}");
        loop {
            match producer.send(BaseRecord::to(topic).key(&key).payload(&v)) {
                Ok(()) => break,
                Err(_) => {
                    producer.poll(Duration::from_millis(20));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
}

/// A new 4-partition topic holding `v0 .. v{n-1}`.
fn loaded_topic(brokers: &str, prefix: &str, n: usize) -> String {
    let topic = unique(prefix);
    create_topic(brokers, &topic, 4);
    produce(brokers, &topic, (0..n).map(|i| format!("v{i}")));
    topic
}

type Batches = Arc<Mutex<BTreeMap<u64, Vec<ConsumerRecord>>>>;
type Ranges = Arc<Mutex<BTreeMap<u64, Vec<OffsetRange>>>>;

/// A context reading `topic`, collecting records and ranges by batch.
fn context(
    clock: &ManualClock,
    params: KafkaParams,
    topic: &str,
    checkpoint: Option<&Path>,
    records: &Batches,
    ranges: &Ranges,
) -> StreamingContext {
    let (records, ranges, topic) = (records.clone(), ranges.clone(), topic.to_string());
    let clock = clock.clone();
    let build = move || {
        let conf = StreamingConf::new("kafka", seconds(1))
            .master("local[2]")?
            .ui(None)
            .checkpoint_interval(seconds(2));
        let ssc = StreamingContext::with_clock(conf, clock.clone())?;
        let (records, ranges, topic, params) = (
            records.clone(),
            ranges.clone(),
            topic.clone(),
            params.clone(),
        );
        ssc.define(move |s| {
            let stream =
                create_direct_stream(s, Subscribe::topics([topic.clone()]), params.clone());
            let r = records.clone();
            stream.records().foreach_rdd(move |batch, t| {
                r.lock().unwrap().insert(t.milliseconds(), batch);
            });
            let g = ranges.clone();
            stream.offset_ranges().foreach_rdd(move |mut batch, t| {
                batch.sort();
                g.lock().unwrap().insert(t.milliseconds(), batch);
            });
        })?;
        Ok(ssc)
    };
    match checkpoint {
        Some(dir) => {
            let dir2 = dir.to_path_buf();
            StreamingContext::get_or_create(dir, move || {
                let ssc = build()?;
                ssc.checkpoint(&dir2);
                Ok(ssc)
            })
            .unwrap()
        }
        None => build().unwrap(),
    }
}

/// Runs `n` batches, one at a time.
fn step(ssc: &StreamingContext, clock: &ManualClock, n: usize) {
    for _ in 0..n {
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(clock.now_ms())).unwrap();
    }
}

/// Runs batches one at a time until `done`, failing after a deadline.
fn run_until(ssc: &StreamingContext, clock: &ManualClock, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(clock.now_ms())).unwrap();
    }
}

fn total(records: &Batches) -> usize {
    records.lock().unwrap().values().map(Vec::len).sum()
}

/// Ranges of each partition follow on from each other from `start`.
fn assert_contiguous(
    ranges: &BTreeMap<u64, Vec<OffsetRange>>,
    partitions: i32,
    ends: &BTreeMap<i32, i64>,
) {
    let mut next: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    for (t, rs) in ranges {
        for r in rs {
            let n = next.get_mut(&r.partition).unwrap();
            assert_eq!(
                r.from_offset, *n,
                "batch {t}: {r:?} does not start where the last range ended"
            );
            assert!(r.until_offset >= r.from_offset);
            *n = r.until_offset;
        }
    }
    assert_eq!(&next, ends, "ranges end at the partitions' ends");
}

/// Every record of every batch lies in that batch's range of its partition.
fn assert_records_match_ranges(
    records: &BTreeMap<u64, Vec<ConsumerRecord>>,
    ranges: &BTreeMap<u64, Vec<OffsetRange>>,
) {
    for (t, batch) in records {
        let rs = ranges.get(t).cloned().unwrap_or_default();
        let mut want: BTreeSet<(i32, i64)> = BTreeSet::new();
        for r in &rs {
            want.extend((r.from_offset..r.until_offset).map(|o| (r.partition, o)));
        }
        let got: BTreeSet<(i32, i64)> = batch.iter().map(|r| (r.partition, r.offset)).collect();
        assert_eq!(got.len(), batch.len(), "batch {t} holds a record twice");
        assert_eq!(got, want, "batch {t}'s records are exactly its ranges");
    }
}

fn ends(records: &BTreeMap<u64, Vec<ConsumerRecord>>) -> BTreeMap<i32, i64> {
    let mut e: BTreeMap<i32, i64> = (0..4).map(|p| (p, 0)).collect();
    for r in records.values().flatten() {
        let x = e.get_mut(&r.partition).unwrap();
        *x = (*x).max(r.offset + 1);
    }
    e
}

#[test]
fn every_record_in_exactly_one_batch_with_contiguous_ranges_under_the_max_rate() {
    let Some(brokers) = brokers() else { return };
    const N: usize = 100_000;
    let topic = loaded_topic(&brokers, "direct", N);
    let values: Vec<String> = (0..N).map(|i| format!("v{i}")).collect();

    let clock = ManualClock::new();
    let params = KafkaParams::new(&brokers).max_rate_per_partition(5_000.0);
    let (records, ranges) = (Batches::default(), Ranges::default());
    let ssc = context(&clock, params, &topic, None, &records, &ranges);
    ssc.start().unwrap();
    run_until(&ssc, &clock, || total(&records) >= N);
    ssc.stop(false).unwrap();

    let records = records.lock().unwrap().clone();
    let ranges = ranges.lock().unwrap().clone();
    let mut seen: Vec<String> = records
        .values()
        .flatten()
        .map(|r| r.value_str().into_owned())
        .collect();
    seen.sort();
    let mut want = values;
    want.sort();
    assert_eq!(seen, want, "every record exactly once");
    assert_records_match_ranges(&records, &ranges);
    assert_contiguous(&ranges, 4, &ends(&records));
    for (t, rs) in &ranges {
        for r in rs {
            assert!(
                r.count() <= 5_000,
                "batch {t}: {r:?} is over 5,000 records per partition per second"
            );
        }
    }
    assert!(
        ranges.len() >= N / 20_000,
        "the max rate spread the records over batches"
    );
}

#[test]
fn restart_after_a_crash_rereads_the_same_ranges_then_goes_on() {
    let Some(brokers) = brokers() else { return };
    const N: usize = 20_000;
    let topic = loaded_topic(&brokers, "recover", N);
    let dir = tempfile::tempdir().unwrap();

    let clock = ManualClock::new();
    let params = KafkaParams::new(&brokers).max_rate_per_partition(800.0);
    let (records, ranges) = (Batches::default(), Ranges::default());
    let ssc = context(
        &clock,
        params.clone(),
        &topic,
        Some(dir.path()),
        &records,
        &ranges,
    );
    ssc.start().unwrap();
    // Five batches: checkpoints at 2 s and 4 s, then batch 5 runs past it.
    step(&ssc, &clock, 5);
    // A crash: stop at once, no final checkpoint.
    ssc.stop(false).unwrap();
    let first_ranges = ranges.lock().unwrap().clone();

    let (records2, ranges2) = (Batches::default(), Ranges::default());
    let ssc = context(
        &clock,
        params,
        &topic,
        Some(dir.path()),
        &records2,
        &ranges2,
    );
    ssc.start().unwrap();
    run_until(&ssc, &clock, || {
        let mut all = records.lock().unwrap().clone();
        all.extend(records2.lock().unwrap().clone());
        all.values().map(Vec::len).sum::<usize>() >= N
    });
    ssc.stop(false).unwrap();
    let second_ranges = ranges2.lock().unwrap().clone();

    // Batch 5000 came after the last checkpoint (4000): it ran again with
    // exactly the ranges it had.
    let rerun: Vec<&u64> = second_ranges
        .keys()
        .filter(|t| first_ranges.contains_key(t))
        .collect();
    assert!(
        !rerun.is_empty(),
        "the batch after the checkpoint ran again"
    );
    for t in rerun {
        assert_eq!(
            second_ranges[t], first_ranges[t],
            "batch {t} re-read the same ranges"
        );
    }
    // Together (the rerun replacing the first run's batch), every offset
    // once, in contiguous ranges.
    let mut ranges_all = first_ranges;
    ranges_all.extend(second_ranges);
    let mut records_all = records.lock().unwrap().clone();
    records_all.extend(records2.lock().unwrap().clone());
    assert_records_match_ranges(&records_all, &ranges_all);
    assert_contiguous(&ranges_all, 4, &ends(&records_all));
    assert_eq!(records_all.values().map(Vec::len).sum::<usize>(), N);
}

#[test]
fn restart_after_a_graceful_stop_rereads_nothing() {
    let Some(brokers) = brokers() else { return };
    const N: usize = 12_000;
    let topic = loaded_topic(&brokers, "graceful", N);
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let params = KafkaParams::new(&brokers).max_rate_per_partition(1_000.0);
    let (records, ranges) = (Batches::default(), Ranges::default());
    let ssc = context(
        &clock,
        params.clone(),
        &topic,
        Some(dir.path()),
        &records,
        &ranges,
    );
    ssc.start().unwrap();
    step(&ssc, &clock, 1);
    ssc.stop(true).unwrap();
    let first = records.lock().unwrap().clone();
    let (records2, ranges2) = (Batches::default(), Ranges::default());
    let ssc = context(
        &clock,
        params,
        &topic,
        Some(dir.path()),
        &records2,
        &ranges2,
    );
    ssc.start().unwrap();
    let before: usize = first.values().map(Vec::len).sum();
    run_until(&ssc, &clock, || before + total(&records2) >= N);
    ssc.stop(false).unwrap();
    let second = records2.lock().unwrap().clone();
    assert!(
        second.keys().all(|t| !first.contains_key(t)),
        "no batch ran twice: {:?} then {:?}",
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    let mut offsets: Vec<(i32, i64)> = first
        .values()
        .chain(second.values())
        .flatten()
        .map(|r| (r.partition, r.offset))
        .collect();
    offsets.sort();
    let n = offsets.len();
    offsets.dedup();
    assert_eq!(offsets.len(), n, "no record read twice");
    assert_eq!(n, N, "no record skipped");
}

/// A tansu broker of the test's own, on `port`, keeping its data in `dir`.
fn own_broker(dir: &Path, port: u16) -> Child {
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new("tansu")
        .current_dir(dir)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://broker.db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu is installed by .ci/setup.sh");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "tansu did not start on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn broker_down_at_start_and_mid_run_loses_nothing() {
    if brokers().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let topic = unique("outage");
    let clock = ManualClock::new();
    let params = KafkaParams::new(&address)
        .max_rate_per_partition(2_000.0)
        .metadata_timeout(Duration::from_secs(1));
    let (records, ranges) = (Batches::default(), Ranges::default());
    let ssc = context(&clock, params, &topic, None, &records, &ranges);
    ssc.start().unwrap();
    // No broker yet: batches run, empty.
    step(&ssc, &clock, 2);
    assert_eq!(total(&records), 0);
    let mut broker = own_broker(dir.path(), port);
    create_topic(&address, &topic, 4);
    produce(&address, &topic, (0..4_000).map(|i| format!("a{i}")));
    run_until(&ssc, &clock, || total(&records) >= 4_000);
    // The broker goes away; batches go on, empty; it comes back with its data.
    broker.kill().unwrap();
    broker.wait().unwrap();
    step(&ssc, &clock, 2);
    let mut broker = own_broker(dir.path(), port);
    produce(&address, &topic, (0..4_000).map(|i| format!("b{i}")));
    run_until(&ssc, &clock, || total(&records) >= 8_000);
    ssc.stop(false).unwrap();
    broker.kill().unwrap();
    let _ = broker.wait();
    let mut seen: Vec<String> = records
        .lock()
        .unwrap()
        .values()
        .flatten()
        .map(|r| r.value_str().into_owned())
        .collect();
    seen.sort();
    let mut want: Vec<String> = (0..4_000)
        .map(|i| format!("a{i}"))
        .chain((0..4_000).map(|i| format!("b{i}")))
        .collect();
    want.sort();
    assert_eq!(seen, want, "every record exactly once across the outage");
}

#[test]
fn save_to_kafka_writes_every_record_once() {
    let Some(brokers) = brokers() else { return };
    let out_topic = unique("sink");
    create_topic(&brokers, &out_topic, 2);
    let clock = ManualClock::new();
    let conf = StreamingConf::new("kafka-sink", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let (b, t) = (brokers.clone(), out_topic.clone());
    ssc.define(move |s| {
        let batches: Vec<Vec<u64>> = (0..3)
            .map(|k| (k * 1000..(k + 1) * 1000).collect())
            .collect();
        s.queue_stream(batches, true, None)
            .save_to_kafka(KafkaSink::new(&b, &t), |n| {
                (
                    Some(n.to_string().into_bytes()),
                    format!("n{n}").into_bytes(),
                )
            });
    })
    .unwrap();
    ssc.start().unwrap();
    step(&ssc, &clock, 3);
    ssc.stop(false).unwrap();

    // Read the topic back with a direct stream of its own.
    let clock = ManualClock::new();
    let (records, ranges) = (Batches::default(), Ranges::default());
    let ssc = context(
        &clock,
        KafkaParams::new(&brokers),
        &out_topic,
        None,
        &records,
        &ranges,
    );
    ssc.start().unwrap();
    run_until(&ssc, &clock, || total(&records) >= 3_000);
    ssc.stop(false).unwrap();
    let mut got: Vec<String> = records
        .lock()
        .unwrap()
        .values()
        .flatten()
        .map(|r| r.value_str().into_owned())
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..3_000).map(|n| format!("n{n}")).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn offsets_are_committed_to_the_group_after_outputs() {
    let Some(brokers) = brokers() else { return };
    let topic = loaded_topic(&brokers, "commit", 2_000);
    let group = unique("group");
    let clock = ManualClock::new();
    let params = KafkaParams::new(&brokers)
        .group_id(&group)
        .commit_offsets(true);
    let (records, ranges) = (Batches::default(), Ranges::default());
    let ssc = context(&clock, params, &topic, None, &records, &ranges);
    ssc.start().unwrap();
    run_until(&ssc, &clock, || total(&records) >= 2_000);
    let want = ends(&records.lock().unwrap());

    // The commit is asynchronous: poll the group's offsets until they match.
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition(&topic, p);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let committed = consumer
            .committed_offsets(tpl.clone(), Duration::from_secs(5))
            .unwrap();
        let got: BTreeMap<i32, i64> = (0..4)
            .map(|p| {
                let o = committed.find_partition(&topic, p).map(|e| e.offset());
                (
                    p,
                    match o {
                        Some(rdkafka::Offset::Offset(o)) => o,
                        _ => 0,
                    },
                )
            })
            .collect();
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "committed {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    ssc.stop(false).unwrap();
}

#[test]
fn a_pattern_picks_up_new_topics_and_records_carry_their_metadata() {
    let Some(brokers) = brokers() else { return };
    let prefix = unique("pat");
    let first = format!("{prefix}-a");
    create_topic(&brokers, &first, 2);
    let clock = ManualClock::new();
    let conf = StreamingConf::new("pattern", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let records = Batches::default();
    let (r, b, pattern) = (records.clone(), brokers.clone(), format!("^{prefix}-.*"));
    ssc.define(move |s| {
        let r = r.clone();
        create_direct_stream(s, Subscribe::pattern(pattern.clone()), KafkaParams::new(&b))
            .records()
            .foreach_rdd(move |batch, t| {
                r.lock().unwrap().insert(t.milliseconds(), batch);
            });
    })
    .unwrap();
    ssc.start().unwrap();

    // A record with a key, headers and a timestamp of our choosing.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header {
            key: "h1",
            value: Some("x".as_bytes()),
        })
        .insert(rdkafka::message::Header {
            key: "h2",
            value: None::<&[u8]>,
        });
    producer
        .send(
            BaseRecord::to(&first)
                .key("key-1")
                .payload("hello")
                .partition(1)
                .timestamp(1_700_000_000_123)
                .headers(headers),
        )
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();
    run_until(&ssc, &clock, || total(&records) >= 1);

    // A topic created while the stream runs is read too.
    let second = format!("{prefix}-b");
    create_topic(&brokers, &second, 3);
    produce(&brokers, &second, (0..300).map(|i| format!("b{i}")));
    run_until(&ssc, &clock, || total(&records) >= 301);
    ssc.stop(false).unwrap();

    let all: Vec<ConsumerRecord> = records
        .lock()
        .unwrap()
        .values()
        .flatten()
        .cloned()
        .collect();
    let first_record = all
        .iter()
        .find(|r| r.topic == first)
        .expect("the first topic's record");
    assert_eq!(first_record.partition, 1);
    assert_eq!(first_record.offset, 0);
    assert_eq!(first_record.key_str().as_deref(), Some("key-1"));
    assert_eq!(first_record.value_str(), "hello");
    assert_eq!(first_record.timestamp, Some(1_700_000_000_123));
    assert_eq!(
        first_record.headers,
        vec![
            ("h1".to_string(), Some(b"x".to_vec())),
            ("h2".to_string(), None)
        ]
    );
    let second_count = all.iter().filter(|r| r.topic == second).count();
    assert_eq!(second_count, 300, "every record of the new topic");
}

#[test]
fn undeliverable_records_stop_the_context_with_the_reason() {
    if brokers().is_none() {
        return;
    }
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = ManualClock::new();
    let conf = StreamingConf::new("undeliverable", seconds(1))
        .master("local[1]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.define(move |s| {
        let sink = KafkaSink::new(format!("127.0.0.1:{port}"), "nowhere")
            .set("message.timeout.ms", "1000")
            .flush_timeout(Duration::from_secs(10));
        s.queue_stream(vec![vec!["a".to_string()]], true, None)
            .save_to_kafka(sink, |v| (None, v.clone().into_bytes()));
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    let ended = ssc.await_termination_or_timeout(Duration::from_secs(60));
    let error = ended.expect_err("the context fails");
    // The connector's own error, not a panic of the program's code.
    assert!(
        matches!(error, ember_core::Error::Connector(_)),
        "{error:?}"
    );
    assert!(
        matches!(
            error.downcast_ref::<ember_kafka::KafkaFailure>(),
            Some(ember_kafka::KafkaFailure::Sink { topic, .. }) if topic == "nowhere"
        ),
        "{error:?}"
    );
    let err = error.to_string();
    assert!(err.contains("kafka sink nowhere"), "{err}");
    assert!(
        err.contains("not delivered") || err.contains("not confirmed"),
        "{err}"
    );
}

#[test]
fn assigned_partitions_start_at_the_given_offsets() {
    let Some(brokers) = brokers() else { return };
    let topic = loaded_topic(&brokers, "assign", 2_000);
    // Read partition 1 from offset 10 and partition 2 from its start; leave
    // partitions 0 and 3 alone.
    let clock = ManualClock::new();
    let conf = StreamingConf::new("assign", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let records = Batches::default();
    let (r, b, t) = (records.clone(), brokers.clone(), topic.clone());
    ssc.define(move |s| {
        let r = r.clone();
        let assign = Subscribe::assign([(t.clone(), 1, Some(10)), (t.clone(), 2, None)]);
        create_direct_stream(s, assign, KafkaParams::new(&b))
            .records()
            .foreach_rdd(move |batch, t| {
                r.lock().unwrap().insert(t.milliseconds(), batch);
            });
    })
    .unwrap();
    ssc.start().unwrap();
    step(&ssc, &clock, 2);
    ssc.stop(false).unwrap();
    let all: Vec<ConsumerRecord> = records
        .lock()
        .unwrap()
        .values()
        .flatten()
        .cloned()
        .collect();
    let by_partition = |p: i32| -> Vec<i64> {
        let mut v: Vec<i64> = all
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        v.sort_unstable();
        v
    };
    assert!(
        by_partition(0).is_empty() && by_partition(3).is_empty(),
        "only the assigned partitions"
    );
    let p1 = by_partition(1);
    let p2 = by_partition(2);
    assert_eq!(p1.first(), Some(&10), "partition 1 from offset 10");
    assert!(
        p1.windows(2).all(|w| w[1] == w[0] + 1),
        "partition 1 contiguous"
    );
    assert_eq!(p2.first(), Some(&0), "partition 2 from its start");
    assert!(
        p2.windows(2).all(|w| w[1] == w[0] + 1),
        "partition 2 contiguous"
    );
}

#[test]
fn a_topic_pattern_that_is_not_a_regular_expression_stops_the_context() {
    // No broker needed: the pattern is checked before the brokers are asked.
    let clock = ManualClock::new();
    let conf = StreamingConf::new("bad-pattern", seconds(1))
        .master("local[1]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.define(|s| {
        create_direct_stream(
            s,
            Subscribe::pattern("events-("),
            KafkaParams::new("127.0.0.1:1"),
        )
        .records()
        .foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    clock.advance(seconds(1));
    let err = ssc
        .await_termination_or_timeout(Duration::from_secs(60))
        .expect_err("the context fails")
        .to_string();
    assert!(
        err.contains("events-(") && err.contains("not a regular expression"),
        "{err}"
    );
}
