//! The PostgreSQL sink against a real PostgreSQL server (started by
//! `.ci/test.sh`, or `source .ci/postgres.sh && start_postgres`; its URL in
//! EMBER_TEST_POSTGRES_URL, its data directory in EMBER_TEST_POSTGRES_DATA).
//!
//! - upsert: running word counts over several batches equal a count made
//!   here; a re-run of the same batches leaves table and progress the same;
//! - append: a second run over the same batch times (a recovery) inserts
//!   nothing twice; one progress row per batch, with its offsets;
//! - the server restarted mid-run: the sink retries, logs it, and then every
//!   batch is in the table exactly once;
//! - mistakes (a wrong column, bad DDL, a missing table or constraint, a
//!   value out of range, no server) stop the context with a clear error
//!   naming the sink, never a hang;
//! - value conversions (integers to any integer or NUMERIC column, NULLs,
//!   array columns through VALUES lists, duplicate keys) and a 100k-row batch.
//!
//! Every test uses its own tables, so they run in parallel; the restart test
//! takes the server for itself.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use ember_core::{seconds, ManualClock, StreamingConf, StreamingContext, StreamingScope, Time};
use ember_postgres::{PostgresExt, PostgresSink, Sql};
use postgres::{Client, NoTls};

/// Normal tests share the server (read); the restart test owns it (write).
static SERVER: RwLock<()> = RwLock::new(());

/// The server's URL, or `None` when service tests are to be skipped.
fn url() -> Option<String> {
    ember_testkit::services::postgres_url()
}

/// The URL and a shared hold on the server, for a normal test.
fn shared_server() -> Option<(String, RwLockReadGuard<'static, ()>)> {
    let url = url()?;
    logs();
    let guard = SERVER.read().unwrap_or_else(|e| e.into_inner());
    Some((url, guard))
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

fn client(url: &str) -> Client {
    Client::connect(url, NoTls).expect("the test server accepts connections")
}

/// Everything the program logs, to check the sink's warnings.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let out = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogWriter(out.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_lines(containing: &[&str]) -> Vec<String> {
    let buf = logs();
    let text = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| containing.iter().all(|c| l.contains(c)))
        .map(str::to_string)
        .collect()
}

/// A context on a manual clock (batch `i` at `i` s), built by `define`.
fn context(
    workers: usize,
    define: impl Fn(&StreamingScope<'_>) + Send + Sync + 'static,
) -> (ManualClock, StreamingContext) {
    let clock = ManualClock::new();
    let conf = StreamingConf::new("postgres-test", seconds(1))
        .master(&format!("local[{workers}]"))
        .unwrap()
        .ui(None);
    let ssc = StreamingContext::with_clock(conf, clock.clone()).unwrap();
    ssc.define(define).unwrap();
    (clock, ssc)
}

/// Waits for the batch at `secs` s, failing the test instead of hanging.
fn await_batch(ssc: &StreamingContext, secs: u64, within: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    let s = ssc.clone();
    std::thread::spawn(move || {
        let _ = tx.send(s.await_batch(Time::from_millis(secs * 1000)));
    });
    match rx.recv_timeout(within) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("batch {secs} s failed: {e}"),
        Err(_) => panic!("batch {secs} s was not done within {within:?}"),
    }
}

/// Advances the clock through batches `from..=to`, awaiting each.
fn run_batches(clock: &ManualClock, ssc: &StreamingContext, from: u64, to: u64) {
    for b in from..=to {
        clock.advance(seconds(1));
        await_batch(ssc, b, Duration::from_secs(90));
    }
}

/// The error the context stopped with, within a deadline.
fn termination_error(ssc: &StreamingContext) -> String {
    match ssc.await_termination_or_timeout(Duration::from_secs(60)) {
        Err(e) => e.to_string(),
        Ok(true) => panic!("the context stopped without an error"),
        Ok(false) => panic!("the context did not stop within 60 s"),
    }
}

