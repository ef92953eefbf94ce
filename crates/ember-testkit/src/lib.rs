//! Test support for ember's suites.
//!
//! Every operation is tested at `local[1]` and `local[3]`: the two runs must
//! agree (exactly, or after sorting each batch where Spark leaves the order
//! undefined), and the agreed output is then compared with an independent
//! expectation. The runs themselves use [`ember_core::testing`]: queued
//! batches on a manual clock, no sleeping.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use ember_core::testing::*;

pub mod services;
use ember_core::{DStream, Data, StreamingConf, StreamingContext, StreamingScope};

/// The parallelisms every operation is checked at.
pub const WORKERS: [usize; 2] = [1, 3];

/// `op` over `input` at `local[1]` and at `local[3]`: the raw outputs.
pub fn at_1_and_3<T, U, F>(input: &[Vec<T>], op: F) -> [Vec<Vec<U>>; 2]
where
    T: Data + Sync,
    U: Data,
    F: for<'s> Fn(DStream<'s, T>) -> DStream<'s, U> + Send + Sync + 'static,
{
    let op = Arc::new(op);
    WORKERS.map(|w| {
        let op = op.clone();
        run_local(w, input.to_vec(), move |s| op(s))
    })
}

/// `op` over two inputs at `local[1]` and at `local[3]`: the raw outputs.
pub fn at_1_and_3_2<T, W, U, F>(left: &[Vec<T>], right: &[Vec<W>], op: F) -> [Vec<Vec<U>>; 2]
where
    T: Data + Sync,
    W: Data + Sync,
    U: Data,
    F: for<'s> Fn(DStream<'s, T>, DStream<'s, W>) -> DStream<'s, U> + Send + Sync + 'static,
{
    let op = Arc::new(op);
    WORKERS.map(|w| {
        let op = op.clone();
        run_local2(w, left.to_vec(), right.to_vec(), move |a, b| op(a, b))
    })
}

/// Asserts both runs are identical, order included, and returns the output.
///
/// # Panics
///
/// When the runs differ.
pub fn same_exactly<U: PartialEq + Debug>([one, three]: [Vec<Vec<U>>; 2]) -> Vec<Vec<U>> {
    assert_eq!(one, three, "local[1] (left) and local[3] (right) differ");
    one
}

/// Sorts each batch (Spark leaves the order of a shuffled batch undefined).
pub fn sorted<U: Ord>(mut batches: Vec<Vec<U>>) -> Vec<Vec<U>> {
    batches.iter_mut().for_each(|b| b.sort());
    batches
}

/// Asserts both runs agree after sorting each batch; returns the sorted output.
///
/// # Panics
///
/// When the runs differ.
pub fn same_sorted<U: Ord + Debug>([one, three]: [Vec<Vec<U>>; 2]) -> Vec<Vec<U>> {
    let (one, three) = (sorted(one), sorted(three));
    assert_eq!(
        one, three,
        "local[1] (left) and local[3] (right) differ after sorting each batch"
    );
    one
}

/// For a test that starts this test binary again as a child process: the
/// `|`-separated fields the child was given in the environment variable
/// `env`, or `None` when this process is not that child.
///
/// # Panics
///
/// When the variable does not hold exactly `N` fields.
pub fn child_spec<const N: usize>(env: &str) -> Option<[String; N]> {
    let spec = std::env::var(env).ok()?;
    let fields: Vec<String> = spec.split('|').map(str::to_string).collect();
    Some(
        fields
            .try_into()
            .unwrap_or_else(|_| panic!("bad {env}: {spec} (want {N} fields)")),
    )
}

/// This test binary again as a child process running only `test` (with
/// `spec` in the environment variable `env`, for [`child_spec`]), its
/// output discarded.
pub fn child_command(test: &str, env: &str, spec: String) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    cmd
}

/// A program a kill-and-restart test runs as a child process, kills with
/// SIGKILL and starts again: its checkpoint directory, its output file (see
/// [`running_word_counts_to_file`]), and the child test that runs it.
#[derive(Debug)]
pub struct Restartable {
    ckpt: tempfile::TempDir,
    _outdir: tempfile::TempDir,
    /// Where the program writes its counts.
    pub out: PathBuf,
    test: &'static str,
    env: &'static str,
    spec: String,
    /// Times it was killed.
    pub kills: usize,
}

impl Restartable {
    /// The program of the test `test` (see [`child_command`]), given
    /// `<spec>|<checkpoint dir>|<output file>|<workers>` in `env` (read by
    /// [`restartable_child`]).
    pub fn new(test: &'static str, env: &'static str, spec: String) -> Restartable {
        let outdir = tempfile::tempdir().expect("a temporary directory");
        Restartable {
            ckpt: tempfile::tempdir().expect("a temporary directory"),
            out: outdir.path().join("counts.txt"),
            _outdir: outdir,
            test,
            env,
            spec,
            kills: 0,
        }
    }

    /// Starts the program with `workers` worker threads.
    pub fn spawn(&self, workers: usize) -> std::process::Child {
        let spec = format!(
            "{}|{}|{}|{workers}",
            self.spec,
            self.ckpt.path().display(),
            self.out.display()
        );
        child_command(self.test, self.env, spec)
            .spawn()
            .expect("the child program starts")
    }

    /// Kills `child` with SIGKILL and starts the program again, with 3, 1
    /// and 2 workers in turn.
    pub fn kill_and_restart(&mut self, child: &mut std::process::Child) {
        child.kill().expect("SIGKILL");
        child.wait().expect("the killed child");
        self.kills += 1;
        *child = self.spawn([3, 1, 2][self.kills % 3]);
    }
}

