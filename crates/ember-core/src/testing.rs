//! Test support: run an operation over queued batches on a manual clock and
//! collect each batch's output. Nothing sleeps: the clock moves one batch at
//! a time and each batch is awaited until every output has finished it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::{DStream, Data, ManualClock, StreamingConf, StreamingContext, StreamingScope, Time};

/// The batch interval the helpers use: 1 s, so batch `i` (from 1) is at `i * 1000` ms.
pub const INTERVAL_MS: u64 = 1000;

/// Collects every batch a stream produces, keyed by batch time.
pub type Collected<U> = Arc<Mutex<BTreeMap<Time, Vec<U>>>>;

/// Registers a `foreach_rdd` that stores each batch (empty ones too) in `into`.
pub fn collect_into<U: Data>(stream: &DStream<'_, U>, into: &Collected<U>) {
    let into = into.clone();
    stream.foreach_rdd(move |batch, time| {
        into.lock().expect("collect lock").insert(time, batch);
    });
}

/// Runs `define` on `workers` worker threads for `batches` batches of a
/// manual clock and returns what `out` collected, one `Vec` per output time
/// in time order: every batch, or every slide for a windowed stream.
///
/// # Panics
///
/// When the context fails: this is for tests.
pub fn run_batches<U, F>(workers: usize, batches: usize, define: F) -> Vec<Vec<U>>
where
    U: Data,
    F: for<'s> Fn(&StreamingScope<'s>, &Collected<U>) + Send + Sync + 'static,
{
    let clock = ManualClock::new();
    let conf = StreamingConf::new("test", crate::millis(INTERVAL_MS))
        .master(&format!("local[{workers}]"))
        .expect("valid master");
    let ssc = StreamingContext::with_clock(conf, clock.clone()).expect("valid conf");
    let out: Collected<U> = Arc::default();
    let sink = out.clone();
    ssc.define(move |s| define(s, &sink)).expect("define");
    ssc.start().expect("start");
    for i in 1..=batches as u64 {
        clock.advance(crate::millis(INTERVAL_MS));
        ssc.await_batch(Time::from_millis(i * INTERVAL_MS))
            .expect("batch completes");
    }
    ssc.stop(false).expect("stop");
    let collected = std::mem::take(&mut *out.lock().expect("collect lock"));
    collected.into_values().collect()
}

/// Runs `op` over a queue stream of `input` (one batch per element) on
/// `workers` workers and returns its output per batch.
///
/// # Examples
///
/// ```
/// let out = ember_core::testing::run_local(2, vec![vec![1, 2, 3], vec![4]], |s| s.filter(|x| x % 2 == 1));
/// assert_eq!(out, [vec![1, 3], vec![]]);
/// ```
pub fn run_local<T, U, F>(workers: usize, input: Vec<Vec<T>>, op: F) -> Vec<Vec<U>>
where
    T: Data + Sync,
    U: Data,
    F: for<'s> Fn(DStream<'s, T>) -> DStream<'s, U> + Send + Sync + 'static,
{
    let n = input.len();
    run_batches(workers, n, move |s, out| {
        let stream = s.queue_stream(input.clone(), true, None);
        collect_into(&op(stream), out);
    })
}

/// Like [`run_local`] with two queued inputs of the same length.
pub fn run_local2<T, W, U, F>(
    workers: usize,
    left: Vec<Vec<T>>,
    right: Vec<Vec<W>>,
    op: F,
) -> Vec<Vec<U>>
where
    T: Data + Sync,
    W: Data + Sync,
    U: Data,
    F: for<'s> Fn(DStream<'s, T>, DStream<'s, W>) -> DStream<'s, U> + Send + Sync + 'static,
{
    let n = left.len().max(right.len());
    run_batches(workers, n, move |s, out| {
        let a = s.queue_stream(left.clone(), true, None);
        let b = s.queue_stream(right.clone(), true, None);
        collect_into(&op(a, b), out);
    })
}
