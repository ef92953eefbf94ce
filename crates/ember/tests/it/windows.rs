//! Sliding windows against a naive recomputation from the definition.
//!
//! Spark's definition: over parent batches at times `1000·i` (`i ≥ 1`), a
//! window of length `L` sliding by `S` has an output at every `t = k·S`
//! (`k ≥ 1`) up to the last batch run, holding the parent batches with times
//! in `(t − L, t]`. The reference models below compute each window's records
//! from that definition over the whole input, then each operation from the
//! sequence of windows — never incrementally — and every operation is run at
//! `local[1]` and `local[3]` over seeded random batches for several shapes:
//! `S = L`, `S < L`, `S > L` (batches falling between two windows), `L = S = 1 s`
//! and windows longer than the whole input.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ember::prelude::*;
use ember::Error;
use ember_testkit::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------
// Shapes and random inputs.
// ---------------------------------------------------------------------------

/// The batch interval of the test helpers.
const BATCH_MS: u64 = INTERVAL_MS;

/// `(length, slide)` in ms, all multiples of the 1 s batch interval.
const SHAPES: [(u64, u64); 10] = [
    (1000, 1000),  // L = S = one batch
    (3000, 1000),  // S < L
    (3000, 2000),  // S < L, S not dividing L
    (4000, 2000),  // S < L, S dividing L
    (2000, 2000),  // tumbling
    (3000, 3000),  // tumbling, 3 s
    (1000, 2000),  // S > L: every other batch in no window
    (2000, 3000),  // S > L
    (30000, 1000), // longer than the whole input
    (25000, 4000), // longer than the whole input, S > 1 batch
];

/// Random keyed batches: 10 to 20 of them, about a quarter empty; each
/// non-empty batch draws its records from a random subset of the keys `0..5`,
/// so keys recur, vanish for a while and come back. Values in `-5..=5`, so
/// sums often return to zero.
fn random_pairs(seed: u64) -> Vec<Vec<(u32, i64)>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = rng.gen_range(10..=20);
    (0..n)
        .map(|_| {
            if rng.gen_bool(0.25) {
                return Vec::new();
            }
            let active: Vec<u32> = (0..5).filter(|_| rng.gen_bool(0.4)).collect();
            if active.is_empty() {
                return Vec::new();
            }
            let len = rng.gen_range(1..=8);
            (0..len)
                .map(|_| {
                    let k = active[rng.gen_range(0..active.len())];
                    (k, rng.gen_range(-5..=5))
                })
                .collect()
        })
        .collect()
}

/// Random integer batches (the values of [`random_pairs`]).
fn random_ints(seed: u64) -> Vec<Vec<i64>> {
    random_pairs(seed)
        .into_iter()
        .map(|b| b.into_iter().map(|(_, v)| v).collect())
        .collect()
}

/// A one-letter string for a value in `-5..=5`.
fn letter(v: i64) -> String {
    char::from(b'a' + (v + 5) as u8).to_string()
}

/// Random keyed batches with one-letter string values.
fn random_string_pairs(seed: u64) -> Vec<Vec<(u32, String)>> {
    random_pairs(seed)
        .into_iter()
        .map(|b| b.into_iter().map(|(k, v)| (k, letter(v))).collect())
        .collect()
}

/// Random batches of one-letter strings.
fn random_strings(seed: u64) -> Vec<Vec<String>> {
    random_ints(seed)
        .into_iter()
        .map(|b| b.into_iter().map(letter).collect())
        .collect()
}

fn s(x: &str) -> String {
    x.to_string()
}

/// A different seed for every shape of every test.
fn seed(test: u64, shape: usize) -> u64 {
    test * 100 + shape as u64
}

/// The label of a case in assertion messages.
fn case(l: u64, sl: u64, seed: u64) -> String {
    format!("window {l} ms sliding {sl} ms, seed {seed}")
}

// ---------------------------------------------------------------------------
// The reference model: windows from the definition.
// ---------------------------------------------------------------------------

/// The input batches with their times: batch `i` (from 0) at `(i + 1)·1000`.
fn timed<T: Clone>(input: &[Vec<T>]) -> Vec<(u64, Vec<T>)> {
    input
        .iter()
        .enumerate()
        .map(|(i, b)| ((i as u64 + 1) * BATCH_MS, b.clone()))
        .collect()
}

/// A window of `l` sliding by `sl` over timed parent batches, with outputs
/// at `k·sl` up to `end`: each holds the parent batches with times in
/// `(t − l, t]`, older first.
fn window_of<T: Clone>(parent: &[(u64, Vec<T>)], l: u64, sl: u64, end: u64) -> Vec<(u64, Vec<T>)> {
    (1..)
        .map(|k| k * sl)
        .take_while(|&t| t <= end)
        .map(|t| {
            let records = parent
                .iter()
                .filter(|(bt, _)| *bt + l > t && *bt <= t)
                .flat_map(|(_, b)| b.iter().cloned())
                .collect();
            (t, records)
        })
        .collect()
}

/// The records of each window over `input` (run for `input.len()` batches).
fn model_window<T: Clone>(input: &[Vec<T>], l: u64, sl: u64) -> Vec<Vec<T>> {
    let end = input.len() as u64 * BATCH_MS;
    window_of(&timed(input), l, sl, end)
        .into_iter()
        .map(|(_, w)| w)
        .collect()
}

/// `reduce_by_window`: the reduction of each window, nothing for an empty one.
fn model_reduce_by_window<T: Clone>(
    input: &[Vec<T>],
    l: u64,
    sl: u64,
    f: impl Fn(T, T) -> T,
) -> Vec<Vec<T>> {
    model_window(input, l, sl)
        .into_iter()
        .map(|w| w.into_iter().reduce(&f).into_iter().collect())
        .collect()
}

