//! Golden tests: ember's `print()` output equals real Apache Spark's on the
//! same queued input.
//!
//! Each `tests/golden/<case>/` holds `input/` (a file per batch, a record per
//! line), `expected.txt` (what Spark's `print(10000)` wrote, times shifted so
//! the first batch is at 1000 ms) and `case.txt` (the Spark pipeline);
//! `tests/golden/GoldenWindows.java` is the program and `generate.sh`
//! regenerates everything from a pip-installed pyspark. This runner never
//! writes expected files.
//!
//! Run: `cargo test -p ember-streaming --test golden [-- NAME_FILTER]`. Where Spark's
//! record order is fixed (windows list their batches oldest first, each in
//! partition order) the order is compared too; elsewhere (keyed results,
//! whose order follows Spark's hash partitions) records within a batch are
//! compared sorted.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ember::prelude::*;
use ember::testing::run_batches;
use ember::Data;

/// Batches run beyond the input, so windows drain (as the generator does).
const DRAIN_BATCHES: usize = 4;

type Pipeline = Box<dyn Fn(usize, Vec<Vec<String>>, usize) -> String>;

/// Runs `op` over the queued input on `workers` workers and returns the text
/// `print(10000)` wrote.
fn printed<U, F>(workers: usize, input: Vec<Vec<String>>, batches: usize, op: F) -> String
where
    U: Data + Show,
    F: for<'s> Fn(DStream<'s, String>) -> DStream<'s, U> + Send + Sync + 'static,
{
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let _: Vec<Vec<()>> = run_batches(workers, batches, move |s, out| {
        let sink = sink.clone();
        op(s.queue_stream(input.clone(), true, None))
            .print_with(10_000, move |t| sink.lock().unwrap().push_str(t));
        // run_batches collects from one stream; feed it an empty one.
        ember::testing::collect_into(&s.queue_stream(Vec::<Vec<()>>::new(), true, None), out);
    });
    let text = text.lock().unwrap().clone();
    text
}

fn boxed<U, F>(op: F) -> Option<Pipeline>
where
    U: Data + Show,
    F: for<'s> Fn(DStream<'s, String>) -> DStream<'s, U> + Send + Sync + Clone + 'static,
{
    Some(Box::new(move |w, input, n| {
        printed(w, input, n, op.clone())
    }))
}

fn pipeline(case: &str) -> Option<Pipeline> {
    let s = seconds;
    let len = |w: String| w.len() as i64;
    let one = |w: String| (w, 1i64);
    match case {
        "window_3s_2s" => boxed(move |d| d.window(s(3), s(2))),
        "window_2s_2s" => boxed(move |d| d.window(s(2), s(2))),
        "window_of_window" => boxed(move |d| d.window(s(2), s(1)).window(s(4), s(2))),
        "window_of_window_3s_1s_2s_2s" => boxed(move |d| d.window(s(3), s(1)).window(s(2), s(2))),
        "window_1s_2s" => boxed(move |d| d.window(s(1), s(2))),
        "window_4s_1s_filter_map" => boxed(move |d| {
            d.window(s(4), s(1))
                .filter(|w| w != "e")
                .map(|w| w.to_uppercase())
        }),
        "glom_sizes" => boxed(move |d| d.glom().map(|part| part.len() as i64)),
        "count_by_window_3s_1s" => boxed(move |d| d.count_by_window(s(3), s(1))),
        "reduce_by_window_4s_2s" => {
            boxed(move |d| d.map(len).reduce_by_window(|a, b| a + b, s(4), s(2)))
        }
        "reduce_by_window_inverse_4s_2s" => boxed(move |d| {
            d.map(len)
                .reduce_by_window_inv(|a, b| a + b, |a, b| a - b, s(4), s(2))
        }),
        "reduce_by_key_and_window_3s_1s" => boxed(move |d| {
            d.map(one)
                .reduce_by_key_and_window(|a, b| a + b, s(3), s(1))
        }),
        "reduce_by_key_and_window_inverse_3s_1s" => boxed(move |d| {
            d.map(one)
                .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, s(3), s(1))
        }),
        "reduce_by_key_and_window_inverse_filter_3s_1s" => boxed(move |d| {
            d.map(one).reduce_by_key_and_window_inv_filter(
                |a, b| a + b,
                |a, b| a - b,
                |(_, v)| *v > 0,
                s(3),
                s(1),
            )
        }),
        "reduce_by_key_and_window_5s_2s" => boxed(move |d| {
            d.map(one)
                .reduce_by_key_and_window(|a, b| a + b, s(5), s(2))
        }),
        "reduce_by_key_and_window_inverse_5s_2s" => boxed(move |d| {
            d.map(one)
                .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, s(5), s(2))
        }),
        "count_by_value_and_window_3s_2s" => {
            boxed(move |d| d.count_by_value_and_window(s(3), s(2)))
        }
        _ => None,
    }
}

