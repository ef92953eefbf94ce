//! Output operations: `print`, `foreach_rdd`, `save_as_text_files`.
//!
//! An output operation is what makes a graph run: a context without one
//! refuses to start. Each acts once per batch, after the batch is complete,
//! and the batch counts as done (see
//! [`StreamingContext::await_batch`](crate::StreamingContext::await_batch))
//! only when every output operation has finished it.

use std::io::Write;
use std::path::{Path, PathBuf};

use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::Probe;
use timely::dataflow::StreamVec;

use super::DStream;
use crate::listener::{wall_ms, Event, OutputOperationInfo};
use crate::runtime::Shared;
use crate::show::Show;
use crate::time::Time;
use crate::{Data, Error};

/// Where and how [`DStream::save_as_text_files`] writes.
#[derive(Clone, Debug)]
pub struct SaveOptions {
    /// Directory names start with this (`prefix-<ms>`); it may include a path.
    pub prefix: String,
    /// Appended as `.suffix` when not empty.
    pub suffix: String,
}

impl SaveOptions {
    /// The directory of the batch at `time`: `prefix-<ms>[.suffix]`, as Spark names it.
    pub fn dir_for(&self, time: Time) -> PathBuf {
        let mut name = time.milliseconds().to_string();
        if !self.prefix.is_empty() {
            name = format!("{}-{name}", self.prefix);
        }
        if !self.suffix.is_empty() {
            name = format!("{name}.{}", self.suffix);
        }
        PathBuf::from(name)
    }
}

