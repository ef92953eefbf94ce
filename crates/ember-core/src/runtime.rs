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

/// State shared by the context and all workers of this process.
pub(crate) struct Shared {
    pub(crate) conf: StreamingConf,
    pub(crate) clock: Clock,
    /// Spark's zero time: one interval before the first batch.
    zero_ms: AtomicU64,
    /// The clock's reading at the first start (file streams ignore older files).
    pub(crate) start_ms: u64,
    workers: usize,
    pub(crate) checkpoint_dir: Option<PathBuf>,
    /// The checkpoint being resumed from.
    pub(crate) restored: Option<Restored>,
    /// Batches up to this time are done (the zero time on a fresh start).
    resume_ms: AtomicU64,
    /// Running as one process of a cluster: the zero time is agreed with the
    /// other processes before the graph is built.
    pub(crate) cluster: bool,
    /// This process's number and how many there are (0 and 1 in local mode).
    process: usize,
    processes: usize,
    /// In a cluster: the shape of this process's graph, compared with every
    /// other process's before the graph runs.
    graph: String,
    /// In a cluster: the error that stopped this process came from another
    /// process (so it is not announced back).
    failed_by_peer: AtomicBool,
    /// Started by `get_or_create`: receivers replay their logs even when no
    /// checkpoint was complete yet.
    pub(crate) recovering: bool,
    /// Parts written per checkpoint time, to know when to commit.
    parts: Mutex<BTreeMap<u64, usize>>,
    /// Batch statistics and listener events.
    pub(crate) bus: Arc<Bus>,
    /// The first batch time that is not produced; `u64::MAX` while running.
    stop_at: AtomicU64,
    /// The least common multiple of the stateful operators' slides (0: none
    /// or no checkpointing): a checkpoint can only be taken at its multiples.
    pub(crate) checkpoint_grain: AtomicU64,
    /// A graceful stop's last batch, checkpointed on the way out (0: none).
    pub(crate) final_checkpoint: AtomicU64,
    aborted: AtomicBool,
    error: Mutex<Option<Error>>,
    wakers: Mutex<Vec<SyncActivator>>,
    threads: Mutex<Vec<Thread>>,
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
        self.recovering = recovering;
    }

    /// The statistics bus of this run.
    pub(crate) fn set_bus(&mut self, bus: Arc<Bus>) {
        self.bus = bus;
    }

    /// This process is process `process` of `processes` in a cluster.
    pub(crate) fn join_cluster(&mut self, process: usize, processes: usize) {
        self.cluster = true;
        self.process = process;
        self.processes = processes;
    }

    /// The shape of this process's graph, compared with the other processes'.
    pub(crate) fn set_graph(&mut self, graph: String) {
        self.graph = graph;
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

    /// The checkpoint directory, with checkpointing on.
    pub(crate) fn checkpoint_dir(&self) -> &Option<PathBuf> {
        &self.checkpoint_dir
    }

    /// The checkpoint being resumed from.
    pub(crate) fn restored(&self) -> &Option<Restored> {
        &self.restored
    }

    /// Started by `get_or_create`.
    pub(crate) fn recovering(&self) -> bool {
        self.recovering
    }

    /// The clock's reading at the first start (file streams ignore older files).
    pub(crate) fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// Workers of this process.
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// This process's number (0 in local mode).
    pub(crate) fn process(&self) -> usize {
        self.process
    }

    /// Processes of the cluster (1 in local mode).
    pub(crate) fn processes(&self) -> usize {
        self.processes
    }

    /// Running as one process of a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The shape of this process's graph.
    pub(crate) fn graph(&self) -> &str {
        &self.graph
    }

    /// Checkpoints can only be taken at multiples of this (the least common
    /// multiple of the stateful operators' slides).
    pub(crate) fn set_checkpoint_grain(&self, grain: u64) {
        self.checkpoint_grain.store(grain, Ordering::Release);
    }

    /// A graceful stop's last batch, checkpointed on the way out (0: none).
    pub(crate) fn final_checkpoint(&self) -> u64 {
        self.final_checkpoint.load(Ordering::Acquire)
    }

    /// Notes the calling thread as one of this process's workers.
    pub(crate) fn register_worker_thread(&self) {
        self.threads
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
            zero_ms: AtomicU64::new(zero),
            start_ms,
            workers,
            checkpoint_dir,
            restored,
            resume_ms: AtomicU64::new(resume),
            cluster: false,
            process: 0,
            processes: 1,
            graph: String::new(),
            failed_by_peer: AtomicBool::new(false),
            recovering: false,
            parts: Mutex::new(BTreeMap::new()),
            bus: Bus::start(0, false, Vec::new()),
            stop_at: AtomicU64::new(u64::MAX),
            checkpoint_grain: AtomicU64::new(0),
            final_checkpoint: AtomicU64::new(0),
            aborted: AtomicBool::new(false),
            error: Mutex::new(None),
            wakers: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
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
        self.zero_ms.load(Ordering::Acquire)
    }

    /// Batches up to this time are done (the zero time on a fresh start).
    pub(crate) fn resume(&self) -> u64 {
        self.resume_ms.load(Ordering::Acquire)
    }

    /// The processes of a cluster agreed on `zero`; on a fresh start the
    /// first batch follows it.
    pub(crate) fn agreed_zero(&self, zero: u64) {
        self.zero_ms.store(zero, Ordering::Release);
        if self.restored.is_none() {
            self.resume_ms.store(zero, Ordering::Release);
        }
    }

    /// The first batch time not to produce (`u64::MAX` while running).
    pub(crate) fn stop_at(&self) -> u64 {
        self.stop_at.load(Ordering::Acquire)
    }

    pub(crate) fn aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// [`aborted`](Self::aborted) for per-record checks: a relaxed read.
    #[inline]
    pub(crate) fn halting(&self) -> bool {
        self.aborted.load(Ordering::Relaxed)
    }

    /// Registers an activator to wake when the context stops.
    pub(crate) fn register_waker(&self, activator: SyncActivator) {
        self.wakers.lock().expect("wakers lock").push(activator);
    }

    pub(crate) fn wake_all(&self) {
        self.wakers
            .lock()
            .expect("wakers lock")
            .retain(|w| w.activate().is_ok());
        for t in self.threads.lock().expect("threads lock").iter() {
            t.unpark();
        }
    }

    pub(crate) fn is_worker_thread(&self) -> bool {
        let me = thread::current().id();
        self.threads
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
        let grain = self.checkpoint_grain.load(Ordering::Acquire);
        if grain > 0 {
            let aligned = zero + (open - zero).div_ceil(grain) * grain;
            let bound = self.conf.effective_graceful_stop_timeout().as_millis() as u64 / 2;
            if aligned - open <= bound {
                last = aligned;
                self.final_checkpoint.store(last, Ordering::Release);
            } else {
                tracing::warn!(
                    "graceful stop: the next batch every stateful operator can checkpoint is {}                      ms away, too far within the stop timeout; stopping without a final                      checkpoint (a restart resumes from the last one)",
                    aligned - open
                );
            }
        }
        let stop_at = last + interval;
        self.stop_at.fetch_min(stop_at, Ordering::AcqRel);
        tracing::info!(
            last_batch = last,
            "stopping the StreamingContext gracefully: receiving stops, every batch received is              processed"
        );
        self.wake_all();
    }

    /// A graceful stop waits one more batch for a source's received records
    /// (never after a failure or a stop at once).
    pub(crate) fn extend_stop(&self, to: u64) {
        let _ = self
            .stop_at
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != 0 && now != u64::MAX && now < to && !self.aborted()).then_some(to)
            });
    }

    /// What this process tells the others of a cluster about its stop, if
    /// anything changed since `announced`: a failure (once), a stop at once,
    /// or the batch its sources stop at.
    pub(crate) fn control_update(&self, announced: &Option<Control>) -> Option<Control> {
        let process = self.process;
        let next = if self.aborted() {
            match self.take_error() {
                Some(_) if self.failed_by_peer.load(Ordering::Acquire) => return None,
                Some(e) => ControlKind::Failed(e.to_string()),
                None => ControlKind::Halt,
            }
        } else {
            match self.stop_at() {
                u64::MAX => return None,
                at => ControlKind::StopAt(at),
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
        if message.process == self.process {
            return;
        }
        match &message.kind {
            ControlKind::StopAt(at) => {
                if self.stop_at() == u64::MAX {
                    tracing::info!(
                        process = message.process,
                        "another process of the cluster is stopping gracefully"
                    );
                    self.request_stop(true);
                }
                let raised =
                    self.stop_at
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                            (now != 0 && now < *at && !self.aborted()).then_some(*at)
                        });
                if raised.is_ok() && self.final_checkpoint.load(Ordering::Acquire) != 0 {
                    self.final_checkpoint
                        .store(at - self.conf.batch_ms, Ordering::Release);
                }
                self.wake_all();
            }
            ControlKind::Halt => {
                tracing::info!(process = message.process, "another process stopped at once");
                self.halt();
            }
            ControlKind::Failed(error) => {
                self.failed_by_peer.store(true, Ordering::Release);
                self.fail(Error::Cluster(format!(
                    "process {} of the cluster failed: {error}",
                    message.process
                )));
            }
        }
    }

    /// Stops every worker at once, without an error.
    pub(crate) fn halt(&self) {
        self.aborted.store(true, Ordering::Release);
        self.stop_at.store(0, Ordering::Release);
        self.wake_all();
    }

    /// Records a failure and stops every worker at once.
    pub(crate) fn fail(&self, error: Error) {
        tracing::error!("{error}");
        {
            let mut slot = self.error.lock().expect("error lock");
            if slot.is_none() {
                *slot = Some(error);
            }
        }
        self.aborted.store(true, Ordering::Release);
        self.stop_at.store(0, Ordering::Release);
        self.wake_all();
    }

    pub(crate) fn take_error(&self) -> Option<Error> {
        let slot = self.error.lock().expect("error lock");
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

    pub(crate) fn await_build_reports(&self) -> Result<()> {
        let mut b = self.build.lock().expect("build lock");
        while b.reports.len() < self.workers {
            b = self.build_cv.wait(b).expect("build lock");
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
            self.stop_at.store(0, Ordering::Release);
        }
        let mut b = self.build.lock().expect("build lock");
        b.go = Some(go);
        self.build_cv.notify_all();
    }

    /// Counts a written part; the last worker to write commits the checkpoint.
    pub(crate) fn part_written(&self, time: u64, operators: Vec<String>) -> Result<()> {
        let all = {
            let mut parts = self.parts.lock().expect("parts lock");
            let n = parts.entry(time).or_default();
            *n += 1;
            let all = *n == self.workers;
            if all {
                parts.remove(&time);
            }
            all
        };
        if all {
            let dir = self.checkpoint_dir.as_ref().expect("checkpointing is on");
            let commit = Commit {
                time,
                zero: self.zero(),
                interval: self.conf.batch_ms,
                workers: self.workers * self.processes,
                processes: self.processes,
                operators,
            };
            checkpoint::write_commit(dir, &commit, self.process)?;
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
