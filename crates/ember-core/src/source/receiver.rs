//! Receivers: push sources that read on a thread of their own (Spark's
//! `Receiver` and `receiverStream`).
//!
//! A receiver connects somewhere and stores what it reads; see
//! [`Receiver`] for what the engine adds to every receiver.
//!
//! Records are dealt to the workers block by block, each block to the
//! worker with the fewest records of the open batch so far.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver as Channel, RecvTimeoutError, SendTimeoutError, Sender};
use timely::dataflow::operators::core::Exchange;
use timely::dataflow::StreamVec;
use timely::scheduling::SyncActivator;

use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::listener::{Bus, Event, ReceiverInfo};
use crate::rate::{Pacer, RateControl};
use crate::runtime::Shared;
use crate::scope::{Stateful, StreamingScope};
use crate::source::lines::LineBlock;
use crate::source::wal::{self, Replay, Wal};
use crate::source::{batch_source, BatchSource};
use crate::Data;

/// Settings of a receiver: [`StreamingScope::receiver_stream_with`] and
/// [`StreamingScope::socket_text_stream_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReceiverOptions {
    /// Wait before a receiver runs again after [`Received::Restart`] without
    /// a delay of its own; for sockets, between connection attempts
    /// (Spark's receiver restart delay, 2 s).
    pub reconnect_delay: Duration,
    /// Records per block at most; a socket also hands a block over whenever
    /// it has nothing more to read at the moment.
    pub block_lines: usize,
    /// Blocks buffered between the receiver and the workers.
    pub buffered_blocks: usize,
    /// Write received blocks to a write-ahead log in the checkpoint
    /// directory before they join a batch, so a restarted program replays
    /// them (Spark's `spark.streaming.receiver.writeAheadLog.enable`).
    pub write_ahead_log: bool,
    /// Also `fsync` each log write (survives a machine crash, not only a
    /// killed process; slower).
    pub sync_write_ahead_log: bool,
    /// For text sockets: a line longer than this many bytes is dropped up
    /// to its newline, with a warning and a count (as Hadoop's line reader
    /// skips lines over its `maxLineLength`), so a peer that never sends a
    /// newline cannot fill the memory. 16 MiB.
    pub max_line_bytes: usize,
}

/// The settings of [`StreamingScope::socket_text_stream_with`]: a socket is
/// a receiver like any other.
pub type SocketOptions = ReceiverOptions;

impl Default for ReceiverOptions {
    fn default() -> Self {
        ReceiverOptions {
            reconnect_delay: Duration::from_secs(2),
            block_lines: 4096,
            buffered_blocks: 32,
            write_ahead_log: false,
            sync_write_ahead_log: false,
            max_line_bytes: 16 << 20,
        }
    }
}

impl ReceiverOptions {
    /// Sets the wait between connection attempts (before a restart).
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }

    /// Turns the write-ahead log on or off (needs
    /// [`StreamingContext::checkpoint`](crate::StreamingContext::checkpoint)).
    pub fn write_ahead_log(mut self, on: bool) -> Self {
        self.write_ahead_log = on;
        self
    }

    /// Sets the longest line a text socket keeps (see
    /// [`max_line_bytes`](Self::max_line_bytes)).
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes;
        self
    }

    /// Sets the most records per block.
    pub fn block_lines(mut self, records: usize) -> Self {
        self.block_lines = records;
        self
    }
}

/// How long a blocked wait looks at the stop flag again.
pub(crate) const READ_POLL: Duration = Duration::from_millis(100);

/// A block of stored records older than this is handed over at the next
/// `store` or `is_stopped`, full or not.
const BLOCK_AGE: Duration = Duration::from_millis(20);

/// The receiver reads on.
const RUN: u8 = 0;
/// Stop reading, hand over what was read, then end (a graceful stop).
const FLUSH: u8 = 1;
/// End now (a stop that drops the open batch).
const HALT: u8 = 2;

/// What a receiver hands over at once: records received together.
pub(crate) trait Block: Data + Default {
    /// The records in the block.
    fn records(&self) -> usize;
    /// An empty block to fill next, with room like this one's.
    fn fresh(&self) -> Self;
}

/// Bytes a new block of lines has room for before it grows.
pub(crate) const BLOCK_BYTES: usize = 64 << 10;

impl Block for LineBlock {
    fn records(&self) -> usize {
        self.len()
    }

