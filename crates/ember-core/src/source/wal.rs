//! A receiver's write-ahead log: received blocks are durable before they
//! join a batch, and which blocks went into which batch is logged too, so a
//! restarted program replays exactly the data the killed one had received.
//!
//! Layout: `<checkpoint dir>/receivers/<source id>/segment-<n>.wal`, a new
//! segment each start (a torn tail from a kill is never appended to). Each
//! record is `length (u32 LE) | CRC-32 (u32 LE) | postcard payload`; reading
//! stops at the first incomplete or damaged record of a segment, which can
//! only be the tail a kill cut short.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::checkpoint::to_bytes;
use crate::error::{Error, Result};
#[cfg(test)]
use crate::source::lines::LineBlock;

/// One record of the log; `B` is the receiver's block of records (a block
/// of text lines for a socket).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Record<B> {
    /// A received block.
    Block { seq: u64, lines: B },
    /// Batch `time` holds the blocks before `through` not in earlier batches.
    Sealed { time: u64, through: u64 },
}

/// The borrowed twin of [`Record`]: same encoding, no copy of the block.
#[derive(Serialize)]
enum RecordRef<'a, B> {
    Block { seq: u64, lines: &'a B },
    Sealed { time: u64, through: u64 },
}

/// The log being written by this run.
pub(crate) struct Wal {
    dir: PathBuf,
    segment: u64,
    out: BufWriter<File>,
    sync: bool,
    /// The highest block number in the open segment.
    max_seq: Option<u64>,
    /// Closed segments: number, highest block number, and the checkpoint
    /// time at which they were closed.
    closed: Vec<(u64, Option<u64>, u64)>,
}

fn io(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message: what.to_string(),
        cause: Some(e.into()),
    }
}

fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                let e = e.map_err(|e| io(dir, "cannot list the write-ahead log", e))?;
                let name = e.file_name();
                if let Some(n) = name
                    .to_str()
                    .and_then(|n| n.strip_prefix("segment-"))
                    .and_then(|n| n.strip_suffix(".wal"))
                    .and_then(|n| n.parse().ok())
                {
                    found.push((n, e.path()));
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(dir, "cannot list the write-ahead log", e)),
    }
    found.sort();
    Ok(found)
}

/// Every intact record of every segment, oldest first.
pub(crate) fn read_all<B: DeserializeOwned>(dir: &Path) -> Result<Vec<Record<B>>> {
    let mut records = Vec::new();
    for (_, path) in segments(dir)? {
        let bytes =
            std::fs::read(&path).map_err(|e| io(&path, "cannot read the write-ahead log", e))?;
        let mut at = 0;
        while at + 8 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
            let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
                break;
            };
            if crc32fast::hash(payload) != crc {
                break;
            }
            match postcard::from_bytes(payload) {
                Ok(r) => records.push(r),
                Err(_) => break,
            }
            at += 8 + len;
        }
        if at < bytes.len() {
            tracing::warn!(
                "write-ahead log {}: ignoring {} bytes of an unfinished last record",
                path.display(),
                bytes.len() - at
            );
        }
    }
    Ok(records)
}

