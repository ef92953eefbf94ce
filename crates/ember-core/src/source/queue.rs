//! `queue_stream`: batches handed over by the program, one per batch time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::dstream::{DStream, SinglePart};
use crate::error::Result;
use crate::scope::StreamingScope;
use crate::source::{batch_source, BatchSource};
use crate::Data;

/// A queue of batches for [`StreamingScope::queue_stream`], shared between
/// the program and the workers (Spark's `Queue[RDD[T]]`): push batches while
/// the context runs, and each batch time takes one (or all) of them.
///
/// # Examples
///
/// ```
/// use ember_core::Queue;
/// let q: Queue<i32> = Queue::from(vec![vec![1, 2], vec![3]]);
/// q.push(vec![4]);
/// assert_eq!(q.len(), 3);
/// ```
#[derive(Debug)]
pub struct Queue<T> {
    inner: Arc<Mutex<QueueState<T>>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            inner: Arc::new(Mutex::new(QueueState {
                pending: VecDeque::new(),
                taken: BTreeMap::new(),
                readers: HashMap::new(),
            })),
        }
    }
}

#[derive(Debug)]
struct QueueState<T> {
    pending: VecDeque<Vec<T>>,
    /// What each batch time took, kept until every reading worker has it.
    taken: BTreeMap<u64, Taken<T>>,
    /// The last batch time each reading worker took.
    readers: HashMap<usize, u64>,
}

impl<T> Queue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a batch.
    pub fn push(&self, batch: Vec<T>) {
        self.inner
            .lock()
            .expect("queue lock")
            .pending
            .push_back(batch);
    }

    /// Batches not yet taken.
    pub fn len(&self) -> usize {
        self.inner.lock().expect("queue lock").pending.len()
    }

    /// Whether no batch waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> From<Vec<Vec<T>>> for Queue<T> {
    fn from(batches: Vec<Vec<T>>) -> Self {
        let q = Queue::new();
        q.inner.lock().expect("queue lock").pending.extend(batches);
        q
    }
}

impl<T: Clone> Queue<T> {
    /// The batch for `time`, the same for every worker that asks.
    fn take(
        &self,
        worker: usize,
        time: u64,
        one_at_a_time: bool,
        default: &Option<Vec<T>>,
    ) -> Taken<T> {
        let mut s = self.inner.lock().expect("queue lock");
        let batch = match s.taken.get(&time) {
            Some(b) => b.clone(),
            None => {
                let batch = if one_at_a_time {
                    s.pending.pop_front()
                } else if s.pending.is_empty() {
                    None
                } else {
                    Some(s.pending.drain(..).flatten().collect())
                };
                let batch = match batch.or_else(|| default.clone()) {
                    Some(records) => Taken::Queued(Arc::new(records)),
                    None => Taken::Exhausted,
                };
                s.taken.insert(time, batch.clone());
                batch
            }
        };
        s.readers.insert(worker, time);
        let oldest = s.readers.values().copied().min().unwrap_or(time);
        s.taken.retain(|t, _| *t >= oldest);
        batch
    }

    fn register(&self, worker: usize) {
        self.inner
            .lock()
            .expect("queue lock")
            .readers
            .insert(worker, 0);
    }
}

/// What a batch time took from a queue.
#[derive(Debug)]
enum Taken<T> {
    /// A queued batch, or the default batch.
    Queued(Arc<Vec<T>>),
    /// Nothing: the queue was empty and there is no default batch.
    Exhausted,
}

impl<T> Clone for Taken<T> {
    fn clone(&self) -> Self {
        match self {
            Taken::Queued(b) => Taken::Queued(b.clone()),
            Taken::Exhausted => Taken::Exhausted,
        }
    }
}

struct QueueSource<T> {
    queue: Queue<T>,
    one_at_a_time: bool,
    default: Option<Vec<T>>,
    index: usize,
    peers: usize,
    /// Where the exhausted batch times are told to the stream's readers.
    exhausted: SinglePart,
}

impl<T: Data> BatchSource<T> for QueueSource<T> {
    fn seal(&mut self, time: u64, out: &mut Vec<T>) -> Result<()> {
        let batch = match self
            .queue
            .take(self.index, time, self.one_at_a_time, &self.default)
        {
            Taken::Queued(batch) => batch,
            Taken::Exhausted => {
                // Spark's default: one empty partition.
                self.exhausted.mark(time);
                return Ok(());
            }
        };
        // Spark's parallelize: worker i gets the i-th contiguous slice.
        let n = batch.len();
        let (from, to) = (
            n * self.index / self.peers,
            n * (self.index + 1) / self.peers,
        );
        out.extend_from_slice(&batch[from..to]);
        Ok(())
    }
}

impl<'s> StreamingScope<'s> {
    /// A DStream from a queue of batches (Spark's `queueStream`): each batch
    /// time takes the next queued batch, or all queued batches when
    /// `one_at_a_time` is false; when the queue is empty, `default` (or an
    /// empty batch). Each worker gets a contiguous slice of a batch, as
    /// Spark's `parallelize` splits it.
    ///
    /// `queue` can be a `Vec<Vec<T>>` built inside the definition, or a
    /// [`Queue`] made outside and pushed to while the context runs.
    #[doc(alias = "queueStream")]
    pub fn queue_stream<T: Data>(
        &self,
        queue: impl Into<Queue<T>>,
        one_at_a_time: bool,
        default: Option<Vec<T>>,
    ) -> DStream<'s, T> {
        let queue = queue.into();
        let index = self.ctx.index;
        if index == 0 && self.ctx.shared.restored().is_some() {
            // As in Spark: a queue cannot be replayed from a checkpoint.
            tracing::warn!(
                "queue_stream: resuming from a checkpoint, the batches after it come from the \
                 queue as the program fills it now, not as they were before the restart"
            );
        }
        queue.register(index);
        let peers = self.ctx.peers;
        let exhausted = SinglePart::default();
        let marks = exhausted.clone();
        let stream = batch_source(self, "QueueStream", true, move |_| QueueSource {
            queue,
            one_at_a_time,
            default,
            index,
            peers,
            exhausted: marks,
        });
        DStream::new(stream, self.ctx.interval(), self.ctx.clone()).with_single_part(exhausted)
    }
}
