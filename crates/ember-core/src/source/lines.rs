//! [`LineBlock`]: lines received together, kept in one buffer.
//!
//! A receiver thread that made a `String` per line allocated on its own
//! thread what the workers freed on theirs, and paid for an allocation and a
//! copy per line before any work was done. A block instead copies whole runs
//! of complete lines from the read buffer at once; the worker that takes the
//! block makes each line's `String` itself, right before the program's first
//! step reads it.
//!
//! The buffers themselves go round: a block the workers are done with
//! leaves its buffer for the receivers' next blocks (up to
//! [`SPARE_BUFFERS`] of them). Allocated afresh, every block was memory the
//! allocator had handed back to the system after the worker freed it, and
//! faulting it in again (and zeroing it, page by page) stalled the receiver
//! for hundreds of milliseconds at a time under load.

use std::sync::Mutex;

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Lines in one buffer, each ended by `\n` (lines never contain `\n`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LineBlock {
    text: String,
    lines: usize,
}

/// Spare buffers kept at most: more than the workers free between two
/// blocks a receiver fills.
const SPARE_BUFFERS: usize = 8;

/// Buffers smaller than this are not kept (tests' and replayed blocks);
/// larger ones neither (a block that grew around one huge line).
const SPARE_BYTES: std::ops::RangeInclusive<usize> = (16 << 10)..=(4 << 20);

/// Emptied buffers of dropped blocks, for the next blocks.
static SPARE: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl LineBlock {
    /// An empty block with room for `bytes` of text, in a spare buffer when
    /// there is one.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let spare = SPARE.lock().ok().and_then(|mut spare| spare.pop());
        let text = match spare {
            Some(mut text) => {
                text.reserve(bytes);
                text
            }
            None => String::with_capacity(bytes),
        };
        LineBlock { text, lines: 0 }
    }

    /// Lines in the block.
    pub(crate) fn len(&self) -> usize {
        self.lines
    }

    /// Bytes of text, line ends included.
    pub(crate) fn bytes(&self) -> usize {
        self.text.len()
    }

    /// Appends one line; `line` must not contain `\n`.
    pub(crate) fn push(&mut self, line: &str) {
        debug_assert!(!line.contains('\n'));
        self.text.push_str(line);
        self.text.push('\n');
        self.lines += 1;
    }

    /// Appends `lines` complete lines at once: `text` ends with `\n` and
    /// holds exactly `lines` of them.
    pub(crate) fn push_lines(&mut self, text: &str, lines: usize) {
        debug_assert!(text.ends_with('\n') && text.matches('\n').count() == lines);
        self.text.push_str(text);
        self.lines += lines;
    }

    /// The lines, without their `\n`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.text.split_terminator('\n')
    }
}

impl Drop for LineBlock {
    fn drop(&mut self) {
        if !SPARE_BYTES.contains(&self.text.capacity()) {
            return;
        }
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        if let Ok(mut spare) = SPARE.lock() {
            if spare.len() < SPARE_BUFFERS {
                spare.push(text);
            }
        }
    }
}

impl<S: AsRef<str>> FromIterator<S> for LineBlock {
    fn from_iter<I: IntoIterator<Item = S>>(lines: I) -> Self {
        let mut block = LineBlock::default();
        for line in lines {
            block.push(line.as_ref());
        }
        block
    }
}

/// Encoded as the sequence of its lines (the write-ahead log's format from
/// before blocks were one buffer, so older logs still replay).
impl Serialize for LineBlock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.lines))?;
        for line in self.iter() {
            seq.serialize_element(line)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for LineBlock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Lines;
        impl<'de> Visitor<'de> for Lines {
            type Value = LineBlock;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence of lines")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LineBlock, A::Error> {
                let mut block = LineBlock::default();
                while let Some(line) = seq.next_element::<String>()? {
                    if line.contains('\n') {
                        return Err(serde::de::Error::custom("a line holds a line feed"));
                    }
                    block.push(&line);
                }
                Ok(block)
            }
        }
        d.deserialize_seq(Lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_order_and_empty_lines() {
        let mut b = LineBlock::default();
        b.push("a");
        b.push_lines("\nb c\n", 2);
        b.push("");
        assert_eq!(b.len(), 4);
        assert_eq!(b.iter().collect::<Vec<_>>(), ["a", "", "b c", ""]);
    }

    #[test]
    fn a_block_made_from_a_dropped_one_starts_empty() {
        for _ in 0..2 * SPARE_BUFFERS {
            let mut b = LineBlock::with_capacity(64 << 10);
            for i in 0..1000 {
                b.push(&format!("line {i}"));
            }
            drop(b);
            let fresh = LineBlock::with_capacity(100);
            assert_eq!((fresh.len(), fresh.bytes()), (0, 0));
            assert!(fresh.text.capacity() >= 100);
            assert_eq!(fresh.iter().count(), 0);
        }
        assert!(SPARE.lock().unwrap().len() <= SPARE_BUFFERS);
    }

    #[test]
    fn encodes_as_the_old_list_of_lines() {
        let lines = vec!["x".to_string(), String::new(), "y z".to_string()];
        let old = postcard::to_stdvec(&lines).unwrap();
        let block: LineBlock = lines.iter().collect();
        assert_eq!(postcard::to_stdvec(&block).unwrap(), old);
        assert_eq!(postcard::from_bytes::<LineBlock>(&old).unwrap(), block);
        let bad = postcard::to_stdvec(&vec!["a\nb".to_string()]).unwrap();
        assert!(postcard::from_bytes::<LineBlock>(&bad).is_err());
    }
}
