//! Pieces the examples share (each example uses some of them).
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

/// Starts a TCP server on a free loopback port that sends a few lines of
/// text every second to whoever connects, and returns the port: the
/// examples' embedded source when no host and port are given.
pub(crate) fn embedded_source() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        let text = [
            "to be or not to be that is the question",
            "whether tis nobler in the mind to suffer",
            "the slings and arrows of outrageous fortune",
            "or to take arms against a sea of troubles",
        ];
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                for i in 0usize.. {
                    if writeln!(stream, "{}", text[i % text.len()]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
    });
    Ok(port)
}

/// Logs to stderr, quiet unless `RUST_LOG` asks for more.
pub(crate) fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
}

/// Splits a line into words on single spaces, as Spark's examples do.
pub(crate) fn words(line: String) -> Vec<String> {
    line.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `<host> <port>` positional arguments, or with none the embedded
/// source on loopback; anything else fails with `usage`.
pub(crate) fn host_port(args: &[String], usage: &str) -> anyhow::Result<(String, u16)> {
    match args {
        [host, port] => Ok((host.clone(), port.parse::<u16>()?)),
        [] => {
            let port = embedded_source()?;
            eprintln!(
                "no <host> <port> given: reading an embedded text source on 127.0.0.1:{port}"
            );
            Ok(("127.0.0.1".to_string(), port))
        }
        _ => anyhow::bail!("usage: {usage}"),
    }
}

/// Tells on stderr where the web UI is, when it runs.
pub(crate) fn announce_ui(ssc: &ember::StreamingContext) {
    if let Some(url) = ssc.ui_url() {
        eprintln!("Streaming UI at {url}/streaming");
    }
}

/// Removes `--flag VALUE` from `args` and returns the value.
pub(crate) fn take_flag(args: &mut Vec<String>, flag: &str) -> Option<String> {
    let i = args.iter().position(|a| a == flag)?;
    if i + 1 >= args.len() {
        return None;
    }
    let value = args.remove(i + 1);
    args.remove(i);
    Some(value)
}
