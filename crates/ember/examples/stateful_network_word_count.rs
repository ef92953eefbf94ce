//! StatefulNetworkWordCount: running word counts across batches with
//! `map_with_state` — Spark's `StatefulNetworkWordCount` example in ember.
//!
//! ```text
//! nc -lk 9999
//! cargo run --release --example stateful_network_word_count -- localhost 9999
//! ```
//!
//! With no host and port it reads an embedded text source. The counts start
//! from an initial state of `(hello,1)` and `(world,1)`, as in Spark's
//! example; each batch prints the words it saw with their running totals.
//! State is checkpointed into a temporary directory (`--checkpoint DIR` to
//! choose one). `--help` lists the flags: `--master local[N]`,
//! `--batch-interval 1s`, ...

mod common;

use std::path::PathBuf;

use clap::Parser;
use ember::prelude::*;
use ember::{StateSpec, StreamingArgs};

/// Running word counts across batches of the text a TCP server sends.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: common::Server,
    /// Where state is checkpointed [default: a new temporary directory]
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let conf = StreamingConf::new("StatefulNetworkWordCount", seconds(1))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let checkpoint = cli.checkpoint.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ember-stateful-{}", std::process::id()))
    });
    let (host, port) = cli.server.address()?;

    let ssc = StreamingContext::new(conf)?;
    ssc.checkpoint(&checkpoint);
    ssc.define(move |s| {
        let word_dstream = s
            .socket_text_stream(&host, port)
            .flat_map(common::words)
            .map(|w| (w, 1u64));
        // Add this batch's count to the running total, and emit both.
        let spec = StateSpec::function(
            |word: &String, one: Option<u64>, state: &mut ember::State<u64>| {
                let sum = one.unwrap_or(0) + state.get().copied().unwrap_or(0);
                // Only a timing-out key refuses updates; this spec has no timeout.
                let _ = state.update(sum);
                (word.clone(), sum)
            },
        )
        .initial_state(vec![("hello".to_string(), 1), ("world".to_string(), 1)]);
        word_dstream.map_with_state(spec).print();
    })?;
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}
