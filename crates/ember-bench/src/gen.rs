//! The input generator: a Zipf-distributed vocabulary, a pre-generated
//! buffer of lines replayed in a loop, and two pacers that offer it at a
//! target rate in words per second: over a loopback TCP connection, or by
//! pushing lines into an `ember_core::Queue`.
//!
//! Generation happens once, before the run; during the run the pacers only
//! copy bytes (TCP) or clone lines (memory), so they cost far less than
//! what ember spends counting the same words.

use std::collections::HashSet;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ember_core::Queue;

/// Distinct words in the vocabulary.
pub(crate) const VOCABULARY: usize = 10_000;
/// Lines per pacing unit.
const CHUNK_LINES: usize = 64;
/// Roughly how many bytes of text to pre-generate.
const BUFFER_BYTES: usize = 4 << 20;
/// How often a pacer looks at the clock when it is ahead.
const SLICE: Duration = Duration::from_millis(2);

/// A small, fast, deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

/// Pre-generated text: lines of words separated by single spaces, cut in
/// chunks of [`CHUNK_LINES`] lines whose word counts are known.
pub(crate) struct Corpus {
    /// All lines, each ending in `\n`.
    pub(crate) text: Vec<u8>,
    /// The same lines without `\n`, for the in-memory input.
    pub(crate) lines: Vec<String>,
    /// Byte offset where each chunk starts, plus the end.
    pub(crate) chunk_bytes: Vec<usize>,
    /// Words in each chunk.
    pub(crate) chunk_words: Vec<u64>,
}

impl Corpus {
    /// Builds the vocabulary and about [`BUFFER_BYTES`] of lines of 5–15
    /// words (10 on average), words drawn with Zipf(s = 1) frequencies.
    pub(crate) fn generate(seed: u64) -> Corpus {
        let mut rng = Rng(seed | 1);
        let mut seen = HashSet::new();
        let mut vocab = Vec::with_capacity(VOCABULARY);
        while vocab.len() < VOCABULARY {
            let len = 3 + rng.below(8) as usize;
            let w: String = (0..len)
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect();
            if seen.insert(w.clone()) {
                vocab.push(w);
            }
        }
        // Zipf table: rank r gets a share of 2^20 slots proportional to 1/r.
        const SLOTS: usize = 1 << 20;
        let h: f64 = (1..=VOCABULARY).map(|r| 1.0 / r as f64).sum();
        let mut table = Vec::with_capacity(SLOTS);
        let mut cum = 0.0;
        for r in 1..=VOCABULARY {
            cum += 1.0 / (r as f64 * h);
            let upto = ((cum * SLOTS as f64).round() as usize).clamp(table.len() + 1, SLOTS);
            table.resize(upto, (r - 1) as u16);
        }
        table.resize(SLOTS, (VOCABULARY - 1) as u16);

        let mut text = Vec::with_capacity(BUFFER_BYTES + 4096);
        let mut lines = Vec::new();
        let mut chunk_bytes = vec![0];
        let mut chunk_words = Vec::new();
        let mut words_in_chunk = 0u64;
        while text.len() < BUFFER_BYTES || lines.len() % CHUNK_LINES != 0 {
            let n = 5 + rng.below(11) as usize;
            let start = text.len();
            for i in 0..n {
                if i > 0 {
                    text.push(b' ');
                }
                let w = &vocab[table[rng.below(SLOTS as u64) as usize] as usize];
                text.extend_from_slice(w.as_bytes());
            }
            lines.push(String::from_utf8(text[start..].to_vec()).expect("ascii"));
            text.push(b'\n');
            words_in_chunk += n as u64;
            if lines.len() % CHUNK_LINES == 0 {
                chunk_bytes.push(text.len());
                chunk_words.push(words_in_chunk);
                words_in_chunk = 0;
            }
        }
        Corpus {
            text,
            lines,
            chunk_bytes,
            chunk_words,
        }
    }

    fn chunks(&self) -> usize {
        self.chunk_words.len()
    }

    /// Total words in the buffer.
    #[cfg(test)]
    fn words(&self) -> u64 {
        self.chunk_words.iter().sum()
    }
}

/// What a pacer did: `(wall-clock µs since the epoch, words offered so far)`
/// after every write, from which the words offered by any instant follow.
#[derive(Default)]
pub(crate) struct OfferLog {
    points: Vec<(u64, u64)>,
}