impl<'s, T: Data> DStream<'s, T> {
    /// Wraps an output operation's per-batch work so that listeners see it
    /// start and complete, with the failure if it returned an error (which
    /// then stops the context) or panicked (the panic then stops the
    /// context as before).
    fn reported(
        &self,
        name: &'static str,
        mut f: impl FnMut(Vec<T>, Time) -> crate::Result<()> + 'static,
    ) -> impl FnMut(Vec<T>, Time, &mut Vec<()>) + 'static {
        let bus = self.ctx.shared.bus().clone();
        let shared = self.ctx.shared.clone();
        let id = self.ctx.outputs();
        move |batch, time, _| {
            let mut info = OutputOperationInfo {
                batch_time: time,
                id,
                name: name.to_string(),
                start_time: wall_ms(),
                end_time: None,
                failure_reason: None,
            };
            bus.post(Event::OutputStarted(info.clone()));
            let call = OutputCall::run(|| f(batch, time));
            info.end_time = Some(wall_ms());
            info.failure_reason = call.failure();
            bus.post(Event::OutputCompleted(info));
            call.finish(&shared);
        }
    }

    /// Makes `stream` an output: counted, and watched for batch completion.
    fn register_output<U: Data>(&self, stream: StreamVec<'s, u64, U>) {
        self.ctx.count_output();
        stream.probe_with(&self.ctx.probe);
    }

    /// Prints the first 10 records of every batch (Spark's `print()`).
    ///
    /// The layout is Spark's, byte for byte: a line of 43 dashes, `Time: <ms>
    /// ms`, the dashes again, the records (as [`Show`] writes them), `...`
    /// when there were more, and a blank line. Empty batches print the header.
    pub fn print(&self)
    where
        T: Show,
    {
        self.print_n(10);
    }

    /// Prints the first `n` records of every batch; see [`print`](Self::print).
    #[doc(alias = "pprint")]
    pub fn print_n(&self, n: usize)
    where
        T: Show,
    {
        self.print_with(n, |text| {
            let mut stdout = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) must not kill the workers.
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        });
    }

    /// Hands the text [`print_n`](Self::print_n) would print for each batch
    /// to `write` instead of stdout (to log it, or to check it in a test).
    pub fn print_with(&self, n: usize, mut write: impl FnMut(&str) + 'static)
    where
        T: Show,
    {
        let work = self.reported("print", move |batch, time| {
            write(&format_print(&batch, n, time));
            Ok(())
        });
        let out = self.on_gathered::<()>("Print", Some(n + 1), work);
        self.register_output(out);
    }

    /// Calls `f` with every batch (all its records, gathered on one worker in
    /// partition order) and its time, empty batches included (Spark's
    /// `foreachRDD`). A panic in `f` stops the context with
    /// [`Error::UserCode`](crate::Error::UserCode).
    #[doc(alias = "foreachRDD")]
    pub fn foreach_rdd(&self, f: impl FnMut(Vec<T>, Time) + 'static) {
        self.foreach_rdd_named("foreach_rdd", f);
    }

    /// [`foreach_rdd`](Self::foreach_rdd) for a function that can fail, as
    /// a Scala `foreachRDD` body throws: an `Err` stops the context with
    /// [`Error::User`] naming `try_foreach_rdd` and the batch, from which
    /// [`Error::downcast_ref`] gives back the `E` returned. An
    /// `ember::Error` returned (e.g. a connector's) stops it as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// use ember_core::{seconds, Error, ManualClock, StreamingConf, StreamingContext};
    ///
    /// #[derive(Debug)]
    /// struct TooMany(usize);
    /// impl std::fmt::Display for TooMany {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "{} records is too many", self.0)
    ///     }
    /// }
    /// impl std::error::Error for TooMany {}
    ///
    /// let clock = ManualClock::new();
    /// let conf = StreamingConf::new("limits", seconds(1)).master("local[2]")?.ui(None);
    /// let ssc = StreamingContext::with_clock(conf, clock.clone())?;
    /// ssc.define(|s| {
    ///     s.queue_stream(vec![vec![1, 2, 3]], true, None)
    ///         .try_foreach_rdd(|batch, _time| match batch.len() {
    ///             n if n > 2 => Err(TooMany(n)),
    ///             _ => Ok(()),
    ///         });
    /// })?;
    /// ssc.start()?;
    /// clock.advance(seconds(1));
    /// let e = ssc.await_termination().unwrap_err();
    /// assert_eq!(e.downcast_ref::<TooMany>().map(|t| t.0), Some(3));
    /// assert!(matches!(e, Error::User { .. }));
    /// # Ok::<(), Error>(())
    /// ```
    #[doc(alias = "foreachRDD")]
    pub fn try_foreach_rdd<E>(&self, mut f: impl FnMut(Vec<T>, Time) -> Result<(), E> + 'static)
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.gathered_output("try_foreach_rdd", move |batch, time| {
            f(batch, time).map_err(|e| Error::user("try_foreach_rdd", time, e))
        });
    }

    /// [`foreach_rdd`](Self::foreach_rdd) reported to listeners as `name`.
    pub(crate) fn foreach_rdd_named(
        &self,
        name: &'static str,
        mut f: impl FnMut(Vec<T>, Time) + 'static,
    ) {
        self.gathered_output(name, move |batch, time| {
            f(batch, time);
            Ok(())
        });
    }

    /// An output that calls `f` with each whole batch, gathered on one
    /// worker, reported to listeners as `name`.
    fn gathered_output(
        &self,
        name: &'static str,
        f: impl FnMut(Vec<T>, Time) -> crate::Result<()> + 'static,
    ) {
        let work = self.reported(name, f);
        let out = self.on_gathered::<()>("ForeachRDD", None, work);
        self.register_output(out);
    }

    /// Calls `f` on every worker with its own part of each batch (Spark's
    /// partition) and the batch time, without gathering the batch anywhere:
    /// Spark's `foreachRDD(rdd => rdd.foreachPartition(...))`, the way to
    /// write to a scalable sink with one connection per worker. Empty parts
    /// are passed too. A panic in `f` stops the context with
    /// [`Error::UserCode`].
    ///
    /// Listeners see one output operation per batch, complete when every
    /// worker's call has returned.
    #[doc(alias = "foreachPartition")]
    pub fn foreach_partition(&self, mut f: impl FnMut(Vec<T>, Time) + 'static) {
        self.partition_output("foreach_partition", move |part, time| {
            f(part, time);
            Ok(())
        });
    }

    /// [`foreach_partition`](Self::foreach_partition) for a function that
    /// can fail: an `Err` on any worker stops the context with
    /// [`Error::User`] naming `try_foreach_partition` and the batch (an
    /// `ember::Error`, e.g. a connector's, stops it as it is).
    #[doc(alias = "foreachPartition")]
    pub fn try_foreach_partition<E>(
        &self,
        mut f: impl FnMut(Vec<T>, Time) -> Result<(), E> + 'static,
    ) where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.partition_output("try_foreach_partition", move |part, time| {
            f(part, time).map_err(|e| Error::user("try_foreach_partition", time, e))
        });
    }

    /// An output that runs `f` on each worker's part; worker 0 then reports
    /// the operation to listeners once per batch (earliest start, latest end,
    /// the first failure) and the batch is done when every part is.
    fn partition_output(
        &self,
        name: &'static str,
        mut f: impl FnMut(Vec<T>, Time) -> crate::Result<()> + 'static,
    ) {
        let shared = self.ctx.shared.clone();
        let is_part = self.is_part_here();
        let parts = self.batch_fold(
            Pipeline,
            "ForeachPartition",
            Vec::new,
            |acc: &mut Vec<T>, data| acc.append(data),
            move |t, part, out: &mut Vec<PartDone>| {
                if !is_part(t) {
                    return;
                }
                let time = Time::from_millis(t);
                let start = wall_ms();
                let call = OutputCall::run(|| f(part, time));
                out.push(PartDone {
                    start,
                    end: wall_ms(),
                    failure: call.failure(),
                });
                call.finish(&shared);
            },
        );
        let is_first = self.ctx.index == 0;
        let bus = self.ctx.shared.bus().clone();
        let id = self.ctx.outputs();
        let done = self.with(parts).batch_fold(
            Exchange::new(|_| 0),
            "ForeachPartitionDone",
            Vec::new,
            |acc: &mut Vec<PartDone>, data| acc.append(data),
            move |t, parts, _out: &mut Vec<()>| {
                if !is_first {
                    return;
                }
                let mut info = OutputOperationInfo {
                    batch_time: Time::from_millis(t),
                    id,
                    name: name.to_string(),
                    start_time: parts.iter().map(|p| p.start).min().unwrap_or_else(wall_ms),
                    end_time: None,
                    failure_reason: None,
                };
                bus.post(Event::OutputStarted(info.clone()));
                info.end_time = Some(parts.iter().map(|p| p.end).max().unwrap_or_else(wall_ms));
                info.failure_reason = parts.into_iter().find_map(|p| p.failure);
                bus.post(Event::OutputCompleted(info));
            },
        );
        self.register_output(done);
    }

    /// Writes every batch as text, in Spark's layout: a directory
    /// `prefix-<ms>[.suffix]` per batch holding one `part-NNNNN` file per
    /// worker (records as [`Show`] writes them, one per line) and an empty
    /// `_SUCCESS` once all parts are written. A rerun overwrites.
    ///
    /// Spark on a local filesystem also leaves Hadoop's `.crc` files; ember
    /// does not write them.
    ///
    /// # Errors
    ///
    /// A write that fails stops the context with [`Error::Sink`].
    #[doc(alias = "saveAsTextFiles")]
    pub fn save_as_text_files(&self, prefix: impl Into<String>, suffix: impl Into<String>)
    where
        T: Show,
    {
        let options = SaveOptions {
            prefix: prefix.into(),
            suffix: suffix.into(),
        };
        let index = self.ctx.index;
        let peers = self.ctx.peers;
        let shared = self.ctx.shared.clone();
        let opts = options.clone();
        let parts = self.batch_fold(
            Pipeline,
            "SavePart",
            String::new,
            |text: &mut String, data: &mut Vec<T>| {
                for x in data.drain(..) {
                    x.fmt_show(text);
                    text.push('\n');
                }
            },
            move |t, text, out: &mut Vec<u64>| {
                let dir = opts.dir_for(Time::from_millis(t));
                let part = dir.join(format!("part-{index:05}"));
                let written = std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::write(&part, text.as_bytes()));
                match written {
                    Ok(()) => out.push(1),
                    Err(e) => shared.fail(sink_error(&opts, &part, e)),
                }
            },
        );
        let is_first = index == 0;
        let shared = self.ctx.shared.clone();
        let done = self.with(parts).batch_fold(
            Exchange::new(|_| 0),
            "SaveCommit",
            || 0u64,
            |n, data: &mut Vec<u64>| *n += data.iter().sum::<u64>(),
            move |t, n, _out: &mut Vec<()>| {
                if !is_first || n < peers as u64 {
                    return;
                }
                let dir = options.dir_for(Time::from_millis(t));
                if let Err(e) = commit(&dir, peers) {
                    shared.fail(sink_error(&options, &dir, e));
                }
            },
        );
        self.register_output(done);
    }
}

