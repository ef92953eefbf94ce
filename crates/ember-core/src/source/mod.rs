//! Input sources and the batch clock that drives them.
//!
//! Every source runs inside a timely operator on each worker. The operator
//! holds a capability for the batch being filled (the *open* batch `t`, which
//! takes what arrives in `[t - interval, t)`), and *seals* it when the clock
//! reaches `t`: the source emits what belongs to `t` and moves its capability
//! to `t + interval`. When the context stops, sources seal up to the agreed
//! stop time and drop their capabilities, which ends the dataflow.

mod file;
pub(crate) mod lines;
mod listing;
mod planned;
mod queue;
mod receiver;
mod socket;
mod store;
mod wal;

pub use file::{FileStreamOptions, LineSplitter};
pub use planned::BatchPlanner;
pub use queue::Queue;
pub use receiver::{Received, Receiver, ReceiverContext, ReceiverOptions, SocketOptions};
pub use store::{register_file_store, FileStore, OpenedFile, StoreOpener, StoredFile};

use std::rc::Rc;
use std::time::Duration;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::StreamVec;
use timely::scheduling::SyncActivator;

use crate::error::Result;
use crate::scope::{StreamingScope, WorkerCtx};
use crate::Data;

/// What a source does at the batch clock's events.
pub(crate) trait BatchSource<T>: 'static {
    /// Called on every activation while `open` is being filled.
    fn poll(&mut self, _open: u64, _out: &mut Vec<T>) -> Result<()> {
        Ok(())
    }

    /// The batch at `time` closes: emit what remains of it.
    fn seal(&mut self, time: u64, out: &mut Vec<T>) -> Result<()>;

    /// The last batch of a graceful stop closes: stop receiving, and emit
    /// what was received. False when a rate limit leaves some of it for
    /// one more batch (the stop then waits for it).
    fn seal_last(&mut self, time: u64, out: &mut Vec<T>) -> Result<bool> {
        self.seal(time, out).map(|()| true)
    }

    /// The source will not be called again.
    fn stop(&mut self) {}

    /// How many input records an emitted item stands for (a block of
    /// lines counts its lines; a file path counts nothing, its reader does).
    fn records(&self, _item: &T) -> u64 {
        1
    }
}

/// A source that is stopped when dropped, unless it was stopped before: a
/// dataflow dropped after a stop at once still ends its receivers' threads.
struct StopOnDrop<T, S: BatchSource<T>> {
    src: S,
    stopped: bool,
    _records: std::marker::PhantomData<T>,
}

impl<T, S: BatchSource<T>> StopOnDrop<T, S> {
    fn stop(&mut self) {
        if !std::mem::replace(&mut self.stopped, true) {
            self.src.stop();
        }
    }
}

impl<T, S: BatchSource<T>> Drop for StopOnDrop<T, S> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds the timely operator around a [`BatchSource`]. `active` is false on
/// workers where this source has nothing to do (e.g. a socket receiver runs
/// on one worker): they hold no capability, so the others set the pace.
pub(crate) fn batch_source<'s, T, S>(
    ss: &StreamingScope<'s>,
    name: &str,
    active: bool,
    make: impl FnOnce(SyncActivator) -> S,
) -> StreamVec<'s, u64, T>
where
    T: Data,
    S: BatchSource<T>,
{
    let ctx: Rc<WorkerCtx> = ss.ctx.clone();
    let scope = ss.scope;
    let name = name.to_string();
    source::<_, CapacityContainerBuilder<Vec<T>>, _, _>(scope, &name.clone(), move |cap, info| {
        let activator = scope.activator_for(info.address.clone());
        let sync = scope.worker().sync_activator_for(info.address.to_vec());
        ctx.shared.clock().register(sync.clone());
        ctx.shared.register_waker(sync.clone());
        let mut guard = StopOnDrop {
            src: make(sync),
            stopped: false,
            _records: std::marker::PhantomData,
        };
        let interval = ctx.interval();
        let mut cap = active.then(|| cap.delayed(&ctx.first_time(interval)));
        let mut out = Vec::new();
        // Records emitted into the open batch so far.
        let mut emitted = 0u64;
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let src = &mut guard.src;
            let shared = &ctx.shared;
            let now = shared.clock().now_ms();
            let mut failed = None;
            let open = loop {
                let t = *c.time();
                // Read afresh: a graceful stop may be extended for a backlog.
                let stop_at = shared.stop_at();
                if t >= stop_at {
                    break None;
                }
                // The last batch before a stop closes at once.
                let last = t + interval >= stop_at;
                let sealing = now >= t || last;
                let step = if last {
                    src.seal_last(t, &mut out).map(|drained| {
                        if !drained {
                            shared.extend_stop(t + 2 * interval);
                        }
                    })
                } else if sealing {
                    src.seal(t, &mut out)
                } else {
                    src.poll(t, &mut out)
                };
                if let Err(e) = step {
                    failed = Some(e);
                    break None;
                }
                emitted += out.iter().map(|x| src.records(x)).sum::<u64>();
                if !out.is_empty() {
                    output.session(&*c).give_container(&mut out);
                    out.clear();
                }
                if !sealing {
                    break Some(t);
                }
                shared.bus().sealed(t, &name, emitted);
                emitted = 0;
                c.downgrade(&(t + interval));
            };
            match open {
                Some(t) => {
                    if shared.clock().is_system() {
                        activator.activate_after(Duration::from_millis(t.saturating_sub(now)));
                    }
                }
                None => {
                    if let Some(e) = failed {
                        tracing::error!(source = %name, "{e}");
                        shared.fail(e);
                    }
                    guard.stop();
                    cap = None;
                }
            }
        }
    })
}