fn progress_rows(c: &mut Client, sink: &str) -> Vec<(i64, Option<String>)> {
    c.query(
        "SELECT batch_time, offsets FROM ember_sink_progress WHERE sink = $1 ORDER BY batch_time",
        &[&sink],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// A small deterministic generator (no seeds shared with the code under test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn upsert_keeps_running_word_counts_and_a_rerun_changes_nothing() {
    let Some((url, _server)) = shared_server() else {
        return;
    };
    let table = unique("word_counts");
    let words = [
        "to", "be", "or", "not", "that", "is", "the", "question", "Be", "ÿes",
    ];
    let mut rng = Lcg(7);
    let batches: Vec<Vec<String>> = (0..6)
        .map(|b| {
            // Batch 3 is empty: the counts stay, a progress row is still written.
            let lines = if b == 3 { 0 } else { 1 + rng.next(5) };
            (0..lines)
                .map(|_| {
                    let n = 1 + rng.next(8);
                    (0..n)
                        .map(|_| words[rng.next(words.len() as u64) as usize])
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        })
        .collect();
    // The reference: running counts after each batch, counted here.
    let mut expected: Vec<BTreeMap<String, i64>> = Vec::new();
    let mut running = BTreeMap::new();
    for batch in &batches {
        for line in batch {
            for w in line.split(' ') {
                *running.entry(w.to_string()).or_insert(0) += 1;
            }
        }
        expected.push(running.clone());
    }
    let sink_name = unique("wc");
    let start = |batches: Vec<Vec<String>>| {
        let (url, table, sink_name) = (url.clone(), table.clone(), sink_name.clone());
        context(2, move |s| {
            let sink =
                PostgresSink::upsert(url.clone(), table.clone(), &["word", "count"], &["word"])
                    .sink_name(sink_name.clone())
                    .create_table_sql(format!(
                "CREATE TABLE IF NOT EXISTS {table} (word TEXT PRIMARY KEY, count BIGINT NOT NULL)"
            ));
            s.queue_stream(batches.clone(), true, None)
                .flat_map(|l: String| l.split(' ').map(str::to_string).collect::<Vec<_>>())
                .map(|w| (w, 1u64))
                .update_state_by_key(|new: Vec<u64>, old: Option<u64>| {
                    Some(old.unwrap_or(0) + new.iter().sum::<u64>())
                })
                .save_to_postgres(sink);
        })
    };
    let table_now = |c: &mut Client| -> BTreeMap<String, i64> {
        c.query(&format!("SELECT word, count FROM {table}"), &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    let mut c = client(&url);
    let (clock, ssc) = start(batches.clone());
    ssc.start().unwrap();
    for (i, want) in expected.iter().enumerate() {
        run_batches(&clock, &ssc, i as u64 + 1, i as u64 + 1);
        assert_eq!(&table_now(&mut c), want, "after batch {}", i + 1);
    }
    ssc.stop(false).unwrap();
    let times: Vec<i64> = (1..=6).map(|b| b * 1000).collect();
    let recorded = |c: &mut Client| -> Vec<i64> {
        progress_rows(c, &sink_name)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    };
    assert_eq!(recorded(&mut c), times);

    // A recovery re-runs the batches: upserts write them again, to the same end.
    let (clock, ssc) = start(batches);
    ssc.start().unwrap();
    run_batches(&clock, &ssc, 1, 6);
    ssc.stop(false).unwrap();
    assert_eq!(&table_now(&mut c), expected.last().unwrap());
    assert_eq!(recorded(&mut c), times);
}

#[test]
fn append_skips_the_batches_a_recovered_run_writes_again() {
    let Some((url, _server)) = shared_server() else {
        return;
    };
    let table = unique("events");
    let mut c = client(&url);
    c.batch_execute(&format!(
        "CREATE TABLE {table} (id BIGINT NOT NULL, payload TEXT, batch INTEGER)"
    ))
    .unwrap();
    // Five batches of events; batch 2 is empty. No unique constraint: a
    // double insert would show as duplicate rows.
    let batches: Vec<Vec<(i64, String, u32)>> = (1..=5u32)
        .map(|b| {
            let n = if b == 2 { 0 } else { 3 * b as i64 };
            (0..n)
                .map(|i| (b as i64 * 1000 + i, format!("event {b}/{i}"), b))
                .collect()
        })
        .collect();
    let sink_name = unique("ev");
    let start = |batches: Vec<Vec<(i64, String, u32)>>| {
        let (url, table, sink_name) = (url.clone(), table.clone(), sink_name.clone());
        context(2, move |s| {
            let sink =
                PostgresSink::append(url.clone(), table.clone(), &["id", "payload", "batch"])
                    .sink_name(sink_name.clone());
            s.queue_stream(batches.clone(), true, None)
                .save_to_postgres_with(sink, |batch, time| {
                    Some(format!(
                        "{{\"time\": {}, \"records\": {}}}",
                        time.milliseconds(),
                        batch.len()
                    ))
                });
        })
    };
    // The first run writes batches 1-3, then "crashes".
    let (clock, ssc) = start(batches.clone());
    ssc.start().unwrap();
    run_batches(&clock, &ssc, 1, 3);
    ssc.stop(false).unwrap();
    // The recovered run replays 1-3 with the same content, then goes on.
    let (clock, ssc) = start(batches.clone());
    ssc.start().unwrap();
    run_batches(&clock, &ssc, 1, 5);
    ssc.stop(false).unwrap();

    let mut got: Vec<(i64, String, i32)> = c
        .query(&format!("SELECT id, payload, batch FROM {table}"), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    got.sort();
    let want: Vec<(i64, String, i32)> = batches
        .iter()
        .flatten()
        .map(|(id, p, b)| (*id, p.clone(), *b as i32))
        .collect();
    assert_eq!(got, want, "every event exactly once");
    let progress = progress_rows(&mut c, &sink_name);
    let want: Vec<(i64, Option<String>)> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let t = (i as i64 + 1) * 1000;
            (
                t,
                Some(format!("{{\"time\": {t}, \"records\": {}}}", b.len())),
            )
        })
        .collect();
    assert_eq!(
        progress, want,
        "one progress row per batch, with its offsets"
    );
    assert_eq!(
        log_lines(&[&sink_name, "was committed before"]).len(),
        3,
        "the replayed batches 1-3 are skipped"
    );
    let last = PostgresSink::append(url.clone(), table.clone(), &["id"])
        .sink_name(sink_name.clone())
        .last_committed()
        .unwrap()
        .expect("a committed batch");
    assert_eq!(last.batch_time, Time::from_millis(5000));
    assert_eq!(
        last.offsets.as_deref(),
        Some("{\"time\": 5000, \"records\": 15}")
    );
    let none = PostgresSink::append(url.clone(), table, &["id"])
        .sink_name(unique("never"))
        .last_committed()
        .unwrap();
    assert_eq!(none, None);
}

/// Runs pg_ctl on the test server, as its owner.
fn pg_ctl(args: &[&str]) {
    let data = std::env::var("EMBER_TEST_POSTGRES_DATA").expect(
        "EMBER_TEST_POSTGRES_DATA is not set: start the server with .ci/postgres.sh's \
         start_postgres",
    );
    let bin = std::env::var("EMBER_TEST_POSTGRES_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let pg_ctl = PathBuf::from(bin).join("pg_ctl");
    let log = PathBuf::from(&data).with_file_name("server.log");
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        Command::new(&pg_ctl)
    };
    cmd.args(["-D", &data, "-l"])
        .arg(&log)
        .args(["-w", "-t", "60"]);
    let out = cmd.args(args).output().expect("pg_ctl runs");
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the server again if a test stopped it and then failed.
struct RestartOnDrop {
    down: bool,
}

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if self.down {
            pg_ctl(&["start"]);
        }
    }
}

#[test]
fn a_server_restart_mid_run_loses_no_batch_and_writes_none_twice() {
    let Some(url) = url() else {
        return;
    };
    logs();
    let _server = SERVER.write().unwrap_or_else(|e| e.into_inner());
    let table = unique("restart_events");
    let mut c = client(&url);
    c.batch_execute(&format!(
        "CREATE TABLE {table} (id BIGINT NOT NULL, batch INTEGER NOT NULL)"
    ))
    .unwrap();
    // Batch 7 is large: the server is stopped again as it is written.
    let batches: Vec<Vec<(i64, i32)>> = (1..=9i32)
        .map(|b| {
            let n = if b == 7 { 50_000 } else { 200 };
            (0..n).map(|i| (b as i64 * 100_000 + i, b)).collect()
        })
        .collect();
    let sink_name = unique("restart");
    let (clock, ssc) = {
        let (url, table, sink_name, batches) = (
            url.clone(),
            table.clone(),
            sink_name.clone(),
            batches.clone(),
        );
        context(2, move |s| {
            let sink = PostgresSink::append(url.clone(), table.clone(), &["id", "batch"])
                .sink_name(sink_name.clone())
                .chunk_size(16)
                .backoff(Duration::from_millis(50), Duration::from_millis(400))
                .retry_for(Duration::from_secs(90));
            s.queue_stream(batches.clone(), true, None)
                .save_to_postgres(sink);
        })
    };
    ssc.start().unwrap();
    run_batches(&clock, &ssc, 1, 3);

    let mut restart = RestartOnDrop { down: true };
    pg_ctl(&["-m", "fast", "stop"]);
    // Batches keep coming while the server is down.
    for _ in 4..=6 {
        clock.advance(seconds(1));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while log_lines(&[&sink_name, "retry 2 in"]).is_empty() {
        assert!(Instant::now() < deadline, "no retries logged within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        ssc.last_completed_batch() <= Some(Time::from_millis(3000)),
        "nothing completes while the server is down"
    );
    pg_ctl(&["start"]);
    restart.down = false;
    await_batch(&ssc, 6, Duration::from_secs(90));
    // Stopped again in the middle of batch 7's transaction: once the sink's
    // connection has inserted some of its rows.
    clock.advance(seconds(1));
    let mut watcher = client(&url);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let inserting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ember' \
                 AND xact_start IS NOT NULL AND query LIKE 'INSERT INTO \"' || $1 || '\"%'",
                &[&table],
            )
            .unwrap()
            .get(0);
        if inserting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "batch 7 did not start within 60 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(watcher);
    restart.down = true;
    pg_ctl(&["-m", "fast", "stop"]);
    pg_ctl(&["start"]);
    restart.down = false;
    await_batch(&ssc, 7, Duration::from_secs(90));
    run_batches(&clock, &ssc, 8, 9);
    ssc.stop(false).unwrap();

    let retries = log_lines(&[&sink_name, "not written", "retry"]);
    eprintln!("{}", retries.join("\n"));
    assert!(
        retries
            .iter()
            .all(|l| l.contains("WARN")
                && (l.contains("batch 4000 ms") || l.contains("batch 7000 ms"))),
        "retries are warnings about the batches that met a stop:\n{}",
        retries.join("\n")
    );
    assert!(
        retries
            .iter()
            .any(|l| l.contains("batch 7000 ms") && l.contains("inserting rows")),
        "batch 7 lost its connection mid-transaction:\n{}",
        retries.join("\n")
    );
    let mut c = client(&url);
    let mut got: Vec<(i64, i32)> = c
        .query(&format!("SELECT id, batch FROM {table}"), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    got.sort();
    let want: Vec<(i64, i32)> = batches.into_iter().flatten().collect();
    assert_eq!(got.len(), want.len(), "no batch lost, none written twice");
    assert_eq!(got, want);
    let times: Vec<i64> = progress_rows(&mut c, &sink_name)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(times, (1..=9).map(|b| b * 1000).collect::<Vec<i64>>());
}

/// Runs one batch of `records` into `sink` and returns the error the
/// context stopped with.
fn failure_of<T>(sink: PostgresSink, records: Vec<T>) -> String
where
    T: ember_postgres::ToRow + ember_core::Data + Sync,
{
    let (clock, ssc) = context(2, move |s| {
        s.queue_stream(vec![records.clone()], true, None)
            .save_to_postgres(sink.clone());
    });
    ssc.start().unwrap();
    clock.advance(seconds(1));
    termination_error(&ssc)
}

fn assert_mentions(error: &str, parts: &[&str]) {
    eprintln!("error: {error}\n");
    for p in parts {
        assert!(
            error.contains(p),
            "the error should mention {p:?}; it is:\n{error}"
        );
    }
}

#[test]
fn mistakes_stop_the_context_with_an_error_saying_what_to_fix() {
    let Some((url, _server)) = shared_server() else {
        return;
    };
    let mut c = client(&url);
    let table = unique("wc_mistakes");
    c.batch_execute(&format!(
        "CREATE TABLE {table} (word TEXT PRIMARY KEY, count BIGINT NOT NULL)"
    ))
    .unwrap();
    let counts = vec![("a".to_string(), 1u64)];

    // A column the table does not have.
    let e = failure_of(
        PostgresSink::upsert(url.clone(), table.clone(), &["word", "cnt"], &["word"]),
        counts.clone(),
    );
    assert_mentions(
        &e,
        &[
            &format!("PostgreSQL sink `{table}`"),
            "has no column `cnt`",
            "its columns: word, count",
        ],
    );

    // DDL that is not SQL.
    let e = failure_of(
        PostgresSink::upsert(url.clone(), unique("never"), &["word", "count"], &["word"])
            .sink_name("bad_ddl")
            .create_table_sql("CREATE TABLE oops ("),
        counts.clone(),
    );
    assert_mentions(
        &e,
        &[
            "PostgreSQL sink `bad_ddl`",
            "running create_table_sql",
            "syntax error",
            "42601",
        ],
    );

    // No such table.
    let missing = unique("missing");
    let e = failure_of(
        PostgresSink::append(url.clone(), missing.clone(), &["word", "count"]),
        counts.clone(),
    );
    assert_mentions(&e, &["does not exist", "create_table_sql", &missing]);

    // Keys without a unique constraint.
    let loose = unique("loose");
    c.batch_execute(&format!("CREATE TABLE {loose} (word TEXT, count BIGINT)"))
        .unwrap();
    let e = failure_of(
        PostgresSink::upsert(url.clone(), loose.clone(), &["word", "count"], &["word"]),
        counts.clone(),
    );
    assert_mentions(
        &e,
        &[
            "ON CONFLICT",
            "PRIMARY KEY or UNIQUE constraint on exactly them",
        ],
    );

    // A u64 too large for BIGINT.
    let e = failure_of(
        PostgresSink::upsert(url.clone(), table.clone(), &["word", "count"], &["word"]),
        vec![("ok".to_string(), 5u64), ("huge".to_string(), u64::MAX)],
    );
    assert_mentions(
        &e,
        &[
            "column `count`",
            "18446744073709551615 is out of range for bigint",
        ],
    );

    // A value of the wrong type.
    let e = failure_of(
        PostgresSink::upsert(url.clone(), table.clone(), &["word", "count"], &["word"]),
        vec![("x".to_string(), 2.5f64)],
    );
    assert_mentions(&e, &["column `count`", "f64", "bigint"]);

    // A server that is not there, with no retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = failure_of(
        PostgresSink::append(
            format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            "t",
            &["w"],
        )
        .retries(0),
        vec![("w".to_string(),)],
    );
    assert_mentions(
        &e,
        &[
            "PostgreSQL sink `t`",
            "gave up",
            &format!("127.0.0.1:{port}"),
            "retry_for",
        ],
    );

    // A sink defined wrongly fails start().
    let (_clock, ssc) = {
        let url = url.clone();
        let table = table.clone();
        context(1, move |s| {
            s.queue_stream(vec![vec![("a".to_string(), 1u64)]], true, None)
                .save_to_postgres(PostgresSink::upsert(
                    url.clone(),
                    table.clone(),
                    &["word", "count"],
                    &["id"],
                ));
        })
    };
    let e = ssc.start().unwrap_err().to_string();
    assert_mentions(
        &e,
        &["key column `id` is not among the columns [word, count]"],
    );

    // Nothing of the failed batches was written.
    let n: i64 = c
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[test]
fn values_convert_to_the_columns_types() {
    let Some((url, _server)) = shared_server() else {
        return;
    };
    let mut c = client(&url);
    let table = unique("typed");
    c.batch_execute(&format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, small SMALLINT, big NUMERIC, \
         note VARCHAR(10))"
    ))
    .unwrap();
    type Rec = (u32, Option<i64>, u64, Option<String>);
    let records: Vec<Rec> = vec![
        (1, Some(-7), u64::MAX, Some("one".into())),
        (2, None, 0, None),
        (3, Some(32_767), 10_000, Some("three".into())),
    ];
    let (clock, ssc) = {
        let (url, table, records) = (url.clone(), table.clone(), records.clone());
        context(1, move |s| {
            let sink = PostgresSink::upsert(
                url.clone(),
                table.clone(),
                &["id", "small", "big", "note"],
                &["id"],
            );
            s.queue_stream(vec![records.clone()], true, None)
                .save_to_postgres(sink);
        })
    };
    ssc.start().unwrap();
    run_batches(&clock, &ssc, 1, 1);
    ssc.stop(false).unwrap();
    let got: Vec<(i32, Option<i16>, String, Option<String>)> = c
        .query(
            &format!("SELECT id, small, big::text, note FROM {table} ORDER BY id"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                Some(-7),
                "18446744073709551615".to_string(),
                Some("one".into())
            ),
            (2, None, "0".to_string(), None),
            (3, Some(32_767), "10000".to_string(), Some("three".into())),
        ]
    );

    // A string longer than VARCHAR(10) is refused, not cut.
    let e = failure_of(
        PostgresSink::upsert(url.clone(), table.clone(), &["id", "note"], &["id"]),
        vec![(9u32, "eleven chars".to_string())],
    );
    assert_mentions(&e, &["value too long", "22001"]);
}

#[test]
fn array_columns_and_repeated_keys() {
    let Some((url, _server)) = shared_server() else {
        return;
    };
    let mut c = client(&url);
    let tags = unique("tags");
    c.batch_execute(&format!(
        "CREATE TABLE {tags} (id BIGINT PRIMARY KEY, tags INTEGER[], label \"char\")"
    ))
    .unwrap();
    let counts = unique("last_wins");
    c.batch_execute(&format!(
        "CREATE TABLE {counts} (k TEXT PRIMARY KEY, v BIGINT)"
    ))
    .unwrap();
    // Array columns go through VALUES lists: 7 rows in chunks of 3, with a
    // key repeated within a chunk (id 2) and across chunks (id 1).
    let rows: Vec<(i64, Vec<i32>, Sql<i8>)> = vec![
        (1, vec![1], Sql(b'a' as i8)),
        (2, vec![], Sql(b'b' as i8)),
        (2, vec![2, 2], Sql(b'c' as i8)),
        (3, vec![3, 30, 300], Sql(b'd' as i8)),
        (1, vec![10, 11], Sql(b'e' as i8)),
        (4, vec![4], Sql(b'f' as i8)),
        (5, vec![-5], Sql(b'g' as i8)),
    ];
    // Plain columns go through unnest: repeated keys across and within
    // chunks of 2; the last record of a key wins.
    let kv: Vec<(String, i64)> = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("c", 5), ("a", 6)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let (clock, ssc) = {
        let (url, tags, counts, rows, kv) = (
            url.clone(),
            tags.clone(),
            counts.clone(),
            rows.clone(),
            kv.clone(),
        );
        context(2, move |s| {
            s.queue_stream(vec![rows.clone()], true, None)
                .save_to_postgres(
                    PostgresSink::upsert(
                        url.clone(),
                        tags.clone(),
                        &["id", "tags", "label"],
                        &["id"],
                    )
                    .chunk_size(3),
                );
            s.queue_stream(vec![kv.clone()], true, None)
                .save_to_postgres(
                    PostgresSink::upsert(url.clone(), counts.clone(), &["k", "v"], &["k"])
                        .chunk_size(2),
                );
        })
    };
    ssc.start().unwrap();
    run_batches(&clock, &ssc, 1, 1);
    ssc.stop(false).unwrap();
    let got: Vec<(i64, Vec<i32>, i8)> = c
        .query(
            &format!("SELECT id, tags, label FROM {tags} ORDER BY id"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, vec![10, 11], b'e' as i8),
            (2, vec![2, 2], b'c' as i8),
            (3, vec![3, 30, 300], b'd' as i8),
            (4, vec![4], b'f' as i8),
            (5, vec![-5], b'g' as i8),
        ]
    );
    let got: Vec<(String, i64)> = c
        .query(&format!("SELECT k, v FROM {counts} ORDER BY k"), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want: Vec<(String, i64)> = vec![("a".into(), 6), ("b".into(), 2), ("c".into(), 5)];
    assert_eq!(got, want);
}

/// Prints the rows/s of a 100k-row batch (meaningful in a release build:
/// `cargo test --release -p ember-streaming-postgres large -- --nocapture`).
#[test]
fn a_large_batch_goes_in_whole() {
    let Some((url, _server)) = shared_server() else {
        return;
    };
    let mut c = client(&url);
    let append = unique("bulk_append");
    let upsert = unique("bulk_upsert");
    c.batch_execute(&format!(
        "CREATE TABLE {append} (word TEXT NOT NULL, n BIGINT NOT NULL); \
         CREATE TABLE {upsert} (word TEXT PRIMARY KEY, n BIGINT NOT NULL)"
    ))
    .unwrap();
    const ROWS: i64 = 100_000;
    let batch: Vec<(String, i64)> = (0..ROWS).map(|i| (format!("word-{i:07}"), i)).collect();
    for (table, is_upsert) in [(&append, false), (&upsert, true)] {
        for chunk in [1000, 10_000] {
            c.batch_execute(&format!("TRUNCATE {table}")).unwrap();
            let (clock, ssc) = {
                let (url, table, batch) = (url.clone(), table.clone(), batch.clone());
                context(1, move |s| {
                    let sink = if is_upsert {
                        PostgresSink::upsert(url.clone(), table.clone(), &["word", "n"], &["word"])
                    } else {
                        PostgresSink::append(url.clone(), table.clone(), &["word", "n"])
                    };
                    // Batch 1 is empty: it opens the connection, so batch 2
                    // measures the writing alone.
                    s.queue_stream(vec![Vec::new(), batch.clone()], true, None)
                        .save_to_postgres(sink.chunk_size(chunk).sink_name(unique("bulk")));
                })
            };
            ssc.start().unwrap();
            run_batches(&clock, &ssc, 1, 1);
            let began = Instant::now();
            run_batches(&clock, &ssc, 2, 2);
            let took = began.elapsed();
            ssc.stop(false).unwrap();
            let (n, sum): (i64, String) = {
                let r = c
                    .query_one(&format!("SELECT count(*), sum(n)::text FROM {table}"), &[])
                    .unwrap();
                (r.get(0), r.get(1))
            };
            assert_eq!(n, ROWS);
            assert_eq!(sum, (ROWS * (ROWS - 1) / 2).to_string());
            let mode = if is_upsert { "upsert" } else { "append" };
            eprintln!(
                "{ROWS} (String, i64) rows, {mode}, chunks of {chunk}: {took:.2?}, {:.0} rows/s",
                ROWS as f64 / took.as_secs_f64()
            );
        }
    }
}

/// A sink failure reaches `await_termination` as the connector's own error
/// (not a panic of the program's code), and a sink defined wrongly fails
/// `start()` with it too. Needs no server: nothing listens on the port.
#[test]
fn sink_failures_keep_the_connectors_error_kind() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = PostgresSink::append(
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        "t",
        &["w"],
    )
    .retries(0);
    let (clock, ssc) = context(2, move |s| {
        s.queue_stream(vec![vec![("w".to_string(),)]], true, None)
            .save_to_postgres(sink.clone());
    });
    ssc.start().unwrap();
    clock.advance(seconds(1));
    let e = ssc
        .await_termination_or_timeout(Duration::from_secs(60))
        .expect_err("the context fails");
    assert!(matches!(e, ember_core::Error::Connector(_)), "{e:?}");
    match e.downcast_ref::<ember_postgres::Error>() {
        Some(ember_postgres::Error::Postgres { sink, message, .. }) => {
            assert_eq!(sink, "t");
            assert!(message.contains("gave up on batch 1000 ms"), "{message}");
        }
        other => panic!("expected the sink's Postgres error, got {other:?} in {e:?}"),
    }

    let (_clock, ssc) = context(1, |s| {
        s.queue_stream(vec![vec![("a".to_string(), 1u64)]], true, None)
            .save_to_postgres(PostgresSink::upsert(
                "postgres://u@127.0.0.1/db",
                "t",
                &["word", "count"],
                &["id"],
            ));
    });
    let e = ssc.start().unwrap_err();
    assert!(
        matches!(
            e.downcast_ref::<ember_postgres::Error>(),
            Some(ember_postgres::Error::Config { .. })
        ),
        "{e:?}"
    );
}
