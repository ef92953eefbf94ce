//! The streaming context: lifecycle, workers, and the batch clock's agreement.

use std::net::ToSocketAddrs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use timely::dataflow::ProbeHandle;

use crate::checkpoint;
use crate::clock::Clock;
use crate::conf::StreamingConf;
use crate::error::{Error, Result};
use crate::listener::{self, BatchInfo, Bus, Event, StreamingListener};
use crate::runtime::{no_outputs, BuildReport, Control, Shared};
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
        self.shared()
            .map(|s| s.bus().completed())
            .unwrap_or_default()
    }

    /// The receivers and their state: connected or not, the last error, and
    /// the records each has read (Spark's receiver table).
    pub fn receivers(&self) -> Vec<crate::ReceiverInfo> {
        self.shared()
            .map(|s| s.bus().receivers())
            .unwrap_or_default()
    }

    /// The web UI's address, e.g. `http://127.0.0.1:4040`, while it runs.
    pub fn ui_url(&self) -> Option<String> {
        #[cfg(feature = "ui")]
        {
            let shared = self.shared()?;
            shared.ui_address().map(|a| format!("http://{a}"))
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
    /// - [`Error::Config`] when the web UI's address was asked for (see
    ///   [`StreamingConf::ui`]) and cannot be used.
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
        crate::logging::ensure_default(self.inner.conf.default_logging);
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
        // Bound first: an asked-for address that cannot be used fails here,
        // before anything runs.
        #[cfg(feature = "ui")]
        let ui_socket = match conf.ui_address() {
            Some(address) => crate::ui::bind(address, conf.ui_asked)?,
            None => None,
        };
        let shared = Arc::new(self.prepare_runtime(&definitions)?);
        let worker_shared = shared.clone();
        let guards = start_timely(
            timely_config(&conf.master, conf.workers()),
            &conf.master,
            conf.connect_timeout,
            move |worker| run_worker(worker, &worker_shared, &definitions),
        )?;
        // Watched from now on: a worker thread that dies while building
        // (a peer vanished) fails the start instead of hanging it.
        watch_workers(&shared, guards)?;
        // Every worker has built its graph and reported; decide together.
        let verdict = shared.await_build_reports();
        shared.decide(verdict.is_ok());
        if let Err(e) = verdict {
            // The workers let go at once; one stuck on a vanished peer is
            // not waited for past a moment.
            shared.await_terminated(Some(Duration::from_secs(2)));
            *state = Lifecycle::Stopped(Some(shared));
            return Err(e);
        }
        tracing::info!(
            app = %conf.app_name,
            master = %conf.master,
            interval_ms = conf.batch_ms,
            first_batch = shared.resume() + conf.batch_ms,
            "StreamingContext started"
        );
        #[cfg(feature = "ui")]
        if let Some(socket) = ui_socket {
            start_ui(&shared, socket);
        }
        if conf.stop_on_signals {
            crate::signals::watch(&shared);
        }
        shared
            .bus()
            .post(Event::StreamingStarted(listener::wall_ms()));
        *state = Lifecycle::Active(shared);
        Ok(())
    }

    /// The runtime of this start: the checkpoint to resume from (with
    /// `get_or_create`), the batch timeline, the statistics bus and, in a
    /// cluster, this process's place and graph shape.
    fn prepare_runtime(&self, definitions: &[Definition]) -> Result<Shared> {
        let conf = &self.inner.conf;
        let interval = conf.batch_ms;
        let checkpoint_dir = self
            .inner
            .checkpoint_dir
            .lock()
            .expect("checkpoint lock")
            .clone();
        let mut recovering = *self.inner.recover.lock().expect("recover lock");
        // One process clears or sets aside what every process shares.
        let first_process = match &conf.master {
            crate::conf::Master::Cluster { process, .. } => *process == 0,
            _ => true,
        };
        if let (Some(dir), true) = (&checkpoint_dir, conf.fresh_start) {
            recovering = false;
            if first_process {
                match checkpoint::set_aside(dir)? {
                    Some(aside) => tracing::warn!(
                        "starting afresh as asked (--fresh-start): what {} held is now in {}",
                        dir.display(),
                        aside.display()
                    ),
                    None => tracing::info!(
                        "starting afresh as asked (--fresh-start): {} held nothing to set aside",
                        dir.display()
                    ),
                }
            }
        }
        let restored = match (&checkpoint_dir, recovering) {
            (Some(dir), true) => checkpoint::read_latest(dir)?,
            _ => None,
        };
        if let (Some(dir), true, true) = (&checkpoint_dir, recovering, first_process) {
            // No process of this run writes before all have read (they
            // connect first), so the stopped run's leftovers can go now.
            checkpoint::clear_after(dir, restored.as_ref().map(|r| r.commit.time))?;
        }
        let (zero, resume, start_ms) = match &restored {
            Some(r) => {
                if r.commit.interval != interval {
                    return Err(Error::Checkpoint {
                        path: checkpoint_dir.clone().unwrap_or_default(),
                        message: format!(
                            "the checkpoint was written with a batch interval of {} ms, the \
                             program now has {interval} ms: keep the interval, or {}",
                            r.commit.interval,
                            checkpoint::FRESH_START
                        ),
                        cause: None,
                    });
                }
                // The batches after the checkpoint, up to now, run again
                // (those before a crash) or for the first time (those
                // missed while the program was down).
                let now = self.inner.clock.now_ms();
                let again = now.saturating_sub(r.commit.time) / interval;
                tracing::info!(
                    "resuming from the checkpoint at {} in {}: its state is restored and the {again} \
                     batch(es) since then run now, from the sources' recorded positions{}",
                    Time::from_millis(r.commit.time),
                    checkpoint_dir.as_deref().unwrap_or(Path::new("")).display(),
                    if r.commit.workers == conf.master.all_workers() {
                        String::new()
                    } else {
                        format!(
                            " (keyed state re-routed from {} to {} workers)",
                            r.commit.workers,
                            conf.master.all_workers()
                        )
                    }
                );
                (r.commit.zero, r.commit.time, r.commit.zero)
            }
            None => {
                if let (Some(dir), true) = (&checkpoint_dir, recovering) {
                    let why = if dir.exists() {
                        "no checkpoint there has completed yet"
                    } else {
                        "the directory does not exist yet"
                    };
                    tracing::info!(
                        "starting from empty state: nothing to resume from in {} ({why}); \
                         a checkpoint is taken every checkpoint interval",
                        dir.display()
                    );
                }
                let now = self.inner.clock.now_ms();
                let first = (now / interval + 1) * interval;
                (first - interval, first - interval, now)
            }
        };
        let listeners = self.inner.listeners.lock().expect("listeners lock").clone();
        let mut shared = Shared::new(
            conf.clone(),
            self.inner.clock.clone(),
            zero,
            start_ms,
            conf.workers(),
            checkpoint_dir,
            restored,
            resume,
        );
        shared.set_recovering(recovering);
        shared.set_bus(Bus::start(
            interval,
            self.inner.clock.is_system(),
            listeners,
        ));
        if let crate::conf::Master::Cluster { hosts, process, .. } = &conf.master {
            shared.join_cluster(*process, hosts.len());
            let graph = graph_shape(&shared, definitions);
            shared.set_graph(graph);
        }
        Ok(shared)
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
    #[doc(alias = "awaitTermination")]
    pub fn await_termination(&self) -> Result<()> {
        self.await_termination_or_timeout(None).map(|_| ())
    }

    /// Blocks until the context stops or `timeout` passes; `Ok(true)` when it
    /// stopped.
    ///
    /// # Errors
    ///
    /// As [`await_termination`](Self::await_termination).
    #[doc(alias = "awaitTerminationOrTimeout")]
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
        shared.await_completed(time.milliseconds())
    }

    /// The time of the first batch, once started.
    pub fn first_batch_time(&self) -> Option<Time> {
        self.shared()
            .map(|s| Time::from_millis(s.zero() + s.conf().batch_ms))
    }

    /// The batch time of the checkpoint this run resumed from, once started
    /// ([`get_or_create`](Self::get_or_create) found one); `None` on a fresh
    /// start. Spark's `getOrCreate` tells the same by not calling its
    /// creating function; ember always calls it, so ask here.
    pub fn resumed_from(&self) -> Option<Time> {
        self.shared().and_then(|s| {
            s.restored()
                .as_ref()
                .map(|r| Time::from_millis(r.commit.time))
        })
    }

    /// The newest batch that every output operation has finished, if any.
    pub fn last_completed_batch(&self) -> Option<Time> {
        self.shared()
            .and_then(|s| s.last_completed())
            .map(Time::from_millis)
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

fn not_started() -> Error {
    Error::IllegalState("the StreamingContext has not been started: call start() first".into())
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
    quiet_communication_panics();
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
                            // A free loopback port in the ephemeral range can
                            // connect to itself (TCP simultaneous open):
                            // that is no peer answering.
                            std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1))
                                .is_ok_and(|s| s.local_addr().ok() != s.peer_addr().ok())
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

/// timely's configuration for `master`: threads in this process, or this
/// process's place among the cluster's.
fn timely_config(master: &crate::conf::Master, workers: usize) -> timely::Config {
    match master {
        crate::conf::Master::Cluster {
            hosts,
            process,
            workers,
        } => timely::Config {
            communication: timely::CommunicationConfig::Cluster {
                threads: *workers,
                process: *process,
                addresses: hosts.clone(),
                report: false,
                zerocopy: false,
            },
            worker: timely::WorkerConfig::default(),
        },
        _ => timely::Config::process(workers),
    }
}

/// Joins the workers on a thread of its own: a worker that ended with a
/// panic, or (in a cluster) a broken connection, fails the context; the
/// context is terminated when all have ended.
fn watch_workers(
    shared: &Arc<Shared>,
    guards: timely::communication::initialize::WorkerGuards<std::result::Result<(), String>>,
) -> Result<()> {
    let shared = shared.clone();
    thread::Builder::new()
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
                            shared.fail(Error::UserCode {
                                worker: index,
                                message,
                            });
                        }
                    }
                }
                Err(p) => shared.fail(peer_lost(&panic_message(&*p))),
            }
            shared.set_terminated();
        })
        .map(drop)
        .map_err(|e| Error::Internal(format!("cannot spawn the watcher thread: {e}")))
}

