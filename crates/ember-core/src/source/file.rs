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
//! One worker lists the directory when a batch closes (a directory whose
//! listing takes more than half the batch interval is listed in the
//! background instead, see `listing.rs`; the source is a
//! [`BatchPlanner`]: with checkpointing, each batch's files are logged, and
//! a restart runs the batches planned before it with the same files); the
//! batch's files, ordered by modification time and name, are split into
//! contiguous runs, one per worker, which reads its files (so `print()`
//! shows lines in file order).
//!
//! Text and fixed-length files are read in steps of a few megabytes, each
//! step's records passed on before the next is read, so a file's size does
//! not bound the memory a job needs (a word count over a 1 GB file holds
//! its counts, not the file). A parser of whole files
//! ([`file_stream`](StreamingScope::file_stream)) gets each file whole.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::Exchange;
use timely::dataflow::operators::{Capability, Operator};

use crate::dstream::DStream;
use crate::error::{Error, Result};
use crate::scope::StreamingScope;
use crate::source::listing::Lister;
use crate::source::store::{self, FileStore};
use crate::source::BatchPlanner;
use crate::time::Time;
use crate::Data;

/// Settings of [`StreamingScope::text_file_stream_with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FileStreamOptions {
    /// Ignore files already in the directory at start (Spark's `newFilesOnly`, true).
    pub new_files_only: bool,
    /// The longest line a text file stream keeps, in bytes: a longer line
    /// is dropped up to its end, counted and logged at WARN with its file
    /// (as the socket source does), so one file without line breaks cannot
    /// fill the memory. 16 MiB.
    pub max_line_bytes: usize,
}

impl Default for FileStreamOptions {
    fn default() -> Self {
        FileStreamOptions {
            new_files_only: true,
            max_line_bytes: 16 << 20,
        }
    }
}

impl FileStreamOptions {
    /// Sets whether files present at start are ignored.
    pub fn new_files_only(mut self, yes: bool) -> Self {
        self.new_files_only = yes;
        self
    }

    /// Sets the longest line kept (see [`max_line_bytes`](Self::max_line_bytes)).
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes;
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
    lister: Lister,
    dir: String,
    peers: usize,
    initial_threshold: u64,
    remember_ms: u64,
    /// Files taken, with the batch that took them.
    taken: HashMap<String, u64>,
    /// The first batch whose listing failed, while listings fail: the
    /// remember window is held there, so files that came during an outage
    /// of the store are still taken when it returns, however long it was.
    failing_since: Option<u64>,
    /// When a failing listing was last logged (the first failure is, then
    /// one every [`FAILURE_LOG_EVERY`]).
    failure_logged: Option<std::time::Instant>,
}

/// How often a directory that keeps failing to list is logged again.
const FAILURE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// What a directory scan checkpoints: files taken, and the start threshold.
type ScanState = (HashMap<String, u64>, u64);

fn is_hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

impl DirectoryPlanner {
    /// The time the remember window is counted back from.
    fn window_end(&self, time: u64) -> u64 {
        self.failing_since.map_or(time, |t| t.min(time))
    }

    fn new_files(&mut self, time: u64) -> std::io::Result<Vec<String>> {
        let listed = self.lister.list(time)?;
        // A listing older than the batch counts the window from its own
        // time, so no file it could not see falls out of the window.
        let end = self.window_end(listed.as_of);
        let threshold = self
            .initial_threshold
            .max(end.saturating_sub(self.remember_ms));
        let mut found: Vec<(u64, String)> = listed
            .files
            .iter()
            .filter(|f| {
                !is_hidden(&f.name)
                    && f.modified_ms >= threshold
                    && f.modified_ms <= time
                    && !self.taken.contains_key(&f.path)
            })
            .map(|f| (f.modified_ms, f.path.clone()))
            .collect();
        found.sort();
        let files: Vec<String> = found.into_iter().map(|(_, p)| p).collect();
        if let Some(since) = self.failing_since.take() {
            self.failure_logged = None;
            tracing::info!(
                source = %self.name,
                "listing {} works again (it failed from batch {since} ms to {time} ms); {} new \
                 file(s) taken",
                self.dir,
                files.len()
            );
        }
        self.took(time, end, &files);
        Ok(files)
    }

    /// Notes `files` as taken by the batch at `time`, and forgets files
    /// taken before the remember window that ends at `end`.
    fn took(&mut self, time: u64, end: u64, files: &[String]) {
        for f in files {
            self.taken.insert(f.clone(), time);
        }
        let remember = self.remember_ms;
        self.taken.retain(|_, t| *t + remember >= end);
    }
}

