//! Every DStream operation against an independent expectation, at `local[1]` and `local[3]`.
//!
//! Each operation runs on one and on three workers; the two runs must agree
//! (after sorting within a batch where Spark leaves the order undefined, as
//! for keyed operations), and both must match either hand-written values or a
//! plain-Rust reference model over `Vec<Vec<_>>` fed seeded random batches.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use ember::prelude::*;
use ember_testkit::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

// ---------------------------------------------------------------------------
// Helpers: run at both parallelisms, normalise, and build random inputs.
// ---------------------------------------------------------------------------

/// Random keyed batches: keys `0..keys`, values in `-50..50`, sizes `0..=max`,
/// about a quarter of the batches empty.
fn random_pairs(seed: u64, batches: usize, keys: u32, max: usize) -> Vec<Vec<(u32, i64)>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..batches)
        .map(|_| {
            if rng.gen_bool(0.25) {
                return Vec::new();
            }
            let n = rng.gen_range(0..=max);
            (0..n)
                .map(|_| (rng.gen_range(0..keys), rng.gen_range(-50..50)))
                .collect()
        })
        .collect()
}

/// Random batches of integers in `0..100`, about a quarter of them empty.
fn random_ints(seed: u64, batches: usize, max: usize) -> Vec<Vec<i64>> {
    random_pairs(seed, batches, 1, max)
        .into_iter()
        .map(|b| b.into_iter().map(|(_, v)| v + 50).collect())
        .collect()
}

fn s(x: &str) -> String {
    x.to_string()
}

/// Per key, its values in arrival order (the reference for keyed operations).
fn model_groups<K: Ord + Clone, V: Clone>(batch: &[(K, V)]) -> BTreeMap<K, Vec<V>> {
    let mut groups: BTreeMap<K, Vec<V>> = BTreeMap::new();
    for (k, v) in batch {
        groups.entry(k.clone()).or_default().push(v.clone());
    }
    groups
}

// ---------------------------------------------------------------------------
// Pipelined operations: records keep their partition order, so a batch
// gathered in partition order is in input order at any parallelism.
// ---------------------------------------------------------------------------

#[test]
fn map_applies_f_to_every_record_keeping_input_order() {
    let input = vec![vec![1, 2, 3, 4, 5], vec![], vec![7], vec![10, 20]];
    let got = same_exactly(at_1_and_3(&input, |s| s.map(|x: i64| x * 10 + 1)));
    assert_eq!(
        got,
        [vec![11, 21, 31, 41, 51], vec![], vec![71], vec![101, 201]]
    );
}

#[test]
fn map_can_change_the_record_type() {
    let input = vec![vec![1u32, 22], vec![], vec![333]];
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.map(|x: u32| (x.to_string(), x % 2 == 0))
    }));
    assert_eq!(
        got,
        [
            vec![(s("1"), false), (s("22"), true)],
            vec![],
            vec![(s("333"), false)]
        ]
    );
}

#[test]
fn flat_map_flattens_in_order_and_drops_records_that_expand_to_nothing() {
    let input = vec![vec![s("to be"), s(""), s("or not")], vec![], vec![s("x")]];
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.flat_map(|line: String| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    }));
    assert_eq!(
        got,
        [
            vec![s("to"), s("be"), s("or"), s("not")],
            vec![],
            vec![s("x")]
        ]
    );
}

#[test]
fn filter_keeps_matching_records_in_order_and_can_empty_a_batch() {
    let input = vec![vec![1, 2, 3, 4, 5, 6], vec![1, 3], vec![], vec![8]];
    let got = same_exactly(at_1_and_3(&input, |s| s.filter(|x: &i64| x % 2 == 0)));
    assert_eq!(got, [vec![2, 4, 6], vec![], vec![], vec![8]]);
}

#[test]
fn map_values_changes_values_and_keeps_keys_and_order() {
    let input = vec![vec![(s("a"), 1), (s("b"), 2), (s("a"), 3)], vec![]];
    let got = same_exactly(at_1_and_3(&input, |s| s.map_values(|v: i64| v * 100)));
    assert_eq!(
        got,
        [vec![(s("a"), 100), (s("b"), 200), (s("a"), 300)], vec![]]
    );
}

#[test]
fn flat_map_values_pairs_every_output_with_its_key() {
    let input = vec![
        vec![(s("a"), 2u32), (s("b"), 0), (s("c"), 1)],
        vec![],
        vec![(s("d"), 3)],
    ];
    let got = same_exactly(at_1_and_3(&input, |s| s.flat_map_values(|n: u32| 0..n)));
    assert_eq!(
        got,
        [
            vec![(s("a"), 0), (s("a"), 1), (s("c"), 0)],
            vec![],
            vec![(s("d"), 0), (s("d"), 1), (s("d"), 2)]
        ]
    );
}

#[test]
fn chained_pipelined_ops_match_the_model_on_random_batches() {
    let input = random_ints(1, 12, 40);
    let want: Vec<Vec<i64>> = input
        .iter()
        .map(|b| {
            b.iter()
                .map(|x| x * 3)
                .filter(|x| x % 2 == 0)
                .flat_map(|x| vec![x; (x % 3) as usize + (x % 4) as usize])
                .collect()
        })
        .collect();
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.map(|x: i64| x * 3)
            .filter(|x| x % 2 == 0)
            .flat_map(|x| vec![x; (x % 3) as usize + (x % 4) as usize])
    }));
    assert_eq!(got, want);
}

#[test]
fn map_values_and_flat_map_values_match_the_model_on_random_batches() {
    let input = random_pairs(2, 10, 6, 30);
    let want: Vec<Vec<(u32, i64)>> = input
        .iter()
        .map(|b| {
            b.iter()
                .map(|(k, v)| (*k, v - 7))
                .flat_map(|(k, v)| (0..v.rem_euclid(3)).map(move |i| (k, v + i)))
                .collect()
        })
        .collect();
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.map_values(|v: i64| v - 7)
            .flat_map_values(|v| (0..v.rem_euclid(3)).map(move |i| v + i))
    }));
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------
// union and repartition: the same records, moved around. Order across
// workers is not Spark's, so these compare multisets.
// ---------------------------------------------------------------------------

