//! Rate limits and backpressure for receivers.
//!
//! A receiver has a [`RateControl`]: the rate it may read at, in records per
//! second, set from a fixed maximum ([`StreamingConf::max_rate`]) and, with
//! backpressure on, from a [`PidEstimator`] fed by completed batches. The
//! receiver thread paces its reads to that rate (so a fast sender is slowed
//! by TCP instead of filling memory), and the source operator never puts
//! more than `rate × interval` records into one batch.
//!
//! ## How ember feeds Spark's estimator
//!
//! Spark's estimator wants, for each completed batch, its size and its
//! processing time: how long the job worked on it. Spark runs a batch's job
//! once the batch has closed, so that is the job's duration. ember works on
//! records as they arrive: a batch's work is spread over its interval,
//! between waits for the next records. The time from a batch's first record
//! to its completion therefore tells how fast records *arrived*, not how fast
//! they could be processed: a job that keeps up looks as if it processed at
//! exactly its arrival rate, any hiccup reads as falling short, and the
//! limit only ever ratchets down (a sink that waits a fixed 150 ms per
//! batch, or a slow sink at the batch's end, looks the same).
//!
//! So each worker measures the time it spends working (running operators,
//! writing checkpoints) apart from the time it sits parked waiting for
//! input. The processing rate is the records of the last five batches over
//! the time the busiest worker worked while they completed: the busiest
//! worker is where a batch's time goes (a `foreach_rdd` runs on one), and
//! five batches even out work that straddles a completion. A job that keeps
//! its workers busy 30% of the time measures at about three times its
//! arrival rate; a fixed cost per batch counts once, not per record.
//!
//! The rest is Spark's: the new rate is the processing rate corrected by
//! the proportional, integral and derivative terms ([`PidSettings`]), where
//! the integral term is the backlog the scheduling delay stands for
//! (`scheduling delay × processing rate / interval`), and never less than
//! `min_rate`. Around it, four guards:
//!
//! - a batch that completed within its interval, with no scheduling delay,
//!   was sustained: the limit never falls below what it carried;
//! - a late batch (scheduling delay, or completed more than an interval
//!   after its time) never raises the limit;
//! - the limit never exceeds twice what a recent batch on time carried,
//!   so an estimate from small batches is tried out in steps;
//! - once batches have fallen behind, the rate that completed then is a
//!   ceiling (raised by batches on time that carry more): the limit returns
//!   to it quickly and grows beyond it by 3% a batch, so a meter that
//!   overrates the capacity (the receiver's own thread competing for the
//!   cores, say) does not drive the limit into the same backlog again and
//!   again.
//!
//! A process measures its own workers only. When all five batches were
//! late, the workers somewhere were saturated, so what completed per second
//! of wall time bounds the processing rate too; that covers work done in
//! another process of a cluster. A job whose slow part runs only in
//! another process overshoots until batches first fall behind; from then
//! on the ceiling keeps it near what completed.
//!
//! With backpressure on, the first batch after a start or restart is held
//! to the initial rate: [`StreamingConf::backpressure_initial_rate`], else
//! the max rate, else 10,000 records/s.
//!
//! [`StreamingConf::backpressure_initial_rate`]: crate::StreamingConf::backpressure_initial_rate
//!
//! [`StreamingConf::max_rate`]: crate::StreamingConf::max_rate

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::listener::{BatchInfo, RateLimit, StreamingListener};

/// Settings of Spark's PID rate estimator
/// (`spark.streaming.backpressure.pid.*`), with its defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct PidSettings {
    /// Weight of the current error (default 1.0).
    pub proportional: f64,
    /// Weight of the accumulated error, the scheduling backlog (default 0.2).
    pub integral: f64,
    /// Weight of the error's change (default 0.0).
    pub derivative: f64,
    /// The estimate never goes below this many records/s (default 100).
    pub min_rate: f64,
}

impl Default for PidSettings {
    fn default() -> Self {
        PidSettings {
            proportional: 1.0,
            integral: 0.2,
            derivative: 0.0,
            min_rate: 100.0,
        }
    }
}

/// Spark's `PIDRateEstimator`: estimates the rate (records/s) a stream can
/// sustain from each completed batch's size, processing time and
/// scheduling delay.
///
/// Unlike Spark's, the first completed batch already yields an estimate (its
/// processing rate), so the second batch is bounded too.
#[derive(Debug)]
pub struct PidEstimator {
    interval_ms: f64,
    settings: PidSettings,
    latest_time: Option<u64>,
    latest_rate: f64,
    latest_error: f64,
}

