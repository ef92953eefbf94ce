//! `socket_text_stream`: UTF-8 lines from a TCP server, Spark's `SocketReceiver`.
//!
//! A receiver thread connects, reads lines into blocks and hands them to
//! the source operator through a bounded channel (when the channel is full
//! the receiver stops reading, and TCP slows the sender). When the server
//! closes the connection or refuses it, the receiver logs why and tries
//! again after [`SocketOptions::reconnect_delay`], as Spark's receiver
//! restarts. Blocks are dealt round-robin to the workers, the first block of
//! each batch to worker 0, so the order of lines within a batch survives in
//! `print()`.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use timely::dataflow::operators::core::Exchange;
use timely::dataflow::operators::vec::Map;
use timely::scheduling::SyncActivator;

use crate::dstream::DStream;
use crate::error::Result;
use crate::scope::StreamingScope;
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
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            reconnect_delay: Duration::from_secs(2),
            block_lines: 4096,
            buffered_blocks: 32,
        }
    }
}

impl SocketOptions {
    /// Sets the wait between connection attempts.
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }
}

/// How long a blocked read waits before looking at the stop flag.
const READ_POLL: Duration = Duration::from_millis(100);

/// A started receiver thread and the ends the source keeps.
struct Running {
    blocks: Receiver<Vec<String>>,
    stop: Arc<AtomicBool>,
    _thread: JoinHandle<()>,
}

struct SocketSource {
    name: String,
    address: String,
    options: SocketOptions,
    wake: SyncActivator,
    receiver: Option<Running>,
    seq: u64,
}

impl SocketSource {
    fn drain(&mut self, out: &mut Vec<(u64, Vec<String>)>) {
        if self.receiver.is_none() {
            let (tx, rx) = crossbeam_channel::bounded(self.options.buffered_blocks.max(1));
            let stop = Arc::new(AtomicBool::new(false));
            let receiver = Receiver_ {
                name: self.name.clone(),
                address: self.address.clone(),
                options: self.options.clone(),
                tx,
                wake: self.wake.clone(),
                stop: stop.clone(),
            };
            match std::thread::Builder::new()
                .name(format!("ember-receiver-{}", self.address))
                .spawn(move || receiver.run())
            {
                Ok(handle) => {
                    self.receiver = Some(Running {
                        blocks: rx,
                        stop,
                        _thread: handle,
                    })
                }
                Err(e) => {
                    tracing::error!(source = %self.name, "cannot start the receiver thread: {e}");
                    return;
                }
            }
        }
        if let Some(running) = &self.receiver {
            for block in running.blocks.try_iter() {
                out.push((self.seq, block));
                self.seq += 1;
            }
        }
    }
}

impl BatchSource<(u64, Vec<String>)> for SocketSource {
    fn poll(&mut self, _open: u64, out: &mut Vec<(u64, Vec<String>)>) -> Result<()> {
        self.drain(out);
        Ok(())
    }

    fn seal(&mut self, _time: u64, out: &mut Vec<(u64, Vec<String>)>) -> Result<()> {
        self.drain(out);
        self.seq = 0;
        Ok(())
    }

    fn stop(&mut self) {
        if let Some(running) = &self.receiver {
            running.stop.store(true, Ordering::Release);
        }
    }
}

/// The receiver thread's side.
struct Receiver_ {
    name: String,
    address: String,
    options: SocketOptions,
    tx: Sender<Vec<String>>,
    wake: SyncActivator,
    stop: Arc<AtomicBool>,
}

enum Ended {
    Stopped,
    Closed,
    Failed(std::io::Error),
}

impl Receiver_ {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn run(self) {
        let delay = self.options.reconnect_delay;
        while !self.stopped() {
            match self.connect() {
                Ok(stream) => {
                    tracing::info!(source = %self.name, "connected to {}", self.address);
                    match self.read(stream) {
                        Ended::Stopped => return,
                        Ended::Closed => tracing::warn!(
                            source = %self.name,
                            "{} closed the connection; reconnecting in {delay:?}",
                            self.address
                        ),
                        Ended::Failed(e) => tracing::warn!(
                            source = %self.name,
                            "reading from {} failed: {e}; reconnecting in {delay:?}",
                            self.address
                        ),
                    }
                }
                Err(e) => tracing::warn!(
                    source = %self.name,
                    "cannot connect to {}: {e}; retrying in {delay:?} (is the server up? try `nc -lk <port>`)",
                    self.address
                ),
            }
            let until = Instant::now() + delay;
            while !self.stopped() && Instant::now() < until {
                std::thread::sleep(READ_POLL.min(until.saturating_duration_since(Instant::now())));
            }
        }
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

    /// Sends a block; false when the context stopped while the channel was full.
    fn send(&self, block: &mut Vec<String>) -> bool {
        if block.is_empty() {
            return true;
        }
        let mut b = std::mem::replace(block, Vec::with_capacity(64));
        loop {
            match self.tx.send_timeout(b, READ_POLL) {
                Ok(()) => {
                    let _ = self.wake.activate();
                    return true;
                }
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.stopped() {
                        return false;
                    }
                    b = back;
                }
                Err(SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }

    fn read(&self, stream: TcpStream) -> Ended {
        if let Err(e) = stream.set_read_timeout(Some(READ_POLL)) {
            return Ended::Failed(e);
        }
        let mut reader = BufReader::with_capacity(1 << 20, stream);
        let mut line = Vec::new();
        let mut block = Vec::with_capacity(64);
        let mut invalid = 0u64;
        let ended = loop {
            if self.stopped() {
                break Ended::Stopped;
            }
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => {
                    // Like Java's readLine, a last line without newline counts.
                    if !line.is_empty() {
                        block.push(decode(&line, &mut invalid));
                    }
                    break Ended::Closed;
                }
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        block.push(decode(&line, &mut invalid));
                        line.clear();
                    }
                    let idle = reader.buffer().is_empty();
                    if (idle || block.len() >= self.options.block_lines) && !self.send(&mut block) {
                        break Ended::Stopped;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if !self.send(&mut block) {
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
        if !matches!(ended, Ended::Stopped) {
            self.send(&mut block);
        }
        ended
    }
}

/// A line without its `\n` / `\r\n`; invalid UTF-8 is replaced, never a panic.
fn decode(line: &[u8], invalid: &mut u64) -> String {
    let mut end = line.len();
    if end > 0 && line[end - 1] == b'\n' {
        end -= 1;
    }
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    match std::str::from_utf8(&line[..end]) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            *invalid += 1;
            String::from_utf8_lossy(&line[..end]).into_owned()
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
        let blocks = batch_source(
            self,
            &name.clone(),
            self.ctx.index == receiver_worker,
            move |wake| SocketSource {
                name,
                address,
                options,
                wake,
                receiver: None,
                seq: 0,
            },
        );
        let blocks = if self.ctx.peers > 1 {
            blocks.exchange(|(seq, _)| *seq)
        } else {
            blocks
        };
        let lines = blocks.flat_map(|(_, block)| block);
        DStream::new(lines, self.ctx.interval(), self.ctx.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decode_strips_line_ends_and_replaces_bad_bytes() {
        let mut bad = 0;
        assert_eq!(decode(b"hello\r\n", &mut bad), "hello");
        assert_eq!(decode(b"hello\n", &mut bad), "hello");
        assert_eq!(decode(b"tail", &mut bad), "tail");
        assert_eq!(bad, 0);
        assert_eq!(decode(b"a\xffb\n", &mut bad), "a\u{fffd}b");
        assert_eq!(bad, 1);
    }
}
