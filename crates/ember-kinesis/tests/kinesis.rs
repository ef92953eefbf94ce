//! The Kinesis stream against a real Kinesis-API server (moto's, started
//! by `.ci/test.sh`): records in = records out at one and three workers,
//! shards split and merged mid-run, a max rate that caps every batch, the
//! server unreachable at start and mid-run, a missing stream, refused
//! credentials, and a program killed with SIGKILL and restarted with
//! `get_or_create`, which counts every record exactly once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use ember_core::{millis, StreamingConf, StreamingContext};
use ember_kinesis::{create_stream, InitialPosition, KinesisParams, KinesisRecord};
use ember_testkit::services::{aws_refusing_endpoint, kinesis_endpoint, unique, Proxy};
use ember_testkit::{await_first_output, restartable_child, settled_word_counts, Restartable};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn test_client(endpoint: &str) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

/// A new stream with `shards` shards, and the server's endpoint.
fn stream(shards: i32) -> Option<(String, String)> {
    let endpoint = kinesis_endpoint()?;
    let name = unique("ember").replace('-', "_");
    rt().block_on(
        test_client(&endpoint)
            .create_stream()
            .stream_name(&name)
            .shard_count(shards)
            .send(),
    )
    .unwrap();
    Some((endpoint, name))
}

fn put(endpoint: &str, stream: &str, records: impl IntoIterator<Item = String>) {
    let client = test_client(endpoint);
    let rt = rt();
    for (i, data) in records.into_iter().enumerate() {
        rt.block_on(
            client
                .put_record()
                .stream_name(stream)
                .partition_key(format!("key-{}", i % 17))
                .data(aws_sdk_kinesis::primitives::Blob::new(data.into_bytes()))
                .send(),
        )
        .unwrap();
    }
}

fn params(endpoint: &str, stream: &str) -> KinesisParams {
    KinesisParams::new(stream)
        .endpoint(endpoint)
        .region("us-east-1")
        .credentials("test", "test")
}

type Seen = Arc<Mutex<(Vec<KinesisRecord>, usize)>>;

/// The settings of a context with 200 ms batches at `local[workers]`.
fn conf(workers: usize) -> StreamingConf {
    StreamingConf::new("kinesis", millis(200))
        .master(&format!("local[{workers}]"))
        .unwrap()
        .ui(None)
}

fn run(params: KinesisParams, workers: usize) -> (StreamingContext, Seen) {
    let (ssc, seen, _) = run_with(conf(workers), params);
    (ssc, seen)
}

/// The records of each batch, and each batch's size.
fn run_with(conf: StreamingConf, params: KinesisParams) -> (StreamingContext, Seen, Sizes) {
    let ssc = StreamingContext::new(conf).unwrap();
    let seen: Seen = Arc::default();
    let sizes: Sizes = Arc::default();
    let (sink, per_batch) = (seen.clone(), sizes.clone());
    ssc.define(move |s| {
        let (sink, per_batch) = (sink.clone(), per_batch.clone());
        create_stream(s, params.clone()).foreach_rdd(move |b, _| {
            per_batch.lock().unwrap().push(b.len());
            let mut seen = sink.lock().unwrap();
            seen.0.extend(b);
            seen.1 += 1;
        });
    })
    .unwrap();
    ssc.start().unwrap();
    (ssc, seen, sizes)
}

type Sizes = Arc<Mutex<Vec<usize>>>;

/// Waits (bounded) for `want` records, then three more batches; returns
/// the records' data, sorted.
fn data_when(seen: &Seen, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().0.len() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let batches = seen.lock().unwrap().1;
    while seen.lock().unwrap().1 < batches + 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut got: Vec<String> = seen
        .lock()
        .unwrap()
        .0
        .iter()
        .map(|r| r.data_str().into_owned())
        .collect();
    got.sort();
    got
}