/// The keyed window cases again with words borrowed from their lines
/// (`flat_map_str`; each input line is one word): Spark's output holds for
/// that path too.
fn borrowed_pipeline(case: &str) -> Option<Pipeline> {
    let s = seconds;
    match case {
        "reduce_by_key_and_window_3s_1s" => boxed(move |d| {
            d.flat_map_str(|l| l.split(' ').collect())
                .map(|w| (w, 1i64))
                .reduce_by_key_and_window(|a, b| a + b, s(3), s(1))
        }),
        "reduce_by_key_and_window_5s_2s" => boxed(move |d| {
            d.flat_map_str(|l| l.split(' ').collect())
                .map(|w| (w, 1i64))
                .reduce_by_key_and_window(|a, b| a + b, s(5), s(2))
        }),
        "reduce_by_key_and_window_inverse_3s_1s" => boxed(move |d| {
            d.flat_map_str(|l| l.split(' ').collect())
                .map(|w| (w, 1i64))
                .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, s(3), s(1))
        }),
        "reduce_by_key_and_window_inverse_5s_2s" => boxed(move |d| {
            d.flat_map_str(|l| l.split(' ').collect())
                .map(|w| (w, 1i64))
                .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, s(5), s(2))
        }),
        "reduce_by_key_and_window_inverse_filter_3s_1s" => boxed(move |d| {
            d.flat_map_str(|l| l.split(' ').collect())
                .map(|w| (w, 1i64))
                .reduce_by_key_and_window_inv_filter(
                    |a, b| a + b,
                    |a, b| a - b,
                    |(_, v)| *v > 0,
                    s(3),
                    s(1),
                )
        }),
        _ => None,
    }
}

/// Whether Spark's output order is part of the case: its records are a
/// window's (or one value per batch), not keyed results in hash order.
fn ordered(case: &str) -> bool {
    ["window", "count_by_window", "reduce_by_window", "glom"]
        .iter()
        .any(|p| case.starts_with(p))
}

/// The worker counts a case runs at: all of them, except where the output
/// shows the partitions themselves (Spark's queued batches have two).
fn parallelisms(case: &str) -> &'static [usize] {
    if case.starts_with("glom") {
        &[2]
    } else {
        &[1, 2, 3]
    }
}

/// Splits print() output into batches, sorting the records of each unless
/// `keep_order`.
fn normalised(text: &str, keep_order: bool) -> Vec<(String, Vec<String>)> {
    let dashes = "-".repeat(43);
    let mut batches: Vec<(String, Vec<String>)> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == dashes {
            if let Some(time) = lines.next() {
                lines.next(); // the closing dashes
                batches.push((time.to_string(), Vec::new()));
            }
        } else if !line.is_empty() {
            if let Some((_, records)) = batches.last_mut() {
                records.push(line.to_string());
            }
        }
    }
    if !keep_order {
        for (_, records) in &mut batches {
            records.sort();
        }
    }
    batches
}

fn read_input(dir: &Path) -> std::io::Result<Vec<Vec<String>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    files
        .iter()
        .map(|f| {
            Ok(std::fs::read_to_string(f)?
                .lines()
                .map(str::to_string)
                .collect())
        })
        .collect()
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.txt").is_file())
        .collect();
    cases.sort();
    let (mut passed, mut failed) = (0, 0);
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let Some(run) = pipeline(&name) else {
            println!(
                "golden {name} ... FAILED: no ember pipeline for this case in tests/golden.rs"
            );
            failed += 1;
            continue;
        };
        let input = read_input(&dir.join("input")).expect("readable input");
        let expected =
            std::fs::read_to_string(dir.join("expected.txt")).expect("readable expected.txt");
        let keep_order = ordered(&name);
        let want = normalised(&expected, keep_order);
        let batches = input.len() + DRAIN_BATCHES;
        let runs = std::iter::once((name.clone(), run))
            .chain(borrowed_pipeline(&name).map(|run| (format!("{name} (flat_map_str)"), run)));
        for (label, run) in runs {
            let mut ok = true;
            for &workers in parallelisms(&name) {
                let got = normalised(&run(workers, input.clone(), batches), keep_order);
                if got != want {
                    ok = false;
                    println!("golden {label} at local[{workers}] ... FAILED");
                    let n = want.len().max(got.len());
                    for i in 0..n {
                        let (w, g) = (want.get(i), got.get(i));
                        if w != g {
                            println!("  spark: {w:?}\n  ember: {g:?}");
                        }
                    }
                }
            }
            if ok {
                let how = if keep_order {
                    "order compared"
                } else {
                    "sorted"
                };
                println!(
                    "golden {label} ... ok ({how}, local{:?})",
                    parallelisms(&name)
                );
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    println!("\ngolden: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