    fn fresh(&self) -> Self {
        // A quarter more than the last block, to a power of two: blocks
        // settle on one size, so a spare buffer (see `LineBlock`) seldom has
        // to grow, and a block seldom outgrows its buffer while it fills.
        LineBlock::with_capacity(
            (self.bytes() + self.bytes() / 4)
                .max(BLOCK_BYTES)
                .next_power_of_two(),
        )
    }
}

impl<T: Data> Block for Vec<T> {
    fn records(&self) -> usize {
        self.len()
    }

    fn fresh(&self) -> Self {
        Vec::with_capacity(self.len())
    }
}

/// How one run of a receiver ended: what [`Receiver::receive`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Received {
    /// The context is stopping ([`ReceiverContext::is_stopped`] turned
    /// true, or a store was refused): the receiver ends.
    Stopped,
    /// The input ended for good (Spark's `stop(message)`): the receiver
    /// ends, the stream goes on with empty batches.
    Finished(String),
    /// Run the receiver again after `delay` (the options' reconnect delay
    /// when `None`), reporting `reason` as its error meanwhile (Spark's
    /// `restart(message)`).
    Restart {
        /// Why, shown in the UI's receiver table and listener events.
        reason: String,
        /// How long to wait first.
        delay: Option<Duration>,
    },
    /// Stop the context with this error.
    Failed(Error),
}

/// The thread side of a receiver: hands blocks to the source operator,
/// paced by the rate limit and logged first when the log is on.
pub(crate) struct Feeder<B> {
    name: String,
    options: ReceiverOptions,
    tx: Sender<(u64, B)>,
    wake: SyncActivator,
    stop: Arc<AtomicU8>,
    wal: Option<Arc<Mutex<Wal>>>,
    next_seq: u64,
    failure: Arc<Mutex<Option<Error>>>,
    failed: bool,
    bus: Arc<Bus>,
    worker: usize,
    rate: Arc<RateControl>,
    read: Arc<AtomicU64>,
    interval_ms: u64,
    pacer: Pacer,
    /// `ReceiverStarted` was posted for this run of the receiver.
    started: bool,
}

/// What the engine runs on a receiver's thread: the public [`Receiver`]
/// trait, or an engine receiver with a block type of its own.
pub(crate) trait Receive<B>: Send + 'static {
    fn receive(&mut self, feed: &mut Feeder<B>) -> Received;

    /// Told the last block the write-ahead log kept from the run before a
    /// restart, once, before the first `receive`.
    fn resume_after(&mut self, _last: &B) {}
}

impl<B: Block> Feeder<B> {
    /// The context is stopping (gracefully or at once), or the log failed.
    pub(crate) fn stopped(&self) -> bool {
        self.failed || self.stop.load(Ordering::Acquire) != RUN
    }