fn batches_pass(seen: &Seen, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let now = seen.lock().unwrap().1;
    while seen.lock().unwrap().1 < now + n {
        assert!(Instant::now() < deadline, "no batches ran");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn texts(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn records_in_equal_records_out_at_one_and_three_workers() {
    for workers in [1, 3] {
        let Some((endpoint, name)) = stream(3) else {
            return;
        };
        // From the oldest record: those written before the start too.
        put(&endpoint, &name, texts("before", 150));
        let p = params(&endpoint, &name).initial_position(InitialPosition::TrimHorizon);
        let (ssc, seen) = run(p, workers);
        put(&endpoint, &name, texts("after", 150));
        let got = data_when(&seen, 300);
        ssc.stop(false).unwrap();
        let mut want = texts("before", 150);
        want.extend(texts("after", 150));
        assert_eq!(got, sorted(want), "workers = {workers}");
    }
}

#[test]
fn a_max_rate_caps_every_batch_and_loses_nothing() {
    let Some((endpoint, name)) = stream(3) else {
        return;
    };
    put(&endpoint, &name, texts("backlog", 240));
    // 150 records/s at 200 ms batches: at most 30 per batch, 10 per shard.
    let p = params(&endpoint, &name).initial_position(InitialPosition::TrimHorizon);
    let (ssc, seen, sizes) = run_with(conf(2).max_rate(150.0), p);
    let got = data_when(&seen, 240);
    ssc.stop(false).unwrap();
    assert_eq!(got, texts("backlog", 240));
    let sizes = sizes.lock().unwrap().clone();
    assert!(sizes.iter().all(|&n| n <= 30), "{sizes:?}");
    // 240 records at 30 a batch at most: eight batches or more.
    assert!(sizes.iter().filter(|&&n| n > 0).count() >= 8, "{sizes:?}");
}

#[test]
fn backpressure_holds_the_first_batch_to_its_initial_rate_and_loses_nothing() {
    let Some((endpoint, name)) = stream(2) else {
        return;
    };
    put(&endpoint, &name, texts("waiting", 200));
    // 100 records/s at 200 ms batches: the first batch holds 20 at most,
    // though 200 are waiting; later batches follow the measured rate.
    let p = params(&endpoint, &name).initial_position(InitialPosition::TrimHorizon);
    let conf = conf(2).backpressure(true).backpressure_initial_rate(100.0);
    let (ssc, seen, sizes) = run_with(conf, p);
    let got = data_when(&seen, 200);
    ssc.stop(false).unwrap();
    assert_eq!(got, texts("waiting", 200));
    let sizes = sizes.lock().unwrap().clone();
    assert!((1..=20).contains(&sizes[0]), "the first batch: {sizes:?}");
}

#[test]
fn latest_skips_what_was_there_before_the_start() {
    let Some((endpoint, name)) = stream(2) else {
        return;
    };
    put(&endpoint, &name, texts("old", 20));
    // Arrival times may be whole seconds: start a second later.
    std::thread::sleep(Duration::from_millis(1100));
    let (ssc, seen) = run(params(&endpoint, &name), 2);
    batches_pass(&seen, 2);
    put(&endpoint, &name, texts("new", 30));
    let got = data_when(&seen, 30);
    ssc.stop(false).unwrap();
    assert_eq!(got, sorted(texts("new", 30)));
}

#[test]
fn shards_split_and_merged_mid_run_lose_and_repeat_nothing() {
    let Some((endpoint, name)) = stream(2) else {
        return;
    };
    let p = params(&endpoint, &name).initial_position(InitialPosition::TrimHorizon);
    let (ssc, seen) = run(p, 2);
    put(&endpoint, &name, texts("one", 100));
    batches_pass(&seen, 2);
    let client = test_client(&endpoint);
    let rt = rt();
    let shards = rt
        .block_on(client.list_shards().stream_name(&name).send())
        .unwrap();
    let first = shards.shards()[0].clone();
    let range = first.hash_key_range().unwrap();
    let (lo, hi): (u128, u128) = (
        range.starting_hash_key().parse().unwrap(),
        range.ending_hash_key().parse().unwrap(),
    );
    rt.block_on(
        client
            .split_shard()
            .stream_name(&name)
            .shard_to_split(first.shard_id())
            .new_starting_hash_key((lo + (hi - lo) / 2).to_string())
            .send(),
    )
    .unwrap();
    put(&endpoint, &name, texts("two", 100));
    batches_pass(&seen, 3);
    // Merge the split's two children back.
    let shards = rt
        .block_on(client.list_shards().stream_name(&name).send())
        .unwrap();
    let children: Vec<String> = shards
        .shards()
        .iter()
        .filter(|s| s.parent_shard_id() == Some(first.shard_id()))
        .map(|s| s.shard_id().to_string())
        .collect();
    assert_eq!(children.len(), 2, "{shards:?}");
    rt.block_on(
        client
            .merge_shards()
            .stream_name(&name)
            .shard_to_merge(&children[0])
            .adjacent_shard_to_merge(&children[1])
            .send(),
    )
    .unwrap();
    put(&endpoint, &name, texts("three", 100));
    let got = data_when(&seen, 300);
    ssc.stop(false).unwrap();
    let mut want = texts("one", 100);
    want.extend(texts("two", 100));
    want.extend(texts("three", 100));
    assert_eq!(got, sorted(want));
}

#[test]
fn a_missing_stream_fails_the_start() {
    let Some(endpoint) = kinesis_endpoint() else {
        return;
    };
    let conf = StreamingConf::new("kinesis", millis(200)).ui(None);
    let ssc = StreamingContext::new(conf).unwrap();
    let p = params(&endpoint, "no_such_stream_here");
    ssc.define(move |s| create_stream(s, p.clone()).print())
        .unwrap();
    let err = ssc.start().expect_err("a missing stream fails the start");
    let text = err.to_string();
    assert!(matches!(err, ember_core::Error::Source { .. }), "{text}");
    assert!(
        text.contains("no_such_stream_here") && text.contains("ResourceNotFound"),
        "{text}"
    );
}

#[test]
fn refused_credentials_fail_the_start() {
    let Some(endpoint) = aws_refusing_endpoint() else {
        return;
    };
    let conf = StreamingConf::new("kinesis", millis(200)).ui(None);
    let ssc = StreamingContext::new(conf).unwrap();
    let p = params(&endpoint, "any_stream").credentials("AKIDUNKNOWN", "wrong");
    ssc.define(move |s| create_stream(s, p.clone()).print())
        .unwrap();
    let err = ssc.start().expect_err("refused credentials fail the start");
    let text = err.to_string();
    assert!(matches!(err, ember_core::Error::Source { .. }), "{text}");
    // The service's own word for it (moto: InvalidClientTokenId, real
    // Kinesis: UnrecognizedClientException), and what to check.
    assert!(
        text.contains("any_stream") && text.contains("credentials"),
        "{text}"
    );
    assert!(
        text.contains("ClientTokenId") || text.contains("UnrecognizedClient"),
        "{text}"
    );
}

#[test]
fn the_service_down_at_start_and_mid_run_loses_nothing() {
    let Some((endpoint, name)) = stream(2) else {
        return;
    };
    // Down at start: the start goes ahead (with a warning), and the shards
    // are listed once the service answers.
    let proxy = Proxy::start(endpoint.trim_start_matches("http://"), false);
    let p = params(&proxy.endpoint(), &name).initial_position(InitialPosition::TrimHorizon);
    let (ssc, seen) = run(p, 2);
    put(&endpoint, &name, texts("early", 40));
    batches_pass(&seen, 4);
    assert_eq!(
        seen.lock().unwrap().0.len(),
        0,
        "read through a proxy that is down"
    );
    proxy.up();
    assert_eq!(data_when(&seen, 40), sorted(texts("early", 40)));
    put(&endpoint, &name, texts("up", 40));
    assert_eq!(data_when(&seen, 80).len(), 80);
    proxy.down();
    put(&endpoint, &name, texts("down", 40));
    batches_pass(&seen, 4);
    proxy.up();
    let got = data_when(&seen, 120);
    ssc.stop(false).unwrap();
    let mut want = texts("early", 40);
    want.extend(texts("up", 40));
    want.extend(texts("down", 40));
    assert_eq!(got, sorted(want));
}

// ---------------------------------------------------------------------------
// Killed with SIGKILL and restarted with get_or_create.
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "EMBER_KINESIS_KILL_CHILD";

/// The child's program (a no-op in a normal run): running word counts of
/// the records, from the latest records on.
#[test]
fn child_program() {
    let Some(([endpoint, name], program)) = restartable_child::<2>(CHILD_ENV) else {
        return;
    };
    let conf = StreamingConf::new("kinesis-kill", millis(100))
        .checkpoint_interval(millis(100))
        .ui(None);
    program.run(conf, move |s| {
        create_stream(s, params(&endpoint, &name)).map(|r| r.data_str().into_owned())
    });
}

#[test]
fn killed_with_sigkill_every_record_is_counted_exactly_once() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let Some((endpoint, name)) = stream(2) else {
        return;
    };
    let mut program = Restartable::new("child_program", CHILD_ENV, format!("{endpoint}|{name}"));
    let mut child = program.spawn(2);
    await_first_output(&program.out);
    let words = ["alpha", "beta", "gamma", "delta", "eps"];
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..60usize {
        let line: Vec<&str> = (0..i % 5 + 1).map(|j| words[(i + 2 * j) % 5]).collect();
        for w in &line {
            *expected.entry(w.to_string()).or_default() += 1;
        }
        put(&endpoint, &name, [line.join(" ")]);
        std::thread::sleep(Duration::from_millis(30));
        if i % 15 == 10 {
            program.kill_and_restart(&mut child);
        }
    }
    let counts = settled_word_counts(&program.out, &expected);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(program.kills, 4);
    assert_eq!(counts, expected, "after {} kills", program.kills);
}
