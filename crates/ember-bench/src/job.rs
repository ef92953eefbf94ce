//! `ember-bench ember-job`: ember's side of the comparison with Spark
//! (`bench/compare-spark/`): one of three jobs reading an external TCP
//! server (`ember-bench serve`), printing machine-readable lines that the
//! harness turns into the same figures it takes from Spark's listener.
//!
//! - `OUT <batch ms> <wall ms> <words> <keys>`: the output operation ran for
//!   a batch (words = the sum of the counts it saw, keys = records);
//! - `DONE <batch ms> <wall ms>`: every output finished the batch (read from
//!   the context's completed-batch watermark, polled every millisecond);
//! - `BATCH <batch ms> <submission> <scheduling> <processing> <records>`:
//!   the listener's record of a completed batch, delays in ms (where a
//!   slow batch spent its time).
//!
//! `ember-bench baseline`: the machine's own limit for this work, a single
//! thread splitting the same text and counting words into a hash map.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_core::{BatchInfo, StreamingConf, StreamingContext, StreamingListener, Time};

use crate::gen::{now_us, Corpus};
use crate::run::peak_rss_kb;

/// Which job to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Job {
    /// `NetworkWordCount`: split → (word, 1) → `reduce_by_key`.
    Wordcount,
    /// `reduce_by_key_and_window` with the inverse function (and a filter
    /// dropping zero counts), `--window` / `--slide`.
    Window,
    /// `update_state_by_key` keeping a running count per word.
    State,
}

/// How the job's program splits lines into words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Words {
    /// `flat_map` to an owned `String` per word: the program as a Spark
    /// user first writes it.
    Owned,
    /// `flat_map_str`: words stay slices of their line until the map-side
    /// combine, which copies a word only the first time it sees it in a batch.
    Borrowed,
}

/// Settings of `ember-job`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct JobArgs {
    /// The job.
    #[arg(long, value_enum)]
    job: Job,
    /// Owned `String` words or words borrowed from their lines.
    #[arg(long, value_enum, default_value = "owned")]
    words: Words,
    /// Server to read lines from.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// ember master: `local[N]`.
    #[arg(long, default_value = "local[2]")]
    master: String,
    /// Batch interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Window length of the `window` job, seconds.
    #[arg(long, default_value_t = 30)]
    window: u64,
    /// Slide of the `window` job, seconds.
    #[arg(long, default_value_t = 10)]
    slide: u64,
    /// Stop (not gracefully) after this many batch intervals, as the
    /// Spark and PySpark jobs of `bench/compare-spark` do.
    #[arg(long, default_value_t = 600)]
    batches: u64,
    /// Also give the counts the `network_word_count` example's outputs:
    /// `print()` (to stdout, among the job's lines), `to_dashboard` and the
    /// web UI (on a free loopback port), to measure what they cost.
    /// Without it the job has no UI.
    #[arg(long)]
    example_outputs: bool,
}

fn now_ms() -> u64 {
    now_us() / 1000
}

/// Runs the job until `--batches` intervals have passed (or the process is killed).
pub(crate) fn run(args: &JobArgs) -> Result<(), String> {
    let interval = args.interval_ms;
    // The web UI only with the example's outputs (the example serves it);
    // the comparison figures are the job's alone.
    let ui = args.example_outputs.then_some("127.0.0.1:0");
    let conf = StreamingConf::new("ember-compare", Duration::from_millis(interval))
        .master(&args.master)
        .map_err(|e| e.to_string())?
        .ui(ui);
    let ssc = StreamingContext::new(conf).map_err(|e| e.to_string())?;
    let (host, port, job, words) = (args.host.clone(), args.port, args.job, args.words);
    let example_outputs = args.example_outputs;
    let (window, slide) = (
        Duration::from_secs(args.window),
        Duration::from_secs(args.slide),
    );
    ssc.define(move |s| {
        let lines = s.socket_text_stream(&host, port);
        let state =
            |vs: Vec<u64>, old: Option<u64>| Some(old.unwrap_or(0) + vs.iter().sum::<u64>());
        let counts = match words {
            Words::Owned => {
                let pairs = lines
                    .flat_map(|l: String| l.split(' ').map(str::to_string).collect::<Vec<_>>())
                    .map(|w| (w, 1u64));
                match job {
                    Job::Wordcount => pairs.reduce_by_key(|a, b| a + b),
                    Job::Window => pairs.reduce_by_key_and_window_inv_filter(
                        |a, b| a + b,
                        |a, b| a - b,
                        |(_, n)| *n > 0,
                        window,
                        slide,
                    ),
                    Job::State => pairs.update_state_by_key(state),
                }
            }
            Words::Borrowed => {
                let pairs = lines
                    .flat_map_str(|l| l.split(' ').collect())
                    .map(|w| (w, 1u64));
                match job {
                    Job::Wordcount => pairs.reduce_by_key(|a, b| a + b),
                    Job::Window => pairs.reduce_by_key_and_window_inv_filter(
                        |a, b| a + b,
                        |a, b| a - b,
                        |(_, n)| *n > 0,
                        window,
                        slide,
                    ),
                    // The state sees one value per word per batch (its
                    // count), not a 1 per occurrence: the same running counts.
                    Job::State => pairs.reduce_by_key(|a, b| a + b).update_state_by_key(state),
                }
            }
        };
        if example_outputs {
            counts.print();
            counts.to_dashboard("word counts");
        }
        counts.foreach_rdd(move |batch, time: Time| {
            let at = now_ms();
            let words: u64 = batch.iter().map(|(_, n)| n).sum();
            println!("OUT {} {at} {words} {}", time.milliseconds(), batch.len());
        });
    })
    .map_err(|e| e.to_string())?;
    ssc.add_streaming_listener(Arc::new(BatchLines));
    ssc.start().map_err(|e| e.to_string())?;
    let first = ssc.first_batch_time().expect("started").milliseconds();
    println!("STARTED {} first_batch {first}", now_ms());
    let last = first + args.batches.saturating_sub(1) * interval;
    let mut seen = first - interval;
    while seen < last {
        // Polls every millisecond; a SIGTERM stops the context gracefully,
        // and then the job ends too.
        let stopped = ssc
            .await_termination_or_timeout(Duration::from_millis(1))
            .map_err(|e| e.to_string())?;
        if let Some(t) = ssc.last_completed_batch().map(Time::milliseconds) {
            if t > seen {
                let at = now_ms();
                let mut out = std::io::stdout().lock();
                while seen < t {
                    seen += interval;
                    let _ = writeln!(out, "DONE {seen} {at}");
                }
            }
        }
        if stopped || now_ms() > last + 10 * interval {
            break;
        }
    }
    ssc.stop(false).map_err(|e| e.to_string())?;
    println!("RSS {}", peak_rss_kb().unwrap_or(0));
    Ok(())
}

