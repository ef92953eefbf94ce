//! One measured run: a fresh `StreamingContext` running word count over the
//! generated input at a fixed rate, and the verdict on whether it kept up.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ember_core::{Queue, StreamingConf, StreamingContext, Time};

use crate::gen::{self, now_us, Corpus, OfferLog};

/// Where the lines come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Input {
    /// A loopback TCP server in this process, read by `socket_text_stream`.
    Tcp,
    /// A generator thread pushing into a `Queue`, read by `queue_stream`.
    Memory,
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Input::Tcp => "tcp",
            Input::Memory => "memory",
        })
    }
}

/// The settings of one run.
#[derive(Clone, Debug)]
pub(crate) struct RunSpec {
    pub(crate) input: Input,
    pub(crate) master: String,
    /// Words per second offered.
    pub(crate) rate: u64,
    pub(crate) interval_ms: u64,
    pub(crate) warmup: usize,
    pub(crate) batches: usize,
    /// Print a line per batch as it completes.
    pub(crate) verbose: bool,
}

/// What the output operation saw for one batch.
#[derive(Clone, Copy, Debug)]
struct Seen {
    time_ms: u64,
    /// Wall clock (µs since the epoch) when `foreach_rdd` ran for it.
    at_us: u64,
    words: u64,
    keys: usize,
}

/// One measured batch.
#[derive(Clone, Debug)]
pub(crate) struct BatchRow {
    pub(crate) time_ms: u64,
    /// Output wall time − batch time, in ms (Spark's "total delay").
    pub(crate) delay_ms: f64,
    pub(crate) counted: u64,
    pub(crate) offered: u64,
    pub(crate) keys: usize,
    /// Words offered before the batch time but not counted by this batch:
    /// still in a socket, channel or queue.
    pub(crate) backlog: u64,
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub(crate) struct RunResult {
    pub(crate) spec: RunSpec,
    pub(crate) rows: Vec<BatchRow>,
    /// Offered and counted words per second over the measured batches.
    pub(crate) offered_rate: f64,
    pub(crate) counted_rate: f64,
    pub(crate) sent_total: u64,
    pub(crate) counted_total: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Mean delay of the second half of the measured batches minus the first.
    pub(crate) growth_ms: f64,
    pub(crate) rss_kb: Option<u64>,
    /// Why the rate was not sustained; empty if it was.
    pub(crate) failures: Vec<String>,
}

impl RunResult {
    pub(crate) fn sustained(&self) -> bool {
        self.failures.is_empty()
    }

    /// The summary as one tab-separated line (per-batch rows are left out).
    pub(crate) fn to_line(&self) -> String {
        let mut f = vec![
            "RESULT".to_string(),
            self.offered_rate.to_string(),
            self.counted_rate.to_string(),
            self.sent_total.to_string(),
            self.counted_total.to_string(),
            self.p50_ms.to_string(),
            self.p99_ms.to_string(),
            self.max_ms.to_string(),
            self.growth_ms.to_string(),
            self.rss_kb.map_or("-".into(), |k| k.to_string()),
        ];
        f.extend(self.failures.iter().map(|x| x.replace(['\t', '\n'], " ")));
        f.join("\t")
    }