    /// The context stops at once: what is not handed over is dropped.
    pub(crate) fn halted(&self) -> bool {
        self.failed || self.stop.load(Ordering::Acquire) == HALT
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    fn info(&self, active: bool, last_error: Option<String>) -> ReceiverInfo {
        ReceiverInfo {
            name: self.name.clone(),
            active,
            worker: self.worker,
            last_error,
            num_records: self.read.load(Ordering::Relaxed),
            rate_limit: self.rate.rate(),
        }
    }

    /// Reports the receiver running (connected), once per run.
    pub(crate) fn started(&mut self) {
        if !self.started {
            self.started = true;
            self.bus.post(Event::ReceiverStarted(self.info(true, None)));
        }
    }

    /// Reports an error the receiver keeps running through.
    pub(crate) fn error(&self, message: String) {
        tracing::warn!(source = %self.name, "{message}");
        self.bus
            .post(Event::ReceiverError(self.info(self.started, Some(message))));
    }

    /// Records per block: with a rate limit, about 50 ms of reading and
    /// never more than a quarter of what one batch may take. A batch takes
    /// whole blocks (one at least), so when backpressure cuts the rate,
    /// blocks read before the cut must be small for the cut to bite.
    pub(crate) fn block_lines(&self) -> usize {
        let most = self.options.block_lines.max(1);
        match self.rate.rate() {
            None => most,
            Some(r) => {
                let per_batch = r * self.interval_ms as f64 / 1000.0;
                ((r / 20.0).min(per_batch / 4.0).floor() as usize).clamp(1, most)
            }
        }
    }

    /// Logs and sends a block, after waiting out the rate limit, leaving a
    /// fresh one in its place; false when the context stopped at once while
    /// the channel was full, or the log failed. During a graceful stop it
    /// waits for the workers to take it.
    pub(crate) fn send(&mut self, block: &mut B) -> bool {
        if self.failed {
            return false;
        }
        let n = block.records();
        if n == 0 {
            return true;
        }
        let wait = self
            .pacer
            .reserve(n as u64, self.rate.rate(), Instant::now());
        let until = Instant::now() + wait;
        while !self.stopped() && Instant::now() < until {
            std::thread::sleep(READ_POLL.min(until.saturating_duration_since(Instant::now())));
        }
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(wal) = &self.wal {
            // Durable before it can join a batch.
            let logged = wal.lock().expect("wal lock").append_block(seq, &*block);
            if let Err(e) = logged {
                self.fail(e);
                return false;
            }
        }
        let fresh = block.fresh();
        let mut b = (seq, std::mem::replace(block, fresh));
        loop {
            match self.tx.send_timeout(b, READ_POLL) {
                Ok(()) => {
                    let _ = self.wake.activate();
                    return true;
                }
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.halted() {
                        return false;
                    }
                    b = back;
                }
                Err(SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }

    /// Stops the context with `error` (through the source operator, which
    /// is woken to see it).
    fn fail(&mut self, error: Error) {
        self.failed = true;
        *self.failure.lock().expect("failure lock") = Some(error);
        let _ = self.wake.activate();
    }

    /// Runs `receiver` until the context stops, restarting it as it asks.
    fn run<R: Receive<B>>(mut self, mut receiver: R) {
        while !self.stopped() {
            self.started = false;
            self.pacer = Pacer::new();
            match receiver.receive(&mut self) {
                Received::Stopped => break,
                Received::Finished(reason) => {
                    tracing::info!(source = %self.name, "the receiver finished: {reason}");
                    // The stream runs on; the thread ends with it.
                    while !self.stopped() {
                        std::thread::sleep(READ_POLL);
                    }
                    break;
                }
                Received::Failed(e) => {
                    self.fail(e);
                    break;
                }
                Received::Restart { reason, delay } => {
                    if self.failed {
                        break;
                    }
                    let delay = delay.unwrap_or(self.options.reconnect_delay);
                    tracing::warn!(source = %self.name, "{reason}; retrying in {delay:?}");
                    self.bus
                        .post(Event::ReceiverError(self.info(false, Some(reason))));
                    let until = Instant::now() + delay;
                    while !self.stopped() && Instant::now() < until {
                        std::thread::sleep(
                            READ_POLL.min(until.saturating_duration_since(Instant::now())),
                        );
                    }
                }
            }
        }
        self.bus
            .post(Event::ReceiverStopped(self.info(false, None)));
    }
}

/// A program's own receiver: Spark's `Receiver`, run by
/// [`StreamingScope::receiver_stream`].
///
/// ember calls [`receive`](Self::receive) on a thread of its own (on one
/// worker of the cluster); it reads from wherever its records come from and
/// [`store`](ReceiverContext::store)s them, until
/// [`is_stopped`](ReceiverContext::is_stopped) turns true or its input
/// fails. It returns how it ended: [`Received::Restart`] runs it again after
/// a delay (reconnecting is the common case), [`Received::Failed`] stops the
/// context with an error of the receiver's own kind.
///
/// The engine does the rest, for every receiver alike:
///
/// - **buffering**: stored records travel in blocks through a bounded
///   channel to the source operator; when it is full, `store` waits, so a
///   fast sender is slowed instead of memory growing;
/// - **rate limits**: [`StreamingConf::max_rate`](crate::StreamingConf::max_rate)
///   paces the receiver thread and caps each batch; with
///   [`backpressure`](crate::StreamingConf::backpressure) the cap follows
///   what the workers sustain;
/// - **write-ahead log**: with [`ReceiverOptions::write_ahead_log`], every
///   block is durable in the checkpoint directory before it can join a
///   batch, and a program restarted with
///   [`get_or_create`](crate::StreamingContext::get_or_create) replays
///   exactly what the killed one had received;
/// - **status**: listener events, the UI's receiver table and its metrics;
/// - **restarts**: after [`Received::Restart`] the receiver runs again.
///
/// Every worker builds the graph, so every worker makes a receiver value;
/// only the one on the receiving worker is run. Make it cheap to build and
/// connect inside `receive`.
///
/// # Examples
///
/// A receiver that counts up, as fast as the rate limit lets it:
///
/// ```
/// use ember_core::{seconds, ManualClock, Received, Receiver, ReceiverContext, StreamingConf,
///                  StreamingContext, Time};
/// use std::sync::{Arc, Mutex};
///
/// struct Counter { next: u64, until: u64 }
///
/// impl Receiver for Counter {
///     type Record = u64;
///     fn receive(&mut self, ctx: &mut ReceiverContext<'_, u64>) -> Received {
///         while self.next < self.until {
///             if !ctx.store(self.next) {
///                 return Received::Stopped;
///             }
///             self.next += 1;
///         }
///         Received::Finished("counted to the end".into())
///     }
/// }
///
/// let clock = ManualClock::new();
/// let conf = StreamingConf::new("counter", seconds(1)).master("local[2]")?.ui(None);
/// let ssc = StreamingContext::with_clock(conf, clock.clone())?;
/// let total = Arc::new(Mutex::new(0u64));
/// let sum = total.clone();
/// ssc.define(move |s| {
///     let sum = sum.clone();
///     s.receiver_stream(Counter { next: 0, until: 100 })
///         .foreach_rdd(move |batch, _| *sum.lock().unwrap() += batch.iter().sum::<u64>());
/// })?;
/// ssc.start()?;
/// // Wait until the receiver has handed everything over (see `receivers()`).
/// while ssc.receivers().first().map_or(0, |r| r.num_records) < 100 {
///     std::thread::sleep(std::time::Duration::from_millis(5));
/// }
/// clock.advance(seconds(1));
/// ssc.await_batch(Time::from_millis(1000))?;
/// ssc.stop(false)?;
/// assert_eq!(*total.lock().unwrap(), (0..100).sum::<u64>());
/// # Ok::<(), ember_core::Error>(())
/// ```
#[doc(alias = "receiverStream")]
pub trait Receiver: Send + 'static {
    /// The records this receiver stores.
    type Record: Data;

    /// Receives until the context stops or the input ends or fails; called
    /// again after each [`Received::Restart`].
    fn receive(&mut self, ctx: &mut ReceiverContext<'_, Self::Record>) -> Received;

    /// Called once, before the first [`receive`](Self::receive) of a
    /// program restarted with the write-ahead log on, with the last record
    /// the log kept from the run before. A receiver whose source can send
    /// again from a point (an SSE `Last-Event-ID`, a sequence number, a file
    /// offset) asks it for what follows `last`: then what the source sent
    /// while the program was down, or after the last logged block, is not
    /// lost, and nothing logged is received twice. Not called when the log
    /// holds no record (a first start, or nothing received since the
    /// checkpoints covered it all). Does nothing by default.
    fn resume_after(&mut self, last: &Self::Record) {
        let _ = last;
    }

    /// The receiver's name in the UI, listener events and logs.
    fn name(&self) -> String {
        let full = std::any::type_name::<Self>();
        let short = full.split('<').next().unwrap_or(full);
        short.rsplit("::").next().unwrap_or(short).to_string()
    }
}

/// What a [`Receiver`] stores into and asks of the engine (Spark's
/// `store`, `isStopped`, `reportError`, `restart`).
///
/// Stored records are handed over in blocks: when a block is full (see
/// [`ReceiverOptions::block_lines`] and the rate limit), when it is older
/// than 20 ms at the next `store` or `is_stopped`, on [`flush`](Self::flush),
/// and when `receive` returns. Call `flush` before a wait that may be long.
pub struct ReceiverContext<'a, T: Data> {
    feed: &'a mut Feeder<Vec<T>>,
    block: Vec<T>,
    since: Option<Instant>,
}

impl<T: Data> std::fmt::Debug for ReceiverContext<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverContext")
            .field("receiver", &self.feed.name())
            .field("buffered", &self.block.len())
            .finish_non_exhaustive()
    }
}