/// Prints a `BATCH` line for every completed batch.
struct BatchLines;

impl StreamingListener for BatchLines {
    fn on_batch_completed(&self, b: &BatchInfo) {
        let submission = b.submission_time.saturating_sub(b.batch_wall_time);
        let (scheduling, processing) = (b.scheduling_delay(), b.processing_delay());
        println!(
            "BATCH {} {submission} {} {} {}",
            b.batch_time.milliseconds(),
            scheduling.unwrap_or(0),
            processing.unwrap_or(0),
            b.num_records()
        );
    }
}

/// The cheap multiplicative hash a word counter would use.
type Fx = rustc_hash::FxBuildHasher;

/// How the single-thread loop holds its words.
#[derive(Clone, Copy)]
enum Keys {
    /// Slices of the text as keys: no allocation per word.
    Borrowed,
    /// `String` keys, looked up by `&str`: one allocation per new word.
    Owned,
    /// What the comparison job's program does, without an engine around
    /// it: a `String` per line, `split(' ')` collected into a
    /// `Vec<String>` per line, each word moved into `entry()`.
    Program,
}

/// Counts the corpus' words for `secs` seconds in one thread, with hasher
/// `S` and keys held as `keys` says; returns words/s and the distinct words.
fn count_loop<S: BuildHasher + Default>(corpus: &Corpus, secs: f64, keys: Keys) -> (f64, usize) {
    let start = Instant::now();
    let mut words = 0u64;
    let mut distinct = 0;
    let lines = || {
        corpus
            .text
            .split(|&b| b == b'\n')
            .map(|l| std::str::from_utf8(l).unwrap_or(""))
    };
    while start.elapsed().as_secs_f64() < secs {
        match keys {
            Keys::Owned => {
                let mut m: HashMap<String, u64, S> = HashMap::default();
                for line in lines() {
                    for w in line.split(' ').filter(|w| !w.is_empty()) {
                        match m.get_mut(w) {
                            Some(c) => *c += 1,
                            None => {
                                m.insert(w.to_string(), 1);
                            }
                        }
                        words += 1;
                    }
                }
                distinct = m.len();
                std::hint::black_box(&m);
            }
            Keys::Program => {
                let mut m: HashMap<String, u64, S> = HashMap::default();
                for line in lines() {
                    let line = line.to_string();
                    let ws: Vec<String> = line.split(' ').map(str::to_string).collect();
                    for w in ws {
                        *m.entry(w).or_insert(0) += 1;
                        words += 1;
                    }
                }
                distinct = m.len();
                std::hint::black_box(&m);
            }
            Keys::Borrowed => {
                let mut m: HashMap<&[u8], u64, S> = HashMap::default();
                for line in corpus.text.split(|&b| b == b'\n') {
                    for w in line.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
                        *m.entry(w).or_insert(0) += 1;
                        words += 1;
                    }
                }
                distinct = m.len();
                std::hint::black_box(&m);
            }
        }
    }
    (words as f64 / start.elapsed().as_secs_f64(), distinct)
}

/// Prints the single-core word-count limit of this machine, per variant:
/// `BASELINE <variant> <words/s>`. The last, `job-program`, is the ceiling
/// of the comparison job's own program on one core with no engine at all.
pub(crate) fn baseline(secs: f64, corpus: &Arc<Corpus>) {
    for (name, keys, fx) in [
        ("fxhash-borrowed", Keys::Borrowed, true),
        ("fxhash-owned-string", Keys::Owned, true),
        ("siphash-borrowed", Keys::Borrowed, false),
        ("job-program-fxhash", Keys::Program, true),
    ] {
        let (rate, distinct) = if fx {
            count_loop::<Fx>(corpus, secs, keys)
        } else {
            count_loop::<std::collections::hash_map::RandomState>(corpus, secs, keys)
        };
        println!("BASELINE {name} {rate:.0} words/s ({distinct} distinct words, one thread)");
    }
}