impl OfferLog {
    /// Words offered up to wall-clock time `at_us` (µs since the epoch).
    pub(crate) fn offered_by(&self, at_us: u64) -> u64 {
        match self.points.partition_point(|(t, _)| *t <= at_us) {
            0 => 0,
            i => self.points[i - 1].1,
        }
    }

    /// All words offered.
    pub(crate) fn total(&self) -> u64 {
        self.points.last().map_or(0, |p| p.1)
    }
}

pub(crate) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A running pacer thread.
pub(crate) struct Pacer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(OfferLog, Option<TcpStream>)>,
}

impl Pacer {
    /// Stops offering and returns the log, plus the TCP connection (kept
    /// open so the receiver does not see the server go away before ember
    /// stops).
    pub(crate) fn finish(self) -> (OfferLog, Option<TcpStream>) {
        self.stop.store(true, Ordering::Release);
        self.handle.join().expect("pacer thread panicked")
    }
}

/// Paces `rate` words/s: calls `emit(first_chunk, chunks)` whenever chunks
/// are due, until `stop`. Returns the log.
pub(crate) fn pace(
    corpus: &Corpus,
    rate: u64,
    stop: &AtomicBool,
    mut emit: impl FnMut(usize, usize) -> bool,
) -> OfferLog {
    let mut log = OfferLog::default();
    let start = Instant::now();
    let mut next = 0usize;
    let mut sent = 0u64;
    // At most ~5 ms of words per emit, so a slow consumer shows up in the log.
    let max_batch = ((rate / 200) / (10 * CHUNK_LINES as u64)).max(1) as usize;
    while !stop.load(Ordering::Acquire) {
        let due = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
        if sent >= due {
            std::thread::sleep(SLICE);
            continue;
        }
        // Chunks needed to reach `due`, contiguous in the buffer.
        let mut n = 0;
        let mut words = 0;
        while sent + words < due && n < max_batch && next + n < corpus.chunks() {
            words += corpus.chunk_words[next + n];
            n += 1;
        }
        if !emit(next, n) {
            break;
        }
        sent += words;
        next = (next + n) % corpus.chunks();
        log.points.push((now_us(), sent));
    }
    log
}

/// Starts a loopback TCP server writing `rate` words/s to the first client;
/// returns its port and the pacer.
pub(crate) fn start_tcp(corpus: Arc<Corpus>, rate: u64) -> std::io::Result<(u16, Pacer)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("bench-tcp-server".into())
        .spawn(move || {
            listener
                .set_nonblocking(true)
                .expect("nonblocking listener");
            let mut conn = loop {
                if flag.load(Ordering::Acquire) {
                    return (OfferLog::default(), None);
                }
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            };
            conn.set_nonblocking(false).expect("blocking socket");
            let _ = conn.set_nodelay(true);
            let log = pace(&corpus, rate, &flag, |first, n| {
                let bytes = &corpus.text[corpus.chunk_bytes[first]..corpus.chunk_bytes[first + n]];
                conn.write_all(bytes).is_ok()
            });
            (log, Some(conn))
        })?;
    Ok((port, Pacer { stop, handle }))
}

/// Starts a thread that pushes `rate` words/s of lines into `queue`, a
/// batch every few milliseconds (the queue stream takes all that is
/// pending at each batch time).
pub(crate) fn start_memory(corpus: Arc<Corpus>, rate: u64, queue: Queue<String>) -> Pacer {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("bench-queue-pusher".into())
        .spawn(move || {
            let log = pace(&corpus, rate, &flag, |first, n| {
                let lines = &corpus.lines[first * CHUNK_LINES..(first + n) * CHUNK_LINES];
                queue.push(lines.to_vec());
                true
            });
            (log, None)
        })
        .expect("spawn the queue pusher");
    Pacer { stop, handle }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_zipf_like_and_counted() {
        let c = Corpus::generate(7);
        let words: u64 = c.lines.iter().map(|l| l.split(' ').count() as u64).sum();
        assert_eq!(words, c.words());
        assert_eq!(c.text.len(), *c.chunk_bytes.last().unwrap());
        let per_line = words as f64 / c.lines.len() as f64;
        assert!((9.5..10.5).contains(&per_line), "{per_line}");
        let mut freq = std::collections::HashMap::new();
        for l in &c.lines {
            for w in l.split(' ') {
                *freq.entry(w).or_insert(0u64) += 1;
            }
        }
        let top = *freq.values().max().unwrap() as f64 / words as f64;
        assert!((0.08..0.13).contains(&top), "{top}");
        assert!(freq.len() > 9_000, "{}", freq.len());
    }
}
