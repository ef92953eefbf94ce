//! Checkpoints: consistent snapshots of operator state at batch boundaries.
//!
//! Layout of a checkpoint directory:
//!
//! ```text
//! <dir>/checkpoint-<t>/part-<w>     each worker's operator states at batch t
//! <dir>/checkpoint-<t>/COMMIT       written last by process 0 (the only one
//!                                   in local mode)
//! <dir>/checkpoint-<t>/COMMIT-<p>   written last by process p > 0 of a cluster
//! <dir>/COMMITTED                   written once, when a first checkpoint completed
//! ```
//!
//! Every file starts with a header — magic `EMBERCKP`, format version, payload
//! length, CRC-32 of the payload — so a truncated or corrupt file is detected
//! and reported, never half-read. Each process writes its commit marker after
//! all of its workers' parts; a checkpoint counts only when the markers of
//! every process are there (`COMMIT` says how many processes wrote it). In a
//! cluster the directory is shared by all processes, so they restore from the
//! same checkpoint. On restore the newest valid checkpoint
//! is used; an invalid newer one is logged and skipped. The two newest
//! complete checkpoints are kept, older ones removed.
//!
//! `COMMITTED` is what tells a directory whose commit markers were lost
//! from one where no checkpoint ever completed: with it and no complete
//! checkpoint, restoring is refused instead of starting afresh over lost
//! state. [`set_aside`] moves a directory's contents away for an explicit
//! fresh start.
//!
//! Each stateful operator has a stable id from its place in the graph and its
//! kind (`3:update_state_by_key`). `COMMIT` lists them, so a program whose
//! stateful operators changed is refused at start with the difference, not
//! silently restored into the wrong operators. Keyed state is stored by key:
//! restoring on a different number of workers re-routes every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MAGIC: &[u8; 8] = b"EMBERCKP";
/// Written once a first checkpoint completed in a directory.
const COMMITTED: &str = "COMMITTED";
/// How to start afresh, for the errors that refuse to resume.
pub(crate) const FRESH_START: &str = "start afresh explicitly with --fresh-start \
     (StreamingConf::fresh_start), which sets the directory's contents aside";

/// Bumped when the layout of a payload changes; older files are refused.
pub(crate) const FORMAT_VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 8 + 4;

/// One worker's states at one batch: operator id → serialized state.
pub(crate) type Part = BTreeMap<String, Vec<u8>>;

/// What `COMMIT` records about a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Commit {
    /// The batch time the states are after.
    pub(crate) time: u64,
    /// The run's zero time and interval, kept across restarts.
    pub(crate) zero: u64,
    pub(crate) interval: u64,
    /// Workers that wrote parts, in all processes.
    pub(crate) workers: usize,
    /// Processes that wrote parts (1 in local mode), each with its marker.
    pub(crate) processes: usize,
    /// The stateful operators of the graph, in order.
    pub(crate) operators: Vec<String>,
}

/// A checkpoint read back for restoring.
#[derive(Debug)]
pub(crate) struct Restored {
    pub(crate) commit: Commit,
    /// Each operator's states, one entry per worker that wrote one.
    pub(crate) states: BTreeMap<String, Vec<Vec<u8>>>,
}

fn encode<T: Serialize>(path: &Path, value: &T) -> Result<Vec<u8>> {
    let payload = to_bytes(path, "a checkpoint file", value)?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

fn corrupt(path: &Path, what: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message: what.into(),
        cause: None,
    }
}

fn decode<T: for<'de> Deserialize<'de>>(path: &Path, bytes: &[u8]) -> Result<T> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(corrupt(
            path,
            "not an ember checkpoint file (bad header or truncated)",
        ));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(corrupt(
            path,
            format!(
                "written by checkpoint format {version}, this ember reads format {FORMAT_VERSION}: \
                 restore with the ember version that wrote it, or {FRESH_START}"
            ),
        ));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(corrupt(
            path,
            format!("truncated: {} of {len} payload bytes", payload.len()),
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err(corrupt(path, "checksum mismatch: the file is corrupt"));
    }
    postcard::from_bytes(payload).map_err(|e| corrupt(path, format!("undecodable payload: {e}")))
}