/// The child side of a [`Restartable`]: in the child process, the fields
/// of its spec before the checkpoint directory, output file and workers,
/// and the program to run; `None` in a normal run.
///
/// # Panics
///
/// When the spec does not hold `N` fields and those three.
pub fn restartable_child<const N: usize>(env: &str) -> Option<([String; N], RestartableChild)> {
    let spec = std::env::var(env).ok()?;
    let mut fields: Vec<String> = spec.split('|').map(str::to_string).collect();
    assert_eq!(fields.len(), N + 3, "bad {env}: {spec}");
    let workers = fields.pop().and_then(|w| w.parse().ok());
    let child = RestartableChild {
        out: PathBuf::from(fields.pop().expect("counted above")),
        ckpt: PathBuf::from(fields.pop().expect("counted above")),
        workers: workers.unwrap_or_else(|| panic!("bad {env}: {spec} (workers)")),
    };
    let head: [String; N] = fields.try_into().expect("counted above");
    Some((head, child))
}

/// The program a [`Restartable`] starts, in the child process.
#[derive(Debug)]
pub struct RestartableChild {
    ckpt: PathBuf,
    out: PathBuf,
    workers: usize,
}

impl RestartableChild {
    /// Runs until the process is killed: a context from `conf` at the
    /// spec's workers, made or resumed by `get_or_create` over the spec's
    /// checkpoint directory (and checkpointing there), writing the running
    /// word counts of `lines` after every batch
    /// ([`running_word_counts_to_file`]).
    ///
    /// # Panics
    ///
    /// When the context cannot be made, started or run.
    pub fn run<F>(self, conf: StreamingConf, lines: F)
    where
        F: for<'s> Fn(&StreamingScope<'s>) -> DStream<'s, String> + Send + Sync + 'static,
    {
        let RestartableChild { ckpt, out, workers } = self;
        let dir = ckpt.clone();
        let ssc = StreamingContext::get_or_create(&ckpt, move || {
            let ssc = StreamingContext::new(conf.master(&format!("local[{workers}]"))?)?;
            ssc.checkpoint(&dir);
            ssc.define(move |s| running_word_counts_to_file(&lines(s), out.clone()))?;
            Ok(ssc)
        })
        .expect("the program's context");
        ssc.start().expect("the program starts");
        ssc.await_termination().expect("the program runs");
    }
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The flags of process `process` of a cluster on `hosts` with `workers`
/// threads each, then `more`.
pub fn cluster_args(hosts: &str, process: &str, workers: u32, more: &[&str]) -> Vec<String> {
    let workers = workers.to_string();
    let mut args = vec![
        "--master",
        "cluster",
        "--hosts",
        hosts,
        "--process",
        process,
        "--workers",
        &workers,
    ];
    args.extend_from_slice(more);
    args.into_iter().map(str::to_string).collect()
}

/// A running count (`update_state_by_key`) of each key of `pairs`.
pub fn running_counts<'s>(pairs: &DStream<'s, (String, u64)>) -> DStream<'s, (String, u64)> {
    pairs.update_state_by_key(|vs: Vec<u64>, old: Option<u64>| {
        Some(old.unwrap_or(0) + vs.iter().sum::<u64>())
    })
}

/// A running count of the space-separated words of `lines`.
pub fn running_word_counts<'s>(lines: &DStream<'s, String>) -> DStream<'s, (String, u64)> {
    running_counts(
        &lines
            .flat_map(|l| {
                l.split(' ')
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .map(|w| (w, 1u64)),
    )
}

/// Writes each batch of `counts` to `out` as sorted `key count` lines. The
/// file is written beside `out` and renamed, so a reader never sees half of
/// it; [`read_word_counts`] reads it.
pub fn counts_to_file(counts: &DStream<'_, (String, u64)>, out: PathBuf) {
    counts.foreach_rdd(move |batch, _| {
        let mut lines: Vec<String> = batch.iter().map(|(w, n)| format!("{w} {n}")).collect();
        lines.sort();
        let tmp = out.with_extension("tmp");
        std::fs::write(&tmp, lines.join("\n")).unwrap();
        std::fs::rename(&tmp, &out).unwrap();
    });
}

/// The kill-and-restart tests' program: [`running_word_counts`] of `lines`,
/// the whole state written to `out` after every batch ([`counts_to_file`]).
pub fn running_word_counts_to_file(lines: &DStream<'_, String>, out: PathBuf) {
    counts_to_file(&running_word_counts(lines), out);
}

/// What [`running_word_counts_to_file`] last wrote (empty before its first
/// batch).
///
/// # Panics
///
/// When a count is not a number.
pub fn read_word_counts(out: &Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(w, n)| (w.to_string(), n.parse().unwrap()))
        .collect()
}

/// Waits (at most 60 s) until a child program has written `out` for the
/// first time, i.e. completed its first batch.
///
/// # Panics
///
/// When it has not after 60 s.
pub fn await_first_output(out: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !out.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the child program never completed a batch"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The counts a kill-and-restart test ends with: waits (at most 60 s) until
/// [`read_word_counts`] of `out` equals `expected`, then 1.5 s longer while
/// it still does (so a count over the expected one shows), and returns what
/// `out` holds then.
pub fn settled_word_counts(out: &Path, expected: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while read_word_counts(out) != *expected && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let settle = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    while std::time::Instant::now() < settle && read_word_counts(out) == *expected {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    read_word_counts(out)
}