/// `reduce_by_window_inv` with `+`/`−`: nothing until a record has been in a
/// window, then the window's sum (0 when empty).
fn model_sum_by_window_inv(input: &[Vec<i64>], l: u64, sl: u64) -> Vec<Vec<i64>> {
    let mut seen = false;
    model_window(input, l, sl)
        .into_iter()
        .map(|w| {
            seen |= !w.is_empty();
            if seen {
                vec![w.iter().sum()]
            } else {
                vec![]
            }
        })
        .collect()
}

/// `count_by_window`: nothing until a record has been in a window, then the
/// window's count (0 when empty).
fn model_count_by_window<T: Clone>(input: &[Vec<T>], l: u64, sl: u64) -> Vec<Vec<u64>> {
    let mut seen = false;
    model_window(input, l, sl)
        .into_iter()
        .map(|w| {
            seen |= !w.is_empty();
            if seen {
                vec![w.len() as u64]
            } else {
                vec![]
            }
        })
        .collect()
}

/// Per key, its values in the window in order (older batches first).
fn groups<K: Ord + Clone, V: Clone>(window: &[(K, V)]) -> BTreeMap<K, Vec<V>> {
    let mut groups: BTreeMap<K, Vec<V>> = BTreeMap::new();
    for (k, v) in window {
        groups.entry(k.clone()).or_default().push(v.clone());
    }
    groups
}

/// `reduce_by_key_and_window`: per key with values in the window, their
/// reduction in order; sorted by key.
fn model_reduce_by_key_and_window<K: Ord + Clone, V: Clone>(
    input: &[Vec<(K, V)>],
    l: u64,
    sl: u64,
    f: impl Fn(V, V) -> V,
) -> Vec<Vec<(K, V)>> {
    model_window(input, l, sl)
        .iter()
        .map(|w| {
            groups(w)
                .into_iter()
                .map(|(k, vs)| (k, vs.into_iter().reduce(&f).expect("non-empty group")))
                .collect()
        })
        .collect()
}

/// Per key, the sum of its values in the window.
fn sums(window: &[(u32, i64)]) -> BTreeMap<u32, i64> {
    let mut sums = BTreeMap::new();
    for (k, v) in window {
        *sums.entry(*k).or_insert(0) += v;
    }
    sums
}

/// `reduce_by_key_and_window_inv` with `+`/`−`: every key that has been in
/// some window so far, with its sum over this one (0 when it has no values).
fn model_sum_by_key_and_window_inv(
    input: &[Vec<(u32, i64)>],
    l: u64,
    sl: u64,
) -> Vec<Vec<(u32, i64)>> {
    inv_sums_over(&model_window(input, l, sl))
}

/// The inverse path's output over a sequence of window contents.
fn inv_sums_over(windows: &[Vec<(u32, i64)>]) -> Vec<Vec<(u32, i64)>> {
    let mut seen = BTreeSet::new();
    windows
        .iter()
        .map(|w| {
            let sums = sums(w);
            seen.extend(sums.keys().copied());
            seen.iter()
                .map(|k| (*k, sums.get(k).copied().unwrap_or(0)))
                .collect()
        })
        .collect()
}

/// `reduce_by_key_and_window_inv_filter` with `+`/`−`, by its recursive
/// definition: `state(t)` is the keys in `state(t_prev)` or with values in
/// window `t` whose sum over window `t` (0 if none) `keep` accepts.
fn model_sum_by_key_and_window_inv_filter(
    input: &[Vec<(u32, i64)>],
    l: u64,
    sl: u64,
    keep: impl Fn(&(u32, i64)) -> bool,
) -> Vec<Vec<(u32, i64)>> {
    let mut state: BTreeSet<u32> = BTreeSet::new();
    model_window(input, l, sl)
        .iter()
        .map(|w| {
            let sums = sums(w);
            let candidates: BTreeSet<u32> = state.iter().chain(sums.keys()).copied().collect();
            let out: Vec<(u32, i64)> = candidates
                .into_iter()
                .map(|k| (k, sums.get(&k).copied().unwrap_or(0)))
                .filter(|kv| keep(kv))
                .collect();
            state = out.iter().map(|(k, _)| *k).collect();
            out
        })
        .collect()
}

/// `count_by_value_and_window`: the count of each distinct record in the
/// window (records absent from it do not appear); sorted.
fn model_count_by_value_and_window<T: Ord + Clone>(
    input: &[Vec<T>],
    l: u64,
    sl: u64,
) -> Vec<Vec<(T, u64)>> {
    model_window(input, l, sl)
        .into_iter()
        .map(|w| {
            let mut counts: BTreeMap<T, u64> = BTreeMap::new();
            for x in w {
                *counts.entry(x).or_insert(0) += 1;
            }
            counts.into_iter().collect()
        })
        .collect()
}

/// `group_by_key_and_window`: per key its values in the window, older
/// batches first; sorted by key.
fn model_group_by_key_and_window<K: Ord + Clone, V: Clone>(
    input: &[Vec<(K, V)>],
    l: u64,
    sl: u64,
) -> Vec<Vec<(K, Vec<V>)>> {
    model_window(input, l, sl)
        .iter()
        .map(|w| groups(w).into_iter().collect())
        .collect()
}

// ---------------------------------------------------------------------------
// Normalising outputs whose order Spark leaves undefined.
// ---------------------------------------------------------------------------

/// Each string's characters sorted: a concatenation in any order.
fn chars_sorted(x: &str) -> String {
    let mut cs: Vec<char> = x.chars().collect();
    cs.sort_unstable();
    cs.into_iter().collect()
}

/// Keyed concatenations with their letters sorted, each batch sorted.
fn concat_multisets<K: Ord>(batches: Vec<Vec<(K, String)>>) -> Vec<Vec<(K, String)>> {
    sorted(
        batches
            .into_iter()
            .map(|b| b.into_iter().map(|(k, v)| (k, chars_sorted(&v))).collect())
            .collect(),
    )
}