/// Serializes `what` (an operator's state, a plan, a log record) for the
/// checkpoint files at `path`.
///
/// # Errors
///
/// [`Error::Checkpoint`] at `path` naming `what` when the value's
/// `Serialize` cannot be written in postcard's format (e.g.
/// `#[serde(flatten)]`, which needs maps of unknown length): never empty
/// bytes that would only fail at restore.
pub(crate) fn to_bytes<T: Serialize>(path: &Path, what: &str, value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "{what} cannot be encoded for the checkpoint ({e}): its record, key or state type \
             has a Serialize that needs a self-describing format (e.g. #[serde(flatten)] or a \
             map of unknown length); give it a plain derived Serialize, or run without \
             checkpointing"
        ),
        cause: None,
    })
}

/// Deserializes one operator's state.
pub(crate) fn from_bytes<T: for<'de> Deserialize<'de>>(op: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Checkpoint {
        path: PathBuf::from(op),
        message: format!(
            "the state of operator {op} does not decode ({e}): its record or state type changed \
             since the checkpoint was written; run the program that wrote it, or {FRESH_START}"
        ),
        cause: None,
    })
}

fn io(path: &Path, message: &str, e: std::io::Error) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
        cause: Some(e.into()),
    }
}

/// Writes a file so that it is either complete or absent.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| io(path, "cannot write checkpoint file", e))
}

fn checkpoint_dir(dir: &Path, time: u64) -> PathBuf {
    dir.join(format!("checkpoint-{time}"))
}

/// Writes one worker's part of the checkpoint at `time`; returns its size.
pub(crate) fn write_part(dir: &Path, time: u64, worker: usize, part: &Part) -> Result<u64> {
    let d = checkpoint_dir(dir, time);
    std::fs::create_dir_all(&d).map_err(|e| io(&d, "cannot create checkpoint directory", e))?;
    let path = d.join(format!("part-{worker}"));
    let bytes = encode(&path, part)?;
    write_atomic(&path, &bytes)?;
    Ok(bytes.len() as u64)
}

/// The file that marks `process`'s parts of a checkpoint written.
fn marker(process: usize) -> String {
    match process {
        0 => "COMMIT".to_string(),
        p => format!("COMMIT-{p}"),
    }
}

/// Whether every process has marked its parts of the checkpoint in `path`
/// written. An unreadable `COMMIT` counts as complete here, so that reading
/// it reports the damage instead of skipping it silently.
fn is_complete(path: &Path) -> bool {
    let commit_path = path.join("COMMIT");
    let Ok(bytes) = std::fs::read(&commit_path) else {
        return false;
    };
    match decode::<Commit>(&commit_path, &bytes) {
        Ok(c) => (1..c.processes).all(|p| path.join(marker(p)).exists()),
        Err(_) => true,
    }
}

/// Marks `process`'s parts of the checkpoint at `commit.time` written and
/// removes all but the two newest complete checkpoints; returns the
/// marker's size.
pub(crate) fn write_commit(dir: &Path, commit: &Commit, process: usize) -> Result<u64> {
    let d = checkpoint_dir(dir, commit.time);
    let path = d.join(marker(process));
    let bytes = encode(&path, commit)?;
    write_atomic(&path, &bytes)?;
    let mut complete = list(dir)?;
    complete.retain(|(_, p)| is_complete(p));
    let committed = dir.join(COMMITTED);
    if !complete.is_empty() && !committed.exists() {
        // Only its existence matters, so racing processes cannot spoil it.
        std::fs::write(
            &committed,
            "A checkpoint completed in this directory: ember will not start afresh here \
             silently if the checkpoints' COMMIT markers go missing.\n",
        )
        .map_err(|e| io(&committed, "cannot write checkpoint file", e))?;
    }
    if complete.len() > 2 {
        for (_, old) in &complete[..complete.len() - 2] {
            if let Err(e) = std::fs::remove_dir_all(old) {
                tracing::warn!("cannot remove old checkpoint {}: {e}", old.display());
            }
        }
    }
    // Unfinished checkpoints older than the newest complete one are debris.
    if let Some((newest, _)) = complete.last() {
        for (t, p) in list(dir)? {
            if t < *newest && !is_complete(&p) {
                let _ = std::fs::remove_dir_all(p);
            }
        }
    }
    Ok(bytes.len() as u64)
}

/// The times of the complete checkpoints in `dir`, oldest first.
pub(crate) fn committed_times(dir: &Path) -> Vec<u64> {
    list(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, p)| is_complete(p))
        .map(|(t, _)| t)
        .collect()
}

