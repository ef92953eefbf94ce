//! Throughput of `text_file_stream` over an S3-compatible server (moto),
//! and the per-batch cost of listing a large prefix: a benchmark, not a
//! test (ignored; see `bench/sources/README.md`):
//!
//! ```text
//! EMBER_TEST_S3_ENDPOINT=http://127.0.0.1:PORT cargo test --release -p ember-streaming \
//!   --features object-store --test object_store_throughput -- --ignored --nocapture
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember::prelude::*;
use ember_testkit::services::{create_bucket, put_object};

fn install(endpoint: &str) {
    ember::object_store::install_as(
        "s3-bench",
        "s3",
        [
            ("aws_endpoint", endpoint),
            ("aws_access_key_id", "t"),
            ("aws_secret_access_key", "t"),
            ("aws_region", "us-east-1"),
        ],
    );
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn lines_per_second_and_listing_cost_at_local_2() {
    const OBJECTS: usize = 100;
    const LINES: usize = 50_000;
    const CROWD: usize = 5_000;
    let endpoint = std::env::var("EMBER_TEST_S3_ENDPOINT").expect("EMBER_TEST_S3_ENDPOINT");
    install(&endpoint);
    let bucket = format!("ember-bench-{}", std::process::id());
    create_bucket(&endpoint, &bucket);
    // A crowded prefix: objects older than the start, listed every batch.
    let crowd_started = Instant::now();
    for i in 0..CROWD {
        put_object(&endpoint, &bucket, &format!("crowd/old-{i:05}"), b"x\n");
    }
    println!(
        "s3: {CROWD} objects put in {:.1} s",
        crowd_started.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_millis(1100));
    let text: String = (0..LINES)
        .map(|i| format!("line {i} with a few words to count\n"))
        .collect();
    for (prefix, objects) in [("crowd", 0usize), ("data", OBJECTS)] {
        let conf = StreamingConf::new("s3-throughput", seconds(1))
            .master("local[2]")
            .unwrap()
            .ui(None);
        let ssc = StreamingContext::new(conf).unwrap();
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let url = format!("s3-bench://{bucket}/{prefix}/");
        ssc.define(move |s| {
            let c = c.clone();
            s.text_file_stream(&url).count().foreach_rdd(move |n, _| {
                c.fetch_add(n.iter().sum::<u64>(), Ordering::Relaxed);
            });
        })
        .unwrap();
        ssc.start().unwrap();
        if objects == 0 {
            // Listing cost: the total delay (batch time to its end) of
            // batches that find nothing new; the listing is done when the
            // batch closes, before it is submitted.
            while ssc.completed_batches().len() < 8 {
                std::thread::sleep(Duration::from_millis(50));
            }
            let mut ms: Vec<u64> = ssc
                .completed_batches()
                .iter()
                .skip(2)
                .filter_map(|b| {
                    Some(
                        b.processing_end_time?
                            .saturating_sub(b.batch_time.milliseconds()),
                    )
                })
                .collect();
            ms.sort();
            println!(
                "s3: a batch over a prefix of {CROWD} old objects (nothing new) ends {} ms after \
                 its batch time (median of {}, max {}; the listing is 1 request per 1000 objects)",
                ms[ms.len() / 2],
                ms.len(),
                ms[ms.len() - 1]
            );
            // What a slow listing costs a new object there: the time from
            // its put to its batch's end.
            let mut waits = Vec::new();
            for i in 0..5 {
                let before = count.load(Ordering::Relaxed);
                let put = Instant::now();
                put_object(&endpoint, &bucket, &format!("crowd/new-{i}"), b"x\n");
                while count.load(Ordering::Relaxed) == before {
                    assert!(put.elapsed() < Duration::from_secs(60), "never counted");
                    std::thread::sleep(Duration::from_millis(5));
                }
                waits.push(put.elapsed().as_millis());
            }
            waits.sort();
            println!(
                "s3: a new object in that prefix is counted {} ms after its put (median of 5; \
                 {waits:?})",
                waits[2]
            );
            ssc.stop(false).unwrap();
            continue;
        }
        let wrote = Instant::now();
        for i in 0..objects {
            put_object(
                &endpoint,
                &bucket,
                &format!("{prefix}/part-{i:03}"),
                text.as_bytes(),
            );
        }
        let put_s = wrote.elapsed().as_secs_f64();
        let want = (objects * LINES) as u64;
        let deadline = Instant::now() + Duration::from_secs(300);
        while count.load(Ordering::Relaxed) < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = wrote.elapsed().as_secs_f64();
        ssc.stop(false).unwrap();
        let n = count.load(Ordering::Relaxed);
        println!(
            "s3: {n} lines ({:.0} MB in {objects} objects) counted {:.1} s after the first put \
             ({put_s:.1} s of it putting) = {:.0} lines/s; local[2], 1 s batches",
            (objects * text.len()) as f64 / 1e6,
            took,
            n as f64 / took
        );
        assert_eq!(n, want);
    }
}
