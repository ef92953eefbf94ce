//! KafkaToPostgres: running word counts from Kafka into a PostgreSQL table,
//! exactly once — kill it at any moment (even `kill -9`), start it again
//! with the same arguments, and the table ends up with the counts an
//! uninterrupted run would give.
//!
//! ```text
//! cargo run --release --features kafka,postgres --example kafka_to_postgres -- \
//!     localhost:9092 words postgres://postgres@localhost/postgres /tmp/ckpt
//! ```
//!
//! Arguments: the brokers, a comma-separated list of topics, a PostgreSQL
//! connection string, and a checkpoint directory. Each batch reads the
//! offset ranges it planned, adds the words to running counts
//! (`update_state_by_key`), and upserts the counts of the words it saw
//! into `word_counts (word TEXT PRIMARY KEY, count BIGINT)` in one
//! transaction with the batch's row in `ember_sink_progress`. After a crash
//! `get_or_create` restores the counts and offsets from the last checkpoint
//! and runs the batches planned since with exactly the same offset ranges,
//! so every record is counted once. `--help` lists the flags: `--table
//! NAME`, `--master local[N]`, `--batch-interval 1s`,
//! `--max-rate-per-partition N` (records/s), `--backpressure`, ...

mod common;

use clap::Parser;
use ember::kafka::{create_direct_stream, KafkaParams, Subscribe};
use ember::postgres::{PostgresExt, PostgresSink};
use ember::prelude::*;
use ember::StreamingArgs;

/// Running word counts from Kafka into a PostgreSQL table, exactly once.
#[derive(Parser)]
#[command(after_help = "Example: kafka_to_postgres localhost:9092 words \
                  postgres://postgres@localhost/postgres /tmp/ckpt")]
struct Cli {
    /// The Kafka brokers, HOST:PORT,...
    brokers: String,
    /// The topics, comma-separated
    topics: String,
    /// The PostgreSQL connection string
    postgres: String,
    /// The checkpoint directory: give the same one to resume
    checkpoint: std::path::PathBuf,
    /// The table the counts are upserted into
    #[arg(long, value_name = "NAME", default_value = "word_counts")]
    table: String,
    /// Records per second read from each partition at most
    #[arg(long, value_name = "RATE")]
    max_rate_per_partition: Option<f64>,
    #[command(flatten)]
    ember: StreamingArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let conf = StreamingConf::new("KafkaToPostgres", seconds(1))
        .master("local[2]")?
        .with_env()?
        .with_args(&cli.ember);
    let table = cli.table;
    let topics: Vec<String> = cli.topics.split(',').map(str::to_string).collect();
    let mut params = KafkaParams::new(cli.brokers.as_str()).group_id("kafka-to-postgres");
    if let Some(r) = cli.max_rate_per_partition {
        params = params.max_rate_per_partition(r);
    }
    let postgres = cli.postgres;
    let checkpoint = cli.checkpoint;

    let ckpt = checkpoint.clone();
    let ssc = StreamingContext::get_or_create(&checkpoint, move || {
        let ssc = StreamingContext::new(conf.clone())?;
        ssc.checkpoint(&ckpt);
        ssc.define(move |s| {
            let sink = PostgresSink::upsert(
                postgres.as_str(),
                table.as_str(),
                &["word", "count"],
                &["word"],
            )
            .create_table_sql(format!(
                "CREATE TABLE IF NOT EXISTS {table} (word TEXT PRIMARY KEY, count BIGINT NOT NULL)"
            ));
            let words = create_direct_stream(s, Subscribe::topics(topics.clone()), params.clone())
                .records()
                .flat_map(|r| common::words(r.value_str().into_owned()))
                .map(|w| (w, 1u64));
            // Running totals; a batch writes the words it saw.
            let batch_words = words.reduce_by_key(|a, b| a + b);
            let totals = words.update_state_by_key(|new: Vec<u64>, total: Option<u64>| {
                Some(total.unwrap_or(0) + new.iter().sum::<u64>())
            });
            totals
                .join(&batch_words)
                .map(|(w, (total, _))| (w, total))
                .save_to_postgres(sink);
        })?;
        Ok(ssc)
    })?;
    ssc.start()?;
    ssc.await_termination()?;
    Ok(())
}
