//! Words borrowed from their lines: Spark's
//! `lines.flatMap(_.split(" ")).map((_, 1)).reduceByKey(_ + _)` without a
//! heap `String` per word.
//!
//! With [`DStream::flat_map`] every word becomes an owned `String` (the
//! closure gets the line by value, so what it returns cannot borrow it), and
//! a count then hashes that `String` into a map that usually already holds
//! the same key and drops it again. [`DStream::flat_map_str`] lends the
//! closure the line as `&str` and takes back slices of it; the steps after
//! it run in the same operator while the line is alive, and the map-side
//! combine looks each word up by `&str`, so a key is copied into a `String`
//! only the first time a worker sees it in a batch.
//!
//! When the lines are those of `socket_text_stream`, the reduction reads
//! them in place in the received blocks of text, so no `String` is made per
//! line either.
//!
//! The borrowed stages end in a keyed reduction (the only place a word needs
//! to outlive its line) or in [`BorrowedWords::to_dstream`], which turns them
//! back into an ordinary DStream of owned records.

use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use timely::dataflow::channels::pact::Pipeline;

use super::pair::{merge_slot, SpareSlots};
use super::DStream;
use crate::hash::FxHashMap;
use crate::source::lines::LineBlock;
use crate::Data;

/// A worker's partial value per word in a batch (`None` only while the
/// user's function runs, as in `combine_by_key`).
type Partials<V> = FxHashMap<String, Option<V>>;

/// The words [`DStream::flat_map_str`]'s function returns for a line, as
/// slices of it: `line.split(' ').collect()`. Up to 16 words are held
/// without a heap allocation.
pub type Words<'a> = smallvec::SmallVec<[&'a str; 16]>;

/// The words of each line of a `DStream<String>`, as slices of the line:
/// made by [`DStream::flat_map_str`].
///
/// Nothing is copied until the words reach [`map`](Self::map) and a keyed
/// reduction, [`count_by_value`](Self::count_by_value), or
/// [`to_dstream`](Self::to_dstream).
#[must_use = "borrowed words do nothing until they end in a reduction or to_dstream()"]
pub struct BorrowedWords<'s, F> {
    lines: DStream<'s, String>,
    split: F,
}

/// `(word, value)` pairs whose words are slices of their lines: made by
/// [`BorrowedWords::map`]. End them in [`reduce_by_key`](Self::reduce_by_key)
/// (or a windowed reduction), or [`to_dstream`](Self::to_dstream).
#[must_use = "borrowed pairs do nothing until they end in a reduction or to_dstream()"]
pub struct BorrowedPairs<'s, F, G, V> {
    lines: DStream<'s, String>,
    split: F,
    pair: G,
    value: PhantomData<V>,
}

impl<'s> DStream<'s, String> {
    /// Spark's `flatMap` for text, with words that borrow their line:
    /// `f` gets each line as `&str` and returns slices of it (Spark's
    /// `_.split(" ")` is `|line| line.split(' ').collect()`).
    ///
    /// Follow it with [`map`](BorrowedWords::map) to `(word, value)` pairs
    /// and [`reduce_by_key`](BorrowedPairs::reduce_by_key), or with
    /// [`count_by_value`](BorrowedWords::count_by_value): each worker then
    /// counts words by looking them up as `&str` and copies a word into a
    /// `String` only the first time it sees it in a batch, instead of
    /// allocating (and freeing) a `String` per word as [`flat_map`](Self::flat_map)
    /// must. The results are the same as with `flat_map`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lines = vec!["to be or not to be".to_string()];
    /// let mut out = ember_core::testing::run_local(2, vec![lines], |lines| {
    ///     lines
    ///         .flat_map_str(|line| line.split(' ').collect())
    ///         .map(|word| (word, 1))
    ///         .reduce_by_key(|a, b| a + b)
    /// });
    /// out[0].sort();
    /// let expected = [("be", 2), ("not", 1), ("or", 1), ("to", 2)];
    /// assert_eq!(out[0], expected.map(|(w, n)| (w.to_string(), n)));
    /// ```
    #[doc(alias = "flatMap")]
    pub fn flat_map_str<F>(&self, f: F) -> BorrowedWords<'s, F>
    where
        F: for<'a> FnMut(&'a str) -> Words<'a> + 'static,
    {
        BorrowedWords {
            lines: self.clone(),
            split: f,
        }
    }
}

impl<'s, F> BorrowedWords<'s, F>
where
    F: for<'a> FnMut(&'a str) -> Words<'a> + 'static,
{
    /// Pairs each word with a value, keeping the word borrowed:
    /// `.map(|word| (word, 1))`. The key returned must be the word itself
    /// or another slice that lives as long (a part of it, a literal).
    pub fn map<G, V>(self, f: G) -> BorrowedPairs<'s, F, G, V>
    where
        G: for<'a> FnMut(&'a str) -> (&'a str, V) + 'static,
        V: Data,
    {
        BorrowedPairs {
            lines: self.lines,
            split: self.split,
            pair: f,
            value: PhantomData,
        }
    }

    /// Each distinct word of a batch with its number of occurrences
    /// (Spark's `countByValue`).
    #[doc(alias = "countByValue")]
    pub fn count_by_value(self) -> DStream<'s, (String, u64)> {
        self.map(|w| (w, 1u64)).reduce_by_key(|a, b| a + b)
    }

    /// The words as an ordinary DStream of owned `String`s, for any other
    /// operation.
    pub fn to_dstream(self) -> DStream<'s, String> {
        let mut split = self.split;
        self.lines.flat_map(move |line: String| {
            split(&line)
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    }
}

