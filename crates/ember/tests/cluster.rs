//! Cluster mode on one machine: three processes of two workers each,
//! connected by timely over loopback, give exactly the results of
//! `local[1]` for a word count, a windowed count and a stateful count on the
//! same queued input. The processes are this test binary run again as
//! children (EMBER_CLUSTER_CHILD says which job and which process).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use ember::prelude::*;

const CHILD: &str = "EMBER_CLUSTER_CHILD";
const BATCHES: u64 = 12;
const INTERVAL_MS: u64 = 100;

/// Each batch's sorted output, by batch number (1 = the first batch).
type Results = BTreeMap<u64, Vec<(String, u64)>>;

fn input() -> Vec<Vec<String>> {
    (0..BATCHES)
        .map(|b| {
            (0..40)
                .map(|i| format!("w{} w{} w{}", (b * 7 + i) % 13, i % 5, (b + i * 3) % 17))
                .collect()
        })
        .collect()
}

/// Runs `job` on `master` (with more flags) and returns its results.
fn run(job: &str, master_args: &[String]) -> Results {
    let conf = StreamingConf::new("cluster-test", millis(INTERVAL_MS))
        .ui(None)
        .stop_on_signals(false);
    let (conf, _) = conf
        .parse_args(master_args.iter().cloned())
        .expect("cluster flags");
    let ssc = StreamingContext::new(conf).unwrap();
    let seen: Arc<Mutex<Results>> = Arc::default();
    let (out, job) = (seen.clone(), job.to_string());
    ssc.define(move |s| {
        let words = s
            .queue_stream(input(), true, None)
            .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64));
        let counts = match job.as_str() {
            "wordcount" => words.reduce_by_key(|a, b| a + b),
            "window" => words.reduce_by_key_and_window_inv(
                |a, b| a + b,
                |a, b| a - b,
                millis(3 * INTERVAL_MS),
                millis(2 * INTERVAL_MS),
            ),
            _ => words.update_state_by_key(|new: Vec<u64>, old: Option<u64>| {
                Some(old.unwrap_or(0) + new.iter().sum::<u64>())
            }),
        };
        let out = out.clone();
        counts.foreach_rdd(move |mut batch, t| {
            batch.sort();
            out.lock().unwrap().insert(t.milliseconds(), batch);
        });
    })
    .unwrap();
    ssc.start().unwrap();
    let first = ssc.first_batch_time().unwrap().milliseconds();
    ssc.await_batch(Time::from_millis(first + (BATCHES + 2) * INTERVAL_MS))
        .unwrap();
    ssc.stop(false).unwrap();
    let by_time = seen.lock().unwrap().clone();
    by_time
        .into_iter()
        .map(|(t, v)| ((t - first) / INTERVAL_MS + 1, v))
        .filter(|(n, _)| *n <= BATCHES + 2)
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The child's part: run the job as one process of the cluster; process 0
/// writes the results (it gathers every batch) as JSON-free text.
#[test]
fn child_program() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [job, hosts, process, out] = parts.as_slice() else {
        panic!("bad {CHILD}: {spec}");
    };
    let args: Vec<String> = [
        "--master",
        "cluster",
        "--hosts",
        hosts,
        "--process",
        process,
        "--workers",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let results = run(job, &args);
    if *process == "0" {
        std::fs::write(out, format!("{results:?}")).unwrap();
    }
}

fn cluster_run(job: &str, dir: &Path) -> String {
    let hosts: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let hosts = hosts.join(",");
    let out = dir.join(format!("{job}.txt"));
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|p| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_program",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, format!("{job}|{hosts}|{p}|{}", out.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (p, c) in children.into_iter().enumerate() {
        let done = c.wait_with_output().unwrap();
        assert!(
            done.status.success(),
            "process {p} of the {job} cluster failed: {}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    std::fs::read_to_string(&out).unwrap()
}

#[test]
fn three_processes_match_local_1() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for job in ["wordcount", "window", "state"] {
        let local = run(job, &["--master".to_string(), "local[1]".to_string()]);
        assert!(
            local.values().any(|v| !v.is_empty()),
            "{job}: the local run produced nothing"
        );
        let cluster = cluster_run(job, dir.path());
        assert_eq!(
            cluster,
            format!("{local:?}"),
            "{job}: 3 × 2 workers vs local[1]"
        );
    }
}
