//! Checkpoints and recovery: resuming with `get_or_create` gives exactly the
//! state an uninterrupted run would have — in process, at another
//! parallelism, and after the process is killed with SIGKILL at random
//! moments while files keep arriving. Program changes are refused.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use ember::prelude::*;
use ember_testkit::{
    counts_to_file, read_word_counts, running_counts, running_word_counts,
    running_word_counts_to_file,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const T0: u64 = 1_000_000;

/// Moves a file with the given text and modification time into `dir`.
fn drop_file(dir: &Path, name: &str, text: &str, mtime_ms: Option<u64>) {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text).unwrap();
    if let Some(ms) = mtime_ms {
        let f = fs::File::options().write(true).open(&tmp).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_millis(ms))
            .unwrap();
    }
    fs::rename(&tmp, dir.join(name)).unwrap();
}

type Counts = BTreeMap<String, u64>;

/// A stateful word count over a directory, checkpointing every batch.
fn word_count(
    input: PathBuf,
    extra_state: bool,
    seen: Arc<Mutex<Vec<(u64, Counts)>>>,
) -> impl for<'s> Fn(&StreamingScope<'s>) + Send + Sync {
    move |s| {
        let counts = running_word_counts(&s.text_file_stream(&input));
        if extra_state {
            counts.window(seconds(2), seconds(1)).count().print();
        }
        let seen = seen.clone();
        counts.foreach_rdd(move |batch, t| {
            seen.lock()
                .unwrap()
                .push((t.milliseconds() - T0, batch.into_iter().collect()));
        });
    }
}

fn context(
    workers: usize,
    clock: &ManualClock,
    dir: &Path,
    input: &Path,
    extra: bool,
    seen: &Arc<Mutex<Vec<(u64, Counts)>>>,
) -> StreamingContext {
    let (clock, dir, input, seen) = (
        clock.clone(),
        dir.to_path_buf(),
        input.to_path_buf(),
        seen.clone(),
    );
    StreamingContext::get_or_create(dir.clone(), move || {
        let conf = StreamingConf::new("recovery", seconds(1))
            .master(&format!("local[{workers}]"))?
            .checkpoint_interval(seconds(1));
        let ssc = StreamingContext::with_clock(conf, clock)?;
        ssc.checkpoint(&dir);
        ssc.define(word_count(input, extra, seen))?;
        Ok(ssc)
    })
    .unwrap()
}

fn counts(pairs: &[(&str, u64)]) -> Counts {
    pairs.iter().map(|(w, n)| (w.to_string(), *n)).collect()
}

#[test]
fn get_or_create_resumes_state_and_files_at_another_parallelism() {
    let input = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    drop_file(input.path(), "f1", "a b", Some(T0 + 500));
    drop_file(input.path(), "f2", "a", Some(T0 + 1500));
    drop_file(input.path(), "f3", "b c", Some(T0 + 2500));

    // First run, 2 workers: batches 1000 and 2000, then it ends.
    let clock = ManualClock::starting_at(T0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = context(2, &clock, ckpt.path(), input.path(), false, &seen);
    ssc.start().unwrap();
    for t in [1000, 2000] {
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(T0 + t)).unwrap();
    }
    ssc.stop(false).unwrap();
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &(2000, counts(&[("a", 2), ("b", 1)]))
    );
    assert_eq!(ssc.resumed_from(), None, "the first run starts afresh");

    // Second run, 3 workers, from the checkpoint at 2000: f3 arrives at 3000.
    let clock = ManualClock::starting_at(T0 + 2000);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = context(3, &clock, ckpt.path(), input.path(), false, &seen);
    ssc.start().unwrap();
    assert_eq!(ssc.first_batch_time(), Some(Time::from_millis(T0 + 1000)));
    assert_eq!(ssc.resumed_from(), Some(Time::from_millis(T0 + 2000)));
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(T0 + 3000)).unwrap();
    ssc.stop(false).unwrap();
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        [(3000, counts(&[("a", 2), ("b", 2), ("c", 1)]))],
        "resumed at 3000 only"
    );
}

