//! The handle a graph definition receives, and per-worker context.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use timely::dataflow::{ProbeHandle, Scope, StreamVec};

use crate::context::Shared;
use crate::dstream::DStream;
use crate::error::Error;
use crate::Data;

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
        })
    }

    /// The batch interval in milliseconds.
    pub(crate) fn interval(&self) -> u64 {
        self.shared.conf.batch_ms
    }

    /// Spark's zero time.
    pub(crate) fn zero(&self) -> u64 {
        self.shared.zero
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
        self.ctx.shared.conf.batch_interval
    }

    /// The timely scope the graph lives in: the escape hatch to timely's own
    /// operators (see [`DStream::to_timely`] and [`from_timely`](Self::from_timely)).
    pub fn timely_scope(&self) -> Scope<'s, u64> {
        self.scope
    }

    /// The union of several DStreams of the same type and slide.
    ///
    /// # Errors
    ///
    /// An empty list or different slides fail `start` with [`Error::InvalidGraph`].
    pub fn union<T: Data>(&self, streams: &[DStream<'s, T>]) -> DStream<'s, T> {
        match streams.split_first() {
            None => {
                self.ctx
                    .definition_error(Error::graph("union of an empty list of DStreams"));
                DStream::empty(self)
            }
            Some((first, rest)) => rest.iter().fold(first.clone(), |acc, s| acc.union(s)),
        }
    }

    /// Wraps a timely stream whose timestamps are batch times (multiples of
    /// the batch interval from the zero time) as a DStream with the batch
    /// interval as its slide.
    pub fn from_timely<T: Data>(&self, stream: StreamVec<'s, u64, T>) -> DStream<'s, T> {
        DStream::new(stream, self.ctx.interval(), self.ctx.clone())
    }
}