#[test]
fn union_holds_both_streams_records_batch_by_batch() {
    let left = vec![vec![1, 2, 3], vec![], vec![4], vec![]];
    let right = vec![vec![10], vec![20, 21], vec![], vec![]];
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.union(&b)));
    assert_eq!(got, [vec![1, 2, 3, 10], vec![20, 21], vec![4], vec![]]);
}

#[test]
fn union_with_a_shorter_queue_sees_empty_batches_after_it_runs_dry() {
    let left = vec![vec![1], vec![2], vec![3]];
    let right = vec![vec![100]];
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.union(&b)));
    assert_eq!(got, [vec![1, 100], vec![2], vec![3]]);
}

#[test]
fn union_of_a_stream_with_itself_doubles_every_record() {
    let input = vec![vec![1, 2], vec![], vec![3]];
    let got = same_sorted(at_1_and_3(&input, |s| s.union(&s)));
    assert_eq!(got, [vec![1, 1, 2, 2], vec![], vec![3, 3]]);
}

#[test]
fn scope_union_of_three_streams_matches_the_model_on_random_batches() {
    let a = random_ints(3, 8, 20);
    let b = random_ints(4, 8, 20);
    let c = random_ints(5, 8, 20);
    let want: Vec<Vec<i64>> = (0..8)
        .map(|i| {
            let mut batch: Vec<i64> = a[i].iter().chain(&b[i]).chain(&c[i]).copied().collect();
            batch.sort();
            batch
        })
        .collect();
    let got = WORKERS.map(|w| {
        let (a, b, c) = (a.clone(), b.clone(), c.clone());
        sorted(run_batches(w, 8, move |sc, out| {
            let streams = [a.clone(), b.clone(), c.clone()].map(|q| sc.queue_stream(q, true, None));
            collect_into(&sc.union(&streams), out);
        }))
    });
    assert_eq!(got[0], want, "local[1]");
    assert_eq!(got[1], want, "local[3]");
}

#[test]
fn repartition_keeps_the_multiset_of_every_batch() {
    let input = random_ints(6, 10, 50);
    let want = sorted(input.clone());
    for partitions in [1, 2, 3, 7] {
        let got = same_sorted(at_1_and_3(&input, move |s| s.repartition(partitions)));
        assert_eq!(got, want, "repartition({partitions})");
    }
}

#[test]
fn repartition_spreads_records_over_the_requested_number_of_workers() {
    let input = vec![(0..9).collect::<Vec<i64>>(), vec![]];
    // local[3]: 9 records, 3 per worker, each worker deals round-robin to all three.
    let parts = run_local(3, input.clone(), |s| s.repartition(3).glom());
    let sizes: Vec<Vec<usize>> = parts
        .iter()
        .map(|b| b.iter().map(Vec::len).collect())
        .collect();
    assert_eq!(sizes, [vec![3, 3, 3], vec![0, 0, 0]]);
    // repartition(1) puts everything on one worker.
    let parts = run_local(3, input, |s| s.repartition(1).glom());
    let sizes: Vec<Vec<usize>> = parts
        .iter()
        .map(|b| b.iter().map(Vec::len).collect())
        .collect();
    assert_eq!(sizes, [vec![9, 0, 0], vec![0, 0, 0]]);
}

// ---------------------------------------------------------------------------
// Per-worker parts: glom and map_partitions see each worker's contiguous
// slice of a queue batch (Spark's parallelize), empty slices included.
// ---------------------------------------------------------------------------

#[test]
fn glom_gives_one_vec_per_worker_per_batch_including_empty_parts() {
    let input = vec![vec![1, 2, 3, 4, 5, 6, 7], vec![], vec![8], vec![9, 10]];
    let one = run_local(1, input.clone(), |s| s.glom());
    assert_eq!(
        one,
        [
            vec![vec![1, 2, 3, 4, 5, 6, 7]],
            vec![vec![]],
            vec![vec![8]],
            vec![vec![9, 10]]
        ]
    );
    let three = run_local(3, input.clone(), |s| s.glom());
    // Spark's parallelize slices: [n*i/3, n*(i+1)/3).
    assert_eq!(
        three,
        [
            vec![vec![1, 2], vec![3, 4], vec![5, 6, 7]],
            vec![vec![], vec![], vec![]],
            vec![vec![], vec![], vec![8]],
            vec![vec![], vec![9], vec![10]],
        ]
    );
}

#[test]
fn glom_parts_concatenate_to_the_input_batch_on_random_batches() {
    let input = random_ints(7, 12, 30);
    for w in WORKERS {
        let got = run_local(w, input.clone(), |s| s.glom());
        for (i, (parts, batch)) in got.iter().zip(&input).enumerate() {
            assert_eq!(parts.len(), w, "local[{w}] batch {i}: one part per worker");
            assert_eq!(
                &parts.concat(),
                batch,
                "local[{w}] batch {i}: parts in order"
            );
        }
    }
}

#[test]
fn map_partitions_is_called_once_per_worker_per_batch_even_for_empty_parts() {
    let input = vec![vec![1, 2, 3, 4], vec![], vec![5]];
    let [one, three] = at_1_and_3(&input, |s| {
        s.map_partitions(|part| std::iter::once(part.len()))
    });
    assert_eq!(
        one,
        [vec![4], vec![0], vec![1]],
        "local[1]: one call per batch"
    );
    assert_eq!(
        three,
        [vec![1, 1, 2], vec![0, 0, 0], vec![0, 0, 1]],
        "local[3]: one call per worker"
    );
}

#[test]
fn map_partitions_outputs_together_match_the_model_on_random_batches() {
    let input = random_ints(8, 12, 30);
    let want: Vec<Vec<i64>> = input
        .iter()
        .map(|b| {
            let mut out: Vec<i64> = b.iter().filter(|x| *x % 3 != 0).map(|x| -x).collect();
            out.sort();
            out
        })
        .collect();
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.map_partitions(|part| {
            part.filter(|x: &i64| x % 3 != 0)
                .map(|x| -x)
                .collect::<Vec<_>>()
        })
    }));
    assert_eq!(got, want);
}

