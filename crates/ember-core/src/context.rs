//! The streaming context: lifecycle, workers, and the batch clock's agreement.

use std::collections::BTreeMap;
use std::net::ToSocketAddrs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use timely::dataflow::ProbeHandle;
use timely::scheduling::SyncActivator;

use crate::checkpoint::{self, Commit, Restored};
use crate::clock::Clock;
use crate::conf::StreamingConf;
use crate::error::{Error, Result};
use crate::listener::{self, BatchInfo, Bus, Event, StreamingListener};
use crate::scope::{StreamingScope, WorkerCtx};
use crate::time::Time;

/// A graph definition: run once by every worker when the context starts.
type Definition = Arc<dyn for<'s> Fn(&StreamingScope<'s>) + Send + Sync + 'static>;

/// How long a parked worker sleeps before it looks at stop and abort flags
/// again, when nothing wakes it sooner.
const PARK: Duration = Duration::from_millis(50);

/// The entry point of a streaming program, Spark's `StreamingContext`.
///
/// A program describes its DStream graph in [`define`](Self::define) (the
/// closure runs once on every worker when the context starts), then calls
/// [`start`](Self::start) and [`await_termination`](Self::await_termination).
/// The context is cheap to clone and can be stopped from any thread.
///
/// # Examples
///
/// ```
/// use ember_core::{ManualClock, StreamingConf, StreamingContext, Time, seconds};
/// use std::sync::{Arc, Mutex};
///
/// let clock = ManualClock::new();
/// let conf = StreamingConf::new("WordCount", seconds(1)).master("local[2]").unwrap();
/// let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let out = seen.clone();
/// ssc.define(move |s| {
///     let lines = s.queue_stream(vec![vec!["a b a".to_string()]], true, None);
///     let counts = lines
///         .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
///         .map(|w| (w, 1u64))
///         .reduce_by_key(|a, b| a + b);
///     let out = out.clone();
///     counts.foreach_rdd(move |mut batch, time| {
///         batch.sort();
///         out.lock().unwrap().push((time, batch));
///     });
/// })
/// .unwrap();
/// ssc.start().unwrap();
/// clock.advance(seconds(1));
/// ssc.await_batch(Time::from_millis(1000)).unwrap();
/// ssc.stop(false).unwrap();
/// let want = vec![("a".to_string(), 2), ("b".to_string(), 1)];
/// assert_eq!(*seen.lock().unwrap(), [(Time::from_millis(1000), want)]);
/// ```
#[derive(Clone)]
pub struct StreamingContext {
    inner: Arc<Inner>,
}

struct Inner {
    conf: StreamingConf,
    clock: Clock,
    state: Mutex<Lifecycle>,
    definitions: Mutex<Vec<Definition>>,
    checkpoint_dir: Mutex<Option<PathBuf>>,
    /// Restore from the checkpoint directory at start (set by `get_or_create`).
    recover: Mutex<bool>,
    listeners: Mutex<Vec<Arc<dyn StreamingListener>>>,
}

enum Lifecycle {
    Initialized,
    Active(Arc<Shared>),
    Stopped(Option<Arc<Shared>>),
}

impl std::fmt::Debug for StreamingContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingContext")
            .field("conf", &self.inner.conf)
            .finish_non_exhaustive()
    }
}

impl StreamingContext {
    /// A context on the system clock.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a zero or sub-millisecond batch interval.
    pub fn new(conf: StreamingConf) -> Result<Self> {
        Self::with_clock_kind(conf, Clock::System)
    }

