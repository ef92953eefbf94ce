//! Word count in cluster mode on this machine: the same fixed amount of
//! text counted by 1, 2 or 3 processes connected by timely over loopback.
//!
//! Every process builds the same queue of lines (the generator's text,
//! repeated to `--words`), all of it in the first batch, and takes its
//! workers' slices of it (as `queue_stream` splits a batch). The figures
//! per layout:
//!
//! - **wall**: from the first batch's time (when it closes) until process 0
//!   sees it complete — words / wall is the throughput;
//! - **CPU**: user + system time of every process over the same span (read
//!   from `/proc/self/stat` when the batch closes and when it completes) —
//!   words / CPU-second is what the work costs, independent of how many
//!   cores the machine lends it;
//! - **bytes exchanged**: what the processes sent over TCP over that span
//!   (the kernel's `bytes_sent` of each connection, read with `ss`; the
//!   input is in memory and the UI off, so these are timely's connections),
//!   per word.
//!
//! `--combine off` counts with `group_by_key` (every `(word, 1)` crosses
//! the exchange, as Spark's `groupByKey`) instead of `reduce_by_key` (one
//! partial count per word per worker crosses).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ember_core::{seconds, Queue, StreamingConf, StreamingContext, Time};

use crate::gen::Corpus;

/// Settings of `ember-bench cluster`.
#[derive(Args, Clone, Debug)]
pub(crate) struct ClusterArgs {
    /// Layouts to run, as PROCESSESxWORKERS.
    #[arg(long, value_delimiter = ',', default_value = "1x2,2x1,3x1,3x2")]
    layouts: Vec<String>,
    /// Words counted per run.
    #[arg(long, default_value_t = 20_000_000)]
    words: u64,
    /// Runs per layout (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Map-side combine (`reduce_by_key`) or not (`group_by_key`).
    #[arg(long, default_value = "on")]
    combine: String,
}

/// Settings of one process (`ember-bench cluster-child`).
#[derive(Args, Clone, Debug)]
pub(crate) struct ChildArgs {
    #[arg(long)]
    hosts: String,
    #[arg(long)]
    process: usize,
    #[arg(long)]
    workers: usize,
    #[arg(long)]
    words: u64,
    #[arg(long)]
    combine: String,
}

/// CPU seconds (user + system) this process has used.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|x| x.parse::<f64>().ok()).sum()
    });
    // Linux's USER_HZ is 100 on every architecture it reports through /proc.
    ticks / 100.0
}