impl<T: Data> ReceiverContext<'_, T> {
    /// Stores one record. False when the context is stopping at once or
    /// the write-ahead log failed: the receiver should return
    /// [`Received::Stopped`]. May wait, when the rate limit or a full buffer
    /// says so.
    pub fn store(&mut self, record: T) -> bool {
        self.feed.started();
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        self.block.push(record);
        if self.block.len() >= self.feed.block_lines() || now - since >= BLOCK_AGE {
            return self.flush();
        }
        !self.feed.halted()
    }

    /// Stores several records (Spark's `store(iterator)`); see
    /// [`store`](Self::store).
    pub fn store_all(&mut self, records: impl IntoIterator<Item = T>) -> bool {
        records.into_iter().all(|r| self.store(r))
    }

    /// Hands over the records stored so far now. False as for
    /// [`store`](Self::store).
    pub fn flush(&mut self) -> bool {
        self.since = None;
        self.feed.send(&mut self.block)
    }

    /// Whether the context is stopping: the receiver should return. Also
    /// hands over a block that has waited long enough.
    pub fn is_stopped(&mut self) -> bool {
        if self.since.is_some_and(|s| s.elapsed() >= BLOCK_AGE) && !self.flush() {
            return true;
        }
        self.feed.stopped()
    }

    /// Reports the receiver running (e.g. connected) to listeners and the
    /// UI. The first [`store`](Self::store) of a run reports it too.
    pub fn report_started(&mut self) {
        self.feed.started();
    }

    /// Reports an error that the receiver keeps running through (Spark's
    /// `reportError`): logged, and shown in the UI's receiver table.
    pub fn report_error(&mut self, message: impl Into<String>) {
        self.feed.error(message.into());
    }

    /// What to return to be run again after the options' reconnect delay
    /// (Spark's `restart(message)`).
    pub fn restart(&self, reason: impl Into<String>) -> Received {
        Received::Restart {
            reason: reason.into(),
            delay: None,
        }
    }

    /// What to return to be run again after `delay`.
    pub fn restart_after(&self, reason: impl Into<String>, delay: Duration) -> Received {
        Received::Restart {
            reason: reason.into(),
            delay: Some(delay),
        }
    }
}

