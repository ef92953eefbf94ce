//! Batch statistics and the listener API, in the manner of Spark's
//! `StreamingListener`.
//!
//! Every batch is tracked with Spark's definitions:
//!
//! - **submitted** when its sources close it (the clock reaches its time);
//! - **started** when the batch before it has completed, or at submission
//!   if that was later (ember processes records as they arrive, so "start"
//!   marks when the batch became the oldest unfinished one);
//! - **completed** when every output operation has finished it.
//!
//! Scheduling delay is start − submission, processing delay is completion −
//! start, total delay is completion − batch time. Listeners run on a
//! dedicated thread, in event order, never on the workers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};

use crate::time::Time;

/// One batch's statistics (Spark's `BatchInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct BatchInfo {
    /// The batch time.
    pub batch_time: Time,
    /// Records each input stream put into the batch, by source name.
    pub records_by_input: BTreeMap<String, u64>,
    /// Wall-clock ms when the batch was submitted.
    pub submission_time: u64,
    /// Wall-clock ms when processing started, once it has.
    pub processing_start_time: Option<u64>,
    /// Wall-clock ms when every output finished it, once they have.
    pub processing_end_time: Option<u64>,
    /// Wall-clock ms of the batch time (the batch time itself on the system
    /// clock; the submission time on a manual clock).
    pub batch_wall_time: u64,
    /// The same times in µs, when the tracker measured them (see
    /// [`BatchInfo::delays_us`]).
    #[serde(skip)]
    pub(crate) micros: Option<Micros>,
}

/// A batch's times in wall-clock µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Micros {
    pub(crate) batch_wall: u64,
    pub(crate) submission: u64,
    pub(crate) start: Option<u64>,
    pub(crate) end: Option<u64>,
}

/// A batch's delays in µs; they add up:
/// `submission + scheduling + processing = total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "ui"), allow(dead_code))]
pub(crate) struct DelaysUs {
    /// Batch time to submission (the sources closing the batch).
    pub(crate) submission: u64,
    pub(crate) scheduling: Option<u64>,
    pub(crate) processing: Option<u64>,
    pub(crate) total: Option<u64>,
}

impl BatchInfo {
    /// Records in the batch, all inputs together.
    pub fn num_records(&self) -> u64 {
        self.records_by_input.values().sum()
    }

    /// Start − submission, in ms.
    pub fn scheduling_delay(&self) -> Option<u64> {
        self.processing_start_time
            .map(|s| s.saturating_sub(self.submission_time))
    }

    /// Completion − start, in ms.
    pub fn processing_delay(&self) -> Option<u64> {
        Some(
            self.processing_end_time?
                .saturating_sub(self.processing_start_time?),
        )
    }

    /// Completion − batch time, in ms.
    pub fn total_delay(&self) -> Option<u64> {
        self.processing_end_time
            .map(|e| e.saturating_sub(self.batch_wall_time))
    }

    /// Marks processing started at wall-clock `us`.
    fn start_at(&mut self, us: u64) {
        self.processing_start_time = Some(us / 1000);
        if let Some(m) = &mut self.micros {
            m.start = Some(us);
        }
    }

    /// Marks processing ended at wall-clock `us`.
    fn end_at(&mut self, us: u64) {
        self.processing_end_time = Some(us / 1000);
        if let Some(m) = &mut self.micros {
            m.end = Some(us);
        }
    }

    /// The delays in µs: measured when the tracker kept µs, else the ms
    /// figures × 1000.
    #[cfg_attr(not(feature = "ui"), allow(dead_code))]
    pub(crate) fn delays_us(&self) -> DelaysUs {
        let m = self.micros.unwrap_or(Micros {
            batch_wall: self.batch_wall_time * 1000,
            submission: self.submission_time * 1000,
            start: self.processing_start_time.map(|t| t * 1000),
            end: self.processing_end_time.map(|t| t * 1000),
        });
        // Each point no earlier than the one before, so the parts add up
        // even if the wall clock stepped back.
        let submission = m.submission.max(m.batch_wall);
        let start = m.start.map(|t| t.max(submission));
        let end = m.end.map(|t| t.max(start.unwrap_or(submission)));
        DelaysUs {
            submission: submission - m.batch_wall,
            scheduling: start.map(|t| t - submission),
            processing: end.zip(start).map(|(e, s)| e - s),
            total: end.map(|t| t - m.batch_wall),
        }
    }
}

