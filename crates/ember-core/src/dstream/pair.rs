//! Keyed operations on `DStream<(K, V)>`: Spark's `PairDStreamFunctions`.
//!
//! Keys are routed to workers by [`route`](crate::hash::route), a hash that
//! is the same in every process. Operations that allow it combine values on
//! each worker before the exchange (one partial per key per worker per batch).

use std::collections::hash_map::Entry;
use std::hash::Hash;

use timely::dataflow::channels::pact::{Exchange, Pipeline};

use super::DStream;
use crate::hash::{route, FxHashMap};
use crate::Data;

/// Values of both sides of a cogroup, per key, in arrival order.
type Groups<K, V, W> = FxHashMap<K, (Vec<V>, Vec<W>)>;

// The result types spell out Spark's shapes (`(K, (V, Option<W>))`, ...): an
// alias would hide exactly what a Spark user looks for.
#[allow(clippy::type_complexity)]
impl<'s, K, V> DStream<'s, (K, V)>
where
    K: Data + Hash + Eq,
    V: Data,
{
    /// Applies `f` to each value, keeping its key. Pipelined.
    #[doc(alias = "mapValues")]
    pub fn map_values<U: Data>(&self, mut f: impl FnMut(V) -> U + 'static) -> DStream<'s, (K, U)> {
        self.map(move |(k, v)| (k, f(v)))
    }

    /// Applies `f` to each value and pairs every output with the key. Pipelined.
    #[doc(alias = "flatMapValues")]
    pub fn flat_map_values<I>(
        &self,
        mut f: impl FnMut(V) -> I + 'static,
    ) -> DStream<'s, (K, I::Item)>
    where
        I: IntoIterator,
        I::Item: Data,
    {
        self.flat_map(move |(k, v)| {
            let k2 = k;
            f(v).into_iter()
                .map(move |u| (k2.clone(), u))
                .collect::<Vec<_>>()
        })
    }

    /// Combines the values of each key in each batch with an associative and
    /// commutative function. Combines on each worker first, then exchanges
    /// one partial per key.
    ///
    /// # Examples
    ///
    /// ```
    /// let words = ["a", "b", "a"].map(String::from).to_vec();
    /// let mut out = ember_core::testing::run_local(3, vec![words], |s| {
    ///     s.map(|w| (w, 1)).reduce_by_key(|a, b| a + b)
    /// });
    /// out[0].sort();
    /// assert_eq!(out[0], [("a".to_string(), 2), ("b".to_string(), 1)]);
    /// ```
    #[doc(alias = "reduceByKey")]
    pub fn reduce_by_key(&self, f: impl Fn(V, V) -> V + 'static) -> DStream<'s, (K, V)> {
        let f = std::rc::Rc::new(f);
        let g = f.clone();
        self.combine_by_key(|v| v, move |a, v| f(a, v), move |a, b| g(a, b))
    }

    /// Spark's `combineByKey`: per batch, turn each key's first value into a
    /// combiner with `create`, add further values with `merge_value`, and
    /// merge combiners from different workers with `merge_combiners`.
    #[doc(alias = "combineByKey")]
    pub fn combine_by_key<C: Data>(
        &self,
        create: impl Fn(V) -> C + 'static,
        merge_value: impl Fn(C, V) -> C + 'static,
        merge_combiners: impl Fn(C, C) -> C + 'static,
    ) -> DStream<'s, (K, C)> {
        let spare = SpareSlots::new();
        let partial = self.batch_fold(
            Pipeline,
            "CombinePartial",
            spare.init(),
            move |acc: &mut FxHashMap<K, Option<C>>, data: &mut Vec<(K, V)>| {
                for (k, v) in data.drain(..) {
                    merge_into(acc, k, v, &create, &merge_value);
                }
            },
            spare.emit(),
        );
        self.with(partial).merge_partials(merge_combiners)
    }

    /// The second half of a map-side combine: this stream holds at most one
    /// partial per key per worker; each goes to its key's worker, where
    /// `merge` folds the partials of a key into one.
    pub(crate) fn merge_partials(&self, merge: impl Fn(V, V) -> V + 'static) -> Self {
        let spare = SpareSlots::new();
        self.with(self.batch_fold(
            Exchange::new(|(k, _): &(K, V)| route(k)),
            "Combine",
            spare.init(),
            move |acc: &mut FxHashMap<K, Option<V>>, data: &mut Vec<(K, V)>| {
                for (k, c) in data.drain(..) {
                    merge_into(acc, k, c, |c| c, &merge);
                }
            },
            spare.emit(),
        ))
    }

    /// All values of each key in each batch, in arrival order (no combining
    /// before the exchange, as in Spark).
    #[doc(alias = "groupByKey")]
    pub fn group_by_key(&self) -> DStream<'s, (K, Vec<V>)> {
        self.with(self.batch_fold(
            Exchange::new(|(k, _): &(K, V)| route(k)),
            "GroupByKey",
            FxHashMap::default,
            |acc: &mut FxHashMap<K, Vec<V>>, data: &mut Vec<(K, V)>| {
                for (k, v) in data.drain(..) {
                    acc.entry(k).or_default().push(v);
                }
            },
            |_, acc, out| out.extend(acc),
        ))
    }

    /// Groups both streams' values by key, batch by batch, and lets `emit`
    /// turn each key's groups into records.
    fn cogroup_then<W, U>(
        &self,
        other: &DStream<'s, (K, W)>,
        name: &str,
        mut emit: impl FnMut(K, Vec<V>, Vec<W>, &mut Vec<U>) + 'static,
    ) -> DStream<'s, U>
    where
        W: Data,
        U: Data,
    {
        self.check_same_slide(other, name);
        self.with(self.batch_fold2(
            other,
            Exchange::new(|(k, _): &(K, V)| route(k)),
            Exchange::new(|(k, _): &(K, W)| route(k)),
            name,
            Groups::<K, V, W>::default,
            |acc, data| {
                for (k, v) in data.drain(..) {
                    acc.entry(k).or_default().0.push(v);
                }
            },
            |acc, data| {
                for (k, w) in data.drain(..) {
                    acc.entry(k).or_default().1.push(w);
                }
            },
            move |_, acc, out| {
                for (k, (vs, ws)) in acc {
                    emit(k, vs, ws, out);
                }
            },
        ))
    }

    /// Per batch, each key of either stream with all its values from both.
    ///
    /// # Errors
    ///
    /// Streams with different slides fail `start` with
    /// [`Error::InvalidGraph`](crate::Error::InvalidGraph).
    pub fn cogroup<W: Data>(
        &self,
        other: &DStream<'s, (K, W)>,
    ) -> DStream<'s, (K, (Vec<V>, Vec<W>))> {
        self.cogroup_then(other, "cogroup", |k, vs, ws, out| out.push((k, (vs, ws))))
    }

    /// Per batch, every pair of values with the same key in both streams.
    pub fn join<W: Data>(&self, other: &DStream<'s, (K, W)>) -> DStream<'s, (K, (V, W))> {
        self.cogroup_then(other, "join", |k, vs, ws, out| {
            for v in &vs {
                for w in &ws {
                    out.push((k.clone(), (v.clone(), w.clone())));
                }
            }
        })
    }

    /// Per batch, every value of this stream with each matching value of
    /// `other`, or `None` when the key has none there.
    #[doc(alias = "leftOuterJoin")]
    pub fn left_outer_join<W: Data>(
        &self,
        other: &DStream<'s, (K, W)>,
    ) -> DStream<'s, (K, (V, Option<W>))> {
        self.cogroup_then(other, "left_outer_join", |k, vs, ws, out| {
            for v in &vs {
                if ws.is_empty() {
                    out.push((k.clone(), (v.clone(), None)));
                }
                for w in &ws {
                    out.push((k.clone(), (v.clone(), Some(w.clone()))));
                }
            }
        })
    }

    /// Per batch, every value of `other` with each matching value of this
    /// stream, or `None` when the key has none here.
    #[doc(alias = "rightOuterJoin")]
    pub fn right_outer_join<W: Data>(
        &self,
        other: &DStream<'s, (K, W)>,
    ) -> DStream<'s, (K, (Option<V>, W))> {
        self.cogroup_then(other, "right_outer_join", |k, vs, ws, out| {
            for w in &ws {
                if vs.is_empty() {
                    out.push((k.clone(), (None, w.clone())));
                }
                for v in &vs {
                    out.push((k.clone(), (Some(v.clone()), w.clone())));
                }
            }
        })
    }

    /// Per batch, every key of either stream: matching pairs, or the values of
    /// one side with `None` for the other.
    #[doc(alias = "fullOuterJoin")]
    pub fn full_outer_join<W: Data>(
        &self,
        other: &DStream<'s, (K, W)>,
    ) -> DStream<'s, (K, (Option<V>, Option<W>))> {
        self.cogroup_then(other, "full_outer_join", |k, vs, ws, out| {
            if ws.is_empty() {
                out.extend(vs.iter().map(|v| (k.clone(), (Some(v.clone()), None))));
            } else if vs.is_empty() {
                out.extend(ws.iter().map(|w| (k.clone(), (None, Some(w.clone())))));
            } else {
                for v in &vs {
                    for w in &ws {
                        out.push((k.clone(), (Some(v.clone()), Some(w.clone()))));
                    }
                }
            }
        })
    }
}

