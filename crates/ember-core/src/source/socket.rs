//! `socket_text_stream`: UTF-8 lines from a TCP server, Spark's `SocketReceiver`.
//!
//! A receiver thread connects, reads lines into blocks and hands them to
//! the source operator through a bounded channel (when the channel is full
//! the receiver stops reading, and TCP slows the sender). When the server
//! closes the connection or refuses it, the receiver logs why and tries
//! again after [`SocketOptions::reconnect_delay`], as Spark's receiver
//! restarts. Each block goes to the worker that has the fewest lines of the
//! open batch so far (blocks differ in size: a block is cut whenever the
//! socket has nothing more to read), the first block of each batch to
//! worker 0, so the first lines of a batch come first in `print()`.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use timely::dataflow::operators::core::Exchange;
use timely::scheduling::SyncActivator;

use crate::context::Shared;
use crate::dstream::fuse::TextLines;
use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::listener::{Bus, Event, ReceiverInfo};
use crate::rate::{Pacer, RateControl};
use crate::scope::{Stateful, StreamingScope};
use crate::source::lines::LineBlock;
use crate::source::wal::{self, Replay, Wal};
use crate::source::{batch_source, BatchSource};

/// Settings of [`StreamingScope::socket_text_stream_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Wait between connection attempts (Spark's receiver restart delay, 2 s).
    pub reconnect_delay: Duration,
    /// Lines per block at most; a block is also sent whenever the socket has
    /// nothing more to read at the moment.
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
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            reconnect_delay: Duration::from_secs(2),
            block_lines: 4096,
            buffered_blocks: 32,
            write_ahead_log: false,
            sync_write_ahead_log: false,
        }
    }
}

impl SocketOptions {
    /// Sets the wait between connection attempts.
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
}

/// How long a blocked read waits before looking at the stop flag.
const READ_POLL: Duration = Duration::from_millis(100);

/// The receiver reads on.
const RUN: u8 = 0;
/// Stop reading, hand over what was read, then end (a graceful stop).
const FLUSH: u8 = 1;
/// End now (a stop that drops the open batch).
const HALT: u8 = 2;

/// A started receiver thread and the ends the source keeps.
struct Running {
    blocks: Receiver<(u64, LineBlock)>,
    stop: Arc<AtomicU8>,
    /// A write-ahead log failure on the receiver thread.
    failure: Arc<Mutex<Option<Error>>>,
    _thread: JoinHandle<()>,
}

/// The write-ahead log side of a socket source.
struct LogState {
    dir: PathBuf,
    sync: bool,
    wal: Option<Arc<Mutex<Wal>>>,
    /// Resumed from a checkpoint: the batch time and log position it holds.
    restored: Option<(u64, u64)>,
    resuming: bool,
    replay: Replay,
    /// The last batch time that is replayed rather than filled anew.
    replay_until: u64,
    /// The checkpoint directory, to see which checkpoints are complete.
    checkpoints: PathBuf,
    /// The log position each checkpoint of this run recorded.
    through_at: BTreeMap<u64, u64>,
}