impl PidEstimator {
    /// An estimator for batches of `interval_ms`.
    pub fn new(interval_ms: u64, settings: PidSettings) -> Self {
        PidEstimator {
            interval_ms: interval_ms.max(1) as f64,
            settings,
            latest_time: None,
            latest_rate: 0.0,
            latest_error: 0.0,
        }
    }

    /// Folds in a completed batch: `time` is its completion time (ms),
    /// `records` its size, the delays in ms. Returns the new rate, or `None`
    /// when the batch says nothing (empty, instantaneous, or out of order).
    pub fn compute(
        &mut self,
        time: u64,
        records: u64,
        processing_delay: u64,
        scheduling_delay: u64,
    ) -> Option<f64> {
        if records == 0 || processing_delay == 0 {
            return None;
        }
        let processing_rate = records as f64 / processing_delay as f64 * 1000.0;
        self.compute_rate(time, processing_rate, scheduling_delay)
    }

    /// [`compute`](Self::compute) from a processing rate (records/s)
    /// measured by the caller.
    pub(crate) fn compute_rate(
        &mut self,
        time: u64,
        processing_rate: f64,
        scheduling_delay: u64,
    ) -> Option<f64> {
        // Not a positive number (NaN included): nothing to learn.
        let positive = processing_rate > 0.0;
        if !positive || self.latest_time.is_some_and(|l| time <= l) {
            return None;
        }
        let Some(latest) = self.latest_time else {
            self.latest_time = Some(time);
            self.latest_rate = processing_rate;
            self.latest_error = 0.0;
            return Some(processing_rate.max(self.settings.min_rate));
        };
        let since_update = (time - latest) as f64 / 1000.0;
        let error = self.latest_rate - processing_rate;
        let historical_error = scheduling_delay as f64 * processing_rate / self.interval_ms;
        let d_error = (error - self.latest_error) / since_update;
        let s = &self.settings;
        let rate = (self.latest_rate
            - s.proportional * error
            - s.integral * historical_error
            - s.derivative * d_error)
            .max(s.min_rate);
        self.latest_time = Some(time);
        self.latest_rate = rate;
        self.latest_error = error;
        Some(rate)
    }
}

/// No limit.
const UNLIMITED: f64 = f64::INFINITY;

/// The first batch's rate with backpressure when none is configured.
pub(crate) const DEFAULT_INITIAL_RATE: f64 = 10_000.0;

/// The rate one receiver may read at, shared by its thread, its source
/// operator and the estimator.
#[derive(Debug)]
pub struct RateControl {
    /// The current limit in records/s, as `f64` bits (`INFINITY`: none).
    rate: AtomicU64,
    max_rate: f64,
    estimator: Option<Mutex<Estimating>>,
}

/// The estimator and what it needs to know of the previous batches.
#[derive(Debug)]
struct Estimating {
    pid: PidEstimator,
    interval_ms: u64,
    /// The last few completed batches, and before them the one the window
    /// is measured from.
    recent: VecDeque<Sample>,
    /// What completed per second when batches last fell behind, raised by
    /// batches on time that carried more: above it the limit grows slowly.
    ceiling: Option<f64>,
}

/// What the estimator keeps of a completed batch.
#[derive(Debug)]
struct Sample {
    /// Completion time, ms.
    end: u64,
    /// This input's records in the batch.
    records: u64,
    /// The workers' busy time when it completed, ns each.
    busy: Vec<u64>,
    /// It waited for an earlier batch or took longer than an interval.
    behind: bool,
}

/// The most a new limit may exceed what a recent batch on time carried, as
/// a factor: an estimate from small batches, or from a meter that does not
/// see all the work, is tried out in steps.
const GROWTH: f64 = 2.0;

/// How much a limit above the rate at which batches last fell behind may
/// grow per batch on time.
const PROBE: f64 = 1.03;

/// How many recent batches the processing rate is measured over: work is
/// pipelined, so the time spent between two completions belongs partly to
/// the batches before and after, and a few batches together even that out.
const WINDOW: usize = 5;

