//! update_state_by_key and map_with_state against reference models.
//!
//! Spark's semantics, batch by batch (batch `i`, from 1, at `1000·i` ms):
//!
//! - `update_state_by_key(f)`: `f(values, Some(old))` for every key with a
//!   state (values possibly empty), `f(values, None)` for every key with
//!   values and no state; `None` removes the key; the output is every
//!   `(key, state)` after the batch, empty batches included.
//! - `map_with_state(spec)`: the function runs once per record (in arrival
//!   order within a key), then once with `None` for every key whose last
//!   data came at `t0` with `t0 + timeout < t`; that key is then gone. Data
//!   refreshes a key's last-data time while it has a state (Spark puts it
//!   back in the state map with the batch time even when not updated);
//!   initial keys count as having had data at the first batch. The
//!   snapshots are every `(key, state)` after the records and timeouts.
//!
//! The models below simulate that naively with a `BTreeMap` per batch; every
//! operation runs at `local[1]` and `local[3]` over seeded random batches
//! (keys `0..8` switching on and off, so keys vanish for several batches and
//! time out) and is compared with its model. At `local[3]` a key's records
//! can arrive from several workers in any order, so the order-dependent
//! functions there get at most one record per key per batch; inputs with
//! several records per key run at `local[1]` (arrival order = input order)
//! or use order-insensitive functions. Hand-written cases pin each rule,
//! including the State errors and the exact timeout boundary.

use std::collections::{BTreeMap, BTreeSet};

use ember::prelude::*;
use ember::{Data, MapWithState, State, StateError, StateSpec};
use ember_testkit::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// Inputs.
// ---------------------------------------------------------------------------

/// The batch interval of the test helpers.
const BATCH_MS: u64 = INTERVAL_MS;

/// The random keys are `0..KEYS`.
const KEYS: u32 = 8;

/// Seeds per random test.
const SEEDS: u64 = 16;

fn s(x: &str) -> String {
    x.to_string()
}

/// Random keyed batches: 10 to 25 of them. Each key switches on or off
/// with probability 0.3 before every batch (so it vanishes for several
/// batches now and then); about 15% of the batches are empty; an active key
/// has `1..=max_per_key` records with values in `-5..=9`, shuffled across
/// keys.
fn random_batches(seed: u64, max_per_key: usize) -> Vec<Vec<(u32, i64)>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.gen_range(10..=25);
    let mut on: Vec<bool> = (0..KEYS).map(|_| rng.gen_bool(0.5)).collect();
    (0..n)
        .map(|_| {
            for o in on.iter_mut() {
                if rng.gen_bool(0.3) {
                    *o = !*o;
                }
            }
            if rng.gen_bool(0.15) {
                return Vec::new();
            }
            let mut batch = Vec::new();
            for k in 0..KEYS {
                if on[k as usize] && rng.gen_bool(0.8) {
                    for _ in 0..rng.gen_range(1..=max_per_key) {
                        batch.push((k, rng.gen_range(-5..=9)));
                    }
                }
            }
            batch.shuffle(&mut rng);
            batch
        })
        .collect()
}

/// A random initial state over keys `0..10` (8 and 9 never get data).
fn random_initial(seed: u64) -> Vec<(u32, i64)> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut initial = Vec::new();
    for k in 0..KEYS + 2 {
        if rng.gen_bool(0.4) {
            initial.push((k, rng.gen_range(-5..=20)));
        }
    }
    initial
}