impl BatchPlanner for DirectoryPlanner {
    /// A file and the worker that reads it.
    type Item = (u64, String);
    type Position = ScanState;

    fn plan(&mut self, time: Time, _cap: Option<u64>) -> Result<Vec<(u64, String)>> {
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
                let since = *self.failing_since.get_or_insert(time.milliseconds());
                let due = self
                    .failure_logged
                    .is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY);
                if due {
                    self.failure_logged = Some(std::time::Instant::now());
                    tracing::warn!(
                        source = %self.name,
                        "cannot list {} (failing since batch {since} ms): {e}; listing again \
                         every batch, files that arrive meanwhile are taken when it works \
                         (logged again in {}s while it fails)",
                        self.dir,
                        FAILURE_LOG_EVERY.as_secs()
                    );
                }
                Ok(Vec::new())
            }
        }
    }

    fn records(&self, _file: &(u64, String)) -> u64 {
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

    fn replayed(&mut self, time: Time, items: &[(u64, String)]) {
        let files: Vec<String> = items.iter().map(|(_, f)| f.clone()).collect();
        let time = time.milliseconds();
        self.took(time, self.window_end(time), &files);
    }
}

/// Hadoop's line splitting over bytes fed in pieces: `\n`, `\r\n` and
/// `\r` end a line; a final line needs no terminator (see
/// [`finish`](Self::finish)). Invalid UTF-8 is replaced by U+FFFD. A line
/// longer than `max` bytes is dropped up to its end and counted. The file
/// streams split with it; a receiver of text can too.
#[derive(Debug)]
pub struct LineSplitter {
    line: Vec<u8>,
    /// The last piece ended in `\r`: a `\n` starting the next is its pair.
    after_cr: bool,
    max: usize,
    /// The line being read is over `max`: its bytes are skipped.
    dropping: bool,
    /// Lines dropped for their length.
    pub(crate) too_long: u64,
}

