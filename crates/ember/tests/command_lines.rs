//! The examples' command lines, run as a user runs them: `--help` exits 0
//! with the usage, a mistake (an unknown flag, a port out of range, a
//! duration without a unit) is named with what is accepted, every example
//! tells where its web UI is, an error `main` returns reads as a message,
//! and the recoverable example says at start whether it resumed.
//!
//! The example binaries are built first with `cargo build --example` (a
//! no-op after `cargo test`, which builds them), so a stale binary is never
//! what is tested.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The examples these tests run (those needing no Kafka or PostgreSQL).
const EXAMPLES: &[&str] = &[
    "custom_receiver",
    "hdfs_word_count",
    "network_word_count",
    "queue_stream",
    "recoverable_network_word_count",
    "stateful_network_word_count",
    "windowed_network_word_count",
];

/// The directory of the example binaries, built once for all tests.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test runs as <target>/<profile>/deps/command_lines-<hash>.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let target = profile_dir.parent().unwrap();
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .args([
                "build",
                "--quiet",
                "-p",
                "ember-streaming",
                "--manifest-path",
            ])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", target);
        for name in EXAMPLES {
            cargo.args(["--example", name]);
        }
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        let out = cargo.output().unwrap();
        assert!(
            out.status.success(),
            "building the examples failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        profile_dir.join("examples")
    })
}

fn example(name: &str) -> Command {
    let mut cmd = Command::new(examples_dir().join(name));
    // What a user sees: ember's default log level, no colours to strip.
    cmd.env_remove("RUST_LOG").env("NO_COLOR", "1");
    cmd
}

/// Runs `name` with `args` to its end (these command lines end at once).
fn run(name: &str, args: &[&str]) -> (Output, String) {
    let out = example(name).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// Asserts that `name args` is refused with exit status 2 (clap's, for a
/// usage error) and a message holding every one of `expected`.
fn refused(name: &str, args: &[&str], expected: &[&str]) {
    let (out, stderr) = run(name, args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{name} {args:?} should be refused:\n{stderr}"
    );
    for e in expected {
        assert!(
            stderr.contains(e),
            "{name} {args:?}: missing {e:?} in:\n{stderr}"
        );
    }
}

#[test]
fn help_prints_the_usage_and_exits_0() {
    for name in EXAMPLES {
        let (out, stderr) = run(name, &["--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --help: {stderr}");
        assert!(stdout.contains(&format!("Usage: {name}")), "{stdout}");
        assert!(stdout.contains("--batch-interval <DURATION>"), "{stdout}");
        assert!(stdout.contains("--master <MASTER>"), "{stdout}");
    }
}

#[test]
fn an_unknown_flag_is_named() {
    refused("network_word_count", &["--bogus"], &["'--bogus'"]);
    refused(
        "queue_stream",
        &["--mastr", "local[2]"],
        &["'--mastr'", "--master"],
    );
}

#[test]
fn a_port_out_of_range_names_the_argument_and_the_range() {
    refused(
        "network_word_count",
        &["localhost", "99999"],
        &["'99999'", "[PORT]", "0..=65535"],
    );
    refused(
        "recoverable_network_word_count",
        &["localhost", "99999", "/tmp/c", "/tmp/o"],
        &["[PORT]", "0..=65535"],
    );
}

#[test]
fn a_duration_without_a_unit_is_refused_with_a_hint() {
    refused(
        "network_word_count",
        &["--batch-interval", "1"],
        &["--batch-interval", "`1` has no unit: write 1s or 1ms"],
    );
    refused(
        "windowed_network_word_count",
        &["--window", "30"],
        &["--window", "write 30s or 30ms"],
    );
    refused(
        "stateful_network_word_count",
        &["--checkpoint-interval=10"],
        &["--checkpoint-interval", "write 10s or 10ms"],
    );
}

#[test]
fn other_bad_values_say_what_is_accepted() {
    refused(
        "queue_stream",
        &["--master", "yarn"],
        &["--master", "local[N]"],
    );
    refused(
        "queue_stream",
        &["--ui-port", "99999"],
        &["--ui-port", "0 to 65535"],
    );
    refused("queue_stream", &["--workers", "0"], &["--workers", "≥ 1"]);
}

/// The windowed example takes `--batch-interval` as the others do; its old
/// `--batch` is an unknown flag now, with the right one suggested.
#[test]
fn the_windowed_example_takes_batch_interval() {
    refused(
        "windowed_network_word_count",
        &["--batch", "1s"],
        &["'--batch'", "--batch-interval"],
    );
    // Accepted: the interval reaches the graph, whose window (700 ms) is
    // then not a multiple of it, which `main` returns as a readable error.
    let (out, stderr) = run(
        "windowed_network_word_count",
        &[
            "--batch-interval",
            "500ms",
            "--window",
            "700ms",
            "--slide",
            "500ms",
            "--no-ui",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Error: invalid DStream graph: ") && stderr.contains("700 ms"),
        "{stderr}"
    );
    assert!(!stderr.contains("InvalidGraph("), "{stderr}");
}

/// A running example, its stderr lines arriving on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: String,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Waits (up to 60 s) for a stderr line holding `text`.
    fn wait_for(&mut self, text: &str) {
        let until = Instant::now() + Duration::from_secs(60);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if line.contains(text) {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {text:?} on stderr:\n{}", self.seen);
    }

    /// Kills the example (as `kill -9` does) and waits for it.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.seen
    }
}

#[test]
fn every_example_tells_where_its_ui_is_once() {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("in");
    std::fs::create_dir(&watched).unwrap();
    let watched = watched.to_str().unwrap();
    let checkpoint = dir.path().join("ckpt");
    let output = dir.path().join("out.txt");
    let server = text_server();
    let port = server.to_string();
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("network_word_count", vec![]),
        ("windowed_network_word_count", vec![]),
        ("stateful_network_word_count", vec![]),
        ("custom_receiver", vec![]),
        ("queue_stream", vec![]),
        ("hdfs_word_count", vec![watched]),
        (
            "recoverable_network_word_count",
            vec![
                "127.0.0.1",
                &port,
                checkpoint.to_str().unwrap(),
                output.to_str().unwrap(),
            ],
        ),
    ];
    for (name, args) in runs {
        let mut cmd = example(name);
        cmd.args(&args).args(["--ui", "127.0.0.1:0"]);
        // The default filter plus the per-batch line, to know a batch ran.
        cmd.env(
            "RUST_LOG",
            "warn,ember_core=info,ember_core::listener=debug",
        );
        let mut running = Running::start(cmd);
        running.wait_for("Streaming UI at http://127.0.0.1:");
        // The first batch's line: whatever start logs has been logged.
        running.wait_for("Total delay");
        let stderr = running.kill();
        assert_eq!(
            stderr.matches("Streaming UI at").count(),
            1,
            "{name}: one line for the UI:\n{stderr}"
        );
    }
}

/// A TCP server on loopback sending a line every 20 ms to each client;
/// returns its port.
fn text_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                while writeln!(stream, "to be or not to be").is_ok() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
    });
    port
}

