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
//! While it runs, the Streaming page is at <http://127.0.0.1:4040/streaming>
//! and the current counts, as a chart and a table, at
//! <http://127.0.0.1:4040/dashboard/0> (the next free port if 4040 is taken;
//! the address is logged on stderr). Ctrl-C stops it gracefully.
//!
//! `--help` lists the flags: `--master local[N]` (default `local[2]`),
//! `--batch-interval 1s`, `--ui HOST:PORT` or `--no-ui`, `--max-rate N`,
//! `--backpressure`, ... Logs go to stderr (`RUST_LOG=debug` for more).

mod common;

use clap::Parser;
use ember::prelude::*;
use ember::StreamingArgs;

/// Counts the words of the text a TCP server sends, every batch.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: common::Server,
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let conf = StreamingConf::new("NetworkWordCount", seconds(1))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let (host, port) = cli.server.address()?;

    let ssc = StreamingContext::new(conf)?;
    ssc.define(move |s| {
        let lines = s.socket_text_stream(&host, port);
        let words = lines.flat_map(common::words);
        let word_counts = words.map(|w| (w, 1u64)).reduce_by_key(|a, b| a + b);
        word_counts.print();
        word_counts.to_dashboard("NetworkWordCount: word counts");
    })?;
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}
