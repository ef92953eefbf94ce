//! The runtime every worker of a process shares: the lifecycle and its
//! stop, the batch timeline, the cluster membership, checkpoint scheduling
//! and the statistics bus.
//!
//! [`Shared`] is reached through methods only; operators hold it through
//! their worker's context and use the few calls made for them (the stop
//! point, the timeline, the checkpoint schedule).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use timely::scheduling::SyncActivator;

use crate::checkpoint::{self, Commit, Restored};
use crate::clock::Clock;
use crate::conf::StreamingConf;
use crate::error::{Error, Result};
use crate::listener::Bus;

pub(crate) fn no_outputs() -> Error {
    Error::graph(
        "no output operations registered, so nothing to execute: add print(), foreach_rdd() or \
         save_as_text_files() to a stream",
    )
}

/// What a worker found while building its graph.
pub(crate) struct BuildReport {
    pub(crate) outputs: usize,
    pub(crate) error: Option<Error>,
}

#[derive(Default)]
struct Progress {
    completed: Option<u64>,
    terminated: bool,
}

#[derive(Default)]
struct Build {
    reports: Vec<BuildReport>,
    go: Option<bool>,
}

/// The batch timeline: where batch times start and where this run resumes.
struct Timeline {
    /// Spark's zero time: one interval before the first batch.
    zero_ms: AtomicU64,
    /// The clock's reading at the first start (file streams ignore older files).
    start_ms: u64,
    /// Batches up to this time are done (the zero time on a fresh start).
    resume_ms: AtomicU64,
}

/// Which workers and processes run the graph.
struct Membership {
    /// Workers of this process.
    workers: usize,
    /// Running as one process of a cluster: the zero time is agreed with the
    /// other processes before the graph is built.
    cluster: bool,
    /// This process's number and how many there are (0 and 1 in local mode).
    process: usize,
    processes: usize,
    /// In a cluster: the shape of this process's graph, compared with every
    /// other process's before the graph runs.
    graph: String,
    /// In a cluster: the error that stopped this process came from another
    /// process (so it is not announced back).
    failed_by_peer: AtomicBool,
}

/// This process's parts of one checkpoint written so far.
struct PartsWritten {
    count: usize,
    bytes: u64,
    /// When the first part began to be written (wall-clock µs).
    began_us: u64,
}

/// Where checkpoints go, what is restored, and when the next is taken.
struct CheckpointPlan {
    dir: Option<PathBuf>,
    /// The checkpoint being resumed from.
    restored: Option<Restored>,
    /// Started by `get_or_create`: receivers replay their logs even when no
    /// checkpoint was complete yet.
    recovering: bool,
    /// Parts written per checkpoint time, to know when to commit.
    parts: Mutex<BTreeMap<u64, PartsWritten>>,
    /// The least common multiple of the stateful operators' slides (0: none
    /// or no checkpointing): a checkpoint can only be taken at its multiples.
    grain: AtomicU64,
    /// A graceful stop's last batch, checkpointed on the way out (0: none).
    final_checkpoint: AtomicU64,
}

/// The stop point while running: no batch is the first not produced.
const RUNNING: u64 = u64::MAX;
/// The stop point after a stop at once: not even the first batch is produced.
const HALTED: u64 = 0;

/// Where the run stands with stopping (see [`Shared::stop_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopState {
    /// No stop asked for.
    Running,
    /// A graceful stop: sources produce the batches before `at`.
    Graceful {
        /// The first batch time not produced.
        at: u64,
    },
    /// Stopped at once, by a stop without grace or a failure.
    Halted,
}

/// How the run stops: the agreed stop batch, a stop at once, the error.
struct StopControl {
    /// The first batch time that is not produced: [`RUNNING`] while
    /// running, [`HALTED`] after a stop at once, so that a source compares a
    /// batch time with it and nothing else (see [`Shared::stop_state`]).
    stop_at: AtomicU64,
    aborted: AtomicBool,
    error: Mutex<Option<Error>>,
    /// Woken when the stop changes.
    wakers: Mutex<Vec<SyncActivator>>,
    threads: Mutex<Vec<Thread>>,
}

