//! Checkpoint cost and recovery time with a large keyed state.
//!
//! `checkpoint`: `map_with_state` holding `--keys` keys (all inserted by the
//! first batch; later batches update 10,000 keys each), run once without and
//! once with checkpointing every batch. Reports each checkpoint's size and
//! the batches' total delay both ways, plus the lag from a batch's completion
//! to its checkpoint's commit marker.
//!
//! `recovery`: the same job in a child process, killed with SIGKILL after a
//! few checkpoints and started again with `get_or_create`; reports the time
//! from the kill to the restarted process's first completed batch.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember_core::{Queue, StateSpec, StreamingConf, StreamingContext, Time};

use crate::gen::now_us;
use crate::run::percentile;

/// Settings of the checkpoint and recovery measurements.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct CkptArgs {
    /// Keys of state.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) keys: u64,
    /// ember master: `local[N]`.
    #[arg(long, default_value = "local[2]")]
    pub(crate) master: String,
    /// Batches to run after the one that inserts the keys.
    #[arg(long, default_value_t = 6)]
    pub(crate) batches: u64,
}

/// Builds the job; `dir` turns checkpointing (every batch) on. Prints
/// `BATCH <ms>` on stdout as each batch completes when `announce` is set.
fn context(
    args: &CkptArgs,
    dir: Option<&Path>,
    fresh: bool,
    announce: bool,
    seen: Arc<Mutex<Vec<(u64, u64)>>>,
) -> Result<StreamingContext, String> {
    let conf = StreamingConf::new("ember-bench-checkpoint", Duration::from_secs(1))
        .master(&args.master)
        .map_err(|e| e.to_string())?
        .checkpoint_interval(Duration::from_secs(1));
    let ssc = StreamingContext::new(conf).map_err(|e| e.to_string())?;
    if let Some(d) = dir {
        ssc.checkpoint(d);
    }
    let keys = args.keys;
    let queue: Queue<(u64, u64)> = Queue::new();
    if fresh {
        queue.push((0..keys).map(|k| (k, 1)).collect());
        for b in 0..args.batches + 20 {
            queue.push(
                (0..10_000)
                    .map(|i| ((i * 7919 + b * 104_729) % keys, 1))
                    .collect(),
            );
        }
    }
    ssc.define(move |s| {
        let spec = StateSpec::function(
            |_k: &u64, v: Option<u64>, st: &mut ember_core::State<u64>| {
                let n = st.get().copied().unwrap_or(0) + v.unwrap_or(0);
                let _ = st.update(n);
                n
            },
        );
        let seen = seen.clone();
        s.queue_stream(queue.clone(), true, None)
            .map_with_state(spec)
            .count()
            .foreach_rdd(move |_, t: Time| {
                seen.lock()
                    .expect("seen lock")
                    .push((t.milliseconds(), now_us()));
                if announce {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "BATCH {}", t.milliseconds());
                    let _ = out.flush();
                }
            });
    })
    .map_err(|e| e.to_string())?;
    Ok(ssc)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|es| {
            es.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Newest committed checkpoint directory and its commit time (µs).
fn newest_commit(dir: &Path) -> Option<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let t = e
                .file_name()
                .to_str()?
                .strip_prefix("checkpoint-")?
                .parse()
                .ok()?;
            e.path().join("COMMIT").exists().then_some((t, e.path()))
        })
        .collect();
    found.sort();
    found.pop()
}

/// Batch delays (ms), and per checkpoint: time, bytes, commit lag (ms).
type Measured = (Vec<f64>, Vec<(u64, u64, f64)>);

