//! `text_file_stream`: new files in a directory, Spark's `FileInputDStream`.
//!
//! Spark's selection rules: at the batch time `t`, a file in the directory
//! (not in subdirectories) is taken when its modification time is at most
//! `t`, it was not taken before, and its modification time is not older
//! than both the context's start (files already there are ignored) and the
//! remember window (`t` minus 60 s rounded up to whole batches). Names
//! starting with `.` or `_` are hidden and ignored. Write files elsewhere and
//! move them in, so a file is complete when it appears.
//!
//! Worker 0 lists the directory; the batch's files, ordered by modification
//! time and name, are split into contiguous runs, one per worker, which reads
//! its files (so `print()` shows lines in file order).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::Exchange;
use timely::dataflow::operators::Operator;

use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::scope::{Stateful, StreamingScope};
use crate::source::{batch_source, BatchSource};

/// Settings of [`StreamingScope::text_file_stream_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FileStreamOptions {
    /// Ignore files already in the directory at start (Spark's `newFilesOnly`, true).
    pub new_files_only: bool,
}

impl Default for FileStreamOptions {
    fn default() -> Self {
        FileStreamOptions {
            new_files_only: true,
        }
    }
}

impl FileStreamOptions {
    /// Sets whether files present at start are ignored.
    pub fn new_files_only(mut self, yes: bool) -> Self {
        self.new_files_only = yes;
        self
    }
}

/// Spark's minimum remember window for file streams.
const MIN_REMEMBER_MS: u64 = 60_000;

struct DirectoryScan {
    name: String,
    dir: PathBuf,
    peers: usize,
    initial_threshold: u64,
    remember_ms: u64,
    /// Files taken, with the batch that took them.
    taken: HashMap<PathBuf, u64>,
    checkpoint: Stateful,
}

/// What a directory scan checkpoints: files taken, and the start threshold.
type ScanState = (HashMap<PathBuf, u64>, u64);

/// A file's modification time in milliseconds.
fn modified_ms(meta: &std::fs::Metadata) -> Option<u64> {
    let m = meta.modified().ok()?;
    Some(m.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    n.starts_with('.') || n.starts_with('_')
}

impl DirectoryScan {
    fn new_files(&mut self, time: u64) -> std::io::Result<Vec<PathBuf>> {
        let threshold = self
            .initial_threshold
            .max(time.saturating_sub(self.remember_ms));
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if is_hidden(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            // Follows symbolic links; a file that vanished meanwhile is skipped.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let Some(mtime) = modified_ms(&meta) else {
                continue;
            };
            if mtime < threshold || mtime > time || self.taken.contains_key(&path) {
                continue;
            }
            found.push((mtime, path));
        }
        found.sort();
        let files: Vec<PathBuf> = found.into_iter().map(|(_, p)| p).collect();
        for f in &files {
            self.taken.insert(f.clone(), time);
        }
        let remember = self.remember_ms;
        self.taken.retain(|_, t| *t + remember >= time);
        Ok(files)
    }
}

impl BatchSource<(u64, PathBuf)> for DirectoryScan {
    fn records(&self, _file: &(u64, PathBuf)) -> u64 {
        // Lines are counted when the files are read.
        0
    }

    fn seal(&mut self, time: u64, out: &mut Vec<(u64, PathBuf)>) -> Result<()> {
        let listed = self.new_files(time);
        self.checkpoint
            .save(time, || (&self.taken, self.initial_threshold));
        match listed {
            Ok(files) => {
                let n = files.len();
                for (i, f) in files.into_iter().enumerate() {
                    // Contiguous runs: worker w reads files [n*w/p, n*(w+1)/p).
                    let worker = (i * self.peers) / n.max(1);
                    out.push((worker as u64, f));
                }
            }
            Err(e) => tracing::warn!(
                source = %self.name,
                "cannot list {}: {e}; new files will be looked for again next batch",
                self.dir.display()
            ),
        }
        Ok(())
    }
}

/// Splits a file's bytes into lines as Hadoop's line reader does: `\n`,
/// `\r\n` and `\r` end a line; a final line needs no terminator. Invalid
/// UTF-8 is replaced by U+FFFD.
pub(crate) fn split_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
                start = i + 1;
            }
            b'\r' => {
                lines.push(String::from_utf8_lossy(&bytes[start..i]).into_owned());
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        lines.push(String::from_utf8_lossy(&bytes[start..]).into_owned());
    }
    lines
}