/// Bytes this process has sent over TCP, summed over its connections
/// (`bytes_sent` of the kernel's TCP info, through `ss` of iproute2);
/// `None` when `ss` cannot tell.
fn sent_bytes() -> Option<u64> {
    let out = Command::new("ss").args(["-tinpH"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let me = format!("pid={},", std::process::id());
    let mut lines = text.lines();
    let mut sum = 0;
    // Each socket: a line naming the process, then a line of counters.
    while let Some(line) = lines.next() {
        let Some(info) = lines.next() else { break };
        if !line.contains(&me) {
            continue;
        }
        sum += info
            .split_whitespace()
            .find_map(|f| f.strip_prefix("bytes_sent:"))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(sum)
}

/// One process of the cluster: counts the words, prints one `CHILD` line.
pub(crate) fn child(args: &ChildArgs) -> Result<(), String> {
    child_run(args).map_err(|e| e.to_string())
}

fn child_run(args: &ChildArgs) -> ember_core::Result<()> {
    let corpus = Corpus::generate(0x5EED);
    let queue: Queue<String> = Queue::new();
    let mut batch = Vec::new();
    let mut words = 0u64;
    'fill: loop {
        for line in &corpus.lines {
            if words >= args.words {
                break 'fill;
            }
            words += line.split(' ').count() as u64;
            batch.push(line.clone());
        }
    }
    queue.push(batch);
    let master = [
        "--master",
        "cluster",
        "--hosts",
        &args.hosts,
        "--process",
        &args.process.to_string(),
        "--workers",
        &args.workers.to_string(),
    ]
    .map(String::from);
    let (conf, _) = StreamingConf::new("cluster-bench", seconds(1))
        .ui(None)
        .stop_on_signals(false)
        .parse_args(master)?;
    let ssc = StreamingContext::new(conf)?;
    let combine = args.combine == "on";
    let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = counted.clone();
    ssc.define(move |s| {
        let pairs = s
            .queue_stream(queue.clone(), false, None)
            .flat_map(|l: String| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64));
        let counts = if combine {
            pairs.reduce_by_key(|a, b| a + b)
        } else {
            pairs.group_by_key().map(|(w, ones)| (w, ones.len() as u64))
        };
        let total = total.clone();
        counts.foreach_rdd(move |batch, _| {
            let n: u64 = batch.iter().map(|(_, c)| c).sum();
            total.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        });
    })?;
    ssc.start()?;
    let first = ssc.first_batch_time().expect("started").milliseconds();
    // Readings when the first batch closes (it holds all the text).
    let wait = first.saturating_sub(now_ms());
    std::thread::sleep(Duration::from_millis(wait));
    let begin = now_ms();
    let (cpu0, bytes0) = (cpu_seconds(), sent_bytes().unwrap_or(0));
    ssc.await_batch(Time::from_millis(first))?;
    let wall_ms = now_ms().saturating_sub(begin);
    let (cpu1, bytes1) = (cpu_seconds(), sent_bytes().unwrap_or(0));
    // Process 0 ends the run for everyone.
    if args.process == 0 {
        ssc.stop(false)?;
    } else {
        ssc.await_termination()?;
    }
    println!(
        "CHILD {} {wall_ms} {:.3} {} {}",
        args.process,
        cpu1 - cpu0,
        bytes1 - bytes0,
        counted.load(std::sync::atomic::Ordering::Relaxed)
    );
    Ok(())
}

fn now_ms() -> u64 {
    crate::gen::now_us() / 1000
}

/// One run of a layout: (wall ms, CPU s of all processes, bytes sent by
/// all, words counted by process 0).
fn run_layout(
    processes: usize,
    workers: usize,
    args: &ClusterArgs,
) -> Option<(u64, f64, u64, u64)> {
    let ports: Vec<u16> = (0..processes)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or(0)
        })
        .collect();
    let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let exe = std::env::current_exe().ok()?;
    let children: Vec<_> = (0..processes)
        .map(|p| {
            Command::new(&exe)
                .arg("cluster-child")
                .args(["--hosts", &hosts.join(",")])
                .args(["--process", &p.to_string()])
                .args(["--workers", &workers.to_string()])
                .args(["--words", &args.words.to_string()])
                .args(["--combine", &args.combine])
                .stdout(Stdio::piped())
                // timely's connection messages; a failed run is reported.
                .stderr(Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let mut wall = 0;
    let (mut cpu, mut bytes, mut counted) = (0.0, 0, 0);
    for c in children {
        let out = c.wait_with_output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text.lines().find(|l| l.starts_with("CHILD "))?;
        let f: Vec<&str> = line.split(' ').collect();
        let process: usize = f.get(1)?.parse().ok()?;
        cpu += f.get(3)?.parse::<f64>().ok()?;
        bytes += f.get(4)?.parse::<u64>().ok()?;
        if process == 0 {
            wall = f.get(2)?.parse().ok()?;
            counted = f.get(5)?.parse().ok()?;
        }
    }
    Some((wall, cpu, bytes, counted))
}

/// Runs every layout and prints a markdown table.
pub(crate) fn run(args: &ClusterArgs) -> Result<(), String> {
    println!(
        "word count of {} M words in one batch, map-side combine {}; median of {} runs",
        args.words as f64 / 1e6,
        args.combine,
        args.runs
    );
    println!(
        "| processes × workers | wall (s) | M words/s (wall) | CPU (s) | M words / CPU-second | \
         bytes sent between processes per word |"
    );
    println!("|---|---|---|---|---|---|");
    for layout in &args.layouts {
        let Some((p, w)) = layout
            .split_once('x')
            .and_then(|(p, w)| Some((p.parse::<usize>().ok()?, w.parse::<usize>().ok()?)))
        else {
            return Err(format!(
                "bad layout {layout}: use PROCESSESxWORKERS, e.g. 3x2"
            ));
        };
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            match run_layout(p, w, args) {
                Some(r) if r.3 >= args.words => runs.push(r),
                Some(r) => eprintln!("{layout}: counted {} of {} words", r.3, args.words),
                None => eprintln!("{layout}: a run failed"),
            }
        }
        if runs.is_empty() {
            println!("| {p} × {w} | failed | | | | |");
            continue;
        }
        runs.sort_by_key(|r| r.0);
        let (wall, cpu, bytes, counted) = runs[runs.len() / 2];
        let secs = wall as f64 / 1000.0;
        println!(
            "| {p} × {w} | {secs:.2} | {:.1} | {cpu:.2} | {:.1} | {:.2} |",
            counted as f64 / secs / 1e6,
            counted as f64 / cpu.max(1e-9) / 1e6,
            bytes as f64 / counted as f64
        );
    }
    Ok(())
}