/// Checkpoint directories by time, oldest first.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io(dir, "cannot list the checkpoint directory", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, "cannot list the checkpoint directory", e))?;
        let name = entry.file_name();
        if let Some(t) = name
            .to_str()
            .and_then(|n| n.strip_prefix("checkpoint-"))
            .and_then(|n| n.parse().ok())
        {
            found.push((t, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn read_one(path: &Path) -> Result<Restored> {
    let commit_path = path.join("COMMIT");
    let bytes = std::fs::read(&commit_path).map_err(|e| io(&commit_path, "cannot read", e))?;
    let commit: Commit = decode(&commit_path, &bytes)?;
    let mut states: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for w in 0..commit.workers {
        let p = path.join(format!("part-{w}"));
        let bytes = std::fs::read(&p).map_err(|e| io(&p, "cannot read checkpoint part", e))?;
        let part: Part = decode(&p, &bytes)?;
        for (op, state) in part {
            states.entry(op).or_default().push(state);
        }
    }
    Ok(Restored { commit, states })
}

/// The newest complete and valid checkpoint in `dir`, if any. Newer
/// checkpoints that are incomplete are ignored; corrupt ones are logged and
/// skipped.
///
/// # Errors
///
/// [`Error::Checkpoint`] when complete checkpoints exist but none is valid,
/// or when none is complete although one completed before (their commit
/// markers are gone): ember never silently starts afresh over a damaged
/// checkpoint.
pub(crate) fn read_latest(dir: &Path) -> Result<Option<Restored>> {
    let mut last_error = None;
    let all = list(dir)?;
    for (_, path) in all.iter().rev() {
        if !is_complete(path) {
            continue;
        }
        match read_one(path) {
            Ok(r) => {
                if last_error.is_some() {
                    tracing::warn!(
                        "recovery: falling back to the older complete checkpoint {}",
                        path.display()
                    );
                }
                return Ok(Some(r));
            }
            Err(e) => {
                tracing::warn!(
                    "recovery: skipping damaged checkpoint {}: {e}",
                    path.display()
                );
                last_error = Some(e);
            }
        }
    }
    if let Some(e) = last_error {
        return Err(e);
    }
    let Some((_, newest)) = all.last() else {
        return Ok(None);
    };
    let markers = newest.join("COMMIT");
    if dir.join(COMMITTED).exists() {
        let names: Vec<String> = all
            .iter()
            .map(|(_, p)| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        return Err(Error::Checkpoint {
            path: markers,
            message: format!(
                "no checkpoint here is complete although one completed before: the commit \
                 markers (COMMIT, COMMIT-<process>) of {} are missing, so their state cannot \
                 be trusted and starting from empty state would lose it; restore the missing \
                 markers from a backup, or {FRESH_START}",
                names.join(", ")
            ),
            cause: None,
        });
    }
    tracing::warn!(
        "recovery: no checkpoint in {} ever completed ({} has no COMMIT): starting afresh",
        dir.display(),
        newest.display()
    );
    Ok(None)
}

/// Clears what a stopped run left after the checkpoint a new run resumes
/// from (`resumed`; `None` when it starts from empty state), before any
/// process of the new run writes: unfinished checkpoints are removed, and a
/// complete one that [`read_latest`] skipped as damaged is moved to
/// `damaged-checkpoint-<t>-<unix ms>` for inspection. Otherwise the commit
/// markers the killed run left could make the new run's rewrite of the same
/// batch count as complete before all of its processes wrote their parts,
/// mixing the parts of two runs (which differ when the worker count
/// changed). Returns how many were cleared.
///
/// # Errors
///
/// [`Error::Checkpoint`] when one cannot be removed or moved.
pub(crate) fn clear_after(dir: &Path, resumed: Option<u64>) -> Result<usize> {
    let mut cleared = 0;
    for (t, path) in list(dir)? {
        if resumed.is_some_and(|r| t <= r) {
            continue;
        }
        if is_complete(&path) {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let to = dir.join(format!("damaged-checkpoint-{t}-{ms}"));
            std::fs::rename(&path, &to).map_err(|e| io(&path, "cannot move aside", e))?;
            tracing::warn!(
                "recovery: the damaged checkpoint {} is kept as {} for inspection; this run \
                 writes that batch's checkpoint anew",
                path.display(),
                to.display()
            );
        } else {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, "cannot remove an unfinished checkpoint", e)),
            }
            tracing::debug!(
                "recovery: removed the unfinished checkpoint {}",
                path.display()
            );
        }
        cleared += 1;
    }
    Ok(cleared)
}

/// Moves what `dir` holds (checkpoints, plan logs, write-ahead logs) into a
/// new `dir/set-aside-<unix ms>` for a fresh start, and returns that path;
/// `None` when there was nothing to move.
///
/// # Errors
///
/// [`Error::Checkpoint`] when the contents cannot be moved.
pub(crate) fn set_aside(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(dir, "cannot list the checkpoint directory", e)),
    };
    let moving: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("checkpoint-") || matches!(&*name, "plans" | "receivers" | COMMITTED)
        })
        .map(|e| e.path())
        .collect();
    if moving.is_empty() {
        return Ok(None);
    }
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let aside = dir.join(format!("set-aside-{ms}"));
    std::fs::create_dir_all(&aside).map_err(|e| io(&aside, "cannot create", e))?;
    for path in moving {
        let to = aside.join(path.file_name().unwrap_or_default());
        std::fs::rename(&path, &to).map_err(|e| io(&path, "cannot move aside", e))?;
    }
    Ok(Some(aside))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(time: u64) -> Commit {
        Commit {
            time,
            zero: 0,
            interval: 1000,
            workers: 2,
            processes: 1,
            operators: vec!["0:x".into()],
        }
    }

    fn write(dir: &Path, time: u64) {
        for w in 0..2 {
            let mut part = Part::new();
            part.insert("0:x".into(), to_bytes(dir, "0:x", &(time, w)).unwrap());
            write_part(dir, time, w, &part).unwrap();
        }
        write_commit(dir, &commit(time), 0).unwrap();
    }

    #[test]
    fn round_trip_and_newest_wins() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_latest(d.path()).unwrap().is_none());
        write(d.path(), 1000);
        write(d.path(), 2000);
        let r = read_latest(d.path()).unwrap().unwrap();
        assert_eq!(r.commit, commit(2000));
        let states: Vec<(u64, usize)> = r.states["0:x"]
            .iter()
            .map(|b| from_bytes("0:x", b).unwrap())
            .collect();
        assert_eq!(states, [(2000, 0), (2000, 1)]);
    }

    #[test]
    fn only_two_complete_checkpoints_are_kept() {
        let d = tempfile::tempdir().unwrap();
        for t in [1000, 2000, 3000, 4000] {
            write(d.path(), t);
        }
        let left: Vec<u64> = list(d.path())
            .unwrap()
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert_eq!(left, [3000, 4000]);
    }

    #[test]
    fn an_uncommitted_newer_checkpoint_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), 1000);
        write_part(d.path(), 2000, 0, &Part::new()).unwrap();
        assert_eq!(read_latest(d.path()).unwrap().unwrap().commit.time, 1000);
    }

    #[test]
    fn a_cluster_checkpoint_counts_once_every_process_marked_it() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), 1000);
        // Two processes of one worker each; process 1 is late.
        let two = Commit {
            workers: 2,
            processes: 2,
            ..commit(2000)
        };
        for w in 0..2 {
            write_part(d.path(), 2000, w, &Part::new()).unwrap();
        }
        write_commit(d.path(), &two, 0).unwrap();
        assert_eq!(committed_times(d.path()), [1000]);
        assert_eq!(read_latest(d.path()).unwrap().unwrap().commit.time, 1000);
        write_commit(d.path(), &two, 1).unwrap();
        assert_eq!(committed_times(d.path()), [1000, 2000]);
        assert_eq!(read_latest(d.path()).unwrap().unwrap().commit, two);
    }

    #[test]
    fn corrupt_and_truncated_parts_fall_back_to_the_previous_checkpoint() {
        for damage in ["flip", "truncate", "header"] {
            let d = tempfile::tempdir().unwrap();
            write(d.path(), 1000);
            write(d.path(), 2000);
            let p = d.path().join("checkpoint-2000/part-1");
            let mut bytes = std::fs::read(&p).unwrap();
            match damage {
                "flip" => *bytes.last_mut().unwrap() ^= 0xff,
                "truncate" => bytes.truncate(bytes.len() - 3),
                _ => bytes[0] = b'X',
            }
            std::fs::write(&p, &bytes).unwrap();
            let r = read_latest(d.path()).unwrap().unwrap();
            assert_eq!(r.commit.time, 1000, "{damage}");
        }
    }

    #[test]
    fn all_checkpoints_damaged_is_an_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), 1000);
        let p = d.path().join("checkpoint-1000/COMMIT");
        std::fs::write(&p, b"EMBERCKP garbage").unwrap();
        let e = read_latest(d.path()).unwrap_err();
        assert!(matches!(e, Error::Checkpoint { .. }), "{e:?}");
        assert!(e.to_string().contains("COMMIT"), "{e}");
    }

    #[test]
    fn another_format_version_is_refused_with_advice() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), 1000);
        let p = d.path().join("checkpoint-1000/COMMIT");
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[8] = 99;
        std::fs::write(&p, &bytes).unwrap();
        let e = read_latest(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("format 99") && e.contains("--fresh-start"),
            "{e}"
        );
    }

    #[test]
    fn lost_commit_markers_are_refused_not_a_fresh_start() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), 1000);
        write(d.path(), 2000);
        for t in [1000, 2000] {
            std::fs::remove_file(d.path().join(format!("checkpoint-{t}/COMMIT"))).unwrap();
        }
        let e = read_latest(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("checkpoint-1000, checkpoint-2000")
                && e.contains("checkpoint-2000/COMMIT")
                && e.contains("--fresh-start"),
            "{e}"
        );
    }

    #[test]
    fn a_first_checkpoint_that_never_completed_starts_afresh() {
        let d = tempfile::tempdir().unwrap();
        write_part(d.path(), 1000, 0, &Part::new()).unwrap();
        assert!(read_latest(d.path()).unwrap().is_none());
        assert!(!d.path().join(COMMITTED).exists());
        write(d.path(), 2000);
        assert!(d.path().join(COMMITTED).exists());
    }

    #[test]
    fn a_resumed_run_clears_what_the_killed_run_left_after_its_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), 1000);
        write(d.path(), 2000);
        // 4000 completed but one of its parts is damaged; at 5000 only
        // process 1 of two had marked its parts when the run was killed.
        write(d.path(), 4000);
        std::fs::write(d.path().join("checkpoint-4000/part-1"), b"torn").unwrap();
        let two = Commit {
            processes: 2,
            ..commit(5000)
        };
        write_part(d.path(), 5000, 1, &Part::new()).unwrap();
        write_commit(d.path(), &two, 1).unwrap();
        let resumed = read_latest(d.path()).unwrap().unwrap().commit.time;
        assert_eq!(resumed, 2000);
        assert_eq!(clear_after(d.path(), Some(resumed)).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != COMMITTED)
            .collect();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(left[0], "checkpoint-2000");
        assert!(left[1].starts_with("damaged-checkpoint-4000-"), "{left:?}");
        // The new run's process 0 rewrites 5000: not complete until
        // process 1 of this run marks it too (no stale COMMIT-1 counts).
        write_part(d.path(), 5000, 0, &Part::new()).unwrap();
        write_commit(d.path(), &two, 0).unwrap();
        assert_eq!(committed_times(d.path()), [2000]);
        assert_eq!(read_latest(d.path()).unwrap().unwrap().commit.time, 2000);
        // Starting from empty state clears every unfinished checkpoint.
        let e = tempfile::tempdir().unwrap();
        write_part(e.path(), 1000, 0, &Part::new()).unwrap();
        assert_eq!(clear_after(e.path(), None).unwrap(), 1);
        assert!(list(e.path()).unwrap().is_empty());
    }

    #[test]
    fn set_aside_moves_everything_ember_wrote() {
        let d = tempfile::tempdir().unwrap();
        assert!(set_aside(d.path()).unwrap().is_none());
        write(d.path(), 1000);
        std::fs::create_dir_all(d.path().join("plans/1-kafka")).unwrap();
        std::fs::create_dir_all(d.path().join("receivers/0-socket")).unwrap();
        std::fs::write(d.path().join("notes.txt"), "the user's").unwrap();
        let aside = set_aside(d.path()).unwrap().unwrap();
        assert!(read_latest(d.path()).unwrap().is_none());
        let mut left: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let name = aside.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(left, ["notes.txt".to_string(), name]);
        assert_eq!(read_latest(&aside).unwrap().unwrap().commit.time, 1000);
        assert!(aside.join("plans/1-kafka").is_dir() && aside.join("receivers").is_dir());
    }
}