/// Folds `v` into a key's slot. The slot is an `Option` so the combiner can
/// be moved into the user's by-value function without `unsafe`; it is `None`
/// only while that function runs (if it panics, the context fails anyway).
fn merge_into<K: Hash + Eq, C, V>(
    acc: &mut FxHashMap<K, Option<C>>,
    k: K,
    v: V,
    create: impl FnOnce(V) -> C,
    merge: impl FnOnce(C, V) -> C,
) {
    // One hash per record, whether the key is new or not.
    match acc.entry(k) {
        Entry::Occupied(mut slot) => merge_slot(slot.get_mut(), v, merge),
        Entry::Vacant(slot) => {
            slot.insert(Some(create(v)));
        }
    }
}

/// Folds `v` into a key's existing slot (see [`merge_into`]).
pub(crate) fn merge_slot<C, V>(slot: &mut Option<C>, v: V, merge: impl FnOnce(C, V) -> C) {
    if let Some(c) = slot.take() {
        *slot = Some(merge(c, v));
    }
}

/// A batch's combiner per key (see [`merge_into`]).
pub(crate) type Slots<K, C> = FxHashMap<K, Option<C>>;

/// A batch's combiners, one per key.
pub(crate) type Combined<K, C> = Vec<(K, C)>;

/// The map of slots a batch folds into, handed from batch to batch: the
/// `init` and `emit` of a [`batch_fold`](DStream::batch_fold) give each
/// batch the map the previous one emptied. Grown from nothing every batch,
/// a map of thousands of keys was rehashed a dozen times and faulted in
/// fresh memory each time. A map left much larger than its last batch
/// needed is shrunk, so one burst of keys is not held for ever.
pub(crate) struct SpareSlots<K, C>(std::rc::Rc<std::cell::Cell<Option<Slots<K, C>>>>);