/// Whether `dir` holds a complete checkpoint (one with its COMMIT marker).
fn has_complete_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|entries| entries.flatten().any(|e| e.path().join("COMMIT").exists()))
}

/// After `kill -9`, the recoverable example says at start, at the default
/// log level, that it resumed from a checkpoint and how many batches run
/// again; on its first run, that it starts from empty state and why.
#[test]
fn the_recoverable_example_says_whether_it_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("ckpt");
    let output = dir.path().join("out.txt");
    let port = text_server().to_string();
    let args = [
        "127.0.0.1",
        &port,
        checkpoint.to_str().unwrap(),
        output.to_str().unwrap(),
        "--batch-interval",
        "200ms",
        "--checkpoint-interval",
        "400ms",
        "--no-ui",
    ];

    let mut cmd = example("recoverable_network_word_count");
    cmd.args(args);
    let mut first = Running::start(cmd);
    first.wait_for("starting from empty state: nothing to resume from");
    let until = Instant::now() + Duration::from_secs(60);
    while !has_complete_checkpoint(&checkpoint) {
        assert!(Instant::now() < until, "no checkpoint:\n{}", first.seen);
        std::thread::sleep(Duration::from_millis(50));
    }
    let stderr = first.kill();
    assert!(!stderr.contains("resuming from"), "{stderr}");

    let mut cmd = example("recoverable_network_word_count");
    cmd.args(args);
    let mut second = Running::start(cmd);
    second.wait_for("resuming from the checkpoint at ");
    let stderr = second.kill();
    assert!(
        stderr.contains(&format!("in {}", checkpoint.display()))
            && stderr.contains("batch(es) since then run now"),
        "{stderr}"
    );
    assert!(!stderr.contains("starting from empty state"), "{stderr}");
    assert!(!stderr.contains("creating a new context"), "{stderr}");
}