/// What one worker's part of a per-partition output reports.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct PartDone {
    start: u64,
    end: u64,
    failure: Option<String>,
}

/// One call of an output's function, its panic caught: what listeners are
/// told of it, then what it does to the context.
struct OutputCall(std::thread::Result<crate::Result<()>>);

impl OutputCall {
    fn run(f: impl FnOnce() -> crate::Result<()>) -> Self {
        OutputCall(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)))
    }

    /// The failure, as listeners read it: the error, or the panic's message.
    fn failure(&self) -> Option<String> {
        match &self.0 {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(p) => Some(
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panicked".to_string()),
            ),
        }
    }

    /// An error stops the context; a panic goes on unwinding, to stop it as
    /// a panic of the program's code.
    fn finish(self, shared: &Shared) {
        match self.0 {
            Ok(Ok(())) => {}
            Ok(Err(e)) => shared.fail(e),
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

/// Spark's `print()` text for one batch; `batch` holds at most `n + 1` records.
pub(crate) fn format_print<T: Show>(batch: &[T], n: usize, time: Time) -> String {
    const DASHES: &str = "-------------------------------------------";
    let mut text = format!("{DASHES}\nTime: {time}\n{DASHES}\n");
    for x in batch.iter().take(n) {
        x.fmt_show(&mut text);
        text.push('\n');
    }
    if batch.len() > n {
        text.push_str("...\n");
    }
    text.push('\n');
    text
}

/// Marks a batch directory complete, removing parts a larger earlier run left.
fn commit(dir: &Path, parts: usize) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let stale = name
            .to_str()
            .and_then(|n| n.strip_prefix("part-"))
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|i| i >= parts);
        if stale {
            std::fs::remove_file(dir.join(&name))?;
        }
    }
    std::fs::write(dir.join("_SUCCESS"), b"")
}