impl<'s, F, G, V> BorrowedPairs<'s, F, G, V>
where
    F: for<'a> FnMut(&'a str) -> Words<'a> + 'static,
    G: for<'a> FnMut(&'a str) -> (&'a str, V) + 'static,
    V: Data,
{
    /// Combines the values of each word in each batch with an associative
    /// and commutative function (Spark's `reduceByKey`): per worker while
    /// the words are still borrowed, then one partial per word is exchanged.
    #[doc(alias = "reduceByKey")]
    pub fn reduce_by_key(self, f: impl Fn(V, V) -> V + 'static) -> DStream<'s, (String, V)> {
        let f = Rc::new(f);
        let g = f.clone();
        let BorrowedPairs {
            lines,
            mut split,
            mut pair,
            ..
        } = self;
        let halt = lines.ctx.shared.clone();
        // One line's words into the worker's partials, looked up by `&str`.
        let mut add_line = move |acc: &mut Partials<V>, line: &str| {
            for word in split(line) {
                let (k, v) = pair(word);
                match acc.get_mut(k) {
                    Some(slot) => merge_slot(slot, v, &*f),
                    None => {
                        acc.insert(k.to_string(), Some(v));
                    }
                }
            }
        };
        let spare = SpareSlots::new();
        let partial = match lines.lineage.text_blocks() {
            // The lines of a text source: read in place in their blocks.
            Some(blocks) => lines.with_lineage(blocks).batch_fold(
                Pipeline,
                "CombinePartial",
                spare.init(),
                move |acc: &mut Partials<V>, data: &mut Vec<(u64, LineBlock)>| {
                    for (_, block) in data.drain(..) {
                        for line in block.iter() {
                            if halt.halting() {
                                // After a stop at once no user code runs again.
                                return;
                            }
                            add_line(acc, line);
                        }
                    }
                },
                spare.emit(),
            ),
            None => lines.batch_fold(
                Pipeline,
                "CombinePartial",
                spare.init(),
                move |acc: &mut Partials<V>, data: &mut Vec<String>| {
                    for line in data.drain(..) {
                        if halt.halting() {
                            return;
                        }
                        add_line(acc, &line);
                    }
                },
                spare.emit(),
            ),
        };
        lines
            .with(partial)
            .merge_partials(move |a: V, b: V| g(a, b))
    }

    /// Spark's `reduceByKeyAndWindow(func, windowLength, slideInterval)`:
    /// [`reduce_by_key`](Self::reduce_by_key) per batch, then the batches of
    /// each window reduced by key, as [`DStream::reduce_by_key_and_window`].
    #[doc(alias = "reduceByKeyAndWindow")]
    pub fn reduce_by_key_and_window(
        self,
        f: impl Fn(V, V) -> V + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (String, V)> {
        let f = Rc::new(f);
        let g = f.clone();
        self.reduce_by_key(move |a, b| f(a, b)).window_of_reduced(
            move |a, b| g(a, b),
            length,
            slide,
        )
    }

    /// Spark's `reduceByKeyAndWindow(func, invFunc, windowLength,
    /// slideInterval)`: as [`DStream::reduce_by_key_and_window_inv`], with
    /// the per-batch reduction done on borrowed words.
    #[doc(alias = "reduceByKeyAndWindow")]
    pub fn reduce_by_key_and_window_inv(
        self,
        f: impl Fn(V, V) -> V + 'static,
        inv: impl Fn(V, V) -> V + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (String, V)> {
        self.incremental_window(f, inv, None::<fn(&(String, V)) -> bool>, length, slide)
    }

    /// Spark's `reduceByKeyAndWindow(func, invFunc, windowLength,
    /// slideInterval, numPartitions, filterFunc)`: as
    /// [`DStream::reduce_by_key_and_window_inv_filter`], with the per-batch
    /// reduction done on borrowed words.
    #[doc(alias = "reduceByKeyAndWindow")]
    pub fn reduce_by_key_and_window_inv_filter(
        self,
        f: impl Fn(V, V) -> V + 'static,
        inv: impl Fn(V, V) -> V + 'static,
        keep: impl Fn(&(String, V)) -> bool + 'static,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (String, V)> {
        self.incremental_window(f, inv, Some(keep), length, slide)
    }

    fn incremental_window(
        self,
        f: impl Fn(V, V) -> V + 'static,
        inv: impl Fn(V, V) -> V + 'static,
        keep: Option<impl Fn(&(String, V)) -> bool + 'static>,
        length: Duration,
        slide: impl Into<Option<Duration>>,
    ) -> DStream<'s, (String, V)> {
        let f: Rc<dyn Fn(V, V) -> V> = Rc::new(f);
        let g = f.clone();
        self.reduce_by_key(move |a, b| g(a, b))
            .incremental_window_of_reduced(f, inv, keep, length, slide.into())
    }

    /// The pairs as an ordinary DStream with owned `String` keys, for any
    /// other operation.
    pub fn to_dstream(self) -> DStream<'s, (String, V)> {
        let (mut split, mut pair) = (self.split, self.pair);
        self.lines.flat_map(move |line: String| {
            split(&line)
                .into_iter()
                .map(|w| {
                    let (k, v) = pair(w);
                    (k.to_string(), v)
                })
                .collect::<Vec<_>>()
        })
    }
}