/// The input batches with their times: batch `i` (from 0) at `(i + 1)·1000`.
fn timed<T: Clone>(input: &[Vec<T>]) -> Vec<(u64, Vec<T>)> {
    input
        .iter()
        .enumerate()
        .map(|(i, b)| ((i as u64 + 1) * BATCH_MS, b.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// update_state_by_key: the model and the functions.
// ---------------------------------------------------------------------------

/// `update_state_by_key_with_time` by its definition: per batch, the values
/// grouped by key in order, `f` for every key with a state or values, `None`
/// dropping the key; each output is the whole state, sorted by key.
fn model_update<S: Clone>(
    input: &[Vec<(u32, i64)>],
    initial: &[(u32, S)],
    mut f: impl FnMut(Time, &u32, Vec<i64>, Option<S>) -> Option<S>,
) -> Vec<Vec<(u32, S)>> {
    let mut state: BTreeMap<u32, S> = initial.iter().cloned().collect();
    timed(input)
        .into_iter()
        .map(|(t, batch)| {
            let mut values: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
            for (k, v) in batch {
                values.entry(k).or_default().push(v);
            }
            let keys: BTreeSet<u32> = state.keys().chain(values.keys()).copied().collect();
            let mut next = BTreeMap::new();
            for k in keys {
                let vs = values.remove(&k).unwrap_or_default();
                if let Some(s) = f(Time::from_millis(t), &k, vs, state.remove(&k)) {
                    next.insert(k, s);
                }
            }
            state = next;
            state.iter().map(|(k, s)| (*k, s.clone())).collect()
        })
        .collect()
}

/// `(calls, values seen, sum)`: counts every call, empty ones included.
type Counts = (u64, u64, i64);

fn count_calls(vs: Vec<i64>, old: Option<Counts>) -> Option<Counts> {
    let (calls, n, sum) = old.unwrap_or((0, 0, 0));
    Some((calls + 1, n + vs.len() as u64, sum + vs.iter().sum::<i64>()))
}

/// The running sum, dropped once it reaches ±12 (a new key whose first
/// values already do is never stored).
fn sum_until_threshold(vs: Vec<i64>, old: Option<i64>) -> Option<i64> {
    let sum = old.unwrap_or(0) + vs.iter().sum::<i64>();
    (sum.abs() < 12).then_some(sum)
}

/// Halves the state every batch, then adds the batch's values; a key is
/// dropped when it decays to 0 in a batch without values.
fn decay(vs: Vec<i64>, old: Option<i64>) -> Option<i64> {
    let next = old.map_or(0, |o| o / 2) + vs.iter().map(|v| v.abs()).sum::<i64>();
    (next != 0 || !vs.is_empty()).then_some(next)
}

/// `(time of the call, the key, calls, sum)`, dropped on a 0 value.
type Stamped = (u64, u32, u64, i64);

fn stamped(t: Time, k: &u32, vs: Vec<i64>, old: Option<Stamped>) -> Option<Stamped> {
    if vs.contains(&0) {
        return None;
    }
    let (_, _, calls, sum) = old.unwrap_or((0, 0, 0, 0));
    Some((
        t.milliseconds(),
        *k,
        calls + 1,
        sum + vs.iter().sum::<i64>(),
    ))
}

// ---------------------------------------------------------------------------
// update_state_by_key against the model.
// ---------------------------------------------------------------------------

#[test]
fn update_state_by_key_counts_every_call_against_the_model() {
    for seed in 0..SEEDS {
        let input = random_batches(seed, 3);
        let got = same_sorted(at_1_and_3(&input, |s| s.update_state_by_key(count_calls)));
        let want = model_update(&input, &[], |_, _, vs, old| count_calls(vs, old));
        assert_eq!(got, want, "seed {seed}");
    }
}

#[test]
fn update_state_by_key_removes_keys_past_a_threshold_against_the_model() {
    let mut removals = 0;
    for seed in 0..SEEDS {
        let input = random_batches(100 + seed, 3);
        let got = same_sorted(at_1_and_3(&input, |s| {
            s.update_state_by_key(sum_until_threshold)
        }));
        let want = model_update(&input, &[], |_, _, vs, old| sum_until_threshold(vs, old));
        assert_eq!(got, want, "seed {}", 100 + seed);
        removals += want.windows(2).filter(|w| w[1].len() < w[0].len()).count();
    }
    assert!(removals > 0, "the inputs should remove some keys");
}

#[test]
fn update_state_by_key_decays_across_empty_batches_against_the_model() {
    for seed in 0..SEEDS {
        let input = random_batches(200 + seed, 2);
        let got = same_sorted(at_1_and_3(&input, |s| s.update_state_by_key(decay)));
        let want = model_update(&input, &[], |_, _, vs, old| decay(vs, old));
        assert_eq!(got, want, "seed {}", 200 + seed);
    }
}

#[test]
fn update_state_by_key_with_initial_against_the_model() {
    for seed in 0..SEEDS {
        let input = random_batches(300 + seed, 3);
        let initial: Vec<(u32, Counts)> = random_initial(300 + seed)
            .into_iter()
            .map(|(k, v)| (k, (0, 0, v)))
            .collect();
        let init = initial.clone();
        let got = same_sorted(at_1_and_3(&input, move |s| {
            s.update_state_by_key_with_initial(count_calls, init.clone())
        }));
        let want = model_update(&input, &initial, |_, _, vs, old| count_calls(vs, old));
        assert_eq!(got, want, "seed {}", 300 + seed);
    }
}

#[test]
fn update_state_by_key_with_time_against_the_model() {
    for seed in 0..SEEDS {
        let input = random_batches(400 + seed, 3);
        let initial: Vec<(u32, Stamped)> = random_initial(400 + seed)
            .into_iter()
            .map(|(k, v)| (k, (0, k, 0, v)))
            .collect();
        let init = initial.clone();
        let got = same_sorted(at_1_and_3(&input, move |s| {
            s.update_state_by_key_with_time(stamped, init.clone())
        }));
        let want = model_update(&input, &initial, stamped);
        assert_eq!(got, want, "seed {}", 400 + seed);
    }
}

// ---------------------------------------------------------------------------
// update_state_by_key: hand-written cases.
// ---------------------------------------------------------------------------

#[test]
fn update_state_by_key_calls_f_every_batch_for_keys_with_state_even_empty_ones() {
    let input = vec![
        vec![(s("a"), 1), (s("b"), 2), (s("a"), 3)],
        vec![],
        vec![(s("b"), 4)],
        vec![],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| s.update_state_by_key(count_calls)));
    assert_eq!(
        got,
        [
            vec![(s("a"), (1, 2, 4)), (s("b"), (1, 1, 2))],
            vec![(s("a"), (2, 2, 4)), (s("b"), (2, 1, 2))],
            vec![(s("a"), (3, 2, 4)), (s("b"), (3, 2, 6))],
            vec![(s("a"), (4, 2, 4)), (s("b"), (4, 2, 6))],
        ]
    );
}

#[test]
fn update_state_by_key_none_removes_the_key_and_later_values_start_from_none() {
    let input = vec![
        vec![(s("a"), 1)],
        vec![(s("a"), 2)],
        vec![(s("a"), 0), (s("b"), 7)],
        vec![],
        vec![(s("a"), 5)],
    ];
    // 100 marks a call without a state; a 0 removes the key.
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.update_state_by_key(|vs: Vec<i64>, old: Option<i64>| {
            (!vs.contains(&0)).then(|| old.unwrap_or(100) + vs.iter().sum::<i64>())
        })
    }));
    assert_eq!(
        got,
        [
            vec![(s("a"), 101)],
            vec![(s("a"), 103)],
            vec![(s("b"), 107)],
            vec![(s("b"), 107)],
            vec![(s("a"), 105), (s("b"), 107)],
        ]
    );
}

