//! Fused narrow operations.
//!
//! `map`, `flat_map`, `filter` (and the pair helpers built on them) do not
//! become timely operators of their own. A DStream made by one of them keeps
//! its *lineage*: the stream it reads and the per-record step to apply. The
//! next per-batch operator (a map-side combine, a count, a window) reads the
//! stream at the root of the lineage and runs the steps itself, so a record
//! goes from the source's container through every step into the operator's
//! state without being copied between operators. Anything that needs a real
//! timely stream (an exchange, a union, [`DStream::to_timely`]) gets one from
//! a single operator that runs the whole chain.
//!
//! Each step runs its user function exactly once per record, whoever reads
//! it: the first reader that fuses a step gives it an extra output, and a
//! later reader of the same DStream (a DStream used twice) reads that output
//! instead, which the fused operator then starts to fill. As before, after a
//! stop at once no step calls user code again.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::InputCapability;
use timely::dataflow::{Scope, StreamVec};

use crate::runtime::Shared;
use crate::source::lines::LineBlock;
use crate::Data;

/// Records handed on at once between fused steps: small enough to stay in
/// cache, large enough that the per-chunk dynamic calls do not matter.
const CHUNK: usize = 1024;

/// Receives the records of one input, a chunk at a time, with the capability
/// of the container they came in. It may drain the chunk.
pub(crate) type Sink<'a, T> = &'a mut dyn FnMut(&InputCapability<u64>, &mut Vec<T>);

/// Drains one operator input (the root of a lineage), runs the fused steps
/// and hands their records to the sink. With `run` false (the context
/// failed) it only drains: no user code runs.
pub(crate) type Pull<T> = Box<dyn FnMut(bool, Option<Sink<'_, T>>)>;

/// Where a DStream's records come from.
pub(crate) enum Lineage<'s, T: Data> {
    /// A timely stream.
    Stream(StreamVec<'s, u64, T>),
    /// Steps not yet run by any operator.
    Narrow(Rc<dyn Node<'s, T> + 's>),
}

impl<T: Data> Clone for Lineage<'_, T> {
    fn clone(&self) -> Self {
        match self {
            Lineage::Stream(s) => Lineage::Stream(s.clone()),
            Lineage::Narrow(n) => Lineage::Narrow(n.clone()),
        }
    }
}

impl<'s, T: Data> Lineage<'s, T> {
    /// The records as a timely stream, building the operator that runs the
    /// steps if no one has yet.
    pub(crate) fn stream(&self) -> StreamVec<'s, u64, T> {
        match self {
            Lineage::Stream(s) => s.clone(),
            Lineage::Narrow(n) => n.stream(),
        }
    }

    /// The scope the records live in.
    pub(crate) fn scope(&self) -> timely::dataflow::Scope<'s, u64> {
        match self {
            Lineage::Stream(s) => s.scope(),
            Lineage::Narrow(n) => n.scope(),
        }
    }

    /// The text blocks these records (lines) are cut from, if they are the
    /// lines of a text source read as they are.
    pub(crate) fn text_blocks(&self) -> Option<Lineage<'s, (u64, LineBlock)>> {
        match self {
            Lineage::Stream(_) => None,
            Lineage::Narrow(n) => n.text_blocks(),
        }
    }

    /// Adds an input reading these records to an operator under construction
    /// (pipelined: no exchange), fusing the steps that no one ran yet.
    pub(crate) fn attach(&self, b: &mut OperatorBuilder<'s, u64>) -> Pull<T> {
        match self {
            Lineage::Stream(s) => plain(b, s.clone()),
            Lineage::Narrow(n) => n.attach(b),
        }
    }
}

/// An input that is a timely stream as it is.
pub(crate) fn plain<'s, T: Data>(
    b: &mut OperatorBuilder<'s, u64>,
    s: StreamVec<'s, u64, T>,
) -> Pull<T> {
    let mut input = b.new_input(s, Pipeline);
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

/// One fused step, type-erased over the record type it reads.
pub(crate) trait Node<'s, T: Data> {
    fn attach(&self, b: &mut OperatorBuilder<'s, u64>) -> Pull<T>;
    fn stream(&self) -> StreamVec<'s, u64, T>;
    fn scope(&self) -> Scope<'s, u64>;
    /// For the lines of a text source: the blocks of text they are cut
    /// from, so that a reader that only borrows lines can read them in place.
    fn text_blocks(&self) -> Option<Lineage<'s, (u64, LineBlock)>> {
        None
    }
}