/// One output operation's run for one batch (Spark's `OutputOperationInfo`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct OutputOperationInfo {
    /// The batch time.
    pub batch_time: Time,
    /// The operation's number in the graph (in definition order).
    pub id: usize,
    /// What it is, e.g. `print`, `foreach_rdd`.
    pub name: String,
    /// Wall-clock ms when it started.
    pub start_time: u64,
    /// Wall-clock ms when it ended, once it has.
    pub end_time: Option<u64>,
    /// Why it failed, if it did.
    pub failure_reason: Option<String>,
}

/// A receiver's state (Spark's `ReceiverInfo`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ReceiverInfo {
    /// The source, e.g. `socket_text_stream(localhost:9999)`.
    pub name: String,
    /// Whether it is connected and receiving.
    pub active: bool,
    /// The worker it runs on.
    pub worker: usize,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Records it has read so far (in [`StreamingContext::receivers`]; the
    /// count at the time of the event in listener callbacks).
    ///
    /// [`StreamingContext::receivers`]: crate::StreamingContext::receivers
    pub num_records: u64,
    /// The rate it may read at now, in records/s, when limited (a max rate
    /// or backpressure), in [`StreamingContext::receivers`].
    ///
    /// [`StreamingContext::receivers`]: crate::StreamingContext::receivers
    pub rate_limit: Option<f64>,
}

/// Callbacks on a running context; every method has an empty default.
/// Register with
/// [`StreamingContext::add_streaming_listener`](crate::StreamingContext::add_streaming_listener).
#[allow(unused_variables)]
pub trait StreamingListener: Send + Sync {
    /// The context started; `time` is the wall-clock ms.
    fn on_streaming_started(&self, time: u64) {}
    /// A receiver started.
    fn on_receiver_started(&self, receiver: &ReceiverInfo) {}
    /// A receiver hit an error (it retries by itself).
    fn on_receiver_error(&self, receiver: &ReceiverInfo) {}
    /// A receiver stopped.
    fn on_receiver_stopped(&self, receiver: &ReceiverInfo) {}
    /// A batch was closed by its sources.
    fn on_batch_submitted(&self, batch: &BatchInfo) {}
    /// A batch became the oldest one being processed.
    fn on_batch_started(&self, batch: &BatchInfo) {}
    /// Every output operation finished a batch.
    fn on_batch_completed(&self, batch: &BatchInfo) {}
    /// An output operation started on a batch.
    fn on_output_operation_started(&self, op: &OutputOperationInfo) {}
    /// An output operation finished a batch (see its `failure_reason`).
    fn on_output_operation_completed(&self, op: &OutputOperationInfo) {}
}

/// Events on their way to the listeners.
#[derive(Debug)]
pub(crate) enum Event {
    StreamingStarted(u64),
    ReceiverStarted(ReceiverInfo),
    ReceiverError(ReceiverInfo),
    ReceiverStopped(ReceiverInfo),
    BatchSubmitted(BatchInfo),
    BatchStarted(BatchInfo),
    BatchCompleted(BatchInfo),
    OutputStarted(OutputOperationInfo),
    OutputCompleted(OutputOperationInfo),
}

pub(crate) fn wall_ms() -> u64 {
    wall_us() / 1000
}

pub(crate) fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// How many completed batches the statistics keep (Spark's UI keeps 1000).
const KEEP: usize = 1000;

/// How many per-batch event rates a receiver keeps.
const KEEP_RATES: usize = 1000;

/// What the tracker knows of one receiver.
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "ui"), allow(dead_code))]
pub(crate) struct ReceiverStatus {
    pub(crate) stream_id: usize,
    pub(crate) info: ReceiverInfo,
    pub(crate) last_error_time: Option<u64>,
    /// Records read by the receiver thread.
    pub(crate) read: Arc<AtomicU64>,
    /// (batch time, records/s) of the completed batches.
    pub(crate) rates: VecDeque<(u64, f64)>,
    pub(crate) rate: Option<Arc<dyn RateLimit>>,
}

/// A `to_dashboard` stream.
#[derive(Clone, Debug, Default)]
#[cfg_attr(not(feature = "ui"), allow(dead_code))]
pub(crate) struct Dashboard {
    pub(crate) id: usize,
    pub(crate) title: String,
    /// Key/value pairs (sorted by value, largest first) rather than records.
    pub(crate) pairs: bool,
    /// The latest batch's results, replaced whole (the UI keeps the `Arc`
    /// and renders it outside the tracker's lock).
    pub(crate) content: Arc<DashboardContent>,
    /// Keys or records shortened for display since the start.
    pub(crate) total_truncated: u64,
}