#[test]
fn update_state_by_key_drops_keys_whose_f_returns_none_on_an_empty_batch() {
    // The state lasts one batch without values.
    let input = vec![
        vec![(s("a"), 1)],
        vec![],
        vec![],
        vec![(s("a"), 2), (s("b"), 3)],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| {
        // (sum, idle for a batch)
        s.update_state_by_key(|vs: Vec<i64>, old: Option<(i64, bool)>| {
            let (sum, idle) = old.unwrap_or((0, false));
            if vs.is_empty() {
                (!idle).then_some((sum, true))
            } else {
                Some((sum + vs.iter().sum::<i64>(), false))
            }
        })
    }));
    assert_eq!(
        got,
        [
            vec![(s("a"), (1, false))],
            vec![(s("a"), (1, true))],
            vec![],
            vec![(s("a"), (2, false)), (s("b"), (3, false))],
        ]
    );
}

#[test]
fn update_state_by_key_never_stores_a_new_key_whose_f_returns_none() {
    let input = vec![vec![(s("a"), 1), (s("b"), -1)], vec![(s("b"), -2)], vec![]];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.update_state_by_key(|vs: Vec<i64>, old: Option<i64>| {
            let sum = old.unwrap_or(0) + vs.iter().sum::<i64>();
            (sum > 0).then_some(sum)
        })
    }));
    assert_eq!(
        got,
        [vec![(s("a"), 1)], vec![(s("a"), 1)], vec![(s("a"), 1)]]
    );
}

#[test]
fn update_state_by_key_passes_values_in_arrival_order() {
    let input = vec![
        vec![(s("a"), s("x")), (s("b"), s("p")), (s("a"), s("y"))],
        vec![],
        vec![(s("a"), s("z")), (s("b"), s("q")), (s("b"), s("r"))],
    ];
    let concat =
        |vs: Vec<String>, old: Option<String>| Some(old.unwrap_or_default() + &vs.concat());
    let [one, three] = at_1_and_3(&input, move |s| s.update_state_by_key(concat));
    let want = vec![
        vec![(s("a"), s("xy")), (s("b"), s("p"))],
        vec![(s("a"), s("xy")), (s("b"), s("p"))],
        vec![(s("a"), s("xyz")), (s("b"), s("pqr"))],
    ];
    assert_eq!(sorted(one), want, "local[1]: arrival order is input order");
    // At local[3] a batch's records come from several workers: the same
    // letters, in some order within each batch.
    let letters = |batches: Vec<Vec<(String, String)>>| -> Vec<Vec<(String, Vec<char>)>> {
        sorted(batches)
            .into_iter()
            .map(|b| {
                b.into_iter()
                    .map(|(k, v)| {
                        let mut cs: Vec<char> = v.chars().collect();
                        cs.sort_unstable();
                        (k, cs)
                    })
                    .collect()
            })
            .collect()
    };
    assert_eq!(letters(three), letters(want), "local[3]");
}

#[test]
fn update_state_by_key_with_initial_calls_initial_keys_from_the_first_batch() {
    let input = vec![vec![(s("a"), 1)], vec![], vec![(s("b"), 2)]];
    // (calls, sum); an initial key with a negative sum is dropped by its
    // first call.
    let initial = vec![(s("a"), (0, 10)), (s("c"), (0, 7)), (s("d"), (0, -1))];
    let got = same_sorted(at_1_and_3(&input, move |s| {
        s.update_state_by_key_with_initial(
            |vs: Vec<i64>, old: Option<(u64, i64)>| {
                let (calls, sum) = old.unwrap_or((0, 0));
                (sum >= 0).then(|| (calls + 1, sum + vs.iter().sum::<i64>()))
            },
            initial.clone(),
        )
    }));
    assert_eq!(
        got,
        [
            vec![(s("a"), (1, 11)), (s("c"), (1, 7))],
            vec![(s("a"), (2, 11)), (s("c"), (2, 7))],
            vec![(s("a"), (3, 11)), (s("b"), (1, 2)), (s("c"), (3, 7))],
        ]
    );
}

#[test]
fn update_state_by_key_with_time_passes_the_batch_time_and_the_key() {
    let input = vec![vec![(s("a"), 1)], vec![], vec![(s("b"), 2), (s("b"), 3)]];
    let initial = vec![(s("c"), s("init "))];
    let got = same_sorted(at_1_and_3(&input, move |s| {
        s.update_state_by_key_with_time(
            |t: Time, k: &String, mut vs: Vec<i64>, old: Option<String>| {
                vs.sort_unstable();
                Some(format!(
                    "{}{}:{k}{vs:?} ",
                    old.unwrap_or_default(),
                    t.milliseconds()
                ))
            },
            initial.clone(),
        )
    }));
    assert_eq!(
        got,
        [
            vec![(s("a"), s("1000:a[1] ")), (s("c"), s("init 1000:c[] "))],
            vec![
                (s("a"), s("1000:a[1] 2000:a[] ")),
                (s("c"), s("init 1000:c[] 2000:c[] ")),
            ],
            vec![
                (s("a"), s("1000:a[1] 2000:a[] 3000:a[] ")),
                (s("b"), s("3000:b[2, 3] ")),
                (s("c"), s("init 1000:c[] 2000:c[] 3000:c[] ")),
            ],
        ]
    );
}

