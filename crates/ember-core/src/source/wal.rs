//! A receiver's write-ahead log: received blocks are durable before they
//! join a batch, and which blocks went into which batch is logged too, so a
//! restarted program replays exactly the data the killed one had received.
//!
//! Layout: `<checkpoint dir>/receivers/<source id>/segment-<n>.wal`, a new
//! segment each start and at each checkpoint (a torn tail from a kill is
//! never appended to), and `HEAD`, naming the newest segment. Each record
//! is `length (u32 LE) | CRC-32 (u32 LE) | postcard payload`.
//!
//! Recovery reads the log together with the checkpoint it resumes from and
//! treats every inconsistency as damage, never as something to repair by
//! guessing: a log missing although the checkpoint says records were
//! received after it, a segment missing between the oldest kept and
//! `HEAD`, a record failing its checksum with more data after it, a block
//! missing from the numbered sequence. Only the newest segment may end in
//! an unfinished record — the one a kill cut short — which is dropped with
//! a warning.

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
    head: Head,
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

/// Why the log in `dir` cannot be trusted, and the ways out.
fn damaged(path: &Path, what: &str) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "recovery: the write-ahead log is damaged ({what}); resuming would silently lose \
             records it held: restore it from a backup, or {}",
            crate::checkpoint::FRESH_START
        ),
        cause: None,
    }
}

fn head_path(dir: &Path) -> PathBuf {
    dir.join("HEAD")
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("segment-{segment:06}.wal"))
}

/// What `HEAD` says: the newest segment, and the first segment of each run
/// whose segments are still kept (the segment before each of those was the
/// last of a run, so a kill may have cut it short).
#[derive(Debug, Default, PartialEq)]
struct Head {
    newest: u64,
    starts: Vec<u64>,
}

impl Head {
    fn read(dir: &Path) -> Result<Option<Head>> {
        let path = head_path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, "cannot read the write-ahead log", e)),
        };
        let bad = || damaged(&path, "HEAD does not name the log's segments");
        let mut lines = text.lines();
        let newest = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(bad)?;
        let starts = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(|n| n.parse().map_err(|_| bad()))
            .collect::<Result<Vec<u64>>>()?;
        Ok(Some(Head { newest, starts }))
    }

    /// Renames the new `HEAD` into place whole.
    fn write(&self, dir: &Path) -> Result<()> {
        let path = head_path(dir);
        let tmp = dir.join("HEAD.tmp");
        let starts: Vec<String> = self.starts.iter().map(u64::to_string).collect();
        std::fs::write(&tmp, format!("{}\n{}\n", self.newest, starts.join(" ")))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| io(&path, "cannot write the write-ahead log's HEAD", e))
    }

    /// Whether `segment` may end in an unfinished record.
    fn may_be_cut(&self, segment: u64) -> bool {
        segment >= self.newest || self.starts.contains(&(segment + 1))
    }
}

/// The intact records of one segment, and the length of an unfinished
/// last record if the segment ends in one.
fn read_segment<B: DeserializeOwned>(
    path: &Path,
    records: &mut Vec<Record<B>>,
) -> Result<Option<usize>> {
    let bytes = std::fs::read(path).map_err(|e| io(path, "cannot read the write-ahead log", e))?;
    let mut at = 0;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + 8) else {
            return Ok(Some(bytes.len() - at));
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            return Ok(Some(bytes.len() - at));
        };
        let decoded = (crc32fast::hash(payload) == crc)
            .then(|| postcard::from_bytes(payload).ok())
            .flatten();
        match decoded {
            Some(r) => records.push(r),
            None => {
                return Err(damaged(
                    path,
                    &format!(
                        "the record at byte {at} fails its checksum with {} more bytes after \
                         it: the file is corrupt, not cut short by a kill",
                        bytes.len() - at - 8 - len
                    ),
                ))
            }
        }
        at += 8 + len;
    }
    Ok(None)
}

