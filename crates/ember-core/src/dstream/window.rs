//! Sliding windows, with Spark's exact edges.
//!
//! A window of `length` sliding by `slide` (both multiples of the parent
//! stream's slide) produces a batch at every time `t = zero + k·slide`
//! holding the parent batches with times in `(t - length, t]`. The first
//! windows are partial: with 1 s batches, a 3 s window and a 2 s slide, the
//! first output, at 2 s, holds the batches of 1 s and 2 s.
//!
//! The reducing windows with an inverse function are incremental: they keep
//! one partial per key for each batch still inside the window, and move from
//! one window to the next by removing the partials of the batches leaving
//! (with the inverse function) and adding those entering — never re-reducing
//! the whole window. Their memory is bounded by keys × batches in the window.
//!
//! Two deliberate differences from Spark:
//!
//! - When the slide is longer than the window, Spark's inverse path
//!   subtracts batches that were never in the previous window and adds
//!   batches outside the current one, giving wrong sums. ember follows the
//!   definition: the batches leaving are exactly the previous window's, and
//!   those entering exactly the current window's.
//! - With a filter function, a key that was filtered out while it still had
//!   values in the window makes Spark fail ("Neither previous window has
//!   value for key, nor new values found") when those values leave or new
//!   ones arrive. ember recomputes such a key from the batches still in the
//!   window.

use std::collections::VecDeque;
use std::hash::Hash;
use std::rc::Rc;
use std::time::Duration;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::empty;

use super::fuse::Lineage;
use super::DStream;
use crate::error::Error;
use crate::hash::{route, FxHashMap};
use crate::time::show_ms;
use crate::Data;

/// Per-batch partials of one key space, oldest first.
type Partials<K, V> = VecDeque<(u64, FxHashMap<K, V>)>;

/// What an incremental window checkpoints: partials, the window, its time.
type IncrementalState<K, V> = (Partials<K, V>, FxHashMap<K, V>, Option<u64>);

/// Merges restored parts of per-batch records into one deque by batch time.
fn merge_by_time<T>(
    parts: impl Iterator<Item = VecDeque<(u64, Vec<T>)>>,
) -> VecDeque<(u64, Vec<T>)> {
    let mut merged: std::collections::BTreeMap<u64, Vec<T>> = std::collections::BTreeMap::new();
    for part in parts {
        for (t, mut records) in part {
            merged.entry(t).or_default().append(&mut records);
        }
    }
    merged.into_iter().collect()
}

impl<'s, T: Data> DStream<'s, T> {
    /// Checks a window's durations against this stream's slide, as Spark
    /// does when the window is defined; `None` after recording the error.
    fn window_params(
        &self,
        length: Duration,
        slide: Option<Duration>,
        op: &str,
    ) -> Option<(u64, u64)> {
        let parent = self.slide;
        let ms = |d: Duration, what: &str| match crate::duration::whole_millis(d, what) {
            Ok(v) => Some(v),
            Err(e) => {
                self.ctx
                    .definition_error(Error::graph(format!("{op}: {e}")));
                None
            }
        };
        let length_ms = ms(length, "the window duration")?;
        let slide_ms = match slide {
            Some(s) => ms(s, "the slide duration")?,
            None => parent,
        };
        if length_ms % parent != 0 {
            self.ctx.definition_error(Error::graph(format!(
                "{op}: the window duration of the windowed DStream ({}) must be a multiple of the \
                 slide duration of the parent DStream ({})",
                show_ms(length_ms),
                show_ms(parent)
            )));
            return None;
        }
        if slide_ms % parent != 0 {
            self.ctx.definition_error(Error::graph(format!(
                "{op}: the slide duration of the windowed DStream ({}) must be a multiple of the \
                 slide duration of the parent DStream ({})",
                show_ms(slide_ms),
                show_ms(parent)
            )));
            return None;
        }
        Some((length_ms, slide_ms))
    }