/// Grouped values sorted within each group, each batch sorted.
fn group_multisets<K: Ord, V: Ord>(batches: Vec<Vec<(K, Vec<V>)>>) -> Vec<Vec<(K, Vec<V>)>> {
    sorted(
        batches
            .into_iter()
            .map(|b| {
                b.into_iter()
                    .map(|(k, mut vs)| {
                        vs.sort();
                        (k, vs)
                    })
                    .collect()
            })
            .collect(),
    )
}

/// Outputs with their times (in ms), as a sink shares them.
type Timed<U> = Arc<Mutex<Vec<(u64, Vec<U>)>>>;

/// Runs `define` on a manual clock at `local[workers]` for `batches` batches
/// and returns each output with its time (in ms).
fn run_timed<U, F>(workers: usize, batches: u64, define: F) -> Vec<(u64, Vec<U>)>
where
    U: ember::Data,
    F: for<'s> Fn(&StreamingScope<'s>) -> DStream<'s, U> + Send + Sync + 'static,
{
    let clock = ManualClock::new();
    let conf = StreamingConf::new("windows", seconds(1))
        .master(&format!("local[{workers}]"))
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    let out: Timed<U> = Arc::default();
    let sink = out.clone();
    ssc.define(move |s| {
        let sink = sink.clone();
        define(s).foreach_rdd(move |batch, time| {
            sink.lock().unwrap().push((time.milliseconds(), batch));
        });
    })
    .unwrap();
    ssc.start().unwrap();
    for i in 1..=batches {
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(i * BATCH_MS)).unwrap();
    }
    ssc.stop(false).unwrap();
    let mut out = std::mem::take(&mut *out.lock().unwrap());
    out.sort_by_key(|(t, _)| *t);
    out
}

/// What `start` says about a graph `define` builds (on a 1 s batch interval).
fn start_error<F>(define: F) -> Error
where
    F: for<'s> Fn(&StreamingScope<'s>) + Send + Sync + 'static,
{
    let clock = ManualClock::new();
    let conf = StreamingConf::new("windows", seconds(1))
        .master("local[2]")
        .unwrap();
    let ssc = StreamingContext::with_clock(conf, clock).unwrap();
    ssc.define(define).unwrap();
    let err = ssc.start().expect_err("start must reject the window");
    ssc.stop(false).unwrap();
    err
}

// ---------------------------------------------------------------------------
// Hand-written cases.
// ---------------------------------------------------------------------------

#[test]
fn a_3s_window_sliding_2s_first_outputs_at_2s_with_two_batches() {
    for w in WORKERS {
        let got = run_timed(w, 7, |s| {
            s.queue_stream((1..=7i64).map(|i| vec![i]).collect::<Vec<_>>(), true, None)
                .window(seconds(3), seconds(2))
        });
        let got: Vec<(u64, Vec<i64>)> = got
            .into_iter()
            .map(|(t, mut b)| {
                b.sort();
                (t, b)
            })
            .collect();
        assert_eq!(
            got,
            [
                (2000, vec![1, 2]),
                (4000, vec![2, 3, 4]),
                (6000, vec![4, 5, 6])
            ],
            "local[{w}]"
        );
    }
}

#[test]
fn window_keeps_older_batches_first_at_local_1() {
    let input = vec![vec![3, 1], vec![], vec![9, 2, 7], vec![5], vec![4, 8]];
    let one = run_local(1, input.clone(), |s| s.window(seconds(3), seconds(1)));
    assert_eq!(
        one,
        [
            vec![3, 1],
            vec![3, 1],
            vec![3, 1, 9, 2, 7],
            vec![9, 2, 7, 5],
            vec![9, 2, 7, 5, 4, 8]
        ]
    );
    let three = same_sorted(at_1_and_3(&input, |s| s.window(seconds(3), seconds(1))));
    assert_eq!(three, sorted(one));
}

#[test]
fn window_slide_defaults_to_the_parent_slide() {
    let input = vec![vec![1], vec![2], vec![], vec![4]];
    let got = same_sorted(at_1_and_3(&input, |s| s.window(seconds(2), None)));
    assert_eq!(got, [vec![1], vec![1, 2], vec![2], vec![4]]);
}

#[test]
fn a_slide_longer_than_the_window_skips_the_batches_in_between() {
    let input: Vec<Vec<i64>> = (1..=6).map(|i| vec![i]).collect();
    let got = same_sorted(at_1_and_3(&input, |s| s.window(seconds(1), seconds(3))));
    assert_eq!(got, [vec![3], vec![6]]);
}

#[test]
fn reduce_by_window_is_empty_for_an_empty_window_and_the_inverse_path_gives_zero() {
    let input = vec![vec![], vec![], vec![3], vec![4], vec![], vec![], vec![5]];
    let plain = same_exactly(at_1_and_3(&input, |s| {
        s.reduce_by_window(|a: i64, b| a + b, seconds(2), seconds(1))
    }));
    assert_eq!(
        plain,
        [vec![], vec![], vec![3], vec![7], vec![4], vec![], vec![5]]
    );
    let inv = same_exactly(at_1_and_3(&input, |s| {
        s.reduce_by_window_inv(|a: i64, b| a + b, |a, b| a - b, seconds(2), seconds(1))
    }));
    assert_eq!(
        inv,
        [vec![], vec![], vec![3], vec![7], vec![4], vec![0], vec![5]]
    );
    let count = same_exactly(at_1_and_3(&input, |s| {
        s.count_by_window(seconds(2), seconds(1))
    }));
    assert_eq!(
        count,
        [vec![], vec![], vec![1], vec![2], vec![1], vec![0], vec![1]]
    );
}