/// The lines of a text source's blocks, each an owned `String` for whoever
/// reads them as records; [`Node::text_blocks`] lends them without copying.
pub(crate) struct TextLines<'s> {
    blocks: Lineage<'s, (u64, LineBlock)>,
    lines: Rc<dyn Node<'s, String> + 's>,
}

impl<'s> TextLines<'s> {
    /// The lines of `blocks` (worker index, block) as a lineage.
    pub(crate) fn lineage(blocks: Lineage<'s, (u64, LineBlock)>) -> Lineage<'s, String> {
        let Lineage::Narrow(lines) = Step::lineage(
            blocks.clone(),
            "Lines",
            None,
            |(_, block): (u64, LineBlock), out: &mut Vec<String>| {
                out.extend(block.iter().map(str::to_owned))
            },
        ) else {
            unreachable!("a step is a narrow lineage")
        };
        Lineage::Narrow(Rc::new(TextLines { blocks, lines }))
    }
}

impl<'s> Node<'s, String> for TextLines<'s> {
    fn attach(&self, b: &mut OperatorBuilder<'s, u64>) -> Pull<String> {
        self.lines.attach(b)
    }
    fn stream(&self) -> StreamVec<'s, u64, String> {
        self.lines.stream()
    }
    fn scope(&self) -> Scope<'s, u64> {
        self.lines.scope()
    }
    fn text_blocks(&self) -> Option<Lineage<'s, (u64, LineBlock)>> {
        Some(self.blocks.clone())
    }
}

/// Who reads a step's records besides the operator that runs it.
enum Output<'s, T: Data> {
    /// No operator runs the step yet.
    Fresh,
    /// An operator runs it; this stream gets its records once `gate` is on.
    Ran(StreamVec<'s, u64, T>, Rc<Cell<bool>>),
}

/// A step `f(record, out)` that pushes what a record of `S` becomes.
pub(crate) struct Step<'s, S: Data, T: Data, F> {
    parent: Lineage<'s, S>,
    f: RefCell<Option<F>>,
    /// Checked before each record when the step runs user code.
    halt: Option<Arc<Shared>>,
    name: &'static str,
    output: RefCell<Output<'s, T>>,
}

impl<'s, S: Data, T: Data, F: FnMut(S, &mut Vec<T>) + 'static> Step<'s, S, T, F> {
    /// A step on `parent`; `halt` is the context whose stop at once must
    /// keep `f` from running (`None` for ember's own steps).
    pub(crate) fn lineage(
        parent: Lineage<'s, S>,
        name: &'static str,
        halt: Option<Arc<Shared>>,
        f: F,
    ) -> Lineage<'s, T> {
        Lineage::Narrow(Rc::new(Step {
            parent,
            f: RefCell::new(Some(f)),
            halt,
            name,
            output: RefCell::new(Output::Fresh),
        }))
    }
}

impl<'s, S: Data, T: Data, F: FnMut(S, &mut Vec<T>) + 'static> Node<'s, T> for Step<'s, S, T, F> {
    fn attach(&self, b: &mut OperatorBuilder<'s, u64>) -> Pull<T> {
        if let Output::Ran(s, gate) = &*self.output.borrow() {
            // Another operator runs this step: read its records from there.
            gate.set(true);
            return plain(b, s.clone());
        }
        let mut parent = self.parent.attach(b);
        let (out, stream) = b.new_output::<Vec<T>>();
        let gate = Rc::new(Cell::new(false));
        *self.output.borrow_mut() = Output::Ran(stream, gate.clone());
        let mut out = OutputBuilder::<u64, CapacityContainerBuilder<Vec<T>>>::from(out);
        let mut f = self
            .f
            .borrow_mut()
            .take()
            .expect("a step runs in one operator");
        let halt = self.halt.clone();
        let mut buf: Vec<T> = Vec::with_capacity(CHUNK);
        Box::new(move |run, mut sink| {
            let mut out = out.activate();
            let gate = gate.get();
            let mut emit = |cap: &InputCapability<u64>, buf: &mut Vec<T>| {
                if gate {
                    let mut session = out.session(cap);
                    match sink.as_mut() {
                        Some(sink) => {
                            session.give_container(&mut buf.clone());
                            sink(cap, buf);
                        }
                        None => session.give_container(buf),
                    }
                } else if let Some(sink) = sink.as_mut() {
                    sink(cap, buf);
                }
                buf.clear();
            };
            parent(
                run,
                Some(&mut |cap: &InputCapability<u64>, data: &mut Vec<S>| {
                    for x in data.drain(..) {
                        if halt.as_ref().is_some_and(|h| h.halting()) {
                            // After a stop at once the rest passes unseen.
                            break;
                        }
                        f(x, &mut buf);
                        if buf.len() >= CHUNK {
                            emit(cap, &mut buf);
                        }
                    }
                    if !buf.is_empty() {
                        emit(cap, &mut buf);
                    }
                }),
            );
        })
    }