#[test]
fn map_partitions_sees_each_part_in_input_order() {
    let input = random_ints(9, 6, 25);
    // Each part, numbered in order, concatenated in partition order, is the batch.
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.map_partitions(|part| part.collect::<Vec<i64>>())
    }));
    assert_eq!(got, input);
}

// ---------------------------------------------------------------------------
// Words borrowed from their lines (flat_map_str): the same results as the
// owned-String path, checked against hand counts and a reference model.
// ---------------------------------------------------------------------------

/// Random lines of words from a small vocabulary, some with doubled,
/// leading or trailing spaces (Spark's `split(" ")` then yields empty
/// words), about a quarter of the batches empty.
fn random_lines(seed: u64, batches: usize, max: usize) -> Vec<Vec<String>> {
    const VOCAB: [&str; 9] = [
        "a",
        "to",
        "be",
        "or",
        "not",
        "Grüße",
        "x",
        "",
        "longer-than-22-bytes-word",
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..batches)
        .map(|_| {
            if rng.gen_bool(0.25) {
                return Vec::new();
            }
            (0..rng.gen_range(0..=max))
                .map(|_| {
                    let words = rng.gen_range(0..8);
                    (0..words)
                        .map(|_| VOCAB[rng.gen_range(0..VOCAB.len())])
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        })
        .collect()
}

/// Per batch, every word (`split(' ')`, empty words included) with how
/// often it occurs and the sum of its lengths.
fn model_word_counts(input: &[Vec<String>]) -> Vec<Vec<(String, (u64, i64))>> {
    input
        .iter()
        .map(|b| {
            let mut counts: BTreeMap<String, (u64, i64)> = BTreeMap::new();
            for w in b.iter().flat_map(|l| l.split(' ')) {
                let c = counts.entry(w.to_string()).or_default();
                c.0 += 1;
                c.1 += w.len() as i64;
            }
            counts.into_iter().collect()
        })
        .collect()
}

#[test]
fn flat_map_str_word_count_counts_each_word_of_each_batch() {
    let input = vec![
        vec![s("to be or not to be"), s("be  quick")],
        vec![],
        vec![s("or")],
    ];
    let got = same_sorted(at_1_and_3(&input, |lines| {
        lines
            .flat_map_str(|l| l.split(' ').collect())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b)
    }));
    assert_eq!(
        got,
        [
            vec![
                (s(""), 1),
                (s("be"), 3),
                (s("not"), 1),
                (s("or"), 1),
                (s("quick"), 1),
                (s("to"), 2)
            ],
            vec![],
            vec![(s("or"), 1)]
        ]
    );
}

#[test]
fn flat_map_str_reduce_and_count_by_value_match_the_model_on_random_lines() {
    let input = random_lines(21, 14, 30);
    let want = model_word_counts(&input);
    let counts: Vec<Vec<(String, u64)>> = want
        .iter()
        .map(|b| b.iter().map(|(w, (n, _))| (w.clone(), *n)).collect())
        .collect();
    let lengths: Vec<Vec<(String, i64)>> = want
        .iter()
        .map(|b| b.iter().map(|(w, (_, l))| (w.clone(), *l)).collect())
        .collect();
    let got = same_sorted(at_1_and_3(&input, |lines| {
        lines
            .flat_map_str(|l| l.split(' ').collect())
            .count_by_value()
    }));
    assert_eq!(got, counts);
    let got = same_sorted(at_1_and_3(&input, |lines| {
        lines
            .flat_map_str(|l| l.split(' ').collect())
            .map(|w| (w, w.len() as i64))
            .reduce_by_key(|a, b| a + b)
    }));
    assert_eq!(got, lengths);
}

#[test]
fn flat_map_str_to_dstream_keeps_every_word_in_input_order() {
    let input = random_lines(22, 10, 20);
    let want: Vec<Vec<String>> = input
        .iter()
        .map(|b| b.iter().flat_map(|l| l.split(' ')).map(s).collect())
        .collect();
    let got = same_exactly(at_1_and_3(&input, |lines| {
        lines.flat_map_str(|l| l.split(' ').collect()).to_dstream()
    }));
    assert_eq!(got, want);
    let pairs: Vec<Vec<(String, usize)>> = want
        .iter()
        .map(|b| b.iter().map(|w| (w.clone(), w.len())).collect())
        .collect();
    let got = same_exactly(at_1_and_3(&input, |lines| {
        lines
            .flat_map_str(|l| l.split(' ').collect())
            .map(|w| (w, w.len()))
            .to_dstream()
    }));
    assert_eq!(got, pairs);
}

// ---------------------------------------------------------------------------
// Per-batch aggregates: count, count_by_value, reduce.
// ---------------------------------------------------------------------------

#[test]
fn count_emits_one_record_per_batch_and_zero_for_an_empty_batch() {
    let input = vec![
        vec![s("a"), s("b"), s("c")],
        vec![],
        vec![s("d")],
        vec![],
        vec![],
    ];
    let got = same_exactly(at_1_and_3(&input, |s| s.count()));
    assert_eq!(got, [vec![3], vec![0], vec![1], vec![0], vec![0]]);
}

#[test]
fn count_matches_the_model_on_random_batches() {
    let input = random_ints(10, 15, 60);
    let want: Vec<Vec<u64>> = input.iter().map(|b| vec![b.len() as u64]).collect();
    let got = same_exactly(at_1_and_3(&input, |s| s.count()));
    assert_eq!(got, want);
}

#[test]
fn count_by_value_counts_each_distinct_record_per_batch() {
    let input = vec![
        vec![s("a"), s("b"), s("a"), s("c"), s("a")],
        vec![],
        vec![s("b"), s("b")],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| s.count_by_value()));
    assert_eq!(
        got,
        [
            vec![(s("a"), 3), (s("b"), 1), (s("c"), 1)],
            vec![],
            vec![(s("b"), 2)]
        ]
    );
}

