//! `/metrics`: Prometheus's text format through `prometheus-client`.
//!
//! Per-batch delays are histograms, fed as each batch completes (by an
//! engine listener on the completing thread: three atomic adds each), so a
//! scrape every 15 s of 1 s batches sees all fifteen. The totals (records,
//! batches, receivers) are read from the UI's snapshot at each scrape, and
//! the `process_*` metrics from `/proc` (Linux).

use std::sync::atomic::Ordering;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::listener::{
    wall_ms, BatchInfo, CheckpointStats, CheckpointTotals, ReceiverStatus, StreamingListener,
};

/// Bucket bounds of the delay histograms, in seconds: 1 ms to a minute.
const DELAY_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

/// The delays of every completed batch (Spark's definitions, plus the
/// time from the batch time to its submission).
#[derive(Debug, Clone)]
pub(super) struct BatchHistograms {
    submission: Histogram,
    scheduling: Histogram,
    processing: Histogram,
    total: Histogram,
}

impl BatchHistograms {
    pub(super) fn new() -> BatchHistograms {
        let h = || Histogram::new(DELAY_BUCKETS);
        BatchHistograms {
            submission: h(),
            scheduling: h(),
            processing: h(),
            total: h(),
        }
    }
}

impl StreamingListener for BatchHistograms {
    fn on_batch_completed(&self, b: &BatchInfo) {
        let secs = |us: u64| us as f64 / 1e6;
        let d = b.delays_us();
        self.submission.observe(secs(d.submission));
        for (h, v) in [
            (&self.scheduling, d.scheduling),
            (&self.processing, d.processing),
            (&self.total, d.total),
        ] {
            if let Some(v) = v {
                h.observe(secs(v));
            }
        }
    }
}

/// What one scrape reports besides the histograms (taken from the UI's
/// snapshot).
pub(super) struct Figures<'a> {
    pub(super) interval_ms: u64,
    pub(super) total_completed: u64,
    pub(super) failed_batches: u64,
    pub(super) received_records: u64,
    pub(super) processed_records: u64,
    pub(super) active_batches: usize,
    pub(super) last_completed: Option<u64>,
    pub(super) started: Option<u64>,
    pub(super) checkpoint: Option<CheckpointStats>,
    pub(super) checkpoints: CheckpointTotals,
    pub(super) state_keys: &'a [(String, u64)],
    pub(super) receivers: &'a [ReceiverStatus],
}

/// The registry of one scrape, in Prometheus's text format.
pub(super) fn render(s: &Figures<'_>, histograms: &BatchHistograms, app: &str) -> String {
    let mut r = Registry::default();
    r.register(
        "ember",
        "The application and ember's version",
        Info::new(vec![
            ("app".to_string(), app.to_string()),
            ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ]),
    );
    r.register_with_unit(
        "ember_batch_interval",
        "The batch interval",
        Unit::Seconds,
        ConstGauge::new(s.interval_ms as f64 / 1000.0),
    );
    let counter = |r: &mut Registry, name: &str, help: &str, v: u64| {
        r.register(name, help, ConstCounter::new(v));
    };
    counter(
        &mut r,
        "ember_batches_completed",
        "Batches every output operation has finished",
        s.total_completed,
    );
    counter(
        &mut r,
        "ember_batches_failed",
        "Completed batches in which an output operation failed",
        s.failed_batches,
    );
    counter(
        &mut r,
        "ember_records_received",
        "Records the sources put into batches",
        s.received_records,
    );
    counter(
        &mut r,
        "ember_records_processed",
        "Records in completed batches",
        s.processed_records,
    );
    r.register(
        "ember_batches_active",
        "Batches closed by their sources and not yet completed",
        ConstGauge::new(s.active_batches as i64),
    );
    for (name, help, h) in [
        (
            "ember_batch_submission_delay",
            "Batch time to submission: the time the sources took to close the batch",
            &histograms.submission,
        ),
        (
            "ember_batch_scheduling_delay",
            "Submission to processing start (Spark's scheduling delay)",
            &histograms.scheduling,
        ),
        (
            "ember_batch_processing_time",
            "Processing start to the end of the last output operation (Spark's processing time)",
            &histograms.processing,
        ),
        (
            "ember_batch_total_delay",
            "Batch time to the end of processing (Spark's total delay)",
            &histograms.total,
        ),
    ] {
        r.register_with_unit(name, help, Unit::Seconds, h.clone());
    }
    if let Some(last) = s.last_completed {
        r.register_with_unit(
            "ember_last_completed_batch_time",
            "The batch time of the last completed batch",
            Unit::Seconds,
            ConstGauge::new(last as f64 / 1000.0),
        );
    }
    if let Some(start) = s.started {
        r.register_with_unit(
            "ember_uptime",
            "Time since the context started",
            Unit::Seconds,
            ConstGauge::new(wall_ms().saturating_sub(start) as f64 / 1000.0),
        );
    }
    counter(
        &mut r,
        "ember_checkpoints",
        "Checkpoints this process committed",
        s.checkpoints.count,
    );
    r.register_with_unit(
        "ember_checkpoint_written",
        "Bytes of the checkpoints this process committed, in all",
        Unit::Bytes,
        ConstCounter::new(s.checkpoints.bytes),
    );
    r.register_with_unit(
        "ember_checkpoint_duration",
        "Time spent writing the checkpoints this process committed, in all \
         (divide by ember_checkpoints_total for the mean)",
        Unit::Seconds,
        ConstCounter::new(s.checkpoints.duration_us as f64 / 1e6),
    );
    if let Some(c) = s.checkpoint {
        r.register_with_unit(
            "ember_last_checkpoint_duration",
            "The last checkpoint's time from its first part to its commit",
            Unit::Seconds,
            ConstGauge::new(c.duration_us as f64 / 1e6),
        );
        r.register_with_unit(
            "ember_last_checkpoint_size",
            "The last checkpoint's size (this process's parts)",
            Unit::Bytes,
            ConstGauge::new(c.bytes as i64),
        );
        r.register_with_unit(
            "ember_last_checkpoint_batch_time",
            "The batch time the last checkpoint's state is after",
            Unit::Seconds,
            ConstGauge::new(c.time as f64 / 1000.0),
        );
    }
    r.register_collector(Box::new(StateKeys(s.state_keys.to_vec())));
    r.register_collector(Box::new(Receivers(s.receivers.to_vec())));
    r.register_collector(Box::new(Process));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &r)
        .expect("writing to a String cannot fail");
    out
}

