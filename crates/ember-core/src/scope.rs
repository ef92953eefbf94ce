//! The handle a graph definition receives, and per-worker context.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use timely::dataflow::{ProbeHandle, Scope};

use crate::checkpoint::{self, Part};
use crate::error::Error;
use crate::runtime::Shared;

/// What every operator of one worker needs to know.
pub(crate) struct WorkerCtx {
    pub(crate) shared: Arc<Shared>,
    /// This worker's global index.
    pub(crate) index: usize,
    /// All workers, in every process.
    pub(crate) peers: usize,
    /// Output operations' completion is watched through this probe.
    pub(crate) probe: ProbeHandle<u64>,
    outputs: Cell<usize>,
    sources: Cell<usize>,
    error: RefCell<Option<Error>>,
    /// Stateful operators in graph order: id and slide.
    stateful: RefCell<Vec<(String, u64)>>,
    /// Operator states waiting for their checkpoint to be written.
    pub(crate) staged: RefCell<BTreeMap<u64, Part>>,
    /// Checkpoint every this many ms (0: off); fixed once the graph is built.
    pub(crate) checkpoint_every: Cell<u64>,
}

impl WorkerCtx {
    pub(crate) fn new(
        shared: Arc<Shared>,
        index: usize,
        peers: usize,
        probe: ProbeHandle<u64>,
    ) -> Rc<Self> {
        Rc::new(WorkerCtx {
            shared,
            index,
            peers,
            probe,
            outputs: Cell::new(0),
            sources: Cell::new(0),
            error: RefCell::new(None),
            stateful: RefCell::new(Vec::new()),
            staged: RefCell::new(BTreeMap::new()),
            checkpoint_every: Cell::new(0),
        })
    }

    /// The first time at or after the resume point at which a stream with
    /// this slide produces a batch: `zero + slide` on a fresh start.
    pub(crate) fn first_time(&self, slide: u64) -> u64 {
        let zero = self.zero();
        let resume = self.shared.resume();
        zero + ((resume - zero) / slide + 1) * slide
    }

    /// Registers a stateful operator and returns its checkpoint handle.
    pub(crate) fn stateful(self: &Rc<Self>, kind: &str, slide: u64) -> Stateful {
        let mut ops = self.stateful.borrow_mut();
        let id = format!("{}:{kind}", ops.len());
        ops.push((id.clone(), slide));
        Stateful {
            id,
            ctx: self.clone(),
        }
    }