#[test]
fn reduce_by_key_and_window_inv_keeps_keys_at_zero() {
    let input = vec![
        vec![(s("a"), 1), (s("b"), 2)],
        vec![(s("a"), 1)],
        vec![],
        vec![],
        vec![(s("b"), 1)],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.reduce_by_key_and_window_inv(|a: i64, b| a + b, |a, b| a - b, seconds(2), seconds(1))
    }));
    assert_eq!(
        got,
        [
            vec![(s("a"), 1), (s("b"), 2)],
            vec![(s("a"), 2), (s("b"), 2)],
            vec![(s("a"), 1), (s("b"), 0)],
            vec![(s("a"), 0), (s("b"), 0)],
            vec![(s("a"), 0), (s("b"), 1)],
        ]
    );
    // Without the inverse, keys without values in the window are absent.
    let plain = same_sorted(at_1_and_3(&input, |s| {
        s.reduce_by_key_and_window(|a: i64, b| a + b, seconds(2), seconds(1))
    }));
    assert_eq!(
        plain,
        [
            vec![(s("a"), 1), (s("b"), 2)],
            vec![(s("a"), 2), (s("b"), 2)],
            vec![(s("a"), 1)],
            vec![],
            vec![(s("b"), 1)],
        ]
    );
}

#[test]
fn count_by_value_and_window_drops_values_whose_count_is_zero() {
    let input = vec![vec![s("x"), s("y"), s("x")], vec![s("x")], vec![], vec![]];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.count_by_value_and_window(seconds(2), seconds(1))
    }));
    assert_eq!(
        got,
        [
            vec![(s("x"), 2), (s("y"), 1)],
            vec![(s("x"), 3), (s("y"), 1)],
            vec![(s("x"), 1)],
            vec![],
        ]
    );
}

#[test]
fn the_inverse_path_with_gaps_counts_only_batches_inside_a_window() {
    // 1 s window every 2 s: the batches at 1 s and 3 s are in no window, so
    // "c" never appears and "a" only appears at 4 s.
    let input = vec![
        vec![(s("a"), 1)],
        vec![(s("b"), 1)],
        vec![(s("c"), 5)],
        vec![(s("a"), 2)],
        vec![(s("c"), 1)],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.reduce_by_key_and_window_inv(|a: i64, b| a + b, |a, b| a - b, seconds(1), seconds(2))
    }));
    assert_eq!(
        got,
        [vec![(s("b"), 1)], vec![(s("a"), 2), (s("b"), 0)]],
        "Spark subtracts and adds the wrong batches here; ember follows the definition"
    );
    let counts = same_exactly(at_1_and_3(&input, |s| {
        s.count_by_window(seconds(1), seconds(2))
    }));
    assert_eq!(counts, [vec![1], vec![1]]);
}

#[test]
fn the_filter_recomputes_a_key_filtered_out_while_it_had_values() {
    // Keep positive sums, 3 s window every 1 s. "a": +2 at 1 s, −3 at 2 s,
    // +2 at 4 s; "b": +1 at 1 s, −1 at 3 s, +3 at 6 s. Both are filtered out
    // while they still have values in the window (where Spark fails).
    let input = vec![
        vec![(s("a"), 2), (s("b"), 1)],
        vec![(s("a"), -3)],
        vec![(s("b"), -1)],
        vec![(s("a"), 2)],
        vec![],
        vec![(s("b"), 3)],
        vec![],
        vec![],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.reduce_by_key_and_window_inv_filter(
            |a: i64, b| a + b,
            |a, b| a - b,
            |(_, v)| *v > 0,
            seconds(3),
            seconds(1),
        )
    }));
    let want = vec![
        vec![(s("a"), 2), (s("b"), 1)], // (−2, 1]: a 2, b 1
        vec![(s("b"), 1)],              // (−1, 2]: a −1
        vec![],                         // (0, 3]: a −1, b 0
        vec![],                         // (1, 4]: a −3 + 2, b −1
        vec![(s("a"), 2)],              // (2, 5]: a 2, b −1
        vec![(s("a"), 2), (s("b"), 3)], // (3, 6]
        vec![(s("b"), 3)],              // (4, 7]: a 0
        vec![(s("b"), 3)],              // (5, 8]
    ];
    assert_eq!(got, want);
    // The model, with "a" as 0 and "b" as 1, agrees.
    let numbered: Vec<Vec<(u32, i64)>> = input
        .iter()
        .map(|b| b.iter().map(|(k, v)| (u32::from(k == "b"), *v)).collect())
        .collect();
    let model = model_sum_by_key_and_window_inv_filter(&numbered, 3000, 1000, |(_, v)| *v > 0);
    let named: Vec<Vec<(String, i64)>> = model
        .into_iter()
        .map(|b| {
            b.into_iter()
                .map(|(k, v)| (s(["a", "b"][k as usize]), v))
                .collect()
        })
        .collect();
    assert_eq!(named, want, "the model on the hand-written case");
}

#[test]
fn group_by_key_and_window_keeps_older_values_first_at_local_1() {
    let input = vec![
        vec![(s("a"), 3), (s("b"), 1), (s("a"), 1)],
        vec![(s("a"), 2)],
        vec![],
        vec![(s("b"), 0), (s("a"), 9)],
    ];
    let [one, three] = at_1_and_3(&input, |s| {
        s.group_by_key_and_window(seconds(2), seconds(2))
    });
    let want = vec![
        vec![(s("a"), vec![3, 1, 2]), (s("b"), vec![1])],
        vec![(s("a"), vec![9]), (s("b"), vec![0])],
    ];
    assert_eq!(sorted(one), want, "local[1]: older batches first");
    assert_eq!(group_multisets(three), group_multisets(want), "local[3]");
}

#[test]
fn a_window_over_a_windowed_stream_concatenates_the_inner_windows() {
    let input: Vec<Vec<i64>> = (1..=6).map(|i| vec![i]).collect();
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.window(seconds(2), seconds(1))
            .window(seconds(4), seconds(2))
    }));
    assert_eq!(
        got,
        [
            vec![1, 1, 2],                // inner 1 s, 2 s
            vec![1, 1, 2, 2, 3, 3, 4],    // inner 1 s .. 4 s
            vec![2, 3, 3, 4, 4, 5, 5, 6], // inner 3 s .. 6 s
        ]
    );
}