impl Wal {
    /// Starts a new segment after the existing ones.
    pub(crate) fn create(dir: &Path, sync: bool) -> Result<Wal> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io(dir, "cannot create the write-ahead log", e))?;
        let segment = segments(dir)?.last().map_or(0, |(n, _)| n + 1);
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment,
            out: Self::open_segment(dir, segment)?,
            sync,
            max_seq: None,
            closed: Vec::new(),
        })
    }

    fn open_segment(dir: &Path, segment: u64) -> Result<BufWriter<File>> {
        let path = dir.join(format!("segment-{segment:06}.wal"));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, "cannot create a write-ahead log segment", e))?;
        Ok(BufWriter::new(file))
    }

    /// Closes the open segment at checkpoint time `time` and opens the next.
    pub(crate) fn rotate(&mut self, time: u64) -> Result<()> {
        let next = Self::open_segment(&self.dir, self.segment + 1)?;
        self.closed.push((self.segment, self.max_seq.take(), time));
        self.segment += 1;
        self.out = next;
        Ok(())
    }

    /// Removes the closed segments a checkpoint at `time` covers: closed
    /// at or before it, and holding only blocks before `through`.
    pub(crate) fn drop_covered(&mut self, time: u64, through: u64) {
        let dir = self.dir.clone();
        self.closed.retain(|(segment, max_seq, closed_at)| {
            let covered = *closed_at <= time && max_seq.is_none_or(|m| m < through);
            if covered {
                let _ = std::fs::remove_file(dir.join(format!("segment-{segment:06}.wal")));
            }
            !covered
        });
    }

    /// Appends a received block (see [`append`](Self::append)).
    pub(crate) fn append_block<B: Serialize>(&mut self, seq: u64, lines: &B) -> Result<()> {
        let payload = to_bytes(
            &self.dir,
            "a write-ahead log record",
            &RecordRef::Block { seq, lines },
        )?;
        self.append_payload(&payload)?;
        self.max_seq = self.max_seq.max(Some(seq));
        Ok(())
    }

    /// Appends that batch `time` holds the blocks before `through` not in
    /// earlier batches (see [`append_payload`](Self::append_payload)).
    pub(crate) fn append_sealed(&mut self, time: u64, through: u64) -> Result<()> {
        let record: RecordRef<'_, ()> = RecordRef::Sealed { time, through };
        let payload = to_bytes(&self.dir, "a write-ahead log record", &record)?;
        self.append_payload(&payload)
    }

    /// Appends an encoded record and makes it durable against a killed
    /// process (and against a machine crash when syncing).
    fn append_payload(&mut self, payload: &[u8]) -> Result<()> {
        let path = self.dir.join(format!("segment-{:06}.wal", self.segment));
        let write = |out: &mut BufWriter<File>| -> std::io::Result<()> {
            out.write_all(&(payload.len() as u32).to_le_bytes())?;
            out.write_all(&crc32fast::hash(payload).to_le_bytes())?;
            out.write_all(payload)?;
            out.flush()
        };
        write(&mut self.out).map_err(|e| io(&path, "cannot append to the write-ahead log", e))?;
        if self.sync {
            self.out
                .get_ref()
                .sync_data()
                .map_err(|e| io(&path, "cannot sync the write-ahead log", e))?;
        }
        Ok(())
    }

    /// Removes the segments older than this run's (all their blocks are in
    /// the checkpoint being resumed from, or were replayed into this run).
    pub(crate) fn remove_older_segments(&self) {
        if let Ok(all) = segments(&self.dir) {
            for (n, path) in all {
                if n < self.segment {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

impl<B> Default for Replay<B> {
    fn default() -> Self {
        Replay {
            by_batch: BTreeMap::new(),
            unallocated: Vec::new(),
            next_seq: 0,
        }
    }
}

/// What a resumed receiver replays: blocks of batches that ran before the
/// kill but after the checkpoint, by batch, and blocks received but not yet
/// in any batch.
#[derive(Debug)]
pub(crate) struct Replay<B> {
    pub(crate) by_batch: BTreeMap<u64, Vec<(u64, B)>>,
    pub(crate) unallocated: Vec<(u64, B)>,
    /// The next block number to use.
    pub(crate) next_seq: u64,
}

/// Sorts the log's records after a checkpoint at `time`, whose batches held
/// the blocks before `through`.
pub(crate) fn replay<B>(records: Vec<Record<B>>, time: u64, through: u64) -> Replay<B> {
    let mut blocks: BTreeMap<u64, B> = BTreeMap::new();
    let mut sealed: Vec<(u64, u64)> = Vec::new();
    let mut next_seq = through;
    for r in records {
        match r {
            Record::Block { seq, lines } => {
                next_seq = next_seq.max(seq + 1);
                if seq >= through {
                    blocks.insert(seq, lines);
                }
            }
            Record::Sealed {
                time: t,
                through: s,
            } => {
                if t > time {
                    sealed.push((t, s));
                }
            }
        }
    }
    sealed.sort();
    let mut replay = Replay {
        next_seq,
        ..Replay::default()
    };
    for (t, upto) in sealed {
        let rest = blocks.split_off(&upto);
        let batch: Vec<(u64, B)> = std::mem::replace(&mut blocks, rest).into_iter().collect();
        replay.by_batch.insert(t, batch);
    }
    replay.unallocated = blocks.into_iter().collect();
    replay
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(seq: u64) -> Record<LineBlock> {
        Record::Block {
            seq,
            lines: [format!("line{seq}")].into_iter().collect(),
        }
    }

    #[test]
    fn records_survive_a_torn_tail_and_new_runs_use_new_segments() {
        let d = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(d.path(), false).unwrap();
        wal.append_block(0, &["line0"].into_iter().collect::<LineBlock>())
            .unwrap();
        wal.append_sealed(1000, 1).unwrap();
        wal.append_block(1, &["line1"].into_iter().collect::<LineBlock>())
            .unwrap();
        drop(wal);
        // A kill cut the last record short.
        let seg = d.path().join("segment-000000.wal");
        let bytes = std::fs::read(&seg).unwrap();
        std::fs::write(&seg, &bytes[..bytes.len() - 2]).unwrap();
        let mut wal = Wal::create(d.path(), true).unwrap();
        wal.append_block(2, &["line2"].into_iter().collect::<LineBlock>())
            .unwrap();
        drop(wal);
        let seqs: Vec<String> = read_all::<LineBlock>(d.path())
            .unwrap()
            .into_iter()
            .map(|r| match r {
                Record::Block { seq, .. } => format!("b{seq}"),
                Record::Sealed { time, .. } => format!("s{time}"),
            })
            .collect();
        assert_eq!(seqs, ["b0", "s1000", "b2"]);
    }

    #[test]
    fn rotated_segments_go_once_a_checkpoint_covers_them() {
        let d = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(d.path(), false).unwrap();
        wal.append_block(0, &LineBlock::default()).unwrap();
        wal.append_block(1, &LineBlock::default()).unwrap();
        wal.rotate(1000).unwrap(); // segment 0: blocks 0-1, closed at 1000
        wal.append_block(2, &LineBlock::default()).unwrap();
        wal.rotate(2000).unwrap(); // segment 1: block 2, closed at 2000
        let names = |d: &Path| {
            segments(d)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        // A checkpoint at 1000 that still needs block 1 keeps everything.
        wal.drop_covered(1000, 1);
        assert_eq!(names(d.path()), [0, 1, 2]);
        // One that holds blocks up to 1 removes segment 0 only.
        wal.drop_covered(1000, 2);
        assert_eq!(names(d.path()), [1, 2]);
        wal.drop_covered(2000, 3);
        assert_eq!(names(d.path()), [2]);
    }

    #[test]
    fn replay_puts_blocks_back_into_their_batches() {
        let records = vec![
            block(0),
            block(1),
            Record::Sealed {
                time: 1000,
                through: 2,
            },
            block(2),
            Record::Sealed {
                time: 2000,
                through: 3,
            },
            block(3),
            block(4),
            Record::Sealed {
                time: 3000,
                through: 5,
            },
            Record::Sealed {
                time: 4000,
                through: 5,
            },
            block(5),
        ];
        // Checkpoint at 1000 held blocks 0 and 1.
        let r = replay(records, 1000, 2);
        let lines = |v: &[(u64, LineBlock)]| {
            v.iter()
                .flat_map(|(_, l)| l.iter().map(str::to_string))
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(&r.by_batch[&2000]), ["line2"]);
        assert_eq!(lines(&r.by_batch[&3000]), ["line3", "line4"]);
        assert!(r.by_batch[&4000].is_empty());
        assert_eq!(lines(&r.unallocated), ["line5"]);
        assert_eq!(r.next_seq, 6);
    }
}
