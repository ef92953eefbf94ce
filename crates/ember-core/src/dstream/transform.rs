//! Operations from one DStream to another: the pipelined ones (`map`,
//! `flat_map`, `filter`, `repartition`, `union`) and the per-batch ones
//! (`count`, `reduce`, `map_partitions`, `glom`, `transform`).

use std::hash::Hash;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::core::Exchange as _;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, Operator};
use timely::dataflow::StreamVec;

use super::DStream;

/// A record's place in a gathered batch: its order key (see
/// `Ordered`), then its worker.
type Tag = (u64, u32);

/// Both sides of a `transform_with` batch, tagged with their place.
type Tagged2<T, W> = (Vec<(Tag, T)>, Vec<(Tag, W)>);
use crate::time::Time;
use crate::{Data, Error};

impl<'s, T: Data> DStream<'s, T> {
    /// Applies `f` to every record. Pipelined.
    ///
    /// # Examples
    ///
    /// ```
    /// let out = ember_core::testing::run_local(1, vec![vec![1, 2], vec![]], |s| s.map(|x| x * 10));
    /// assert_eq!(out, [vec![10, 20], vec![]]);
    /// ```
    pub fn map<U: Data>(&self, mut f: impl FnMut(T) -> U + 'static) -> DStream<'s, U> {
        self.narrow("Map", move |x, out| out.push(f(x)))
    }

    /// Applies `f` to every record and flattens what it returns. Pipelined.
    #[doc(alias = "flatMap")]
    pub fn flat_map<I>(&self, mut f: impl FnMut(T) -> I + 'static) -> DStream<'s, I::Item>
    where
        I: IntoIterator,
        I::Item: Data,
    {
        self.narrow("FlatMap", move |x, out: &mut Vec<I::Item>| out.extend(f(x)))
    }

    /// Keeps the records for which `f` is true. Pipelined.
    pub fn filter(&self, mut f: impl FnMut(&T) -> bool + 'static) -> DStream<'s, T> {
        self.narrow("Filter", move |x, out: &mut Vec<T>| {
            if f(&x) {
                out.push(x)
            }
        })
    }

    /// Applies `f` once per batch to each worker's part of the batch (Spark's
    /// partition), when the batch is complete; also to empty parts.
    #[doc(alias = "mapPartitions")]
    pub fn map_partitions<U, I>(
        &self,
        mut f: impl FnMut(std::vec::IntoIter<T>) -> I + 'static,
    ) -> DStream<'s, U>
    where
        U: Data,
        I: IntoIterator<Item = U>,
    {
        self.try_map_partitions(move |part| Ok::<_, std::convert::Infallible>(f(part)))
    }

    /// [`map_partitions`](Self::map_partitions) for a function that can
    /// fail, as a Scala `mapPartitions` body throws: an `Err` stops the
    /// context with [`Error::User`](crate::Error::User) naming
    /// `try_map_partitions` and the batch; [`Error::downcast_ref`](crate::Error::downcast_ref)
    /// gives back the `E` returned (an `ember::Error` stops it as it is).
    #[doc(alias = "mapPartitions")]
    pub fn try_map_partitions<U, I, E>(
        &self,
        mut f: impl FnMut(std::vec::IntoIter<T>) -> Result<I, E> + 'static,
    ) -> DStream<'s, U>
    where
        U: Data,
        I: IntoIterator<Item = U>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let shared = self.ctx.shared.clone();
        if let Some(ordered) = &self.ordered {
            return self.map_ordered_partitions(ordered.lineage.clone(), ordered.range, f);
        }
        let is_part = self.is_part_here();
        self.with(self.batch_fold(
            Pipeline,
            "MapPartitions",
            Vec::new,
            |acc: &mut Vec<T>, data| acc.append(data),
            move |t, acc, out| {
                if !is_part(t) {
                    return;
                }
                match f(acc.into_iter()) {
                    Ok(records) => out.extend(records),
                    Err(e) => {
                        shared.fail(Error::user("try_map_partitions", Time::from_millis(t), e))
                    }
                }
            },
        ))
    }

    /// [`try_map_partitions`](Self::try_map_partitions) of a window's
    /// records: as in Spark, where a window's partitions are those of its
    /// batches, `f` runs once per batch of the window that has records on
    /// this worker (once with none if no batch has), and what it returns
    /// keeps that batch's place in the window's order.
    fn map_ordered_partitions<U, I, E>(
        &self,
        keyed: super::fuse::Lineage<'s, (u64, T)>,
        range: u64,
        mut f: impl FnMut(std::vec::IntoIter<T>) -> Result<I, E> + 'static,
    ) -> DStream<'s, U>
    where
        U: Data,
        I: IntoIterator<Item = U>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let shared = self.ctx.shared.clone();
        let stream = self.with_lineage(keyed).batch_fold(
            Pipeline,
            "MapPartitions",
            Vec::new,
            |acc: &mut Vec<(u64, T)>, data| acc.append(data),
            move |t, mut acc, out: &mut Vec<(u64, U)>| {
                // They come in key order; a stable sort makes sure of it.
                acc.sort_by_key(|(key, _)| *key);
                let mut records = acc.into_iter().peekable();
                loop {
                    let key = records.peek().map_or(0, |(key, _)| *key);
                    let mut part = Vec::new();
                    while let Some((_, x)) = records.next_if(|(k, _)| *k == key) {
                        part.push(x);
                    }
                    match f(part.into_iter()) {
                        Ok(made) => out.extend(made.into_iter().map(|y| (key, y))),
                        Err(e) => {
                            let time = Time::from_millis(t);
                            shared.fail(Error::user("try_map_partitions", time, e));
                            return;
                        }
                    }
                    if records.peek().is_none() {
                        return;
                    }
                }
            },
        );
        self.with_ordered(super::fuse::Lineage::Stream(stream), range, self.slide)
    }

    /// Each worker's part of each batch as one `Vec` (Spark's `glom`): one
    /// record per worker per batch, empty parts included. As in Spark, an
    /// exhausted queue stream's batch is one empty part.
    pub fn glom(&self) -> DStream<'s, Vec<T>> {
        let is_part = self.is_part_here();
        self.with(self.batch_fold(
            Pipeline,
            "Glom",
            Vec::new,
            |acc: &mut Vec<T>, data| acc.append(data),
            move |t, acc, out| {
                if is_part(t) {
                    out.push(acc)
                }
            },
        ))
    }