// ---------------------------------------------------------------------------
// Validation: durations that are not multiples of the parent's slide.
// ---------------------------------------------------------------------------

fn assert_multiple_error(err: Error, what: &str, ms: u64, parent: u64) {
    assert!(matches!(err, Error::InvalidGraph(_)), "{err:?}");
    let msg = err.to_string();
    let want = format!(
        "{what} duration of the windowed DStream ({ms} ms) must be a multiple of the slide \
         duration of the parent DStream ({parent} ms)"
    );
    assert!(msg.contains(&want), "{msg}\nshould contain: {want}");
}

#[test]
fn a_window_length_not_a_multiple_of_the_batch_interval_fails_start() {
    let err = start_error(|s| {
        s.queue_stream(vec![vec![1i64]], true, None)
            .window(millis(2500), seconds(1))
            .foreach_rdd(|_, _| {})
    });
    assert_multiple_error(err, "window", 2500, 1000);
}

#[test]
fn a_window_slide_not_a_multiple_of_the_batch_interval_fails_start() {
    let err = start_error(|s| {
        s.queue_stream(vec![vec![1i64]], true, None)
            .window(seconds(3), millis(1500))
            .foreach_rdd(|_, _| {})
    });
    assert_multiple_error(err, "slide", 1500, 1000);
}

#[test]
fn every_windowed_operation_validates_its_durations() {
    type Def = fn(&StreamingScope<'_>);
    let defs: [(Def, &str, u64); 8] = [
        (
            |s| {
                s.queue_stream(vec![vec![1i64]], true, None)
                    .reduce_by_window(|a, b| a + b, millis(2500), seconds(1))
                    .foreach_rdd(|_, _| {})
            },
            "window",
            2500,
        ),
        (
            |s| {
                s.queue_stream(vec![vec![1i64]], true, None)
                    .reduce_by_window_inv(|a, b| a + b, |a, b| a - b, seconds(2), millis(500))
                    .foreach_rdd(|_, _| {})
            },
            "slide",
            500,
        ),
        (
            |s| {
                s.queue_stream(vec![vec![1i64]], true, None)
                    .count_by_window(millis(1200), seconds(1))
                    .foreach_rdd(|_, _| {})
            },
            "window",
            1200,
        ),
        (
            |s| {
                s.queue_stream(vec![vec![(1u32, 1i64)]], true, None)
                    .reduce_by_key_and_window(|a, b| a + b, seconds(2), millis(2500))
                    .foreach_rdd(|_, _| {})
            },
            "slide",
            2500,
        ),
        (
            |s| {
                s.queue_stream(vec![vec![(1u32, 1i64)]], true, None)
                    .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, millis(3500), None)
                    .foreach_rdd(|_, _| {})
            },
            "window",
            3500,
        ),
        (
            |s| {
                s.queue_stream(vec![vec![(1u32, 1i64)]], true, None)
                    .reduce_by_key_and_window_inv_filter(
                        |a, b| a + b,
                        |a, b| a - b,
                        |_| true,
                        seconds(4),
                        millis(1001),
                    )
                    .foreach_rdd(|_, _| {})
            },
            "slide",
            1001,
        ),
        (
            |s| {
                s.queue_stream(vec![vec![1u32]], true, None)
                    .count_by_value_and_window(millis(999), seconds(1))
                    .foreach_rdd(|_, _| {})
            },
            "window",
            999,
        ),
        (
            |s| {
                s.queue_stream(vec![vec![(1u32, 1i64)]], true, None)
                    .group_by_key_and_window(millis(2500), None)
                    .foreach_rdd(|_, _| {})
            },
            "window",
            2500,
        ),
    ];
    for (def, what, ms) in defs {
        assert_multiple_error(start_error(def), what, ms, 1000);
    }
}

#[test]
fn a_window_over_a_windowed_stream_must_be_a_multiple_of_its_slide() {
    let err = start_error(|s| {
        s.queue_stream(vec![vec![1i64]], true, None)
            .window(seconds(4), seconds(2))
            .window(seconds(3), seconds(2))
            .foreach_rdd(|_, _| {})
    });
    assert_multiple_error(err, "window", 3000, 2000);
    let err = start_error(|s| {
        s.queue_stream(vec![vec![1i64]], true, None)
            .window(seconds(4), seconds(2))
            .window(seconds(4), seconds(3))
            .foreach_rdd(|_, _| {})
    });
    assert_multiple_error(err, "slide", 3000, 2000);
    let err = start_error(|s| {
        s.queue_stream(vec![vec![(1u32, 1i64)]], true, None)
            .window(seconds(4), seconds(2))
            .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, seconds(3), seconds(2))
            .foreach_rdd(|_, _| {})
    });
    assert_multiple_error(err, "window", 3000, 2000);
}

// ---------------------------------------------------------------------------
// Random batches against the model, for every shape.
// ---------------------------------------------------------------------------

#[test]
fn window_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(1, i);
        let input = random_ints(seed);
        let want = model_window(&input, l, sl);
        let [one, three] = at_1_and_3(&input, move |s| s.window(millis(l), millis(sl)));
        assert_eq!(
            one,
            want,
            "local[1], older batches first: {}",
            case(l, sl, seed)
        );
        assert_eq!(
            sorted(three),
            sorted(want),
            "local[3]: {}",
            case(l, sl, seed)
        );
    }
}

#[test]
fn window_of_strings_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(2, i);
        let input = random_strings(seed);
        let want = model_window(&input, l, sl);
        let [one, three] = at_1_and_3(&input, move |s| s.window(millis(l), millis(sl)));
        assert_eq!(
            one,
            want,
            "local[1], older batches first: {}",
            case(l, sl, seed)
        );
        assert_eq!(
            sorted(three),
            sorted(want),
            "local[3]: {}",
            case(l, sl, seed)
        );
    }
}