/// Serves the web UI on its bound socket while the context runs; a UI that
/// cannot start then (no thread, no runtime) only warns: the job runs.
#[cfg(feature = "ui")]
fn start_ui(shared: &Shared, socket: crate::ui::UiSocket) {
    let conf = shared.conf();
    match crate::ui::serve(
        socket,
        shared.bus().clone(),
        conf.app_name.clone(),
        conf.backpressure_enabled(),
        crate::ui::Limits::new(conf.ui_max_connections),
    ) {
        Ok(server) => shared.set_ui(server),
        Err(e) => tracing::warn!("no web UI: {e}"),
    }
}

/// The error for a broken connection between processes.
fn peer_lost(detail: &str) -> Error {
    let lost = LOST_PEER.load(std::sync::atomic::Ordering::Acquire);
    let who = if lost == usize::MAX {
        "another process".to_string()
    } else {
        format!("process {lost}")
    };
    Error::Cluster(format!(
        "the connection to {who} broke ({detail}); a process has probably stopped or died: stop \
         every process and start them all again"
    ))
}

/// The first process whose connection broke, as timely's network threads
/// (named after the process at the other end) report it; `usize::MAX`
/// while none has.
static LOST_PEER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);

/// Whether a worker's panic came from timely's communication layer.
fn is_communication_panic(message: &str) -> bool {
    message.contains("MergeQueue")
        || message.contains("timely communication error")
        || message.contains("Send thread panic")
        || message.contains("Recv thread panic")
        || message.contains("Clean shutdown followed by data")
}