#[test]
fn update_state_by_key_over_empty_batches_emits_empty_batches() {
    let input: Vec<Vec<(String, i64)>> = vec![vec![], vec![], vec![]];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.update_state_by_key(|vs: Vec<i64>, old: Option<i64>| {
            Some(old.unwrap_or(0) + vs.len() as i64)
        })
    }));
    assert_eq!(got, [vec![], vec![], vec![]]);
}

// ---------------------------------------------------------------------------
// map_with_state: outputs, the model and the functions.
// ---------------------------------------------------------------------------

/// A mapped record or a snapshot, so one run checks both streams.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Out<U, K, S> {
    Mapped(U),
    Snapshot(K, S),
}

/// The mapped records and the state snapshots of `m` in one stream.
fn with_snapshots<'s, U: Data, K: Data, S: Data>(
    m: &MapWithState<'s, U, K, S>,
) -> DStream<'s, Out<U, K, S>> {
    let snapshots = m.state_snapshots().map(|(k, s)| Out::Snapshot(k, s));
    m.map(Out::Mapped).union(&snapshots)
}

/// A value that removes the key's state.
const REMOVE: i64 = 0;
/// A value that only reads the state.
const PEEK: i64 = 9;

/// What [`sum_remove_peek`] maps a call to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Ev {
    /// A record added to the running sum: the sum after it.
    Sum(u32, i64),
    /// A [`REMOVE`] record: the state it removed.
    Removed(u32, Option<i64>),
    /// A [`PEEK`] record: the state it saw (left as it was).
    Peeked(u32, Option<i64>),
    /// A timeout call: the state it saw and `is_timing_out`.
    TimedOut(u32, Option<i64>, bool),
}

/// A running sum per key; [`REMOVE`] removes the state, [`PEEK`] reads it
/// without updating it.
fn sum_remove_peek(k: &u32, v: Option<i64>, st: &mut State<i64>) -> Ev {
    let old = st.get().copied();
    match v {
        None => Ev::TimedOut(*k, old, st.is_timing_out()),
        Some(REMOVE) => {
            st.remove().expect("remove once");
            Ev::Removed(*k, old)
        }
        Some(PEEK) => Ev::Peeked(*k, old),
        Some(v) => {
            let sum = old.unwrap_or(0) + v;
            st.update(sum).expect("update");
            Ev::Sum(*k, sum)
        }
    }
}

type SumOut = Out<Ev, u32, i64>;

/// `map_with_state(sum_remove_peek)` by the rules in the module doc: each
/// batch sorted.
fn model_sum_remove_peek(
    input: &[Vec<(u32, i64)>],
    initial: &[(u32, i64)],
    timeout: Option<u64>,
) -> Vec<Vec<SumOut>> {
    // key -> (state, time of its last data)
    let mut state: BTreeMap<u32, (i64, u64)> =
        initial.iter().map(|&(k, v)| (k, (v, BATCH_MS))).collect();
    timed(input)
        .into_iter()
        .map(|(t, batch)| {
            let mut out = Vec::new();
            for (k, v) in batch {
                let old = state.remove(&k).map(|(s, _)| s);
                let ev = match v {
                    REMOVE => Ev::Removed(k, old),
                    PEEK => {
                        // Data refreshes a key with a state even without an update.
                        if let Some(s) = old {
                            state.insert(k, (s, t));
                        }
                        Ev::Peeked(k, old)
                    }
                    v => {
                        let sum = old.unwrap_or(0) + v;
                        state.insert(k, (sum, t));
                        Ev::Sum(k, sum)
                    }
                };
                out.push(Out::Mapped(ev));
            }
            if let Some(d) = timeout {
                let expired: Vec<u32> = state
                    .iter()
                    .filter(|(_, (_, last))| last + d < t)
                    .map(|(k, _)| *k)
                    .collect();
                for k in expired {
                    let (s, _) = state.remove(&k).expect("expired key");
                    out.push(Out::Mapped(Ev::TimedOut(k, Some(s), true)));
                }
            }
            out.extend(state.iter().map(|(k, (s, _))| Out::Snapshot(*k, *s)));
            out.sort();
            out
        })
        .collect()
}

/// The spec of [`sum_remove_peek`] with an initial state and a timeout.
fn sum_spec(initial: Vec<(u32, i64)>, timeout: Option<u64>) -> StateSpec<u32, i64, i64, Ev> {
    let spec = StateSpec::function(sum_remove_peek).initial_state(initial);
    match timeout {
        Some(ms) => spec.timeout(millis(ms)),
        None => spec,
    }
}

/// How many timeout calls some outputs hold.
fn timeouts(outs: &[Vec<SumOut>]) -> usize {
    outs.iter()
        .flatten()
        .filter(|o| matches!(o, Out::Mapped(Ev::TimedOut(..))))
        .count()
}