impl RateControl {
    /// A limit of `max_rate` (if any) and, with `backpressure`, an estimated
    /// one starting at `initial_rate`.
    pub fn new(
        max_rate: Option<f64>,
        backpressure: Option<(u64, PidSettings)>,
        initial_rate: Option<f64>,
    ) -> Self {
        let max_rate = max_rate.filter(|r| *r > 0.0).unwrap_or(UNLIMITED);
        let start = match (&backpressure, initial_rate) {
            (Some(_), Some(r)) if r > 0.0 => r.min(max_rate),
            (Some(_), _) => DEFAULT_INITIAL_RATE.min(max_rate),
            (None, _) => max_rate,
        };
        RateControl {
            rate: AtomicU64::new(start.to_bits()),
            max_rate,
            estimator: backpressure.map(|(interval_ms, s)| {
                Mutex::new(Estimating {
                    pid: PidEstimator::new(interval_ms, s),
                    interval_ms,
                    recent: VecDeque::new(),
                    ceiling: None,
                })
            }),
        }
    }

    /// The current limit in records/s (`None`: unlimited).
    pub fn rate(&self) -> Option<f64> {
        let r = f64::from_bits(self.rate.load(Ordering::Relaxed));
        r.is_finite().then_some(r)
    }

    /// The current limit, `INFINITY` for none.
    fn current(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// Whether an estimator adjusts the rate.
    pub fn backpressure(&self) -> bool {
        self.estimator.is_some()
    }

    /// Follows batch completions for the input named `input` (as
    /// `BatchInfo::records_by_input` names it), measuring processing by
    /// `meter`: register the result with the statistics so it hears of
    /// every completed batch as it completes.
    pub(crate) fn listener(
        self: &Arc<Self>,
        input: &str,
        meter: Arc<BusyMeter>,
    ) -> Arc<dyn StreamingListener> {
        Arc::new(RateListener {
            input: input.to_string(),
            control: self.clone(),
            meter,
        })
    }

    /// Feeds a completed batch in which this receiver's stream had
    /// `records`; `busy` is the workers' busy time so far ([`BusyMeter`]).
    pub(crate) fn on_batch_completed(&self, batch: &BatchInfo, records: u64, busy: &[u64]) {
        let Some(estimator) = &self.estimator else {
            return;
        };
        let (Some(end), Some(scheduling), Some(total)) = (
            batch.processing_end_time,
            batch.scheduling_delay(),
            batch.total_delay(),
        ) else {
            return;
        };
        let mut e = estimator.lock().expect("estimator lock");
        let interval = e.interval_ms;
        if e.recent.is_empty() {
            // Measured from when the first batch opened.
            e.recent.push_back(Sample {
                end: batch.batch_wall_time.saturating_sub(interval),
                records: 0,
                busy: vec![0; busy.len()],
                behind: false,
            });
        }
        e.recent.push_back(Sample {
            end,
            records,
            busy: busy.to_vec(),
            behind: scheduling > 0 || total > interval,
        });
        if e.recent.len() > WINDOW + 1 {
            e.recent.pop_front();
        }
        if records == 0 {
            return;
        }
        let Some(rate) = processing_rate(&e.recent) else {
            return;
        };
        let Some(pid) = e.pid.compute_rate(end, rate, scheduling) else {
            return;
        };
        let per_second = 1000.0 / interval.max(1) as f64;
        let carried = records as f64 * per_second;
        let current = self.current();
        let late = scheduling > 0 || total > interval;
        if late {
            e.ceiling = Some(completed_rate(&e.recent));
        } else if e.ceiling.is_some_and(|c| carried > c) {
            e.ceiling = Some(carried);
        }
        // Growth is measured from what batches on time carried: a late
        // batch, large for being late, says nothing of what is sustainable.
        let sustained = e
            .recent
            .iter()
            .skip(1)
            .filter(|s| !s.behind)
            .map(|s| s.records)
            .max();
        let mut estimate = match sustained {
            Some(most) => pid.min(GROWTH * most as f64 * per_second),
            None => pid,
        };
        if let Some(c) = e.ceiling {
            // Quickly back to where batches fell behind, slowly beyond.
            estimate = estimate.min(c.max(PROBE * current));
        }
        if late {
            // The rate may fall, not rise.
            estimate = estimate.min(current);
        } else {
            // On time, with nothing queued before it: the batch was
            // sustained, and its rate is never cut.
            estimate = estimate.max(carried);
        }
        let estimate = estimate.max(e.pid.settings.min_rate);
        if estimate != pid {
            e.pid.latest_rate = estimate;
        }
        let r = estimate.min(self.max_rate);
        tracing::debug!(
            rate = r,
            processing = rate,
            records,
            scheduling,
            "backpressure: new receiver rate"
        );
        self.rate.store(r.to_bits(), Ordering::Relaxed);
    }

    /// Records a batch of `interval_ms` may hold at the current rate.
    pub(crate) fn batch_cap(&self, interval_ms: u64) -> Option<u64> {
        self.rate()
            .map(|r| ((r * interval_ms as f64 / 1000.0).floor() as u64).max(1))
    }
}

/// The records/s the workers processed over the window `recent` (its
/// first sample is where the window starts): its records over the time the
/// busiest worker spent working meanwhile. When every batch of a full
/// window was behind, the workers somewhere were saturated the whole time,
/// so what completed per second of wall time bounds it too; that covers
/// work this process's meter does not see (other processes of a cluster).
fn processing_rate(recent: &VecDeque<Sample>) -> Option<f64> {
    let (first, last) = (recent.front()?, recent.back()?);
    let records: u64 = recent.iter().skip(1).map(|s| s.records).sum();
    let span_ms = last.end.saturating_sub(first.end).max(1) as f64;
    let busy_ns = last
        .busy
        .iter()
        .enumerate()
        .map(|(w, b)| b.saturating_sub(first.busy.get(w).copied().unwrap_or(0)))
        .max()
        .unwrap_or(0);
    // Without a measurement, the workers count as busy throughout.
    let busy_ms = if busy_ns > 0 {
        busy_ns as f64 / 1e6
    } else {
        span_ms
    };
    let mut rate = records as f64 * 1000.0 / busy_ms;
    let saturated = recent.len() == WINDOW + 1 && recent.iter().skip(1).all(|s| s.behind);
    if saturated {
        rate = rate.min(completed_rate(recent));
    }
    (rate > 0.0).then_some(rate)
}

/// What completed per second over the window `recent`: its records over
/// the wall time between its first and last completions.
fn completed_rate(recent: &VecDeque<Sample>) -> f64 {
    let (Some(first), Some(last)) = (recent.front(), recent.back()) else {
        return 0.0;
    };
    let records: u64 = recent.iter().skip(1).map(|s| s.records).sum();
    records as f64 * 1000.0 / last.end.saturating_sub(first.end).max(1) as f64
}

impl RateLimit for RateControl {
    fn rate(&self) -> Option<f64> {
        RateControl::rate(self)
    }
}

/// A [`RateControl`] listening to batch completions for its input, as
/// Spark's `RateController` does.
struct RateListener {
    input: String,
    control: Arc<RateControl>,
    meter: Arc<BusyMeter>,
}

impl StreamingListener for RateListener {
    fn on_batch_completed(&self, batch: &BatchInfo) {
        let records = batch
            .records_by_input
            .get(&self.input)
            .copied()
            .unwrap_or(0);
        self.control
            .on_batch_completed(batch, records, &self.meter.read());
    }
}

/// How long each worker of this process has spent working (running
/// operators, writing checkpoints), as opposed to waiting for input:
/// Spark's processing time, for a job that runs as its records arrive.
///
/// A step in progress counts as it goes, so that one long step (an output
/// working through a large batch) is not missing from a reading taken
/// meanwhile.
#[derive(Debug)]
pub(crate) struct BusyMeter {
    epoch: Instant,
    /// Busy time of finished work, ns, per worker.
    nanos: Box<[AtomicU64]>,
    /// When the step in progress began, ns since `epoch` (0: none).
    since: Box<[AtomicU64]>,
}

impl BusyMeter {
    /// A meter for `workers` workers.
    pub(crate) fn new(workers: usize) -> Self {
        let zeros = || (0..workers.max(1)).map(|_| AtomicU64::new(0)).collect();
        BusyMeter {
            epoch: Instant::now(),
            nanos: zeros(),
            since: zeros(),
        }
    }