/// In a cluster, a peer that goes away makes timely's network threads and
/// the workers reading from them panic; ember turns that into one
/// `cluster:` error. This keeps those panics' messages off stderr (they go
/// to the log at DEBUG); every other panic is reported as before.
fn quiet_communication_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = panic_message(info.payload());
            let name = thread::current().name().map(str::to_string);
            let network_thread = name
                .as_deref()
                .is_some_and(|n| n.starts_with("timely:send") || n.starts_with("timely:recv"));
            if let Some(peer) = name
                .as_deref()
                .filter(|_| network_thread)
                .and_then(|n| n.rsplit('-').next())
                .and_then(|i| i.parse::<usize>().ok())
            {
                let _ = LOST_PEER.compare_exchange(
                    usize::MAX,
                    peer,
                    std::sync::atomic::Ordering::AcqRel,
                    std::sync::atomic::Ordering::Acquire,
                );
            }
            // Also the threads timely connects with ("failed to decode
            // worker index" when a peer dies mid-handshake).
            let in_timely_network = info
                .location()
                .is_some_and(|l| l.file().contains("timely_communication"));
            if network_thread || in_timely_network || is_communication_panic(&message) {
                tracing::debug!("timely: {message}");
                return;
            }
            previous(info);
        }));
    });
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

