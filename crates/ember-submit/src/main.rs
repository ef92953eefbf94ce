//! `ember-submit`: runs an ember program as a cluster of processes on this
//! machine, in the spirit of `spark-submit`.
//!
//! ```text
//! ember-submit --processes 3 --workers 2 -- target/release/examples/network_word_count localhost 9999
//! ```
//!
//! It picks a free loopback port per process, starts the program once per
//! process with `EMBER_MASTER=cluster`, `EMBER_HOSTS`, `EMBER_PROCESS` and
//! `EMBER_WORKERS` set (read by `StreamingConf::with_env`), passes process
//! 0's standard output through untouched (that is where `print()` writes),
//! prefixes every other line with `[pN]` on stderr, and supervises: when a
//! process fails, the others are stopped and its exit status is returned;
//! Ctrl-C or SIGTERM is passed on to every process (a graceful stop), and a
//! second one kills them.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs an ember program as a cluster of processes on this machine.
#[derive(clap::Parser, Debug)]
#[command(
    name = "ember-submit",
    after_help = "Example: ember-submit --processes 3 --workers 2 -- \
                  target/release/examples/network_word_count localhost 9999"
)]
struct Settings {
    /// Processes to start
    #[arg(long, value_name = "N", default_value = "2", value_parser = at_least_one)]
    processes: usize,
    /// The address every process listens on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    host: String,
    // ember's own --workers flag, checked as the processes check it and
    // passed to each as EMBER_WORKERS; 1 when not given.
    #[command(flatten)]
    workers: ember_core::cli::Workers,
    /// The program and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    program: Vec<String>,
}

/// A count of at least one.
fn at_least_one(value: &str) -> Result<usize, String> {
    value
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("`{value}` is not a number ≥ 1"))
}

/// Free ports on `host`, one per process.
fn free_ports(host: &str, n: usize) -> Result<Vec<u16>, String> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind((host, 0)))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find free ports on {host}: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

/// Copies `from` line by line to stderr with `prefix`, on a thread of its own.
fn prefix_lines(from: impl Read + Send + 'static, prefix: String) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{prefix}{line}");
        }
    })
}

fn signal_all(children: &[Child], signal: i32) {
    for c in children {
        // SAFETY: sending a signal to a child process we started.
        unsafe {
            libc::kill(c.id() as i32, signal);
        }
    }
}

fn main() -> ExitCode {
    // --help exits 0; a usage mistake exits 2, naming it.
    let settings = <Settings as clap::Parser>::parse();
    let workers = settings.workers.workers.unwrap_or(1);
    let ports = match free_ports(&settings.host, settings.processes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ember-submit: {e}");
            return ExitCode::from(1);
        }
    };
    let hosts: Vec<String> = ports
        .iter()
        .map(|p| format!("{}:{p}", settings.host))
        .collect();
    let hosts = hosts.join(",");
    eprintln!(
        "ember-submit: {} processes × {} workers on {hosts}",
        settings.processes, workers
    );
    let signals = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let count = signals.clone();
        // SAFETY: the handler only increments an atomic counter.
        let registered = unsafe {
            signal_hook::low_level::register(sig, move || {
                count.fetch_add(1, Ordering::SeqCst);
            })
        };
        if let Err(e) = registered {
            eprintln!("ember-submit: cannot watch signals: {e}");
        }
    }
    let mut children = Vec::new();
    let mut relays = Vec::new();
    for p in 0..settings.processes {
        let mut cmd = Command::new(&settings.program[0]);
        cmd.args(&settings.program[1..])
            .env("EMBER_MASTER", "cluster")
            .env("EMBER_HOSTS", &hosts)
            .env("EMBER_PROCESS", p.to_string())
            .env("EMBER_WORKERS", workers.to_string())
            .stderr(Stdio::piped())
            .stdout(if p == 0 {
                Stdio::inherit()
            } else {
                Stdio::piped()
            });
        // The children take Ctrl-C from us, not from the terminal.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        match cmd.spawn() {
            Ok(mut child) => {
                if let Some(err) = child.stderr.take() {
                    relays.push(prefix_lines(err, format!("[p{p}] ")));
                }
                if let Some(out) = child.stdout.take() {
                    relays.push(prefix_lines(out, format!("[p{p} stdout] ")));
                }
                children.push(child);
            }
            Err(e) => {
                eprintln!("ember-submit: cannot start {}: {e}", settings.program[0]);
                signal_all(&children, libc::SIGKILL);
                return ExitCode::from(1);
            }
        }
    }
    let mut status: Vec<Option<i32>> = vec![None; children.len()];
    let mut forwarded = 0;
    let mut failure: Option<(usize, i32)> = None;
    let mut stop_deadline: Option<Instant> = None;
    loop {
        let mut failed_now = false;
        for (i, c) in children.iter_mut().enumerate() {
            if status[i].is_none() {
                if let Ok(Some(s)) = c.try_wait() {
                    let code = s.code().unwrap_or(128 + 9);
                    status[i] = Some(code);
                    if code != 0 && failure.is_none() && forwarded == 0 {
                        eprintln!("ember-submit: process {i} exited with {s}; stopping the others");
                        failure = Some((i, code));
                        failed_now = true;
                    }
                }
            }
        }
        if failed_now {
            signal_all(&children, libc::SIGTERM);
            stop_deadline = Some(Instant::now() + Duration::from_secs(10));
        }
        if status.iter().all(Option::is_some) {
            break;
        }
        let seen = signals.load(Ordering::SeqCst);
        if seen > forwarded {
            if forwarded == 0 {
                eprintln!("ember-submit: stopping every process gracefully (again to kill)");
                signal_all(&children, libc::SIGTERM);
            } else {
                signal_all(&children, libc::SIGKILL);
            }
            forwarded = seen;
        }
        if stop_deadline.is_some_and(|d| Instant::now() > d) {
            signal_all(&children, libc::SIGKILL);
            stop_deadline = None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The last lines a process wrote before it exited are still passing
    // through the relays: let them out (a grandchild holding a pipe open
    // is not waited for past a moment).
    let until = Instant::now() + Duration::from_secs(2);
    while relays.iter().any(|r| !r.is_finished()) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let code = match failure {
        Some((_, code)) => code,
        None => status
            .iter()
            .flatten()
            .copied()
            .find(|c| *c != 0)
            .unwrap_or(0),
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
