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
//! One worker lists the directory when a batch closes (the source is a
//! [`BatchPlanner`]: with checkpointing, each batch's files are logged, and
//! a restart runs the batches planned before it with the same files); the
//! batch's files, ordered by modification time and name, are split into
//! contiguous runs, one per worker, which reads its files (so `print()`
//! shows lines in file order).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::Exchange;
use timely::dataflow::operators::Operator;

use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::scope::StreamingScope;
use crate::source::BatchPlanner;
use crate::time::Time;
use crate::Data;

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

/// Decides which new files each batch takes, on one worker: a
/// [`BatchPlanner`], so with checkpointing every batch's files are logged
/// and a restart runs the batches planned before it with exactly the same
/// files.
struct DirectoryPlanner {
    name: String,
    dir: PathBuf,
    peers: usize,
    initial_threshold: u64,
    remember_ms: u64,
    /// Files taken, with the batch that took them.
    taken: HashMap<PathBuf, u64>,
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

impl DirectoryPlanner {
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
        self.took(time, &files);
        Ok(files)
    }

    /// Notes `files` as taken by the batch at `time`, and forgets files
    /// older than the remember window.
    fn took(&mut self, time: u64, files: &[PathBuf]) {
        for f in files {
            self.taken.insert(f.clone(), time);
        }
        let remember = self.remember_ms;
        self.taken.retain(|_, t| *t + remember >= time);
    }
}

impl BatchPlanner for DirectoryPlanner {
    /// A file and the worker that reads it.
    type Item = (u64, PathBuf);
    type Position = ScanState;

    fn plan(&mut self, time: Time, _cap: Option<u64>) -> Result<Vec<(u64, PathBuf)>> {
        // Spark's file streams ignore rate limits: a file is taken whole.
        match self.new_files(time.milliseconds()) {
            Ok(files) => {
                let n = files.len();
                Ok(files
                    .into_iter()
                    .enumerate()
                    // Contiguous runs: worker w reads files [n*w/p, n*(w+1)/p).
                    .map(|(i, f)| (((i * self.peers) / n.max(1)) as u64, f))
                    .collect())
            }
            Err(e) => {
                tracing::warn!(
                    source = %self.name,
                    "cannot list {}: {e}; new files will be looked for again next batch",
                    self.dir.display()
                );
                Ok(Vec::new())
            }
        }
    }

    fn records(&self, _file: &(u64, PathBuf)) -> u64 {
        // Lines are counted when the files are read.
        0
    }

    fn position(&self) -> ScanState {
        (self.taken.clone(), self.initial_threshold)
    }

    fn restore(&mut self, (taken, threshold): ScanState) {
        // Files that came while the program was down are new: the first
        // run's start threshold holds.
        self.taken = taken;
        self.initial_threshold = threshold;
    }

    fn replayed(&mut self, time: Time, items: &[(u64, PathBuf)]) {
        let files: Vec<PathBuf> = items.iter().map(|(_, f)| f.clone()).collect();
        self.took(time.milliseconds(), &files);
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
        self.directory_stream("text_file_stream", dir.as_ref(), options, |bytes| {
            Ok(split_lines(&bytes))
        })
    }

    /// The fixed-length records of the new files in `dir` (Spark's
    /// `binaryRecordsStream`): each file is cut into records of
    /// `record_length` bytes, with the directory semantics of
    /// [`text_file_stream`](Self::text_file_stream). A file whose length is
    /// not a multiple of `record_length` stops the context with
    /// [`Error::Source`] naming it, as Spark fails such a batch; a zero
    /// `record_length` fails `start`.
    #[doc(alias = "binaryRecordsStream")]
    pub fn binary_records_stream(
        &self,
        dir: impl AsRef<Path>,
        record_length: usize,
    ) -> DStream<'s, Vec<u8>> {
        if record_length == 0 {
            self.ctx.definition_error(Error::config(
                "binary_records_stream: the record length must be at least 1 byte",
            ));
        }
        let size = record_length.max(1);
        let options = FileStreamOptions::default();
        self.directory_stream(
            "binary_records_stream",
            dir.as_ref(),
            options,
            move |bytes| {
                if bytes.len() % size != 0 {
                    return Err(format!(
                    "its length, {} bytes, is not a multiple of the record length, {size} bytes",
                    bytes.len()
                ));
                }
                Ok(bytes.chunks(size).map(<[u8]>::to_vec).collect())
            },
        )
    }

    /// The records `parse` makes of each new file of `dir` (Spark's
    /// `fileStream` with an input format): `parse` gets a file's bytes and
    /// returns its records, or an error that stops the context naming the
    /// file. The directory semantics are those of
    /// [`text_file_stream`](Self::text_file_stream).
    #[doc(alias = "fileStream")]
    pub fn file_stream<T: Data>(
        &self,
        dir: impl AsRef<Path>,
        options: FileStreamOptions,
        parse: impl Fn(Vec<u8>) -> std::result::Result<Vec<T>, String> + 'static,
    ) -> DStream<'s, T> {
        self.directory_stream("file_stream", dir.as_ref(), options, parse)
    }

    fn directory_stream<T: Data>(
        &self,
        kind: &'static str,
        dir: &Path,
        options: FileStreamOptions,
        parse: impl Fn(Vec<u8>) -> std::result::Result<Vec<T>, String> + 'static,
    ) -> DStream<'s, T> {
        let dir = dir.to_path_buf();
        let name = format!("{kind}({})", dir.display());
        if let Err(e) = check_directory(&dir, &name) {
            self.ctx.definition_error(e);
        }
        let interval = self.ctx.interval();
        let initial_threshold = if options.new_files_only {
            self.ctx.shared.start_ms()
        } else {
            0
        };
        let peers = self.ctx.peers;
        let planner_name = name.clone();
        let files = self
            .planned_source_as(kind, &name, false, move || DirectoryPlanner {
                name: planner_name,
                dir,
                peers,
                initial_threshold,
                remember_ms: MIN_REMEMBER_MS.div_ceil(interval) * interval,
                taken: HashMap::new(),
            })
            .to_timely();
        let shared = self.ctx.shared.clone();
        let records = files
            .exchange(move |(worker, _)| *worker % peers as u64)
            .unary::<CapacityContainerBuilder<Vec<T>>, _, _, _>(
            Pipeline,
            "ReadFiles",
            move |_, _| {
                move |input, output| {
                    input.for_each(|stamp, data| {
                        let mut session = output.session(&stamp);
                        for (_, path) in data.drain(..) {
                            match std::fs::read(&path).map(&parse) {
                                Ok(Ok(records)) => {
                                    let t = stamp.least().copied().unwrap_or_default();
                                    shared.bus().add_records(t, &name, records.len() as u64);
                                    session.give_iterator(records.into_iter())
                                }
                                Ok(Err(why)) => shared.fail(Error::Source {
                                    source_name: name.clone(),
                                    message: format!("cannot read {}: {why}", path.display()),
                                    cause: None,
                                }),
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
        DStream::new(records, interval, self.ctx.clone())
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
