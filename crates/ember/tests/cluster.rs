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
use ember_testkit::{
    child_command, child_spec, cluster_args, free_port, read_word_counts,
    running_word_counts_to_file,
};

const CHILD: &str = "EMBER_CLUSTER_CHILD";
const FAIL_CHILD: &str = "EMBER_CLUSTER_FAIL_CHILD";
const MISMATCH_CHILD: &str = "EMBER_CLUSTER_MISMATCH_CHILD";
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
    let follower = master_args
        .windows(2)
        .any(|w| w[0] == "--process" && w[1] != "0");
    if follower {
        // Process 0's stop ends every process of the cluster.
        ssc.await_termination().unwrap();
    } else {
        ssc.await_batch(Time::from_millis(first + (BATCHES + 2) * INTERVAL_MS))
            .unwrap();
        ssc.stop(false).unwrap();
    }
    let by_time = seen.lock().unwrap().clone();
    by_time
        .into_iter()
        .map(|(t, v)| ((t - first) / INTERVAL_MS + 1, v))
        .filter(|(n, _)| *n <= BATCHES + 2)
        .collect()
}

/// This test binary again, running only `test`, with `spec` in `env`.
fn child(test: &str, env: &str, spec: String) -> Command {
    child_command(test, env, spec)
}

/// This binary started as a child process of one of the tests (it then
/// runs only its child program, never a test that starts children).
fn in_child() -> bool {
    [
        CHILD,
        FAIL_CHILD,
        RESTART_CHILD,
        MISMATCH_CHILD,
        GRACEFUL_CHILD,
        FALLIBLE_CHILD,
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok())
}

/// The child's part: run the job as one process of the cluster; process 0
/// writes the results (it gathers every batch) as JSON-free text.
#[test]
fn child_program() {
    let Some(spec) = child_spec(CHILD) else {
        return;
    };
    let [job, hosts, process, out] = &spec;
    let args = cluster_args(hosts, process, 2, &[]);
    let results = run(job, &args);
    if *process == "0" {
        std::fs::write(out, format!("{results:?}")).unwrap();
    }
}