fn check_directory(dir: &Path, name: &str) -> Result<()> {
    let fail = |message: String, cause: Option<std::io::Error>| Error::Source {
        source_name: name.to_string(),
        message,
        cause: cause.map(Into::into),
    };
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(fail(
            format!(
                "{} is not a directory: give the directory new files are moved into",
                dir.display()
            ),
            None,
        )),
        Ok(_) => std::fs::read_dir(dir).map(|_| ()).map_err(|e| {
            fail(
                format!(
                    "cannot read directory {}: check its permissions",
                    dir.display()
                ),
                Some(e),
            )
        }),
        Err(e) => Err(fail(
            format!(
                "cannot open directory {}: create it before starting",
                dir.display()
            ),
            Some(e),
        )),
    }
}

impl<'s> StreamingScope<'s> {
    /// Lines of the new files in a directory (Spark's `textFileStream`); see
    /// the module docs for which files a batch takes.
    ///
    /// # Errors
    ///
    /// A directory that does not exist or cannot be read fails `start` with
    /// [`Error::Source`]. A file that cannot be read later stops the context
    /// with the same error, naming the file.
    #[doc(alias = "textFileStream")]
    pub fn text_file_stream(&self, dir: impl AsRef<Path>) -> DStream<'s, String> {
        self.text_file_stream_with(dir, FileStreamOptions::default())
    }

    /// [`text_file_stream`](Self::text_file_stream) with settings.
    pub fn text_file_stream_with(
        &self,
        dir: impl AsRef<Path>,
        options: FileStreamOptions,
    ) -> DStream<'s, String> {
        let dir = dir.as_ref().to_path_buf();
        let name = format!("text_file_stream({})", dir.display());
        if let Err(e) = check_directory(&dir, &name) {
            self.ctx.definition_error(e);
        }
        let interval = self.ctx.interval();
        let checkpoint = self.ctx.stateful("text_file_stream", interval);
        // Only worker 0 scans. Resuming, it takes back every file taken before
        // and the first run's start threshold, so files that came while the
        // program was down are new.
        let mut initial_threshold = if options.new_files_only {
            self.ctx.shared.start_ms()
        } else {
            0
        };
        let mut taken = HashMap::new();
        let restored = checkpoint.restored::<ScanState>();
        if let Some(threshold) = restored.iter().map(|(_, th)| *th).min() {
            initial_threshold = threshold;
        }
        for (files, _) in restored {
            taken.extend(files);
        }
        let scan = DirectoryScan {
            name: name.clone(),
            dir,
            peers: self.ctx.peers,
            initial_threshold,
            remember_ms: MIN_REMEMBER_MS.div_ceil(interval) * interval,
            taken,
            checkpoint,
        };
        let files = batch_source(self, &name, self.ctx.index == 0, move |_| scan);
        let shared = self.ctx.shared.clone();
        let lines = files
            .exchange(|(worker, _)| *worker)
            .unary::<CapacityContainerBuilder<Vec<String>>, _, _, _>(
                Pipeline,
                "ReadFiles",
                move |_, _| {
                    move |input, output| {
                        input.for_each(|stamp, data| {
                            let mut session = output.session(&stamp);
                            for (_, path) in data.drain(..) {
                                match std::fs::read(&path) {
                                    Ok(bytes) => {
                                        let lines = split_lines(&bytes);
                                        let t = stamp.least().copied().unwrap_or_default();
                                        shared.bus().add_records(t, &name, lines.len() as u64);
                                        session.give_iterator(lines.into_iter())
                                    }
                                    Err(e) => shared.fail(Error::Source {
                                        source_name: name.clone(),
                                        message: format!(
                                        "cannot read {}: a file must stay readable once moved in",
                                        path.display()
                                    ),
                                        cause: Some(e.into()),
                                    }),
                                }
                            }
                        });
                    }
                },
            );
        DStream::new(lines, interval, self.ctx.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    #[test]
    fn lines_like_hadoop() {
        assert_eq!(split_lines(b"a\nb\n"), ["a", "b"]);
        assert_eq!(split_lines(b"a\r\nb"), ["a", "b"]);
        assert_eq!(split_lines(b"a\rb\n\nc"), ["a", "b", "", "c"]);
        assert_eq!(split_lines(b""), Vec::<String>::new());
        assert_eq!(split_lines(b"\xff\n"), ["\u{fffd}"]);
    }
}
