//! Keyed state across batches: `update_state_by_key` and `map_with_state`.
//!
//! State lives in the operator on the key's worker (keys are routed by the
//! process-stable [`route`](crate::hash::route)), in a plain map per worker.
//!
//! One deliberate difference from Spark: `map_with_state` timeouts fire in
//! the first batch after a key has been idle for longer than the timeout
//! (Spark's condition: its last data came before `batch time - timeout`),
//! every batch — Spark checks only on checkpoint batches, so its timeouts
//! can fire many batches late.

use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Deref;
use std::rc::Rc;
use std::time::Duration;

use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::vec::Map;

use super::DStream;
use crate::hash::{route, FxHashMap};
use crate::time::Time;
use crate::Data;

/// Misuse of a [`State`] handle, as Spark reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// `update` after `remove` in the same call.
    #[error("cannot update the state after it has been removed")]
    UpdateAfterRemove,
    /// `update` while the key is timing out (its state is about to go).
    #[error("cannot update the state that is timing out")]
    UpdateWhileTimingOut,
    /// `remove` while the key is timing out.
    #[error("cannot remove the state that is timing out")]
    RemoveWhileTimingOut,
    /// `remove` twice in the same call.
    #[error("cannot remove the state that has already been removed")]
    RemovedTwice,
}

/// A key's state inside a [`map_with_state`](DStream::map_with_state)
/// function: Spark's `State[S]`.
pub struct State<S> {
    value: Option<S>,
    updated: bool,
    removed: bool,
    timing_out: bool,
}

impl<S: fmt::Debug> fmt::Debug for State<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("value", &self.value)
            .field("timing_out", &self.timing_out)
            .finish()
    }
}

impl<S> State<S> {
    fn wrap(value: Option<S>, timing_out: bool) -> Self {
        State {
            value,
            updated: false,
            removed: false,
            timing_out,
        }
    }

    /// Whether the key has a state.
    pub fn exists(&self) -> bool {
        self.value.is_some()
    }

    /// The state, if the key has one (Spark's `getOption`).
    #[doc(alias = "getOption")]
    pub fn get(&self) -> Option<&S> {
        self.value.as_ref()
    }

    /// Sets the state.
    ///
    /// # Errors
    ///
    /// After [`remove`](Self::remove), or while the key is timing out.
    pub fn update(&mut self, value: S) -> Result<(), StateError> {
        if self.removed {
            return Err(StateError::UpdateAfterRemove);
        }
        if self.timing_out {
            return Err(StateError::UpdateWhileTimingOut);
        }
        self.value = Some(value);
        self.updated = true;
        Ok(())
    }

    /// Removes the key's state.
    ///
    /// # Errors
    ///
    /// Twice, or while the key is timing out (it goes anyway).
    pub fn remove(&mut self) -> Result<(), StateError> {
        if self.timing_out {
            return Err(StateError::RemoveWhileTimingOut);
        }
        if self.removed {
            return Err(StateError::RemovedTwice);
        }
        self.value = None;
        self.removed = true;
        Ok(())
    }

    /// Whether this call is the key's timeout: no value, and the state will
    /// be removed after it.
    #[doc(alias = "isTimingOut")]
    pub fn is_timing_out(&self) -> bool {
        self.timing_out
    }
}

/// A `map_with_state` function in its general form.
type MappingFn<K, V, S, U> = Box<dyn FnMut(Time, &K, Option<V>, &mut State<S>) -> Option<U>>;

/// The function and settings of [`map_with_state`](DStream::map_with_state):
/// Spark's `StateSpec`.
pub struct StateSpec<K, V, S, U> {
    func: MappingFn<K, V, S, U>,
    initial: Vec<(K, S)>,
    timeout: Option<Duration>,
}

impl<K, V, S, U> StateSpec<K, V, S, U> {
    /// A spec from `f(key, value, state) -> mapped`, called once per record
    /// of each batch (value `Some`) and once when a key times out (value
    /// `None`, [`State::is_timing_out`] true).
    pub fn function(mut f: impl FnMut(&K, Option<V>, &mut State<S>) -> U + 'static) -> Self {
        StateSpec {
            func: Box::new(move |_, k, v, s| Some(f(k, v, s))),
            initial: Vec::new(),
            timeout: None,
        }
    }

    /// A spec from `f(time, key, value, state) -> Option<mapped>`: the batch
    /// time is given, and `None` emits nothing.
    pub fn function_with_time(
        f: impl FnMut(Time, &K, Option<V>, &mut State<S>) -> Option<U> + 'static,
    ) -> Self {
        StateSpec {
            func: Box::new(f),
            initial: Vec::new(),
            timeout: None,
        }
    }

    /// State the keys start with.
    #[doc(alias = "initialState")]
    pub fn initial_state(mut self, initial: Vec<(K, S)>) -> Self {
        self.initial = initial;
        self
    }

    /// Removes a key's state once it has received no data for longer than
    /// `idle`, calling the function one last time with `None`.
    pub fn timeout(mut self, idle: Duration) -> Self {
        self.timeout = Some(idle);
        self
    }