#[test]
fn batches_missed_while_down_are_run_again_from_the_checkpoint() {
    let input = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    drop_file(input.path(), "f1", "x", Some(T0 + 500));
    let clock = ManualClock::starting_at(T0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = context(1, &clock, ckpt.path(), input.path(), false, &seen);
    ssc.start().unwrap();
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(T0 + 1000)).unwrap();
    ssc.stop(false).unwrap();

    // While "down", two files arrive and the clock moves on three batches.
    drop_file(input.path(), "f2", "x y", Some(T0 + 1200));
    drop_file(input.path(), "f3", "y", Some(T0 + 3700));
    let clock = ManualClock::starting_at(T0 + 4000);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = context(2, &clock, ckpt.path(), input.path(), false, &seen);
    ssc.start().unwrap();
    ssc.await_batch(Time::from_millis(T0 + 4000)).unwrap();
    ssc.stop(false).unwrap();
    let got = seen.lock().unwrap().clone();
    assert_eq!(
        got,
        [
            (2000, counts(&[("x", 2), ("y", 1)])),
            (3000, counts(&[("x", 2), ("y", 1)])),
            (4000, counts(&[("x", 2), ("y", 2)])),
        ]
    );
}

#[test]
fn a_program_whose_stateful_operators_changed_is_refused() {
    let input = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_at(T0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = context(1, &clock, ckpt.path(), input.path(), false, &seen);
    ssc.start().unwrap();
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(T0 + 1000)).unwrap();
    ssc.stop(false).unwrap();

    let clock = ManualClock::starting_at(T0 + 1000);
    let ssc = context(1, &clock, ckpt.path(), input.path(), true, &seen);
    let err = ssc.start().unwrap_err();
    assert!(matches!(err, ember::Error::Checkpoint { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("stateful operators changed") && text.contains("window"),
        "{text}"
    );
}

#[test]
fn a_checkpoint_interval_that_is_not_a_multiple_of_a_stateful_slide_is_refused() {
    let ckpt = tempfile::tempdir().unwrap();
    let conf = StreamingConf::new("x", seconds(1))
        .master("local[1]")
        .unwrap()
        .checkpoint_interval(seconds(3));
    let ssc = StreamingContext::with_clock(conf, ManualClock::new()).unwrap();
    ssc.checkpoint(ckpt.path());
    ssc.define(|s| {
        s.queue_stream(vec![vec![("a".to_string(), 1u64)]], true, None)
            .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, seconds(4), seconds(2))
            .print();
    })
    .unwrap();
    let err = ssc.start().unwrap_err().to_string();
    assert!(
        err.contains("checkpoint interval (3000 ms) must be a multiple") && err.contains("2000 ms"),
        "{err}"
    );
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_previous_one() {
    let input = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    drop_file(input.path(), "f1", "a", Some(T0 + 500));
    drop_file(input.path(), "f2", "a", Some(T0 + 1500));
    let clock = ManualClock::starting_at(T0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = context(2, &clock, ckpt.path(), input.path(), false, &seen);
    ssc.start().unwrap();
    for t in [1000, 2000] {
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(T0 + t)).unwrap();
    }
    ssc.stop(false).unwrap();
    // Truncate a part of the newest checkpoint.
    let part = ckpt.path().join(format!("checkpoint-{}/part-0", T0 + 2000));
    let bytes = fs::read(&part).unwrap();
    fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();

    let clock = ManualClock::starting_at(T0 + 2000);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = context(2, &clock, ckpt.path(), input.path(), false, &seen);
    ssc.start().unwrap();
    // Resumed from 1000: batch 2000 runs again and counts f2 once.
    assert_eq!(ssc.first_batch_time(), Some(Time::from_millis(T0 + 1000)));
    ssc.await_batch(Time::from_millis(T0 + 2000)).unwrap();
    ssc.stop(false).unwrap();
    assert_eq!(seen.lock().unwrap().clone(), [(2000, counts(&[("a", 2)]))]);
}

// ---------------------------------------------------------------------------
// The kill test: a child process (this test binary, re-run on one test) is
// killed with SIGKILL at random moments and restarted with get_or_create.
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "EMBER_RECOVERY_CHILD";

/// How many SIGKILLs a kill test deals: 10, or `EMBER_SOAK_KILLS` for a
/// longer soak (`EMBER_SOAK_KILLS=40 cargo test -p ember-streaming --test it kill`).
fn kills_wanted() -> usize {
    std::env::var("EMBER_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// The child's program, when this binary is started as the child; a no-op
/// in a normal test run.
#[test]
fn child_program() {
    let Some(spec) = ember_testkit::child_spec(CHILD_ENV) else {
        return;
    };
    let [input, ckpt, out, workers] = &spec;
    let (input, ckpt, out) = (
        PathBuf::from(input),
        PathBuf::from(ckpt),
        PathBuf::from(out),
    );
    let workers: usize = workers.parse().unwrap();
    let dir = ckpt.clone();
    let ssc = StreamingContext::get_or_create(&ckpt, move || {
        let conf = StreamingConf::new("kill-test", millis(100))
            .master(&format!("local[{workers}]"))?
            .checkpoint_interval(millis(100));
        let ssc = StreamingContext::new(conf)?;
        ssc.checkpoint(&dir);
        ssc.define(move |s| running_word_counts_to_file(&s.text_file_stream(&input), out.clone()))?;
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    ssc.await_termination().unwrap();
}

fn spawn_child(input: &Path, ckpt: &Path, out: &Path, workers: usize) -> Child {
    let exe = std::env::current_exe().unwrap();
    let spec = format!(
        "{}|{}|{}|{workers}",
        input.display(),
        ckpt.display(),
        out.display()
    );
    Command::new(exe)
        .args([
            "--exact",
            "recovery::child_program",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn killed_with_sigkill_ten_times_the_final_state_equals_an_uninterrupted_run() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let input = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    let outdir = tempfile::tempdir().unwrap();
    let out = outdir.path().join("counts.txt");
    let mut rng = StdRng::seed_from_u64(7);
    let words = ["alpha", "beta", "gamma", "delta", "eps"];
    let mut expected = Counts::new();
    let mut files = Vec::new();
    for i in 0..60 {
        let line: Vec<&str> = (0..rng.gen_range(1..20))
            .map(|_| words[rng.gen_range(0..words.len())])
            .collect();
        for w in &line {
            *expected.entry(w.to_string()).or_default() += 1;
        }
        files.push((format!("file-{i:03}"), line.join(" ")));
    }

    let mut child = spawn_child(input.path(), ckpt.path(), &out, 2);
    // Files older than the first start are ignored (Spark's newFilesOnly):
    // feed only once the first batch has been written out.
    ember_testkit::await_first_output(&out);
    let wanted = kills_wanted();
    let mut kills = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(rng.gen_range(300..900));
    for (name, text) in &files {
        drop_file(input.path(), name, text, None);
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..80)));
        if Instant::now() >= next_kill && kills < wanted {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            kills += 1;
            // Restart, sometimes at another parallelism.
            child = spawn_child(input.path(), ckpt.path(), &out, [2, 3, 1][kills % 3]);
            next_kill = Instant::now() + Duration::from_millis(rng.gen_range(200..700));
        }
    }
    while kills < wanted {
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..400)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        child = spawn_child(input.path(), ckpt.path(), &out, [2, 3, 1][kills % 3]);
    }
    // The last run catches up; wait (bounded) for the final state.
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_word_counts(&out) != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(kills, wanted);
    assert_eq!(
        read_word_counts(&out),
        expected,
        "final state after {kills} kills"
    );
}

// ---------------------------------------------------------------------------
// The socket kill test: with the write-ahead log on, every line the killed
// process had read is counted exactly once after recovery.
// ---------------------------------------------------------------------------

const SOCKET_CHILD_ENV: &str = "EMBER_RECOVERY_SOCKET_CHILD";

/// The socket child's program (a no-op in a normal test run): each line
/// is a key counted by `update_state_by_key`; the state goes to a file.
#[test]
fn socket_child_program() {
    lines_child_program(SOCKET_CHILD_ENV, |s, port, options| {
        s.socket_text_stream_with("127.0.0.1", port, options)
    });
}

/// The same program reading the lines through a receiver written with the
/// public `Receiver` interface only (see [`TcpLines`]).
#[test]
fn receiver_child_program() {
    lines_child_program(RECEIVER_CHILD_ENV, |s, port, options| {
        s.receiver_stream_with(TcpLines { port }, options)
    });
}

/// How a kill test's child reads its lines.
type LinesFrom =
    for<'s> fn(&StreamingScope<'s>, u16, ember::ReceiverOptions) -> DStream<'s, String>;

/// A child of a kill test (a no-op unless `env` holds its spec).
fn lines_child_program(env: &str, lines_from: LinesFrom) {
    let Some(spec) = ember_testkit::child_spec(env) else {
        return;
    };
    let [port, ckpt, out, workers] = &spec;
    let port: u16 = port.parse().unwrap();
    let (ckpt, out) = (PathBuf::from(ckpt), PathBuf::from(out));
    let workers: usize = workers.parse().unwrap();
    let dir = ckpt.clone();
    let ssc = StreamingContext::get_or_create(&ckpt, move || {
        // Checkpoints every 5 batches: batches in between survive a kill
        // only through the write-ahead log.
        let conf = StreamingConf::new("socket-kill-test", millis(100))
            .master(&format!("local[{workers}]"))?
            .checkpoint_interval(millis(500));
        let ssc = StreamingContext::new(conf)?;
        ssc.checkpoint(&dir);
        ssc.define(move |s| {
            let out = out.clone();
            let options = ember::SocketOptions::default()
                .reconnect_delay(millis(20))
                .write_ahead_log(true);
            let lines = lines_from(s, port, options);
            counts_to_file(&running_counts(&lines.map(|line| (line, 1u64))), out);
        })?;
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    ssc.await_termination().unwrap();
}

const RECEIVER_CHILD_ENV: &str = "EMBER_RECOVERY_RECEIVER_CHILD";

/// Lines from a TCP server, read by a receiver written as a user would,
/// with nothing but the public interface: no private hooks into the engine.
struct TcpLines {
    port: u16,
}

impl ember::Receiver for TcpLines {
    type Record = String;

    fn receive(&mut self, ctx: &mut ember::ReceiverContext<'_, String>) -> ember::Received {
        use std::io::BufRead;
        let conn = match std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            Ok(c) => c,
            Err(e) => return ctx.restart(format!("cannot connect: {e}")),
        };
        if let Err(e) = conn.set_read_timeout(Some(Duration::from_millis(20))) {
            return ctx.restart(format!("cannot set a read timeout: {e}"));
        }
        let mut reader = std::io::BufReader::new(conn);
        let mut line = Vec::new();
        loop {
            if ctx.is_stopped() {
                return ember::Received::Stopped;
            }
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => return ctx.restart("the server closed the connection"),
                Ok(_) if line.ends_with(b"\n") => {
                    line.pop();
                    let text = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    if !ctx.store(text) {
                        return ember::Received::Stopped;
                    }
                    if reader.buffer().is_empty() && !ctx.flush() {
                        return ember::Received::Stopped;
                    }
                }
                // A partial line stays in `line` until the rest comes.
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if !ctx.flush() {
                        return ember::Received::Stopped;
                    }
                }
                Err(e) => return ctx.restart(format!("reading failed: {e}")),
            }
        }
    }
}

/// Whether the other end closed the connection (a killed process's sockets
/// are closed by the kernel).
fn peer_gone(conn: &std::net::TcpStream) -> bool {
    let mut buf = [0u8; 1];
    conn.set_nonblocking(true).unwrap();
    let gone = match conn.peek(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    conn.set_nonblocking(false).unwrap();
    gone
}

/// A kill test's child: `test` run alone, with its spec in `env`.
#[derive(Clone, Copy)]
struct LinesChild {
    test: &'static str,
    env: &'static str,
}

const SOCKET_CHILD: LinesChild = LinesChild {
    test: "recovery::socket_child_program",
    env: SOCKET_CHILD_ENV,
};

fn spawn_socket_child(
    child: LinesChild,
    port: u16,
    ckpt: &Path,
    out: &Path,
    workers: usize,
) -> Child {
    let exe = std::env::current_exe().unwrap();
    let spec = format!("{port}|{}|{}|{workers}", ckpt.display(), out.display());
    Command::new(exe)
        .args(["--exact", child.test, "--nocapture", "--test-threads=1"])
        .env(child.env, spec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn socket_with_write_ahead_log_counts_every_line_read_exactly_once_across_kills() {
    lines_read_are_counted_exactly_once_across_kills(SOCKET_CHILD);
}

#[test]
fn a_custom_receiver_with_write_ahead_log_counts_every_line_read_exactly_once_across_kills() {
    lines_read_are_counted_exactly_once_across_kills(LinesChild {
        test: "recovery::receiver_child_program",
        env: RECEIVER_CHILD_ENV,
    });
}

/// Ten SIGKILLs of `child` while a server sends it bursts of lines: every
/// line whose count was seen is counted exactly once at the end.
fn lines_read_are_counted_exactly_once_across_kills(child_kind: LinesChild) {
    use std::io::Write;
    if [SOCKET_CHILD_ENV, CHILD_ENV, RECEIVER_CHILD_ENV]
        .iter()
        .any(|v| std::env::var(v).is_ok())
    {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ckpt = tempfile::tempdir().unwrap();
    let outdir = tempfile::tempdir().unwrap();
    let out = outdir.path().join("counts.txt");

    // The server: bursts of lines; a burst counts as "read" once the
    // program's output shows its last line. After a kill it goes on with
    // the next burst on the next connection.
    let confirmed = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (conf_srv, done_srv, out_srv) = (confirmed.clone(), done.clone(), out.clone());
    let server = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut next = 0u32;
        'connections: while !done_srv.load(std::sync::atomic::Ordering::Acquire) {
            let mut conn = match listener.accept() {
                Ok((c, _)) => c,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            conn.set_nonblocking(false).unwrap();
            loop {
                if done_srv.load(std::sync::atomic::Ordering::Acquire) {
                    break 'connections;
                }
                let burst: Vec<String> = (next..next + 40).map(|i| format!("L{i:06}")).collect();
                next += 40;
                if conn
                    .write_all((burst.join("\n") + "\n").as_bytes())
                    .is_err()
                {
                    continue 'connections;
                }
                // Wait for the burst to show in the output, or the peer to go.
                let until = Instant::now() + Duration::from_secs(5);
                loop {
                    if read_word_counts(&out_srv).contains_key(burst.last().unwrap()) {
                        conf_srv.lock().unwrap().extend(burst);
                        break;
                    }
                    if Instant::now() > until || peer_gone(&conn) {
                        continue 'connections;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    });

    let mut rng = StdRng::seed_from_u64(11);
    let mut child = spawn_socket_child(child_kind, port, ckpt.path(), &out, 2);
    for kill in 1..=kills_wanted() {
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..900)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = spawn_socket_child(child_kind, port, ckpt.path(), &out, [2, 3, 1][kill % 3]);
    }
    // Let the last run confirm a few more bursts, then stop everything.
    let before = confirmed.lock().unwrap().len();
    let until = Instant::now() + Duration::from_secs(30);
    while confirmed.lock().unwrap().len() < before + 120 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    server.join().unwrap();
    // Everything read must be in the final state: wait for the last batch.
    let confirmed = confirmed.lock().unwrap().clone();
    let until = Instant::now() + Duration::from_secs(10);
    while !confirmed
        .iter()
        .all(|l| read_word_counts(&out).contains_key(l))
        && Instant::now() < until
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The log is trimmed as checkpoints complete: a handful of segments,
    // not one per checkpoint since the start.
    let segments: usize = fs::read_dir(ckpt.path().join("receivers"))
        .unwrap()
        .map(|d| fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert!(segments <= 6, "{segments} write-ahead log segments left");
    let counts = read_word_counts(&out);
    assert!(
        confirmed.len() >= 400,
        "too few lines confirmed: {}",
        confirmed.len()
    );
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "lines counted more than once: {twice:?}");
    let lost: Vec<_> = confirmed
        .iter()
        .filter(|l| !counts.contains_key(*l))
        .collect();
    assert!(
        lost.is_empty(),
        "{} confirmed lines lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

// ---------------------------------------------------------------------------
// Damaged checkpoint directories: recovery reads the checkpoint, the plan
// log and the write-ahead log as one story; any inconsistency is refused at
// start with the damaged file named, and a fresh start is explicit.
// ---------------------------------------------------------------------------

/// A directory word count checkpointing every 3 batches, run over batches
/// 1000..=5000 with a file in each, then stopped at once: the checkpoint at
/// 3000 is the newest, and batches 4000 and 5000 are in the plan log only.
fn run_files_past_a_checkpoint(input: &Path, ckpt: &Path) {
    let clock = ManualClock::starting_at(T0);
    let ssc = files_context(&clock, ckpt, input, false, &Arc::default());
    ssc.start().unwrap();
    for t in (1000..=5000).step_by(1000) {
        drop_file(input, &format!("f{t}"), "a b", Some(T0 + t - 500));
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(T0 + t)).unwrap();
    }
    ssc.stop(false).unwrap();
    assert!(ckpt
        .join(format!("checkpoint-{}/COMMIT", T0 + 3000))
        .exists());
}

fn files_context(
    clock: &ManualClock,
    ckpt: &Path,
    input: &Path,
    fresh: bool,
    seen: &Arc<Mutex<Vec<(u64, Counts)>>>,
) -> StreamingContext {
    let (clock, dir, input, seen) = (
        clock.clone(),
        ckpt.to_path_buf(),
        input.to_path_buf(),
        seen.clone(),
    );
    StreamingContext::get_or_create(dir.clone(), move || {
        let conf = StreamingConf::new("damage", seconds(1))
            .master("local[2]")?
            .ui(None)
            .checkpoint_interval(seconds(3))
            .fresh_start(fresh);
        let ssc = StreamingContext::with_clock(conf, clock)?;
        ssc.checkpoint(&dir);
        ssc.define(word_count(input, false, seen))?;
        Ok(ssc)
    })
    .unwrap()
}

/// The files under `dir` whose name is `name`, at any depth.
fn find(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(find(&p, name));
        } else if e.file_name().to_string_lossy() == name {
            found.push(p);
        }
    }
    found
}

#[test]
fn a_plan_missing_mid_log_is_refused_and_only_an_explicit_fresh_start_runs() {
    let input = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    run_files_past_a_checkpoint(input.path(), ckpt.path());
    let plan = format!("plan-{:020}", T0 + 4000);
    let [missing] = &find(ckpt.path(), &plan)[..] else {
        panic!("one plan of batch 4000 in {:?}", ckpt.path());
    };
    fs::remove_file(missing).unwrap();

    // Re-planning batch 4000 would read f5000 twice: refused, naming the file.
    let clock = ManualClock::starting_at(T0 + 5000);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = files_context(&clock, ckpt.path(), input.path(), false, &seen);
    let err = ssc.start().unwrap_err();
    assert!(matches!(err, ember::Error::Checkpoint { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&plan) && text.contains("is missing") && text.contains("--fresh-start"),
        "{text}"
    );
    assert!(seen.lock().unwrap().is_empty(), "no batch ran");

    // Asked explicitly, the program starts from empty state and the damaged
    // contents are kept aside.
    let ssc = files_context(&clock, ckpt.path(), input.path(), true, &seen);
    ssc.start().unwrap();
    assert_eq!(ssc.resumed_from(), None);
    drop_file(input.path(), "late", "c", Some(T0 + 5500));
    clock.advance(seconds(1));
    ssc.await_batch(Time::from_millis(T0 + 6000)).unwrap();
    ssc.stop(false).unwrap();
    assert_eq!(
        seen.lock().unwrap().last().unwrap(),
        &(6000, counts(&[("c", 1)]))
    );
    let aside: Vec<PathBuf> = fs::read_dir(ckpt.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("set-aside-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(!find(&aside[0], &format!("plan-{:020}", T0 + 5000)).is_empty());
}

#[test]
fn lost_commit_markers_are_refused_instead_of_a_silent_fresh_start() {
    let input = tempfile::tempdir().unwrap();
    let ckpt = tempfile::tempdir().unwrap();
    run_files_past_a_checkpoint(input.path(), ckpt.path());
    let markers = find(ckpt.path(), "COMMIT");
    assert!(!markers.is_empty());
    for m in markers {
        fs::remove_file(m).unwrap();
    }
    let clock = ManualClock::starting_at(T0 + 5000);
    let ssc = files_context(&clock, ckpt.path(), input.path(), false, &Arc::default());
    let text = ssc.start().unwrap_err().to_string();
    assert!(
        text.contains("COMMIT") && text.contains("are missing") && text.contains("--fresh-start"),
        "{text}"
    );
}

/// A receiver storing, one block at a time, what the test puts in its
/// queue, and counting the blocks it handed to the engine. It keeps what
/// `resume_after` told it.
#[derive(Clone, Default)]
struct QueueLines {
    queue: Arc<Mutex<std::collections::VecDeque<Vec<String>>>>,
    stored: Arc<std::sync::atomic::AtomicUsize>,
    resumed_after: Arc<Mutex<Vec<String>>>,
}

impl QueueLines {
    /// Puts a block in the queue and waits until the receiver stored it.
    fn store(&self, block: Vec<String>) {
        use std::sync::atomic::Ordering;
        let want = self.stored.load(Ordering::SeqCst) + 1;
        self.queue.lock().unwrap().push_back(block);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.stored.load(Ordering::SeqCst) < want {
            assert!(
                Instant::now() < deadline,
                "the receiver never stored the block"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl ember::Receiver for QueueLines {
    type Record = String;

    fn resume_after(&mut self, last: &String) {
        self.resumed_after.lock().unwrap().push(last.clone());
    }

    fn receive(&mut self, ctx: &mut ember::ReceiverContext<'_, String>) -> ember::Received {
        loop {
            if ctx.is_stopped() {
                return ember::Received::Stopped;
            }
            let next = self.queue.lock().unwrap().pop_front();
            match next {
                Some(block) => {
                    for line in block {
                        if !ctx.store(line) {
                            return ember::Received::Stopped;
                        }
                    }
                    if !ctx.flush() {
                        return ember::Received::Stopped;
                    }
                    self.stored
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

/// A TCP server the socket source reads from; the test writes blocks of
/// lines to the connection the newest context made.
#[derive(Clone)]
struct SocketLines {
    port: u16,
    /// Connections in the order they came, and how many of them are from
    /// contexts before the current one.
    conns: Arc<Mutex<(Vec<std::net::TcpStream>, usize)>>,
}

impl SocketLines {
    fn new() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Arc<Mutex<(Vec<std::net::TcpStream>, usize)>> = Arc::default();
        let all = conns.clone();
        std::thread::spawn(move || {
            for c in listener.incoming().flatten() {
                all.lock().unwrap().0.push(c);
            }
        });
        SocketLines { port, conns }
    }

    /// A new context starts: only its connections count from now on.
    fn reset(&self) {
        let mut conns = self.conns.lock().unwrap();
        conns.1 = conns.0.len();
    }

    /// Writes a block of lines to the newest context's connection (waiting
    /// for it to connect).
    fn store(&self, block: Vec<String>) {
        use std::io::Write;
        let text = block.join("\n") + "\n";
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let mut conns = self.conns.lock().unwrap();
                let old = conns.1;
                if let Some(c) = conns.0[old..].last_mut() {
                    c.write_all(text.as_bytes()).unwrap();
                    c.flush().unwrap();
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the socket source never connected"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Where the logged receiver's lines come from.
#[derive(Clone)]
enum LineSource {
    Queue(QueueLines),
    Socket(SocketLines),
}

impl LineSource {
    fn both() -> [LineSource; 2] {
        [
            LineSource::Queue(QueueLines::default()),
            LineSource::Socket(SocketLines::new()),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            LineSource::Queue(_) => "custom receiver",
            LineSource::Socket(_) => "socket",
        }
    }

    fn store(&self, block: Vec<String>) {
        match self {
            LineSource::Queue(q) => q.store(block),
            LineSource::Socket(s) => s.store(block),
        }
    }

    /// A new context starts (see [`SocketLines::reset`]).
    fn reset(&self) {
        if let LineSource::Socket(l) = self {
            l.reset();
        }
    }

    fn stream<'s>(&self, s: &StreamingScope<'s>) -> DStream<'s, String> {
        let options = ember::ReceiverOptions::default()
            .write_ahead_log(true)
            .reconnect_delay(millis(20));
        match self {
            LineSource::Queue(q) => s.receiver_stream_with(q.clone(), options),
            LineSource::Socket(l) => s.socket_text_stream_with("127.0.0.1", l.port, options),
        }
    }
}

fn wal_context(
    clock: &ManualClock,
    ckpt: &Path,
    source: &LineSource,
    fresh: bool,
    seen: &Arc<Mutex<Vec<(u64, Counts)>>>,
) -> StreamingContext {
    source.reset();
    let (clock, dir, source, seen) = (
        clock.clone(),
        ckpt.to_path_buf(),
        source.clone(),
        seen.clone(),
    );
    StreamingContext::get_or_create(dir.clone(), move || {
        let conf = StreamingConf::new("wal-damage", seconds(1))
            .master("local[2]")?
            .ui(None)
            .checkpoint_interval(seconds(4))
            .fresh_start(fresh);
        let ssc = StreamingContext::with_clock(conf, clock)?;
        ssc.checkpoint(&dir);
        ssc.define(move |s| {
            let lines = source.stream(s);
            let seen = seen.clone();
            running_counts(&lines.map(|l| (l, 1u64))).foreach_rdd(move |batch, t| {
                seen.lock()
                    .unwrap()
                    .push((t.milliseconds() - T0, batch.into_iter().collect()));
            });
        })?;
        Ok(ssc)
    })
    .unwrap()
}

/// Runs batches until `word` is counted `n` times; returns the batch time.
fn run_until_counted(
    ssc: &StreamingContext,
    clock: &ManualClock,
    seen: &Arc<Mutex<Vec<(u64, Counts)>>>,
    word: &str,
    n: u64,
) -> u64 {
    for _ in 0..40 {
        clock.advance(seconds(1));
        let t = clock.now_ms() - T0;
        ssc.await_batch(Time::from_millis(T0 + t)).unwrap();
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.0, t);
        if last.1.get(word) == Some(&n) {
            return t;
        }
        // A socket's lines may still be on their way: give them a moment
        // before the next batch closes.
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "{word} never counted {n} times in 40 batches: {:?}",
        seen.lock().unwrap().last()
    );
}

/// Runs the logged receiver: blocks in the batches up to the checkpoint at
/// 4000, then blocks of `d` until one lands in a batch after the newest
/// checkpoint, then stops at once. Returns the log's directory and how
/// many `d`s were counted.
fn run_logged_receiver_past_a_checkpoint(ckpt: &Path, queue: &LineSource) -> (PathBuf, u64) {
    let clock = ManualClock::starting_at(T0);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ssc = wal_context(&clock, ckpt, queue, false, &seen);
    ssc.start().unwrap();
    for word in ["a", "b", "c"] {
        queue.store(vec![word.to_string(); 3]);
        run_until_counted(&ssc, &clock, &seen, word, 3);
    }
    while clock.now_ms() < T0 + 4000 {
        clock.advance(seconds(1));
        ssc.await_batch(Time::from_millis(clock.now_ms())).unwrap();
    }
    let mut d = 0;
    loop {
        queue.store(vec!["d".to_string(); 10]);
        d += 10;
        // Checkpoints are every 4000: a batch in between is in the log only.
        if run_until_counted(&ssc, &clock, &seen, "d", d) % 4000 != 0 {
            break;
        }
    }
    ssc.stop(false).unwrap();
    assert!(!find(ckpt, "COMMIT").is_empty(), "a checkpoint completed");
    let logs = find(ckpt, "HEAD");
    assert_eq!(logs.len(), 1, "{logs:?}");
    (logs[0].parent().unwrap().to_path_buf(), d)
}

/// The log's segments, oldest first.
fn segments(log: &Path) -> Vec<PathBuf> {
    let mut s: Vec<PathBuf> = fs::read_dir(log)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    s.sort();
    s
}

#[test]
fn an_intact_write_ahead_log_resumes_exactly() {
    for source in LineSource::both() {
        let ckpt = tempfile::tempdir().unwrap();
        let (_, d) = run_logged_receiver_past_a_checkpoint(ckpt.path(), &source);
        if let LineSource::Queue(q) = &source {
            // A first start has nothing to resume after.
            assert!(q.resumed_after.lock().unwrap().is_empty());
        }
        let clock = ManualClock::starting_at(T0 + 60_000);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let ssc = wal_context(&clock, ckpt.path(), &source, false, &seen);
        ssc.start().unwrap();
        ssc.await_batch(Time::from_millis(T0 + 60_000)).unwrap();
        ssc.stop(false).unwrap();
        assert_eq!(
            seen.lock().unwrap().last().unwrap().1,
            counts(&[("a", 3), ("b", 3), ("c", 3), ("d", d)]),
            "{}",
            source.name()
        );
        if let LineSource::Queue(q) = &source {
            // Told once, before receiving, of the last record logged.
            assert_eq!(*q.resumed_after.lock().unwrap(), ["d"]);
        }
    }
}

#[test]
fn each_kind_of_write_ahead_log_damage_is_refused_naming_what_is_wrong() {
    type Damage = fn(&Path) -> String;
    let kinds: [(&str, Damage); 3] = [
        ("newest segment removed", |log| {
            let newest = segments(log).pop().unwrap();
            fs::remove_file(&newest).unwrap();
            newest.file_name().unwrap().to_string_lossy().into_owned()
        }),
        ("receivers folder removed", |log| {
            fs::remove_dir_all(log.parent().unwrap()).unwrap();
            "the log is gone".to_string()
        }),
        ("byte flipped a third into a segment", |log| {
            let biggest = segments(log)
                .into_iter()
                .max_by_key(|p| fs::metadata(p).unwrap().len())
                .unwrap();
            let mut bytes = fs::read(&biggest).unwrap();
            // A byte of the payload of the record a third into the file (a
            // flip in a record's length would read as a cut record).
            let third = bytes.len() / 3;
            let mut at = 0;
            let flip = loop {
                let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
                let payload = at + 8..at + 8 + len;
                if len > 0 && (payload.end > third || payload.end >= bytes.len()) {
                    break payload.start + len / 2;
                }
                at = payload.end;
            };
            bytes[flip] ^= 0x10;
            fs::write(&biggest, &bytes).unwrap();
            "fails its checksum".to_string()
        }),
    ];
    for (kind, damage) in kinds {
        for source in LineSource::both() {
            let ckpt = tempfile::tempdir().unwrap();
            let (log, _) = run_logged_receiver_past_a_checkpoint(ckpt.path(), &source);
            let expect = damage(&log);
            let clock = ManualClock::starting_at(T0 + 60_000);
            let seen = Arc::new(Mutex::new(Vec::new()));
            let ssc = wal_context(&clock, ckpt.path(), &source, false, &seen);
            let err = ssc.start().unwrap_err();
            let text = err.to_string();
            let what = format!("{kind}, {}", source.name());
            assert!(
                matches!(err, ember::Error::Checkpoint { .. })
                    && text.contains("write-ahead log is damaged")
                    && text.contains(&expect)
                    && text.contains("--fresh-start"),
                "{what}: {text}"
            );
            assert!(seen.lock().unwrap().is_empty(), "{what}: no batch ran");

            // The explicit way out starts from empty state.
            let ssc = wal_context(&clock, ckpt.path(), &source, true, &seen);
            ssc.start().unwrap();
            source.store(vec!["e".to_string()]);
            run_until_counted(&ssc, &clock, &seen, "e", 1);
            ssc.stop(false).unwrap();
            assert_eq!(
                seen.lock().unwrap().last().unwrap().1,
                counts(&[("e", 1)]),
                "{what}"
            );
        }
    }
}