    /// The stateful operators, in graph order.
    pub(crate) fn stateful_ids(&self) -> Vec<String> {
        self.stateful
            .borrow()
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Fixes the checkpoint interval once the graph is built: the configured
    /// one, or Spark's default (the smallest multiple of every stateful
    /// slide of at least 10 s). Off without a checkpoint directory.
    pub(crate) fn settle_checkpoint_interval(&self) {
        if self.shared.checkpoint_dir().is_none() {
            return;
        }
        let interval = self.interval();
        let lcm = self
            .stateful
            .borrow()
            .iter()
            .fold(interval, |acc, (_, slide)| acc / gcd(acc, *slide) * slide);
        let every = match self.shared.conf().checkpoint_interval {
            None => lcm * 10_000u64.div_ceil(lcm),
            Some(d) => match crate::duration::whole_millis(d, "the checkpoint interval") {
                Err(e) => {
                    self.definition_error(e);
                    return;
                }
                Ok(ms) if ms % lcm != 0 => {
                    self.definition_error(Error::graph(format!(
                        "the checkpoint interval ({}) must be a multiple of the slide duration of every stateful DStream and of the batch interval ({}): use a multiple of it",
                        crate::time::show_ms(ms),
                        crate::time::show_ms(lcm)
                    )));
                    return;
                }
                Ok(ms) => ms,
            },
        };
        self.checkpoint_every.set(every);
        self.shared.set_checkpoint_grain(lcm);
    }

    /// Checks a restored checkpoint against this graph's stateful operators.
    pub(crate) fn check_restored_graph(&self) {
        let Some(restored) = &self.shared.restored() else {
            return;
        };
        let now = self.stateful_ids();
        let before = &restored.commit.operators;
        if &now != before {
            let removed: Vec<&String> = before.iter().filter(|o| !now.contains(o)).collect();
            let added: Vec<&String> = now.iter().filter(|o| !before.contains(o)).collect();
            self.definition_error(Error::Checkpoint {
                path: self.shared.checkpoint_dir().clone().unwrap_or_default(),
                message: format!(
                    "the program's stateful operators changed since the checkpoint at {} ms (in the \
                     checkpoint but not the program: {removed:?}; in the program but not the \
                     checkpoint: {added:?}): run the program that wrote the checkpoint, or {}",
                    restored.commit.time,
                    crate::checkpoint::FRESH_START
                ),
                cause: None,
            });
        }
    }

    /// The batch interval in milliseconds.
    pub(crate) fn interval(&self) -> u64 {
        self.shared.conf().batch_ms
    }

    /// Spark's zero time.
    pub(crate) fn zero(&self) -> u64 {
        self.shared.zero()
    }

    /// Records a definition error; the first one is reported by `start`.
    pub(crate) fn definition_error(&self, e: Error) {
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    pub(crate) fn take_error(&self) -> Option<Error> {
        self.error.borrow_mut().take()
    }

    pub(crate) fn count_output(&self) {
        self.outputs.set(self.outputs.get() + 1);
    }

    pub(crate) fn outputs(&self) -> usize {
        self.outputs.get()
    }

    /// A number for each source, the same on every worker (the graph is the same).
    pub(crate) fn next_source_id(&self) -> usize {
        let id = self.sources.get();
        self.sources.set(id + 1);
        id
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A stateful operator's link to checkpoints: its restored state and where
/// it stages its state at checkpoint times.
pub(crate) struct Stateful {
    pub(crate) id: String,
    ctx: Rc<WorkerCtx>,
}

impl Stateful {
    /// The states every worker of the restored checkpoint wrote for this
    /// operator (empty on a fresh start). A state that does not decode is a
    /// definition error reported by `start`.
    pub(crate) fn restored<T: DeserializeOwned>(&self) -> Vec<T> {
        let Some(r) = &self.ctx.shared.restored() else {
            return Vec::new();
        };
        let Some(parts) = r.states.get(&self.id) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(parts.len());
        for bytes in parts {
            match checkpoint::from_bytes(&self.id, bytes) {
                Ok(v) => out.push(v),
                Err(e) => {
                    self.ctx.definition_error(e);
                    return Vec::new();
                }
            }
        }
        out
    }

    /// Keyed state restored from every old worker, keeping the keys that
    /// route to this worker now (the worker count may have changed).
    pub(crate) fn restored_keyed<K, S>(&self) -> crate::hash::FxHashMap<K, S>
    where
        K: DeserializeOwned + std::hash::Hash + Eq,
        S: DeserializeOwned,
    {
        let (index, peers) = self.worker();
        let parts: Vec<crate::hash::FxHashMap<K, S>> = self.restored();
        parts
            .into_iter()
            .flatten()
            .filter(|(k, _)| crate::hash::route(k) % peers == index)
            .collect()
    }

    /// Whether the batch at `t` is a checkpoint time.
    pub(crate) fn due(&self, t: u64) -> bool {
        let every = self.ctx.checkpoint_every.get();
        let last = self.ctx.shared.final_checkpoint();
        every > 0
            && t > self.ctx.shared.resume()
            && ((t - self.ctx.zero()) % every == 0 || t == last)
    }

    /// Stages this operator's state after batch `t`, if `t` is a checkpoint
    /// time. A state that cannot be encoded fails the context there, naming
    /// the operator and the batch.
    pub(crate) fn save<T: Serialize>(&self, t: u64, state: impl FnOnce() -> T) {
        if self.due(t) {
            let dir = self.ctx.shared.checkpoint_dir().clone().unwrap_or_default();
            let what = format!("the state of operator {} at batch {t} ms", self.id);
            let bytes = match checkpoint::to_bytes(&dir, &what, &state()) {
                Ok(bytes) => bytes,
                Err(e) => {
                    self.ctx.shared.fail(e);
                    return;
                }
            };
            self.ctx
                .staged
                .borrow_mut()
                .entry(t)
                .or_default()
                .insert(self.id.clone(), bytes);
        }
    }

    /// Tells the statistics that this worker's part of the state holds
    /// `keys` keys after the latest batch (the UI and `/metrics` show it).
    pub(crate) fn report_keys(&self, keys: usize) {
        self.ctx
            .shared
            .bus()
            .state_keys(&self.id, self.ctx.index, keys as u64);
    }

    /// This worker's index and the number of workers.
    pub(crate) fn worker(&self) -> (u64, u64) {
        (self.ctx.index as u64, self.ctx.peers as u64)
    }
}

/// Stops a running context with an error, from any thread: how a source or
/// sink (a connector's own thread, a callback, a per-batch function) fails
/// its stream with an error of its own kind, never by panicking.
///
/// Get one from [`StreamingScope::failure_handle`] or
/// [`DStream::failure_handle`](crate::DStream::failure_handle). The first error reported stops every
/// worker at once and is what
/// [`await_termination`](crate::StreamingContext::await_termination) returns.
#[derive(Clone)]
pub struct FailureHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FailureHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailureHandle").finish_non_exhaustive()
    }
}

pub(crate) fn failure_handle(ctx: &WorkerCtx) -> FailureHandle {
    FailureHandle {
        shared: ctx.shared.clone(),
    }
}

impl FailureHandle {
    /// Stops the context with `error`; later errors are logged only.
    pub fn fail(&self, error: Error) {
        self.shared.fail(error);
    }

    /// Whether the context is stopping or has stopped: a connector's own
    /// thread ends when this turns true.
    pub fn is_stopped(&self) -> bool {
        self.shared.aborted() || self.shared.stop_state() != crate::runtime::StopState::Running
    }
}

/// The handle a graph definition receives: where input DStreams come from.
///
/// It plays the part of Spark's `StreamingContext` inside
/// [`StreamingContext::define`](crate::StreamingContext::define): the source
/// methods (`socket_text_stream`, `text_file_stream`, `queue_stream`) are here.
pub struct StreamingScope<'s> {
    pub(crate) scope: Scope<'s, u64>,
    pub(crate) ctx: Rc<WorkerCtx>,
}

impl<'s> StreamingScope<'s> {
    pub(crate) fn new(scope: Scope<'s, u64>, ctx: Rc<WorkerCtx>) -> Self {
        StreamingScope { scope, ctx }
    }