/// What a dashboard shows of one batch.
#[derive(Clone, Debug, Default)]
#[cfg_attr(not(feature = "ui"), allow(dead_code))]
pub(crate) struct DashboardContent {
    pub(crate) batch_time: Option<u64>,
    /// Wall-clock ms when it was replaced.
    pub(crate) updated: Option<u64>,
    /// Rows (pairs or records) in the whole batch.
    pub(crate) num_rows: usize,
    pub(crate) rows: Vec<(String, f64)>,
    pub(crate) records: Vec<String>,
    /// Keys or records of this batch shortened for display.
    pub(crate) truncated: usize,
}

/// A completed batch and its output operations, which no longer change;
/// shared by reference with the UI's snapshots.
#[derive(Debug)]
#[cfg_attr(not(feature = "ui"), allow(dead_code))]
pub(crate) struct CompletedBatch {
    pub(crate) info: BatchInfo,
    pub(crate) ops: Vec<OutputOperationInfo>,
}

/// The batch bookkeeping of one context.
#[derive(Default)]
pub(crate) struct Tracker {
    /// The active batches (closed, not yet completed).
    pub(crate) batches: BTreeMap<u64, BatchInfo>,
    /// The last completed batches, oldest first (at most `KEEP`).
    pub(crate) completed: VecDeque<Arc<CompletedBatch>>,
    pub(crate) interval: u64,
    /// Whether batch times are wall-clock times (system clock).
    system_clock: bool,
    last_completed: Option<u64>,
    /// Output operations of the batches not yet completed, by batch time
    /// (a completed batch keeps its own).
    pub(crate) ops: BTreeMap<u64, Vec<OutputOperationInfo>>,
    pub(crate) receivers: BTreeMap<String, ReceiverStatus>,
    pub(crate) total_completed: u64,
    /// Completed batches in which an output operation failed.
    pub(crate) failed_batches: u64,
    pub(crate) processed_records: u64,
    pub(crate) received_records: u64,
    /// Records each input has put into batches since the start (the
    /// receivers' figures in the UI, so that they add up to
    /// `received_records`).
    pub(crate) input_records: BTreeMap<String, u64>,
    /// The last checkpoint this process committed.
    pub(crate) checkpoint: Option<CheckpointStats>,
    /// Checkpoints this process committed, their bytes and time in all.
    pub(crate) checkpoints: CheckpointTotals,
    /// Keys in each stateful operator's state after its last batch, per
    /// worker.
    pub(crate) state_keys: BTreeMap<String, BTreeMap<usize, u64>>,
    /// Wall-clock ms of the start, once started.
    pub(crate) started: Option<u64>,
    pub(crate) stopped: bool,
    pub(crate) dashboards: Vec<Dashboard>,
}

/// One committed checkpoint, as this process wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "ui"), allow(dead_code))]
pub(crate) struct CheckpointStats {
    /// The batch time the state is after.
    pub(crate) time: u64,
    /// Wall-clock ms of the commit.
    pub(crate) committed: u64,
    /// From the first part's writing to the commit, in µs.
    pub(crate) duration_us: u64,
    /// This process's parts and marker.
    pub(crate) bytes: u64,
}

/// All checkpoints committed by this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(not(feature = "ui"), allow(dead_code))]
pub(crate) struct CheckpointTotals {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
    pub(crate) duration_us: u64,
}

/// What the statistics show of a receiver's rate limit; the rate
/// controller provides it.
pub(crate) trait RateLimit: Send + Sync + std::fmt::Debug {
    /// The records/s the receiver may read at now, when limited.
    fn rate(&self) -> Option<f64>;
}

/// A function called with every completed batch's time.
struct CompletionHook<F>(F);

impl<F: Fn(Time) + Send + Sync> StreamingListener for CompletionHook<F> {
    fn on_batch_completed(&self, batch: &BatchInfo) {
        (self.0)(batch.batch_time)
    }
}

/// The statistics and the bus that carries events to listeners.
///
/// The tracker's lock is taken by the workers and sources as batches close
/// and complete, so whoever else reads it (the web UI) copies what it needs
/// and renders after letting go; [`Bus::generation`] tells it when there is
/// something new to copy.
pub(crate) struct Bus {
    pub(crate) tracker: Mutex<Tracker>,
    /// Bumped, under the tracker's lock, by every change to the tracker.
    generation: AtomicU64,
    events: Sender<Event>,
    /// The engine's own listeners (rate controllers, connectors' hooks),
    /// called on the thread that completes a batch, before the program's.
    hooks: Mutex<Vec<Arc<dyn StreamingListener>>>,
}