    /// Spreads records round-robin over `partitions` workers (all workers when
    /// `partitions` is at least their number). Pipelined. In ember a batch's
    /// partitions are its workers' parts.
    pub fn repartition(&self, partitions: usize) -> DStream<'s, T> {
        let targets = partitions.clamp(1, self.ctx.peers) as u64;
        let mut next = self.ctx.index as u64;
        self.with(self.stream().exchange(move |_| {
            next = next.wrapping_add(1);
            next % targets
        }))
    }

    /// The records of both streams, batch by batch. Pipelined.
    ///
    /// Within a batch, records are in partition (worker) order, each worker's
    /// part holding both streams' records as they arrived; Spark lists all of
    /// the first stream's partitions before the second's.
    ///
    /// # Errors
    ///
    /// Streams with different slides fail `start` with
    /// [`Error::InvalidGraph`](crate::Error::InvalidGraph), as in Spark.
    pub fn union(&self, other: &DStream<'s, T>) -> DStream<'s, T> {
        self.check_same_slide(other, "union");
        self.with(self.stream().concat(other.stream()))
    }

    /// The number of records in each batch: one record per batch, 0 for an
    /// empty batch.
    pub fn count(&self) -> DStream<'s, u64> {
        let partial = self.batch_fold(
            Pipeline,
            "CountPartial",
            || 0u64,
            |n, data| *n += data.len() as u64,
            |_, n, out| out.push(n),
        );
        let is_first = self.ctx.index == 0;
        self.with(self.with(partial).batch_fold(
            Exchange::new(|_| 0),
            "Count",
            || 0u64,
            |n, data: &mut Vec<u64>| *n += data.iter().sum::<u64>(),
            move |_, n, out| {
                if is_first {
                    out.push(n);
                }
            },
        ))
    }

    /// Each distinct record of a batch with its number of occurrences.
    #[doc(alias = "countByValue")]
    pub fn count_by_value(&self) -> DStream<'s, (T, u64)>
    where
        T: Hash + Eq,
    {
        self.map(|x| (x, 1u64)).reduce_by_key(|a, b| a + b)
    }

    /// Reduces each batch to one record with an associative function;
    /// nothing for an empty batch.
    pub fn reduce(&self, f: impl Fn(T, T) -> T + 'static) -> DStream<'s, T> {
        let f = std::rc::Rc::new(f);
        let g = f.clone();
        let fold = move |acc: &mut Option<T>, data: &mut Vec<T>| {
            for x in data.drain(..) {
                *acc = Some(match acc.take() {
                    Some(a) => g(a, x),
                    None => x,
                });
            }
        };
        let partial = self.batch_fold(
            Pipeline,
            "ReducePartial",
            || None,
            fold.clone(),
            |_, acc, out| out.extend(acc),
        );
        self.with(self.with(partial).batch_fold(
            Exchange::new(|_| 0),
            "Reduce",
            || None,
            fold,
            |_, acc, out| out.extend(acc),
        ))
    }

    /// Tags each record with its place in partition order (its order key,
    /// then this worker's index), keeping at most `limit` records per worker
    /// and batch. Pipelined; the first step of gathering a batch on worker 0
    /// in partition order.
    pub(crate) fn tagged(&self, limit: Option<usize>) -> StreamVec<'s, u64, (Tag, T)> {
        let index = self.ctx.index as u32;
        let Some(limit) = limit else {
            return match &self.ordered {
                Some(o) => o.lineage.stream().map(move |(k, x)| ((k, index), x)),
                None => self.stream().map(move |x| ((0, index), x)),
            };
        };
        // A worker's records come in key order, so its first `limit` are
        // all it can contribute to the batch's first `limit`.
        let (keyed, _) = self.order_keyed();
        keyed
            .stream()
            .unary_frontier::<CapacityContainerBuilder<Vec<(Tag, T)>>, _, _, _>(
                Pipeline,
                "Limit",
                move |_, _| {
                    let mut taken: Vec<(u64, usize)> = Vec::new();
                    move |(input, frontier), output| {
                        input.for_each(|stamp, data| {
                            let t = stamp.least().copied().unwrap_or_default();
                            let i = match taken.iter().position(|(pt, _)| *pt == t) {
                                Some(i) => i,
                                None => {
                                    taken.push((t, 0));
                                    taken.len() - 1
                                }
                            };
                            let room = limit - taken[i].1;
                            let n = room.min(data.len());
                            taken[i].1 += n;
                            if n > 0 {
                                output
                                    .session(&stamp)
                                    .give_iterator(data.drain(..n).map(|(k, x)| ((k, index), x)));
                            }
                        });
                        taken.retain(|(t, _)| frontier.less_equal(t));
                    }
                },
            )
    }

    /// Calls `f` on worker 0 with each whole batch, in partition order, once
    /// the batch is complete (empty batches included); returns what `f` emits.
    pub(crate) fn on_gathered<U: Data>(
        &self,
        name: &str,
        limit: Option<usize>,
        mut f: impl FnMut(Vec<T>, Time, &mut Vec<U>) + 'static,
    ) -> StreamVec<'s, u64, U> {
        let is_first = self.ctx.index == 0;
        self.with(self.tagged(limit)).batch_fold(
            Exchange::new(|_| 0),
            name,
            Vec::new,
            |acc: &mut Vec<(Tag, T)>, data| acc.append(data),
            move |t, mut acc, out| {
                if is_first {
                    // Stable: each worker's records keep their order.
                    acc.sort_by_key(|(tag, _)| *tag);
                    f(
                        acc.into_iter().map(|(_, x)| x).collect(),
                        Time::from_millis(t),
                        out,
                    );
                }
            },
        )
    }

    /// Applies `f` to each whole batch with its time (Spark's `transform`).
    /// The batch is gathered on one worker, in partition order, and the
    /// result lives there: follow with [`repartition`](Self::repartition)
    /// to spread heavy work again.
    pub fn transform<U: Data>(
        &self,
        mut f: impl FnMut(Vec<T>, Time) -> Vec<U> + 'static,
    ) -> DStream<'s, U> {
        self.try_transform(move |batch, t| Ok::<_, std::convert::Infallible>(f(batch, t)))
    }

    /// [`transform`](Self::transform) for a function that can fail: an `Err`
    /// stops the context with [`Error::User`](crate::Error::User) naming
    /// `try_transform` and the batch; [`Error::downcast_ref`](crate::Error::downcast_ref)
    /// gives back the `E` returned (an `ember::Error` stops it as it is).
    pub fn try_transform<U: Data, E>(
        &self,
        mut f: impl FnMut(Vec<T>, Time) -> Result<Vec<U>, E> + 'static,
    ) -> DStream<'s, U>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let shared = self.ctx.shared.clone();
        self.with(
            self.on_gathered("Transform", None, move |batch, t, out| match f(batch, t) {
                Ok(records) => out.extend(records),
                Err(e) => shared.fail(Error::user("try_transform", t, e)),
            }),
        )
    }

    /// Applies `f` to the batches of this stream and `other` at the same time
    /// (Spark's `transformWith`). Both are gathered on one worker.
    ///
    /// # Errors
    ///
    /// Streams with different slides fail `start` with
    /// [`Error::InvalidGraph`](crate::Error::InvalidGraph).
    #[doc(alias = "transformWith")]
    pub fn transform_with<W: Data, U: Data>(
        &self,
        other: &DStream<'s, W>,
        mut f: impl FnMut(Vec<T>, Vec<W>, Time) -> Vec<U> + 'static,
    ) -> DStream<'s, U> {
        self.check_same_slide(other, "transform_with");
        let is_first = self.ctx.index == 0;
        let left = self.with(self.tagged(None));
        let right = other.with(other.tagged(None));
        self.with(left.batch_fold2(
            &right,
            Exchange::new(|_| 0),
            Exchange::new(|_| 0),
            "TransformWith",
            || (Vec::new(), Vec::new()),
            |acc: &mut Tagged2<T, W>, data| acc.0.append(data),
            |acc, data| acc.1.append(data),
            move |t, (mut a, mut b), out| {
                if is_first {
                    a.sort_by_key(|(tag, _)| *tag);
                    b.sort_by_key(|(tag, _)| *tag);
                    let a = a.into_iter().map(|(_, x)| x).collect();
                    let b = b.into_iter().map(|(_, x)| x).collect();
                    out.extend(f(a, b, Time::from_millis(t)));
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{collect_into, run_batches};

    /// Batch 1 queued with records, batch 2 queued empty, then the queue is
    /// exhausted for batches 3 and 4.
    fn parts_per_batch(workers: usize) -> Vec<Vec<usize>> {
        run_batches(workers, 4, |s, out| {
            let q = s.queue_stream(vec![vec![1, 2, 3, 4, 5], vec![]], true, None);
            collect_into(&q.glom().map(|part: Vec<i32>| part.len()), out);
        })
    }

    #[test]
    fn glom_gives_a_list_per_worker_and_one_for_an_exhausted_queue() {
        assert_eq!(parts_per_batch(1), [vec![5], vec![0], vec![0], vec![0]]);
        // Spark's parallelize cuts 5 records in 2 as 2 + 3, in 3 as 1 + 2 + 2;
        // its exhausted queue stream gives an RDD of one empty partition.
        assert_eq!(
            parts_per_batch(2),
            [vec![2, 3], vec![0, 0], vec![0], vec![0]]
        );
        assert_eq!(
            parts_per_batch(3),
            [vec![1, 2, 2], vec![0, 0, 0], vec![0], vec![0]]
        );
    }

    #[test]
    fn map_partitions_and_foreach_partition_run_once_for_an_exhausted_queue() {
        use std::sync::{Arc, Mutex};
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let out: Vec<Vec<usize>> = run_batches(3, 3, move |s, out| {
            let q = s.queue_stream(vec![vec![7u8; 6]], true, None);
            let seen = seen.clone();
            q.foreach_partition(move |part, t| {
                seen.lock().unwrap().push((t.milliseconds(), part.len()))
            });
            collect_into(&q.map_partitions(|part| [part.count()]), out);
        });
        assert_eq!(out, [vec![2, 2, 2], vec![0], vec![0]]);
        let mut calls = calls.lock().unwrap().clone();
        calls.sort();
        assert_eq!(
            calls,
            [(1000, 2), (1000, 2), (1000, 2), (2000, 0), (3000, 0)]
        );
    }
}