/// Runs `job` as one child process per address in `hosts` (each inside its
/// network namespace, when given), and returns what process 0 wrote.
fn run_children(job: &str, hosts: &[String], namespaces: Option<&[String]>, out: &Path) -> String {
    let list = hosts.join(",");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..hosts.len())
        .map(|p| {
            let mut cmd = match namespaces {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", &ns[p]]).arg(&exe);
                    c
                }
                None => Command::new(&exe),
            };
            cmd.args([
                "--exact",
                "child_program",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, format!("{job}|{list}|{p}|{}", out.display()))
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
    std::fs::read_to_string(out).unwrap()
}

fn cluster_run(job: &str, dir: &Path) -> String {
    let hosts: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    run_children(job, &hosts, None, &dir.join(format!("{job}.txt")))
}

#[test]
fn three_processes_match_local_1() {
    if in_child() {
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

/// A child that runs until killed (process 1) or until its context fails
/// (process 0), for the failure tests; writes how it ended.
#[test]
fn child_until_failure() {
    let Some(spec) = child_spec(FAIL_CHILD) else {
        return;
    };
    let [hosts, process, timeout, out] = &spec;
    let args = cluster_args(hosts, process, 1, &["--connect-timeout", timeout]);
    let (conf, _) = StreamingConf::new("cluster-failure", millis(INTERVAL_MS))
        .ui(None)
        .stop_on_signals(false)
        .parse_args(args)
        .unwrap();
    let ssc = StreamingContext::new(conf).unwrap();
    let ended = ssc
        .define(|s| {
            // Endless input: one small batch every interval.
            let queue = Queue::new();
            s.queue_stream(queue, true, Some(vec!["a b".to_string()]))
                .count()
                .foreach_rdd(|_, _| {});
        })
        .and_then(|()| ssc.start())
        .and_then(|()| {
            // Running: tell the test, which then kills a peer.
            let first = ssc.first_batch_time().expect("started");
            ssc.await_batch(first)?;
            std::fs::write(format!("{out}.ready"), "").unwrap();
            ssc.await_termination()
        });
    std::fs::write(out, format!("{ended:?}")).unwrap();
}

fn failure_child(hosts: &str, process: usize, timeout: &str, out: &Path) -> std::process::Child {
    child(
        "child_until_failure",
        FAIL_CHILD,
        format!("{hosts}|{process}|{timeout}|{}", out.display()),
    )
    .spawn()
    .unwrap()
}

#[test]
fn a_peer_that_never_starts_is_named_after_the_timeout() {
    if in_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("127.0.0.1:{}", free_port());
    let hosts = format!("127.0.0.1:{},{missing}", free_port());
    let out = dir.path().join("p0.txt");
    let status = failure_child(&hosts, 0, "2s", &out).wait().unwrap();
    assert!(status.success());
    let ended = std::fs::read_to_string(&out).unwrap();
    assert!(ended.contains("Err(cluster: "), "{ended}");
    assert!(
        ended.contains(&missing),
        "names the address that did not answer: {ended}"
    );
}

#[test]
fn when_a_peer_is_killed_the_others_stop_with_a_clear_error() {
    if in_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    let (out0, out1) = (dir.path().join("p0.txt"), dir.path().join("p1.txt"));
    let mut p0 = failure_child(&hosts, 0, "30s", &out0);
    let mut p1 = failure_child(&hosts, 1, "30s", &out1);
    // Once both have completed a batch, kill process 1.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ready = |o: &Path| Path::new(&format!("{}.ready", o.display())).exists();
    while !(ready(&out0) && ready(&out1)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    p1.kill().unwrap();
    let _ = p1.wait();
    let killed = std::time::Instant::now();
    let status = p0.wait().unwrap();
    let took = killed.elapsed();
    assert!(status.success());
    let ended = std::fs::read_to_string(&out0).unwrap();
    assert!(
        ended.contains("Err(cluster: "),
        "a cluster error, not a bare panic: {ended}"
    );
    assert!(ended.contains("connection to process 1 broke"), "{ended}");
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
}

/// Network namespaces of the test's own, joined by a bridge: three hosts
/// with their own addresses. Removed on drop.
struct Hosts {
    bridge: String,
    namespaces: Vec<String>,
    addresses: Vec<String>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    fn new(n: usize) -> Result<Hosts, String> {
        let id = std::process::id() % 100_000;
        let subnet = 20 + id % 200;
        let mut hosts = Hosts {
            bridge: format!("ebr{id}"),
            namespaces: Vec::new(),
            addresses: Vec::new(),
        };
        ip(&["link", "add", &hosts.bridge, "type", "bridge"])?;
        ip(&["link", "set", &hosts.bridge, "up"])?;
        for i in 0..n {
            let ns = format!("ens{i}x{id}");
            let (outer, inner) = (format!("ev{i}x{id}"), format!("ep{i}x{id}"));
            ip(&["netns", "add", &ns])?;
            hosts.namespaces.push(ns.clone());
            ip(&[
                "link", "add", &outer, "type", "veth", "peer", "name", &inner,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "master", &hosts.bridge, "up"])?;
            let address = format!("10.{subnet}.0.{}", i + 1);
            let cidr = format!("{address}/24");
            ip(&[
                "netns", "exec", &ns, "ip", "addr", "add", &cidr, "dev", &inner,
            ])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", &inner, "up"])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
            hosts.addresses.push(address);
        }
        Ok(hosts)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

#[test]
fn three_hosts_in_their_own_network_namespaces_match_local_1() {
    if in_child() {
        return;
    }
    // Namespaces need root and iproute2; elsewhere the test says why it
    // cannot run (the loopback cluster tests above still run).
    let hosts = match Hosts::new(3) {
        Ok(h) => h,
        Err(e) if std::env::var("EMBER_REQUIRE_NETNS").as_deref() == Ok("1") => {
            panic!("network namespaces are required here but: {e}")
        }
        Err(e) => {
            eprintln!("skipping the network-namespace cluster test: {e}");
            return;
        }
    };
    let addresses: Vec<String> = hosts
        .addresses
        .iter()
        .map(|a| format!("{a}:2101"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let got = run_children(
        "wordcount",
        &addresses,
        Some(&hosts.namespaces),
        &dir.path().join("netns.txt"),
    );
    let local = run(
        "wordcount",
        &["--master".to_string(), "local[1]".to_string()],
    );
    assert_eq!(got, format!("{local:?}"));
}

// ---------------------------------------------------------------------------
// A cluster killed and restarted from its checkpoint.
// ---------------------------------------------------------------------------

const RESTART_CHILD: &str = "EMBER_CLUSTER_RESTART_CHILD";

/// One process of a cluster running a stateful word count over a directory
/// with `get_or_create`, checkpointing every batch; process 0 writes the
/// running counts after every batch. Runs until killed or until the
/// cluster breaks.
#[test]
fn restart_child_program() {
    let Some(spec) = child_spec(RESTART_CHILD) else {
        return;
    };
    let [hosts, process, input, ckpt, out] = &spec;
    let (input, out) = (
        std::path::PathBuf::from(input),
        std::path::PathBuf::from(out),
    );
    let args = cluster_args(hosts, process, 2, &[]);
    let dir = ckpt.to_string();
    let ssc = StreamingContext::get_or_create(ckpt, move || {
        let (conf, _) = StreamingConf::new("cluster-restart", millis(INTERVAL_MS))
            .ui(None)
            .stop_on_signals(false)
            .checkpoint_interval(millis(INTERVAL_MS))
            .parse_args(args.clone())?;
        let ssc = StreamingContext::new(conf)?;
        ssc.checkpoint(&dir);
        let (input, out) = (input.clone(), out.clone());
        ssc.define(move |s| running_word_counts_to_file(&s.text_file_stream(&input), out.clone()))?;
        Ok(ssc)
    })
    .unwrap();
    ssc.start().unwrap();
    // Ends with a cluster error when a peer is killed.
    let _ = ssc.await_termination();
}

/// Starts the three processes of the restartable cluster on fresh ports;
/// each one's log (ember's info lines: what it resumed from) goes to
/// `<out>.<start>-p<process>.log`, shown if the test fails.
fn start_restart_cluster(
    input: &Path,
    ckpt: &Path,
    out: &Path,
    start: usize,
) -> Vec<std::process::Child> {
    let hosts: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let list = hosts.join(",");
    (0..3)
        .map(|p| {
            child(
                "restart_child_program",
                RESTART_CHILD,
                format!(
                    "{list}|{p}|{}|{}|{}",
                    input.display(),
                    ckpt.display(),
                    out.display()
                ),
            )
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(out.with_extension(format!("{start}-p{p}.log"))).unwrap())
            .spawn()
            .unwrap()
        })
        .collect()
}

#[test]
fn a_cluster_killed_and_restarted_from_its_checkpoint_equals_an_uninterrupted_run() {
    if in_child() {
        return;
    }
    use std::time::{Duration, Instant};
    let (input, ckpt, outdir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let out = outdir.path().join("counts.txt");
    // 45 files of known words; the model is their plain count.
    let words = ["alpha", "beta", "gamma", "delta", "eps", "zeta"];
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let files: Vec<String> = (0..45usize)
        .map(|i| {
            let line: Vec<&str> = (0..(i * 7 % 11 + 1))
                .map(|j| words[(i * 5 + j * 3) % words.len()])
                .collect();
            for w in &line {
                *expected.entry(w.to_string()).or_default() += 1;
            }
            line.join(" ")
        })
        .collect();
    let drop_file = |i: usize| {
        let tmp = input.path().join(format!(".f{i}.tmp"));
        std::fs::write(&tmp, &files[i]).unwrap();
        std::fs::rename(&tmp, input.path().join(format!("f{i:03}"))).unwrap();
    };
    let await_first_output = |children: &mut Vec<std::process::Child>| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !out.exists() {
            for c in children.iter_mut() {
                assert!(
                    c.try_wait().unwrap().is_none(),
                    "a cluster process exited before its first batch"
                );
            }
            assert!(Instant::now() < deadline, "the cluster never ran a batch");
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    let mut children = start_restart_cluster(input.path(), ckpt.path(), &out, 0);
    // Files older than the first start are ignored (newFilesOnly): feed only
    // once the first batch has been written out.
    await_first_output(&mut children);
    let mut next = 0;
    for kill in 0..3 {
        for _ in 0..10 {
            drop_file(next);
            next += 1;
            std::thread::sleep(Duration::from_millis(30));
        }
        // A process dies; the others stop with a cluster error on their own.
        let victim = [1, 2, 0][kill];
        children[victim].kill().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        for c in children.iter_mut() {
            while c.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "a process outlived its killed peer by 20 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Files that arrive while the cluster is down are taken after it.
        drop_file(next);
        next += 1;
        std::fs::remove_file(&out).ok();
        children = start_restart_cluster(input.path(), ckpt.path(), &out, kill + 1);
        await_first_output(&mut children);
    }
    while next < files.len() {
        drop_file(next);
        next += 1;
        std::thread::sleep(Duration::from_millis(30));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_word_counts(&out) != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for c in children.iter_mut() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let got = read_word_counts(&out);
    if got != expected {
        // What each start resumed from, and what the directory held.
        let mut logs: Vec<_> = std::fs::read_dir(outdir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    l.contains(" WARN ")
                        || l.contains("ERROR")
                        || l.contains("resum")
                        || l.contains("starting")
                })
                .collect();
            eprintln!("== {}\n{}", log.display(), lines.join("\n"));
        }
        let listing: Vec<String> = std::fs::read_dir(ckpt.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        eprintln!("== checkpoint directory: {listing:?}");
    }
    assert_eq!(got, expected, "after three kills and restarts");
}

// ---------------------------------------------------------------------------
// Processes that build different graphs.
// ---------------------------------------------------------------------------

/// One process whose graph depends on its job name; writes how start ended.
#[test]
fn mismatch_child_program() {
    let Some(spec) = child_spec(MISMATCH_CHILD) else {
        return;
    };
    let [job, hosts, process, out] = &spec;
    let args = cluster_args(hosts, process, 1, &[]);
    let (conf, _) = StreamingConf::new("cluster-mismatch", millis(INTERVAL_MS))
        .ui(None)
        .stop_on_signals(false)
        .parse_args(args)
        .unwrap();
    let ssc = StreamingContext::new(conf).unwrap();
    let job = job.to_string();
    ssc.define(move |s| {
        let words = s.queue_stream(input(), true, None).map(|l| (l, 1u64));
        if job == "wordcount" {
            words.reduce_by_key(|a, b| a + b).foreach_rdd(|_, _| {});
        } else {
            words
                .update_state_by_key(|vs: Vec<u64>, old: Option<u64>| {
                    Some(old.unwrap_or(0) + vs.iter().sum::<u64>())
                })
                .foreach_rdd(|_, _| {});
        }
    })
    .unwrap();
    let started = ssc.start();
    if started.is_ok() {
        let _ = ssc.stop(false);
    }
    std::fs::write(out, format!("{started:?}")).unwrap();
}

#[test]
fn processes_that_build_different_graphs_are_refused_at_start() {
    if in_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    let children: Vec<_> = ["wordcount", "state"]
        .iter()
        .enumerate()
        .map(|(p, job)| {
            child(
                "mismatch_child_program",
                MISMATCH_CHILD,
                format!(
                    "{job}|{hosts}|{p}|{}",
                    dir.path().join(format!("p{p}")).display()
                ),
            )
            .spawn()
            .unwrap()
        })
        .collect();
    for (p, c) in children.into_iter().enumerate() {
        assert!(
            c.wait_with_output().unwrap().status.success(),
            "process {p}"
        );
        let ended = std::fs::read_to_string(dir.path().join(format!("p{p}"))).unwrap();
        assert!(
            ended.starts_with("Err(cluster: ") && ended.contains("built different graphs"),
            "process {p}: {ended}"
        );
        assert!(
            ended.contains("update_state_by_key"),
            "names the difference: {ended}"
        );
    }
}

// ---------------------------------------------------------------------------
// A graceful stop of one process stops the whole cluster at one batch.
// ---------------------------------------------------------------------------

const GRACEFUL_CHILD: &str = "EMBER_CLUSTER_GRACEFUL_CHILD";

/// One process of a 2 × 2 cluster counting an endless queue (every batch
/// the same 12 words spread over the workers) by key; process 0 appends
/// `<batch time> <words>` per batch (or panics at a given batch). SIGTERM
/// stops it gracefully.
#[test]
fn graceful_child_program() {
    let Some(spec) = child_spec(GRACEFUL_CHILD) else {
        return;
    };
    let [hosts, process, out, panic_at] = &spec;
    // With a number: the output panics at that batch (counted from 1).
    let panic_at: usize = panic_at.parse().unwrap_or(usize::MAX);
    let args = cluster_args(hosts, process, 2, &[]);
    let (conf, _) = StreamingConf::new("cluster-graceful", millis(INTERVAL_MS))
        .ui(None)
        .parse_args(args)
        .unwrap();
    let ssc = StreamingContext::new(conf).unwrap();
    let out = std::path::PathBuf::from(out);
    let log = out.with_extension("batches");
    ssc.define(move |s| {
        let log = log.clone();
        let mut seen = 0;
        let line = "a b c d e f".to_string();
        s.queue_stream(Queue::new(), false, Some(vec![line.clone(), line]))
            .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b)
            .foreach_rdd(move |batch, t| {
                use std::io::Write;
                seen += 1;
                assert!(
                    seen < panic_at,
                    "the program's output fails at batch {seen}"
                );
                let words: u64 = batch.iter().map(|(_, n)| n).sum();
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                writeln!(f, "{} {words}", t.milliseconds()).unwrap();
            });
    })
    .unwrap();
    ssc.start().unwrap();
    let first = ssc.first_batch_time().unwrap();
    let ended = ssc.await_batch(first).and_then(|()| {
        std::fs::write(out.with_extension("ready"), "").unwrap();
        ssc.await_termination()
    });
    std::fs::write(&out, format!("{ended:?}")).unwrap();
}

/// Starts the two processes of [`graceful_child_program`].
fn graceful_cluster(outs: &[std::path::PathBuf], panic_at: &str) -> Vec<std::process::Child> {
    two_processes(
        "graceful_child_program",
        GRACEFUL_CHILD,
        outs,
        &format!("|{panic_at}"),
    )
}

/// Starts `test` as the two processes of a cluster, each told its hosts,
/// its number, its output file and `more`.
fn two_processes(
    test: &str,
    env: &str,
    outs: &[std::path::PathBuf],
    more: &str,
) -> Vec<std::process::Child> {
    let hosts = format!("127.0.0.1:{},127.0.0.1:{}", free_port(), free_port());
    (0..2)
        .map(|p| {
            child(
                test,
                env,
                format!("{hosts}|{p}|{}{more}", outs[p].display()),
            )
            .spawn()
            .unwrap()
        })
        .collect()
}

/// Waits for the processes, each of which must exit cleanly, and returns
/// what each wrote to its output file.
fn endings(children: Vec<std::process::Child>, outs: &[std::path::PathBuf]) -> Vec<String> {
    for (p, c) in children.into_iter().enumerate() {
        assert!(
            c.wait_with_output().unwrap().status.success(),
            "process {p}"
        );
    }
    outs.iter()
        .map(|o| std::fs::read_to_string(o).unwrap())
        .collect()
}

#[test]
fn when_one_process_fails_the_others_stop_with_its_error() {
    if in_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outs: Vec<_> = (0..2).map(|p| dir.path().join(format!("p{p}"))).collect();
    let ended = endings(graceful_cluster(&outs, "3"), &outs);
    assert!(
        ended[0].starts_with("Err(a function of the streaming program panicked")
            && ended[0].contains("fails at batch 3"),
        "{}",
        ended[0]
    );
    assert!(
        ended[1].starts_with("Err(cluster: process 0 of the cluster failed")
            && ended[1].contains("fails at batch 3"),
        "{}",
        ended[1]
    );
}

#[test]
fn a_graceful_stop_of_one_process_stops_every_process_after_the_same_whole_batch() {
    if in_child() {
        return;
    }
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let outs: Vec<_> = (0..2).map(|p| dir.path().join(format!("p{p}"))).collect();
    let mut children = graceful_cluster(&outs, "-");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !outs.iter().all(|o| o.with_extension("ready").exists()) {
        assert!(Instant::now() < deadline, "the cluster never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(3 * INTERVAL_MS));
    // SIGTERM to process 1 only: process 0 follows it.
    let term = Command::new("kill")
        .args(["-TERM", &children[1].id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    for (p, c) in children.iter_mut().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "process {p} did not stop within 20 s of its peer's SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let ended = std::fs::read_to_string(&outs[p]).unwrap();
        assert_eq!(ended, "Ok(())", "process {p} ended cleanly");
    }
    // Every batch process 0 printed is whole: 12 words, none partial at
    // the end, batch times contiguous.
    let batches: Vec<(u64, u64)> = std::fs::read_to_string(outs[0].with_extension("batches"))
        .unwrap()
        .lines()
        .map(|l| {
            let (t, n) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), n.parse().unwrap())
        })
        .collect();
    assert!(batches.len() >= 3, "{batches:?}");
    for pair in batches.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + INTERVAL_MS, "{batches:?}");
    }
    assert!(batches.iter().all(|(_, n)| *n == 12), "{batches:?}");
}

// ---------------------------------------------------------------------------
// A program's own error, returned from an output on process 0 of a cluster,
// comes back from `await_termination` as itself.
// ---------------------------------------------------------------------------

const FALLIBLE_CHILD: &str = "EMBER_CLUSTER_FALLIBLE_CHILD";

/// The program's own error type.
#[derive(Debug)]
struct Rejected {
    batch: usize,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch number {} is rejected", self.batch)
    }
}

impl std::error::Error for Rejected {}

/// One process of a 2 x 2 cluster counting an endless queue; the output
/// returns `Rejected` at its third batch. Each process writes how it ended:
/// process 0 whether the error downcasts to `Rejected`, with the operation
/// and batch the error names.
#[test]
fn fallible_child_program() {
    let Some(spec) = child_spec(FALLIBLE_CHILD) else {
        return;
    };
    let [hosts, process, out] = &spec;
    let args = cluster_args(hosts, process, 2, &[]);
    let (conf, _) = StreamingConf::new("cluster-fallible", millis(INTERVAL_MS))
        .ui(None)
        .parse_args(args)
        .unwrap();
    let ssc = StreamingContext::new(conf).unwrap();
    ssc.define(move |s| {
        let mut seen = 0;
        let line = "a b c d e f".to_string();
        s.queue_stream(Queue::new(), false, Some(vec![line.clone(), line]))
            .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b)
            .try_foreach_rdd(move |_, _| {
                seen += 1;
                match seen {
                    3 => Err(Rejected { batch: seen }),
                    _ => Ok(()),
                }
            });
    })
    .unwrap();
    ssc.start().unwrap();
    let ended = ssc.await_termination();
    let text = match &ended {
        Err(e @ ember::Error::User { operator, time, .. }) => format!(
            "User {operator} at {} ms: {:?}",
            time.milliseconds(),
            e.downcast_ref::<Rejected>().map(|r| r.batch)
        ),
        other => format!("{other:?}"),
    };
    std::fs::write(out, text).unwrap();
}

#[test]
fn a_user_error_in_a_cluster_is_downcast_with_operator_and_batch() {
    if in_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outs: Vec<_> = (0..2).map(|p| dir.path().join(format!("p{p}"))).collect();
    let children = two_processes("fallible_child_program", FALLIBLE_CHILD, &outs, "");
    let ended = endings(children, &outs);
    // Process 0 gathers the batches, so its output failed: the error is the
    // program's own value, naming the operation and a batch time.
    assert!(
        ended[0].starts_with("User try_foreach_rdd at ") && ended[0].ends_with(" ms: Some(3)"),
        "{}",
        ended[0]
    );
    // The other process stops with the failure, by message.
    assert!(
        ended[1].starts_with("Err(cluster: process 0 of the cluster failed")
            && ended[1].contains("batch number 3 is rejected"),
        "{}",
        ended[1]
    );
}
