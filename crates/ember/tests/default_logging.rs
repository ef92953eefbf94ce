//! A user's program with no logging setup of its own still shows ember's
//! warnings and the web UI's address on stderr: the context installs its
//! subscriber at start; and an error its `main` returns reads as a
//! message. The program runs in a child process (this test binary again),
//! since a subscriber is global to a process.

use std::process::Command;
use std::time::Duration;

use ember::prelude::*;

const CHILD: &str = "EMBER_DEFAULT_LOGGING_CHILD";

/// The user's program: a socket stream pointed at a closed port.
fn program(port: u16, logging: bool) {
    let conf = StreamingConf::new("user", millis(200))
        .master("local[1]")
        .unwrap()
        .ui(Some("127.0.0.1:0"))
        .default_logging(logging);
    let ssc = StreamingContext::new(conf).unwrap();
    ssc.define(move |s| s.socket_text_stream("127.0.0.1", port).print())
        .unwrap();
    ssc.start().unwrap();
    // Long enough for a failed connection and its retry message.
    let _ = ssc.await_termination_or_timeout(Duration::from_millis(1500));
    ssc.stop(false).unwrap();
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
    // dropped: nothing listens there any more
}

fn run_child(logging: bool) -> String {
    let port = closed_port();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_program", "--nocapture"])
        .env(CHILD, format!("{port} {logging}"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The user's `main`, whose graph cannot run: a window that is not a
/// multiple of the batch interval.
fn invalid_main() -> Result<(), ember::Error> {
    let conf = StreamingConf::new("user", millis(200))
        .master("local[1]")?
        .ui(None);
    let ssc = StreamingContext::new(conf)?;
    let queue: Queue<u64> = Queue::new();
    ssc.define(move |s| {
        s.queue_stream(queue.clone(), true, None)
            .window(millis(300), millis(200))
            .print()
    })?;
    ssc.start()?;
    ssc.stop(false)
}

#[test]
fn child_program() {
    // Only does something when started by the tests below.
    match std::env::var(CHILD).as_deref() {
        Ok("invalid") => {
            // What Rust prints when `main` returns `Err(e)`.
            if let Err(e) = invalid_main() {
                eprintln!("Error: {e:?}");
            }
        }
        Ok(args) => {
            let (port, logging) = args.split_once(' ').unwrap();
            program(port.parse().unwrap(), logging == "true");
        }
        Err(_) => {}
    }
}

#[test]
fn an_error_returned_from_main_reads_as_a_message() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_program", "--nocapture"])
        .env(CHILD, "invalid")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Error: invalid DStream graph: "),
        "{stderr}"
    );
    assert!(stderr.contains("300 ms"), "names the window: {stderr}");
    assert!(!stderr.contains("InvalidGraph("), "{stderr}");
}

#[test]
fn a_program_without_logging_setup_shows_warnings_and_the_ui_address() {
    let stderr = run_child(true);
    assert!(
        stderr.contains("Streaming UI at http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("WARN"), "{stderr}");
    assert!(stderr.contains("socket_text_stream(127.0.0.1:"), "{stderr}");
}

#[test]
fn default_logging_can_be_turned_off() {
    let stderr = run_child(false);
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains("Streaming UI at"), "{stderr}");
}
