//! Planned sources: at each batch time one worker decides what the batch
//! holds (Kafka offset ranges, say) and the plan is what the batch carries,
//! the way Spark's direct Kafka stream decides offset ranges on the driver.
//!
//! The engine makes such a source exactly replayable: every plan is written
//! to a plan log in the checkpoint directory before the batch runs, and the
//! planner's position is checkpointed with the operators' state. After a
//! restart from a checkpoint, the batches planned since are run again with
//! the same plans; only then does the planner plan anew from where they
//! ended. Rate limits ([`StreamingConf::max_rate`], backpressure) reach the
//! planner as a cap on the records of each batch.
//!
//! [`StreamingConf::max_rate`]: crate::StreamingConf::max_rate

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::listener::{Event, ReceiverInfo};
use crate::rate::RateControl;
use crate::scope::{Stateful, StreamingScope};
use crate::source::{batch_source, BatchSource};
use crate::time::Time;
use crate::Data;

/// What a planned source decides, on one worker, when each batch closes.
/// See [`StreamingScope::planned_source`].
pub trait BatchPlanner: 'static {
    /// What a plan is made of (e.g. an offset range).
    type Item: Data;
    /// Where the planner stands after the batches planned so far (e.g. the
    /// next offset of every partition); checkpointed.
    type Position: Serialize + DeserializeOwned + 'static;

    /// The batch at `time` closes: decide what it holds. With a rate limit,
    /// `cap` is the most records the batch may hold.
    ///
    /// # Errors
    ///
    /// An error stops the context (retry inside when the cause can pass).
    fn plan(&mut self, time: Time, cap: Option<u64>) -> Result<Vec<Self::Item>>;

    /// How many records an item stands for, for batch statistics.
    fn records(&self, item: &Self::Item) -> u64;

    /// The position after the batches planned so far.
    fn position(&self) -> Self::Position;

    /// Resumes from a checkpointed position (before any `plan` call).
    fn restore(&mut self, position: Self::Position);

    /// A batch run again after recovery holds `items` again, from the plan
    /// log: move past them.
    fn replayed(&mut self, time: Time, items: &[Self::Item]);

    /// The context stops; nothing is planned after this.
    fn stop(&mut self) {}
}

struct Planned<P: BatchPlanner> {
    name: String,
    planner: P,
    checkpoint: Stateful,
    /// The plan log's directory, with checkpointing on.
    log: Option<PathBuf>,
    /// Plans read back from the log, by batch time, to run again.
    replay: BTreeMap<u64, Vec<P::Item>>,
    checkpoints: Option<PathBuf>,
    rate: Arc<RateControl>,
    planned: Arc<AtomicU64>,
    interval: u64,
    started: bool,
    bus: Arc<crate::listener::Bus>,
    worker: usize,
    /// Listed among the receivers (listener events, the UI's table).
    listed: bool,
}

/// A plan file: CRC32 of the body, then the body (postcard of time and items).
fn plan_path(dir: &Path, time: u64) -> PathBuf {
    dir.join(format!("plan-{time:020}"))
}

/// The batch time of a plan file's name.
fn plan_time(name: &str) -> Option<u64> {
    name.strip_prefix("plan-")?.parse().ok()
}