/// The engine side of a public [`Receiver`]: its records travel in `Vec`s.
struct Custom<R>(R);

impl<R: Receiver> Receive<Vec<R::Record>> for Custom<R> {
    fn receive(&mut self, feed: &mut Feeder<Vec<R::Record>>) -> Received {
        let mut ctx = ReceiverContext {
            feed,
            block: Vec::new(),
            since: None,
        };
        let ended = self.0.receive(&mut ctx);
        // What was stored is handed over, unless the stop drops it anyway.
        if !ctx.feed.halted() {
            ctx.flush();
        }
        ended
    }

    fn resume_after(&mut self, last: &Vec<R::Record>) {
        if let Some(record) = last.last() {
            self.0.resume_after(record);
        }
    }
}

/// A started receiver thread and the ends the source keeps.
struct Running<B> {
    blocks: Channel<(u64, B)>,
    stop: Arc<AtomicU8>,
    /// A failure on the receiver thread (the log, or the receiver's own).
    failure: Arc<Mutex<Option<Error>>>,
    _thread: JoinHandle<()>,
}

/// The write-ahead log side of a receiver source.
struct LogState<B> {
    dir: PathBuf,
    sync: bool,
    wal: Option<Arc<Mutex<Wal>>>,
    /// Resumed from a checkpoint: the batch time and log position it holds.
    restored: Option<(u64, u64)>,
    resuming: bool,
    replay: Replay<B>,
    /// The last batch time that is replayed rather than filled anew.
    replay_until: u64,
    /// The checkpoint directory, to see which checkpoints are complete.
    checkpoints: PathBuf,
    /// The log position each checkpoint of this run recorded.
    through_at: BTreeMap<u64, u64>,
    /// The log read back (and checked) while the graph was built.
    read_back: Vec<wal::Record<B>>,
}

impl<B> LogState<B> {
    /// At a checkpoint: starts a new segment, and removes the segments that
    /// the oldest checkpoint still kept no longer needs.
    fn rotate_and_trim(&mut self, time: u64, through: u64) -> Result<()> {
        let Some(wal) = &self.wal else { return Ok(()) };
        let mut wal = wal.lock().expect("wal lock");
        wal.rotate(time)?;
        self.through_at.insert(time, through);
        // Restoring falls back at most to the oldest complete checkpoint kept.
        if let Some(&oldest) = crate::checkpoint::committed_times(&self.checkpoints).first() {
            if let Some(&covered) = self.through_at.get(&oldest) {
                wal.drop_covered(oldest, covered);
                self.through_at.retain(|t, _| *t >= oldest);
            }
        }
        Ok(())
    }
}

/// The source operator's side of a receiver, on the receiving worker.
struct ReceiverSource<B, R> {
    name: String,
    options: ReceiverOptions,
    wake: SyncActivator,
    /// The receiver, until its thread starts.
    receiver: Option<R>,
    running: Option<Running<B>>,
    /// Records dealt to each worker in the open batch.
    dealt: Vec<u64>,
    /// The rate limit and its records cap per batch.
    rate: Arc<RateControl>,
    /// Records read by the receiver thread.
    read: Arc<AtomicU64>,
    /// The open batch, its cap and the records it took so far.
    filling: (u64, Option<u64>, u64),
    /// Blocks received that did not fit in the open batch's cap, oldest first.
    backlog: VecDeque<(u64, B)>,
    shared: Arc<Shared>,
    /// Every block before this one is in a sealed batch.
    drained_through: u64,
    log: Option<LogState<B>>,
    checkpoint: Stateful,
    bus: Arc<Bus>,
    worker: usize,
}

