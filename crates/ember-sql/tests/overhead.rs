//! What SQL costs per batch: one batch of 1,000,000 words counted with
//! `table(..).sql(..)` and with `reduce_by_key`, at `local[2]`, on a
//! manual clock (the time from closing the batch to its outputs being
//! done). Not a test of behaviour; run it in release:
//!
//! ```text
//! cargo test --release -p ember-streaming-sql --test overhead -- --ignored --nocapture
//! ```

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ember_core::{seconds, ManualClock, StreamingConf, StreamingContext, Time};
use ember_sql::SqlStream;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct WordCount {
    word: String,
    total: i64,
}

/// 1 M words over a 10,000-word vocabulary, skewed as text is (word `i`
/// about `1/i` as frequent), from a fixed-seed generator.
fn words() -> Vec<String> {
    let mut state = 7u64;
    (0..1_000_000)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((state >> 11) as f64) / ((1u64 << 53) as f64);
            let rank = (10_000f64.powf(u)) as u64;
            format!("w{rank}")
        })
        .collect()
}

/// Milliseconds from closing the batch to its output being done, and the
/// number of distinct words the output held.
fn run(sql: bool, input: Vec<String>) -> (f64, usize) {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("sql-overhead", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let distinct = Arc::new(Mutex::new(0));
    let out = distinct.clone();
    ssc.define(move |s| {
        let words = s.queue_stream(vec![input.clone()], true, None);
        let out = out.clone();
        if sql {
            words
                .table("words")
                .sql::<WordCount>(
                    "SELECT value AS word, count(*) AS total FROM words GROUP BY value",
                )
                .foreach_rdd(move |b, _| *out.lock().unwrap() = b.len());
        } else {
            words
                .map(|w| (w, 1i64))
                .reduce_by_key(|a, b| a + b)
                .foreach_rdd(move |b, _| *out.lock().unwrap() = b.len());
        }
    })
    .unwrap();
    ssc.start().unwrap();
    let started = Instant::now();
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(1000)).unwrap();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    ssc.stop(false).unwrap();
    let n = *distinct.lock().unwrap();
    (ms, n)
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn sql_word_count_against_reduce_by_key() {
    let input = words();
    let mut sql = Vec::new();
    let mut reduce = Vec::new();
    // Interleaved, after one untimed run of each.
    run(true, input.clone());
    run(false, input.clone());
    for _ in 0..7 {
        let (ms, a) = run(true, input.clone());
        sql.push(ms);
        let (ms, b) = run(false, input.clone());
        reduce.push(ms);
        assert_eq!(a, b, "both count the same distinct words");
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!(
        "1,000,000 words in one batch at local[2]: sql {:.0} ms, reduce_by_key {:.0} ms (medians of 7; sql {:?}, reduce {:?})",
        median(&mut sql),
        median(&mut reduce),
        sql.iter().map(|x| x.round()).collect::<Vec<_>>(),
        reduce.iter().map(|x| x.round()).collect::<Vec<_>>()
    );
}
