//! `socket_text_stream`: UTF-8 lines from a TCP server, Spark's `SocketReceiver`,
//! and `socket_stream` for a program's own decoding of the bytes.
//!
//! Both are receivers (see [`receiver`](super::receiver)): the engine gives
//! them buffering, rate limits, the write-ahead log and their status. The
//! text receiver connects, reads lines into blocks of text (a block is cut
//! whenever the socket has nothing more to read, or it is full) and hands
//! them over; when the server closes the connection or refuses it, the
//! receiver reports why and tries again after
//! [`ReceiverOptions::reconnect_delay`], as Spark's receiver restarts.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::dstream::fuse::TextLines;
use crate::dstream::DStream;
use crate::scope::StreamingScope;
use crate::source::lines::LineBlock;
use crate::source::receiver::{
    receiver_blocks, Feeder, Receive, Received, Receiver, ReceiverContext, ReceiverOptions,
    BLOCK_BYTES, READ_POLL,
};
use crate::Data;

/// The text receiver's thread side.
struct SocketReceiver {
    address: String,
    /// Longer lines are dropped.
    max_line: usize,
}

enum Ended {
    Stopped,
    Closed,
    Failed(std::io::Error),
}

impl Receive<LineBlock> for SocketReceiver {
    fn receive(&mut self, feed: &mut Feeder<LineBlock>) -> Received {
        let problem = match connect(&self.address) {
            Ok(stream) => {
                tracing::info!(source = %feed.name(), "connected to {}", self.address);
                feed.started();
                match self.read(feed, stream) {
                    Ended::Stopped => return Received::Stopped,
                    Ended::Closed => format!("{} closed the connection", self.address),
                    Ended::Failed(e) => format!("reading from {} failed: {e}", self.address),
                }
            }
            Err(e) => format!(
                "cannot connect to {}: {e} (is the server up? try `nc -lk <port>`)",
                self.address
            ),
        };
        Received::Restart {
            reason: problem,
            delay: None,
        }
    }
}

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::new(ErrorKind::NotFound, "no address resolved")))
}

impl SocketReceiver {
    fn read(&mut self, feed: &mut Feeder<LineBlock>, stream: TcpStream) -> Ended {
        if let Err(e) = stream.set_read_timeout(Some(READ_POLL)) {
            return Ended::Failed(e);
        }
        // A read never holds more than a whole line may be long, so a line that
        // arrives in one read is within the limit too.
        let mut reader = BufReader::with_capacity(self.max_line.min(1 << 20), stream);
        let mut line = Vec::new();
        let mut block = LineBlock::with_capacity(BLOCK_BYTES);
        let mut invalid = 0u64;
        let mut invalid_told = false;
        // A line longer than the limit is dropped up to its newline, as
        // Hadoop's reader skips lines over its maxLineLength: a peer that
        // never sends a newline must not fill the memory.
        let mut skipping = false;
        let mut too_long = 0u64;
        let mut block_lines = feed.block_lines();
        let ended = loop {
            if feed.stopped() {
                break Ended::Stopped;
            }
            if invalid > 0 && !invalid_told {
                invalid_told = true;
                tracing::warn!(
                    source = %feed.name(),
                    "a line from {} is not valid UTF-8: invalid bytes become U+FFFD (the count \
                     follows when the connection ends)",
                    self.address
                );
            }
            // Whole runs of lines are copied straight from the reader's
            // buffer into the block; `line` only gathers a line split across
            // two reads.
            match reader.fill_buf() {
                Ok([]) => {
                    // Like Java's readLine, a last line without newline counts.
                    if !line.is_empty() && !skipping {
                        decode_into(&mut block, &line, &mut invalid);
                    }
                    break Ended::Closed;
                }
                Ok(buf) => {
                    // Bytes taken as whole lines, 0 when `buf` ends none.
                    let taken = if skipping {
                        match memchr::memchr(b'\n', buf) {
                            Some(i) => {
                                skipping = false;
                                i + 1
                            }
                            None => buf.len(),
                        }
                    } else if line.is_empty() {
                        take_lines(&mut block, buf, block_lines, &mut invalid)
                    } else if let Some(i) = memchr::memchr(b'\n', buf) {
                        line.extend_from_slice(&buf[..=i]);
                        decode_into(&mut block, &line, &mut invalid);
                        line.clear();
                        i + 1
                    } else {
                        0
                    };
                    let used = if taken > 0 {
                        taken
                    } else if line.len() + buf.len() > self.max_line {
                        // Too long already: drop it up to its newline.
                        too_long += 1;
                        if too_long == 1 {
                            tracing::warn!(
                                source = %feed.name(),
                                "a line from {} is longer than {} bytes: dropped up to its \
                                 newline (raise ReceiverOptions::max_line_bytes to keep such \
                                 lines)",
                                self.address,
                                self.max_line
                            );
                        }
                        line.clear();
                        skipping = true;
                        buf.len()
                    } else {
                        // The start of a line still arriving.
                        line.extend_from_slice(buf);
                        buf.len()
                    };
                    reader.consume(used);
                    let idle = reader.buffer().is_empty();
                    if idle || block.len() >= block_lines {
                        if !feed.send(&mut block) {
                            break Ended::Stopped;
                        }
                        block_lines = feed.block_lines();
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if !feed.send(&mut block) {
                        break Ended::Stopped;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Ended::Failed(e),
            }
        };
        if invalid > 0 {
            tracing::warn!(
                source = %feed.name(),
                "{invalid} line(s) from {} were not valid UTF-8; invalid bytes became U+FFFD",
                self.address
            );
        }
        if too_long > 0 {
            tracing::warn!(
                source = %feed.name(),
                "{too_long} line(s) from {} longer than {} bytes were dropped",
                self.address,
                self.max_line
            );
        }
        // What was read is handed over, unless the stop drops it anyway.
        if !feed.halted() {
            feed.send(&mut block);
        }
        ended
    }
}

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
        self.socket_text_stream_with(host, port, ReceiverOptions::default())
    }

    /// [`socket_text_stream`](Self::socket_text_stream) with settings.
    pub fn socket_text_stream_with(
        &self,
        host: &str,
        port: u16,
        options: ReceiverOptions,
    ) -> DStream<'s, String> {
        let address = socket_address(host, port);
        let name = format!("socket_text_stream({address})");
        let receiver = SocketReceiver {
            address,
            max_line: options.max_line_bytes.max(1),
        };
        let blocks = receiver_blocks(self, "socket_text_stream", name, options, receiver);
        // Blocks become lines inside whichever operator reads them (no copy
        // through an operator of its own).
        let blocks = DStream::new(blocks, self.ctx.interval(), self.ctx.clone());
        blocks.with_lineage(TextLines::lineage(blocks.lineage.clone()))
    }