#[test]
fn count_by_value_matches_the_model_on_random_batches() {
    let input: Vec<Vec<i64>> = random_ints(11, 12, 40)
        .into_iter()
        .map(|b| b.into_iter().map(|x| x % 7).collect())
        .collect();
    let want: Vec<Vec<(i64, u64)>> = input
        .iter()
        .map(|b| {
            let mut counts: BTreeMap<i64, u64> = BTreeMap::new();
            b.iter().for_each(|x| *counts.entry(*x).or_default() += 1);
            counts.into_iter().collect()
        })
        .collect();
    let got = same_sorted(at_1_and_3(&input, |s| s.count_by_value()));
    assert_eq!(got, want);
}

#[test]
fn reduce_emits_one_record_per_batch_and_nothing_for_an_empty_batch() {
    let input = vec![vec![1, 2, 3, 4], vec![], vec![42], vec![]];
    let got = same_exactly(at_1_and_3(&input, |s| s.reduce(|a: i64, b| a + b)));
    assert_eq!(got, [vec![10], vec![], vec![42], vec![]]);
}

#[test]
fn reduce_matches_the_model_on_random_batches() {
    let input = random_ints(12, 15, 40);
    let want: Vec<Vec<i64>> = input
        .iter()
        .map(|b| b.iter().copied().max().into_iter().collect())
        .collect();
    let got = same_exactly(at_1_and_3(&input, |s| s.reduce(|a: i64, b| a.max(b))));
    assert_eq!(got, want);
    let want: Vec<Vec<i64>> = input
        .iter()
        .map(|b| {
            if b.is_empty() {
                vec![]
            } else {
                vec![b.iter().sum()]
            }
        })
        .collect();
    let got = same_exactly(at_1_and_3(&input, |s| s.reduce(|a: i64, b| a + b)));
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------
// transform and transform_with: the whole batch, in partition order (which
// for a queue batch is input order), with its time.
// ---------------------------------------------------------------------------

#[test]
fn transform_gets_each_whole_batch_with_its_time() {
    let input = vec![vec![3, 1, 2], vec![], vec![5, 4]];
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.transform(|batch: Vec<i64>, time: Time| {
            let sum: i64 = batch.iter().sum();
            vec![(time.milliseconds(), batch.len(), sum)]
        })
    }));
    // INTERVAL_MS is 1000 and the manual clock starts at 0: batch i is at i * 1000 ms.
    assert_eq!(INTERVAL_MS, 1000);
    assert_eq!(
        got,
        [vec![(1000, 3, 6)], vec![(2000, 0, 0)], vec![(3000, 2, 9)]]
    );
}

#[test]
fn transform_returning_the_batch_unchanged_keeps_input_order_at_local_3() {
    // What print shows: a plain queue stream gathered in partition order.
    let input = random_ints(13, 10, 40);
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.transform(|batch: Vec<i64>, _| batch)
    }));
    assert_eq!(got, input);
}

#[test]
fn transform_can_reorder_resize_and_change_the_type_of_a_batch() {
    let input = vec![vec![3, 1, 2], vec![], vec![9]];
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.transform(|mut batch: Vec<i64>, _| {
            batch.sort_unstable_by(|a, b| b.cmp(a));
            let mut out: Vec<String> = batch.iter().map(i64::to_string).collect();
            out.push(format!("n={}", batch.len()));
            out
        })
    }));
    assert_eq!(
        got,
        [
            vec![s("3"), s("2"), s("1"), s("n=3")],
            vec![s("n=0")],
            vec![s("9"), s("n=1")]
        ]
    );
}

#[test]
fn transform_output_feeds_further_operations() {
    let input = vec![vec![1, 2, 3], vec![], vec![4]];
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.transform(|batch: Vec<i64>, t| {
            batch
                .into_iter()
                .map(|x| x + t.milliseconds() as i64)
                .collect()
        })
        .repartition(3)
        .count()
    }));
    assert_eq!(got, [vec![3], vec![0], vec![1]]);
}

#[test]
fn print_with_lists_a_queue_batch_in_input_order_at_local_3() {
    for w in WORKERS {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        let _: Vec<Vec<i64>> = run_batches(w, 1, move |sc, out| {
            let stream = sc.queue_stream(vec![(1..=7).collect::<Vec<i64>>()], true, None);
            let sink = sink.clone();
            stream.print_with(10, move |t| sink.lock().unwrap().push_str(t));
            collect_into(&stream, out);
        });
        let dashes = "-".repeat(43);
        let want = format!("{dashes}\nTime: 1000 ms\n{dashes}\n1\n2\n3\n4\n5\n6\n7\n\n");
        assert_eq!(*text.lock().unwrap(), want, "local[{w}]");
    }
}