    /// A stream that failed definition: empty, so `start` can report the error.
    fn failed<U: Data>(&self) -> DStream<'s, U> {
        self.with(empty(self.lineage.scope()))
    }

    /// The slide-time operator windows are built on: see
    /// [`fold_slides`](Self::fold_slides); the result slides by `slide`.
    fn slide_fold<U, S, I, F, E>(
        &self,
        slide: u64,
        name: &str,
        init: I,
        fold: F,
        emit: E,
    ) -> DStream<'s, U>
    where
        U: Data,
        S: 'static,
        I: FnMut() -> S + 'static,
        F: FnMut(&mut S, &mut Vec<T>) + 'static,
        E: FnMut(u64, Vec<(u64, S)>, &mut Vec<U>) + 'static,
    {
        let stream = self.fold_slides(Pipeline, name, slide, init, fold, emit);
        DStream::new(stream, slide, self.ctx.clone())
    }

    /// The records of the last `length` of batches, every `slide` (Spark's
    /// `window`); `slide` defaults to this stream's slide. A gathered window
    /// (`print`, `foreach_rdd`, `transform`) lists its batches in Spark's
    /// order: oldest first, each in partition order, at any parallelism,
    /// and record-by-record steps after the window (`map`, `filter`,
    /// `flat_map`) keep that order.
    ///
    /// # Errors
    ///
    /// `length` or `slide` not a multiple of this stream's slide fails
    /// `start` with [`Error::InvalidGraph`] naming both durations.
    ///
    /// # Examples
    ///
    /// ```
    /// use ember_core::seconds;
    /// // 1 s batches; a 3 s window every 2 s: outputs at 2 s (partial) and 4 s.
    /// let input = vec![vec![1], vec![2], vec![3], vec![4]];
    /// let out = ember_core::testing::run_local(1, input, |s| s.window(seconds(3), seconds(2)));
    /// assert_eq!(out, [vec![1, 2], vec![2, 3, 4]]);
    /// ```
    pub fn window(&self, length: Duration, slide: impl Into<Option<Duration>>) -> DStream<'s, T> {
        let Some((length, slide)) = self.window_params(length, slide.into(), "window") else {
            return self.failed();
        };
        match &self.ordered {
            // A window of a window: each record keeps its place within the
            // inner window, under its place in this one.
            Some(inner) => {
                let keyed = self.with_lineage(inner.lineage.clone());
                keyed.window_keyed(length, slide, self.slide, inner.range, |(k, x)| (*k, x))
            }
            None => self.window_keyed(length, slide, self.slide, 1, |x| (0, x)),
        }
    }

    /// [`window`](Self::window) of records `R` that are, or carry, the
    /// output records `U`: `split` gives a record's order key among the
    /// `range` of its batch, and the record. The output's key is the batch's
    /// place in the window (oldest first, every `parent` ms) times `range`
    /// plus that key.
    fn window_keyed<U: Data>(
        &self,
        length: u64,
        slide: u64,
        parent: u64,
        range: u64,
        split: impl Fn(&T) -> (u64, &U) + 'static,
    ) -> DStream<'s, U> {
        // Records are not keyed by value: a resumed worker takes the parts
        // of the old workers with its index modulo the worker count.
        let checkpoint = self.ctx.stateful("window", slide);
        let (index, peers) = checkpoint.worker();
        let mut kept: VecDeque<(u64, Vec<T>)> = merge_by_time(
            checkpoint
                .restored::<VecDeque<(u64, Vec<T>)>>()
                .into_iter()
                .enumerate()
                .filter(|(j, _)| *j as u64 % peers == index)
                .map(|(_, part)| part),
        );
        let stream = self.fold_slides(
            Pipeline,
            "Window",
            slide,
            Vec::new,
            |acc: &mut Vec<T>, data| acc.append(data),
            move |t, arrived, out: &mut Vec<(u64, U)>| {
                kept.extend(arrived);
                while kept.front().is_some_and(|(bt, _)| *bt + length <= t) {
                    kept.pop_front();
                }
                for (bt, records) in &kept {
                    // `bt` is in (t - length, t]: places 0 (oldest) and up.
                    let place = (bt + length - t) / parent - 1;
                    out.extend(records.iter().map(|r| {
                        let (key, x) = split(r);
                        (place.saturating_mul(range).saturating_add(key), x.clone())
                    }));
                }
                checkpoint.save(t, || &kept);
            },
        );
        let places = length / parent;
        self.with_ordered(Lineage::Stream(stream), places.saturating_mul(range), slide)
    }

    /// The number of records in each window (Spark's `countByWindow`).
    ///
    /// As in Spark this is computed incrementally through
    /// `reduce_by_key_and_window` with an inverse, so it prints nothing until
    /// the first record arrives, and `0` for an empty window after that.
    #[doc(alias = "countByWindow")]
    pub fn count_by_window(
        &self,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, u64> {
        self.map(|_| 1i64)
            .reduce_by_window_inv(|a, b| a + b, |a, b| a - b, length, slide)
            .map(|n| n.max(0) as u64)
    }

    /// Reduces each window to one record (Spark's `reduceByWindow`): each
    /// batch is reduced, then the window's batch results. Nothing for an
    /// empty window.
    #[doc(alias = "reduceByWindow")]
    pub fn reduce_by_window(
        &self,
        f: impl Fn(T, T) -> T + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, T> {
        let f = Rc::new(f);
        let g = f.clone();
        self.reduce(move |a, b| f(a, b))
            .window(length, slide)
            .reduce(move |a, b| g(a, b))
    }

    /// [`reduce_by_window`](Self::reduce_by_window), incrementally with an
    /// inverse function: `inv(f(a, b), b) == a`. As in Spark, once a record
    /// has been seen the window keeps a value (e.g. `0`) when it empties.
    #[doc(alias = "reduceByWindow")]
    pub fn reduce_by_window_inv(
        &self,
        f: impl Fn(T, T) -> T + 'static,
        inv: impl Fn(T, T) -> T + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, T> {
        self.map(|x| (0u8, x))
            .reduce_by_key_and_window_inv(f, inv, length, slide)
            .map(|(_, v)| v)
    }
}

impl<'s, K, V> DStream<'s, (K, V)>
where
    K: Data + Hash + Eq,
    V: Data,
{
    /// Combines the values of each key over each window (Spark's
    /// `reduceByKeyAndWindow` without an inverse): per batch, then over the
    /// window's batch results.
    ///
    /// # Examples
    ///
    /// ```
    /// use ember_core::seconds;
    /// let batch = |ws: &[&str]| ws.iter().map(|w| (w.to_string(), 1u64)).collect::<Vec<_>>();
    /// let input = vec![batch(&["a", "b"]), batch(&["a"]), batch(&[])];
    /// let mut out = ember_core::testing::run_local(3, input, |s| {
    ///     s.reduce_by_key_and_window(|a, b| a + b, seconds(2), seconds(1))
    /// });
    /// out.iter_mut().for_each(|b| b.sort());
    /// let w = |k: &str, n| (k.to_string(), n);
    /// assert_eq!(out, [vec![w("a", 1), w("b", 1)], vec![w("a", 2), w("b", 1)], vec![w("a", 1)]]);
    /// ```
    #[doc(alias = "reduceByKeyAndWindow")]
    pub fn reduce_by_key_and_window(
        &self,
        f: impl Fn(V, V) -> V + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (K, V)> {
        let f = Rc::new(f);
        let g = f.clone();
        self.reduce_by_key(move |a, b| f(a, b)).window_of_reduced(
            move |a, b| g(a, b),
            length,
            slide,
        )
    }

    /// [`reduce_by_key_and_window`](Self::reduce_by_key_and_window) on a
    /// stream that already holds one value per key per batch (the output of
    /// a `reduce_by_key` with `f`): the window's batches, reduced by key.
    pub(crate) fn window_of_reduced(
        &self,
        f: impl Fn(V, V) -> V + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (K, V)> {
        self.window(length, slide).reduce_by_key(f)
    }

    /// [`reduce_by_key_and_window`](Self::reduce_by_key_and_window),
    /// incrementally with an inverse function (`inv(f(a, b), b) == a`).
    /// As in Spark, a key whose value returns to its zero stays in the
    /// output; use [`reduce_by_key_and_window_inv_filter`](Self::reduce_by_key_and_window_inv_filter)
    /// to drop such keys.
    #[doc(alias = "reduceByKeyAndWindow")]
    pub fn reduce_by_key_and_window_inv(
        &self,
        f: impl Fn(V, V) -> V + 'static,
        inv: impl Fn(V, V) -> V + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (K, V)> {
        self.incremental_window(f, inv, None::<fn(&(K, V)) -> bool>, length, slide.into())
    }

    /// [`reduce_by_key_and_window_inv`](Self::reduce_by_key_and_window_inv)
    /// keeping only the keys for which `keep` is true (Spark's `filterFunc`):
    /// the others leave the window's state.
    #[doc(alias = "reduceByKeyAndWindow")]
    pub fn reduce_by_key_and_window_inv_filter(
        &self,
        f: impl Fn(V, V) -> V + 'static,
        inv: impl Fn(V, V) -> V + 'static,
        keep: impl Fn(&(K, V)) -> bool + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (K, V)> {
        self.incremental_window(f, inv, Some(keep), length, slide.into())
    }

    fn incremental_window<F, G, P>(
        &self,
        f: F,
        inv: G,
        keep: Option<P>,
        length: Duration,
        slide: Option<Duration>,
    ) -> DStream<'s, (K, V)>
    where
        F: Fn(V, V) -> V + 'static,
        G: Fn(V, V) -> V + 'static,
        P: Fn(&(K, V)) -> bool + 'static,
    {
        let f = Rc::new(f);
        let g = f.clone();
        // One partial per key per batch, on the key's worker.
        let per_batch = self.reduce_by_key(move |a, b| g(a, b));
        per_batch.incremental_window_of_reduced(f, inv, keep, length, slide)
    }

    /// [`reduce_by_key_and_window_inv_filter`](Self::reduce_by_key_and_window_inv_filter)
    /// on a stream that already holds one value per key per batch, each on
    /// its key's worker (the output of a `reduce_by_key` with `f`).
    pub(crate) fn incremental_window_of_reduced<G, P>(
        &self,
        f: Rc<dyn Fn(V, V) -> V>,
        inv: G,
        keep: Option<P>,
        length: Duration,
        slide: Option<Duration>,
    ) -> DStream<'s, (K, V)>
    where
        G: Fn(V, V) -> V + 'static,
        P: Fn(&(K, V)) -> bool + 'static,
    {
        let Some((length, slide)) = self.window_params(length, slide, "reduce_by_key_and_window")
        else {
            return self.failed();
        };
        let checkpoint = self.ctx.stateful("reduce_by_key_and_window", slide);
        let (index, peers) = checkpoint.worker();
        let mine = move |k: &K| route(k) % peers == index;
        let mut batches: Partials<K, V> = VecDeque::new();
        let mut window: FxHashMap<K, V> = FxHashMap::default();
        let mut previous: Option<u64> = None;
        for (old_batches, old_window, old_previous) in
            checkpoint.restored::<IncrementalState<K, V>>()
        {
            for (bt, partials) in old_batches {
                let mine: FxHashMap<K, V> = partials.into_iter().filter(|(k, _)| mine(k)).collect();
                match batches.iter_mut().find(|(t, _)| *t == bt) {
                    Some((_, existing)) => existing.extend(mine),
                    None => batches.push_back((bt, mine)),
                }
            }
            window.extend(old_window.into_iter().filter(|(k, _)| mine(k)));
            previous = previous.max(old_previous);
        }
        batches.make_contiguous().sort_by_key(|(t, _)| *t);
        let h = f.clone();
        self.slide_fold(
            slide,
            "ReduceByKeyAndWindow",
            FxHashMap::default,
            move |acc: &mut FxHashMap<K, V>, data: &mut Vec<(K, V)>| {
                for (k, v) in data.drain(..) {
                    match acc.remove(&k) {
                        Some(a) => acc.insert(k, h(a, v)),
                        None => acc.insert(k, v),
                    };
                }
            },
            move |t, arrived, out| {
                batches.extend(arrived);
                // The previous window was (p - length, p]; this one is (t - length, t].
                let p = previous.unwrap_or(t.saturating_sub(slide));
                let leaving = |bt: u64| bt + length > p && bt + length <= t && bt <= p;
                let entering = |bt: u64| bt > p && bt + length > t;
                let mut old: FxHashMap<K, V> = FxHashMap::default();
                let mut new: FxHashMap<K, V> = FxHashMap::default();
                for (bt, partials) in &batches {
                    let target = if leaving(*bt) {
                        &mut old
                    } else if entering(*bt) {
                        &mut new
                    } else {
                        continue;
                    };
                    for (k, v) in partials {
                        let merged = match target.remove(k) {
                            Some(a) => f(a, v.clone()),
                            None => v.clone(),
                        };
                        target.insert(k.clone(), merged);
                    }
                }
                for (k, o) in old {
                    match window.remove(&k) {
                        Some(w) => {
                            window.insert(k, inv(w, o));
                        }
                        // Filtered out earlier: recomputed below from the window.
                        None if keep.is_some() => {
                            new.entry(k).or_insert(o);
                        }
                        None => {}
                    }
                }
                for (k, n) in new {
                    match window.remove(&k) {
                        Some(w) => {
                            window.insert(k, f(w, n));
                        }
                        None => {
                            let value = if keep.is_some() {
                                // It may still have values from batches filtered before.
                                let mut acc: Option<V> = None;
                                for (bt, partials) in &batches {
                                    if *bt + length > t && *bt <= t {
                                        if let Some(v) = partials.get(&k) {
                                            acc = Some(match acc {
                                                Some(a) => f(a, v.clone()),
                                                None => v.clone(),
                                            });
                                        }
                                    }
                                }
                                acc
                            } else {
                                Some(n)
                            };
                            if let Some(v) = value {
                                window.insert(k, v);
                            }
                        }
                    }
                }
                if let Some(keep) = &keep {
                    window.retain(|k, v| keep(&(k.clone(), v.clone())));
                }
                out.extend(window.iter().map(|(k, v)| (k.clone(), v.clone())));
                // Batches at or before t - length never count again.
                while batches.front().is_some_and(|(bt, _)| *bt + length <= t) {
                    batches.pop_front();
                }
                previous = Some(t);
                checkpoint.save(t, || (&batches, &window, previous));
            },
        )
    }

    /// The values of each key over each window (Spark's `groupByKeyAndWindow`),
    /// older batches' values first.
    #[doc(alias = "groupByKeyAndWindow")]
    pub fn group_by_key_and_window(
        &self,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (K, Vec<V>)> {
        self.group_by_key()
            .window(length, slide)
            .reduce_by_key(|mut a, b| {
                a.extend(b);
                a
            })
    }
}

impl<'s, T> DStream<'s, T>
where
    T: Data + Hash + Eq,
{
    /// The count of each distinct record over each window (Spark's
    /// `countByValueAndWindow`), incrementally; records whose count drops
    /// to zero leave.
    #[doc(alias = "countByValueAndWindow")]
    pub fn count_by_value_and_window(
        &self,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (T, u64)> {
        self.map(|x| (x, 1i64))
            .reduce_by_key_and_window_inv_filter(
                |a, b| a + b,
                |a, b| a - b,
                |(_, n)| *n != 0,
                length,
                slide,
            )
            .map(|(x, n)| (x, n.max(0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use crate::seconds;
    use crate::testing::{collect_into, run_batches, run_local};

    fn input() -> Vec<Vec<u32>> {
        vec![
            vec![1, 2, 3, 4, 5],
            vec![6, 7],
            vec![],
            vec![8, 9, 10],
            vec![11],
        ]
    }

    /// Spark's window at `t` (1-based batch index): the batches in
    /// `(t - length, t]`, oldest first, each in its own order.
    fn model(batches: &[Vec<u32>], length: usize, t: usize) -> Vec<u32> {
        let from = t.saturating_sub(length);
        batches[from..t].iter().flatten().copied().collect()
    }

    #[test]
    fn a_gathered_window_lists_its_batches_oldest_first_at_any_parallelism() {
        for workers in 1..=4 {
            let out = run_local(workers, input(), |s| s.window(seconds(3), seconds(1)));
            let want: Vec<Vec<u32>> = (1..=5).map(|t| model(&input(), 3, t)).collect();
            assert_eq!(out, want, "local[{workers}]");

            // Record-by-record steps after the window keep its order.
            let out = run_local(workers, input(), |s| {
                s.window(seconds(3), seconds(1))
                    .filter(|x| x % 3 != 0)
                    .flat_map(|x| [x, x * 100])
            });
            let want: Vec<Vec<u32>> = (1..=5)
                .map(|t| {
                    let w = model(&input(), 3, t);
                    w.into_iter()
                        .filter(|x| x % 3 != 0)
                        .flat_map(|x| [x, x * 100])
                        .collect()
                })
                .collect();
            assert_eq!(
                out, want,
                "filter and flat_map after a window at local[{workers}]"
            );
        }
    }

    #[test]
    fn a_window_of_a_window_nests_the_inner_windows_in_order() {
        for workers in [1, 2, 3] {
            // Inner windows of 2 batches every batch; the outer one holds
            // the last 2 inner windows every 2 batches.
            let out = run_local(workers, input(), |s| {
                s.window(seconds(2), seconds(1))
                    .window(seconds(2), seconds(2))
            });
            let inner = |t: usize| model(&input(), 2, t);
            let want: Vec<Vec<u32>> = [2, 4]
                .iter()
                .map(|&t| [inner(t - 1), inner(t)].concat())
                .collect();
            assert_eq!(out, want, "local[{workers}]");
        }
    }

    #[test]
    fn print_of_a_window_shows_spark_order_and_its_first_records() {
        for workers in [2, 3] {
            let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let sink = text.clone();
            let _: Vec<Vec<u32>> = run_batches(workers, 2, move |s, out| {
                let sink = sink.clone();
                let q = s.queue_stream(input(), true, None);
                q.window(seconds(2), seconds(2))
                    .print_with(4, move |t| sink.lock().unwrap().push_str(t));
                collect_into(&q, out);
            });
            let dashes = "-".repeat(43);
            assert_eq!(
                *text.lock().unwrap(),
                format!("{dashes}\nTime: 2000 ms\n{dashes}\n1\n2\n3\n4\n...\n\n"),
                "local[{workers}]"
            );
        }
    }
}