/// Sends `hello` to every worker of the cluster and gathers theirs; `Err`
/// with the hellos heard when not all came by `deadline`.
fn exchange_hellos(
    worker: &mut timely::worker::Worker,
    hello: Hello,
    deadline: std::time::Instant,
) -> std::result::Result<Vec<Hello>, Vec<Hello>> {
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
        if std::time::Instant::now() >= deadline {
            let heard = seen.borrow().clone();
            return Err(heard);
        }
        worker.step_or_park(Some(Duration::from_millis(10)));
    }
    let all = seen.borrow().clone();
    Ok(all)
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
        shared.conf().clone(),
        shared.clock().clone(),
        shared.zero(),
        shared.start_ms(),
        shared.workers(),
        shared.checkpoint_dir().clone(),
        None,
        shared.resume(),
    ));
    let index = shared.process() * shared.workers();
    let peers = shared.processes() * shared.workers();
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

/// One worker's life: join the cluster, build the graph, agree to go, step
/// until done.
fn run_worker(
    worker: &mut timely::worker::Worker,
    shared: &Arc<Shared>,
    definitions: &[Definition],
) -> std::result::Result<(), String> {
    shared.register_worker_thread();
    let index = worker.index();
    // In a cluster a peer can vanish at any moment of the start; timely's
    // channels then panic in this worker. That is a build failure to report
    // (so `start` returns it), not a worker that silently never reports.
    let built = catch_unwind(AssertUnwindSafe(|| {
        if shared.is_cluster() && !join_cluster(worker, shared) {
            return None;
        }
        // Built before the program's graph, so its channels are the same on
        // every process whatever the graphs are.
        let control = Announcer {
            input: shared
                .is_cluster()
                .then(|| control_dataflow(worker, shared))
                .filter(|_| index % shared.workers() == 0),
            announced: None,
        };
        let probe = ProbeHandle::new();
        let before: Vec<usize> = worker.installed_dataflows();
        let (report, ctx) = build_graph(worker, shared, definitions, &probe);
        Some((control, probe, before, report, ctx))
    }));
    // A start that is called off leaves nothing for timely to step: with a
    // peer gone, its dataflows could never complete.
    let drop_all = |worker: &mut timely::worker::Worker| drop_dataflows(worker, &[]);
    let (mut control, probe, before, report, ctx) = match built {
        Ok(Some(built)) => built,
        Ok(None) => {
            drop_all(worker);
            return Ok(());
        }
        Err(payload) => {
            let message = panic_message(&*payload);
            let error = if is_communication_panic(&message) {
                peer_lost(&message)
            } else {
                Error::UserCode {
                    worker: index,
                    message,
                }
            };
            shared.report_build(BuildReport {
                outputs: 1,
                error: Some(error),
            });
            drop_all(worker);
            return Ok(());
        }
    };
    if !shared.report_build(report) {
        drop_all(worker);
        return Ok(());
    }
    let mut checkpoints = CheckpointScheduler::new(shared, &ctx);
    // The first worker of each process reports completed batches.
    let reporter = index % shared.workers() == 0;
    let mut meter = shared
        .conf()
        .backpressure
        .then(|| BusyClock::new(worker, shared, index % shared.workers()));
    let ran = catch_unwind(AssertUnwindSafe(|| {
        while !shared.aborted() {
            let more = match meter.as_mut() {
                Some(m) => m.step(worker),
                None => worker.step_or_park(Some(PARK)),
            };
            let stepped = meter.as_ref().map(|_| Instant::now());
            let frontier = probe.with_frontier(|f| f.first().copied());
            checkpoints.write_due(shared, &ctx, frontier);
            if reporter {
                report_completed(shared, frontier);
                control.announce(shared);
                if frontier.is_none() {
                    // The program's graph is done everywhere: nothing more to say.
                    control.input = None;
                }
            }
            if let (Some(m), Some(from)) = (meter.as_ref(), stepped) {
                m.housekept(from);
            }
            if !more {
                break;
            }
        }
    }));
    let ended = ran.map_err(|p| worker_panicked(shared, index, &*p));
    if shared.aborted() {
        // A stop at once or a failure: the program's dataflow is dropped
        // rather than stepped to its end, so no more of its batches run.
        drop_dataflows(worker, &before);
    }
    // A failure or a stop at once reaches the other processes while timely
    // steps the dataflows to their end after this returns.
    control.announce(shared);
    ended
}