    /// Records decoded by `converter` from the bytes a TCP server sends
    /// (Spark's `socketStream(host, port, converter)`): `converter` reads
    /// one record from the connection, `Ok(None)` at the end of the stream;
    /// an error ends the connection (reported, then reconnected after
    /// [`ReceiverOptions::reconnect_delay`]). Reads wait until data comes:
    /// the converter never sees a read timeout.
    ///
    /// ```no_run
    /// use std::io::BufRead;
    /// # let ssc = ember_core::StreamingContext::new(ember_core::StreamingConf::new("x", ember_core::seconds(1))).unwrap();
    /// ssc.define(|s| {
    ///     // Records of 4 bytes each, big-endian numbers.
    ///     s.socket_stream("localhost", 9999, |r: &mut dyn BufRead| {
    ///         let mut b = [0u8; 4];
    ///         match r.read_exact(&mut b) {
    ///             Ok(()) => Ok(Some(u32::from_be_bytes(b))),
    ///             Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
    ///             Err(e) => Err(e),
    ///         }
    ///     })
    ///     .print();
    /// })?;
    /// # Ok::<(), ember_core::Error>(())
    /// ```
    #[doc(alias = "socketStream")]
    pub fn socket_stream<T, F>(&self, host: &str, port: u16, converter: F) -> DStream<'s, T>
    where
        T: Data,
        F: FnMut(&mut dyn BufRead) -> std::io::Result<Option<T>> + Send + 'static,
    {
        self.socket_stream_with(host, port, converter, ReceiverOptions::default())
    }

    /// [`socket_stream`](Self::socket_stream) with settings.
    pub fn socket_stream_with<T, F>(
        &self,
        host: &str,
        port: u16,
        converter: F,
        options: ReceiverOptions,
    ) -> DStream<'s, T>
    where
        T: Data,
        F: FnMut(&mut dyn BufRead) -> std::io::Result<Option<T>> + Send + 'static,
    {
        let address = socket_address(host, port);
        self.receiver_stream_with(Converted { address, converter }, options)
    }
}

impl<'s> StreamingScope<'s> {
    /// Length-prefixed frames from a TCP server (Spark's `rawSocketStream`,
    /// whose peer sends pre-serialized blocks): each frame is a 4-byte
    /// big-endian length and that many bytes, and becomes one record.
    /// Decode a frame's records with a `flat_map`.
    ///
    /// A frame longer than [`ReceiverOptions::max_line_bytes`] (16 MiB), or
    /// a connection ending inside a frame, ends the connection with a
    /// reported error (the receiver connects again); the partial frame is
    /// never stored.
    #[doc(alias = "rawSocketStream")]
    pub fn raw_socket_stream(&self, host: &str, port: u16) -> DStream<'s, Vec<u8>> {
        self.raw_socket_stream_with(host, port, ReceiverOptions::default())
    }

    /// [`raw_socket_stream`](Self::raw_socket_stream) with settings.
    pub fn raw_socket_stream_with(
        &self,
        host: &str,
        port: u16,
        options: ReceiverOptions,
    ) -> DStream<'s, Vec<u8>> {
        let max = options.max_line_bytes;
        self.socket_stream_with(host, port, move |r| read_frame(r, max), options)
    }
}

