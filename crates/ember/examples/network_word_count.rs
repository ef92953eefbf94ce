//! NetworkWordCount: counts words in UTF-8 text received from a TCP server
//! every second — Spark's `NetworkWordCount` example in ember.
//!
//! Run a server first, then the example, and type words into the server:
//!
//! ```text
//! nc -lk 9999
//! cargo run --release --example network_word_count -- localhost 9999
//! ```
//!
//! With no host and port it starts its own text source on a loopback port,
//! so one command shows it working:
//!
//! ```text
//! cargo run --release --example network_word_count
//! ```
//!
//! Flags after the positional arguments: `--master local[N]` (default
//! `local[2]`), `--batch-interval 1s`. Logs go to stderr (`RUST_LOG=info`
//! for more).

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use ember::prelude::*;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();

    let conf = StreamingConf::new("NetworkWordCount", seconds(1))
        .master("local[2]")?
        .with_env()?;
    let (conf, args) = conf.parse_args(std::env::args().skip(1))?;
    let (host, port) = match args.as_slice() {
        [host, port] => (host.clone(), port.parse::<u16>()?),
        [] => {
            let port = embedded_source()?;
            eprintln!(
                "no <host> <port> given: reading an embedded text source on 127.0.0.1:{port}"
            );
            ("127.0.0.1".to_string(), port)
        }
        _ => anyhow::bail!(
            "usage: network_word_count [<host> <port>] [--master local[N]] [--batch-interval 1s]"
        ),
    };

    let ssc = StreamingContext::new(conf)?;
    ssc.define(move |s| {
        let lines = s.socket_text_stream(&host, port);
        let words = lines.flat_map(|line| {
            line.split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let word_counts = words.map(|w| (w, 1u64)).reduce_by_key(|a, b| a + b);
        word_counts.print();
    })?;
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}

/// A TCP server on a free loopback port that sends a few lines of text each
/// second to whoever connects; returns the port.
fn embedded_source() -> anyhow::Result<u16> {
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
                    let line = text[i % text.len()];
                    if writeln!(stream, "{line}").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
    });
    Ok(port)
}