/// Measures how long a worker works, for backpressure. A timely step
/// either parks or runs what is active, never both, and what it ran is
/// still listed as active until the next step. So the worker takes steps
/// that never park, counted as work as they go, while they run something;
/// when one ran nothing, it takes a step that may park, which counts only
/// if it ran something after all (input that came while it looked). The
/// bookkeeping between steps is work too.
struct BusyClock {
    activations: std::rc::Rc<std::cell::RefCell<timely::scheduling::Activations>>,
    meter: Arc<crate::rate::BusyMeter>,
    slot: usize,
}

impl BusyClock {
    fn new(worker: &timely::worker::Worker, shared: &Shared, slot: usize) -> Self {
        BusyClock {
            activations: worker.activations(),
            meter: shared.busy().clone(),
            slot,
        }
    }

    /// Whether the last step ran anything.
    fn ran(&self) -> bool {
        let ran = std::cell::Cell::new(false);
        self.activations.borrow().map_active(|_| ran.set(true));
        ran.get()
    }

    /// One step, parking when there is nothing to do; whether dataflows
    /// remain, as `step_or_park` says.
    fn step(&mut self, worker: &mut timely::worker::Worker) -> bool {
        let began = Instant::now();
        self.meter.begin(self.slot, began);
        let more = worker.step();
        let stepped = Instant::now();
        self.meter.end(self.slot, stepped);
        if self.ran() {
            return more;
        }
        let more = worker.step_or_park(Some(PARK));
        if self.ran() {
            self.meter.add(self.slot, stepped.elapsed());
        }
        more
    }

    /// The bookkeeping after a step is done (counted after the step, so a
    /// batch reported complete counts the step that completed it).
    fn housekept(&self, from: Instant) {
        self.meter.add(self.slot, from.elapsed());
    }
}

/// Drops the worker's dataflows but those in `keep`, so timely does not
/// step them to their end.
fn drop_dataflows(worker: &mut timely::worker::Worker, keep: &[usize]) {
    for id in worker.installed_dataflows() {
        if !keep.contains(&id) {
            worker.drop_dataflow(id);
        }
    }
}