    /// Reads [`to_line`](Self::to_line) back.
    pub(crate) fn from_line(spec: &RunSpec, line: &str) -> Option<RunResult> {
        let mut it = line.strip_prefix("RESULT\t")?.split('\t');
        let mut num = || it.next()?.parse::<f64>().ok();
        let (offered_rate, counted_rate) = (num()?, num()?);
        let (sent_total, counted_total) = (num()? as u64, num()? as u64);
        let (p50_ms, p99_ms, max_ms, growth_ms) = (num()?, num()?, num()?, num()?);
        let rss_kb = it.next()?.parse().ok();
        Some(RunResult {
            spec: spec.clone(),
            rows: Vec::new(),
            offered_rate,
            counted_rate,
            sent_total,
            counted_total,
            p50_ms,
            p99_ms,
            max_ms,
            growth_ms,
            rss_kb,
            failures: it.map(str::to_string).collect(),
        })
    }
}

/// Nearest-rank percentile of `xs` (any order).
pub(crate) fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// Resets the kernel's peak-RSS mark of this process (Linux ≥ 4.0), so each
/// run reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `VmHWM` of this process, in kB.
pub(crate) fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn now_ms() -> u64 {
    now_us() / 1000
}

/// Runs word count at `spec.rate` words/s and judges it.
pub(crate) fn run(spec: &RunSpec, corpus: &Arc<Corpus>) -> Result<RunResult, String> {
    reset_peak_rss();
    let interval = spec.interval_ms;
    let conf = StreamingConf::new("ember-bench-wordcount", Duration::from_millis(interval))
        .master(&spec.master)
        .map_err(|e| e.to_string())?;
    let ssc = StreamingContext::new(conf).map_err(|e| e.to_string())?;
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();

    let queue: Queue<String> = Queue::new();
    let (port, tcp_pacer) = match spec.input {
        Input::Tcp => {
            let (port, pacer) =
                gen::start_tcp(corpus.clone(), spec.rate).map_err(|e| e.to_string())?;
            (port, Some(pacer))
        }
        Input::Memory => (0, None),
    };
    let input = spec.input;
    let q = queue.clone();
    let out = seen.clone();
    ssc.define(move |s| {
        let lines = match input {
            Input::Tcp => s.socket_text_stream("127.0.0.1", port),
            Input::Memory => s.queue_stream(q.clone(), false, None),
        };
        let counts = lines
            .flat_map(|l: String| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b);
        let out = out.clone();
        counts.foreach_rdd(move |batch, time: Time| {
            let at_us = now_us();
            let words = batch.iter().map(|(_, c)| c).sum();
            out.lock().expect("seen lock").push(Seen {
                time_ms: time.milliseconds(),
                at_us,
                words,
                keys: batch.len(),
            });
        });
    })
    .map_err(|e| e.to_string())?;
    ssc.start().map_err(|e| e.to_string())?;
    let pacer = match tcp_pacer {
        Some(p) => p,
        None => gen::start_memory(corpus.clone(), spec.rate, queue),
    };
    let first = ssc.first_batch_time().expect("started").milliseconds();
    let measured: Vec<u64> = (spec.warmup..spec.warmup + spec.batches)
        .map(|i| first + i as u64 * interval)
        .collect();
    let last = *measured.last().expect("at least one measured batch");

    // Wait for the last measured batch; give up early when the output of a
    // batch is more than two intervals late (the rate is clearly too high).
    let mut failures = Vec::new();
    let mut reported = 0;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let done: Vec<Seen> = seen.lock().expect("seen lock").clone();
        if spec.verbose {
            for s in &done[reported..] {
                eprintln!(
                    "  batch {} ms: delay {:>6.1} ms, {:>10} words, {:>5} keys",
                    s.time_ms,
                    (s.at_us as f64 / 1000.0) - s.time_ms as f64,
                    s.words,
                    s.keys
                );
            }
            reported = done.len();
        }
        if done.iter().any(|s| s.time_ms >= last) {
            break;
        }
        let expected = done.last().map_or(first, |s| s.time_ms + interval);
        if now_ms() > expected + 2 * interval {
            failures.push(format!(
                "aborted: the output of batch {expected} ms was still missing {} ms after its time",
                now_ms() - expected
            ));
            break;
        }
    }
    let aborted = !failures.is_empty();