/// Keys in each stateful operator's state, labelled with the operator.
#[derive(Debug)]
struct StateKeys(Vec<(String, u64)>);

impl prometheus_client::collector::Collector for StateKeys {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "ember_state_keys",
            "Keys in a stateful operator's state after its latest batch, all workers.",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for (op, keys) in &self.0 {
            let labels = vec![("operator", op.as_str())];
            ConstGauge::new(*keys as i64).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Per-receiver metrics, labelled with the receiver's name.
#[derive(Debug)]
struct Receivers(Vec<ReceiverStatus>);

impl prometheus_client::collector::Collector for Receivers {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        type Value = fn(&ReceiverStatus) -> Option<f64>;
        let families: [(&str, &str, bool, Value); 3] = [
            (
                "ember_receiver_records",
                "Records a receiver has read.",
                true,
                |r| Some(r.read.load(Ordering::Relaxed) as f64),
            ),
            (
                "ember_receiver_active",
                "Whether a receiver is connected (1) or not (0).",
                false,
                |r| Some(if r.info.active { 1.0 } else { 0.0 }),
            ),
            (
                "ember_receiver_rate_limit_records_per_second",
                "A receiver's current rate limit, when it has one.",
                false,
                |r| r.rate.as_ref().and_then(|c| c.rate()),
            ),
        ];
        for (name, help, is_counter, value) in families {
            let samples: Vec<(Vec<(&str, &str)>, f64)> = self
                .0
                .iter()
                .filter_map(|r| value(r).map(|v| (vec![("receiver", r.info.name.as_str())], v)))
                .collect();
            if samples.is_empty() {
                continue;
            }
            if is_counter {
                let mut family = encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    ConstCounter::new(0.0).metric_type(),
                )?;
                for (labels, v) in &samples {
                    ConstCounter::new(*v).encode(family.encode_family(labels)?)?;
                }
            } else {
                let mut family = encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    ConstGauge::new(0.0).metric_type(),
                )?;
                for (labels, v) in &samples {
                    ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
                }
            }
        }
        Ok(())
    }
}

/// The standard `process_*` metrics of this process, from `/proc`.
#[derive(Debug)]
struct Process;

impl prometheus_client::collector::Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let Some(p) = ProcessStats::read() else {
            return Ok(());
        };
        let counter = ConstCounter::new(p.cpu_seconds);
        counter.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            counter.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                p.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                p.virtual_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds.",
                p.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                p.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                p.max_fds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process.",
                p.threads,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

/// What `/proc` says of this process.
#[derive(Debug, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
    threads: f64,
}

impl ProcessStats {
    #[cfg(target_os = "linux")]
    fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        // SAFETY: sysconf only reads configuration values.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct it is given.
        let max_fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            limit.rlim_cur as f64
        } else {
            f64::NAN
        };
        let mut p = parse_stat(&stat, &boot, ticks as f64, page as f64)?;
        p.open_fds = open_fds;
        p.max_fds = max_fds;
        Some(p)
    }

    #[cfg(not(target_os = "linux"))]
    fn read() -> Option<ProcessStats> {
        None
    }
}

/// The figures of `/proc/self/stat` (`stat`) and the boot time of
/// `/proc/stat` (`boot`); `proc(5)` numbers the fields from 1, the command
/// name (field 2) in parentheses and possibly holding spaces.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_stat(stat: &str, boot: &str, ticks: f64, page: f64) -> Option<ProcessStats> {
    // Fields 3 onwards, after the command name's closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<f64> { f.get(n - 3)?.parse().ok() };
    let btime: f64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        threads: field(20)?,
        start_time_seconds: btime + field(22)? / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page,
        open_fds: 0.0,
        max_fds: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields() {
        // A made-up process whose name holds a space and a parenthesis.
        let stat = "4242 (ember (x) y) S 1 4242 4242 0 -1 4194304 500 0 0 0 \
                    250 150 0 0 20 0 7 0 1000 123456789 2048 18446744073709551615";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        let p = parse_stat(stat, boot, 100.0, 4096.0).unwrap();
        assert_eq!(
            p,
            ProcessStats {
                cpu_seconds: 4.0,
                threads: 7.0,
                start_time_seconds: 1_700_000_010.0,
                virtual_bytes: 123_456_789.0,
                resident_bytes: 2048.0 * 4096.0,
                open_fds: 0.0,
                max_fds: 0.0,
            }
        );
        assert_eq!(parse_stat("no parenthesis", boot, 100.0, 4096.0), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_threads_memory_and_open_files() {
        let p = ProcessStats::read().unwrap();
        assert!(
            p.threads >= 1.0 && p.resident_bytes > 0.0 && p.open_fds >= 1.0,
            "{p:?}"
        );
        assert!(p.max_fds >= p.open_fds, "{p:?}");
    }
}
