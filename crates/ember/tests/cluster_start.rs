//! Cluster start-up under fire: one of three processes is killed at a
//! random moment of the start (connecting, exchanging hellos, building the
//! graph, first batches), and every survivor must end on its own with one
//! `Cluster` error and no timely panic on its stderr.
//!
//! A binary of its own, so that no other test's cluster runs meanwhile:
//! the survivors keep trying the killed process's address until their
//! timeout, and must not reach another test's process that happened to be
//! given the same free port.

use ember::prelude::*;
use ember_testkit::{child_command, child_spec, cluster_args, free_port};

const SLOW_START_CHILD: &str = "EMBER_CLUSTER_SLOW_START_CHILD";
const INTERVAL_MS: u64 = 100;

fn in_child() -> bool {
    std::env::var(SLOW_START_CHILD).is_ok()
}

/// A process whose graph takes a while to build (each definition call
/// sleeps), so that a kill at a random moment of the start lands in the
/// connection, the handshake, the build or the first batches.
#[test]
fn slow_start_child_program() {
    let Some(spec) = child_spec(SLOW_START_CHILD) else {
        return;
    };
    let [hosts, process, timeout, out] = &spec;
    let args = cluster_args(hosts, process, 2, &["--connect-timeout", timeout]);
    let (conf, _) = StreamingConf::new("cluster-slow-start", millis(INTERVAL_MS))
        .ui(None)
        .stop_on_signals(false)
        .parse_args(args)
        .unwrap();
    let ssc = StreamingContext::new(conf).unwrap();
    let ended = ssc
        .define(|s| {
            std::thread::sleep(std::time::Duration::from_millis(150));
            let queue = Queue::new();
            s.queue_stream(queue, true, Some(vec!["a b".to_string()]))
                .map(|l| (l, 1u64))
                .reduce_by_key(|a, b| a + b)
                .foreach_rdd(|_, _| {});
        })
        .and_then(|()| ssc.start())
        .and_then(|()| ssc.await_termination());
    std::fs::write(out, format!("{ended:?}")).unwrap();
    // End the process now: a timely thread still in a handshake with the
    // killed peer may panic later, and once this test function returns the
    // test harness has put the default panic hook back, which would print
    // it (a real program keeps ember's hook, which sends it to the log).
    std::process::exit(0);
}

#[test]
fn a_peer_killed_at_any_moment_of_the_start_ends_every_other_process_with_a_cluster_error() {
    use rand::{Rng, SeedableRng};
    use std::time::{Duration, Instant};
    if in_child() {
        return;
    }
    let timeout = Duration::from_secs(4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    for run in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let hosts: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let outs: Vec<std::path::PathBuf> = (0..3)
            .map(|p| dir.path().join(format!("p{p}.txt")))
            .collect();
        let errs: Vec<std::path::PathBuf> = (0..3)
            .map(|p| dir.path().join(format!("p{p}.err")))
            .collect();
        let mut children: Vec<std::process::Child> = (0..3)
            .map(|p| {
                child_command(
                    "slow_start_child_program",
                    SLOW_START_CHILD,
                    format!("{}|{p}|4s|{}", hosts.join(","), outs[p].display()),
                )
                .stderr(std::fs::File::create(&errs[p]).unwrap())
                .spawn()
                .unwrap()
            })
            .collect();
        // Somewhere from before connecting to the first batches.
        let at = Duration::from_millis(rng.gen_range(0..1500));
        let victim = run % 3;
        std::thread::sleep(at);
        children[victim].kill().unwrap();
        let _ = children[victim].wait();
        let killed = Instant::now();
        for (p, c) in children.iter_mut().enumerate() {
            if p == victim {
                continue;
            }
            let status = loop {
                if let Some(status) = c.try_wait().unwrap() {
                    break status;
                }
                if killed.elapsed() > timeout + Duration::from_secs(8) {
                    let _ = c.kill();
                    panic!(
                        "run {run} (process {victim} killed after {at:?}): process {p} still \
                         running {:?} later; stderr: {}",
                        killed.elapsed(),
                        std::fs::read_to_string(&errs[p]).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let ended = std::fs::read_to_string(&outs[p]).unwrap_or_default();
            let stderr = std::fs::read_to_string(&errs[p]).unwrap();
            assert!(
                status.success() && ended.contains("Err(cluster: "),
                "run {run} (process {victim} killed after {at:?}): process {p} ended {status} \
                 with {ended:?}; stderr: {stderr}"
            );
            assert!(
                !stderr.contains("panicked"),
                "run {run}: process {p} printed timely's panics: {stderr}"
            );
        }
    }
}
