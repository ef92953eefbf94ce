//! WindowedNetworkWordCount: word counts over the last 30 seconds of text
//! from a TCP server, every 10 seconds — `reduceByKeyAndWindow` from Spark's
//! guide, computed incrementally with an inverse function.
//!
//! ```text
//! nc -lk 9999
//! cargo run --release --example windowed_network_word_count -- localhost 9999
//! ```
//!
//! With no host and port it reads an embedded text source. Options
//! (durations with a unit: `500ms`, `2s`, `1m`; `--help` lists them all):
//!
//! - `--batch-interval 1s`: the batch interval
//! - `--window 30s`, `--slide 10s`: multiples of the batch interval
//! - `--no-inverse`: re-reduce every window instead of adding and removing batches
//! - `--master local[N]` (default `local[2]`)

mod common;

use std::time::Duration;

use clap::Parser;
use ember::prelude::*;
use ember::StreamingArgs;

/// Word counts over a sliding window of the text a TCP server sends.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    server: common::Server,
    /// How much text each count covers: a multiple of the batch interval
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = ember::cli::duration)]
    window: Duration,
    /// How often the counts are given: a multiple of the batch interval
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = ember::cli::duration)]
    slide: Duration,
    /// Re-reduce every window instead of adding and removing batches
    #[arg(long)]
    no_inverse: bool,
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (window, slide, inverse) = (cli.window, cli.slide, !cli.no_inverse);
    let conf = StreamingConf::new("WindowedNetworkWordCount", seconds(1))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let (host, port) = cli.server.address()?;

    let ssc = StreamingContext::new(conf)?;
    ssc.define(move |s| {
        let pairs = s
            .socket_text_stream(&host, port)
            .flat_map(common::words)
            .map(|w| (w, 1u64));
        let counts = if inverse {
            // Incremental: add the batch entering, subtract the one leaving,
            // and forget words whose count fell to zero.
            pairs.reduce_by_key_and_window_inv_filter(
                |a, b| a + b,
                |a, b| a - b,
                |(_, n)| *n > 0,
                window,
                slide,
            )
        } else {
            pairs.reduce_by_key_and_window(|a, b| a + b, window, slide)
        };
        counts.print();
    })?;
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}