fn write_plan<T: Serialize>(dir: &Path, time: u64, items: &[T]) -> Result<()> {
    let path = plan_path(dir, time);
    let what = format!("the plan of batch {time} ms");
    let body = crate::checkpoint::to_bytes(&path, &what, &(time, items))?;
    let mut bytes = crc32fast::hash(&body).to_le_bytes().to_vec();
    bytes.extend_from_slice(&body);
    let tmp = path.with_extension("tmp");
    let io = |e: std::io::Error| Error::Checkpoint {
        path: path.clone(),
        message: "cannot write the plan log (is the checkpoint directory writable?)".into(),
        cause: Some(e.into()),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(&tmp, &bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// A damaged plan log: what is wrong with `path`, and the way out.
fn damaged(path: &Path, what: &str) -> Error {
    Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "recovery: the plan log is damaged ({what}); running on would read the records of \
             some batches twice or never: restore the file from a backup, or {}",
            crate::checkpoint::FRESH_START
        ),
        cause: None,
    }
}

/// The plans logged for the batches after `after`, which must follow each
/// other every `interval` from `after + interval` on: a plan missing
/// between two logged ones, or one that fails its checksum or does not
/// decode, is damage. (Plans are renamed into place whole, so a kill
/// leaves no torn plan; the log simply ends at the last batch planned.)
fn read_plans<T: DeserializeOwned>(
    dir: &Path,
    op: &str,
    after: u64,
    interval: u64,
) -> Result<BTreeMap<u64, Vec<T>>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let t = plan_time(&e.file_name().to_string_lossy())?;
            Some((t, e.path()))
        })
        .filter(|(t, _)| *t > after)
        .collect();
    files.sort();
    let mut expected = after + interval;
    for (t, path) in files {
        if t != expected {
            let last = out.keys().last().copied().unwrap_or(after);
            return Err(damaged(
                &plan_path(dir, expected),
                &format!(
                    "the plan of batch {expected} ms is missing, though batch {t} ms was planned \
                     after it (the log resumes from the checkpoint at {after} ms and is whole up \
                     to {last} ms)"
                ),
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::Checkpoint {
            path: path.clone(),
            message: "recovery: cannot read the plan log".into(),
            cause: Some(e.into()),
        })?;
        if bytes.len() < 4 || crc32fast::hash(&bytes[4..]).to_le_bytes() != bytes[..4] {
            return Err(damaged(&path, "the file fails its checksum"));
        }
        let (time, items): (u64, Vec<T>) = crate::checkpoint::from_bytes(op, &bytes[4..])
            .map_err(|_| damaged(&path, "the file does not decode"))?;
        if time != t {
            return Err(damaged(
                &path,
                &format!("the file holds the plan of batch {time} ms"),
            ));
        }
        out.insert(t, items);
        expected += interval;
    }
    Ok(out)
}

impl<P: BatchPlanner> Planned<P> {
    /// Resumes the planner from the restored checkpoint and reads the plans
    /// logged since, to run again; a damaged log is refused here, while the
    /// graph is built, so `start` fails.
    fn recover(&mut self) -> Result<()> {
        let restored: Vec<(u64, P::Position)> = self.checkpoint.restored();
        let resume_time = match restored.into_iter().max_by_key(|(t, _)| *t) {
            Some((t, position)) => {
                self.planner.restore(position);
                t
            }
            None => 0,
        };
        if let Some(dir) = &self.log {
            if resume_time > 0 {
                self.replay = read_plans(dir, &self.checkpoint.id, resume_time, self.interval)?;
                if !self.replay.is_empty() {
                    tracing::info!(
                        source = %self.name,
                        batches = self.replay.len(),
                        "recovery: batches planned before the restart run again with the same plans"
                    );
                }
            } else if let Ok(entries) = std::fs::read_dir(dir) {
                // No checkpoint to resume from: earlier plans mean nothing now.
                for e in entries.flatten() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    fn start(&mut self) -> Result<()> {
        self.started = true;
        if !self.listed {
            return Ok(());
        }
        self.bus.post(Event::ReceiverStarted(ReceiverInfo {
            name: self.name.clone(),
            active: true,
            worker: self.worker,
            last_error: None,
            num_records: 0,
            rate_limit: self.rate.rate(),
        }));
        Ok(())
    }

    /// Removes plans that no checkpoint kept can need.
    fn trim(&self) {
        let (Some(dir), Some(ckpt)) = (&self.log, &self.checkpoints) else {
            return;
        };
        let Some(&oldest) = crate::checkpoint::committed_times(ckpt).first() else {
            return;
        };
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if plan_time(&e.file_name().to_string_lossy()).is_some_and(|t| t <= oldest) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

impl<P: BatchPlanner> BatchSource<P::Item> for Planned<P> {
    fn seal(&mut self, time: u64, out: &mut Vec<P::Item>) -> Result<()> {
        if !self.started {
            self.start()?;
        }
        let at = Time::from_millis(time);
        let items = match self.replay.remove(&time) {
            Some(items) => {
                self.planner.replayed(at, &items);
                items
            }
            None => {
                // The log follows the batches from the checkpoint on, so no
                // older plan should be left; if one were, it is dropped.
                self.replay.retain(|t, _| *t > time);
                let cap = self.rate.batch_cap(self.interval);
                let items = self.planner.plan(at, cap)?;
                if let Some(dir) = &self.log {
                    write_plan(dir, time, &items)?;
                }
                items
            }
        };
        let n: u64 = items.iter().map(|i| self.planner.records(i)).sum();
        self.planned.fetch_add(n, Ordering::Relaxed);
        self.checkpoint
            .save(time, || (time, self.planner.position()));
        if self.checkpoint.due(time) {
            self.trim();
        }
        out.extend(items);
        Ok(())
    }

    fn stop(&mut self) {
        self.planner.stop();
        if !self.listed {
            return;
        }
        self.bus.post(Event::ReceiverStopped(ReceiverInfo {
            name: self.name.clone(),
            active: false,
            worker: self.worker,
            last_error: None,
            num_records: self.planned.load(Ordering::Relaxed),
            rate_limit: self.rate.rate(),
        }));
    }

    fn records(&self, item: &P::Item) -> u64 {
        self.planner.records(item)
    }
}

impl<'s> StreamingScope<'s> {
    /// A source whose batches one worker plans when they close (see
    /// [`BatchPlanner`]): the building block of direct streams such as
    /// Kafka's. `make` runs on the planning worker only; the plan's items
    /// appear on that worker, in the batch they were planned for (spread
    /// them with [`DStream::repartition`] or an exchange of their own).
    ///
    /// With checkpointing, plans are logged and positions checkpointed, so
    /// that a restart runs the batches planned before it again with exactly
    /// the same plans. Rate limits reach the planner as a per-batch cap.
    pub fn planned_source<P: BatchPlanner>(
        &self,
        name: &str,
        make: impl FnOnce() -> P,
    ) -> DStream<'s, P::Item> {
        self.planned_source_as("planned_source", name, true, make)
    }

    /// [`planned_source`](Self::planned_source) whose checkpointed state is
    /// named after `kind`; `listed` says whether it appears among the
    /// receivers (a file stream does not, as in Spark).
    pub(crate) fn planned_source_as<P: BatchPlanner>(
        &self,
        kind: &str,
        name: &str,
        listed: bool,
        make: impl FnOnce() -> P,
    ) -> DStream<'s, P::Item> {
        let id = self.ctx.next_source_id();
        let planner_worker = id % self.ctx.peers;
        let active = self.ctx.index == planner_worker;
        let checkpoint = self.ctx.stateful(kind, self.ctx.interval());
        let shared = self.ctx.shared.clone();
        let rate = Arc::new(shared.conf().rate_control());
        let planned = if active && listed {
            shared
                .bus()
                .listen(rate.listener(name, shared.busy().clone()));
            shared
                .bus()
                .add_receiver(name, self.ctx.index, rate.clone())
        } else {
            Arc::default()
        };
        let log = shared
            .checkpoint_dir()
            .as_ref()
            .map(|d| d.join("plans").join(checkpoint.id.replace(':', "-")));
        let source = active.then(|| Planned {
            name: name.to_string(),
            planner: make(),
            checkpoint,
            log,
            replay: BTreeMap::new(),
            checkpoints: shared.checkpoint_dir().clone(),
            rate,
            planned,
            interval: shared.conf().batch_ms,
            started: false,
            bus: shared.bus().clone(),
            worker: self.ctx.index,
            listed,
        });
        let source = source.and_then(|mut src| match src.recover() {
            Ok(()) => Some(src),
            Err(e) => {
                self.ctx.definition_error(e);
                None
            }
        });
        let stream = match source {
            Some(src) => batch_source(self, name, true, move |_| src),
            None => batch_source(self, name, false, |_| {
                Idle::<P::Item>(std::marker::PhantomData)
            }),
        };
        DStream::new(stream, self.ctx.interval(), self.ctx.clone())
    }
}

/// The planned source's stand-in on the workers that do not plan.
struct Idle<T>(std::marker::PhantomData<T>);

impl<T: 'static> BatchSource<T> for Idle<T> {
    fn seal(&mut self, _time: u64, _out: &mut Vec<T>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &Path, times: &[u64]) {
        for &t in times {
            write_plan(dir, t, &[t * 10, t * 10 + 1]).unwrap();
        }
    }

    fn read(dir: &Path, after: u64) -> Result<BTreeMap<u64, Vec<u64>>> {
        read_plans(dir, "1:kafka", after, 1000)
    }

    #[test]
    fn plans_after_the_checkpoint_are_read_in_order() {
        let d = tempfile::tempdir().unwrap();
        log(d.path(), &[1000, 2000, 3000, 4000]);
        let plans = read(d.path(), 2000).unwrap();
        assert_eq!(plans.keys().copied().collect::<Vec<_>>(), [3000, 4000]);
        assert_eq!(plans[&3000], [30000, 30001]);
        // The log may simply end: the kill came before the next plan.
        assert!(read(d.path(), 4000).unwrap().is_empty());
    }

    #[test]
    fn a_plan_missing_between_logged_ones_is_damage() {
        let d = tempfile::tempdir().unwrap();
        log(d.path(), &[3000, 4000, 5000]);
        std::fs::remove_file(plan_path(d.path(), 4000)).unwrap();
        let e = read(d.path(), 2000).unwrap_err().to_string();
        assert!(
            e.contains("plan-00000000000000004000")
                && e.contains("batch 4000 ms is missing")
                && e.contains("--fresh-start"),
            "{e}"
        );
        // The first plan after the checkpoint missing is damage too.
        std::fs::remove_file(plan_path(d.path(), 3000)).unwrap();
        let e = read(d.path(), 2000).unwrap_err().to_string();
        assert!(e.contains("batch 3000 ms is missing"), "{e}");
    }

    #[test]
    fn a_damaged_plan_is_refused_even_the_last() {
        for damage in ["flip", "empty"] {
            let d = tempfile::tempdir().unwrap();
            log(d.path(), &[3000, 4000]);
            let p = plan_path(d.path(), 4000);
            let mut bytes = std::fs::read(&p).unwrap();
            match damage {
                "flip" => *bytes.last_mut().unwrap() ^= 1,
                _ => bytes.clear(),
            }
            std::fs::write(&p, &bytes).unwrap();
            let e = read(d.path(), 2000).unwrap_err().to_string();
            assert!(e.contains("fails its checksum"), "{damage}: {e}");
        }
    }
}
