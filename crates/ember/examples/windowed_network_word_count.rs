//! WindowedNetworkWordCount: word counts over the last 30 seconds of text
//! from a TCP server, every 10 seconds — `reduceByKeyAndWindow` from Spark's
//! guide, computed incrementally with an inverse function.
//!
//! ```text
//! nc -lk 9999
//! cargo run --release --example windowed_network_word_count -- localhost 9999
//! ```
//!
//! With no host and port it reads an embedded text source. Options (after
//! the positional arguments; durations like `500ms`, `2s`, `1m`):
//!
//! - `--batch 1s`: the batch interval
//! - `--window 30s`, `--slide 10s`: multiples of the batch interval
//! - `--no-inverse`: re-reduce every window instead of adding and removing batches
//! - `--master local[N]` (default `local[2]`)

mod common;

use ember::prelude::*;

fn main() -> anyhow::Result<()> {
    common::init_logging();
    let mut batch = seconds(1);
    let mut window = seconds(30);
    let mut slide = seconds(10);
    let mut inverse = true;
    let mut rest = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> anyhow::Result<std::time::Duration> {
            let v = args
                .next()
                .ok_or_else(|| anyhow::anyhow!("{name} needs a duration, e.g. {name} 10s"))?;
            Ok(ember::parse_duration(&v)?)
        };
        match arg.as_str() {
            "--batch" => batch = value("--batch")?,
            "--window" => window = value("--window")?,
            "--slide" => slide = value("--slide")?,
            "--no-inverse" => inverse = false,
            _ => rest.push(arg),
        }
    }
    let conf = StreamingConf::new("WindowedNetworkWordCount", batch)
        .master("local[2]")?
        .with_env()?
        .batch_interval(batch);
    let (conf, positional) = conf.parse_args(rest)?;
    let (host, port) = common::host_port(
        &positional,
        "windowed_network_word_count [<host> <port>] [--batch 1s] [--window 30s] \
             [--slide 10s] [--no-inverse] [--master local[N]]",
    )?;

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