#[test]
fn a_window_over_a_windowed_stream_matches_the_model_on_random_batches() {
    // (inner length, inner slide, outer length, outer slide)
    let shapes: [(u64, u64, u64, u64); 4] = [
        (2000, 1000, 4000, 2000),
        (3000, 1000, 2000, 3000),
        (4000, 2000, 6000, 4000),
        (1000, 2000, 4000, 2000),
    ];
    for (i, (il, is, ol, os)) in shapes.into_iter().enumerate() {
        let seed = seed(3, i);
        let input = random_ints(seed);
        let end = input.len() as u64 * BATCH_MS;
        let inner = window_of(&timed(&input), il, is, end);
        let want: Vec<Vec<i64>> = window_of(&inner, ol, os, end)
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        let got = same_sorted(at_1_and_3(&input, move |s| {
            s.window(millis(il), millis(is))
                .window(millis(ol), millis(os))
        }));
        assert_eq!(
            got,
            sorted(want),
            "inner {il}/{is} outer {ol}/{os}, seed {seed}"
        );
    }
}

#[test]
fn reduce_by_window_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(4, i);
        let input = random_ints(seed);
        let got = same_exactly(at_1_and_3(&input, move |s| {
            s.reduce_by_window(|a: i64, b| a + b, millis(l), millis(sl))
        }));
        let want = model_reduce_by_window(&input, l, sl, |a, b| a + b);
        assert_eq!(got, want, "sum: {}", case(l, sl, seed));
        let got = same_exactly(at_1_and_3(&input, move |s| {
            s.reduce_by_window(|a: i64, b| a.max(b), millis(l), millis(sl))
        }));
        let want = model_reduce_by_window(&input, l, sl, |a, b| a.max(b));
        assert_eq!(got, want, "max: {}", case(l, sl, seed));
    }
}

#[test]
fn reduce_by_window_of_strings_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(5, i);
        let input = random_strings(seed);
        let want = model_reduce_by_window(&input, l, sl, |a, b| a + &b);
        let [one, three] = at_1_and_3(&input, move |s| {
            s.reduce_by_window(|a: String, b| a + &b, millis(l), millis(sl))
        });
        let letters = |bs: Vec<Vec<String>>| -> Vec<Vec<String>> {
            bs.into_iter()
                .map(|b| b.iter().map(|x| chars_sorted(x)).collect())
                .collect()
        };
        assert_eq!(
            letters(one),
            letters(want.clone()),
            "local[1]: {}",
            case(l, sl, seed)
        );
        assert_eq!(
            letters(three),
            letters(want),
            "local[3]: {}",
            case(l, sl, seed)
        );
    }
}

#[test]
fn reduce_by_window_inv_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(6, i);
        let input = random_ints(seed);
        let got = same_exactly(at_1_and_3(&input, move |s| {
            s.reduce_by_window_inv(|a: i64, b| a + b, |a, b| a - b, millis(l), millis(sl))
        }));
        let want = model_sum_by_window_inv(&input, l, sl);
        assert_eq!(got, want, "{}", case(l, sl, seed));
    }
}

#[test]
fn count_by_window_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(7, i);
        let input = random_strings(seed);
        let got = same_exactly(at_1_and_3(&input, move |s| {
            s.count_by_window(millis(l), millis(sl))
        }));
        let want = model_count_by_window(&input, l, sl);
        assert_eq!(got, want, "{}", case(l, sl, seed));
    }
}

#[test]
fn reduce_by_key_and_window_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(8, i);
        let input = random_pairs(seed);
        let got = same_sorted(at_1_and_3(&input, move |s| {
            s.reduce_by_key_and_window(|a: i64, b| a + b, millis(l), millis(sl))
        }));
        let want = model_reduce_by_key_and_window(&input, l, sl, |a, b| a + b);
        assert_eq!(got, want, "{}", case(l, sl, seed));
    }
}

#[test]
fn reduce_by_key_and_window_of_strings_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(9, i);
        let input = random_string_pairs(seed);
        let want = model_reduce_by_key_and_window(&input, l, sl, |a, b| a + &b);
        let [one, three] = at_1_and_3(&input, move |s| {
            s.reduce_by_key_and_window(|a: String, b| a + &b, millis(l), millis(sl))
        });
        assert_eq!(
            concat_multisets(one),
            concat_multisets(want.clone()),
            "local[1]: {}",
            case(l, sl, seed)
        );
        assert_eq!(
            concat_multisets(three),
            concat_multisets(want),
            "local[3]: {}",
            case(l, sl, seed)
        );
    }
}

#[test]
fn reduce_by_key_and_window_inv_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(10, i);
        let input = random_pairs(seed);
        let got = same_sorted(at_1_and_3(&input, move |s| {
            s.reduce_by_key_and_window_inv(|a: i64, b| a + b, |a, b| a - b, millis(l), millis(sl))
        }));
        let want = model_sum_by_key_and_window_inv(&input, l, sl);
        assert_eq!(got, want, "{}", case(l, sl, seed));
    }
}

#[test]
fn reduce_by_key_and_window_inv_agrees_with_the_plain_path_on_keys_present() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(11, i);
        let input = random_pairs(seed);
        let inv = same_sorted(at_1_and_3(&input, move |s| {
            s.reduce_by_key_and_window_inv(|a: i64, b| a + b, |a, b| a - b, millis(l), millis(sl))
        }));
        let plain = same_sorted(at_1_and_3(&input, move |s| {
            s.reduce_by_key_and_window(|a: i64, b| a + b, millis(l), millis(sl))
        }));
        assert_eq!(inv.len(), plain.len(), "{}", case(l, sl, seed));
        for (w, (inv, plain)) in inv.iter().zip(&plain).enumerate() {
            let inv: BTreeMap<u32, i64> = inv.iter().copied().collect();
            for (k, v) in plain {
                assert_eq!(inv.get(k), Some(v), "window {w}: {}", case(l, sl, seed));
            }
        }
    }
}