impl<B: Block, R: Receive<B>> ReceiverSource<B, R> {
    /// Starts the receiver thread, first replaying and rewriting the log.
    fn start(&mut self) -> Result<()> {
        let mut first_seq = 0;
        let mut wal = None;
        if let Some(log) = self.log.as_mut() {
            let records = std::mem::take(&mut log.read_back);
            let last = records
                .iter()
                .filter_map(|r| match r {
                    wal::Record::Block { seq, lines } if lines.records() > 0 => Some((*seq, lines)),
                    _ => None,
                })
                .max_by_key(|(seq, _)| *seq);
            if let (Some((_, block)), Some(receiver)) = (last, self.receiver.as_mut()) {
                receiver.resume_after(block);
            }
            let mut replay = match log.restored {
                Some((time, through)) => wal::replay(records, time, through),
                None => {
                    // No checkpoint yet: what was received is not in any
                    // batch of this run's clock; it all joins the first batch.
                    let mut r = wal::replay(records, 0, 0);
                    let by_batch = std::mem::take(&mut r.by_batch);
                    let mut all: Vec<(u64, B)> = by_batch.into_values().flatten().collect();
                    all.append(&mut r.unallocated);
                    r.unallocated = all;
                    r
                }
            };
            let blocks: usize =
                replay.by_batch.values().map(Vec::len).sum::<usize>() + replay.unallocated.len();
            if blocks > 0 {
                tracing::info!(
                    source = %self.name,
                    "recovery: {blocks} block(s) of records received before the restart are read \
                     back from the write-ahead log and processed again"
                );
            }
            let mut w = Wal::create(&log.dir, log.sync)?;
            // The replayed blocks move into this run's segment; then the
            // older segments are no longer needed.
            for (seq, block) in replay
                .by_batch
                .values()
                .flatten()
                .chain(&replay.unallocated)
            {
                w.append_block(*seq, block)?;
            }
            w.remove_older_segments()?;
            first_seq = replay.next_seq;
            self.drained_through = log.restored.map_or(0, |(_, through)| through);
            if self.drained_through == 0 {
                self.drained_through = replay
                    .by_batch
                    .values()
                    .flatten()
                    .chain(&replay.unallocated)
                    .map(|(s, _)| *s)
                    .min()
                    .unwrap_or(first_seq);
            }
            log.replay_until = replay.by_batch.keys().last().copied().unwrap_or(0);
            log.replay = std::mem::take(&mut replay);
            let shared = Arc::new(Mutex::new(w));
            log.wal = Some(shared.clone());
            wal = Some(shared);
        }
        let (tx, rx) = crossbeam_channel::bounded(self.options.buffered_blocks.max(1));
        let stop = Arc::new(AtomicU8::new(RUN));
        let failure = Arc::new(Mutex::new(None));
        let feeder = Feeder {
            name: self.name.clone(),
            options: self.options.clone(),
            tx,
            wake: self.wake.clone(),
            stop: stop.clone(),
            wal,
            next_seq: first_seq,
            failure: failure.clone(),
            failed: false,
            bus: self.bus.clone(),
            worker: self.worker,
            rate: self.rate.clone(),
            read: self.read.clone(),
            interval_ms: self.shared.conf().batch_ms,
            pacer: Pacer::new(),
            started: false,
        };
        let receiver = self
            .receiver
            .take()
            .ok_or_else(|| Error::Internal(format!("{}: started twice", self.name)))?;
        let handle = std::thread::Builder::new()
            .name(format!("ember-receiver-{}", self.name))
            .spawn(move || feeder.run(receiver))
            .map_err(|e| Error::Internal(format!("cannot start the receiver thread: {e}")))?;
        self.running = Some(Running {
            blocks: rx,
            stop,
            failure,
            _thread: handle,
        });
        Ok(())
    }

    fn push(&mut self, seq: u64, block: B, out: &mut Vec<(u64, B)>) {
        let n = block.records() as u64;
        self.filling.2 += n;
        let to = least_loaded(&self.dealt);
        self.dealt[to] += n;
        out.push((to as u64, block));
        self.drained_through = self.drained_through.max(seq + 1);
    }