/// Runs [`sum_remove_peek`] at `local[1]` and `local[3]` over random batches
/// with at most one record per key per batch, against the model; returns
/// the number of timeout calls seen.
fn check_sum_remove_peek(test: u64, timeout: Option<u64>, with_initial: bool) -> usize {
    let mut seen = 0;
    for seed in (test * 100)..(test * 100 + SEEDS) {
        let input = random_batches(seed, 1);
        let initial = if with_initial {
            random_initial(seed)
        } else {
            Vec::new()
        };
        let init = initial.clone();
        let got = same_sorted(at_1_and_3(&input, move |s| {
            with_snapshots(&s.map_with_state(sum_spec(init.clone(), timeout)))
        }));
        let want = model_sum_remove_peek(&input, &initial, timeout);
        assert_eq!(
            got, want,
            "seed {seed}, timeout {timeout:?}, initial {initial:?}, input {input:?}"
        );
        seen += timeouts(&want);
    }
    seen
}

// ---------------------------------------------------------------------------
// map_with_state against the model.
// ---------------------------------------------------------------------------

#[test]
fn map_with_state_without_timeout_against_the_model() {
    assert_eq!(check_sum_remove_peek(10, None, false), 0);
}

#[test]
fn map_with_state_with_a_2s_timeout_against_the_model() {
    assert!(
        check_sum_remove_peek(11, Some(2000), false) > 0,
        "no timeout fired"
    );
}

#[test]
fn map_with_state_with_a_3s_timeout_against_the_model() {
    assert!(
        check_sum_remove_peek(12, Some(3000), false) > 0,
        "no timeout fired"
    );
}

#[test]
fn map_with_state_with_initial_state_against_the_model() {
    assert_eq!(check_sum_remove_peek(13, None, true), 0);
}

#[test]
fn map_with_state_with_initial_state_and_a_2s_timeout_against_the_model() {
    assert!(
        check_sum_remove_peek(14, Some(2000), true) > 0,
        "no timeout fired"
    );
}

#[test]
fn map_with_state_with_initial_state_and_a_3s_timeout_against_the_model() {
    assert!(
        check_sum_remove_peek(15, Some(3000), true) > 0,
        "no timeout fired"
    );
}

#[test]
fn map_with_state_with_several_records_per_key_at_local_1_against_the_model() {
    // At local[1] the arrival order is the input order, so the running sums
    // and removals within a batch follow it.
    let mut seen = 0;
    for seed in 1600..1600 + SEEDS {
        let input = random_batches(seed, 4);
        let initial = random_initial(seed);
        let timeout = Some(2000 + 1000 * (seed % 2));
        let init = initial.clone();
        let got = sorted(run_local(1, input.clone(), move |s| {
            with_snapshots(&s.map_with_state(sum_spec(init.clone(), timeout)))
        }));
        let want = model_sum_remove_peek(&input, &initial, timeout);
        assert_eq!(got, want, "seed {seed}, timeout {timeout:?}");
        seen += timeouts(&want);
    }
    assert!(seen > 0, "no timeout fired");
}

/// A running count per key: its outputs do not depend on the order of a
/// key's records within a batch. `(key, count, timing out)`.
fn count_records(k: &u32, v: Option<i64>, st: &mut State<u64>) -> (u32, u64, bool) {
    let old = st.get().copied().unwrap_or(0);
    match v {
        None => (*k, old, st.is_timing_out()),
        Some(_) => {
            st.update(old + 1).expect("update");
            (*k, old + 1, false)
        }
    }
}

type CountOut = Out<(u32, u64, bool), u32, u64>;

fn model_count_records(input: &[Vec<(u32, i64)>], timeout: u64) -> Vec<Vec<CountOut>> {
    let mut state: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    timed(input)
        .into_iter()
        .map(|(t, batch)| {
            let mut out = Vec::new();
            for (k, _) in batch {
                let n = state.get(&k).map_or(0, |(n, _)| *n) + 1;
                state.insert(k, (n, t));
                out.push(Out::Mapped((k, n, false)));
            }
            let expired: Vec<u32> = state
                .iter()
                .filter(|(_, (_, last))| last + timeout < t)
                .map(|(k, _)| *k)
                .collect();
            for k in expired {
                let (n, _) = state.remove(&k).expect("expired key");
                out.push(Out::Mapped((k, n, true)));
            }
            out.extend(state.iter().map(|(k, (n, _))| Out::Snapshot(*k, *n)));
            out.sort();
            out
        })
        .collect()
}

#[test]
fn map_with_state_counts_several_records_per_key_at_1_and_3_against_the_model() {
    let mut seen = 0;
    for seed in 1700..1700 + SEEDS {
        let input = random_batches(seed, 4);
        let timeout = 2000 + 1000 * (seed % 2);
        let got = same_sorted(at_1_and_3(&input, move |s| {
            with_snapshots(
                &s.map_with_state(StateSpec::function(count_records).timeout(millis(timeout))),
            )
        }));
        let want = model_count_records(&input, timeout);
        assert_eq!(got, want, "seed {seed}, timeout {timeout}");
        seen += want
            .iter()
            .flatten()
            .filter(|o| matches!(o, Out::Mapped((_, _, true))))
            .count();
    }
    assert!(seen > 0, "no timeout fired");
}

// ---------------------------------------------------------------------------
// map_with_state: hand-written cases.
// ---------------------------------------------------------------------------

/// A `Result` of a State call, as an output can carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Outcome {
    Ok,
    UpdateAfterRemove,
    UpdateWhileTimingOut,
    RemoveWhileTimingOut,
    RemovedTwice,
    Other,
}

fn outcome(r: Result<(), StateError>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(StateError::UpdateAfterRemove) => Outcome::UpdateAfterRemove,
        Err(StateError::UpdateWhileTimingOut) => Outcome::UpdateWhileTimingOut,
        Err(StateError::RemoveWhileTimingOut) => Outcome::RemoveWhileTimingOut,
        Err(StateError::RemovedTwice) => Outcome::RemovedTwice,
        Err(_) => Outcome::Other,
    }
}