#[test]
fn transform_with_gets_both_batches_and_their_time() {
    let left = vec![vec![1, 2], vec![], vec![3], vec![]];
    let right = vec![vec![s("a")], vec![s("b"), s("c")], vec![], vec![]];
    let got = same_exactly(at_1_and_3_2(&left, &right, |a, b| {
        a.transform_with(&b, |xs: Vec<i64>, ys: Vec<String>, t: Time| {
            vec![format!("{}:{:?}:{:?}", t.milliseconds(), xs, ys)]
        })
    }));
    assert_eq!(
        got,
        [
            vec![s(r#"1000:[1, 2]:["a"]"#)],
            vec![s(r#"2000:[]:["b", "c"]"#)],
            vec![s("3000:[3]:[]")],
            vec![s("4000:[]:[]")],
        ]
    );
}

#[test]
fn transform_with_matches_the_model_on_random_batches() {
    let left = random_ints(14, 10, 30);
    let right = random_ints(15, 10, 30);
    // Left batch in order, then the right batch reversed, then both lengths.
    let want: Vec<Vec<i64>> = left
        .iter()
        .zip(&right)
        .map(|(a, b)| {
            let mut out = a.clone();
            out.extend(b.iter().rev().map(|x| -x));
            out.push(a.len() as i64 * 1000 + b.len() as i64);
            out
        })
        .collect();
    let got = same_exactly(at_1_and_3_2(&left, &right, |a, b| {
        a.transform_with(&b, |xs: Vec<i64>, ys: Vec<i64>, _| {
            let lens = xs.len() as i64 * 1000 + ys.len() as i64;
            let mut out = xs;
            out.extend(ys.iter().rev().map(|x| -x));
            out.push(lens);
            out
        })
    }));
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------
// Keyed aggregations: reduce_by_key, group_by_key, combine_by_key. The order
// of keys in a batch is undefined (a shuffle), so batches are sorted.
// ---------------------------------------------------------------------------

#[test]
fn reduce_by_key_combines_the_values_of_each_key_per_batch() {
    let input = vec![
        vec![
            (s("a"), 1),
            (s("b"), 10),
            (s("a"), 2),
            (s("c"), 100),
            (s("a"), 3),
        ],
        vec![],
        vec![(s("b"), 5)],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| s.reduce_by_key(|a: i64, b| a + b)));
    assert_eq!(
        got,
        [
            vec![(s("a"), 6), (s("b"), 10), (s("c"), 100)],
            vec![],
            vec![(s("b"), 5)]
        ]
    );
}

#[test]
fn reduce_by_key_matches_the_model_on_random_batches() {
    let input = random_pairs(16, 14, 7, 50);
    let want: Vec<Vec<(u32, i64)>> = input
        .iter()
        .map(|b| {
            model_groups(b)
                .into_iter()
                .map(|(k, vs)| (k, vs.iter().sum()))
                .collect()
        })
        .collect();
    let got = same_sorted(at_1_and_3(&input, |s| s.reduce_by_key(|a: i64, b| a + b)));
    assert_eq!(got, want);
}

#[test]
fn group_by_key_keeps_arrival_order_at_local_1_and_the_multiset_at_local_3() {
    let input = vec![
        vec![
            (s("a"), 3),
            (s("b"), 1),
            (s("a"), 1),
            (s("a"), 2),
            (s("b"), 0),
        ],
        vec![],
        vec![(s("c"), 7)],
    ];
    let want = vec![
        vec![(s("a"), vec![3, 1, 2]), (s("b"), vec![1, 0])],
        vec![],
        vec![(s("c"), vec![7])],
    ];
    let [one, three] = at_1_and_3(&input, |s| s.group_by_key());
    assert_eq!(sorted(one), want, "local[1]: values in arrival order");
    let three = sorted(three)
        .into_iter()
        .map(|b| {
            b.into_iter()
                .map(|(k, mut vs)| {
                    (k, {
                        vs.sort();
                        vs
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    let want_sorted = vec![
        vec![(s("a"), vec![1, 2, 3]), (s("b"), vec![0, 1])],
        vec![],
        vec![(s("c"), vec![7])],
    ];
    assert_eq!(three, want_sorted, "local[3]: values as multisets");
}

#[test]
fn group_by_key_matches_the_model_on_random_batches() {
    let input = random_pairs(17, 12, 5, 40);
    let want: Vec<Vec<(u32, Vec<i64>)>> = input
        .iter()
        .map(|b| model_groups(b).into_iter().collect())
        .collect();
    let [one, three] = at_1_and_3(&input, |s| s.group_by_key());
    assert_eq!(sorted(one), want, "local[1]: values in arrival order");
    let values_sorted = |batches: Vec<Vec<(u32, Vec<i64>)>>| {
        sorted(batches)
            .into_iter()
            .map(|b| {
                b.into_iter()
                    .map(|(k, mut vs)| {
                        (k, {
                            vs.sort();
                            vs
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        values_sorted(three),
        values_sorted(want),
        "local[3]: values as multisets"
    );
}

#[test]
fn combine_by_key_computes_a_per_key_average_via_sum_and_count() {
    let input = vec![
        vec![(s("x"), 2), (s("y"), 10), (s("x"), 4), (s("x"), 9)],
        vec![],
        vec![(s("y"), 1), (s("y"), 3)],
    ];
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.combine_by_key(
            |v: i64| (v, 1u64),
            |(sum, n), v| (sum + v, n + 1),
            |(s1, n1), (s2, n2)| (s1 + s2, n1 + n2),
        )
    }));
    assert_eq!(
        got,
        [
            vec![(s("x"), (15, 3)), (s("y"), (10, 1))],
            vec![],
            vec![(s("y"), (4, 2))]
        ]
    );
    // The average itself, as Spark's example derives it.
    let averages: Vec<Vec<(String, f64)>> = got
        .into_iter()
        .map(|b| {
            b.into_iter()
                .map(|(k, (sum, n))| (k, sum as f64 / n as f64))
                .collect()
        })
        .collect();
    assert_eq!(
        averages,
        [
            vec![(s("x"), 5.0), (s("y"), 10.0)],
            vec![],
            vec![(s("y"), 2.0)]
        ]
    );
}

/// A combiner for `combine_by_key`: (sum, count, min, max).
type Stats = (i64, u64, i64, i64);

#[test]
fn combine_by_key_matches_the_model_on_random_batches() {
    let input = random_pairs(18, 14, 6, 50);
    let want: Vec<Vec<(u32, Stats)>> = input
        .iter()
        .map(|b| {
            model_groups(b)
                .into_iter()
                .map(|(k, vs)| {
                    let c = (
                        vs.iter().sum(),
                        vs.len() as u64,
                        *vs.iter().min().unwrap(),
                        *vs.iter().max().unwrap(),
                    );
                    (k, c)
                })
                .collect()
        })
        .collect();
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.combine_by_key(
            |v: i64| (v, 1u64, v, v),
            |(sum, n, lo, hi), v| (sum + v, n + 1, lo.min(v), hi.max(v)),
            |(s1, n1, lo1, hi1), (s2, n2, lo2, hi2)| (s1 + s2, n1 + n2, lo1.min(lo2), hi1.max(hi2)),
        )
    }));
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------
// Joins and cogroup, per batch, as Spark defines them: join is the cross
// product of each key's values on both sides; outer joins put None on the
// side without the key.
// ---------------------------------------------------------------------------

type Left = Vec<Vec<(String, i64)>>;
type Right = Vec<Vec<(String, String)>>;

/// Hand-written sides: key "a" on both (2 x 2 values), "b" only left,
/// "c" only right; an empty batch; a batch empty on one side only.
fn join_sides() -> (Left, Right) {
    let left = vec![
        vec![(s("a"), 1), (s("b"), 2), (s("a"), 3)],
        vec![],
        vec![(s("a"), 4)],
        vec![],
    ];
    let right = vec![
        vec![(s("a"), s("x")), (s("c"), s("z")), (s("a"), s("y"))],
        vec![],
        vec![],
        vec![(s("a"), s("w"))],
    ];
    (left, right)
}

#[test]
fn join_pairs_every_value_of_a_key_on_both_sides() {
    let (left, right) = join_sides();
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.join(&b)));
    let p = |k: &str, v: i64, w: &str| (s(k), (v, s(w)));
    assert_eq!(
        got,
        [
            vec![
                p("a", 1, "x"),
                p("a", 1, "y"),
                p("a", 3, "x"),
                p("a", 3, "y")
            ],
            vec![],
            vec![],
            vec![],
        ]
    );
}

#[test]
fn left_outer_join_keeps_every_left_value_with_none_when_the_right_lacks_the_key() {
    let (left, right) = join_sides();
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.left_outer_join(&b)));
    let p = |k: &str, v: i64, w: Option<&str>| (s(k), (v, w.map(s)));
    assert_eq!(
        got,
        [
            vec![
                p("a", 1, Some("x")),
                p("a", 1, Some("y")),
                p("a", 3, Some("x")),
                p("a", 3, Some("y")),
                p("b", 2, None),
            ],
            vec![],
            vec![p("a", 4, None)],
            vec![],
        ]
    );
}

#[test]
fn right_outer_join_keeps_every_right_value_with_none_when_the_left_lacks_the_key() {
    let (left, right) = join_sides();
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.right_outer_join(&b)));
    let p = |k: &str, v: Option<i64>, w: &str| (s(k), (v, s(w)));
    assert_eq!(
        got,
        [
            vec![
                p("a", Some(1), "x"),
                p("a", Some(1), "y"),
                p("a", Some(3), "x"),
                p("a", Some(3), "y"),
                p("c", None, "z"),
            ],
            vec![],
            vec![],
            vec![p("a", None, "w")],
        ]
    );
}

#[test]
fn full_outer_join_keeps_every_key_of_either_side() {
    let (left, right) = join_sides();
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.full_outer_join(&b)));
    let p = |k: &str, v: Option<i64>, w: Option<&str>| (s(k), (v, w.map(s)));
    assert_eq!(
        got,
        [
            vec![
                p("a", Some(1), Some("x")),
                p("a", Some(1), Some("y")),
                p("a", Some(3), Some("x")),
                p("a", Some(3), Some("y")),
                p("b", Some(2), None),
                p("c", None, Some("z")),
            ],
            vec![],
            vec![p("a", Some(4), None)],
            vec![p("a", None, Some("w"))],
        ]
    );
}

#[test]
fn cogroup_gives_each_key_of_either_side_with_both_value_lists() {
    let (left, right) = join_sides();
    let [one, three] = at_1_and_3_2(&left, &right, |a, b| a.cogroup(&b));
    let g = |k: &str, vs: &[i64], ws: &[&str]| {
        (
            s(k),
            (vs.to_vec(), ws.iter().map(|w| s(w)).collect::<Vec<_>>()),
        )
    };
    let want = vec![
        vec![
            g("a", &[1, 3], &["x", "y"]),
            g("b", &[2], &[]),
            g("c", &[], &["z"]),
        ],
        vec![],
        vec![g("a", &[4], &[])],
        vec![g("a", &[], &["w"])],
    ];
    assert_eq!(sorted(one), want, "local[1]: values in arrival order");
    assert_eq!(
        sorted_groups(three),
        sorted_groups(want),
        "local[3]: values as multisets"
    );
}

/// Sorts batches and each key's value lists (for cogroup at local[3]).
#[allow(clippy::type_complexity)]
fn sorted_groups<K: Ord, V: Ord, W: Ord>(
    batches: Vec<Vec<(K, (Vec<V>, Vec<W>))>>,
) -> Vec<Vec<(K, (Vec<V>, Vec<W>))>> {
    let mut batches = sorted(batches);
    for (_, (vs, ws)) in batches.iter_mut().flatten() {
        vs.sort();
        ws.sort();
    }
    batches
}

/// The reference model of all four joins and cogroup for one batch.
#[allow(clippy::type_complexity)]
struct JoinModel {
    join: Vec<(u32, (i64, i64))>,
    left: Vec<(u32, (i64, Option<i64>))>,
    right: Vec<(u32, (Option<i64>, i64))>,
    full: Vec<(u32, (Option<i64>, Option<i64>))>,
    cogroup: Vec<(u32, (Vec<i64>, Vec<i64>))>,
}

fn join_model(a: &[(u32, i64)], b: &[(u32, i64)]) -> JoinModel {
    let (ga, gb) = (model_groups(a), model_groups(b));
    let mut keys: Vec<u32> = ga.keys().chain(gb.keys()).copied().collect();
    keys.sort();
    keys.dedup();
    let mut m = JoinModel {
        join: vec![],
        left: vec![],
        right: vec![],
        full: vec![],
        cogroup: vec![],
    };
    let none = Vec::new();
    for k in keys {
        let vs = ga.get(&k).unwrap_or(&none);
        let ws = gb.get(&k).unwrap_or(&none);
        m.cogroup.push((k, (vs.clone(), ws.clone())));
        for &v in vs {
            for &w in ws {
                m.join.push((k, (v, w)));
                m.left.push((k, (v, Some(w))));
                m.right.push((k, (Some(v), w)));
                m.full.push((k, (Some(v), Some(w))));
            }
            if ws.is_empty() {
                m.left.push((k, (v, None)));
                m.full.push((k, (Some(v), None)));
            }
        }
        if vs.is_empty() {
            for &w in ws {
                m.right.push((k, (None, w)));
                m.full.push((k, (None, Some(w))));
            }
        }
    }
    m.join.sort();
    m.left.sort();
    m.right.sort();
    m.full.sort();
    m
}

#[test]
fn joins_and_cogroup_match_the_model_on_random_batches() {
    let left = random_pairs(19, 12, 6, 15);
    let right = random_pairs(20, 12, 6, 15);
    let models: Vec<JoinModel> = left
        .iter()
        .zip(&right)
        .map(|(a, b)| join_model(a, b))
        .collect();

    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.join(&b)));
    assert_eq!(
        got,
        models.iter().map(|m| m.join.clone()).collect::<Vec<_>>(),
        "join"
    );
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.left_outer_join(&b)));
    assert_eq!(
        got,
        models.iter().map(|m| m.left.clone()).collect::<Vec<_>>(),
        "left_outer_join"
    );
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.right_outer_join(&b)));
    assert_eq!(
        got,
        models.iter().map(|m| m.right.clone()).collect::<Vec<_>>(),
        "right_outer_join"
    );
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| a.full_outer_join(&b)));
    assert_eq!(
        got,
        models.iter().map(|m| m.full.clone()).collect::<Vec<_>>(),
        "full_outer_join"
    );

    let want: Vec<_> = models.iter().map(|m| m.cogroup.clone()).collect();
    let [one, three] = at_1_and_3_2(&left, &right, |a, b| a.cogroup(&b));
    assert_eq!(
        sorted(one),
        want,
        "cogroup at local[1]: values in arrival order"
    );
    assert_eq!(
        sorted_groups(three),
        sorted_groups(want),
        "cogroup at local[3]"
    );
}