impl LogState {
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

struct SocketSource {
    name: String,
    address: String,
    options: SocketOptions,
    wake: SyncActivator,
    receiver: Option<Running>,
    /// Lines dealt to each worker in the open batch.
    dealt: Vec<u64>,
    /// The rate limit and its records cap per batch.
    rate: Arc<RateControl>,
    /// Records read by the receiver thread.
    read: Arc<AtomicU64>,
    /// The open batch, its cap and the records it took so far.
    filling: (u64, Option<u64>, u64),
    /// Blocks received that did not fit in the open batch's cap, oldest first.
    backlog: VecDeque<(u64, LineBlock)>,
    shared: Arc<Shared>,
    /// Every block before this one is in a sealed batch.
    drained_through: u64,
    log: Option<LogState>,
    checkpoint: Stateful,
    bus: Arc<Bus>,
    worker: usize,
}

impl SocketSource {
    /// Starts the receiver thread, first replaying and rewriting the log.
    fn start(&mut self) -> Result<()> {
        let mut first_seq = 0;
        let mut wal = None;
        if let Some(log) = self.log.as_mut() {
            let records = if log.resuming {
                wal::read_all(&log.dir)?
            } else {
                Vec::new()
            };
            let mut replay = match log.restored {
                Some((time, through)) => wal::replay(records, time, through),
                None => {
                    // No checkpoint yet: what was received is not in any
                    // batch of this run's clock; it all joins the first batch.
                    let mut r = wal::replay(records, 0, 0);
                    let by_batch = std::mem::take(&mut r.by_batch);
                    let mut all: Vec<(u64, LineBlock)> = by_batch.into_values().flatten().collect();
                    all.append(&mut r.unallocated);
                    r.unallocated = all;
                    r
                }
            };
            let mut w = Wal::create(&log.dir, log.sync)?;
            // The replayed blocks move into this run's segment; then the
            // older segments are no longer needed.
            for (seq, lines) in replay
                .by_batch
                .values()
                .flatten()
                .chain(&replay.unallocated)
            {
                w.append_block(*seq, lines)?;
            }
            w.remove_older_segments();
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
        let receiver = Receiver_ {
            name: self.name.clone(),
            address: self.address.clone(),
            options: self.options.clone(),
            tx,
            wake: self.wake.clone(),
            stop: stop.clone(),
            wal,
            next_seq: first_seq,
            failure: failure.clone(),
            bus: self.bus.clone(),
            worker: self.worker,
            rate: self.rate.clone(),
            read: self.read.clone(),
            interval_ms: self.shared.conf.batch_ms,
        };
        let handle = std::thread::Builder::new()
            .name(format!("ember-receiver-{}", self.address))
            .spawn(move || receiver.run())
            .map_err(|e| Error::Internal(format!("cannot start the receiver thread: {e}")))?;
        self.receiver = Some(Running {
            blocks: rx,
            stop,
            failure,
            _thread: handle,
        });
        Ok(())
    }

    fn push(&mut self, seq: u64, block: LineBlock, out: &mut Vec<(u64, LineBlock)>) {
        let n = block.len() as u64;
        self.filling.2 += n;
        let to = least_loaded(&self.dealt);
        self.dealt[to] += n;
        out.push((to as u64, block));
        self.drained_through = self.drained_through.max(seq + 1);
    }

    /// Moves backlog blocks into the open batch while its cap allows; true
    /// when the backlog is empty.
    fn take_backlog(&mut self, out: &mut Vec<(u64, LineBlock)>) -> bool {
        while let Some((_, block)) = self.backlog.front() {
            let (_, cap, taken) = self.filling;
            let n = block.len() as u64;
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
            self.filling = (open, self.rate.batch_cap(self.shared.conf.batch_ms), 0);
        }
    }

    /// Moves what the receiver has sent into the open batch, unless the open
    /// batch is one being replayed.
    fn drain(&mut self, open: u64, out: &mut Vec<(u64, LineBlock)>) -> Result<()> {
        if self.receiver.is_none() {
            self.start()?;
        }
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
        let running = self.receiver.as_ref().expect("started above");
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

impl BatchSource<(u64, LineBlock)> for SocketSource {
    fn poll(&mut self, open: u64, out: &mut Vec<(u64, LineBlock)>) -> Result<()> {
        self.drain(open, out)
    }

    fn seal(&mut self, time: u64, out: &mut Vec<(u64, LineBlock)>) -> Result<()> {
        if self.receiver.is_none() {
            self.start()?;
        }
        let replayed = self
            .log
            .as_mut()
            .and_then(|l| l.replay.by_batch.remove(&time));
        for (seq, block) in replayed.into_iter().flatten() {
            self.push(seq, block, out);
        }
        self.drain(time, out)?;
        if let Some(wal) = self.log.as_ref().and_then(|l| l.wal.as_ref()) {
            let sealed = wal::Record::Sealed {
                time,
                through: self.drained_through,
            };
            wal.lock().expect("wal lock").append(&sealed)?;
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

    fn seal_last(&mut self, time: u64, out: &mut Vec<(u64, LineBlock)>) -> Result<bool> {
        if self.receiver.is_none() {
            self.start()?;
        }
        // A graceful stop: the receiver stops reading and hands over what it
        // read; all of it is processed, in as many batches as the cap needs.
        let running = self.receiver.as_ref().expect("started above");
        running.stop.store(FLUSH, Ordering::Release);
        let blocks = running.blocks.clone();
        loop {
            match blocks.recv_timeout(READ_POLL) {
                Ok(block) => self.backlog.push_back(block),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) if self.shared.aborted() => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        if let Some(e) = running.failure.lock().expect("failure lock").take() {
            return Err(e);
        }
        self.open(time);
        let drained = self.take_backlog(out);
        self.seal(time, out)?;
        Ok(drained)
    }

    fn stop(&mut self) {
        if let Some(running) = &self.receiver {
            // After a graceful last batch the thread has ended already.
            let _ = running
                .stop
                .compare_exchange(RUN, HALT, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    fn records(&self, block: &(u64, LineBlock)) -> u64 {
        block.1.len() as u64
    }
}

/// The receiver thread's side.
struct Receiver_ {
    name: String,
    address: String,
    options: SocketOptions,
    tx: Sender<(u64, LineBlock)>,
    wake: SyncActivator,
    stop: Arc<AtomicU8>,
    wal: Option<Arc<Mutex<Wal>>>,
    next_seq: u64,
    failure: Arc<Mutex<Option<Error>>>,
    bus: Arc<Bus>,
    worker: usize,
    rate: Arc<RateControl>,
    read: Arc<AtomicU64>,
    interval_ms: u64,
}

enum Ended {
    Stopped,
    Closed,
    Failed(std::io::Error),
}

impl Receiver_ {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire) != RUN
    }

    fn halted(&self) -> bool {
        self.stop.load(Ordering::Acquire) == HALT
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

    /// Lines per block: with a rate limit, about 50 ms of reading and never
    /// more than one batch may take.
    fn block_lines(&self) -> usize {
        let most = self.options.block_lines.max(1);
        match self.rate.rate() {
            None => most,
            Some(r) => {
                let per_batch = r * self.interval_ms as f64 / 1000.0;
                ((r / 20.0).min(per_batch).floor() as usize).clamp(1, most)
            }
        }
    }

    fn run(mut self) {
        let delay = self.options.reconnect_delay;
        while !self.stopped() {
            let problem = match self.connect() {
                Ok(stream) => {
                    tracing::info!(source = %self.name, "connected to {}", self.address);
                    self.bus.post(Event::ReceiverStarted(self.info(true, None)));
                    match self.read(stream) {
                        Ended::Stopped => break,
                        Ended::Closed => format!("{} closed the connection", self.address),
                        Ended::Failed(e) => format!("reading from {} failed: {e}", self.address),
                    }
                }
                Err(e) => format!(
                    "cannot connect to {}: {e} (is the server up? try `nc -lk <port>`)",
                    self.address
                ),
            };
            tracing::warn!(source = %self.name, "{problem}; retrying in {delay:?}");
            self.bus
                .post(Event::ReceiverError(self.info(false, Some(problem))));
            let until = Instant::now() + delay;
            while !self.stopped() && Instant::now() < until {
                std::thread::sleep(READ_POLL.min(until.saturating_duration_since(Instant::now())));
            }
        }
        self.bus
            .post(Event::ReceiverStopped(self.info(false, None)));
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let mut last = None;
        for addr in self.address.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::new(ErrorKind::NotFound, "no address resolved")))
    }

    /// Logs and sends a block, after waiting out the rate limit; false when
    /// the context stopped at once while the channel was full, or the log
    /// failed. During a graceful stop it waits for the workers to take it.
    fn send(&mut self, block: &mut LineBlock, pacer: &mut Pacer) -> bool {
        if block.is_empty() {
            return true;
        }
        let wait = pacer.reserve(block.len() as u64, self.rate.rate(), Instant::now());
        let until = Instant::now() + wait;
        while !self.stopped() && Instant::now() < until {
            std::thread::sleep(READ_POLL.min(until.saturating_duration_since(Instant::now())));
        }
        self.read.fetch_add(block.len() as u64, Ordering::Relaxed);
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(wal) = &self.wal {
            // Durable before it can join a batch.
            if let Err(e) = wal.lock().expect("wal lock").append_block(seq, block) {
                *self.failure.lock().expect("failure lock") = Some(e);
                let _ = self.wake.activate();
                return false;
            }
        }
        let room = block.bytes().max(BLOCK_BYTES);
        let mut b = (
            seq,
            std::mem::replace(block, LineBlock::with_capacity(room)),
        );
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

    fn read(&mut self, stream: TcpStream) -> Ended {
        if let Err(e) = stream.set_read_timeout(Some(READ_POLL)) {
            return Ended::Failed(e);
        }
        let mut reader = BufReader::with_capacity(1 << 20, stream);
        let mut line = Vec::new();
        let mut block = LineBlock::with_capacity(BLOCK_BYTES);
        let mut invalid = 0u64;
        let mut pacer = Pacer::new();
        let mut block_lines = self.block_lines();
        let ended = loop {
            if self.stopped() {
                break Ended::Stopped;
            }
            // Whole runs of lines are copied straight from the reader's
            // buffer into the block; `line` only gathers a line split across
            // two reads.
            match reader.fill_buf() {
                Ok([]) => {
                    // Like Java's readLine, a last line without newline counts.
                    if !line.is_empty() {
                        decode_into(&mut block, &line, &mut invalid);
                    }
                    break Ended::Closed;
                }
                Ok(buf) => {
                    // Bytes taken as whole lines, 0 when `buf` ends none.
                    let taken = if line.is_empty() {
                        take_lines(&mut block, buf, block_lines, &mut invalid)
                    } else if let Some(i) = memchr::memchr(b'\n', buf) {
                        line.extend_from_slice(&buf[..=i]);
                        decode_into(&mut block, &line, &mut invalid);
                        line.clear();
                        i + 1
                    } else {
                        0
                    };
                    let used = if taken == 0 {
                        // The start of a line still arriving.
                        line.extend_from_slice(buf);
                        buf.len()
                    } else {
                        taken
                    };
                    reader.consume(used);
                    let idle = reader.buffer().is_empty();
                    if idle || block.len() >= block_lines {
                        if !self.send(&mut block, &mut pacer) {
                            break Ended::Stopped;
                        }
                        block_lines = self.block_lines();
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if !self.send(&mut block, &mut pacer) {
                        break Ended::Stopped;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Ended::Failed(e),
            }
        };
        if invalid > 0 {
            tracing::warn!(
                source = %self.name,
                "{invalid} line(s) from {} were not valid UTF-8; invalid bytes became U+FFFD",
                self.address
            );
        }
        // What was read is handed over, unless the stop drops it anyway.
        if !self.halted() {
            self.send(&mut block, &mut pacer);
        }
        ended
    }
}

/// The worker with the fewest lines so far, the lowest on a tie (so the
/// first block of a batch goes to worker 0).
fn least_loaded(dealt: &[u64]) -> usize {
    // `min_by_key` returns the first of equal minima.
    dealt
        .iter()
        .enumerate()
        .min_by_key(|&(_, lines)| lines)
        .map_or(0, |(w, _)| w)
}

/// Bytes a new block has room for before it grows.
const BLOCK_BYTES: usize = 64 << 10;

/// Moves the complete lines at the start of `buf` into `block` until it
/// holds `most` lines; returns the bytes taken (0 when `buf` has no line
/// end). A run of plain lines (valid UTF-8, no `\r`) is copied in one piece.
fn take_lines(block: &mut LineBlock, buf: &[u8], most: usize, invalid: &mut u64) -> usize {
    let room = most.saturating_sub(block.len()).max(1);
    let mut end = 0;
    let mut lines = 0;
    for i in memchr::memchr_iter(b'\n', buf) {
        end = i + 1;
        lines += 1;
        if lines == room {
            break;
        }
    }
    if lines == 0 {
        return 0;
    }
    let run = &buf[..end];
    match std::str::from_utf8(run) {
        Ok(text) if memchr::memchr(b'\r', run).is_none() => block.push_lines(text, lines),
        _ => {
            for line in run.split_inclusive(|&b| b == b'\n') {
                decode_into(block, line, invalid);
            }
        }
    }
    end
}

/// Appends a line without its `\n` / `\r\n`; invalid UTF-8 is replaced,
/// never a panic.
fn decode_into(block: &mut LineBlock, line: &[u8], invalid: &mut u64) {
    let mut end = line.len();
    if end > 0 && line[end - 1] == b'\n' {
        end -= 1;
    }
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    match std::str::from_utf8(&line[..end]) {
        Ok(s) => block.push(s),
        Err(_) => {
            *invalid += 1;
            block.push(&String::from_utf8_lossy(&line[..end]));
        }
    }
}

impl<'s> StreamingScope<'s> {
    /// UTF-8 lines from a TCP server (Spark's `socketTextStream`), e.g. one
    /// started with `nc -lk 9999`. Reconnects when the server closes or
    /// refuses, every 2 s; see [`socket_text_stream_with`](Self::socket_text_stream_with).
    #[doc(alias = "socketTextStream")]
    pub fn socket_text_stream(&self, host: &str, port: u16) -> DStream<'s, String> {
        self.socket_text_stream_with(host, port, SocketOptions::default())
    }

    /// [`socket_text_stream`](Self::socket_text_stream) with settings.
    pub fn socket_text_stream_with(
        &self,
        host: &str,
        port: u16,
        options: SocketOptions,
    ) -> DStream<'s, String> {
        let id = self.ctx.next_source_id();
        let receiver_worker = id % self.ctx.peers;
        let address = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let name = format!("socket_text_stream({address})");
        let checkpoint = self.ctx.stateful("socket_text_stream", self.ctx.interval());
        let log = if options.write_ahead_log {
            match &self.ctx.shared.checkpoint_dir {
                None => {
                    self.ctx.definition_error(Error::graph(format!(
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
                        resuming: self.ctx.shared.restored.is_some() || self.ctx.shared.recovering,
                        replay: Replay::default(),
                        replay_until: 0,
                        checkpoints: dir.clone(),
                        through_at: BTreeMap::new(),
                    })
                }
            }
        } else {
            None
        };
        let active = self.ctx.index == receiver_worker;
        let rate = Arc::new(self.ctx.shared.conf.rate_control());
        let read = if active {
            self.ctx
                .shared
                .bus
                .add_receiver(&name, self.ctx.index, rate.clone())
        } else {
            Arc::default()
        };
        let shared = self.ctx.shared.clone();
        let blocks = batch_source(self, &name.clone(), active, move |wake| SocketSource {
            name,
            address,
            options,
            wake,
            receiver: None,
            dealt: vec![0; self.ctx.peers],
            rate,
            read,
            filling: (0, None, 0),
            backlog: VecDeque::new(),
            shared,
            drained_through: 0,
            log,
            checkpoint,
            bus: self.ctx.shared.bus.clone(),
            worker: self.ctx.index,
        });
        let blocks = if self.ctx.peers > 1 {
            blocks.exchange(|(worker, _)| *worker)
        } else {
            blocks
        };
        // Blocks become lines inside whichever operator reads them (no copy
        // through an operator of its own).
        let blocks = DStream::new(blocks, self.ctx.interval(), self.ctx.clone());
        blocks.with_lineage(TextLines::lineage(blocks.lineage.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_into, least_loaded, take_lines, LineBlock};

    fn lines(b: &LineBlock) -> Vec<&str> {
        b.iter().collect()
    }

    #[test]
    fn decode_strips_line_ends_and_replaces_bad_bytes() {
        let (mut b, mut bad) = (LineBlock::default(), 0);
        decode_into(&mut b, b"hello\r\n", &mut bad);
        decode_into(&mut b, b"hello\n", &mut bad);
        decode_into(&mut b, b"tail", &mut bad);
        assert_eq!(bad, 0);
        decode_into(&mut b, b"a\xffb\n", &mut bad);
        assert_eq!(lines(&b), ["hello", "hello", "tail", "a\u{fffd}b"]);
        assert_eq!(bad, 1);
    }

    #[test]
    fn blocks_go_to_the_worker_with_the_fewest_lines() {
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

    #[test]
    fn take_lines_takes_whole_lines_up_to_the_block_size() {
        let mut bad = 0;
        let mut b = LineBlock::default();
        // A partial line at the end stays in the buffer.
        assert_eq!(take_lines(&mut b, b"one two\nthree\nfou", 10, &mut bad), 14);
        assert_eq!(lines(&b), ["one two", "three"]);
        // The block is full after one more line.
        assert_eq!(take_lines(&mut b, b"x\ny\n", 3, &mut bad), 2);
        assert_eq!(lines(&b), ["one two", "three", "x"]);
        assert_eq!(take_lines(&mut b, b"no end yet", 10, &mut bad), 0);
        // \r\n endings and bad bytes take the line-by-line way.
        let mut b = LineBlock::default();
        assert_eq!(take_lines(&mut b, b"a\r\n\nb\xff\n", 10, &mut bad), 7);
        assert_eq!(lines(&b), ["a", "", "b\u{fffd}"]);
        assert_eq!((b.len(), bad), (3, 1));
    }
}