/// One call of [`script`]: what it saw, did and left.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Call {
    key: String,
    value: Option<i64>,
    timing_out: bool,
    before: Option<i64>,
    outcomes: Vec<Outcome>,
    after: Option<i64>,
    exists: bool,
}

/// State calls chosen by the value: 1 updates to 1; 2 removes then updates
/// to 20; 3 removes twice; 4 updates to 40 then removes; 5 updates to 50
/// then 51; 6 only reads. A timeout updates to 99 then removes (key "c":
/// removes, then updates).
fn script(k: &String, v: Option<i64>, st: &mut State<i64>) -> Call {
    let before = st.get().copied();
    let timing_out = st.is_timing_out();
    let results = match v {
        Some(1) => vec![st.update(1)],
        Some(2) => vec![st.remove(), st.update(20)],
        Some(3) => vec![st.remove(), st.remove()],
        Some(4) => vec![st.update(40), st.remove()],
        Some(5) => vec![st.update(50), st.update(51)],
        Some(_) => vec![],
        None if k == "c" => vec![st.remove(), st.update(99)],
        None => vec![st.update(99), st.remove()],
    };
    Call {
        key: k.clone(),
        value: v,
        timing_out,
        before,
        outcomes: results.into_iter().map(outcome).collect(),
        after: st.get().copied(),
        exists: st.exists(),
    }
}

fn call(key: &str, value: Option<i64>, before: Option<i64>, outcomes: &[Outcome]) -> Call {
    call_after(key, value, before, outcomes, None)
}

fn call_after(
    key: &str,
    value: Option<i64>,
    before: Option<i64>,
    outcomes: &[Outcome],
    after: Option<i64>,
) -> Call {
    Call {
        key: s(key),
        value,
        timing_out: value.is_none(),
        before,
        outcomes: outcomes.to_vec(),
        after,
        exists: after.is_some(),
    }
}

type ScriptOut = Out<Call, String, i64>;

fn snap(k: &str, v: i64) -> ScriptOut {
    Out::Snapshot(s(k), v)
}

#[test]
fn state_handle_rules_and_errors() {
    use Outcome::*;
    let input = vec![
        vec![(s("a"), 1), (s("b"), 1), (s("c"), 1)],
        vec![(s("a"), 2)],
        vec![(s("a"), 5)],
        vec![(s("a"), 3)],
        vec![(s("a"), 4)],
        vec![(s("d"), 6)],
        vec![],
        vec![],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| {
        with_snapshots(&s.map_with_state(StateSpec::function(script).timeout(seconds(2))))
    }));
    let m = Out::Mapped;
    let want: Vec<Vec<ScriptOut>> = vec![
        // 1000: three updates.
        vec![
            m(call_after("a", Some(1), None, &[Ok], Some(1))),
            m(call_after("b", Some(1), None, &[Ok], Some(1))),
            m(call_after("c", Some(1), None, &[Ok], Some(1))),
            snap("a", 1),
            snap("b", 1),
            snap("c", 1),
        ],
        // 2000: update after remove fails, the state stays removed.
        vec![
            m(call("a", Some(2), Some(1), &[Ok, UpdateAfterRemove])),
            snap("b", 1),
            snap("c", 1),
        ],
        // 3000: a starts again from no state; two updates, the last wins.
        vec![
            m(call_after("a", Some(5), None, &[Ok, Ok], Some(51))),
            snap("a", 51),
            snap("b", 1),
            snap("c", 1),
        ],
        // 4000: removing twice fails; b and c (data at 1000, 2 s) time out:
        // they see their state, cannot update or remove it, and go anyway.
        vec![
            m(call("a", Some(3), Some(51), &[Ok, RemovedTwice])),
            m(call_after(
                "b",
                None,
                Some(1),
                &[UpdateWhileTimingOut, RemoveWhileTimingOut],
                Some(1),
            )),
            m(call_after(
                "c",
                None,
                Some(1),
                &[RemoveWhileTimingOut, UpdateWhileTimingOut],
                Some(1),
            )),
        ],
        // 5000: update then remove in one call leaves no state.
        vec![m(call("a", Some(4), None, &[Ok, Ok]))],
        // 6000: a read-only call on a key without a state stores nothing.
        vec![m(call("d", Some(6), None, &[]))],
        // 7000, 8000: the removed key (last data at 5000) never times out,
        // nor does d, which never had a state.
        vec![],
        vec![],
    ];
    assert_eq!(got, want);
}

/// Runs [`sum_remove_peek`] over string-free input with a timeout and an
/// initial state at `local[1]` and `local[3]`: mapped and snapshots.
fn run_sum(input: &[Vec<(u32, i64)>], initial: &[(u32, i64)], timeout: u64) -> Vec<Vec<SumOut>> {
    let initial = initial.to_vec();
    same_sorted(at_1_and_3(input, move |s| {
        with_snapshots(&s.map_with_state(sum_spec(initial.clone(), Some(timeout))))
    }))
}

fn sum(k: u32, v: i64) -> SumOut {
    Out::Mapped(Ev::Sum(k, v))
}

fn timed_out(k: u32, v: i64) -> SumOut {
    Out::Mapped(Ev::TimedOut(k, Some(v), true))
}

fn snapshot(k: u32, v: i64) -> SumOut {
    Out::Snapshot(k, v)
}