#[test]
fn self_join_pairs_each_keys_values_with_themselves() {
    let input = vec![vec![(1u32, 1i64), (1, 2), (2, 5)], vec![]];
    let got = same_sorted(at_1_and_3(&input, |s| s.join(&s.map(|kv: (u32, i64)| kv))));
    assert_eq!(
        got,
        [
            vec![
                (1, (1, 1)),
                (1, (1, 2)),
                (1, (2, 1)),
                (1, (2, 2)),
                (2, (5, 5))
            ],
            vec![]
        ]
    );
}

#[test]
fn keyed_ops_chain_after_a_join() {
    // Word count of joined values: join, then map, then reduce_by_key.
    let (left, right) = join_sides();
    let got = same_sorted(at_1_and_3_2(&left, &right, |a, b| {
        a.join(&b)
            .map(|(_, (_, w))| (w, 1u64))
            .reduce_by_key(|x, y| x + y)
    }));
    assert_eq!(
        got,
        [vec![(s("x"), 2), (s("y"), 2)], vec![], vec![], vec![]]
    );
}

// ---------------------------------------------------------------------------
// queue_stream: one batch per batch time, or everything queued at once with
// one_at_a_time = false; the default batch (or nothing) when the queue is dry.
// ---------------------------------------------------------------------------

