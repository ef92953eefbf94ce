//! DStreams: a stream of batches, one per batch time.
//!
//! A [`DStream`] wraps a timely stream whose timestamps are batch times. Each
//! worker holds one part (Spark's partition) of every batch. Operators come in
//! two kinds:
//!
//! - **pipelined** (`map`, `flat_map`, `filter`, `union`, `repartition`): records
//!   flow on as they arrive;
//! - **per batch** (`count`, `reduce_by_key`, joins, `transform`, outputs): the
//!   operator acts once the batch is complete, i.e. when timely's frontier
//!   passes the batch time. Such an operator holds a capability for its next
//!   batch time, so it acts for empty batches too (a `count` of 0, a `print`
//!   header).
//!
//! The operator families live in `transform.rs` (one stream to another),
//! `pair.rs` (keyed operations on `DStream<(K, V)>`), `borrowed.rs` (words
//! that borrow their line) and `output.rs`.

mod borrowed;
pub(crate) mod dashboard;
pub(crate) mod fuse;
mod output;
mod pair;
mod state;
mod transform;
mod window;

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::StreamVec;

use fuse::{Lineage, Pull, Step};

use crate::scope::{StreamingScope, WorkerCtx};
use crate::Data;

pub use borrowed::{BorrowedPairs, BorrowedWords, Words};
pub use dashboard::DashboardValue;
pub use output::SaveOptions;
pub use state::{MapWithState, State, StateError, StateSpec};

/// A discretized stream: a sequence of batches of `T`, one per slide.
///
/// Spark's `DStream`; build one from a [`StreamingScope`] source and chain
/// operations on it. Each operation returns a new DStream; nothing runs until
/// the context starts.
pub struct DStream<'s, T: Data> {
    /// The records: a timely stream, or narrow steps not yet run on one.
    pub(crate) lineage: Lineage<'s, T>,
    /// The same records with their place in Spark's partition order, for
    /// streams whose batches Spark makes of several batches' partitions (a
    /// window lists its batches oldest first). `lineage` then reads these.
    ordered: Option<Ordered<'s, T>>,
    /// For a source's stream: the batches that are one empty partition.
    single_part: Option<SinglePart>,
    /// Milliseconds between this stream's batches.
    pub(crate) slide: u64,
    pub(crate) ctx: Rc<WorkerCtx>,
}

impl<T: Data> Clone for DStream<'_, T> {
    fn clone(&self) -> Self {
        DStream {
            lineage: self.lineage.clone(),
            ordered: self.ordered.clone(),
            single_part: self.single_part.clone(),
            slide: self.slide,
            ctx: self.ctx.clone(),
        }
    }
}

/// The batch times at which a source's batch is a single empty partition,
/// as recorded by the source on each worker.
///
/// Spark's queue stream gives an RDD with one empty partition once its
/// queue is empty (and no default batch was given), so `glom` yields one
/// empty list there and `mapPartitions` runs once. ember gives each worker
/// a part of every batch; at these times only worker 0's part counts.
#[derive(Clone, Default)]
pub(crate) struct SinglePart(Rc<RefCell<BTreeSet<u64>>>);

impl SinglePart {
    /// Times remembered: readers more than this many batches behind the
    /// source see one part per worker again.
    const KEPT: usize = 4096;

    /// Records that the batch at `time` is one empty partition.
    pub(crate) fn mark(&self, time: u64) {
        let mut times = self.0.borrow_mut();
        times.insert(time);
        while times.len() > Self::KEPT {
            times.pop_first();
        }
    }

    fn contains(&self, time: u64) -> bool {
        self.0.borrow().contains(&time)
    }
}

/// Records keyed by their order in a batch.
///
/// In Spark a window's batch is the union of its batches' partitions, so
/// `print()` and `foreachRDD` list the oldest batch's partitions first. In
/// ember a batch's parts are its workers', and each worker holds part of
/// every batch in the window; the key (the record's batch within the window,
/// then its key within that batch) lets a gathered batch put the parts back
/// in Spark's order: by key, then by worker.
pub(crate) struct Ordered<'s, T: Data> {
    lineage: Lineage<'s, (u64, T)>,
    /// Keys are below this.
    range: u64,
}