/// State shared by the context and all workers of this process, one part
/// per concern, reached through methods.
pub(crate) struct Shared {
    conf: StreamingConf,
    clock: Clock,
    timeline: Timeline,
    members: Membership,
    checkpoints: CheckpointPlan,
    stop: StopControl,
    /// Batch statistics and listener events.
    bus: Arc<Bus>,
    /// How long each worker of this process has spent working, for
    /// backpressure.
    busy: Arc<crate::rate::BusyMeter>,
    progress: Mutex<Progress>,
    progress_cv: Condvar,
    build: Mutex<Build>,
    build_cv: Condvar,
    /// The web UI, shut down when the workers end.
    #[cfg(feature = "ui")]
    ui: Mutex<Option<crate::ui::UiServer>>,
}

impl Shared {
    // ---- what the context sets up before the workers start

    /// Started by `get_or_create`: receivers replay their logs even when no
    /// checkpoint was complete yet.
    pub(crate) fn set_recovering(&mut self, recovering: bool) {
        self.checkpoints.recovering = recovering;
    }

    /// The statistics bus of this run.
    pub(crate) fn set_bus(&mut self, bus: Arc<Bus>) {
        self.bus = bus;
    }

    /// This process is process `process` of `processes` in a cluster.
    pub(crate) fn join_cluster(&mut self, process: usize, processes: usize) {
        self.members.cluster = true;
        self.members.process = process;
        self.members.processes = processes;
    }

    /// The shape of this process's graph, compared with the other processes'.
    pub(crate) fn set_graph(&mut self, graph: String) {
        self.members.graph = graph;
    }

    // ---- what operators and the context read

    /// The settings.
    pub(crate) fn conf(&self) -> &StreamingConf {
        &self.conf
    }