impl LineSplitter {
    /// A splitter keeping lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        LineSplitter {
            line: Vec::new(),
            after_cr: false,
            max,
            dropping: false,
            too_long: 0,
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.dropping {
            return;
        }
        if self.line.len() + bytes.len() > self.max {
            self.dropping = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn end_line(&mut self, emit: &mut dyn FnMut(String)) {
        if self.dropping {
            self.dropping = false;
            self.too_long += 1;
        } else {
            emit(String::from_utf8_lossy(&self.line).into_owned());
            self.line.clear();
        }
    }

    /// Splits the next piece of the input, giving each whole line to `emit`.
    pub fn feed(&mut self, piece: &[u8], emit: &mut dyn FnMut(String)) {
        let mut start = 0;
        if std::mem::take(&mut self.after_cr) && piece.first() == Some(&b'\n') {
            start = 1;
        }
        let mut i = start;
        while i < piece.len() {
            let b = piece[i];
            if b == b'\n' || b == b'\r' {
                self.keep(&piece[start..i]);
                self.end_line(emit);
                if b == b'\r' {
                    match piece.get(i + 1) {
                        Some(b'\n') => i += 1,
                        Some(_) => {}
                        None => self.after_cr = true,
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        self.keep(&piece[start.min(piece.len())..]);
    }

    /// Starts over (a new connection): what was read of an unfinished line
    /// is dropped, never emitted cut short.
    pub fn reset(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.dropping = false;
    }

    /// The number of lines dropped for their length since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.too_long)
    }

    /// The input ended: a last line without a terminator.
    pub fn finish(&mut self, emit: &mut dyn FnMut(String)) {
        if !self.line.is_empty() || self.dropping {
            self.end_line(emit);
        }
    }
}

/// Splits bytes into lines as Hadoop's line reader does (see [`LineSplitter`]).
#[cfg(test)]
pub(crate) fn split_lines(bytes: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut splitter = LineSplitter::new(usize::MAX);
    splitter.feed(bytes, &mut |l| lines.push(l));
    splitter.finish(&mut |l| lines.push(l));
    lines
}

/// How many bytes a reading step takes before the records go on.
const STEP_BYTES: usize = 4 << 20;
/// How many bytes one read asks for.
const READ_BYTES: usize = 64 << 10;

/// A user's parser of whole files.
type ParseFile<T> = std::rc::Rc<dyn Fn(Vec<u8>) -> std::result::Result<Vec<T>, String>>;

/// How a directory stream turns a file into records.
enum FileFormat<T> {
    /// Lines (as records by `wrap`), with the longest kept.
    Lines {
        max_line: usize,
        wrap: fn(String) -> T,
    },
    /// Fixed-length records (as records by `wrap`).
    Fixed { size: usize, wrap: fn(Vec<u8>) -> T },
    /// A parser of whole files.
    Whole(ParseFile<T>),
}

impl<T> Clone for FileFormat<T> {
    fn clone(&self) -> Self {
        match self {
            FileFormat::Lines { max_line, wrap } => FileFormat::Lines {
                max_line: *max_line,
                wrap: *wrap,
            },
            FileFormat::Fixed { size, wrap } => FileFormat::Fixed {
                size: *size,
                wrap: *wrap,
            },
            FileFormat::Whole(parse) => FileFormat::Whole(parse.clone()),
        }
    }
}

/// A file being read, step by step.
struct OpenFile<T> {
    path: String,
    store: Arc<dyn FileStore>,
    file: Option<Box<dyn std::io::Read + Send>>,
    splitter: LineSplitter,
    /// Bytes of a fixed-length record split between steps.
    partial: Vec<u8>,
    /// What one read fills, kept across steps (made when the file opens).
    buf: Vec<u8>,
    records: u64,
    format: FileFormat<T>,
}

impl<T: Data> OpenFile<T> {
    fn new(path: String, store: Arc<dyn FileStore>, format: FileFormat<T>) -> Self {
        let max = match &format {
            FileFormat::Lines { max_line, .. } => *max_line,
            _ => usize::MAX,
        };
        OpenFile {
            path,
            store,
            file: None,
            splitter: LineSplitter::new(max),
            partial: Vec::new(),
            buf: Vec::new(),
            records: 0,
            format,
        }
    }

    /// Reads a step of the file, giving its records to `emit`; `Ok(true)`
    /// once the file is read whole.
    fn step(&mut self, emit: &mut dyn FnMut(T)) -> std::result::Result<bool, FileError> {
        use std::io::Read;
        let records = &mut self.records;
        let mut give = |r: T| {
            *records += 1;
            emit(r)
        };
        if let FileFormat::Whole(parse) = &self.format {
            let opened = self.store.open(&self.path).map_err(FileError::Io)?;
            let mut bytes = Vec::with_capacity(opened.len.min(1 << 30) as usize);
            let mut reader = opened.reader;
            reader.read_to_end(&mut bytes).map_err(FileError::Io)?;
            for r in parse(bytes).map_err(FileError::Format)? {
                give(r);
            }
            return Ok(true);
        }
        if self.file.is_none() {
            let opened = self.store.open(&self.path).map_err(FileError::Io)?;
            let (file, len) = (opened.reader, opened.len);
            if let FileFormat::Fixed { size, .. } = &self.format {
                if len % *size as u64 != 0 {
                    return Err(FileError::Format(format!(
                        "its length, {len} bytes, is not a multiple of the record length, \
                         {size} bytes"
                    )));
                }
            }
            self.file = Some(file);
            self.buf = vec![0; READ_BYTES];
        }
        let file = self.file.as_mut().expect("opened");
        let buf = &mut self.buf;
        let mut taken = 0;
        while taken < STEP_BYTES {
            let n = match file.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FileError::Io(e)),
            };
            if n == 0 {
                match &self.format {
                    FileFormat::Lines { wrap, .. } => {
                        self.splitter.finish(&mut |l| give(wrap(l)));
                    }
                    FileFormat::Fixed { .. } if !self.partial.is_empty() => {
                        return Err(FileError::Format(
                            "it ended inside a record (was it still being written?)".into(),
                        ))
                    }
                    _ => {}
                }
                return Ok(true);
            }
            taken += n;
            match &self.format {
                FileFormat::Lines { wrap, .. } => {
                    self.splitter.feed(&buf[..n], &mut |l| give(wrap(l)))
                }
                FileFormat::Fixed { size, wrap } => {
                    self.partial.extend_from_slice(&buf[..n]);
                    let whole = self.partial.len() / size * size;
                    for record in self.partial[..whole].chunks(*size) {
                        give(wrap(record.to_vec()));
                    }
                    self.partial.drain(..whole);
                }
                FileFormat::Whole(_) => unreachable!("read whole above"),
            }
        }
        Ok(false)
    }
}

/// Why a file could not be read.
enum FileError {
    Io(std::io::Error),
    Format(String),
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
        let format = FileFormat::Lines {
            max_line: options.max_line_bytes.max(1),
            wrap: |line| line,
        };
        self.directory_stream("text_file_stream", dir.as_ref(), options, format)
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
        let format = FileFormat::Fixed {
            size: record_length.max(1),
            wrap: |record| record,
        };
        self.directory_stream(
            "binary_records_stream",
            dir.as_ref(),
            FileStreamOptions::default(),
            format,
        )
    }

    /// The records `parse` makes of each new file of `dir` (Spark's
    /// `fileStream` with an input format): `parse` gets a file's bytes and
    /// returns its records, or an error that stops the context naming the
    /// file. The directory semantics are those of
    /// [`text_file_stream`](Self::text_file_stream). Each file is read whole
    /// into memory for `parse`.
    #[doc(alias = "fileStream")]
    pub fn file_stream<T: Data>(
        &self,
        dir: impl AsRef<Path>,
        options: FileStreamOptions,
        parse: impl Fn(Vec<u8>) -> std::result::Result<Vec<T>, String> + 'static,
    ) -> DStream<'s, T> {
        let format = FileFormat::Whole(std::rc::Rc::new(parse));
        self.directory_stream("file_stream", dir.as_ref(), options, format)
    }