    /// This worker's index among all workers (0-based).
    pub fn worker_index(&self) -> usize {
        self.ctx.index
    }

    /// The number of workers in the whole computation.
    pub fn workers(&self) -> usize {
        self.ctx.peers
    }

    /// The batch interval.
    pub fn batch_interval(&self) -> std::time::Duration {
        self.ctx.shared.conf().batch_interval
    }

    /// Calls `hook` with the time of every batch that completes (every
    /// output operation has finished it), on a thread of the engine's: for
    /// connectors that act once a batch is done, e.g. committing Kafka
    /// offsets. Register it on one worker only (see
    /// [`worker_index`](Self::worker_index)), or it runs once per worker.
    pub fn on_batch_completed(&self, hook: impl Fn(crate::Time) + Send + Sync + 'static) {
        self.ctx.shared.bus().on_completed(hook);
    }

    /// A handle through which a connector stops the context with its own
    /// error, from any thread (see [`FailureHandle`]).
    pub fn failure_handle(&self) -> FailureHandle {
        failure_handle(&self.ctx)
    }

    /// Refuses the graph being defined: [`StreamingContext::start`](crate::StreamingContext::start)
    /// fails with `error` (the first one reported). For connectors whose
    /// settings are found wrong while the graph is built.
    pub fn fail_definition(&self, error: Error) {
        self.ctx.definition_error(error);
    }

    /// The timely scope the graph lives in: the escape hatch to timely's own
    /// operators (see [`DStream::to_timely`](crate::DStream::to_timely) and [`from_timely`](Self::from_timely)).
    pub fn timely_scope(&self) -> Scope<'s, u64> {
        self.scope
    }
}