    /// Spark's partition count. ember's partitions are its workers, so this
    /// only documents intent.
    #[doc(alias = "numPartitions")]
    pub fn num_partitions(self, _partitions: usize) -> Self {
        self
    }
}

/// What the `map_with_state` operator emits: mapped records, and the state
/// after each batch when snapshots are asked for.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Emitted<U, K, S> {
    Mapped(U),
    Snapshot(K, S),
}

/// The output of [`map_with_state`](DStream::map_with_state): the mapped
/// records (it dereferences to that DStream), and the state snapshots.
pub struct MapWithState<'s, U: Data, K: Data, S: Data> {
    mapped: DStream<'s, U>,
    all: DStream<'s, Emitted<U, K, S>>,
    snapshots: Rc<Cell<bool>>,
    _types: PhantomData<(K, S)>,
}

impl<'s, U: Data, K: Data, S: Data> Deref for MapWithState<'s, U, K, S> {
    type Target = DStream<'s, U>;

    fn deref(&self) -> &DStream<'s, U> {
        &self.mapped
    }
}

impl<'s, U: Data, K: Data, S: Data> MapWithState<'s, U, K, S> {
    /// The mapped records as a plain DStream.
    pub fn stream(&self) -> DStream<'s, U> {
        self.mapped.clone()
    }

    /// Every key's state after each batch (Spark's `stateSnapshots`).
    #[doc(alias = "stateSnapshots")]
    pub fn state_snapshots(&self) -> DStream<'s, (K, S)> {
        self.snapshots.set(true);
        self.all.with(self.all.stream().flat_map(|e| match e {
            Emitted::Snapshot(k, s) => Some((k, s)),
            Emitted::Mapped(_) => None,
        }))
    }
}

/// Per-worker state of `map_with_state`: value and the batch time of the
/// key's last data.
#[derive(serde::Serialize, serde::Deserialize)]
struct Keyed<S> {
    value: S,
    last_data: u64,
}