    // Stop offering; let what was sent arrive (a few intervals at most),
    // then stop gracefully and compare totals.
    let (log, conn) = pacer.finish();
    let sent_total = log.total();
    if !aborted {
        let deadline = now_ms() + 3 * interval;
        while now_ms() < deadline {
            let counted: u64 = seen
                .lock()
                .expect("seen lock")
                .iter()
                .map(|s| s.words)
                .sum();
            if counted >= sent_total {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    ssc.stop(!aborted).map_err(|e| e.to_string())?;
    drop(conn);
    let rss_kb = peak_rss_kb();
    let all: Vec<Seen> = seen.lock().expect("seen lock").clone();
    let counted_total: u64 = all.iter().map(|s| s.words).sum();

    Ok(judge(
        spec,
        &all,
        &measured,
        &log,
        sent_total,
        counted_total,
        rss_kb,
        failures,
    ))
}

#[allow(clippy::too_many_arguments)]
fn judge(
    spec: &RunSpec,
    all: &[Seen],
    measured: &[u64],
    log: &OfferLog,
    sent_total: u64,
    counted_total: u64,
    rss_kb: Option<u64>,
    mut failures: Vec<String>,
) -> RunResult {
    let interval = spec.interval_ms;
    let mut rows = Vec::new();
    for &t in measured {
        let Some(s) = all.iter().find(|s| s.time_ms == t) else {
            continue;
        };
        let counted_through: u64 = all.iter().filter(|x| x.time_ms <= t).map(|x| x.words).sum();
        let offered_through = log.offered_by(t * 1000);
        rows.push(BatchRow {
            time_ms: t,
            delay_ms: s.at_us as f64 / 1000.0 - t as f64,
            counted: s.words,
            offered: offered_through - log.offered_by((t - interval) * 1000),
            keys: s.keys,
            backlog: offered_through.saturating_sub(counted_through),
        });
    }
    let delays: Vec<f64> = rows.iter().map(|r| r.delay_ms).collect();
    let window_s = (rows.len() as u64 * interval) as f64 / 1000.0;
    let offered: u64 = rows.iter().map(|r| r.offered).sum();
    let counted: u64 = rows.iter().map(|r| r.counted).sum();
    let (offered_rate, counted_rate) = if window_s > 0.0 {
        (offered as f64 / window_s, counted as f64 / window_s)
    } else {
        (0.0, 0.0)
    };
    let half = delays.len() / 2;
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let growth_ms = if half > 0 {
        mean(&delays[delays.len() - half..]) - mean(&delays[..half])
    } else {
        0.0
    };

    if failures.is_empty() {
        let int = interval as f64;
        if rows.len() < measured.len() {
            failures.push(format!(
                "only {} of {} measured batches ran",
                rows.len(),
                measured.len()
            ));
        }
        if let Some(r) = rows.iter().find(|r| r.delay_ms >= int) {
            failures.push(format!(
                "batch {} ms: total delay {:.0} ms ≥ the {interval} ms interval",
                r.time_ms, r.delay_ms
            ));
        }
        if growth_ms > 0.15 * int {
            failures.push(format!(
                "total delay grows: +{growth_ms:.0} ms from first to second half"
            ));
        }
        if offered_rate < 0.97 * spec.rate as f64 {
            failures.push(format!(
                "the generator could offer only {:.2} M words/s of {:.2} M (back-pressure)",
                offered_rate / 1e6,
                spec.rate as f64 / 1e6
            ));
        }
        if (counted as f64 - offered as f64).abs() > 0.03 * offered as f64 {
            failures.push(format!(
                "counted {counted} words in the measured batches, {offered} were offered then"
            ));
        }
        let allowed = spec.rate * interval / 4 / 1000;
        if let Some(r) = rows.iter().find(|r| r.backlog > allowed) {
            failures.push(format!(
                "batch {} ms: {} words offered before it were not counted yet (> {} ms of input)",
                r.time_ms,
                r.backlog,
                interval / 4
            ));
        }
        if counted_total != sent_total {
            failures.push(format!(
                "after a graceful stop {counted_total} words were counted, {sent_total} sent"
            ));
        }
    }
    RunResult {
        spec: spec.clone(),
        rows,
        offered_rate,
        counted_rate,
        sent_total,
        counted_total,
        p50_ms: percentile(&delays, 50.0),
        p99_ms: percentile(&delays, 99.0),
        max_ms: percentile(&delays, 100.0),
        growth_ms,
        rss_kb,
        failures,
    }
}
