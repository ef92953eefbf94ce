//! QueueStream: feeds batches through a queue and counts the records by
//! their last digit — Spark's `QueueStream` example in ember.
//!
//! ```text
//! cargo run --release --example queue_stream
//! ```
//!
//! A thread pushes a batch of the numbers 1..=1000 into the queue every
//! second; each batch prints the count of numbers per `n % 10`. The example
//! stops by itself after a few batches. `--help` lists the flags.

use clap::Parser;
use ember::prelude::*;
use ember::StreamingArgs;

/// Counts numbers fed through a queue by their last digit, for five batches.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let conf = StreamingConf::new("QueueStream", seconds(1))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let ssc = StreamingContext::new(conf)?;

    let queue: Queue<u64> = Queue::new();
    let input = queue.clone();
    ssc.define(move |s| {
        let numbers = s.queue_stream(input.clone(), true, None);
        let reduced = numbers.map(|n| (n % 10, 1u64)).reduce_by_key(|a, b| a + b);
        reduced.print();
    })?;
    ssc.start()?;

    for _ in 0..5 {
        queue.push((1..=1000).collect());
        std::thread::sleep(seconds(1));
    }
    // Let the last pushed batch be processed, then stop.
    ssc.stop(true)?;
    Ok(())
}