fn sink_error(opts: &SaveOptions, path: &Path, e: std::io::Error) -> Error {
    Error::Sink {
        sink: format!("save_as_text_files({}, {})", opts.prefix, opts.suffix),
        message: format!(
            "cannot write {}: check that the directory exists and is writable",
            path.display()
        ),
        cause: Some(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_layout_is_sparks() {
        let batch: Vec<(String, u64)> = (0..11).map(|i| (format!("w{i}"), i)).collect();
        let text = format_print(&batch, 10, Time::from_millis(1357008430000));
        let mut want = String::from(
            "-------------------------------------------\n\
             Time: 1357008430000 ms\n\
             -------------------------------------------\n",
        );
        for i in 0..10 {
            want.push_str(&format!("(w{i},{i})\n"));
        }
        want.push_str("...\n\n");
        assert_eq!(text, want);
        assert_eq!("-------------------------------------------".len(), 43);
    }

    #[test]
    fn print_of_an_empty_batch_is_the_header() {
        let text = format_print::<u64>(&[], 10, Time::from_millis(2000));
        assert_eq!(
            text,
            "-------------------------------------------\nTime: 2000 ms\n\
             -------------------------------------------\n\n"
        );
    }

    #[test]
    fn exactly_n_records_have_no_ellipsis() {
        let text = format_print(&[1, 2], 2, Time::from_millis(1));
        assert!(text.ends_with("1\n2\n\n"), "{text}");
    }

    #[test]
    fn directory_names_follow_spark() {
        let o = |p: &str, s: &str| SaveOptions {
            prefix: p.into(),
            suffix: s.into(),
        };
        let t = Time::from_millis(1000);
        assert_eq!(
            o("out/wc", "txt").dir_for(t),
            PathBuf::from("out/wc-1000.txt")
        );
        assert_eq!(o("out/wc", "").dir_for(t), PathBuf::from("out/wc-1000"));
        assert_eq!(o("", "").dir_for(t), PathBuf::from("1000"));
    }
}