    /// The batch clock.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Batch statistics and listener events.
    pub(crate) fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }

    /// How long each worker of this process has spent working (measured
    /// with backpressure on).
    pub(crate) fn busy(&self) -> &Arc<crate::rate::BusyMeter> {
        &self.busy
    }

    /// The checkpoint directory, with checkpointing on.
    pub(crate) fn checkpoint_dir(&self) -> &Option<PathBuf> {
        &self.checkpoints.dir
    }

    /// The checkpoint being resumed from.
    pub(crate) fn restored(&self) -> &Option<Restored> {
        &self.checkpoints.restored
    }

    /// Started by `get_or_create`.
    pub(crate) fn recovering(&self) -> bool {
        self.checkpoints.recovering
    }

    /// The clock's reading at the first start (file streams ignore older files).
    pub(crate) fn start_ms(&self) -> u64 {
        self.timeline.start_ms
    }

    /// Workers of this process.
    pub(crate) fn workers(&self) -> usize {
        self.members.workers
    }

    /// This process's number (0 in local mode).
    pub(crate) fn process(&self) -> usize {
        self.members.process
    }

    /// Processes of the cluster (1 in local mode).
    pub(crate) fn processes(&self) -> usize {
        self.members.processes
    }

    /// Running as one process of a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        self.members.cluster
    }

    /// The shape of this process's graph.
    pub(crate) fn graph(&self) -> &str {
        &self.members.graph
    }

    /// Checkpoints can only be taken at multiples of this (the least common
    /// multiple of the stateful operators' slides).
    pub(crate) fn set_checkpoint_grain(&self, grain: u64) {
        self.checkpoints.grain.store(grain, Ordering::Release);
    }

    /// A graceful stop's last batch, checkpointed on the way out (0: none).
    pub(crate) fn final_checkpoint(&self) -> u64 {
        self.checkpoints.final_checkpoint.load(Ordering::Acquire)
    }

    /// Notes the calling thread as one of this process's workers.
    pub(crate) fn register_worker_thread(&self) {
        self.stop
            .threads
            .lock()
            .expect("threads lock")
            .push(thread::current());
    }

    /// Waits until the batch at `time` completed everywhere; the error that
    /// stopped the context, or an `IllegalState` one, if it stopped first.
    pub(crate) fn await_completed(&self, time: u64) -> Result<()> {
        let mut p = self.progress.lock().expect("progress lock");
        loop {
            if p.completed.is_some_and(|c| c >= time) {
                return Ok(());
            }
            if p.terminated {
                drop(p);
                return Err(self.take_error().unwrap_or_else(|| {
                    Error::IllegalState(format!(
                        "the context stopped before batch {time} ms completed"
                    ))
                }));
            }
            p = self.progress_cv.wait(p).expect("progress lock");
        }
    }

    /// The newest batch every output operation finished.
    pub(crate) fn last_completed(&self) -> Option<u64> {
        self.progress.lock().expect("progress lock").completed
    }

    /// Keeps the web UI running until the workers end.
    #[cfg(feature = "ui")]
    pub(crate) fn set_ui(&self, server: crate::ui::UiServer) {
        *self.ui.lock().expect("ui lock") = Some(server);
    }

    /// The web UI's address, while it runs.
    #[cfg(feature = "ui")]
    pub(crate) fn ui_address(&self) -> Option<std::net::SocketAddr> {
        self.ui
            .lock()
            .expect("ui lock")
            .as_ref()
            .map(|u| u.address())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        conf: StreamingConf,
        clock: Clock,
        zero: u64,
        start_ms: u64,
        workers: usize,
        checkpoint_dir: Option<PathBuf>,
        restored: Option<Restored>,
        resume: u64,
    ) -> Self {
        Shared {
            conf,
            clock,
            timeline: Timeline {
                zero_ms: AtomicU64::new(zero),
                start_ms,
                resume_ms: AtomicU64::new(resume),
            },
            members: Membership {
                workers,
                cluster: false,
                process: 0,
                processes: 1,
                graph: String::new(),
                failed_by_peer: AtomicBool::new(false),
            },
            checkpoints: CheckpointPlan {
                dir: checkpoint_dir,
                restored,
                recovering: false,
                parts: Mutex::new(BTreeMap::new()),
                grain: AtomicU64::new(0),
                final_checkpoint: AtomicU64::new(0),
            },
            stop: StopControl {
                stop_at: AtomicU64::new(RUNNING),
                aborted: AtomicBool::new(false),
                error: Mutex::new(None),
                wakers: Mutex::new(Vec::new()),
                threads: Mutex::new(Vec::new()),
            },
            bus: Bus::start(0, false, Vec::new()),
            busy: Arc::new(crate::rate::BusyMeter::new(workers)),
            progress: Mutex::new(Progress::default()),
            progress_cv: Condvar::new(),
            build: Mutex::new(Build::default()),
            build_cv: Condvar::new(),
            #[cfg(feature = "ui")]
            ui: Mutex::new(None),
        }
    }

    /// Spark's zero time: one interval before the first batch.
    pub(crate) fn zero(&self) -> u64 {
        self.timeline.zero_ms.load(Ordering::Acquire)
    }

    /// Batches up to this time are done (the zero time on a fresh start).
    pub(crate) fn resume(&self) -> u64 {
        self.timeline.resume_ms.load(Ordering::Acquire)
    }

    /// The processes of a cluster agreed on `zero`; on a fresh start the
    /// first batch follows it.
    pub(crate) fn agreed_zero(&self, zero: u64) {
        self.timeline.zero_ms.store(zero, Ordering::Release);
        if self.checkpoints.restored.is_none() {
            self.timeline.resume_ms.store(zero, Ordering::Release);
        }
    }

    /// The first batch time not to produce: `u64::MAX` while running, 0
    /// after a stop at once; for comparing batch times with (use
    /// [`stop_state`](Self::stop_state) to ask which).
    pub(crate) fn stop_at(&self) -> u64 {
        self.stop.stop_at.load(Ordering::Acquire)
    }

    /// Whether and how the run is stopping.
    pub(crate) fn stop_state(&self) -> StopState {
        match self.stop_at() {
            RUNNING => StopState::Running,
            HALTED => StopState::Halted,
            at => StopState::Graceful { at },
        }
    }

    pub(crate) fn aborted(&self) -> bool {
        self.stop.aborted.load(Ordering::Acquire)
    }

    /// [`aborted`](Self::aborted) for per-record checks: a relaxed read.
    #[inline]
    pub(crate) fn halting(&self) -> bool {
        self.stop.aborted.load(Ordering::Relaxed)
    }

    /// Registers an activator to wake when the context stops.
    pub(crate) fn register_waker(&self, activator: SyncActivator) {
        self.stop
            .wakers
            .lock()
            .expect("wakers lock")
            .push(activator);
    }

    pub(crate) fn wake_all(&self) {
        self.stop
            .wakers
            .lock()
            .expect("wakers lock")
            .retain(|w| w.activate().is_ok());
        for t in self.stop.threads.lock().expect("threads lock").iter() {
            t.unpark();
        }
    }

    pub(crate) fn is_worker_thread(&self) -> bool {
        let me = thread::current().id();
        self.stop
            .threads
            .lock()
            .expect("threads lock")
            .iter()
            .any(|t| t.id() == me)
    }

    /// Agrees on the batch where sources stop; never moves it later. A
    /// graceful stop closes the open batch now and processes it; with
    /// checkpointing, it runs on to the next batch where every stateful
    /// operator can be checkpointed (if that is near) and checkpoints it.
    /// A stop that is not graceful ends at once: batches not yet complete
    /// are dropped.
    pub(crate) fn request_stop(&self, graceful: bool) {
        if !graceful {
            tracing::info!("stopping the StreamingContext now");
            self.halt();
            return;
        }
        let interval = self.conf.batch_ms;
        let zero = self.zero();
        let now = self.clock.now_ms().max(zero);
        // The batch being filled now: the first batch time after `now`.
        let open = zero + ((now - zero) / interval + 1) * interval;
        let mut last = open;
        let grain = self.checkpoints.grain.load(Ordering::Acquire);
        if grain > 0 {
            let aligned = zero + (open - zero).div_ceil(grain) * grain;
            let bound = self.conf.effective_graceful_stop_timeout().as_millis() as u64 / 2;
            if aligned - open <= bound {
                last = aligned;
                self.checkpoints
                    .final_checkpoint
                    .store(last, Ordering::Release);
            } else {
                tracing::warn!(
                    "graceful stop: the next batch every stateful operator can checkpoint is {} ms away, too far within the stop timeout; stopping without a final checkpoint (a restart resumes from the last one)",
                    aligned - open
                );
            }
        }
        let stop_at = last + interval;
        self.stop.stop_at.fetch_min(stop_at, Ordering::AcqRel);
        tracing::info!(
            last_batch = last,
            "stopping the StreamingContext gracefully: receiving stops, every batch received is processed"
        );
        self.wake_all();
    }

    /// A graceful stop waits one more batch for a source's received records
    /// (never after a failure or a stop at once).
    pub(crate) fn extend_stop(&self, to: u64) {
        let _ = self
            .stop
            .stop_at
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != HALTED && now != RUNNING && now < to && !self.aborted()).then_some(to)
            });
    }

    /// What this process tells the others of a cluster about its stop, if
    /// anything changed since `announced`: a failure (once), a stop at once,
    /// or the batch its sources stop at.
    pub(crate) fn control_update(&self, announced: &Option<Control>) -> Option<Control> {
        let process = self.members.process;
        let next = if self.aborted() {
            match self.take_error() {
                Some(_) if self.members.failed_by_peer.load(Ordering::Acquire) => return None,
                Some(e) => ControlKind::Failed(e.to_string()),
                None => ControlKind::Halt,
            }
        } else {
            match self.stop_state() {
                StopState::Running => return None,
                StopState::Graceful { at } => ControlKind::StopAt(at),
                StopState::Halted => ControlKind::StopAt(HALTED),
            }
        };
        let next = Control {
            process,
            kind: next,
        };
        (announced.as_ref() != Some(&next)).then_some(next)
    }

    /// Another process of the cluster stopped, or is stopping: this one
    /// follows. A graceful stop ends at the latest batch any process asks
    /// for, so every process completes the same batches.
    pub(crate) fn on_control(&self, message: &Control) {
        if message.process == self.members.process {
            return;
        }
        match &message.kind {
            ControlKind::StopAt(at) => {
                if self.stop_state() == StopState::Running {
                    tracing::info!(
                        process = message.process,
                        "another process of the cluster is stopping gracefully"
                    );
                    self.request_stop(true);
                }
                let raised =
                    self.stop
                        .stop_at
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                            (now != HALTED && now < *at && !self.aborted()).then_some(*at)
                        });
                if raised.is_ok() && self.checkpoints.final_checkpoint.load(Ordering::Acquire) != 0
                {
                    self.checkpoints
                        .final_checkpoint
                        .store(at - self.conf.batch_ms, Ordering::Release);
                }
                self.wake_all();
            }
            ControlKind::Halt => {
                tracing::info!(process = message.process, "another process stopped at once");
                self.halt();
            }
            ControlKind::Failed(error) => {
                self.members.failed_by_peer.store(true, Ordering::Release);
                self.fail(Error::Cluster(format!(
                    "process {} of the cluster failed: {error}",
                    message.process
                )));
            }
        }
    }

    /// Stops every worker at once, without an error.
    pub(crate) fn halt(&self) {
        self.stop.aborted.store(true, Ordering::Release);
        self.stop.stop_at.store(HALTED, Ordering::Release);
        self.wake_all();
    }

    /// Records a failure and stops every worker at once.
    pub(crate) fn fail(&self, error: Error) {
        tracing::error!("{error}");
        {
            let mut slot = self.stop.error.lock().expect("error lock");
            if slot.is_none() {
                *slot = Some(error);
            }
        }
        self.stop.aborted.store(true, Ordering::Release);
        self.stop.stop_at.store(HALTED, Ordering::Release);
        self.wake_all();
    }

    pub(crate) fn take_error(&self) -> Option<Error> {
        let slot = self.stop.error.lock().expect("error lock");
        slot.clone()
    }

    pub(crate) fn report_build(&self, report: BuildReport) -> bool {
        let mut b = self.build.lock().expect("build lock");
        b.reports.push(report);
        self.build_cv.notify_all();
        while b.go.is_none() {
            b = self.build_cv.wait(b).expect("build lock");
        }
        b.go == Some(true)
    }

    /// Waits for every worker's build report; returns early with the first
    /// error reported, or when the workers failed or ended without one.
    pub(crate) fn await_build_reports(&self) -> Result<()> {
        let mut b = self.build.lock().expect("build lock");
        while b.reports.len() < self.members.workers {
            if b.reports.iter().any(|r| r.error.is_some()) {
                break;
            }
            if let Some(e) = self.take_error() {
                return Err(e);
            }
            if self.is_terminated() {
                return Err(Error::Internal(
                    "the workers ended before building the program's graph".into(),
                ));
            }
            b = self
                .build_cv
                .wait_timeout(b, Duration::from_millis(20))
                .expect("build lock")
                .0;
        }
        if let Some(e) = b.reports.iter_mut().find_map(|r| r.error.take()) {
            return Err(e);
        }
        if b.reports.iter().any(|r| r.outputs == 0) {
            return Err(no_outputs());
        }
        Ok(())
    }

    pub(crate) fn decide(&self, go: bool) {
        if !go {
            // timely steps a worker's dataflows to completion after the worker
            // returns: make every source and batch operator let go at once.
            self.stop.stop_at.store(HALTED, Ordering::Release);
        }
        let mut b = self.build.lock().expect("build lock");
        b.go = Some(go);
        self.build_cv.notify_all();
    }

    /// Counts a written part of `bytes`, whose writing began at wall-clock
    /// `began_us`; the last worker to write commits the checkpoint.
    pub(crate) fn part_written(
        &self,
        time: u64,
        operators: Vec<String>,
        bytes: u64,
        began_us: u64,
    ) -> Result<()> {
        let all = {
            let mut parts = self.checkpoints.parts.lock().expect("parts lock");
            let n = parts.entry(time).or_insert(PartsWritten {
                count: 0,
                bytes: 0,
                began_us,
            });
            n.count += 1;
            n.bytes += bytes;
            n.began_us = n.began_us.min(began_us);
            if n.count == self.members.workers {
                parts.remove(&time)
            } else {
                None
            }
        };
        if let Some(parts) = all {
            let dir = self.checkpoints.dir.as_ref().expect("checkpointing is on");
            let commit = Commit {
                time,
                zero: self.zero(),
                interval: self.conf.batch_ms,
                workers: self.members.workers * self.members.processes,
                processes: self.members.processes,
                operators,
            };
            let marker = checkpoint::write_commit(dir, &commit, self.members.process)?;
            let done = crate::listener::wall_us();
            self.bus.checkpointed(crate::listener::CheckpointStats {
                time,
                committed: done / 1000,
                duration_us: done.saturating_sub(parts.began_us),
                bytes: parts.bytes + marker,
            });
            tracing::debug!(time, "checkpoint committed");
        }
        Ok(())
    }

    pub(crate) fn set_completed(&self, through: u64) {
        let mut p = self.progress.lock().expect("progress lock");
        if p.completed.is_none_or(|c| c < through) {
            p.completed = Some(through);
            self.bus.completed_through(through);
            self.progress_cv.notify_all();
        }
    }

    pub(crate) fn is_terminated(&self) -> bool {
        self.progress.lock().expect("progress lock").terminated
    }

    /// A graceful stop asked by SIGTERM or Ctrl-C, bounded by the timeout.
    pub(crate) fn stop_from_signal(&self) {
        self.request_stop(true);
        let _ = self.await_graceful_stop();
    }

    /// Waits for a graceful stop within its timeout; past it, stops at once.
    ///
    /// # Errors
    ///
    /// [`Error::StopTimeout`] when the timeout passed.
    pub(crate) fn await_graceful_stop(&self) -> Result<()> {
        let timeout = self.conf.effective_graceful_stop_timeout();
        if self.await_terminated(Some(timeout)) {
            return Ok(());
        }
        tracing::warn!(
            "the graceful stop did not finish within {timeout:?}; stopping now, batches not yet \
             processed are dropped (raise the timeout with StreamingConf::graceful_stop_timeout \
             or --graceful-stop-timeout)"
        );
        {
            // What await_termination reports, unless a failure came first.
            let mut slot = self.stop.error.lock().expect("error lock");
            if slot.is_none() {
                *slot = Some(Error::StopTimeout(timeout));
            }
        }
        self.halt();
        self.await_terminated(None);
        Err(Error::StopTimeout(timeout))
    }

    pub(crate) fn set_terminated(&self) {
        self.bus.stopped();
        #[cfg(feature = "ui")]
        drop(self.ui.lock().expect("ui lock").take());
        let mut p = self.progress.lock().expect("progress lock");
        p.terminated = true;
        self.progress_cv.notify_all();
    }

    /// Waits for the workers to end; false on timeout.
    pub(crate) fn await_terminated(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut p = self.progress.lock().expect("progress lock");
        while !p.terminated {
            match deadline {
                None => p = self.progress_cv.wait(p).expect("progress lock"),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    p = self
                        .progress_cv
                        .wait_timeout(p, d - now)
                        .expect("progress lock")
                        .0;
                }
            }
        }
        true
    }
}

/// What a process of a cluster tells the others about stopping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Control {
    process: usize,
    kind: ControlKind,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum ControlKind {
    /// Stopping gracefully: sources stop at this batch time.
    StopAt(u64),
    /// Stopped at once.
    Halt,
    /// Stopped by this error.
    Failed(String),
}