#[test]
fn reduce_by_key_and_window_inv_filter_matches_the_model_on_random_batches() {
    type Keep = fn(&(u32, i64)) -> bool;
    let keeps: [(&str, Keep); 3] = [
        ("non-zero", |(_, v)| *v != 0),
        ("positive", |(_, v)| *v > 0),
        ("key-dependent", |(k, v)| {
            (*k as i64 + *v).rem_euclid(3) != 0
        }),
    ];
    for (j, (name, keep)) in keeps.into_iter().enumerate() {
        for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
            let seed = seed(12 + j as u64, i);
            let input = random_pairs(seed);
            let got = same_sorted(at_1_and_3(&input, move |s| {
                s.reduce_by_key_and_window_inv_filter(
                    |a: i64, b| a + b,
                    |a, b| a - b,
                    keep,
                    millis(l),
                    millis(sl),
                )
            }));
            let want = model_sum_by_key_and_window_inv_filter(&input, l, sl, keep);
            assert_eq!(got, want, "keep {name}: {}", case(l, sl, seed));
        }
    }
}

#[test]
fn count_by_value_and_window_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(15, i);
        let input = random_ints(seed);
        let got = same_sorted(at_1_and_3(&input, move |s| {
            s.count_by_value_and_window(millis(l), millis(sl))
        }));
        let want = model_count_by_value_and_window(&input, l, sl);
        assert_eq!(got, want, "{}", case(l, sl, seed));
    }
}

#[test]
fn group_by_key_and_window_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(16, i);
        let input = random_pairs(seed);
        let want = model_group_by_key_and_window(&input, l, sl);
        let [one, three] = at_1_and_3(&input, move |s| {
            s.group_by_key_and_window(millis(l), millis(sl))
        });
        assert_eq!(
            sorted(one),
            want,
            "local[1], older batches first: {}",
            case(l, sl, seed)
        );
        assert_eq!(
            group_multisets(three),
            group_multisets(want),
            "local[3]: {}",
            case(l, sl, seed)
        );
    }
}

#[test]
fn group_by_key_and_window_of_strings_matches_the_model_on_random_batches() {
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let seed = seed(17, i);
        let input = random_string_pairs(seed);
        let want = model_group_by_key_and_window(&input, l, sl);
        let [one, three] = at_1_and_3(&input, move |s| {
            s.group_by_key_and_window(millis(l), millis(sl))
        });
        assert_eq!(
            sorted(one),
            want,
            "local[1], older batches first: {}",
            case(l, sl, seed)
        );
        assert_eq!(
            group_multisets(three),
            group_multisets(want),
            "local[3]: {}",
            case(l, sl, seed)
        );
    }
}

#[test]
fn random_inputs_exercise_empty_windows_vanishing_keys_and_gaps() {
    // Guard against a generator that would make the comparisons above vacuous.
    let mut empty_windows = 0;
    let mut zero_keys = 0;
    for (i, (l, sl)) in SHAPES.into_iter().enumerate() {
        let input = random_pairs(seed(10, i));
        assert!((10..=20).contains(&input.len()));
        assert!(input.iter().any(Vec::is_empty), "seed {}", seed(10, i));
        empty_windows += model_window(&input, l, sl)
            .iter()
            .filter(|w| w.is_empty())
            .count();
        zero_keys += model_sum_by_key_and_window_inv(&input, l, sl)
            .iter()
            .flatten()
            .filter(|(_, v)| *v == 0)
            .count();
    }
    assert!(empty_windows > 0);
    assert!(zero_keys > 0);
}

// ---------------------------------------------------------------------------
// Windowed operations over windowed streams, and windowed streams combined.
// ---------------------------------------------------------------------------

#[test]
fn windowed_operations_over_a_windowed_stream_match_the_model() {
    // (inner length, inner slide, outer length, outer slide)
    let shapes: [(u64, u64, u64, u64); 4] = [
        (4000, 2000, 6000, 4000),
        (2000, 2000, 4000, 2000),
        (2000, 2000, 2000, 4000),
        (3000, 1000, 5000, 2000),
    ];
    for (i, (il, is, ol, os)) in shapes.into_iter().enumerate() {
        let seed = seed(20, i);
        let input = random_pairs(seed);
        let end = input.len() as u64 * BATCH_MS;
        let inner = window_of(&timed(&input), il, is, end);
        let outer: Vec<Vec<(u32, i64)>> = window_of(&inner, ol, os, end)
            .into_iter()
            .map(|(_, w)| w)
            .collect();
        let label = format!("inner {il}/{is} outer {ol}/{os}, seed {seed}");

        let got = same_sorted(at_1_and_3(&input, move |s| {
            s.window(millis(il), millis(is))
                .reduce_by_key_and_window_inv(
                    |a: i64, b| a + b,
                    |a, b| a - b,
                    millis(ol),
                    millis(os),
                )
        }));
        assert_eq!(got, inv_sums_over(&outer), "inverse: {label}");

        let got = same_sorted(at_1_and_3(&input, move |s| {
            s.window(millis(il), millis(is)).reduce_by_key_and_window(
                |a: i64, b| a + b,
                millis(ol),
                millis(os),
            )
        }));
        let want: Vec<Vec<(u32, i64)>> = outer
            .iter()
            .map(|w| sums(w).into_iter().collect())
            .collect();
        assert_eq!(got, want, "plain: {label}");

        let got = same_exactly(at_1_and_3(&input, move |s| {
            s.window(millis(il), millis(is))
                .count_by_window(millis(ol), millis(os))
        }));
        let mut seen = false;
        let want: Vec<Vec<u64>> = outer
            .iter()
            .map(|w| {
                seen |= !w.is_empty();
                if seen {
                    vec![w.len() as u64]
                } else {
                    vec![]
                }
            })
            .collect();
        assert_eq!(got, want, "count: {label}");

        let [one, three] = at_1_and_3(&input, move |s| {
            s.window(millis(il), millis(is))
                .group_by_key_and_window(millis(ol), millis(os))
        });
        let want: Vec<Vec<(u32, Vec<i64>)>> = outer
            .iter()
            .map(|w| groups(w).into_iter().collect())
            .collect();
        assert_eq!(sorted(one), want, "group, local[1]: {label}");
        assert_eq!(
            group_multisets(three),
            group_multisets(want),
            "group, local[3]: {label}"
        );
    }
}