    /// A context whose batches follow a [`ManualClock`](crate::ManualClock):
    /// for tests that must not sleep.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_clock(conf: StreamingConf, clock: crate::ManualClock) -> Result<Self> {
        Self::with_clock_kind(conf, Clock::Manual(clock))
    }

    fn with_clock_kind(conf: StreamingConf, clock: Clock) -> Result<Self> {
        let conf = conf.validated()?;
        Ok(StreamingContext {
            inner: Arc::new(Inner {
                conf,
                clock,
                state: Mutex::new(Lifecycle::Initialized),
                definitions: Mutex::new(Vec::new()),
                checkpoint_dir: Mutex::new(None),
                recover: Mutex::new(false),
                listeners: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Checkpoints the state of stateful operations (windows, state
    /// operations, file stream positions) into `dir` every checkpoint
    /// interval (see [`StreamingConf::checkpoint_interval`]), so that
    /// [`get_or_create`](Self::get_or_create) can resume after a crash.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) {
        *self.inner.checkpoint_dir.lock().expect("checkpoint lock") =
            Some(dir.as_ref().to_path_buf());
    }

    /// Spark's `getOrCreate`: builds the context with `create` (which
    /// defines the graph and calls [`checkpoint`](Self::checkpoint)), and
    /// when `dir` holds a complete checkpoint, `start` resumes from it: the
    /// operators get their state back, and the batches between the
    /// checkpoint and now are run again from the sources' recorded positions.
    ///
    /// Unlike Spark, the program's code is used as it is now; if its stateful
    /// operators differ from the checkpoint's, `start` fails with
    /// [`Error::Checkpoint`] saying what changed. The number of workers may
    /// change: keyed state is re-routed.
    ///
    /// # Errors
    ///
    /// Whatever `create` returns.
    #[doc(alias = "getOrCreate")]
    pub fn get_or_create(
        dir: impl AsRef<Path>,
        create: impl FnOnce() -> Result<StreamingContext>,
    ) -> Result<StreamingContext> {
        let ssc = create()?;
        let mut slot = ssc.inner.checkpoint_dir.lock().expect("checkpoint lock");
        if slot.is_none() {
            *slot = Some(dir.as_ref().to_path_buf());
        }
        drop(slot);
        *ssc.inner.recover.lock().expect("recover lock") = true;
        Ok(ssc)
    }

    /// Registers a listener for batch, receiver and output events (Spark's
    /// `addStreamingListener`). Listeners added after `start` see nothing.
    #[doc(alias = "addStreamingListener")]
    pub fn add_streaming_listener(&self, listener: Arc<dyn StreamingListener>) {
        self.inner
            .listeners
            .lock()
            .expect("listeners lock")
            .push(listener);
    }

    /// The statistics of the completed batches, oldest first (the last 1000).
    pub fn completed_batches(&self) -> Vec<BatchInfo> {
        self.shared().map(|s| s.bus.completed()).unwrap_or_default()
    }

    /// The receivers and their state: connected or not, the last error, and
    /// the records each has read (Spark's receiver table).
    pub fn receivers(&self) -> Vec<crate::ReceiverInfo> {
        self.shared().map(|s| s.bus.receivers()).unwrap_or_default()
    }

    /// The web UI's address, e.g. `http://127.0.0.1:4040`, while it runs.
    pub fn ui_url(&self) -> Option<String> {
        #[cfg(feature = "ui")]
        {
            let shared = self.shared()?;
            let ui = shared.ui.lock().expect("ui lock");
            ui.as_ref().map(|u| format!("http://{}", u.address()))
        }
        #[cfg(not(feature = "ui"))]
        None
    }

    /// The settings this context runs with.
    pub fn conf(&self) -> &StreamingConf {
        &self.inner.conf
    }

    /// The batch interval.
    pub fn batch_interval(&self) -> Duration {
        self.inner.conf.batch_interval
    }

    /// Adds to the DStream graph. The closure runs once on every worker when
    /// the context starts, and builds the same graph on each; it must create
    /// at least one output operation (`print`, `foreach_rdd`, ...) across all
    /// definitions. Several calls add their graphs side by side.
    ///
    /// In cluster mode each process also runs it once more at start, on a
    /// throwaway worker that never runs, to compare the shape of its graph
    /// with the other processes': keep side effects out of the closure (do
    /// them in `foreach_rdd` or before `define`).
    ///
    /// # Errors
    ///
    /// [`Error::IllegalState`] once the context has started or stopped, as
    /// Spark refuses new operations then.
    pub fn define<F>(&self, build: F) -> Result<()>
    where
        F: for<'s> Fn(&StreamingScope<'s>) + Send + Sync + 'static,
    {
        match &*self.state() {
            Lifecycle::Initialized => {}
            Lifecycle::Active(_) => {
                return Err(Error::IllegalState(
                    "adding new inputs, transformations and output operations after starting a \
                     context is not supported: define the whole graph before start()"
                        .into(),
                ))
            }
            Lifecycle::Stopped(_) => {
                return Err(Error::IllegalState(
                    "adding new inputs, transformations and output operations after stopping a \
                     context is not supported: create a new StreamingContext"
                        .into(),
                ))
            }
        }
        self.inner
            .definitions
            .lock()
            .expect("definitions lock")
            .push(Arc::new(build));
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, Lifecycle> {
        self.inner.state.lock().expect("lifecycle lock")
    }

    /// Starts the workers and the batch clock. The first batch is at the next
    /// multiple of the batch interval after now, as in Spark.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidGraph`] when no output operation was defined, or a
    ///   definition is impossible (e.g. a union of streams with different slides).
    /// - [`Error::Source`] when a source cannot start (e.g. an unreadable directory).
    /// - [`Error::IllegalState`] when the context was stopped before.
    ///
    /// Starting an active context again only logs a warning, as in Spark.
    pub fn start(&self) -> Result<()> {
        let mut state = self.state();
        match &*state {
            Lifecycle::Initialized => {}
            Lifecycle::Active(_) => {
                tracing::warn!("StreamingContext has already been started");
                return Ok(());
            }
            Lifecycle::Stopped(_) => {
                return Err(Error::IllegalState(
                    "StreamingContext has already been stopped and cannot be restarted: create a \
                     new one"
                        .into(),
                ))
            }
        }
        let definitions = self
            .inner
            .definitions
            .lock()
            .expect("definitions lock")
            .clone();
        if definitions.is_empty() {
            return Err(no_outputs());
        }
        let conf = &self.inner.conf;
        let now = self.inner.clock.now_ms();
        let interval = conf.batch_ms;
        let workers = conf.workers();
        let checkpoint_dir = self
            .inner
            .checkpoint_dir
            .lock()
            .expect("checkpoint lock")
            .clone();
        let restored = match (
            &checkpoint_dir,
            *self.inner.recover.lock().expect("recover lock"),
        ) {
            (Some(dir), true) => checkpoint::read_latest(dir)?,
            _ => None,
        };
        let (zero, resume, start_ms) = match &restored {
            Some(r) => {
                if r.commit.interval != interval {
                    return Err(Error::Checkpoint {
                        path: checkpoint_dir.clone().unwrap_or_default(),
                        message: format!(
                            "the checkpoint was written with a batch interval of {} ms, the \
                             program now has {interval} ms: keep the interval, or remove the \
                             checkpoint directory to start afresh",
                            r.commit.interval
                        ),
                        cause: None,
                    });
                }
                tracing::info!(
                    time = r.commit.time,
                    workers_before = r.commit.workers,
                    "resuming from checkpoint"
                );
                (r.commit.zero, r.commit.time, r.commit.zero)
            }
            None => {
                let first = (now / interval + 1) * interval;
                (first - interval, first - interval, now)
            }
        };
        let first = resume + interval;
        let recovering = *self.inner.recover.lock().expect("recover lock");
        let listeners = self.inner.listeners.lock().expect("listeners lock").clone();
        let bus = Bus::start(interval, self.inner.clock.is_system(), listeners);
        let mut shared = Shared::new(
            conf.clone(),
            self.inner.clock.clone(),
            zero,
            start_ms,
            workers,
            checkpoint_dir,
            restored,
            resume,
        );
        shared.recovering = recovering;
        shared.bus = bus;
        let config = match &conf.master {
            crate::conf::Master::Cluster {
                hosts,
                process,
                workers,
            } => {
                shared.cluster = true;
                shared.process = *process;
                shared.processes = hosts.len();
                shared.graph = graph_shape(&shared, &definitions);
                timely::Config {
                    communication: timely::CommunicationConfig::Cluster {
                        threads: *workers,
                        process: *process,
                        addresses: hosts.clone(),
                        report: false,
                        zerocopy: false,
                    },
                    worker: timely::WorkerConfig::default(),
                }
            }
            _ => timely::Config::process(workers),
        };
        let shared = Arc::new(shared);
        let worker_shared = shared.clone();
        let guards = start_timely(config, &conf.master, conf.connect_timeout, move |worker| {
            run_worker(worker, &worker_shared, &definitions)
        })?;

        // Every worker has built its graph and reported; decide together.
        let verdict = shared.await_build_reports();
        shared.decide(verdict.is_ok());
        let watcher_shared = shared.clone();
        let watcher = thread::Builder::new()
            .name("ember-watcher".into())
            .spawn(move || {
                // In a cluster, timely's communication threads panic when a
                // peer process goes away, and joining them re-raises it.
                let joined = catch_unwind(AssertUnwindSafe(move || guards.join()));
                match joined {
                    Ok(results) => {
                        for (index, r) in results.into_iter().enumerate() {
                            // `Ok(Err(_))`: the worker caught its own panic and reported it.
                            if let Err(message) = r {
                                watcher_shared.fail(Error::UserCode {
                                    worker: index,
                                    message,
                                });
                            }
                        }
                    }
                    Err(p) => watcher_shared.fail(peer_lost(&panic_message(&*p))),
                }
                watcher_shared.set_terminated();
            })
            .map_err(|e| Error::Internal(format!("cannot spawn the watcher thread: {e}")))?;
        drop(watcher);
        if let Err(e) = verdict {
            shared.await_terminated(None);
            *state = Lifecycle::Stopped(Some(shared));
            return Err(e);
        }
        tracing::info!(
            app = %conf.app_name,
            master = %conf.master,
            interval_ms = interval,
            first_batch = first,
            "StreamingContext started"
        );
        #[cfg(feature = "ui")]
        if let Some(address) = conf.ui_address() {
            match crate::ui::serve(
                address,
                shared.bus.clone(),
                conf.app_name.clone(),
                conf.backpressure_enabled(),
            ) {
                Ok(server) => *shared.ui.lock().expect("ui lock") = Some(server),
                // A UI that cannot start must not stop the job.
                Err(e) => tracing::warn!("no web UI: {e}"),
            }
        }
        if conf.stop_on_signals {
            crate::signals::watch(&shared);
        }
        shared
            .bus
            .post(Event::StreamingStarted(listener::wall_ms()));
        *state = Lifecycle::Active(shared);
        Ok(())
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        match &*self.state() {
            Lifecycle::Initialized | Lifecycle::Stopped(None) => None,
            Lifecycle::Active(s) | Lifecycle::Stopped(Some(s)) => Some(s.clone()),
        }
    }

    /// Stops the context. With `graceful`, receivers stop reading, the
    /// batch being received is closed now and every batch received is
    /// processed (and, with checkpointing, checkpointed), bounded by
    /// [`StreamingConf::graceful_stop_timeout`]. Without, the workers end at
    /// once: batches not yet complete are dropped. Either way this returns
    /// when the workers have ended. Stopping a context that never started
    /// only marks it stopped.
    ///
    /// Called from inside the program (e.g. in `foreach_rdd`), it asks the
    /// context to stop and returns at once.
    ///
    /// # Errors
    ///
    /// [`Error::StopTimeout`] when a graceful stop ran out of time; the
    /// context has then stopped at once.
    pub fn stop(&self, graceful: bool) -> Result<()> {
        let shared = {
            let mut state = self.state();
            match std::mem::replace(&mut *state, Lifecycle::Stopped(None)) {
                Lifecycle::Initialized => return Ok(()),
                Lifecycle::Stopped(s) => {
                    *state = Lifecycle::Stopped(s);
                    return Ok(());
                }
                Lifecycle::Active(s) => {
                    *state = Lifecycle::Stopped(Some(s.clone()));
                    s
                }
            }
        };
        shared.request_stop(graceful);
        if shared.is_worker_thread() {
            return Ok(());
        }
        if graceful {
            shared.await_graceful_stop()?;
        }
        shared.await_terminated(None);
        Ok(())
    }

    /// Blocks until the context stops, by [`stop`](Self::stop) or by a failure.
    ///
    /// # Errors
    ///
    /// The error that stopped the context: a source or output that failed, or
    /// a panic in the program's functions ([`Error::UserCode`]).
    /// [`Error::IllegalState`] if the context was never started.
    pub fn await_termination(&self) -> Result<()> {
        self.await_termination_or_timeout(None).map(|_| ())
    }

    /// Blocks until the context stops or `timeout` passes; `Ok(true)` when it
    /// stopped.
    ///
    /// # Errors
    ///
    /// As [`await_termination`](Self::await_termination).
    pub fn await_termination_or_timeout(
        &self,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<bool> {
        let shared = self.shared().ok_or_else(not_started)?;
        if !shared.await_terminated(timeout.into()) {
            return Ok(false);
        }
        {
            let mut state = self.state();
            if matches!(&*state, Lifecycle::Active(_)) {
                *state = Lifecycle::Stopped(Some(shared.clone()));
            }
        }
        match shared.take_error() {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    /// Blocks until the batch at `time` has been processed by every output
    /// operation (or the context has stopped). With a manual clock, advance
    /// the clock to `time` first.
    ///
    /// # Errors
    ///
    /// [`Error::IllegalState`] if the context never started, or if it stopped
    /// before completing that batch (the failure that stopped it, if any).
    pub fn await_batch(&self, time: Time) -> Result<()> {
        let shared = self.shared().ok_or_else(not_started)?;
        let mut p = shared.progress.lock().expect("progress lock");
        loop {
            if p.completed.is_some_and(|c| c >= time.milliseconds()) {
                return Ok(());
            }
            if p.terminated {
                drop(p);
                return Err(shared.take_error().unwrap_or_else(|| {
                    Error::IllegalState(format!(
                        "the context stopped before batch {time} completed"
                    ))
                }));
            }
            p = shared.progress_cv.wait(p).expect("progress lock");
        }
    }

    /// The time of the first batch, once started.
    pub fn first_batch_time(&self) -> Option<Time> {
        self.shared()
            .map(|s| Time::from_millis(s.zero() + s.conf.batch_ms))
    }

    /// The newest batch that every output operation has finished, if any.
    pub fn last_completed_batch(&self) -> Option<Time> {
        self.shared().and_then(|s| {
            s.progress
                .lock()
                .expect("progress lock")
                .completed
                .map(Time::from_millis)
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: let the workers end rather than run on unowned.
        if let Ok(Lifecycle::Active(s)) = self.state.get_mut().map(|s| &*s) {
            s.halt();
        }
    }
}

fn no_outputs() -> Error {
    Error::graph(
        "no output operations registered, so nothing to execute: add print(), foreach_rdd() or \
         save_as_text_files() to a stream",
    )
}

fn not_started() -> Error {
    Error::IllegalState("the StreamingContext has not been started: call start() first".into())
}

/// What a worker found while building its graph.
struct BuildReport {
    outputs: usize,
    error: Option<Error>,
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
    #[allow(clippy::too_many_arguments)]
    fn new(
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
    fn agreed_zero(&self, zero: u64) {
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

    fn wake_all(&self) {
        self.wakers
            .lock()
            .expect("wakers lock")
            .retain(|w| w.activate().is_ok());
        for t in self.threads.lock().expect("threads lock").iter() {
            t.unpark();
        }
    }

    fn is_worker_thread(&self) -> bool {
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
    fn request_stop(&self, graceful: bool) {
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
    fn control_update(&self, announced: &Option<Control>) -> Option<Control> {
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
    fn on_control(&self, message: &Control) {
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

    fn take_error(&self) -> Option<Error> {
        let slot = self.error.lock().expect("error lock");
        slot.clone()
    }

    fn report_build(&self, report: BuildReport) -> bool {
        let mut b = self.build.lock().expect("build lock");
        b.reports.push(report);
        self.build_cv.notify_all();
        while b.go.is_none() {
            b = self.build_cv.wait(b).expect("build lock");
        }
        b.go == Some(true)
    }

    fn await_build_reports(&self) -> Result<()> {
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

    fn decide(&self, go: bool) {
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
    fn part_written(&self, time: u64, operators: Vec<String>) -> Result<()> {
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

    fn set_completed(&self, through: u64) {
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
    fn await_graceful_stop(&self) -> Result<()> {
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

    fn set_terminated(&self) {
        self.bus.stopped();
        #[cfg(feature = "ui")]
        drop(self.ui.lock().expect("ui lock").take());
        let mut p = self.progress.lock().expect("progress lock");
        p.terminated = true;
        self.progress_cv.notify_all();
    }

    /// Waits for the workers to end; false on timeout.
    fn await_terminated(&self, timeout: Option<Duration>) -> bool {
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

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Starts timely's workers; in a cluster, fails with the unreachable
/// addresses when the processes cannot connect within the timeout.
fn start_timely<F, T>(
    config: timely::Config,
    master: &crate::conf::Master,
    timeout: Duration,
    work: F,
) -> Result<timely::communication::initialize::WorkerGuards<T>>
where
    F: Fn(&mut timely::worker::Worker) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    let crate::conf::Master::Cluster { hosts, process, .. } = master else {
        return timely::execute(config, work)
            .map_err(|e| Error::Internal(format!("timely failed to start its workers: {e}")));
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    thread::Builder::new()
        .name("ember-connect".into())
        .spawn(move || {
            // timely reports its connection progress on stdout; keep the
            // program's output clean by sending it to stderr meanwhile.
            let restore = stdout_to_stderr();
            let started = timely::execute(config, work);
            drop(restore);
            let _ = tx.send(started);
        })
        .map_err(|e| Error::Internal(format!("cannot start the connecting thread: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(guards)) => Ok(guards),
        Ok(Err(e)) => Err(Error::Cluster(format!(
            "process {process} cannot join the cluster {hosts:?}: {e}"
        ))),
        Err(_) => {
            let unreachable: Vec<&String> = hosts
                .iter()
                .enumerate()
                .filter(|(i, _)| i != process)
                .filter(|(_, h)| {
                    !h.to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .is_some_and(|a| {
                            std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok()
                        })
                })
                .map(|(_, h)| h)
                .collect();
            Err(Error::Cluster(format!(
                "process {process} could not connect to the other processes within \
                 {timeout:?}; not answering: {unreachable:?}. Start every process with \
                 the same --hosts, each with its own --process, and check the addresses are \
                 reachable"
            )))
        }
    }
}

/// The error for a broken connection between processes.
fn peer_lost(detail: &str) -> Error {
    Error::Cluster(format!(
        "the connection to another process broke ({detail}); a process has probably stopped or \
         died: stop every process and start them all again"
    ))
}

/// Whether a worker's panic came from timely's communication layer.
fn is_communication_panic(message: &str) -> bool {
    message.contains("MergeQueue poisoned")
        || message.contains("timely communication error")
        || message.contains("Send thread panic")
}

/// Points stdout at stderr until the returned guard is dropped.
#[cfg(unix)]
fn stdout_to_stderr() -> Option<impl Drop> {
    use std::io::Write;
    struct Restore(i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::io::stdout().flush();
            // SAFETY: restores the descriptor saved below; both are valid.
            unsafe {
                libc::dup2(self.0, 1);
                libc::close(self.0);
            }
        }
    }
    let _ = std::io::stdout().flush();
    // SAFETY: plain descriptor calls on the process's own stdout/stderr.
    unsafe {
        let saved = libc::dup(1);
        if saved < 0 || libc::dup2(2, 1) < 0 {
            return None;
        }
        Some(Restore(saved))
    }
}

#[cfg(not(unix))]
fn stdout_to_stderr() -> Option<()> {
    None
}

/// What every worker of a cluster tells every other before building its
/// graph.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Hello {
    process: usize,
    /// The zero time this process proposes (or restored).
    zero: u64,
    /// The checkpoint this process resumes from, if any.
    restored: Option<u64>,
    /// The shape of this process's graph (see [`graph_shape`]).
    graph: String,
}

/// What a process of a cluster tells the others about stopping.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Control {
    process: usize,
    kind: ControlKind,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum ControlKind {
    /// Stopping gracefully: sources stop at this batch time.
    StopAt(u64),
    /// Stopped at once.
    Halt,
    /// Stopped by this error.
    Failed(String),
}

/// The cluster's control dataflow: every worker hears every process's
/// [`Control`] messages, sent by each process's first worker.
fn control_dataflow(
    worker: &mut timely::worker::Worker,
    shared: &Arc<Shared>,
) -> timely::dataflow::InputHandle<u64, timely::container::CapacityContainerBuilder<Vec<Control>>> {
    use timely::dataflow::operators::vec::Broadcast;
    use timely::dataflow::operators::{Input, Inspect};

    worker.dataflow::<u64, _, _>(|scope| {
        let (input, stream) = scope.new_input::<Vec<Control>>();
        let shared = shared.clone();
        stream.broadcast().inspect(move |m| shared.on_control(m));
        input
    })
}

/// Sends a process's [`Control`] messages when its stop changes.
struct Announcer {
    /// The first worker of each process of a cluster holds the input.
    input: Option<
        timely::dataflow::InputHandle<
            u64,
            timely::container::CapacityContainerBuilder<Vec<Control>>,
        >,
    >,
    announced: Option<Control>,
}

impl Announcer {
    fn announce(&mut self, shared: &Shared) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        if let Some(message) = shared.control_update(&self.announced) {
            input.send(message.clone());
            input.flush();
            self.announced = Some(message);
        }
    }
}

/// Sends `hello` to every worker of the cluster and gathers theirs.
fn exchange_hellos(worker: &mut timely::worker::Worker, hello: Hello) -> Vec<Hello> {
    use std::cell::RefCell;
    use std::rc::Rc;
    use timely::dataflow::operators::vec::Broadcast;
    use timely::dataflow::operators::{Input, Inspect, Probe};

    let seen = Rc::new(RefCell::new(Vec::new()));
    let (mut input, probe) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, stream) = scope.new_input::<Vec<Hello>>();
        let seen = seen.clone();
        let (probe, _) = stream
            .broadcast()
            .inspect(move |h| seen.borrow_mut().push(h.clone()))
            .probe();
        (input, probe)
    });
    input.send(hello);
    input.advance_to(1);
    drop(input);
    while probe.less_than(&1) {
        worker.step();
    }
    let all = seen.borrow().clone();
    all
}

/// Checks that every process built the same graph and resumes from the same
/// checkpoint, and returns the zero time: the checkpoint's, or on a fresh
/// start the latest proposal (every process proposed the batch boundary at
/// or before the moment it had connected), so batch times are the same
/// everywhere.
fn agree(mine: &Hello, all: &[Hello]) -> Result<u64> {
    for other in all {
        if other.graph != mine.graph {
            return Err(Error::Cluster(format!(
                "process {} and process {} built different graphs (process {}: {}; process {}: \
                 {}): every process must run the same program with the same arguments",
                mine.process.min(other.process),
                mine.process.max(other.process),
                mine.process,
                mine.graph,
                other.process,
                other.graph
            )));
        }
        if other.restored != mine.restored {
            let show = |r: Option<u64>| match r {
                Some(t) => format!("resumes from the checkpoint at {t}"),
                None => "finds no checkpoint".to_string(),
            };
            return Err(Error::Cluster(format!(
                "process {} {} but process {} {}: every process must see the same checkpoint \
                 directory (the same path on one machine, or a shared file system)",
                mine.process,
                show(mine.restored),
                other.process,
                show(other.restored)
            )));
        }
    }
    Ok(all.iter().map(|h| h.zero).max().unwrap_or(mine.zero))
}

/// The shape of the graph `definitions` build, to compare across the
/// processes of a cluster: the timely operators and channels, the stateful
/// operators and the outputs. It is built once more, on a throwaway worker
/// of this thread with a context of its own, and never run.
fn graph_shape(shared: &Shared, definitions: &[Definition]) -> String {
    let scratch = Arc::new(Shared::new(
        shared.conf.clone(),
        shared.clock.clone(),
        shared.zero(),
        shared.start_ms,
        shared.workers,
        shared.checkpoint_dir.clone(),
        None,
        shared.resume(),
    ));
    let index = shared.process * shared.workers;
    let peers = shared.processes * shared.workers;
    let allocator = timely::communication::allocator::Allocator::Thread(Default::default());
    let mut worker = timely::worker::Worker::new(Default::default(), allocator, None);
    let built = catch_unwind(AssertUnwindSafe(|| {
        worker.dataflow::<u64, _, _>(|scope| {
            let ctx = WorkerCtx::new(scratch.clone(), index, peers, ProbeHandle::new());
            let ss = StreamingScope::new(scope, ctx.clone());
            for d in definitions {
                d(&ss);
            }
            (ctx.stateful_ids(), ctx.outputs())
        })
    }));
    match built {
        Ok((stateful, outputs)) => format!(
            "{} timely operators and channels; stateful operators {stateful:?}; output \
             operations: {outputs}",
            worker.peek_identifier()
        ),
        // The real build reports the panic; here the shape only has to differ.
        Err(p) => format!("a panic while defining: {}", panic_message(&*p)),
    }
}

/// One worker's life: build the graph, agree to go, step until done.
fn run_worker(
    worker: &mut timely::worker::Worker,
    shared: &Arc<Shared>,
    definitions: &[Definition],
) -> std::result::Result<(), String> {
    shared
        .threads
        .lock()
        .expect("threads lock")
        .push(thread::current());
    let index = worker.index();
    let peers = worker.peers();
    if shared.cluster {
        // Connecting may have taken a while: on a fresh start each process
        // proposes the batch boundary before now, so the first batch
        // follows the connection instead of being already due.
        let zero = match shared.restored {
            Some(_) => shared.zero(),
            None => {
                let interval = shared.conf.batch_ms;
                let now = shared.clock.now_ms().max(shared.zero());
                now / interval * interval
            }
        };
        let hello = Hello {
            process: shared.process,
            zero,
            restored: shared.restored.as_ref().map(|r| r.commit.time),
            graph: shared.graph.clone(),
        };
        match agree(&hello, &exchange_hellos(worker, hello.clone())) {
            Ok(zero) => shared.agreed_zero(zero),
            Err(e) => {
                shared.report_build(BuildReport {
                    outputs: 1,
                    error: Some(e),
                });
                return Ok(());
            }
        }
    }
    // Built before the program's graph, so its channels are the same on
    // every process whatever the graphs are.
    let mut control = Announcer {
        input: shared
            .cluster
            .then(|| control_dataflow(worker, shared))
            .filter(|_| index % shared.workers == 0),
        announced: None,
    };
    // The first worker of each process reports completed batches.
    let reporter = index % shared.workers == 0;
    let probe = ProbeHandle::new();
    let report = worker.dataflow::<u64, _, _>(|scope| {
        let ctx = WorkerCtx::new(shared.clone(), index, peers, probe.clone());
        let ss = StreamingScope::new(scope, ctx.clone());
        let built = catch_unwind(AssertUnwindSafe(|| {
            for d in definitions {
                d(&ss);
            }
        }));
        ctx.settle_checkpoint_interval();
        ctx.check_restored_graph();
        let error = match built {
            Ok(()) => ctx.take_error(),
            Err(p) => Some(Error::UserCode {
                worker: index,
                message: format!("while defining the graph: {}", panic_message(&*p)),
            }),
        };
        (
            BuildReport {
                outputs: ctx.outputs(),
                error,
            },
            ctx,
        )
    });
    let (report, ctx) = report;
    if !shared.report_build(report) {
        return Ok(());
    }
    let interval = shared.conf.batch_ms;
    let zero = shared.zero();
    let every = ctx.checkpoint_every.get();
    let operators = ctx.stateful_ids();
    // The next checkpoint time: the first multiple of `every` after the resume point.
    let mut next_checkpoint =
        (every > 0).then(|| zero + ((shared.resume() - zero) / every + 1) * every);
    let mut written_through = shared.resume();
    let ran = catch_unwind(AssertUnwindSafe(|| {
        while !shared.aborted() {
            let more = worker.step_or_park(Some(PARK));
            if let Some(next) = next_checkpoint.as_mut() {
                // Every batch before the frontier is complete on every worker,
                // so every operator has staged its state for it.
                let done_below = probe
                    .with_frontier(|f| f.first().copied())
                    .unwrap_or_else(|| shared.stop_at());
                // A graceful stop's last batch is checkpointed too.
                let last = shared.final_checkpoint.load(Ordering::Acquire);
                let mut due = Vec::new();
                while *next < done_below {
                    due.push(*next);
                    *next += every;
                }
                if last > written_through && last < done_below && !due.contains(&last) {
                    due.push(last);
                    due.sort_unstable();
                }
                for t in due {
                    if shared.aborted() {
                        break;
                    }
                    let part = ctx.staged.borrow_mut().remove(&t).unwrap_or_default();
                    let dir = shared.checkpoint_dir.as_ref().expect("checkpointing is on");
                    let written = checkpoint::write_part(dir, t, index, &part)
                        .and_then(|()| shared.part_written(t, operators.clone()));
                    if let Err(e) = written {
                        shared.fail(e);
                        break;
                    }
                    written_through = t;
                }
                ctx.staged
                    .borrow_mut()
                    .retain(|t, _| *t >= *next || *t == last);
            }
            if reporter {
                let frontier = probe.with_frontier(|f| f.first().copied());
                let through = match frontier {
                    Some(f) if f > zero + interval => {
                        Some(zero + (f - zero - 1) / interval * interval)
                    }
                    Some(_) => None,
                    None => shared.stop_at().checked_sub(interval).filter(|t| *t > zero),
                };
                if let Some(t) = through {
                    shared.set_completed(t);
                }
                control.announce(shared);
                if frontier.is_none() {
                    // The program's graph is done everywhere: nothing more to say.
                    control.input = None;
                }
            }
            if !more {
                break;
            }
        }
    }));
    let ended = match ran {
        Ok(()) => Ok(()),
        Err(p) => {
            let message = panic_message(&*p);
            if shared.cluster && is_communication_panic(&message) {
                shared.fail(peer_lost(&message));
            } else {
                shared.fail(Error::UserCode {
                    worker: index,
                    message: message.clone(),
                });
            }
            Err(message)
        }
    };
    // A failure or a stop at once reaches the other processes while timely
    // steps the dataflows to their end after this returns.
    control.announce(shared);
    ended
}