fn run_once(args: &CkptArgs, dir: Option<&Path>) -> Result<Measured, String> {
    let seen: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
    let ssc = context(args, dir, true, false, seen.clone())?;
    ssc.start().map_err(|e| e.to_string())?;
    let first = ssc.first_batch_time().expect("started").milliseconds();
    let last = first + args.batches * 1000;
    let mut commits = Vec::new();
    let mut last_commit = 0;
    while seen
        .lock()
        .expect("seen lock")
        .last()
        .is_none_or(|(t, _)| *t < last)
    {
        std::thread::sleep(Duration::from_millis(2));
        if let Some((t, path)) = dir.and_then(newest_commit) {
            if t > last_commit {
                last_commit = t;
                let done = seen
                    .lock()
                    .expect("seen lock")
                    .iter()
                    .find(|(bt, _)| *bt == t)
                    .map(|(_, at)| *at);
                let lag = done.map_or(f64::NAN, |at| (now_us().saturating_sub(at)) as f64 / 1000.0);
                commits.push((t, dir_bytes(&path), lag));
            }
        }
    }
    ssc.stop(false).map_err(|e| e.to_string())?;
    let delays: Vec<f64> = seen
        .lock()
        .expect("seen lock")
        .iter()
        .filter(|(t, _)| *t > first)
        .map(|(t, at)| *at as f64 / 1000.0 - *t as f64)
        .collect();
    Ok((delays, commits))
}

/// `ember-bench checkpoint`.
pub(crate) fn checkpoint(args: &CkptArgs) -> Result<(), String> {
    let (plain, _) = run_once(args, None)?;
    let tmp = std::env::temp_dir().join(format!("ember-bench-ckpt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (with, commits) = run_once(args, Some(&tmp))?;
    let _ = std::fs::remove_dir_all(&tmp);
    println!("checkpoint time ms   bytes        commit lag after the batch completed");
    for (t, bytes, lag) in &commits {
        println!("{t:>18} {bytes:>12}   {lag:>8.1} ms");
    }
    let mb = commits.iter().map(|(_, b, _)| *b).max().unwrap_or(0) as f64 / 1e6;
    println!(
        "{} keys, {}: batch total delay (after the insert batch) without checkpoints p50 {:.0} ms max {:.0} ms; \
         with a checkpoint every batch p50 {:.0} ms max {:.0} ms; checkpoint size {:.1} MB; commit lag p50 {:.0} ms",
        args.keys,
        args.master,
        percentile(&plain, 50.0),
        plain.iter().copied().fold(0.0, f64::max),
        percentile(&with, 50.0),
        with.iter().copied().fold(0.0, f64::max),
        mb,
        percentile(&commits.iter().map(|c| c.2).collect::<Vec<_>>(), 50.0),
    );
    Ok(())
}

/// The child of `ember-bench recovery`: runs until killed.
pub(crate) fn child(args: &CkptArgs, dir: &Path) -> Result<(), String> {
    let fresh = newest_commit(dir).is_none();
    let a = args.clone();
    let d = dir.to_path_buf();
    let ssc = StreamingContext::get_or_create(dir, move || {
        context(&a, Some(&d), fresh, true, Arc::default()).map_err(ember_core::Error::Config)
    })
    .map_err(|e| e.to_string())?;
    ssc.start().map_err(|e| e.to_string())?;
    ssc.await_termination().map_err(|e| e.to_string())
}

/// `ember-bench recovery`.
pub(crate) fn recovery(args: &CkptArgs) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("ember-bench-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let spawn = || {
        Command::new(&exe)
            .args([
                "recovery-child",
                "--keys",
                &args.keys.to_string(),
                "--master",
                &args.master,
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())
    };
    let mut child = spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    // Let it checkpoint the full state a few times.
    let mut batches = 0;
    while batches < 4 {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("BATCH") => batches += 1,
            Some(_) => {}
            None => return Err("the child ended early".into()),
        }
    }
    while newest_commit(&dir).is_none() {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().map_err(|e| e.to_string())?; // SIGKILL
    let killed = Instant::now();
    let _ = child.wait();
    let mut child = spawn()?;
    let started = Instant::now();
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let first = loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("BATCH") => break l,
            Some(_) => {}
            None => return Err("the restarted child ended early".into()),
        }
    };
    let recovered = killed.elapsed();
    let restart = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{} keys, {}: from SIGKILL to the first completed batch of the restarted process ({first}): {:.0} ms \
         ({:.0} ms from its start, state restored from the checkpoint)",
        args.keys,
        args.master,
        recovered.as_secs_f64() * 1000.0,
        restart.as_secs_f64() * 1000.0
    );
    Ok(())
}