/// Every record of the log in `dir`, oldest first, checked against the
/// checkpoint resumed from: `restored` is its batch time and the number of
/// the first block no batch of it held (`None` without a checkpoint: every
/// block from 0 on must be there).
///
/// # Errors
///
/// [`Error::Checkpoint`] naming the damaged or missing file (see the module
/// documentation for what counts as damage).
pub(crate) fn read_checked<B: DeserializeOwned>(
    dir: &Path,
    restored: Option<(u64, u64)>,
) -> Result<Vec<Record<B>>> {
    let found = segments(dir)?;
    let head = match Head::read(dir)? {
        Some(h) => h,
        None => match found.last() {
            // A kill before the first HEAD was written.
            Some((n, _)) => Head {
                newest: *n,
                starts: Vec::new(),
            },
            None => {
                if let Some((time, _)) = restored {
                    return Err(damaged(
                        dir,
                        &format!(
                            "the log is gone, though the checkpoint at {time} ms was written \
                             while it was kept here (if this program ran without the \
                             write-ahead log before, that is why)"
                        ),
                    ));
                }
                return Ok(Vec::new());
            }
        },
    };
    // Segments go from the oldest on, so those kept run without a gap to
    // HEAD (a kill between opening a segment and naming it leaves one more).
    let first = found.first().map_or(head.newest, |(n, _)| *n);
    let last = found
        .last()
        .map_or(head.newest, |(n, _)| *n)
        .max(head.newest);
    for n in first..=last {
        if found.binary_search_by_key(&n, |(k, _)| *k).is_err() {
            return Err(damaged(
                &segment_path(dir, n),
                &format!("segment {n} is missing (the log runs from segment {first} to {last})"),
            ));
        }
    }
    let mut records = Vec::new();
    for (n, path) in &found {
        if let Some(rest) = read_segment(path, &mut records)? {
            if !head.may_be_cut(*n) {
                return Err(damaged(
                    path,
                    &format!(
                        "it ends in {rest} bytes of an unfinished record, though the same run \
                         wrote newer segments after it"
                    ),
                ));
            }
            tracing::warn!(
                "write-ahead log {}: dropping {rest} bytes of an unfinished last record (a kill \
                 cut it short before it was acknowledged)",
                path.display()
            );
        }
    }
    // Blocks are numbered as they arrive: from the checkpoint's position on,
    // every number up to the last one logged must be there.
    let from = restored.map_or(0, |(_, through)| through);
    let mut numbers: Vec<u64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Block { seq, .. } if *seq >= from => Some(*seq),
            _ => None,
        })
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    for (want, n) in (from..).zip(numbers) {
        if n != want {
            return Err(damaged(
                dir,
                &format!(
                    "{} missing from its segments (blocks from {from} on were received after \
                     the checkpoint resumed from)",
                    if n - 1 == want {
                        format!("block {want} is")
                    } else {
                        format!("blocks {want} to {} are", n - 1)
                    }
                ),
            ));
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
        let out = Self::open_segment(dir, segment)?;
        // Runs whose segments are still here keep their place in HEAD.
        let mut starts = Head::read(dir).ok().flatten().unwrap_or_default().starts;
        starts.push(segment);
        let head = Head {
            newest: segment,
            starts,
        };
        head.write(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment,
            out,
            head,
            sync,
            max_seq: None,
            closed: Vec::new(),
        })
    }

    fn open_segment(dir: &Path, segment: u64) -> Result<BufWriter<File>> {
        let path = segment_path(dir, segment);
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
        self.head.newest = self.segment + 1;
        self.head.write(&self.dir)?;
        self.closed.push((self.segment, self.max_seq.take(), time));
        self.segment += 1;
        self.out = next;
        Ok(())
    }

    /// Removes the closed segments a checkpoint at `time` covers: closed
    /// at or before it, and holding only blocks before `through`.
    pub(crate) fn drop_covered(&mut self, time: u64, through: u64) {
        let dir = self.dir.clone();
        // Segments go oldest first, so that those left never have a gap.
        let mut gone = 0;
        for (segment, max_seq, closed_at) in &self.closed {
            let covered = *closed_at <= time && max_seq.is_none_or(|m| m < through);
            if !covered || std::fs::remove_file(segment_path(&dir, *segment)).is_err() {
                break;
            }
            gone += 1;
        }
        self.closed.drain(..gone);
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
        let path = segment_path(&self.dir, self.segment);
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
    pub(crate) fn remove_older_segments(&mut self) -> Result<()> {
        if let Ok(all) = segments(&self.dir) {
            for (n, path) in all {
                if n < self.segment {
                    std::fs::remove_file(&path).map_err(|e| {
                        io(&path, "cannot remove an old write-ahead log segment", e)
                    })?;
                }
            }
        }
        self.head.starts = vec![self.segment];
        self.head.write(&self.dir)
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
        // A kill cut the last record short: block 1 was never acknowledged,
        // so the next run numbers its first block 1 again.
        let seg = d.path().join("segment-000000.wal");
        let bytes = std::fs::read(&seg).unwrap();
        std::fs::write(&seg, &bytes[..bytes.len() - 2]).unwrap();
        let mut wal = Wal::create(d.path(), true).unwrap();
        wal.append_block(1, &["line1 again"].into_iter().collect::<LineBlock>())
            .unwrap();
        drop(wal);
        let seqs: Vec<String> = read_checked::<LineBlock>(d.path(), None)
            .unwrap()
            .into_iter()
            .map(|r| match r {
                Record::Block { seq, lines } => format!("b{seq}:{}", lines.iter().count()),
                Record::Sealed { time, .. } => format!("s{time}"),
            })
            .collect();
        assert_eq!(seqs, ["b0:1", "s1000", "b1:1"]);
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

    /// A log of one run with a checkpoint at 1000 (blocks 0-1 in it) and
    /// blocks 2-5 after, over three segments: 0 (blocks 0-1), 1 (2-3), 2 (4-5).
    fn three_segments(d: &Path) -> Wal {
        let mut wal = Wal::create(d, false).unwrap();
        for seq in 0..6 {
            if seq == 2 || seq == 4 {
                wal.rotate(seq * 500).unwrap();
            }
            wal.append_block(
                seq,
                &[format!("line{seq}")].into_iter().collect::<LineBlock>(),
            )
            .unwrap();
        }
        wal.append_sealed(2000, 6).unwrap();
        wal
    }

    fn error_of(d: &Path, restored: Option<(u64, u64)>) -> String {
        read_checked::<LineBlock>(d, restored)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn an_intact_log_reads_whole() {
        let d = tempfile::tempdir().unwrap();
        drop(three_segments(d.path()));
        let records = read_checked::<LineBlock>(d.path(), Some((1000, 2))).unwrap();
        let r = replay(records, 1000, 2);
        assert_eq!(r.by_batch[&2000].len(), 4);
        assert_eq!(r.next_seq, 6);
    }

    #[test]
    fn a_missing_segment_is_damage_wherever_it_was() {
        for gone in [0, 1, 2] {
            let d = tempfile::tempdir().unwrap();
            drop(three_segments(d.path()));
            std::fs::remove_file(segment_path(d.path(), gone)).unwrap();
            if gone == 0 {
                // Blocks 0-1 are in the checkpoint; 2 on must be there.
                read_checked::<LineBlock>(d.path(), Some((1000, 2))).unwrap();
                let e = error_of(d.path(), Some((500, 0)));
                assert!(e.contains("blocks 0 to 1 are missing"), "{e}");
            } else {
                let e = error_of(d.path(), Some((1000, 2)));
                assert!(
                    e.contains(&format!("segment {gone} is missing"))
                        && e.contains(&format!("segment-00000{gone}.wal"))
                        && e.contains("--fresh-start"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn a_log_gone_under_a_checkpoint_is_damage() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("receivers/0-socket");
        assert!(read_checked::<LineBlock>(&log, None).unwrap().is_empty());
        let e = error_of(&log, Some((1000, 2)));
        assert!(
            e.contains("the log is gone") && e.contains("1000 ms"),
            "{e}"
        );
    }

    #[test]
    fn a_flipped_byte_mid_segment_is_corruption_not_a_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        drop(three_segments(d.path()));
        let seg = segment_path(d.path(), 1);
        let mut bytes = std::fs::read(&seg).unwrap();
        let third = bytes.len() / 3;
        bytes[third] ^= 0x40;
        std::fs::write(&seg, &bytes).unwrap();
        let e = error_of(d.path(), Some((1000, 2)));
        assert!(
            e.contains("segment-000001.wal") && e.contains("fails its checksum"),
            "{e}"
        );
    }

    #[test]
    fn only_the_last_segment_of_a_run_may_be_cut_short() {
        let d = tempfile::tempdir().unwrap();
        drop(three_segments(d.path()));
        let cut = |n: u64| {
            let seg = segment_path(d.path(), n);
            let bytes = std::fs::read(&seg).unwrap();
            std::fs::write(&seg, &bytes[..bytes.len() - 3]).unwrap();
        };
        // Segment 1 was closed by a rotation: a short end there is damage.
        cut(1);
        let e = error_of(d.path(), Some((1000, 2)));
        assert!(
            e.contains("segment-000001.wal") && e.contains("unfinished"),
            "{e}"
        );
    }

    #[test]
    fn the_newest_segment_gone_is_seen_through_head() {
        let d = tempfile::tempdir().unwrap();
        drop(three_segments(d.path()));
        std::fs::remove_file(segment_path(d.path(), 2)).unwrap();
        let e = error_of(d.path(), Some((1000, 2)));
        assert!(e.contains("segment 2 is missing"), "{e}");
    }
}
