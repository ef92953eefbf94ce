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
//! Spark runs a batch's job after the batch closes, so its processing time
//! is the time the job took. ember processes records as they arrive, so a
//! batch's work is spread over its interval. The estimator is therefore fed
//! the time the batch kept the workers busy: from when its records started
//! arriving (or the previous batch completed, if later) to its completion.
//! A batch that completed promptly after its time only shows the pipeline
//! kept up, not how much more it could take: its rate is taken as 1.5 times
//! what it carried, so the limit grows step by step while the pipeline
//! keeps up, and falls to the measured rate (less the backlog term) when it
//! does not. The rate is measured over the last five batches (batches that
//! overlap in the workers only make sense together), and never exceeds 1.5
//! times the most a recent batch carried.
//!
//! With backpressure on, the first batch after a start or restart is held
//! to the initial rate: [`StreamingConf::backpressure_initial_rate`], else
//! the max rate, else 10,000 records/s.
//!
//! [`StreamingConf::backpressure_initial_rate`]: crate::StreamingConf::backpressure_initial_rate
//!
//! [`StreamingConf::max_rate`]: crate::StreamingConf::max_rate

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
        if records == 0 || processing_delay == 0 || self.latest_time.is_some_and(|l| time <= l) {
            return None;
        }
        let processing_rate = records as f64 / processing_delay as f64 * 1000.0;
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

/// How much more than it carried a batch that kept up suggests.
const PROBE: f64 = 1.5;

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
    last_end: u64,
    /// (busy from, completed, records) of the last few non-empty batches.
    recent: std::collections::VecDeque<(u64, u64, u64)>,
}

/// How many recent batches the processing rate is measured over: batches
/// that overlap in the workers (or complete together) only make sense
/// together.
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
                    last_end: 0,
                    recent: std::collections::VecDeque::new(),
                })
            }),
        }
    }

    /// The current limit in records/s (`None`: unlimited).
    pub fn rate(&self) -> Option<f64> {
        let r = f64::from_bits(self.rate.load(Ordering::Relaxed));
        r.is_finite().then_some(r)
    }

    /// Whether an estimator adjusts the rate.
    pub fn backpressure(&self) -> bool {
        self.estimator.is_some()
    }

    /// Follows batch completions for the input named `input` (as
    /// `BatchInfo::records_by_input` names it): register the result with
    /// the statistics so it hears of every completed batch.
    pub(crate) fn listener(self: &Arc<Self>, input: &str) -> Arc<dyn StreamingListener> {
        Arc::new(RateListener {
            input: input.to_string(),
            control: self.clone(),
        })
    }

    /// Feeds a completed batch in which this receiver's stream had `records`.
    pub(crate) fn on_batch_completed(&self, batch: &BatchInfo, records: u64) {
        let Some(estimator) = &self.estimator else {
            return;
        };
        let (Some(end), Some(scheduling)) = (batch.processing_end_time, batch.scheduling_delay())
        else {
            return;
        };
        let mut e = estimator.lock().expect("estimator lock");
        let interval = e.interval_ms;
        // Busy from when the batch's records began to arrive, or from the
        // previous completion if the workers were still on that.
        let began = batch
            .batch_wall_time
            .saturating_sub(interval)
            .max(e.last_end);
        e.last_end = e.last_end.max(end);
        if records == 0 {
            return;
        }
        e.recent.push_back((began, end, records));
        if e.recent.len() > WINDOW {
            e.recent.pop_front();
        }
        let from = e.recent.iter().map(|r| r.0).min().unwrap_or(began);
        let total: u64 = e.recent.iter().map(|r| r.2).sum();
        let busy = end.saturating_sub(from).max(1);
        let kept_up = scheduling == 0 && end.saturating_sub(batch.batch_wall_time) <= interval / 4;
        let busy = if kept_up {
            ((busy as f64 / PROBE).floor() as u64).max(1)
        } else {
            busy
        };
        // Never more than half again the most a recent batch carried: a
        // burst of batches completing together says little about capacity.
        let most = e.recent.iter().map(|r| r.2).max().unwrap_or(records);
        let ceiling = PROBE * most as f64 * 1000.0 / interval.max(1) as f64;
        let estimate = e
            .pid
            .compute(end, total, busy, scheduling)
            .map(|r| r.min(ceiling));
        if let Some(r) = estimate {
            let r = r.min(self.max_rate);
            tracing::debug!(rate = r, "backpressure: new receiver rate");
            self.rate.store(r.to_bits(), Ordering::Relaxed);
        }
    }

    /// Records a batch of `interval_ms` may hold at the current rate.
    pub(crate) fn batch_cap(&self, interval_ms: u64) -> Option<u64> {
        self.rate()
            .map(|r| ((r * interval_ms as f64 / 1000.0).floor() as u64).max(1))
    }
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
}

impl StreamingListener for RateListener {
    fn on_batch_completed(&self, batch: &BatchInfo) {
        let records = batch
            .records_by_input
            .get(&self.input)
            .copied()
            .unwrap_or(0);
        self.control.on_batch_completed(batch, records);
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
        c.on_batch_completed(&batch, 100_000);
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
    fn kept_up_batches_raise_the_rate_and_slow_ones_lower_it() {
        let c = RateControl::new(None, Some((1000, PidSettings::default())), Some(1_000.0));
        assert_eq!(
            c.rate(),
            Some(1_000.0),
            "the first batch keeps to the initial rate"
        );
        // Batch 2000 carried 1,000 records and completed 10 ms after its time:
        // busy 1,010 ms from 1000, probed at 1.5× → 1,000 / (673 ms) ≈ 1,486/s.
        c.on_batch_completed(&batch(2_000, 2_010, 0), 1_000);
        assert_eq!(c.rate(), Some(1_000.0 / 673.0 * 1000.0));
        // Batch 3000 carried 1,486 records and completed at 4,000, with 1 s
        // of scheduling delay. Measured over both batches: 2,486 records
        // from 1,000 to 4,000 = 828.7/s, less 0.2 × 1000 × 828.7 / 1000.
        c.on_batch_completed(&batch(3_000, 4_000, 1_000), 1_486);
        let processing = 2_486.0 / 3_000.0 * 1000.0;
        let want = processing - 0.2 * 1_000.0 * processing / 1_000.0;
        let got = c.rate().unwrap();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        let default = RateControl::new(None, Some((1000, PidSettings::default())), None);
        assert_eq!(default.rate(), Some(DEFAULT_INITIAL_RATE));
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