/// Agrees with the other processes on the zero time, the graph and the
/// checkpoint; false (after reporting why) when they disagree.
fn join_cluster(worker: &mut timely::worker::Worker, shared: &Shared) -> bool {
    // Connecting may have taken a while: on a fresh start each process
    // proposes the batch boundary before now, so the first batch follows
    // the connection instead of being already due.
    let zero = match shared.restored() {
        Some(_) => shared.zero(),
        None => {
            let interval = shared.conf().batch_ms;
            let now = shared.clock().now_ms().max(shared.zero());
            now / interval * interval
        }
    };
    let hello = Hello {
        process: shared.process(),
        zero,
        restored: shared.restored().as_ref().map(|r| r.commit.time),
        graph: shared.graph().to_string(),
    };
    let timeout = shared.conf().connect_timeout;
    let deadline = std::time::Instant::now() + timeout;
    let agreed = match exchange_hellos(worker, hello.clone(), deadline) {
        Ok(all) => agree(&hello, &all),
        Err(heard) => {
            let processes = match &shared.conf().master {
                crate::conf::Master::Cluster { hosts, .. } => hosts.len(),
                _ => 1,
            };
            let silent: Vec<usize> = (0..processes)
                .filter(|p| !heard.iter().any(|h| h.process == *p))
                .collect();
            Err(Error::Cluster(format!(
                "process {}: no word from process(es) {silent:?} within {timeout:?} after \
                 connecting; a process has probably stopped or died during the start: stop \
                 every process and start them all again",
                shared.process()
            )))
        }
    };
    match agreed {
        Ok(zero) => {
            shared.agreed_zero(zero);
            true
        }
        Err(e) => {
            shared.report_build(BuildReport {
                outputs: 1,
                error: Some(e),
            });
            false
        }
    }
}

/// Builds the program's graph on this worker; what went wrong, if anything,
/// is in the report.
fn build_graph(
    worker: &mut timely::worker::Worker,
    shared: &Arc<Shared>,
    definitions: &[Definition],
    probe: &ProbeHandle<u64>,
) -> (BuildReport, std::rc::Rc<WorkerCtx>) {
    let index = worker.index();
    let peers = worker.peers();
    worker.dataflow::<u64, _, _>(|scope| {
        let ctx = WorkerCtx::new(shared.clone(), index, peers, probe.clone());
        let ss = StreamingScope::new(scope, ctx.clone());
        let built = catch_unwind(AssertUnwindSafe(|| {
            for d in definitions {
                d(&ss);
            }
        }));
        ctx.settle_checkpoint_interval();
        ctx.check_restored_graph();
        if index == 0 && shared.checkpoint_dir().is_none() {
            if let Some(warning) = unsaved_state(&ctx.stateful_ids()) {
                tracing::warn!("{warning}");
            }
        }
        let error = match built {
            Ok(()) => ctx.take_error(),
            Err(p) => Some(Error::UserCode {
                worker: index,
                message: format!("while defining the graph: {}", panic_message(&*p)),
            }),
        };
        let report = BuildReport {
            outputs: ctx.outputs(),
            error,
        };
        (report, ctx)
    })
}

/// The operators whose state Spark refuses to keep without a checkpoint
/// directory.
const NEED_CHECKPOINTS: [&str; 3] = [
    "update_state_by_key",
    "map_with_state",
    "reduce_by_key_and_window",
];

/// The warning for a graph without a checkpoint directory whose stateful
/// operators (`stateful`, as `index:kind`) would lose their state at a
/// restart; `None` when there are none. Spark refuses to start such a
/// program; ember runs it, and says so once.
fn unsaved_state(stateful: &[String]) -> Option<String> {
    let lost: Vec<&str> = stateful
        .iter()
        .map(String::as_str)
        .filter(|id| {
            id.split_once(':')
                .is_some_and(|(_, kind)| NEED_CHECKPOINTS.contains(&kind))
        })
        .collect();
    (!lost.is_empty()).then(|| {
        format!(
            "no checkpoint directory: the state of {} is kept in memory only and is lost when \
             the program stops or dies (Spark refuses to start without one); call \
             ssc.checkpoint(dir) and create the context with StreamingContext::get_or_create \
             to resume after a restart",
            lost.join(", ")
        )
    })
}