    fn stream(&self) -> StreamVec<'s, u64, T> {
        if let Output::Ran(s, gate) = &*self.output.borrow() {
            gate.set(true);
            return s.clone();
        }
        // An operator of its own that only runs the steps.
        let mut b = OperatorBuilder::new(self.name.to_string(), self.scope());
        let mut pull = self.attach(&mut b);
        let Output::Ran(stream, gate) = &*self.output.borrow() else {
            unreachable!("attach ran the step")
        };
        gate.set(true);
        b.build(move |caps| {
            drop(caps);
            move |_frontiers| pull(true, None)
        });
        stream.clone()
    }

    fn scope(&self) -> Scope<'s, u64> {
        self.parent.scope()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use crate::testing::{collect_into, run_batches, run_local};

    fn input() -> Vec<Vec<u64>> {
        vec![(0..3000).collect(), vec![], (7..40).collect()]
    }

    /// What `flat_map → filter → map` gives, computed without ember.
    fn model(batch: &[u64]) -> Vec<u64> {
        batch
            .iter()
            .flat_map(|&x| [x, x + 1])
            .filter(|x| x % 3 != 0)
            .map(|x| x * 2)
            .collect()
    }

    #[test]
    fn a_fused_chain_gives_the_records_of_the_unfused_one() {
        for workers in [1, 3] {
            // Fused into the per-batch operator (glom reads it pipelined).
            let fused = run_local(workers, input(), |s| {
                s.flat_map(|x| [x, x + 1])
                    .filter(|x| x % 3 != 0)
                    .map(|x| x * 2)
                    .glom()
            });
            // The same chain run by an operator of its own, then read.
            let unfused = run_batches(workers, input().len(), |s, out| {
                let q = s.queue_stream(input(), true, None);
                let chain = q.flat_map(|x| [x, x + 1]).filter(|x| x % 3 != 0);
                let stepped = s.from_timely(chain.to_timely()).map(|x| x * 2);
                collect_into(&s.from_timely(stepped.to_timely()).glom(), out);
            });
            for (f, u) in [(&fused, "fused"), (&unfused, "unfused")] {
                let got: Vec<Vec<u64>> = f
                    .iter()
                    .map(|parts: &Vec<Vec<u64>>| {
                        let mut all: Vec<u64> = parts.iter().flatten().copied().collect();
                        all.sort();
                        all
                    })
                    .collect();
                let want: Vec<Vec<u64>> = input()
                    .iter()
                    .map(|b| {
                        let mut m = model(b);
                        m.sort();
                        m
                    })
                    .collect();
                assert_eq!(got, want, "{u} at local[{workers}]");
            }
        }
    }

    #[test]
    fn a_stream_read_by_several_operators_runs_its_steps_once_per_record() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let out = run_batches(2, input().len(), move |s, out| {
            let calls = seen.clone();
            let q = s.queue_stream(input(), true, None);
            let doubled = q.map(move |x| {
                calls.fetch_add(1, Ordering::Relaxed);
                x * 2
            });
            // Three readers: two fuse (count, reduce), one needs a stream (union).
            let n = doubled.count();
            let sum = doubled.reduce(|a, b| a + b);
            let both = doubled.union(&doubled).count();
            collect_into(&n.union(&sum).union(&both), out);
        });
        let records: usize = input().iter().map(Vec::len).sum();
        assert_eq!(calls.load(Ordering::Relaxed), records);
        for (batch, got) in input().iter().zip(out) {
            let mut got = got;
            got.sort();
            let n = batch.len() as u64;
            let sum: u64 = batch.iter().map(|x| x * 2).sum();
            let mut want = vec![n, 2 * n];
            if !batch.is_empty() {
                want.push(sum);
            }
            want.sort();
            assert_eq!(got, want);
        }
    }
}