    /// Moves backlog blocks into the open batch while its cap allows; true
    /// when the backlog is empty.
    fn take_backlog(&mut self, out: &mut Vec<(u64, B)>) -> bool {
        while let Some((_, block)) = self.backlog.front() {
            let (_, cap, taken) = self.filling;
            let n = block.records() as u64;
            // A block larger than a whole batch's cap (the rate just fell)
            // still goes alone, so nothing waits forever.
            if cap.is_some_and(|c| taken + n > c && taken > 0) {
                return false;
            }
            let (seq, block) = self.backlog.pop_front().expect("looked at above");
            self.push(seq, block, out);
        }
        true
    }

    /// Starts counting toward the cap of batch `open`.
    fn open(&mut self, open: u64) {
        if self.filling.0 != open {
            self.filling = (open, self.rate.batch_cap(self.shared.conf().batch_ms), 0);
        }
    }

    fn ensure_started(&mut self) -> Result<&Running<B>> {
        if self.running.is_none() {
            self.start()?;
        }
        self.running
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("{}: the receiver did not start", self.name)))
    }

    /// Moves what the receiver has sent into the open batch, unless the open
    /// batch is one being replayed.
    fn drain(&mut self, open: u64, out: &mut Vec<(u64, B)>) -> Result<()> {
        self.ensure_started()?;
        if self.log.as_ref().is_some_and(|l| open <= l.replay_until) {
            return Ok(());
        }
        if let Some(log) = self.log.as_mut() {
            for (seq, block) in std::mem::take(&mut log.replay.unallocated) {
                self.push(seq, block, out);
            }
        }
        self.open(open);
        if !self.take_backlog(out) {
            return Ok(());
        }
        let running = self.ensure_started()?;
        if let Some(e) = running.failure.lock().expect("failure lock").take() {
            return Err(e);
        }
        let blocks = running.blocks.clone();
        for block in blocks.try_iter() {
            self.backlog.push_back(block);
            if !self.take_backlog(out) {
                break;
            }
        }
        Ok(())
    }
}

impl<B: Block, R: Receive<B>> BatchSource<(u64, B)> for ReceiverSource<B, R> {
    fn poll(&mut self, open: u64, out: &mut Vec<(u64, B)>) -> Result<()> {
        self.drain(open, out)
    }

    fn seal(&mut self, time: u64, out: &mut Vec<(u64, B)>) -> Result<()> {
        self.ensure_started()?;
        let replayed = self
            .log
            .as_mut()
            .and_then(|l| l.replay.by_batch.remove(&time));
        for (seq, block) in replayed.into_iter().flatten() {
            self.push(seq, block, out);
        }
        self.drain(time, out)?;
        if let Some(wal) = self.log.as_ref().and_then(|l| l.wal.as_ref()) {
            wal.lock()
                .expect("wal lock")
                .append_sealed(time, self.drained_through)?;
        }
        let through = self.drained_through;
        self.checkpoint.save(time, || (time, through));
        if self.checkpoint.due(time) {
            if let Some(log) = self.log.as_mut() {
                log.rotate_and_trim(time, through)?;
            }
        }
        self.dealt.fill(0);
        Ok(())
    }