/// Reads one length-prefixed frame; `None` at the end of the stream
/// between frames.
fn read_frame(r: &mut dyn BufRead, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::{Error, ErrorKind};
    if r.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let mut head = [0u8; 4];
    r.read_exact(&mut head).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => Error::new(
            ErrorKind::UnexpectedEof,
            "the connection ended inside a frame's length",
        ),
        _ => e,
    })?;
    let len = u32::from_be_bytes(head) as usize;
    if len > max {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!(
                "a frame of {len} bytes is longer than the limit of {max} bytes (raise \
                 ReceiverOptions::max_line_bytes, or check that the peer sends 4-byte big-endian \
                 lengths)"
            ),
        ));
    }
    let mut frame = vec![0u8; len];
    r.read_exact(&mut frame).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => Error::new(
            ErrorKind::UnexpectedEof,
            format!("the connection ended inside a frame of {len} bytes"),
        ),
        _ => e,
    })?;
    Ok(Some(frame))
}

/// `host:port`, with brackets around an IPv6 host.
fn socket_address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `socket_stream`'s receiver, on the public receiver interface.
struct Converted<F> {
    address: String,
    converter: F,
}

/// A connection that waits out read timeouts (used to look at the stop
/// flag) unless the receiver is stopping.
struct Patient<'a, 'c, T: Data> {
    stream: TcpStream,
    ctx: &'a mut ReceiverContext<'c, T>,
}

impl<T: Data> Read for Patient<'_, '_, T> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    // Nothing to read now: hand over what was stored.
                    if self.ctx.is_stopped() || !self.ctx.flush() {
                        return Err(std::io::Error::new(
                            ErrorKind::Interrupted,
                            "the receiver is stopping",
                        ));
                    }
                }
                other => return other,
            }
        }
    }
}

impl<T, F> Receiver for Converted<F>
where
    T: Data,
    F: FnMut(&mut dyn BufRead) -> std::io::Result<Option<T>> + Send + 'static,
{
    type Record = T;

    fn name(&self) -> String {
        format!("socket_stream({})", self.address)
    }

    fn receive(&mut self, ctx: &mut ReceiverContext<'_, T>) -> Received {
        let stream = match connect(&self.address) {
            Ok(s) => s,
            Err(e) => {
                return ctx.restart(format!(
                    "cannot connect to {}: {e} (is the server up?)",
                    self.address
                ))
            }
        };
        if let Err(e) = stream.set_read_timeout(Some(READ_POLL)) {
            return ctx.restart(format!("cannot set up {}: {e}", self.address));
        }
        ctx.report_started();
        let ended = {
            let mut reader = BufReader::with_capacity(
                BLOCK_BYTES,
                Patient {
                    stream,
                    ctx: &mut *ctx,
                },
            );
            loop {
                match (self.converter)(&mut reader) {
                    Ok(Some(record)) => {
                        // What was decoded from the bytes already read is
                        // handed over before the next read may wait.
                        let idle = reader.buffer().is_empty();
                        let ctx = &mut *reader.get_mut().ctx;
                        if !ctx.store(record) || (idle && !ctx.flush()) {
                            break None;
                        }
                    }
                    Ok(None) => break Some(format!("{} closed the connection", self.address)),
                    Err(e) if e.kind() == ErrorKind::Interrupted => break None,
                    Err(e) => {
                        break Some(format!(
                            "reading from {} failed: {e} (the converter's error)",
                            self.address
                        ))
                    }
                }
            }
        };
        match ended {
            None => Received::Stopped,
            Some(reason) if ctx.is_stopped() => {
                tracing::debug!("{reason}");
                Received::Stopped
            }
            Some(reason) => ctx.restart(reason),
        }
    }
}
#[cfg(test)]
mod tests {
    use super::{decode_into, read_frame, take_lines, LineBlock};

    #[test]
    fn frames_are_read_whole_and_bad_ones_refused() {
        let mut bytes = Vec::new();
        for frame in [&b"abc"[..], b"", b"\x00\xff"] {
            bytes.extend_from_slice(&(frame.len() as u32).to_be_bytes());
            bytes.extend_from_slice(frame);
        }
        let mut r = std::io::Cursor::new(bytes);
        let mut got = Vec::new();
        while let Some(f) = read_frame(&mut r, 16).unwrap() {
            got.push(f);
        }
        assert_eq!(got, [b"abc".to_vec(), vec![], vec![0, 255]]);
        let over = read_frame(&mut std::io::Cursor::new(100u32.to_be_bytes()), 16);
        assert!(over.unwrap_err().to_string().contains("100 bytes"));
        let cut = [&5u32.to_be_bytes()[..], b"ab"].concat();
        let cut = read_frame(&mut std::io::Cursor::new(cut), 16);
        assert!(cut
            .unwrap_err()
            .to_string()
            .contains("inside a frame of 5 bytes"));
        let head = read_frame(&mut std::io::Cursor::new(vec![0u8, 0]), 16);
        assert!(head.unwrap_err().to_string().contains("frame's length"));
    }

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