#[test]
fn queue_stream_one_at_a_time_takes_one_batch_per_time_then_is_empty() {
    let got = WORKERS.map(|w| {
        run_batches(w, 4, |sc, out| {
            collect_into(&sc.queue_stream(vec![vec![1, 2], vec![3]], true, None), out)
        })
    });
    let want: Vec<Vec<i64>> = vec![vec![1, 2], vec![3], vec![], vec![]];
    assert_eq!(got[0], want, "local[1]");
    assert_eq!(got[1], want, "local[3]");
}

#[test]
fn queue_stream_uses_the_default_batch_when_the_queue_runs_dry() {
    let got = WORKERS.map(|w| {
        run_batches(w, 5, |sc, out| {
            let q = vec![vec![1, 2], vec![], vec![3]];
            collect_into(&sc.queue_stream(q, true, Some(vec![7, 8, 9])), out)
        })
    });
    // The queued empty batch is a batch: the default only fills in once the queue is empty.
    let want: Vec<Vec<i64>> = vec![vec![1, 2], vec![], vec![3], vec![7, 8, 9], vec![7, 8, 9]];
    assert_eq!(got[0], want, "local[1]");
    assert_eq!(got[1], want, "local[3]");
}

#[test]
fn queue_stream_not_one_at_a_time_takes_everything_queued_first_then_the_default() {
    let got = WORKERS.map(|w| {
        run_batches(w, 3, |sc, out| {
            let q = vec![vec![1, 2], vec![], vec![3], vec![4, 5]];
            collect_into(&sc.queue_stream(q, false, Some(vec![0])), out)
        })
    });
    let want: Vec<Vec<i64>> = vec![vec![1, 2, 3, 4, 5], vec![0], vec![0]];
    assert_eq!(got[0], want, "local[1]");
    assert_eq!(got[1], want, "local[3]");
}

#[test]
fn queue_stream_not_one_at_a_time_without_default_gives_empty_batches_after_the_first() {
    let got = WORKERS.map(|w| {
        run_batches(w, 3, |sc, out| {
            let stream = sc.queue_stream(vec![vec![1], vec![2, 3]], false, None);
            collect_into(&stream.count(), out)
        })
    });
    assert_eq!(got[0], [vec![3], vec![0], vec![0]], "local[1]");
    assert_eq!(got[1], [vec![3], vec![0], vec![0]], "local[3]");
}

#[test]
fn a_shared_queue_is_read_once_per_batch_by_all_workers_together() {
    for (w, one_at_a_time) in [(1, true), (3, true), (1, false), (3, false)] {
        let queue: Queue<i64> = Queue::from(vec![vec![1, 2, 3, 4], vec![5]]);
        let q = queue.clone();
        let got = run_batches(w, 3, move |sc, out| {
            collect_into(&sc.queue_stream(q.clone(), one_at_a_time, None), out)
        });
        let want: Vec<Vec<i64>> = if one_at_a_time {
            vec![vec![1, 2, 3, 4], vec![5], vec![]]
        } else {
            vec![vec![1, 2, 3, 4, 5], vec![], vec![]]
        };
        assert_eq!(got, want, "local[{w}], one_at_a_time = {one_at_a_time}");
        assert!(queue.is_empty(), "local[{w}]: every batch taken");
    }
}