/// Writes this worker's part of each checkpoint once every batch before it
/// is complete everywhere.
struct CheckpointScheduler {
    /// Checkpoint every this many ms (0: off).
    every: u64,
    /// The next checkpoint time: a multiple of `every` after the resume point.
    next: u64,
    written_through: u64,
    operators: Vec<String>,
}

impl CheckpointScheduler {
    fn new(shared: &Shared, ctx: &WorkerCtx) -> Self {
        let zero = shared.zero();
        let every = ctx.checkpoint_every.get();
        let next = match every {
            0 => u64::MAX,
            every => zero + ((shared.resume() - zero) / every + 1) * every,
        };
        CheckpointScheduler {
            every,
            next,
            written_through: shared.resume(),
            operators: ctx.stateful_ids(),
        }
    }

    /// Writes the parts that are due: every batch before the output
    /// frontier is complete on every worker, so every operator has staged
    /// its state for it. A graceful stop's last batch is checkpointed too.
    fn write_due(&mut self, shared: &Shared, ctx: &WorkerCtx, frontier: Option<u64>) {
        if self.every == 0 {
            return;
        }
        let done_below = frontier.unwrap_or_else(|| shared.stop_at());
        let last = shared.final_checkpoint();
        let mut due = Vec::new();
        while self.next < done_below {
            due.push(self.next);
            self.next += self.every;
        }
        if last > self.written_through && last < done_below && !due.contains(&last) {
            due.push(last);
            due.sort_unstable();
        }
        for t in due {
            if shared.aborted() {
                break;
            }
            let part = ctx.staged.borrow_mut().remove(&t).unwrap_or_default();
            let dir = shared
                .checkpoint_dir()
                .as_ref()
                .expect("checkpointing is on");
            let began = crate::listener::wall_us();
            let written = checkpoint::write_part(dir, t, ctx.index, &part)
                .and_then(|bytes| shared.part_written(t, self.operators.clone(), bytes, began));
            if let Err(e) = written {
                shared.fail(e);
                break;
            }
            self.written_through = t;
        }
        let next = self.next;
        ctx.staged
            .borrow_mut()
            .retain(|t, _| *t >= next || *t == last);
    }
}

/// Marks the batches before the output frontier complete (all of them up
/// to the stop once the graph is done).
fn report_completed(shared: &Shared, frontier: Option<u64>) {
    let interval = shared.conf().batch_ms;
    let zero = shared.zero();
    let through = match frontier {
        Some(f) if f > zero + interval => Some(zero + (f - zero - 1) / interval * interval),
        Some(_) => None,
        None => shared.stop_at().checked_sub(interval).filter(|t| *t > zero),
    };
    if let Some(t) = through {
        shared.set_completed(t);
    }
}

/// Fails the context for a panic on this worker: a broken connection
/// between processes, or the program's code. Returns the panic's message.
fn worker_panicked(shared: &Shared, index: usize, payload: &(dyn std::any::Any + Send)) -> String {
    let message = panic_message(payload);
    if shared.is_cluster() && is_communication_panic(&message) {
        shared.fail(peer_lost(&message));
    } else {
        shared.fail(Error::UserCode {
            worker: index,
            message: message.clone(),
        });
    }
    message
}

#[cfg(test)]
mod tests {
    use super::unsaved_state;

    #[test]
    fn state_without_checkpoints_is_named_once() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let w = unsaved_state(&ids(&[
            "0:socket_text_stream",
            "1:window",
            "2:update_state_by_key",
            "3:reduce_by_key_and_window",
        ]))
        .expect("a warning");
        assert!(
            w.contains("the state of 2:update_state_by_key, 3:reduce_by_key_and_window is kept"),
            "{w}"
        );
        assert!(w.contains("ssc.checkpoint(dir)"), "{w}");
        // Sources and plain windows: nothing Spark would refuse.
        assert_eq!(
            unsaved_state(&ids(&["0:socket_text_stream", "1:window"])),
            None
        );
        assert!(unsaved_state(&ids(&["0:map_with_state"])).is_some());
    }
}