impl<K: Hash + Eq + 'static, C: 'static> SpareSlots<K, C> {
    pub(crate) fn new() -> Self {
        SpareSlots(std::rc::Rc::default())
    }

    /// A batch's empty map: the spare one, or a new one.
    pub(crate) fn init(&self) -> impl FnMut() -> Slots<K, C> + 'static {
        let spare = self.0.clone();
        move || spare.take().unwrap_or_default()
    }

    /// Emits a batch's combiners and keeps its emptied map.
    pub(crate) fn emit(&self) -> impl FnMut(u64, Slots<K, C>, &mut Combined<K, C>) + 'static {
        let spare = self.0.clone();
        move |_, mut acc, out| {
            let keys = acc.len();
            out.extend(acc.drain().filter_map(|(k, c)| c.map(|c| (k, c))));
            if acc.capacity() > 4 * keys.max(1024) {
                acc.shrink_to(2 * keys);
            }
            spare.set(Some(acc));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_map_is_handed_back_empty_with_its_room_and_shrunk_after_a_burst() {
        let spare = SpareSlots::<u32, u64>::new();
        let (mut init, mut emit) = (spare.init(), spare.emit());
        let mut acc = init();
        for k in 0..30_000 {
            merge_into(&mut acc, k % 20_000, 1, |v| v, |a, b| a + b);
        }
        let mut out = Vec::new();
        emit(1000, acc, &mut out);
        out.sort_unstable();
        let want: Vec<(u32, u64)> = (0..20_000)
            .map(|k| (k, if k < 10_000 { 2 } else { 1 }))
            .collect();
        assert_eq!(out, want);

        let acc = init();
        assert!(acc.is_empty());
        assert!(acc.capacity() >= 20_000, "the last batch's room is kept");

        // A batch of a few keys after the burst: the map is shrunk.
        let mut acc = acc;
        merge_into(&mut acc, 7, 1, |v| v, |a, b| a + b);
        let mut out = Vec::new();
        emit(2000, acc, &mut out);
        assert_eq!(out, [(7, 1)]);
        let acc = init();
        assert!(acc.capacity() < 20_000, "capacity {} kept", acc.capacity());
    }
}