impl<'s, K, V> DStream<'s, (K, V)>
where
    K: Data + Hash + Eq,
    V: Data,
{
    /// Keeps a state per key across batches (Spark's `updateStateByKey`):
    /// every batch, `f(values, state)` runs for every key that has a state
    /// or new values (values in arrival order, empty when none came); `None`
    /// removes the key. Emits every key's state after each batch.
    ///
    /// # Examples
    ///
    /// ```
    /// let input = vec![vec![("a".to_string(), 1)], vec![("a".to_string(), 2)], vec![]];
    /// let out = ember_core::testing::run_local(2, input, |s| {
    ///     s.update_state_by_key(|vs: Vec<i32>, old: Option<i32>| Some(old.unwrap_or(0) + vs.iter().sum::<i32>()))
    /// });
    /// let a = |n| vec![("a".to_string(), n)];
    /// assert_eq!(out, [a(1), a(3), a(3)]);
    /// ```
    #[doc(alias = "updateStateByKey")]
    pub fn update_state_by_key<S: Data>(
        &self,
        mut f: impl FnMut(Vec<V>, Option<S>) -> Option<S> + 'static,
    ) -> DStream<'s, (K, S)> {
        self.update_state_by_key_with_time(move |_, _, vs, s| f(vs, s), Vec::new())
    }

    /// [`update_state_by_key`](Self::update_state_by_key) with keys that
    /// start with a state (Spark's `initialRDD`).
    pub fn update_state_by_key_with_initial<S: Data>(
        &self,
        mut f: impl FnMut(Vec<V>, Option<S>) -> Option<S> + 'static,
        initial: Vec<(K, S)>,
    ) -> DStream<'s, (K, S)> {
        self.update_state_by_key_with_time(move |_, _, vs, s| f(vs, s), initial)
    }

    /// The general form: `f(time, key, values, state)`, with initial state.
    #[doc(alias = "updateStateByKey")]
    pub fn update_state_by_key_with_time<S: Data>(
        &self,
        mut f: impl FnMut(Time, &K, Vec<V>, Option<S>) -> Option<S> + 'static,
        initial: Vec<(K, S)>,
    ) -> DStream<'s, (K, S)> {
        let checkpoint = self.ctx.stateful("update_state_by_key", self.slide);
        let (index, peers) = checkpoint.worker();
        let mine = move |k: &K| route(k) % peers == index;
        // Each worker keeps the keys that route to it: from the checkpoint
        // when resuming (the initial state is already in it), else the initial.
        let mut state: FxHashMap<K, S> = if self.ctx.shared.restored().is_some() {
            checkpoint.restored_keyed()
        } else {
            initial.into_iter().filter(|(k, _)| mine(k)).collect()
        };
        // Each worker first groups its own values by key, so one record per
        // key and worker crosses the exchange instead of one per value
        // (a word count's every occurrence); the key's worker appends the
        // groups in arrival order. The function still gets all values.
        let grouped = self.with(self.batch_fold(
            Pipeline,
            "GroupPartial",
            FxHashMap::default,
            |acc: &mut FxHashMap<K, Vec<V>>, data: &mut Vec<(K, V)>| {
                for (k, v) in data.drain(..) {
                    acc.entry(k).or_default().push(v);
                }
            },
            |_, acc, out| out.extend(acc),
        ));
        self.with(grouped.batch_fold(
            Exchange::new(|(k, _): &(K, Vec<V>)| route(k)),
            "UpdateStateByKey",
            FxHashMap::default,
            |acc: &mut FxHashMap<K, Vec<V>>, data: &mut Vec<(K, Vec<V>)>| {
                for (k, mut vs) in data.drain(..) {
                    match acc.entry(k) {
                        Entry::Occupied(e) => e.into_mut().append(&mut vs),
                        Entry::Vacant(e) => {
                            e.insert(vs);
                        }
                    }
                }
            },
            move |t, mut values, out| {
                let time = Time::from_millis(t);
                let mut next: FxHashMap<K, S> = FxHashMap::default();
                for (k, old) in state.drain() {
                    let vs = values.remove(&k).unwrap_or_default();
                    if let Some(s) = f(time, &k, vs, Some(old)) {
                        next.insert(k, s);
                    }
                }
                for (k, vs) in values {
                    if let Some(s) = f(time, &k, vs, None) {
                        next.insert(k, s);
                    }
                }
                state = next;
                checkpoint.save(t, || &state);
                checkpoint.report_keys(state.len());
                out.extend(state.iter().map(|(k, s)| (k.clone(), s.clone())));
            },
        ))
    }

    /// Maps each record with access to its key's state (Spark's
    /// `mapWithState`); see [`StateSpec`] and [`State`]. The function runs
    /// once per record, in arrival order within a key, then once for each
    /// key that timed out. Call
    /// [`state_snapshots`](MapWithState::state_snapshots) on the result for
    /// the state after each batch.
    ///
    /// A [`StateError`] returned by the function's calls is the caller's to
    /// handle; a panic stops the context with
    /// [`Error::UserCode`](crate::Error::UserCode).
    #[doc(alias = "mapWithState")]
    pub fn map_with_state<S: Data, U: Data>(
        &self,
        spec: StateSpec<K, V, S, U>,
    ) -> MapWithState<'s, U, K, S> {
        let StateSpec {
            mut func,
            initial,
            timeout,
        } = spec;
        let checkpoint = self.ctx.stateful("map_with_state", self.slide);
        let (index, peers) = checkpoint.worker();
        let mine = move |k: &K| route(k) % peers == index;
        let first = self.ctx.first_time(self.slide);
        let mut state: FxHashMap<K, Keyed<S>> = if self.ctx.shared.restored().is_some() {
            checkpoint.restored_keyed()
        } else {
            initial
                .into_iter()
                .filter(|(k, _)| mine(k))
                .map(|(k, value)| {
                    (
                        k,
                        Keyed {
                            value,
                            last_data: first,
                        },
                    )
                })
                .collect()
        };
        let timeout_ms = timeout.map(|d| d.as_millis() as u64);
        let snapshots = Rc::new(Cell::new(false));
        let want_snapshots = snapshots.clone();
        let all = self.with(self.batch_fold(
            Exchange::new(|(k, _): &(K, V)| route(k)),
            "MapWithState",
            Vec::new,
            |acc: &mut Vec<(K, V)>, data: &mut Vec<(K, V)>| acc.append(data),
            move |t, records, out| {
                let time = Time::from_millis(t);
                for (k, v) in records {
                    let old = state.remove(&k);
                    let mut st = State::wrap(old.map(|o| o.value), false);
                    let mapped = func(time, &k, Some(v), &mut st);
                    if let Some(value) = st.value {
                        state.insert(
                            k,
                            Keyed {
                                value,
                                last_data: t,
                            },
                        );
                    }
                    out.extend(mapped.map(Emitted::Mapped));
                }
                if let Some(idle) = timeout_ms {
                    let expired: Vec<K> = state
                        .iter()
                        .filter(|(_, s)| s.last_data + idle < t)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in expired {
                        let Some(old) = state.remove(&k) else {
                            continue;
                        };
                        let mut st = State::wrap(Some(old.value), true);
                        out.extend(func(time, &k, None, &mut st).map(Emitted::Mapped));
                    }
                }
                checkpoint.save(t, || &state);
                checkpoint.report_keys(state.len());
                if want_snapshots.get() {
                    out.extend(
                        state
                            .iter()
                            .map(|(k, s)| Emitted::Snapshot(k.clone(), s.value.clone())),
                    );
                }
            },
        ));
        let mapped = all.with(all.stream().flat_map(|e| match e {
            Emitted::Mapped(u) => Some(u),
            Emitted::Snapshot(..) => None,
        }));
        MapWithState {
            mapped,
            all,
            snapshots,
            _types: PhantomData,
        }
    }
}