impl<T: Data> Clone for Ordered<'_, T> {
    fn clone(&self) -> Self {
        Ordered {
            lineage: self.lineage.clone(),
            range: self.range,
        }
    }
}

impl<'s, T: Data> DStream<'s, T> {
    pub(crate) fn new(stream: StreamVec<'s, u64, T>, slide: u64, ctx: Rc<WorkerCtx>) -> Self {
        DStream {
            lineage: Lineage::Stream(stream),
            ordered: None,
            single_part: None,
            slide,
            ctx,
        }
    }

    /// A DStream on the same batches as this one, with records from `lineage`.
    pub(crate) fn with_lineage<U: Data>(&self, lineage: Lineage<'s, U>) -> DStream<'s, U> {
        DStream {
            lineage,
            ordered: None,
            single_part: None,
            slide: self.slide,
            ctx: self.ctx.clone(),
        }
    }

    /// A DStream sliding by `slide` whose records come keyed by their order
    /// (see [`Ordered`]), with keys below `range`.
    pub(crate) fn with_ordered<U: Data>(
        &self,
        keyed: Lineage<'s, (u64, U)>,
        range: u64,
        slide: u64,
    ) -> DStream<'s, U> {
        let lineage = Step::lineage(
            keyed.clone(),
            "Unkey",
            None,
            |(_, x): (u64, U), out: &mut Vec<U>| out.push(x),
        );
        DStream {
            lineage,
            ordered: Some(Ordered {
                lineage: keyed,
                range,
            }),
            single_part: None,
            slide,
            ctx: self.ctx.clone(),
        }
    }