    fn directory_stream<T: Data>(
        &self,
        kind: &'static str,
        dir: &Path,
        options: FileStreamOptions,
        format: FileFormat<T>,
    ) -> DStream<'s, T> {
        let dir = dir.to_string_lossy().into_owned();
        let name = format!("{kind}({dir})");
        let fail = |message: String| Error::Source {
            source_name: name.clone(),
            message,
            cause: None,
        };
        let (store, dir) = match store::resolve(&dir) {
            Ok((store, dir)) => {
                if let Err(why) = store.check(&dir) {
                    self.ctx.definition_error(fail(why));
                }
                (store, dir)
            }
            Err(why) => {
                self.ctx.definition_error(fail(why));
                (Arc::new(store::LocalStore) as Arc<dyn FileStore>, dir)
            }
        };
        let interval = self.ctx.interval();
        let initial_threshold = if options.new_files_only {
            let resolution = store.modified_resolution_ms().max(1);
            self.ctx.shared.start_ms() / resolution * resolution
        } else {
            0
        };
        let peers = self.ctx.peers;
        let planner_name = name.clone();
        let planner_store = store.clone();
        let files = self
            .planned_source_as(kind, &name, false, move || DirectoryPlanner {
                lister: Lister::new(planner_name.clone(), planner_store, dir.clone(), interval),
                name: planner_name,
                dir,
                peers,
                initial_threshold,
                remember_ms: MIN_REMEMBER_MS.div_ceil(interval) * interval,
                taken: HashMap::new(),
                failing_since: None,
                failure_logged: None,
            })
            .to_timely();
        let shared = self.ctx.shared.clone();
        let scope = files.scope();
        let records = files
            .exchange(move |(worker, _)| *worker % peers as u64)
            .unary::<CapacityContainerBuilder<Vec<T>>, _, _, _>(
            Pipeline,
            "ReadFiles",
            move |_, info| {
                let activator = scope.activator_for(info.address);
                // Files to read, oldest batch first, each holding its
                // batch open until it is read whole.
                let mut reading: std::collections::VecDeque<(Capability<u64>, OpenFile<T>)> =
                    std::collections::VecDeque::new();
                move |input, output| {
                    input.for_each(|stamp, data| {
                        let Some(cap) = stamp.retain_least(0) else {
                            return;
                        };
                        for (_, path) in data.drain(..) {
                            reading.push_back((
                                cap.clone(),
                                OpenFile::new(path, store.clone(), format.clone()),
                            ));
                        }
                    });
                    // One step per activation, so that what the step
                    // read flows on before the next is read.
                    let Some((cap, file)) = reading.front_mut() else {
                        return;
                    };
                    if shared.aborted() {
                        reading.clear();
                        return;
                    }
                    let mut session = output.session(&*cap);
                    let step = file.step(&mut |r| session.give(r));
                    drop(session);
                    match step {
                        Ok(false) => {}
                        Ok(true) => {
                            let (cap, file) = reading.pop_front().expect("a file");
                            let t = *cap.time();
                            shared.bus().add_records(t, &name, file.records);
                            if file.splitter.too_long > 0 {
                                tracing::warn!(
                                    source = %name,
                                    "{}: {} line(s) longer than {} bytes were dropped \
                                     (raise FileStreamOptions::max_line_bytes to keep them)",
                                    file.path,
                                    file.splitter.too_long,
                                    file.splitter.max
                                );
                            }
                        }
                        Err(e) => {
                            let path = reading.pop_front().expect("a file").1.path;
                            shared.fail(match e {
                                FileError::Format(why) => Error::Source {
                                    source_name: name.clone(),
                                    message: format!("cannot read {path}: {why}"),
                                    cause: None,
                                },
                                FileError::Io(e) => Error::Source {
                                    source_name: name.clone(),
                                    message: format!(
                                        "cannot read {path}: a file must stay readable once \
                                         moved in"
                                    ),
                                    cause: Some(e.into()),
                                },
                            });
                            reading.clear();
                            return;
                        }
                    }
                    if !reading.is_empty() {
                        activator.activate();
                    }
                }
            },
        );
        DStream::new(records, interval, self.ctx.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::{split_lines, DirectoryPlanner, LineSplitter};
    use crate::listener::wall_ms;
    use crate::source::listing::tests::SlowStore;
    use crate::source::listing::Lister;
    use crate::source::BatchPlanner;
    use crate::time::Time;
    use std::time::Duration;

    /// A listing that takes longer than the remember window loses no file:
    /// the window is counted from the listing's start, not the batch's time
    /// (counted from the batch, a file written just before the listing began
    /// would be out of the window when the listing arrives).
    #[test]
    fn a_listing_slower_than_the_remember_window_loses_no_file() {
        let store = SlowStore::new(Duration::from_millis(1500));
        let mut planner = DirectoryPlanner {
            name: "t".into(),
            lister: Lister::new("t".into(), store.clone(), "d".into(), 100),
            dir: "d".into(),
            peers: 2,
            initial_threshold: 0,
            remember_ms: 1000,
            taken: Default::default(),
            failing_since: None,
            failure_logged: None,
        };
        let mut plan = |t: u64| -> Vec<String> {
            let files = planner.plan(Time::from_millis(t), None).unwrap();
            files.into_iter().map(|(_, f)| f).collect()
        };
        // Slow: from now on listed in the background.
        assert!(plan(wall_ms()).is_empty());
        store.add("f", wall_ms());
        // The newest listing is the old one; the next starts now.
        assert!(plan(wall_ms()).is_empty());
        store.await_listings(2);
        // The listing that saw f arrives more than the window after f.
        assert_eq!(plan(wall_ms()), ["d/f"]);
        store.await_listings(3);
        assert!(plan(wall_ms()).is_empty(), "taken once");
    }

    #[test]
    fn lines_like_hadoop() {
        assert_eq!(split_lines(b"a\nb\n"), ["a", "b"]);
        assert_eq!(split_lines(b"a\r\nb"), ["a", "b"]);
        assert_eq!(split_lines(b"a\rb\n\nc"), ["a", "b", "", "c"]);
        assert_eq!(split_lines(b""), Vec::<String>::new());
        assert_eq!(split_lines(b"\xff\n"), ["\u{fffd}"]);
    }

    #[test]
    fn lines_split_the_same_in_any_pieces() {
        let text: &[u8] = b"one\r\ntwo\rthree\n\nfour\r\r\nfive\xff\rsix";
        let whole = split_lines(text);
        assert_eq!(
            whole,
            ["one", "two", "three", "", "four", "", "five\u{fffd}", "six"]
        );
        for size in 1..text.len() {
            let mut got = Vec::new();
            let mut splitter = LineSplitter::new(usize::MAX);
            for piece in text.chunks(size) {
                splitter.feed(piece, &mut |l| got.push(l));
            }
            splitter.finish(&mut |l| got.push(l));
            assert_eq!(got, whole, "pieces of {size}");
        }
    }

    #[test]
    fn a_line_over_the_limit_is_dropped_and_counted() {
        let mut got = Vec::new();
        let mut splitter = LineSplitter::new(4);
        for piece in [&b"ab\nabcdef"[..], b"gh\nabcd\nxyzzy"] {
            splitter.feed(piece, &mut |l| got.push(l));
        }
        splitter.finish(&mut |l| got.push(l));
        assert_eq!(got, ["ab", "abcd"]);
        assert_eq!(splitter.too_long, 2);
    }
}
