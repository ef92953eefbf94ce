//! DirectKafkaWordCount: counts the words of messages read from Kafka topics
//! every 2 seconds — Spark's `DirectKafkaWordCount` example in ember.
//!
//! ```text
//! cargo run --release --features kafka --example direct_kafka_word_count -- \
//!     localhost:9092 my-group topic1,topic2
//! ```
//!
//! Arguments: the brokers (`host:port,...`), the consumer group, and a
//! comma-separated list of topics. Each batch reads, per partition, the
//! offsets that arrived since the last batch (new partitions from the
//! earliest offset) and prints the counts of its words. `--help` lists the
//! flags: `--master local[N]`, `--batch-interval 2s`,
//! `--max-rate-per-partition N` (records/s), `--backpressure`,
//! `--checkpoint DIR` (resume after a crash with exactly the same offset
//! ranges), ...

mod common;

use clap::Parser;
use ember::kafka::{create_direct_stream, KafkaParams, Subscribe};
use ember::prelude::*;
use ember::StreamingArgs;

/// Counts the words of the messages read from Kafka topics, every batch.
#[derive(Parser)]
#[command(after_help = "Example: direct_kafka_word_count localhost:9092 word-count words")]
struct Cli {
    /// The Kafka brokers, HOST:PORT,...
    brokers: String,
    /// The consumer group
    group_id: String,
    /// The topics, comma-separated
    topics: String,
    /// Where to checkpoint, to resume after a crash with the same offset ranges
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<String>,
    /// Records per second read from each partition at most
    #[arg(long, value_name = "RATE")]
    max_rate_per_partition: Option<f64>,
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let conf = StreamingConf::new("DirectKafkaWordCount", seconds(2))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let checkpoint = cli.checkpoint;
    let topics: Vec<String> = cli.topics.split(',').map(str::to_string).collect();
    let mut params = KafkaParams::new(cli.brokers.as_str()).group_id(cli.group_id.as_str());
    if let Some(r) = cli.max_rate_per_partition {
        params = params.max_rate_per_partition(r);
    }

    let create = || -> ember::Result<StreamingContext> {
        let ssc = StreamingContext::new(conf.clone())?;
        if let Some(dir) = &checkpoint {
            ssc.checkpoint(dir);
        }
        let (topics, params) = (topics.clone(), params.clone());
        ssc.define(move |s| {
            let messages =
                create_direct_stream(s, Subscribe::topics(topics.clone()), params.clone());
            let words = messages
                .records()
                .flat_map(|r| common::words(r.value_str().into_owned()));
            words.map(|w| (w, 1u64)).reduce_by_key(|a, b| a + b).print();
        })?;
        Ok(ssc)
    };
    let ssc = match &checkpoint {
        Some(dir) => StreamingContext::get_or_create(dir, create)?,
        None => create()?,
    };
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}