    fn nanos_at(&self, t: Instant) -> u64 {
        // Never 0, which means no step.
        (t.saturating_duration_since(self.epoch).as_nanos() as u64).max(1)
    }

    /// Worker `worker` (of this process) begins a step that works, at `t`.
    pub(crate) fn begin(&self, worker: usize, t: Instant) {
        if let Some(s) = self.since.get(worker) {
            s.store(self.nanos_at(t), Ordering::Relaxed);
        }
    }

    /// Worker `worker` ends the step it began, at `t`.
    pub(crate) fn end(&self, worker: usize, t: Instant) {
        let (Some(s), Some(n)) = (self.since.get(worker), self.nanos.get(worker)) else {
            return;
        };
        let began = s.load(Ordering::Relaxed);
        if began != 0 {
            // Counted before the step is cleared: a reading in between
            // counts it twice rather than not at all.
            n.fetch_add(self.nanos_at(t).saturating_sub(began), Ordering::Relaxed);
            s.store(0, Ordering::Relaxed);
        }
    }

    /// Worker `worker` worked for `d` more.
    pub(crate) fn add(&self, worker: usize, d: Duration) {
        if let Some(n) = self.nanos.get(worker) {
            n.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// Each worker's busy time so far, ns, steps in progress included.
    pub(crate) fn read(&self) -> Vec<u64> {
        let now = self.nanos_at(Instant::now());
        self.nanos
            .iter()
            .zip(self.since.iter())
            .map(|(n, s)| {
                let began = s.load(Ordering::Relaxed);
                let running = if began == 0 {
                    0
                } else {
                    now.saturating_sub(began)
                };
                n.load(Ordering::Relaxed) + running
            })
            .collect()
    }
}

/// Paces one thread's reads to a [`RateControl`]'s rate: each record
/// reserves `1 / rate` seconds, and a reader that runs ahead sleeps.
#[derive(Debug)]
pub(crate) struct Pacer {
    next_free: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new() -> Self {
        Pacer { next_free: None }
    }

    /// How long to wait before taking `n` more records at `rate`.
    pub(crate) fn reserve(&mut self, n: u64, rate: Option<f64>, now: Instant) -> Duration {
        let Some(rate) = rate else {
            self.next_free = None;
            return Duration::ZERO;
        };
        // A reader idle for a while gets no burst credit beyond 100 ms.
        let start = match self.next_free {
            Some(t) if t > now => t,
            Some(t) if now.duration_since(t) < Duration::from_millis(100) => t,
            _ => now,
        };
        let wait = start.saturating_duration_since(now);
        self.next_free = Some(start + Duration::from_secs_f64(n as f64 / rate.max(1e-3)));
        wait
    }
}

#[cfg(test)]
mod model;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_batch_gives_its_processing_rate() {
        let mut pid = PidEstimator::new(1000, PidSettings::default());
        // 10,000 records in 500 ms: 20,000 records/s.
        assert_eq!(pid.compute(10_000, 10_000, 500, 0), Some(20_000.0));
    }

    #[test]
    fn follows_spark_formula() {
        let mut pid = PidEstimator::new(1000, PidSettings::default());
        // Latest rate: 20,000.
        pid.compute(1_000, 10_000, 500, 0);
        // Next: 6,000 records in 1,000 ms = 6,000/s, 2,000 ms scheduling delay.
        // error = 20,000 - 6,000 = 14,000; historical = 2000 * 6000 / 1000 = 12,000
        // rate = 20,000 - 14,000 - 0.2 * 12,000 = 3,600
        assert_eq!(pid.compute(2_000, 6_000, 1_000, 2_000), Some(3_600.0));
        // No backlog: the estimate becomes the processing rate.
        // error = 3,600 - 8,000 = -4,400; rate = 3,600 + 4,400 = 8,000
        assert_eq!(pid.compute(3_000, 8_000, 1_000, 0), Some(8_000.0));
    }

    #[test]
    fn floor_and_ignored_batches() {
        let mut pid = PidEstimator::new(1000, PidSettings::default());
        pid.compute(1_000, 1_000, 1_000, 0);
        // A huge backlog would go negative: the floor holds.
        assert_eq!(pid.compute(2_000, 1_000, 1_000, 100_000), Some(100.0));
        assert_eq!(pid.compute(3_000, 0, 1_000, 0), None, "empty batch");
        assert_eq!(pid.compute(3_000, 10, 0, 0), None, "no processing time");
        assert_eq!(pid.compute(1_500, 10, 10, 0), None, "older than the latest");
    }

    #[test]
    fn control_caps_at_max_rate() {
        let c = RateControl::new(Some(1_000.0), Some((1000, PidSettings::default())), None);
        assert_eq!(c.rate(), Some(1_000.0));
        assert_eq!(c.batch_cap(500), Some(500));
        let batch = BatchInfo {
            batch_wall_time: 10_000,
            submission_time: 10_000,
            processing_start_time: Some(10_000),
            processing_end_time: Some(10_010),
            ..BatchInfo::default()
        };
        // 100,000 records kept up: more than the maximum allows.
        c.on_batch_completed(&batch, 100_000, &[]);
        assert_eq!(c.rate(), Some(1_000.0));
        let free = RateControl::new(None, None, Some(5.0));
        assert_eq!(free.rate(), None, "an initial rate needs backpressure");
        assert_eq!(free.batch_cap(1000), None);
    }

    fn batch(time: u64, end: u64, scheduling: u64) -> BatchInfo {
        BatchInfo {
            batch_wall_time: time,
            submission_time: time,
            processing_start_time: Some(time + scheduling),
            processing_end_time: Some(end),
            ..BatchInfo::default()
        }
    }

    #[test]
    fn rate_is_records_over_the_busiest_workers_time_less_the_backlog() {
        let c = RateControl::new(None, Some((1000, PidSettings::default())), Some(1_000.0));
        assert_eq!(
            c.rate(),
            Some(1_000.0),
            "the first batch keeps to the initial rate"
        );
        const MS: u64 = 1_000_000;
        // Batch 2000 (open from 1000) carried 1,000 records and completed at
        // 2,010; the busier of two workers worked 250 ms: 4,000/s, more
        // than twice what the batch carried, so 2,000/s for now.
        c.on_batch_completed(&batch(2_000, 2_010, 0), 1_000, &[250 * MS, 100 * MS]);
        assert_eq!(c.rate(), Some(2_000.0));
        // Batch 3000 carried 2,000 records, waited 500 ms behind earlier
        // work and completed at 4,000. Over both batches: 3,000 records in
        // 1,900 ms of the busier worker, less 0.2 × 500 ms × that / 1,000 ms.
        c.on_batch_completed(&batch(3_000, 4_000, 500), 2_000, &[1_900 * MS, 1_500 * MS]);
        let got = c.rate().unwrap();
        let processing = 3_000.0 / 1.9;
        let want = processing - 0.2 * 500.0 * processing / 1_000.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        let default = RateControl::new(None, Some((1000, PidSettings::default())), None);
        assert_eq!(default.rate(), Some(DEFAULT_INITIAL_RATE));
    }

    #[test]
    fn a_batch_that_kept_up_is_never_cut() {
        const MS: u64 = 1_000_000;
        let c = RateControl::new(None, Some((1000, PidSettings::default())), Some(1_000.0));
        // 1,000 records in a batch that completed within its interval, with
        // 2 s of work counted meanwhile (another input's, say): the rate
        // measured is 500/s, but the batch was sustained at 1,000/s.
        c.on_batch_completed(&batch(2_000, 2_900, 0), 1_000, &[2_000 * MS]);
        assert_eq!(c.rate(), Some(1_000.0));
        // Late (scheduling delay): the measurement holds.
        c.on_batch_completed(&batch(3_000, 4_100, 0), 1_000, &[4_000 * MS]);
        assert_eq!(c.rate(), Some(500.0));
    }

    #[test]
    fn a_window_of_late_batches_is_bounded_by_what_completed() {
        // The work happens where this meter cannot see it (another process
        // of a cluster): the workers here hardly work, but every batch is
        // late. What completed per second bounds the rate.
        let c = RateControl::new(None, Some((1000, PidSettings::default())), Some(1_000.0));
        let mut end = 2_000;
        for k in 2..=(WINDOW as u64 + 1) {
            end += 2_000;
            c.on_batch_completed(&batch(k * 1_000, end, 0), 1_000, &[k * 1_000_000]);
        }
        // 5 batches of 1,000 records completed between the first batch's
        // opening (1,000 ms) and 12,000 ms, 6 ms of work here: 454.5/s.
        let got = c.rate().unwrap();
        assert!((got - 5_000.0 / 11.0).abs() < 1e-6, "{got}");
    }

    #[test]
    fn pacer_spaces_reads() {
        let mut p = Pacer::new();
        let t0 = Instant::now();
        assert_eq!(p.reserve(100, Some(1_000.0), t0), Duration::ZERO);
        // 100 records at 1,000/s took 100 ms of budget.
        assert_eq!(p.reserve(1, Some(1_000.0), t0), Duration::from_millis(100));
        assert_eq!(p.reserve(5, None, t0), Duration::ZERO);
    }
}
