//! Throughput of the Kinesis stream against moto's Kinesis API: a
//! benchmark, not a test (ignored; see `bench/sources/README.md`):
//!
//! ```text
//! EMBER_TEST_KINESIS_ENDPOINT=http://127.0.0.1:PORT \
//!   cargo test --release -p ember-streaming-kinesis --test throughput -- --ignored --nocapture
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_core::{seconds, StreamingConf, StreamingContext};
use ember_kinesis::{create_stream, InitialPosition, KinesisParams};

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn kinesis_records_per_second_at_local_2() {
    const SHARDS: i32 = 4;
    const RECORDS: usize = 120_000;
    let endpoint =
        std::env::var("EMBER_TEST_KINESIS_ENDPOINT").expect("EMBER_TEST_KINESIS_ENDPOINT");
    let name = format!("ember_bench_{}", std::process::id());
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
        .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .endpoint_url(&endpoint)
        .build();
    let client = aws_sdk_kinesis::Client::from_conf(config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(
        client
            .create_stream()
            .stream_name(&name)
            .shard_count(SHARDS)
            .send(),
    )
    .unwrap();
    let put_started = Instant::now();
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(500) {
        let entries = chunk
            .iter()
            .map(|i| {
                aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                    .partition_key(format!("k{i}"))
                    .data(aws_sdk_kinesis::primitives::Blob::new(format!(
                        "record number {i} of the bench"
                    )))
                    .build()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        rt.block_on(
            client
                .put_records()
                .stream_name(&name)
                .set_records(Some(entries))
                .send(),
        )
        .unwrap();
    }
    println!(
        "kinesis: {RECORDS} records put in {:.1} s",
        put_started.elapsed().as_secs_f64()
    );
    let conf = StreamingConf::new("kinesis-throughput", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::new(conf).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let params = KinesisParams::new(&name)
        .endpoint(&endpoint)
        .region("us-east-1")
        .credentials("t", "t")
        .initial_position(InitialPosition::TrimHorizon);
    ssc.define(move |s| {
        let c = c.clone();
        create_stream(s, params.clone())
            .count()
            .foreach_rdd(move |n, _| {
                c.fetch_add(n.iter().sum::<u64>(), Ordering::Relaxed);
            });
    })
    .unwrap();
    let started = Instant::now();
    ssc.start().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while count.load(Ordering::Relaxed) < RECORDS as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    ssc.stop(false).unwrap();
    let n = count.load(Ordering::Relaxed);
    println!(
        "kinesis, local[2], 1 s batches, {SHARDS} shards, 10000 records per GetRecords: {n} \
         records in {:.1} s = {:.0} records/s (moto's server bounds this)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(n, RECORDS as u64);
}