    fn seal_last(&mut self, time: u64, out: &mut Vec<(u64, B)>) -> Result<bool> {
        // A graceful stop: the receiver stops reading and hands over what it
        // read; all of it is processed, in as many batches as the cap needs.
        let running = self.ensure_started()?;
        running.stop.store(FLUSH, Ordering::Release);
        let blocks = running.blocks.clone();
        let failure = running.failure.clone();
        loop {
            match blocks.recv_timeout(READ_POLL) {
                Ok(block) => self.backlog.push_back(block),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) if self.shared.aborted() => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        if let Some(e) = failure.lock().expect("failure lock").take() {
            return Err(e);
        }
        self.open(time);
        let drained = self.take_backlog(out);
        self.seal(time, out)?;
        Ok(drained)
    }

    fn stop(&mut self) {
        if let Some(running) = &self.running {
            // After a graceful last batch the thread has ended already.
            let _ = running
                .stop
                .compare_exchange(RUN, HALT, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn records(&self, block: &(u64, B)) -> u64 {
        block.1.records() as u64
    }
}

/// The worker with the fewest records so far, the lowest on a tie (so the
/// first block of a batch goes to worker 0).
pub(crate) fn least_loaded(dealt: &[u64]) -> usize {
    // `min_by_key` returns the first of equal minima.
    dealt
        .iter()
        .enumerate()
        .min_by_key(|&(_, lines)| lines)
        .map_or(0, |(w, _)| w)
}

/// Builds a receiver source: the receiver runs on one worker (sources take
/// turns by their number), and each block it stores goes to the worker
/// with the fewest records of the open batch. `kind` names the source's
/// checkpointed state (its log position), `name` the receiver.
pub(crate) fn receiver_blocks<'s, B, R>(
    s: &StreamingScope<'s>,
    kind: &str,
    name: String,
    options: ReceiverOptions,
    receiver: R,
) -> StreamVec<'s, u64, (u64, B)>
where
    B: Block,
    R: Receive<B>,
{
    let ctx = &s.ctx;
    let id = ctx.next_source_id();
    let receiver_worker = id % ctx.peers;
    let checkpoint = ctx.stateful(kind, ctx.interval());
    let log = if options.write_ahead_log {
        match &ctx.shared.checkpoint_dir() {
            None => {
                ctx.definition_error(Error::graph(format!(
                    "{name}: the write-ahead log lives in the checkpoint directory: call \
                     StreamingContext::checkpoint(dir) before start"
                )));
                None
            }
            Some(dir) => {
                let restored: Vec<(u64, u64)> = checkpoint.restored();
                Some(LogState {
                    dir: dir.join("receivers").join(checkpoint.id.replace(':', "-")),
                    sync: options.sync_write_ahead_log,
                    wal: None,
                    restored: restored.into_iter().max(),
                    resuming: ctx.shared.restored().is_some() || ctx.shared.recovering(),
                    replay: Replay::default(),
                    replay_until: 0,
                    checkpoints: dir.clone(),
                    through_at: BTreeMap::new(),
                    read_back: Vec::new(),
                })
            }
        }
    } else {
        None
    };
    let active = ctx.index == receiver_worker;
    // The log is read and checked against the checkpoint now, so that a
    // damaged one fails `start` instead of losing records later.
    let log = match log {
        Some(mut l) if active && l.resuming => match wal::read_checked(&l.dir, l.restored) {
            Ok(records) => {
                l.read_back = records;
                Some(l)
            }
            Err(e) => {
                ctx.definition_error(e);
                None
            }
        },
        other => other,
    };
    let rate = Arc::new(ctx.shared.conf().rate_control());
    let read = if active {
        ctx.shared
            .bus()
            .listen(rate.listener(&name, ctx.shared.busy().clone()));
        ctx.shared
            .bus()
            .add_receiver(&name, ctx.index, rate.clone())
    } else {
        Arc::default()
    };
    let shared = ctx.shared.clone();
    let peers = ctx.peers;
    let worker = ctx.index;
    let bus = ctx.shared.bus().clone();
    let blocks = batch_source(s, &name.clone(), active, move |wake| ReceiverSource {
        name,
        options,
        wake,
        receiver: Some(receiver),
        running: None,
        dealt: vec![0; peers],
        rate,
        read,
        filling: (0, None, 0),
        backlog: VecDeque::new(),
        shared,
        drained_through: 0,
        log,
        checkpoint,
        bus,
        worker,
    });
    if peers > 1 {
        blocks.exchange(|(worker, _)| *worker)
    } else {
        blocks
    }
}

impl<'s> StreamingScope<'s> {
    /// The records a program's own [`Receiver`] stores (Spark's
    /// `receiverStream`), with the default [`ReceiverOptions`].
    #[doc(alias = "receiverStream")]
    pub fn receiver_stream<R: Receiver>(&self, receiver: R) -> DStream<'s, R::Record> {
        self.receiver_stream_with(receiver, ReceiverOptions::default())
    }

    /// [`receiver_stream`](Self::receiver_stream) with settings, e.g. the
    /// write-ahead log.
    pub fn receiver_stream_with<R: Receiver>(
        &self,
        receiver: R,
        options: ReceiverOptions,
    ) -> DStream<'s, R::Record> {
        let name = receiver.name();
        let blocks = receiver_blocks(self, "receiver_stream", name, options, Custom(receiver));
        DStream::new(blocks, self.ctx.interval(), self.ctx.clone())
            .flat_map(|(_, records): (u64, Vec<R::Record>)| records)
    }
}

#[cfg(test)]
mod tests {
    use super::least_loaded;

    #[test]
    fn blocks_go_to_the_worker_with_the_fewest_records() {
        // Blocks of alternating sizes: round-robin would give worker 0 all
        // the large ones.
        let mut dealt = vec![0u64; 2];
        for size in [4096, 100, 4096, 100, 4096, 100, 4096, 100] {
            let w = least_loaded(&dealt);
            dealt[w] += size;
        }
        assert_eq!(dealt, [8392, 8392]);
        assert_eq!(least_loaded(&[0, 0, 0]), 0);
        assert_eq!(least_loaded(&[5, 3, 3]), 1);
    }
}