impl Bus {
    /// A bus and the thread that delivers its events to `listeners`.
    pub(crate) fn start(
        interval: u64,
        system_clock: bool,
        listeners: Vec<Arc<dyn StreamingListener>>,
    ) -> Arc<Bus> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let bus = Arc::new(Bus {
            tracker: Mutex::new(Tracker {
                interval,
                system_clock,
                ..Tracker::default()
            }),
            generation: AtomicU64::new(0),
            events: tx,
            hooks: Mutex::new(Vec::new()),
        });
        if !listeners.is_empty() {
            let spawned = std::thread::Builder::new()
                .name("ember-listener-bus".into())
                .spawn(move || deliver(rx, listeners));
            if let Err(e) = spawned {
                tracing::error!(
                    "cannot start the listener thread, listeners will not be called: {e}"
                );
            }
        }
        bus
    }

    /// The tracker, to change it: bumps the generation.
    fn write(&self) -> std::sync::MutexGuard<'_, Tracker> {
        let t = self.tracker.lock().expect("tracker lock");
        self.generation.fetch_add(1, Ordering::Release);
        t
    }

    /// A number that changes whenever the tracker does (read it under the
    /// tracker's lock to know exactly which state it names).
    #[cfg_attr(not(feature = "ui"), allow(dead_code))]
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn post(&self, mut event: Event) {
        self.note(&mut event);
        // Nobody listening is fine: the receiver may be gone.
        let _ = self.events.send(event);
    }

    /// Keeps what the UI shows of an event.
    fn note(&self, event: &mut Event) {
        if matches!(
            event,
            Event::BatchSubmitted(_) | Event::BatchStarted(_) | Event::BatchCompleted(_)
        ) {
            // Recorded by `sealed` and `completed_through` themselves.
            return;
        }
        let mut t = self.write();
        match event {
            Event::StreamingStarted(at) => t.started = Some(*at),
            Event::ReceiverStarted(r) | Event::ReceiverStopped(r) => {
                Self::note_receiver(&mut t, r, false)
            }
            Event::ReceiverError(r) => Self::note_receiver(&mut t, r, true),
            Event::OutputStarted(op) | Event::OutputCompleted(op) => {
                let time = op.batch_time.milliseconds();
                if t.last_completed.is_some_and(|c| c >= time) {
                    // A batch's operations are final once it completed.
                    return;
                }
                let ops = t.ops.entry(time).or_default();
                match ops.iter_mut().find(|o| o.id == op.id) {
                    Some(o) => *o = op.clone(),
                    None => ops.push(op.clone()),
                }
            }
            Event::BatchSubmitted(_) | Event::BatchStarted(_) | Event::BatchCompleted(_) => {}
        }
    }

    fn note_receiver(t: &mut Tracker, r: &mut ReceiverInfo, is_error: bool) {
        if let Some(status) = t.receivers.get_mut(&r.name) {
            r.num_records = status.read.load(Ordering::Relaxed);
            if is_error {
                status.last_error_time = Some(wall_ms());
            }
            // A receiver that reconnects keeps showing its last error.
            let kept_error = status.info.last_error.take();
            status.info = r.clone();
            if status.info.last_error.is_none() {
                status.info.last_error = kept_error;
            }
        }
    }

    /// Calls `hook` with the time of every batch that completes from now on.
    pub(crate) fn on_completed(&self, hook: impl Fn(Time) + Send + Sync + 'static) {
        self.listen(Arc::new(CompletionHook(hook)));
    }

    /// Tells `listener` of every batch that completes from now on, on the
    /// thread that completes it (for the engine's own parts, e.g. a rate
    /// controller following batch completions as Spark's `RateController`).
    pub(crate) fn listen(&self, listener: Arc<dyn StreamingListener>) {
        self.hooks.lock().expect("hooks lock").push(listener);
    }

    /// Registers a receiver: its read counter and what shows its rate limit.
    pub(crate) fn add_receiver(
        &self,
        name: &str,
        worker: usize,
        rate: Arc<dyn RateLimit>,
    ) -> Arc<AtomicU64> {
        let mut t = self.write();
        let stream_id = t.receivers.len();
        let read = Arc::new(AtomicU64::new(0));
        t.receivers.insert(
            name.to_string(),
            ReceiverStatus {
                stream_id,
                info: ReceiverInfo {
                    name: name.to_string(),
                    active: false,
                    worker,
                    last_error: None,
                    num_records: 0,
                    rate_limit: None,
                },
                last_error_time: None,
                read: read.clone(),
                rates: VecDeque::new(),
                rate: Some(rate),
            },
        );
        read
    }

    /// The receivers, with their read counts now.
    pub(crate) fn receivers(&self) -> Vec<ReceiverInfo> {
        let t = self.tracker.lock().expect("tracker lock");
        t.receivers
            .values()
            .map(|r| {
                let mut info = r.info.clone();
                info.num_records = r.read.load(Ordering::Relaxed);
                info.rate_limit = r.rate.as_ref().and_then(|c| c.rate());
                info
            })
            .collect()
    }

    /// Registers a dashboard and returns its id.
    pub(crate) fn add_dashboard(&self, title: &str, pairs: bool) -> usize {
        let mut t = self.write();
        let id = t.dashboards.len();
        t.dashboards.push(Dashboard {
            id,
            title: title.to_string(),
            pairs,
            ..Dashboard::default()
        });
        id
    }

    /// Replaces a dashboard's content with a batch's results; the first
    /// time a batch had keys or records shortened for display, says so.
    pub(crate) fn update_dashboard(&self, id: usize, mut content: DashboardContent) {
        content.updated = Some(wall_ms());
        let truncated = content.truncated;
        let mut t = self.write();
        let Some(d) = t.dashboards.get_mut(id) else {
            return;
        };
        let first = d.total_truncated == 0 && truncated > 0;
        d.total_truncated += truncated as u64;
        d.content = Arc::new(content);
        let title = first.then(|| d.title.clone());
        drop(t);
        if let Some(title) = title {
            tracing::warn!(
                "dashboard {id} ({title}): {truncated} of its keys or records are too long to show \
                 whole and are shortened on the page (the JSON API counts them in \
                 totalTruncated); this is said only once"
            );
        }
    }

    /// This process committed a checkpoint.
    pub(crate) fn checkpointed(&self, stats: CheckpointStats) {
        let mut t = self.write();
        t.checkpoint = Some(stats);
        t.checkpoints.count += 1;
        t.checkpoints.bytes += stats.bytes;
        t.checkpoints.duration_us += stats.duration_us;
    }

    /// A stateful operator's state on `worker` holds `keys` keys after its
    /// latest batch.
    pub(crate) fn state_keys(&self, operator: &str, worker: usize, keys: u64) {
        let mut t = self.write();
        match t.state_keys.get_mut(operator) {
            Some(per_worker) => {
                per_worker.insert(worker, keys);
            }
            None => {
                t.state_keys
                    .insert(operator.to_string(), BTreeMap::from([(worker, keys)]));
            }
        }
    }

    /// The context has ended.
    pub(crate) fn stopped(&self) {
        self.write().stopped = true;
    }

    /// Sources closed batch `time`; records from `input` are counted into it.
    pub(crate) fn sealed(&self, time: u64, input: &str, records: u64) {
        let mut t = self.write();
        if t.last_completed.is_some_and(|c| c >= time) {
            return;
        }
        let now_us = wall_us();
        let now = now_us / 1000;
        let system = t.system_clock;
        let interval = t.interval;
        let previous_done = t.last_completed.is_some_and(|c| c + interval >= time)
            || !t.batches.keys().any(|b| *b < time);
        let mut events = Vec::new();
        let info = t.batches.entry(time).or_insert_with(|| {
            let info = BatchInfo {
                batch_time: Time::from_millis(time),
                submission_time: now,
                batch_wall_time: if system { time } else { now },
                micros: Some(Micros {
                    batch_wall: if system { time * 1000 } else { now_us },
                    submission: now_us,
                    start: None,
                    end: None,
                }),
                ..BatchInfo::default()
            };
            events.push(Event::BatchSubmitted(info.clone()));
            info
        });
        *info.records_by_input.entry(input.to_string()).or_default() += records;
        t.received_records += records;
        Self::count_input(&mut t, input, records);
        let info = t.batches.get_mut(&time).expect("inserted above");
        if info.processing_start_time.is_none() && previous_done {
            info.start_at(now_us);
            events.push(Event::BatchStarted(info.clone()));
        }
        drop(t);
        for e in events {
            self.post(e);
        }
    }

    /// Counts records an input put into `time` after it was closed (files
    /// are read after the directory was listed).
    pub(crate) fn add_records(&self, time: u64, input: &str, records: u64) {
        let mut t = self.write();
        if let Some(info) = t.batches.get_mut(&time) {
            *info.records_by_input.entry(input.to_string()).or_default() += records;
            t.received_records += records;
            Self::count_input(&mut t, input, records);
        }
    }

    fn count_input(t: &mut Tracker, input: &str, records: u64) {
        match t.input_records.get_mut(input) {
            Some(n) => *n += records,
            None => {
                t.input_records.insert(input.to_string(), records);
            }
        }
    }

    /// Every output has finished the batches up to `through`.
    pub(crate) fn completed_through(&self, through: u64) {
        let mut t = self.write();
        let now_us = wall_us();
        let mut events = Vec::new();
        let done: Vec<u64> = t.batches.range(..=through).map(|(b, _)| *b).collect();
        for b in done {
            let mut info = t.batches.remove(&b).expect("listed above");
            if info.processing_start_time.is_none() {
                info.start_at(now_us);
                events.push(Event::BatchStarted(info.clone()));
            }
            info.end_at(now_us);
            // Per batch: shown with RUST_LOG=ember_core=debug, not by the
            // default filter, so that print() output is not drowned.
            tracing::debug!(
                "Total delay: {:.3} s for time {} (execution: {:.3} s)",
                info.total_delay().unwrap_or(0) as f64 / 1000.0,
                info.batch_time,
                info.processing_delay().unwrap_or(0) as f64 / 1000.0
            );
            events.push(Event::BatchCompleted(info.clone()));
            t.total_completed += 1;
            t.processed_records += info.num_records();
            let interval = t.interval.max(1) as f64;
            for r in t.receivers.values_mut() {
                let n = info
                    .records_by_input
                    .get(&r.info.name)
                    .copied()
                    .unwrap_or(0);
                r.rates.push_back((b, n as f64 * 1000.0 / interval));
                if r.rates.len() > KEEP_RATES {
                    r.rates.pop_front();
                }
            }
            let ops = t.ops.remove(&b).unwrap_or_default();
            if ops.iter().any(|o| o.failure_reason.is_some()) {
                t.failed_batches += 1;
            }
            t.completed
                .push_back(Arc::new(CompletedBatch { info, ops }));
        }
        while t.completed.len() > KEEP {
            t.completed.pop_front();
        }
        let last = t.last_completed.map_or(through, |c| c.max(through));
        t.last_completed = Some(last);
        // Operations of batches completed without being closed (none should be).
        t.ops.retain(|b, _| *b > last);
        // The next batch, if already closed, starts now.
        if let Some((_, next)) = t.batches.iter_mut().next() {
            if next.processing_start_time.is_none() {
                next.start_at(now_us);
                events.push(Event::BatchStarted(next.clone()));
            }
        }
        drop(t);
        let hooks = self.hooks.lock().expect("hooks lock").clone();
        for e in events {
            if let (Event::BatchCompleted(b), false) = (&e, hooks.is_empty()) {
                for h in &hooks {
                    h.on_batch_completed(b);
                }
            }
            self.post(e);
        }
    }

    /// Completed batches, oldest first (at most the last 1000).
    pub(crate) fn completed(&self) -> Vec<BatchInfo> {
        let t = self.tracker.lock().expect("tracker lock");
        t.completed.iter().map(|c| c.info.clone()).collect()
    }
}

fn deliver(rx: Receiver<Event>, listeners: Vec<Arc<dyn StreamingListener>>) {
    for event in rx {
        for l in &listeners {
            let call = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &event {
                Event::StreamingStarted(t) => l.on_streaming_started(*t),
                Event::ReceiverStarted(r) => l.on_receiver_started(r),
                Event::ReceiverError(r) => l.on_receiver_error(r),
                Event::ReceiverStopped(r) => l.on_receiver_stopped(r),
                Event::BatchSubmitted(b) => l.on_batch_submitted(b),
                Event::BatchStarted(b) => l.on_batch_started(b),
                Event::BatchCompleted(b) => l.on_batch_completed(b),
                Event::OutputStarted(o) => l.on_output_operation_started(o),
                Event::OutputCompleted(o) => l.on_output_operation_completed(o),
            }));
            if call.is_err() {
                tracing::error!(
                    "a streaming listener panicked on {event:?}; it keeps receiving events"
                );
            }
        }
    }
}
