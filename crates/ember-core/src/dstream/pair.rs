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
        let partial = self.batch_fold(
            Pipeline,
            "CombinePartial",
            FxHashMap::default,
            move |acc: &mut FxHashMap<K, Option<C>>, data: &mut Vec<(K, V)>| {
                for (k, v) in data.drain(..) {
                    merge_into(acc, k, v, &create, &merge_value);
                }
            },
            |_, acc, out| drain_slots(acc, out),
        );
        self.with(partial).merge_partials(merge_combiners)
    }

    /// The second half of a map-side combine: this stream holds at most one
    /// partial per key per worker; each goes to its key's worker, where
    /// `merge` folds the partials of a key into one.
    pub(crate) fn merge_partials(&self, merge: impl Fn(V, V) -> V + 'static) -> Self {
        self.with(self.batch_fold(
            Exchange::new(|(k, _): &(K, V)| route(k)),
            "Combine",
            FxHashMap::default,
            move |acc: &mut FxHashMap<K, Option<V>>, data: &mut Vec<(K, V)>| {
                for (k, c) in data.drain(..) {
                    merge_into(acc, k, c, |c| c, &merge);
                }
            },
            |_, acc, out| drain_slots(acc, out),
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

pub(crate) fn drain_slots<K, C>(acc: FxHashMap<K, Option<C>>, out: &mut Vec<(K, C)>) {
    out.extend(acc.into_iter().filter_map(|(k, c)| c.map(|c| (k, c))));
}