    /// A pipelined step `f(record, out)`, fused into whatever reads it (see
    /// `fuse.rs`), keeping the records' order keys if they have them. After
    /// a stop at once, queued records pass without user code.
    pub(crate) fn narrow<U: Data>(
        &self,
        name: &'static str,
        mut f: impl FnMut(T, &mut Vec<U>) + 'static,
    ) -> DStream<'s, U> {
        let halt = Some(self.ctx.shared.clone());
        let Some(ordered) = &self.ordered else {
            // A record-by-record step keeps the partitions as they are.
            let mut next = self.with_lineage(Step::lineage(self.lineage.clone(), name, halt, f));
            next.single_part = self.single_part.clone();
            return next;
        };
        let mut made = Vec::new();
        let keyed = Step::lineage(
            ordered.lineage.clone(),
            name,
            halt,
            move |(key, x): (u64, T), out: &mut Vec<(u64, U)>| {
                f(x, &mut made);
                out.extend(made.drain(..).map(|y| (key, y)));
            },
        );
        self.with_ordered(keyed, ordered.range, self.slide)
    }

    /// This stream marked as a source's whose batches at the times in
    /// `times` are one empty partition.
    pub(crate) fn with_single_part(mut self, times: SinglePart) -> Self {
        self.single_part = Some(times);
        self
    }

    /// Whether this worker's part of the batch at a time is a partition in
    /// Spark's terms (see [`SinglePart`]); per-partition operations skip
    /// the others.
    pub(crate) fn is_part_here(&self) -> impl Fn(u64) -> bool + 'static {
        let single = self.single_part.clone().filter(|_| self.ctx.index != 0);
        move |time| !single.as_ref().is_some_and(|s| s.contains(time))
    }

    /// The records keyed by their order in a batch (all `0` for a stream
    /// whose batches are its workers' parts), and the keys' range.
    pub(crate) fn order_keyed(&self) -> (Lineage<'s, (u64, T)>, u64) {
        match &self.ordered {
            Some(o) => (o.lineage.clone(), o.range),
            None => (
                Step::lineage(
                    self.lineage.clone(),
                    "Key",
                    None,
                    |x: T, out: &mut Vec<(u64, T)>| out.push((0, x)),
                ),
                1,
            ),
        }
    }

    /// The records as a timely stream (running the narrow steps before it
    /// in one operator, built on first use).
    pub(crate) fn stream(&self) -> StreamVec<'s, u64, T> {
        self.lineage.stream()
    }

    /// Adds an input reading this stream to an operator under construction:
    /// pipelined inputs run the narrow steps in that operator, others read
    /// [`stream`](Self::stream) through `pact`.
    fn attach<P>(&self, b: &mut OperatorBuilder<'s, u64>, pact: P) -> Pull<T>
    where
        P: ParallelizationContract<u64, Vec<T>> + 'static,
    {
        if TypeId::of::<P>() == TypeId::of::<Pipeline>() {
            return self.lineage.attach(b);
        }
        let mut input = b.new_input(self.stream(), pact);
        Box::new(move |run, mut sink| {
            input.for_each(|cap, data| {
                if run {
                    if let Some(sink) = sink.as_mut() {
                        sink(&cap, data);
                    }
                }
            })
        })
    }

    pub(crate) fn empty(s: &StreamingScope<'s>) -> Self {
        DStream::new(empty(s.scope), s.ctx.interval(), s.ctx.clone())
    }

    /// A DStream on the same batches as this one, over another timely stream.
    pub(crate) fn with<U: Data>(&self, stream: StreamVec<'s, u64, U>) -> DStream<'s, U> {
        DStream::new(stream, self.slide, self.ctx.clone())
    }

    /// The time between this stream's batches (the batch interval, unless windowed).
    pub fn slide_duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.slide)
    }

    /// A handle through which a connector stops the context with its own
    /// error, from any thread (see [`FailureHandle`](crate::FailureHandle)).
    pub fn failure_handle(&self) -> crate::FailureHandle {
        crate::scope::failure_handle(&self.ctx)
    }

    /// Refuses the graph being defined: `start()` fails with `error`. For
    /// connectors (e.g. a sink extension trait) that find their settings
    /// wrong while the graph is built.
    pub fn fail_definition(&self, error: crate::Error) {
        self.ctx.definition_error(error);
    }

    /// The underlying timely stream (timestamps are batch times in ms): the
    /// escape hatch to timely's operators. Come back with
    /// [`StreamingScope::from_timely`].
    pub fn to_timely(&self) -> StreamVec<'s, u64, T> {
        self.stream()
    }

    /// The per-batch operator every batch-level operation is built on.
    ///
    /// For each batch time of this stream (every `slide` from the zero time),
    /// once the batch is complete on this worker's input, the records that
    /// arrived for it have been folded into a state made by `init`, and
    /// `emit` turns that state into output records at the same time. Batches
    /// without records get `emit(time, init())`.
    pub(crate) fn batch_fold<U, S, P, I, F, E>(
        &self,
        pact: P,
        name: &str,
        init: I,
        fold: F,
        mut emit: E,
    ) -> StreamVec<'s, u64, U>
    where
        U: Data,
        S: 'static,
        P: ParallelizationContract<u64, Vec<T>> + 'static,
        I: FnMut() -> S + 'static,
        F: FnMut(&mut S, &mut Vec<T>) + 'static,
        E: FnMut(u64, S, &mut Vec<U>) + 'static,
    {
        self.fold_slides(
            pact,
            name,
            self.slide,
            init,
            fold,
            move |t, mut arrived, out| {
                // A stream's records are stamped with its own batch times, so
                // the only state is the one at `t`.
                debug_assert!(arrived.len() == 1, "records between two batch times");
                if let Some((_, state)) = arrived.pop() {
                    emit(t, state, out);
                }
            },
        )
    }

    /// The operator under [`batch_fold`](Self::batch_fold) and the windows.
    /// Records are folded per stamped time into `S`; at each output time `t`
    /// (every `slide` from the zero time), once the input is complete through
    /// `t`, `emit` gets the folded times that arrived since the last output,
    /// oldest first and always ending with `t` itself (`init()` when nothing
    /// came for it).
    pub(crate) fn fold_slides<U, S, P, I, F, E>(
        &self,
        pact: P,
        name: &str,
        slide: u64,
        mut init: I,
        mut fold: F,
        mut emit: E,
    ) -> StreamVec<'s, u64, U>
    where
        U: Data,
        S: 'static,
        P: ParallelizationContract<u64, Vec<T>> + 'static,
        I: FnMut() -> S + 'static,
        F: FnMut(&mut S, &mut Vec<T>) + 'static,
        E: FnMut(u64, Vec<(u64, S)>, &mut Vec<U>) + 'static,
    {
        let ctx = self.ctx.clone();
        let first = ctx.first_time(slide);
        let mut b = OperatorBuilder::new(name.to_string(), self.lineage.scope());
        let mut pull = self.attach(&mut b, pact);
        let (output, stream) = b.new_output::<Vec<U>>();
        let mut output = OutputBuilder::<u64, CapacityContainerBuilder<Vec<U>>>::from(output);
        b.build(move |mut caps| {
            // The last output is this one; the others carry fused steps'
            // records, sent with the input's capabilities.
            let cap = caps.pop().expect("an output");
            drop(caps);
            let mut cap = Some(cap.delayed(&first));
            let mut pending: Vec<(u64, S)> = Vec::new();
            let mut out: Vec<U> = Vec::new();
            move |frontiers| {
                let frontier = &frontiers[0];
                if ctx.shared.aborted() {
                    // After a failure no user code runs again; the
                    // input is drained so the dataflow can end.
                    pull(false, None);
                    cap = None;
                    pending.clear();
                    return;
                }
                pull(
                    true,
                    Some(&mut |stamp, data| {
                        let t = stamp.least().copied().unwrap_or_default();
                        let i = slot(&mut pending, t, &mut init);
                        fold(&mut pending[i].1, data);
                    }),
                );
                let Some(c) = cap.as_mut() else { return };
                let end = ctx.shared.stop_at();
                let mut output = output.activate();
                loop {
                    if ctx.shared.aborted() {
                        // A stop at once: no batch starts after it.
                        break;
                    }
                    let next = *c.time();
                    let complete = if frontier.is_empty() {
                        next < end
                    } else {
                        !frontier.less_equal(&next)
                    };
                    if !complete {
                        break;
                    }
                    let mut arrived = Vec::new();
                    let mut i = 0;
                    while i < pending.len() {
                        if pending[i].0 <= next {
                            arrived.push(pending.swap_remove(i));
                        } else {
                            i += 1;
                        }
                    }
                    arrived.sort_by_key(|(t, _)| *t);
                    if arrived.last().is_none_or(|(t, _)| *t != next) {
                        arrived.push((next, init()));
                    }
                    emit(next, arrived, &mut out);
                    if !out.is_empty() {
                        output.session(&*c).give_container(&mut out);
                        out.clear();
                    }
                    c.downgrade(&(next + slide));
                }
                if frontier.is_empty() {
                    cap = None;
                    pending.clear();
                }
            }
        });
        stream
    }

    /// [`batch_fold`](Self::batch_fold) over two inputs with the same slide:
    /// acts when both are complete for a batch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch_fold2<W, U, S, P1, P2, I, F1, F2, E>(
        &self,
        other: &DStream<'s, W>,
        pact1: P1,
        pact2: P2,
        name: &str,
        mut init: I,
        mut fold1: F1,
        mut fold2: F2,
        mut emit: E,
    ) -> StreamVec<'s, u64, U>
    where
        W: Data,
        U: Data,
        S: 'static,
        P1: ParallelizationContract<u64, Vec<T>> + 'static,
        P2: ParallelizationContract<u64, Vec<W>> + 'static,
        I: FnMut() -> S + 'static,
        F1: FnMut(&mut S, &mut Vec<T>) + 'static,
        F2: FnMut(&mut S, &mut Vec<W>) + 'static,
        E: FnMut(u64, S, &mut Vec<U>) + 'static,
    {
        let ctx = self.ctx.clone();
        let slide = self.slide;
        let first = ctx.first_time(slide);
        let mut b = OperatorBuilder::new(name.to_string(), self.lineage.scope());
        let mut pull1 = self.attach(&mut b, pact1);
        let mut pull2 = other.attach(&mut b, pact2);
        let (output, stream) = b.new_output::<Vec<U>>();
        let mut output = OutputBuilder::<u64, CapacityContainerBuilder<Vec<U>>>::from(output);
        b.build(move |mut caps| {
            let cap = caps.pop().expect("an output");
            drop(caps);
            let mut cap = Some(cap.delayed(&first));
            let mut pending: Vec<(u64, S)> = Vec::new();
            let mut out: Vec<U> = Vec::new();
            move |frontiers| {
                let (f1, f2) = (&frontiers[0], &frontiers[1]);
                if ctx.shared.aborted() {
                    pull1(false, None);
                    pull2(false, None);
                    cap = None;
                    pending.clear();
                    return;
                }
                pull1(
                    true,
                    Some(&mut |stamp, data| {
                        let t = stamp.least().copied().unwrap_or_default();
                        let i = slot(&mut pending, t, &mut init);
                        fold1(&mut pending[i].1, data);
                    }),
                );
                pull2(
                    true,
                    Some(&mut |stamp, data| {
                        let t = stamp.least().copied().unwrap_or_default();
                        let i = slot(&mut pending, t, &mut init);
                        fold2(&mut pending[i].1, data);
                    }),
                );
                let Some(c) = cap.as_mut() else { return };
                let end = ctx.shared.stop_at();
                let both_empty = f1.is_empty() && f2.is_empty();
                let mut output = output.activate();
                loop {
                    if ctx.shared.aborted() {
                        break;
                    }
                    let next = *c.time();
                    let complete = if both_empty {
                        next < end
                    } else {
                        !f1.less_equal(&next) && !f2.less_equal(&next)
                    };
                    if !complete {
                        break;
                    }
                    let state = match pending.iter().position(|(t, _)| *t <= next) {
                        Some(i) => pending.swap_remove(i).1,
                        None => init(),
                    };
                    emit(next, state, &mut out);
                    if !out.is_empty() {
                        output.session(&*c).give_container(&mut out);
                        out.clear();
                    }
                    c.downgrade(&(next + slide));
                }
                if both_empty {
                    cap = None;
                    pending.clear();
                }
            }
        });
        stream
    }

    /// Checks that two streams can be combined batch by batch.
    pub(crate) fn check_same_slide<W: Data>(&self, other: &DStream<'s, W>, op: &str) -> bool {
        if self.slide != other.slide {
            self.ctx.definition_error(crate::Error::graph(format!(
                "{op}: the two DStreams have different slide durations ({} and {}); {op} needs \
                 streams with the same slide duration",
                crate::time::show_ms(self.slide),
                crate::time::show_ms(other.slide)
            )));
            return false;
        }
        true
    }
}

/// The index of batch `t`'s partial state in `pending`, starting one with
/// `init` if the batch has none yet.
fn slot<S>(pending: &mut Vec<(u64, S)>, t: u64, init: &mut impl FnMut() -> S) -> usize {
    match pending.iter().position(|(pt, _)| *pt == t) {
        Some(i) => i,
        None => {
            pending.push((t, init()));
            pending.len() - 1
        }
    }
}

impl<'s> StreamingScope<'s> {
    /// The union of several DStreams of the same type and slide.
    ///
    /// # Errors
    ///
    /// An empty list or different slides fail `start` with [`Error::InvalidGraph`](crate::Error::InvalidGraph).
    pub fn union<T: Data>(&self, streams: &[DStream<'s, T>]) -> DStream<'s, T> {
        match streams.split_first() {
            None => {
                self.ctx
                    .definition_error(crate::Error::graph("union of an empty list of DStreams"));
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