#[test]
fn data_at_1000_with_a_2s_timeout_times_out_at_4000_not_3000() {
    let input = vec![vec![(1, 5)], vec![], vec![], vec![], vec![]];
    let got = run_sum(&input, &[], 2000);
    assert_eq!(
        got,
        [
            vec![sum(1, 5), snapshot(1, 5)],
            vec![snapshot(1, 5)],
            vec![snapshot(1, 5)], // 1000 + 2000 is not before 3000
            vec![timed_out(1, 5)],
            vec![],
        ]
    );
    assert_eq!(got, model_sum_remove_peek(&input, &[], Some(2000)));
}

#[test]
fn data_at_2000_with_a_3s_timeout_times_out_at_6000_not_5000() {
    let input = vec![vec![], vec![(1, 5)], vec![], vec![], vec![], vec![], vec![]];
    let got = run_sum(&input, &[], 3000);
    assert_eq!(
        got,
        [
            vec![],
            vec![sum(1, 5), snapshot(1, 5)],
            vec![snapshot(1, 5)],
            vec![snapshot(1, 5)],
            vec![snapshot(1, 5)],
            vec![timed_out(1, 5)],
            vec![],
        ]
    );
}

#[test]
fn a_1s_timeout_fires_after_one_idle_batch() {
    // 1: data every batch; 2: every other batch (its data comes before the
    // timeout check of the batch); 3: two idle batches.
    let input = vec![
        vec![(1, 1), (2, 1), (3, 1)],
        vec![(1, 1)],
        vec![(1, 1), (2, 1)],
        vec![(1, 1), (3, 1)],
        vec![(1, 1), (2, 1)],
    ];
    let got = run_sum(&input, &[], 1000);
    assert_eq!(
        got,
        [
            vec![
                sum(1, 1),
                sum(2, 1),
                sum(3, 1),
                snapshot(1, 1),
                snapshot(2, 1),
                snapshot(3, 1)
            ],
            vec![sum(1, 2), snapshot(1, 2), snapshot(2, 1), snapshot(3, 1)],
            vec![
                sum(1, 3),
                sum(2, 2),
                timed_out(3, 1),
                snapshot(1, 3),
                snapshot(2, 2)
            ],
            vec![
                sum(1, 4),
                sum(3, 1),
                snapshot(1, 4),
                snapshot(2, 2),
                snapshot(3, 1)
            ],
            vec![
                sum(1, 5),
                sum(2, 3),
                snapshot(1, 5),
                snapshot(2, 3),
                snapshot(3, 1)
            ],
        ]
    );
}

#[test]
fn a_key_that_keeps_receiving_data_never_times_out() {
    let input: Vec<Vec<(u32, i64)>> = (0..8).map(|_| vec![(1, 1)]).collect();
    let got = run_sum(&input, &[], 1000);
    let want: Vec<Vec<SumOut>> = (1..=8).map(|n| vec![sum(1, n), snapshot(1, n)]).collect();
    assert_eq!(got, want);
}

#[test]
fn a_removed_key_does_not_time_out_and_a_recreated_key_times_out_from_its_new_data() {
    let input = vec![
        vec![(1, 5), (2, 5)],
        vec![(1, REMOVE)],
        vec![],
        vec![],
        vec![],
        vec![(1, 3)],
        vec![],
        vec![],
        vec![],
    ];
    let got = run_sum(&input, &[], 2000);
    assert_eq!(
        got,
        [
            vec![sum(1, 5), sum(2, 5), snapshot(1, 5), snapshot(2, 5)],
            vec![Out::Mapped(Ev::Removed(1, Some(5))), snapshot(2, 5)],
            vec![snapshot(2, 5)],
            vec![timed_out(2, 5)],
            vec![],
            vec![sum(1, 3), snapshot(1, 3)],
            vec![snapshot(1, 3)],
            vec![snapshot(1, 3)],
            vec![timed_out(1, 3)],
        ]
    );
}

#[test]
fn data_without_an_update_still_refreshes_the_timeout() {
    // Spark puts a key that got data back with the batch time whenever a
    // timeout is set, updated or not.
    let input = vec![
        vec![(1, 5), (2, PEEK)],
        vec![],
        vec![(1, PEEK)],
        vec![],
        vec![],
        vec![],
        vec![],
    ];
    let got = run_sum(&input, &[], 2000);
    assert_eq!(
        got,
        [
            // 2 never gets a state, so it never times out.
            vec![sum(1, 5), Out::Mapped(Ev::Peeked(2, None)), snapshot(1, 5)],
            vec![snapshot(1, 5)],
            vec![Out::Mapped(Ev::Peeked(1, Some(5))), snapshot(1, 5)],
            vec![snapshot(1, 5)], // 1000 + 2000 < 4000, but the peek at 3000 counts
            vec![snapshot(1, 5)],
            vec![timed_out(1, 5)],
            vec![],
        ]
    );
    assert_eq!(got, model_sum_remove_peek(&input, &[], Some(2000)));
}

#[test]
fn initial_keys_count_the_first_batch_as_their_last_data() {
    let input = vec![vec![], vec![(2, 1)], vec![], vec![], vec![], vec![]];
    let initial = [(1, 10), (2, 20)];
    let got = run_sum(&input, &initial, 2000);
    assert_eq!(
        got,
        [
            vec![snapshot(1, 10), snapshot(2, 20)],
            vec![sum(2, 21), snapshot(1, 10), snapshot(2, 21)],
            vec![snapshot(1, 10), snapshot(2, 21)],
            vec![timed_out(1, 10), snapshot(2, 21)],
            vec![timed_out(2, 21)],
            vec![],
        ]
    );
    assert_eq!(got, model_sum_remove_peek(&input, &initial, Some(2000)));
}

