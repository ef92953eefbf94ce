//! Exactly once from Kafka to PostgreSQL, proved by killing: a producer
//! writes known records to a real broker while the `kafka_to_postgres`
//! example runs with checkpointing; the example is killed with SIGKILL at
//! random moments ten times and started again each time (it resumes with
//! `get_or_create`). At the end the table holds exactly the counts one
//! uninterrupted run would: no record lost, none counted twice.
//!
//! Needs the broker and the database that `.ci/test.sh` starts
//! (EMBER_TEST_KAFKA_BROKERS, EMBER_TEST_POSTGRES_URL).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ember::kafka::{KafkaExt, KafkaSink};
use ember::postgres::postgres::{Client, NoTls};
use ember::prelude::*;
use ember_testkit::services::create_topic;
use rand::{Rng, SeedableRng};

fn services() -> Option<(String, String)> {
    Some((
        ember_testkit::services::kafka_brokers()?,
        ember_testkit::services::postgres_url()?,
    ))
}

/// The example binary, built by `cargo test` next to this test.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("kafka_to_postgres");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --example kafka_to_postgres --features \
         kafka,postgres` (cargo test --all-features does)",
        path.display()
    );
    path
}

/// The words of line `i`: a known, uneven mix of 50 words.
fn line(i: u64) -> String {
    let a = i % 50;
    let b = (i * 7 + 3) % 50;
    let c = (i / 3) % 50;
    format!("w{a} w{b} w{c}")
}

const LINES: u64 = 30_000;

/// Produces the lines in 30 batches of 100 ms, through ember's own sink.
fn producer(brokers: String, topic: String) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let conf = StreamingConf::new("producer", millis(100))
            .master("local[1]")
            .unwrap()
            .ui(None)
            .stop_on_signals(false);
        let ssc = StreamingContext::new(conf).unwrap();
        let per = LINES / 30;
        let queue = Queue::new();
        for k in 0..30 {
            queue.push((k * per..(k + 1) * per).collect::<Vec<u64>>());
        }
        let q = queue.clone();
        ssc.define(move |s| {
            s.queue_stream(q.clone(), true, None)
                .save_to_kafka(KafkaSink::new(&brokers, &topic), |i| {
                    (Some(i.to_string().into_bytes()), line(*i).into_bytes())
                });
        })
        .unwrap();
        ssc.start().unwrap();
        let first = ssc.first_batch_time().unwrap().milliseconds();
        ssc.await_batch(Time::from_millis(first + 29 * 100))
            .unwrap();
        ssc.stop(false).unwrap();
    })
}

fn spawn(
    brokers: &str,
    topic: &str,
    postgres: &str,
    checkpoint: &Path,
    table: &str,
    log: &Path,
) -> Child {
    spawn_every(brokers, topic, postgres, checkpoint, table, log, "400ms")
}

/// [`spawn`] checkpointing every `every`.
fn spawn_every(
    brokers: &str,
    topic: &str,
    postgres: &str,
    checkpoint: &Path,
    table: &str,
    log: &Path,
    every: &str,
) -> Child {
    Command::new(example())
        .args([brokers, topic, postgres])
        .arg(checkpoint)
        .args(["--table", table, "--batch-interval", "200ms", "--no-ui"])
        .args([
            "--checkpoint-interval",
            every,
            "--max-rate-per-partition",
            "2000",
        ])
        .env("RUST_LOG", "ember_core=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn table_counts(client: &mut Client, table: &str) -> BTreeMap<String, i64> {
    match client.query(&format!("SELECT word, count FROM {table}"), &[]) {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        Err(_) => BTreeMap::new(), // not created yet
    }
}

#[test]
fn killed_ten_times_the_counts_are_exactly_once() {
    let Some((brokers, postgres)) = services() else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("k2p-{nanos}");
    let table = format!("word_counts_{nanos}");
    create_topic(&brokers, &topic, 4);
    let checkpoint = tempfile::tempdir().unwrap();
    let mut client = Client::connect(&postgres, NoTls).unwrap();

    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..LINES {
        for w in line(i).split(' ') {
            *want.entry(w.to_string()).or_default() += 1;
        }
    }

    let produced = producer(brokers.clone(), topic.clone());
    let mut rng = rand::rngs::StdRng::seed_from_u64(nanos as u64);
    let logs = tempfile::tempdir().unwrap();
    let mut resumed = 0;
    // EMBER_SOAK_KILLS makes it a longer soak.
    let rounds: usize = std::env::var("EMBER_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    for round in 0..rounds {
        let log = logs.path().join(format!("round-{round}.log"));
        let mut child = spawn(&brokers, &topic, &postgres, checkpoint.path(), &table, &log);
        let run = Duration::from_millis(rng.gen_range(600..2_500));
        std::thread::sleep(run);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            status.code().is_none(),
            "round {round}: the example exited by itself ({status}) instead of being killed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("resuming from the checkpoint at ")
        {
            resumed += 1;
        }
    }
    // The kills must have landed after checkpoints: most restarts resume
    // from one (rather than counting everything again from offset 0).
    assert!(
        resumed >= rounds / 2,
        "only {resumed} of {rounds} runs resumed from a checkpoint"
    );
    produced.join().unwrap();

    // A last run to the end: all lines counted, then compare.
    let last_log = logs.path().join("last.log");
    let mut child = spawn(
        &brokers,
        &topic,
        &postgres,
        checkpoint.path(),
        &table,
        &last_log,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let total: i64 = want.values().sum();
    loop {
        let got = table_counts(&mut client, &table);
        if got.values().sum::<i64>() >= total {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "after 120 s the table counts {} of {total} words",
                got.values().sum::<i64>()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // One more batch interval's worth, so a double count would show.
    std::thread::sleep(Duration::from_secs(1));
    child.kill().unwrap();
    let _ = child.wait();
    let got = table_counts(&mut client, &table);
    assert_eq!(
        got, want,
        "the table holds exactly the uninterrupted counts"
    );
}

/// The files whose name starts with `prefix` under `dir`, at any depth, sorted.
fn find(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(find(&p, prefix));
        } else if e.file_name().to_string_lossy().starts_with(prefix) {
            found.push(p);
        }
    }
    found.sort();
    found
}

/// The time in a `plan-<ms>` or `checkpoint-<ms>` name.
fn time_of(path: &Path, prefix: &str) -> u64 {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    name.strip_prefix(prefix).unwrap().parse().unwrap()
}

#[test]
fn a_damaged_plan_log_or_lost_commit_markers_are_refused_without_touching_the_table() {
    let Some((brokers, postgres)) = services() else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("k2p-damage-{nanos}");
    let table = format!("word_counts_damage_{nanos}");
    create_topic(&brokers, &topic, 4);
    // Records arrive while the example runs, as they would in production.
    let produced = producer(brokers.clone(), topic.clone());
    let checkpoint = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut client = Client::connect(&postgres, NoTls).unwrap();

    // Run until the log holds two plans after the newest complete checkpoint
    // (checkpoints every 1 s, batches every 200 ms), then kill.
    let plans_after_newest = || -> Vec<PathBuf> {
        let newest = find(checkpoint.path(), "COMMIT")
            .into_iter()
            .filter(|p| p.file_name().unwrap() == "COMMIT")
            .map(|p| time_of(p.parent().unwrap(), "checkpoint-"))
            .max();
        let (Some(newest), Ok(_)) = (newest, std::fs::metadata(checkpoint.path().join("plans")))
        else {
            return Vec::new();
        };
        find(&checkpoint.path().join("plans"), "plan-")
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
            .filter(|p| time_of(p, "plan-") > newest)
            .collect()
    };
    let log = logs.path().join("run.log");
    let mut child = spawn_every(
        &brokers,
        &topic,
        &postgres,
        checkpoint.path(),
        &table,
        &log,
        "1s",
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while plans_after_newest().len() < 2 {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "never two plans after a checkpoint: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let after = plans_after_newest();
    assert!(after.len() >= 2, "{after:?}");
    let before = table_counts(&mut client, &table);
    assert!(!before.is_empty(), "batches were written");

    // A plan missing mid-log: re-planning would count a range twice.
    std::fs::remove_file(&after[0]).unwrap();
    let refused = |what: &str, expect: &[&str]| {
        let log = logs.path().join(format!("{what}.log"));
        let mut child = spawn_every(
            &brokers,
            &topic,
            &postgres,
            checkpoint.path(),
            &table,
            &log,
            "1s",
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{what}: the example ran on instead of refusing: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(!status.success(), "{what}: exited {status}");
        for e in expect {
            assert!(text.contains(e), "{what}: no {e:?} in {text}");
        }
    };
    let name = after[0].file_name().unwrap().to_string_lossy().into_owned();
    refused("plan", &["plan log is damaged", &name, "--fresh-start"]);
    assert_eq!(table_counts(&mut client, &table), before, "no batch ran");

    // Every COMMIT marker gone: no silent fresh start from offset 0.
    for marker in find(checkpoint.path(), "COMMIT") {
        if marker.file_name().unwrap() == "COMMIT" {
            std::fs::remove_file(marker).unwrap();
        }
    }
    refused("commit", &["COMMIT", "are missing", "--fresh-start"]);
    assert_eq!(table_counts(&mut client, &table), before, "no batch ran");
    produced.join().unwrap();
}
