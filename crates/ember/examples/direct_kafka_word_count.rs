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
//! earliest offset) and prints the counts of its words. Flags after the
//! arguments: `--master local[N]`, `--batch-interval 2s`, `--max-rate N`
//! (records/s per partition here), `--backpressure`, `--checkpoint DIR`
//! (resume after a crash with exactly the same offset ranges).

mod common;

use ember::kafka::{create_direct_stream, KafkaParams, Subscribe};
use ember::prelude::*;

fn main() -> anyhow::Result<()> {
    common::init_logging();
    let conf = StreamingConf::new("DirectKafkaWordCount", seconds(2))
        .master("local[2]")?
        .with_env()?;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let checkpoint = common::take_flag(&mut args, "--checkpoint");
    let per_partition = common::take_flag(&mut args, "--max-rate")
        .map(|r| r.parse::<f64>())
        .transpose()?;
    let (conf, args) = conf.parse_args(args)?;
    let [brokers, group, topics] = args.as_slice() else {
        anyhow::bail!(
            "usage: direct_kafka_word_count <brokers> <group-id> <topics> [--checkpoint DIR] \
             [--max-rate N] [--master local[N]] [--batch-interval 2s]\n  e.g. \
             direct_kafka_word_count localhost:9092 word-count words"
        );
    };
    let topics: Vec<String> = topics.split(',').map(str::to_string).collect();
    let mut params = KafkaParams::new(brokers.as_str()).group_id(group.as_str());
    if let Some(r) = per_partition {
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
    common::announce_ui(&ssc);
    ssc.await_termination()?;
    Ok(())
}
