//! `ember-bench`: how many words per second ember's streaming word count
//! sustains, and with what end-to-end delay, over loopback TCP or from
//! memory. See the crate's README for the definitions and results.

mod ckpt;
mod cluster;
mod gen;
mod job;
mod run;
mod serve;
mod window;

use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::gen::Corpus;
use crate::run::{percentile, Input, RunResult, RunSpec};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ember-bench",
    version,
    about = "Word-count throughput and latency of ember"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone, Debug)]
struct Common {
    /// Where lines come from.
    #[arg(long, value_enum, default_value_t = Input::Tcp)]
    input: Input,
    /// ember master: `local[N]`.
    #[arg(long, default_value = "local[2]")]
    master: String,
    /// Batch interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Batches skipped before measuring.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Batches measured (default: 10; 5 per step for `search`).
    #[arg(long)]
    batches: Option<usize>,
    /// Print every batch as it completes.
    #[arg(long, short)]
    verbose: bool,
}

impl Common {
    fn spec(&self, rate: u64, default_batches: usize) -> RunSpec {
        RunSpec {
            input: self.input,
            master: self.master.clone(),
            rate,
            interval_ms: self.interval_ms,
            warmup: self.warmup,
            batches: self.batches.unwrap_or(default_batches).max(1),
            verbose: self.verbose,
        }
    }
}

#[derive(Args, Clone, Debug)]
struct SearchArgs {
    /// First rate tried, words/s; doubled until it fails, then bisected.
    #[arg(long, default_value_t = 2_000_000)]
    start_rate: u64,
    /// Highest rate tried, words/s.
    #[arg(long, default_value_t = 128_000_000)]
    max_rate: u64,
    /// Runs at most.
    #[arg(long, default_value_t = 9)]
    max_steps: usize,
    /// Stop bisecting when the bracket is narrower than this fraction.
    #[arg(long, default_value_t = 0.1)]
    precision: f64,
}

