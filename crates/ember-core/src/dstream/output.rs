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
    /// start and complete (with the failure, if it panicked; the panic then
    /// stops the context as before).
    fn reported(
        &self,
        name: &'static str,
        mut f: impl FnMut(Vec<T>, Time) + 'static,
    ) -> impl FnMut(Vec<T>, Time, &mut Vec<()>) + 'static {
        let bus = self.ctx.shared.bus.clone();
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
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(batch, time)));
            info.end_time = Some(wall_ms());
            if let Err(p) = &ran {
                info.failure_reason = Some(
                    p.downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "panicked".to_string()),
                );
            }
            bus.post(Event::OutputCompleted(info));
            if let Err(p) = ran {
                std::panic::resume_unwind(p);
            }
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
            write(&format_print(&batch, n, time))
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

    /// [`foreach_rdd`](Self::foreach_rdd) reported to listeners as `name`.
    pub(crate) fn foreach_rdd_named(
        &self,
        name: &'static str,
        f: impl FnMut(Vec<T>, Time) + 'static,
    ) {
        let work = self.reported(name, f);
        let out = self.on_gathered::<()>("ForeachRDD", None, work);
        self.register_output(out);
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
        cause: Some(e),
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