#[test]
fn initial_state_is_seen_by_the_first_record_and_kept_without_data() {
    let input = vec![vec![(1, 1)], vec![(1, REMOVE)], vec![]];
    let initial = vec![(1, 10), (3, 30)];
    let init = initial.clone();
    let got = same_sorted(at_1_and_3(&input, move |s| {
        with_snapshots(&s.map_with_state(sum_spec(init.clone(), None)))
    }));
    assert_eq!(
        got,
        [
            vec![sum(1, 11), snapshot(1, 11), snapshot(3, 30)],
            vec![Out::Mapped(Ev::Removed(1, Some(11))), snapshot(3, 30)],
            vec![snapshot(3, 30)],
        ]
    );
    assert_eq!(got, model_sum_remove_peek(&input, &initial, None));
}

#[test]
fn map_with_state_calls_once_per_record_in_arrival_order_at_local_1() {
    let input = vec![
        vec![(s("a"), s("x")), (s("b"), s("p")), (s("a"), s("y"))],
        vec![(s("a"), s("z"))],
    ];
    let concat = |k: &String, v: Option<String>, st: &mut State<String>| {
        let next = st.get().cloned().unwrap_or_default() + &v.unwrap_or_default();
        st.update(next.clone()).expect("update");
        (k.clone(), next)
    };
    let got = sorted(run_local(1, input, move |s| {
        s.map_with_state(StateSpec::function(concat)).stream()
    }));
    assert_eq!(
        got,
        [
            vec![(s("a"), s("x")), (s("a"), s("xy")), (s("b"), s("p"))],
            vec![(s("a"), s("xyz"))],
        ]
    );
}

#[test]
fn map_with_state_outputs_one_record_per_call_at_1_and_3() {
    let input = vec![
        vec![(s("a"), 1), (s("b"), 1), (s("a"), 1), (s("a"), 1)],
        vec![],
        vec![(s("b"), 1)],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.map_with_state(StateSpec::function(
            |k: &String, _: Option<i64>, st: &mut State<u64>| {
                let n = st.get().copied().unwrap_or(0) + 1;
                st.update(n).expect("update");
                (k.clone(), n)
            },
        ))
        .stream()
    }));
    assert_eq!(
        got,
        [
            vec![(s("a"), 1), (s("a"), 2), (s("a"), 3), (s("b"), 1)],
            vec![],
            vec![(s("b"), 2)],
        ]
    );
}

#[test]
fn function_with_time_gets_the_batch_time_and_none_emits_nothing() {
    // Odd values and key c's timeout emit nothing; the state is kept all
    // the same.
    let input = vec![
        vec![(s("a"), 1), (s("b"), 2), (s("c"), 3)],
        vec![],
        vec![(s("a"), 4)],
        vec![],
        vec![],
    ];
    type Row = (u64, String, Option<i64>, i64);
    let f = |t: Time, k: &String, v: Option<i64>, st: &mut State<i64>| -> Option<Row> {
        match v {
            Some(v) => {
                let sum = st.get().copied().unwrap_or(0) + v;
                st.update(sum).expect("update");
                (v % 2 == 0).then(|| (t.milliseconds(), k.clone(), Some(v), sum))
            }
            None if k == "c" => None,
            None => Some((
                t.milliseconds(),
                k.clone(),
                None,
                *st.get().expect("old state"),
            )),
        }
    };
    let got = same_sorted(at_1_and_3(&input, move |s| {
        with_snapshots(&s.map_with_state(StateSpec::function_with_time(f).timeout(seconds(1))))
    }));
    let m = |t: u64, k: &str, v: Option<i64>, sum: i64| Out::Mapped((t, s(k), v, sum));
    let sn = |k: &str, v: i64| Out::Snapshot(s(k), v);
    assert_eq!(
        got,
        [
            vec![m(1000, "b", Some(2), 2), sn("a", 1), sn("b", 2), sn("c", 3)],
            vec![sn("a", 1), sn("b", 2), sn("c", 3)],
            vec![m(3000, "a", Some(4), 5), m(3000, "b", None, 2), sn("a", 5)],
            vec![sn("a", 5)],
            vec![m(5000, "a", None, 5)],
        ]
    );
}

#[test]
fn state_snapshots_are_emitted_for_empty_batches() {
    let input = vec![vec![(1, 4), (2, 3)], vec![], vec![(2, REMOVE)], vec![]];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.map_with_state(sum_spec(Vec::new(), None))
            .state_snapshots()
    }));
    assert_eq!(
        got,
        [
            vec![(1, 4), (2, 3)],
            vec![(1, 4), (2, 3)],
            vec![(1, 4)],
            vec![(1, 4)],
        ]
    );
}

#[test]
fn the_mapped_stream_holds_no_snapshots() {
    let input = vec![vec![(1, 4)], vec![], vec![(1, 1)]];
    let got = same_sorted(at_1_and_3(&input, |s| {
        let m = s.map_with_state(sum_spec(Vec::new(), Some(5000)));
        let _ = m.state_snapshots();
        m.stream()
    }));
    assert_eq!(got, [vec![Ev::Sum(1, 4)], vec![], vec![Ev::Sum(1, 5)]]);
}