#[test]
fn two_windowed_streams_with_the_same_slide_join_window_by_window() {
    for (i, (la, lb)) in [(3000, 5000), (2000, 2000), (1000, 30000)]
        .into_iter()
        .enumerate()
    {
        let seed = seed(21, i);
        let input = random_pairs(seed);
        let a = model_reduce_by_key_and_window(&input, la, 2000, |x, y| x + y);
        let b = model_sum_by_key_and_window_inv(&input, lb, 2000);
        let want: Vec<Vec<(u32, (i64, i64))>> = a
            .iter()
            .zip(&b)
            .map(|(a, b)| {
                let b: BTreeMap<u32, i64> = b.iter().copied().collect();
                a.iter()
                    .filter_map(|(k, va)| b.get(k).map(|vb| (*k, (*va, *vb))))
                    .collect()
            })
            .collect();
        let got = same_sorted(at_1_and_3(&input, move |s| {
            let a = s.reduce_by_key_and_window(|x: i64, y| x + y, millis(la), seconds(2));
            let b = s.reduce_by_key_and_window_inv(
                |x: i64, y| x + y,
                |x, y| x - y,
                millis(lb),
                seconds(2),
            );
            a.join(&b)
        }));
        assert_eq!(got, want, "{la} ms and {lb} ms windows, seed {seed}");
    }
}

#[test]
fn several_windows_of_one_stream_each_follow_their_own_shape() {
    let input = random_ints(seed(22, 0));
    let n = input.len() as u64;
    for w in WORKERS {
        let queued = input.clone();
        let clock = ManualClock::new();
        let conf = StreamingConf::new("windows", seconds(1))
            .master(&format!("local[{w}]"))
            .unwrap();
        let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
        type Seen = Arc<Mutex<BTreeMap<(u64, u64), Vec<(u64, Vec<i64>)>>>>;
        let seen: Seen = Arc::default();
        let sink = seen.clone();
        ssc.define(move |s| {
            let stream = s.queue_stream(queued.clone(), true, None);
            for (l, sl) in SHAPES {
                let sink = sink.clone();
                stream
                    .window(millis(l), millis(sl))
                    .foreach_rdd(move |mut batch, time| {
                        batch.sort();
                        sink.lock()
                            .unwrap()
                            .entry((l, sl))
                            .or_default()
                            .push((time.milliseconds(), batch));
                    });
            }
        })
        .unwrap();
        ssc.start().unwrap();
        for i in 1..=n {
            clock.advance(seconds(1));
            ssc.await_batch(Time::from_millis(i * BATCH_MS)).unwrap();
        }
        ssc.stop(false).unwrap();
        let mut seen = std::mem::take(&mut *seen.lock().unwrap());
        for (l, sl) in SHAPES {
            let mut got = seen.remove(&(l, sl)).unwrap_or_default();
            got.sort_by_key(|(t, _)| *t);
            let want: Vec<(u64, Vec<i64>)> = window_of(&timed(&input), l, sl, n * BATCH_MS)
                .into_iter()
                .map(|(t, mut b)| {
                    b.sort();
                    (t, b)
                })
                .collect();
            assert_eq!(got, want, "local[{w}]: {}", case(l, sl, seed(22, 0)));
        }
    }
}

#[test]
fn a_record_in_no_window_does_not_start_the_inverse_paths_output() {
    // 1 s window every 2 s: the record at 1 s falls between windows, so the
    // window at 2 s has seen nothing yet; the one at 4 s holds "y".
    let input = vec![vec![s("x")], vec![], vec![s("z")], vec![s("y")], vec![]];
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.count_by_window(seconds(1), seconds(2))
    }));
    assert_eq!(got, [vec![], vec![1]]);
    assert_eq!(got, model_count_by_window(&input, 1000, 2000));
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.map(|x: String| (x, 1i64)).reduce_by_key_and_window_inv(
            |a, b| a + b,
            |a, b| a - b,
            seconds(1),
            seconds(2),
        )
    }));
    assert_eq!(got, [vec![], vec![(s("y"), 1)]]);
}

#[test]
fn all_empty_input_gives_empty_windows_and_nothing_from_the_inverse_paths() {
    let input: Vec<Vec<(u32, i64)>> = vec![Vec::new(); 6];
    let empty = |n: usize| vec![Vec::<(u32, i64)>::new(); n];
    let got = same_exactly(at_1_and_3(&input, |s| s.window(seconds(3), seconds(2))));
    assert_eq!(got, empty(3));
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.reduce_by_key_and_window_inv(|a: i64, b| a + b, |a, b| a - b, seconds(3), seconds(2))
    }));
    assert_eq!(got, empty(3));
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.count_by_window(seconds(2), seconds(1))
    }));
    assert_eq!(got, vec![Vec::<u64>::new(); 6]);
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.map(|(_, v)| v).reduce_by_window_inv(
            |a: i64, b| a + b,
            |a, b| a - b,
            seconds(2),
            seconds(2),
        )
    }));
    assert_eq!(got, vec![Vec::<i64>::new(); 3]);
}

#[test]
fn a_slide_longer_than_the_run_gives_no_output_at_all() {
    let input = random_pairs(seed(23, 0));
    let got = same_exactly(at_1_and_3(&input, |s| s.window(seconds(1), seconds(30))));
    assert!(got.is_empty(), "{got:?}");
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.reduce_by_key_and_window_inv(|a: i64, b| a + b, |a, b| a - b, seconds(40), seconds(30))
    }));
    assert!(got.is_empty(), "{got:?}");
}