#[derive(Subcommand)]
enum Cmd {
    /// One run at a fixed rate: per-batch lines and whether it was sustained.
    Sustained {
        #[command(flatten)]
        common: Common,
        /// Words per second offered.
        #[arg(long, default_value_t = 5_000_000)]
        rate: u64,
    },
    /// The highest sustained rate, by doubling then bisecting.
    Search {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        search: SearchArgs,
    },
    /// Batch-level end-to-end delay (p50/p99) at a fixed moderate rate.
    Latency {
        #[command(flatten)]
        common: Common,
        /// Words per second offered.
        #[arg(long, default_value_t = 1_000_000)]
        rate: u64,
    },
    /// The seed's windowed count (`reduce_by_key_and_window`, 30 s window,
    /// 10 s slide, 1 s batches) at a fixed rate over loopback TCP.
    Window {
        #[command(flatten)]
        args: window::WindowArgs,
    },
    /// Checkpoint cost per batch with a large keyed state.
    Checkpoint {
        #[command(flatten)]
        args: ckpt::CkptArgs,
    },
    /// Time from SIGKILL to the restarted process's first completed batch.
    Recovery {
        #[command(flatten)]
        args: ckpt::CkptArgs,
    },
    /// The process `recovery` kills and restarts.
    #[command(hide = true)]
    RecoveryChild {
        #[command(flatten)]
        args: ckpt::CkptArgs,
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// The load generator as a standalone TCP server (for
    /// `bench/compare-spark`): every client gets the text at `--rate` words/s.
    Serve {
        #[command(flatten)]
        args: serve::ServeArgs,
    },
    /// One of the comparison jobs reading an external server, printing
    /// machine-readable per-batch lines (for `bench/compare-spark`).
    EmberJob {
        #[command(flatten)]
        args: job::JobArgs,
    },
    /// Word count in cluster mode: the same text counted by 1, 2 or 3
    /// processes over loopback; wall and CPU time, bytes exchanged per word.
    Cluster {
        #[command(flatten)]
        args: cluster::ClusterArgs,
    },
    /// One process of `cluster`.
    #[command(hide = true)]
    ClusterChild {
        #[command(flatten)]
        args: cluster::ChildArgs,
    },
    /// The machine's single-threaded split-and-count limit, words/s.
    Baseline {
        /// Seconds per variant.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// One run in this process, printed as one machine-readable line
    /// (used by `search` and `all` so every run has a fresh process).
    #[command(hide = true)]
    RunOne {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        rate: u64,
    },
    /// The matrix {`local[1]`, `local[2]`} × {memory, tcp}: highest sustained
    /// rate, latency at 1M words/s, peak RSS, as a markdown table.
    All {
        /// Batches measured per search step.
        #[arg(long, default_value_t = 4)]
        search_batches: usize,
        /// Batches measured for latency.
        #[arg(long, default_value_t = 10)]
        latency_batches: usize,
        /// Rate of the latency runs, words/s.
        #[arg(long, default_value_t = 1_000_000)]
        latency_rate: u64,
        /// Masters to run.
        #[arg(long, value_delimiter = ',', default_value = "local[1],local[2]")]
        masters: Vec<String>,
        /// Inputs to run.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "memory,tcp")]
        inputs: Vec<Input>,
        #[command(flatten)]
        search: SearchArgs,
    },
}

fn mwps(x: f64) -> String {
    format!("{:.2}", x / 1e6)
}

fn mb(kb: Option<u64>) -> String {
    kb.map_or_else(|| "?".into(), |k| format!("{:.0}", k as f64 / 1024.0))
}

fn print_run(r: &RunResult) {
    println!(
        "{:>15} {:>9} {:>11} {:>11} {:>7} {:>10}",
        "batch time ms", "delay ms", "counted", "offered", "keys", "backlog"
    );
    for row in &r.rows {
        println!(
            "{:>15} {:>9.1} {:>11} {:>11} {:>7} {:>10}",
            row.time_ms, row.delay_ms, row.counted, row.offered, row.keys, row.backlog
        );
    }
    let s = &r.spec;
    println!(
        "{} {} at {} M words/s: offered {} M words/s, counted {} M words/s; total delay p50 {:.0} \
         ms, p99 {:.0} ms, max {:.0} ms, growth {:+.0} ms; sent {} counted {} words in all; peak \
         RSS {} MB",
        s.master,
        s.input,
        mwps(s.rate as f64),
        mwps(r.offered_rate),
        mwps(r.counted_rate),
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.growth_ms,
        r.sent_total,
        r.counted_total,
        mb(r.rss_kb)
    );
    verdict(r);
}

fn verdict(r: &RunResult) {
    if r.sustained() {
        println!("SUSTAINED");
    } else {
        println!("NOT SUSTAINED:");
        for f in &r.failures {
            println!("  - {f}");
        }
    }
}

fn run_or_exit(spec: &RunSpec, corpus: &Arc<Corpus>) -> RunResult {
    match run::run(spec, corpus) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ember-bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs `spec` in a child process (`run-one`), so that its peak RSS is its
/// own and no memory the allocator kept from an earlier run is counted;
/// falls back to this process if the child cannot be started.
fn run_isolated(spec: &RunSpec, corpus: &Arc<Corpus>) -> RunResult {
    let Ok(exe) = std::env::current_exe() else {
        return run_or_exit(spec, corpus);
    };
    let output = std::process::Command::new(exe)
        .arg("run-one")
        .args(["--input", &spec.input.to_string(), "--master", &spec.master])
        .args(["--interval-ms", &spec.interval_ms.to_string()])
        .args([
            "--warmup",
            &spec.warmup.to_string(),
            "--batches",
            &spec.batches.to_string(),
        ])
        .args(["--rate", &spec.rate.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output();
    let parsed = output.ok().and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.lines()
            .rev()
            .find_map(|l| RunResult::from_line(spec, l))
    });
    match parsed {
        Some(r) => r,
        None => {
            eprintln!("ember-bench: the child run failed");
            std::process::exit(1);
        }
    }
}

/// The highest sustained rate and the run that showed it.
fn search(common: &Common, args: &SearchArgs, corpus: &Arc<Corpus>) -> Option<RunResult> {
    let mut best: Option<RunResult> = None;
    let mut failed_at: Option<u64> = None;
    let mut rate = args.start_rate.max(10_000);
    for step in 1..=args.max_steps {
        let r = run_isolated(&common.spec(rate, 5), corpus);
        println!(
            "step {step}: {} M words/s -> {} (counted {} M words/s, max delay {:.0} ms){}",
            mwps(rate as f64),
            if r.sustained() {
                "sustained"
            } else {
                "NOT sustained"
            },
            mwps(r.counted_rate),
            r.max_ms,
            r.failures
                .first()
                .map_or(String::new(), |f| format!(": {f}"))
        );
        if r.sustained() {
            best = Some(r);
        } else {
            failed_at = Some(rate);
        }
        let lo = best.as_ref().map_or(0, |b| b.spec.rate);
        rate = match failed_at {
            None if rate >= args.max_rate => break,
            None => (rate * 2).min(args.max_rate),
            Some(hi) => {
                if lo > 0 && (hi - lo) as f64 <= args.precision * lo as f64 {
                    break;
                }
                // Round to 100k words/s so the table reads well.
                let mid = (lo + hi) / 2 / 100_000 * 100_000;
                if mid <= lo || mid >= hi {
                    break;
                }
                mid
            }
        };
    }
    best
}

const TABLE_HEAD: &str = "| master | input | max sustained (M words/s) | counted at max (M words/s) | total delay at max p50 / max (ms) | peak RSS at max (MB) |\n|---|---|---|---|---|---|";

fn search_row(common: &Common, best: &Option<RunResult>) -> String {
    match best {
        Some(b) => format!(
            "| {} | {} | {} | {} | {:.0} / {:.0} | {} |",
            common.master,
            common.input,
            mwps(b.spec.rate as f64),
            mwps(b.counted_rate),
            b.p50_ms,
            b.max_ms,
            mb(b.rss_kb)
        ),
        None => format!(
            "| {} | {} | none sustained | | | |",
            common.master, common.input
        ),
    }
}

fn exit_on_error(r: Result<(), String>) {
    if let Err(e) = r {
        eprintln!("ember-bench: {e}");
        std::process::exit(1);
    }
}

fn main() {
    let cli = Cli::parse();
    // The comparison job reads an external server: no text of its own (its
    // RSS and start-up are measured).
    if let Cmd::EmberJob { args } = &cli.cmd {
        return exit_on_error(job::run(args));
    }
    if let Cmd::Cluster { args } = &cli.cmd {
        return exit_on_error(cluster::run(args));
    }
    if let Cmd::ClusterChild { args } = &cli.cmd {
        return exit_on_error(cluster::child(args));
    }
    let corpus = Arc::new(Corpus::generate(0x5EED));
    match cli.cmd {
        Cmd::Sustained { common, rate } => {
            let r = run_or_exit(&common.spec(rate, 10), &corpus);
            print_run(&r);
            if !r.sustained() {
                std::process::exit(2);
            }
        }
        Cmd::Checkpoint { args } => exit_on_error(ckpt::checkpoint(&args)),
        Cmd::Recovery { args } => exit_on_error(ckpt::recovery(&args)),
        Cmd::RecoveryChild { args, dir } => exit_on_error(ckpt::child(&args, &dir)),
        Cmd::Window { args } => match window::run(&args, &corpus) {
            Ok(true) => {}
            Ok(false) => std::process::exit(2),
            Err(e) => {
                eprintln!("ember-bench: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Serve { args } => exit_on_error(serve::run(&args, &corpus)),
        Cmd::EmberJob { .. } | Cmd::Cluster { .. } | Cmd::ClusterChild { .. } => {
            unreachable!("handled above")
        }
        Cmd::Baseline { seconds } => job::baseline(seconds, &corpus),
        Cmd::RunOne { common, rate } => {
            let r = run_or_exit(&common.spec(rate, 10), &corpus);
            println!("{}", r.to_line());
        }
        Cmd::Search {
            common,
            search: args,
        } => {
            let best = search(&common, &args, &corpus);
            println!("\n{TABLE_HEAD}\n{}", search_row(&common, &best));
        }
        Cmd::Latency { common, rate } => {
            let r = run_or_exit(&common.spec(rate, 10), &corpus);
            print_run(&r);
            let d: Vec<f64> = r.rows.iter().map(|x| x.delay_ms).collect();
            println!(
                "latency at {} M words/s over {} batches: total delay p50 {:.0} ms, p99 {:.0} ms",
                mwps(rate as f64),
                d.len(),
                percentile(&d, 50.0),
                percentile(&d, 99.0)
            );
        }
        Cmd::All {
            search_batches,
            latency_batches,
            latency_rate,
            masters,
            inputs,
            search: args,
        } => {
            let mut lines = Vec::new();
            for master in &masters {
                for &input in &inputs {
                    println!("== {master} {input}");
                    let common = Common {
                        input,
                        master: master.clone(),
                        interval_ms: 1000,
                        warmup: 2,
                        batches: Some(search_batches),
                        verbose: false,
                    };
                    let best = search(&common, &args, &corpus);
                    let lat_common = Common {
                        batches: Some(latency_batches),
                        ..common.clone()
                    };
                    let lat = run_isolated(&lat_common.spec(latency_rate, 10), &corpus);
                    println!(
                        "latency at {} M words/s: p50 {:.0} ms, p99 {:.0} ms{}",
                        mwps(latency_rate as f64),
                        lat.p50_ms,
                        lat.p99_ms,
                        if lat.sustained() {
                            ""
                        } else {
                            " (NOT sustained)"
                        }
                    );
                    let max = best
                        .as_ref()
                        .map_or("none".into(), |b| mwps(b.spec.rate as f64));
                    let (p50, maxd) = best
                        .as_ref()
                        .map_or((f64::NAN, f64::NAN), |b| (b.p50_ms, b.max_ms));
                    let rss = best.as_ref().and_then(|b| b.rss_kb);
                    lines.push(format!(
                        "| {master} | {input} | {max} | {:.0} / {:.0} | {:.0} / {:.0}{} | {} / {} |",
                        p50,
                        maxd,
                        lat.p50_ms,
                        lat.p99_ms,
                        if lat.sustained() { "" } else { " (not sustained)" },
                        mb(rss),
                        mb(lat.rss_kb)
                    ));
                }
            }
            println!(
                "\n| master | input | max sustained (M words/s) | total delay at max p50 / max \
                 (ms) | total delay at {} M words/s p50 / p99 (ms) | peak RSS at max / at {} M \
                 (MB) |\n|---|---|---|---|---|---|",
                mwps(latency_rate as f64),
                mwps(latency_rate as f64)
            );
            for l in lines {
                println!("{l}");
            }
        }
    }
}