#[test]
fn batches_pushed_to_a_shared_queue_while_running_arrive_in_later_batches() {
    for w in WORKERS {
        let clock = ManualClock::new();
        let conf = StreamingConf::new("ops", millis(INTERVAL_MS))
            .master(&format!("local[{w}]"))
            .unwrap();
        let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
        let queue: Queue<i64> = Queue::new();
        let out: Collected<i64> = Arc::default();
        let (q, sink) = (queue.clone(), out.clone());
        ssc.define(move |sc| collect_into(&sc.queue_stream(q.clone(), true, None), &sink))
            .unwrap();
        ssc.start().unwrap();
        let pushes: [Option<Vec<i64>>; 4] = [None, Some(vec![1, 2, 3]), None, Some(vec![4])];
        for (i, push) in pushes.into_iter().enumerate() {
            if let Some(batch) = push {
                queue.push(batch);
            }
            clock.advance(millis(INTERVAL_MS));
            ssc.await_batch(Time::from_millis((i as u64 + 1) * INTERVAL_MS))
                .unwrap();
        }
        ssc.stop(false).unwrap();
        let got: Vec<(u64, Vec<i64>)> = out
            .lock()
            .unwrap()
            .iter()
            .map(|(t, b)| (t.milliseconds(), b.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (1000, vec![]),
                (2000, vec![1, 2, 3]),
                (3000, vec![]),
                (4000, vec![4])
            ],
            "local[{w}]"
        );
    }
}

// ---------------------------------------------------------------------------
// Chains and large batches: per-batch operations feeding per-batch
// operations, and batches big enough to travel in several containers.
// ---------------------------------------------------------------------------

#[test]
fn per_batch_operations_chain_into_per_batch_operations() {
    let input = vec![vec![(1u32, 1i64), (2, 2), (1, 3)], vec![], vec![(3, 3)]];
    let got = same_exactly(at_1_and_3(&input, |s| s.count().count()));
    assert_eq!(got, [vec![1], vec![1], vec![1]], "count of count");
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.reduce(|a, b| (a.0 + b.0, a.1 + b.1)).count()
    }));
    assert_eq!(got, [vec![1], vec![0], vec![1]], "count of reduce");
    let got = same_exactly(at_1_and_3(&input, |s| {
        s.reduce_by_key(|a, b| a + b).count()
    }));
    assert_eq!(got, [vec![2], vec![0], vec![1]], "count of reduce_by_key");
    let got = same_sorted(at_1_and_3(&input, |s| {
        s.group_by_key()
            .map_values(|vs| vs.len())
            .map(|(_, n)| (n, ()))
            .group_by_key()
            .map_values(|u| u.len())
    }));
    assert_eq!(
        got,
        [vec![(1, 1), (2, 1)], vec![], vec![(1, 1)]],
        "histogram of group sizes"
    );
}

#[test]
fn joining_two_aggregates_of_the_same_stream_lines_them_up_by_key() {
    let input = random_pairs(21, 10, 5, 40);
    let want: Vec<Vec<(u32, (i64, u64))>> = input
        .iter()
        .map(|b| {
            model_groups(b)
                .into_iter()
                .map(|(k, vs)| (k, (vs.iter().sum(), vs.len() as u64)))
                .collect()
        })
        .collect();
    let got = same_sorted(at_1_and_3(&input, |s| {
        let sums = s.reduce_by_key(|a, b| a + b);
        let counts = s.map_values(|_| 1u64).reduce_by_key(|a, b| a + b);
        sums.join(&counts)
    }));
    assert_eq!(got, want);
}

#[test]
fn large_batches_keep_order_through_pipelined_ops_and_gathering() {
    let input: Vec<Vec<i64>> = vec![(0..20_000).collect(), vec![], (0..7_777).rev().collect()];
    let want: Vec<Vec<i64>> = input
        .iter()
        .map(|b| b.iter().map(|x| x * 2).collect())
        .collect();
    let got = same_exactly(at_1_and_3(&input, |s| s.map(|x: i64| x * 2)));
    assert_eq!(got, want, "map");
    let got = same_exactly(at_1_and_3(&input, |s| s.transform(|b: Vec<i64>, _| b)));
    assert_eq!(got, input, "transform identity");
    let got = same_exactly(at_1_and_3(&input, |s| s.count()));
    assert_eq!(got, [vec![20_000], vec![0], vec![7_777]], "count");
    for w in WORKERS {
        let parts = run_local(w, input.clone(), |s| s.glom());
        let joined: Vec<Vec<i64>> = parts.iter().map(|p| p.concat()).collect();
        assert_eq!(joined, input, "glom at local[{w}]");
    }
}

#[test]
fn large_keyed_batches_match_the_model() {
    let input = random_pairs(22, 4, 300, 20_000);
    let want: Vec<Vec<(u32, i64)>> = input
        .iter()
        .map(|b| {
            model_groups(b)
                .into_iter()
                .map(|(k, vs)| (k, vs.iter().sum()))
                .collect()
        })
        .collect();
    let got = same_sorted(at_1_and_3(&input, |s| s.reduce_by_key(|a, b| a + b)));
    assert_eq!(got, want, "reduce_by_key");
    let want: Vec<Vec<(u32, Vec<i64>)>> = input
        .iter()
        .map(|b| model_groups(b).into_iter().collect())
        .collect();
    let [one, _] = at_1_and_3(&input, |s| s.group_by_key());
    assert_eq!(
        sorted(one),
        want,
        "group_by_key at local[1] in arrival order"
    );
}

#[test]
fn map_partitions_state_advances_by_exactly_one_call_per_batch_on_each_worker() {
    let input = vec![vec![1, 2, 3], vec![], vec![4], vec![]];
    let [one, three] = at_1_and_3(&input, |s| {
        let mut calls = 0u64;
        s.map_partitions(move |_part: std::vec::IntoIter<i64>| {
            calls += 1;
            Some(calls)
        })
    });
    assert_eq!(one, [vec![1], vec![2], vec![3], vec![4]], "local[1]");
    assert_eq!(
        three,
        [vec![1, 1, 1], vec![2, 2, 2], vec![3, 3, 3], vec![4, 4, 4]],
        "local[3]"
    );
}
