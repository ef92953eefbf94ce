//! # ember-kafka
//!
//! Kafka for [ember](https://docs.rs/ember-streaming), on `rdkafka` (librdkafka built
//! from source, statically):
//!
//! - [`create_direct_stream`]: Spark's `KafkaUtils.createDirectStream`. When
//!   a batch closes, one worker decides its offset range `[from, until)` for
//!   every partition (bounded by the max rate per partition and by
//!   backpressure, split across partitions by lag); the workers then read
//!   exactly those ranges. With checkpointing, the ranges are logged and the
//!   positions checkpointed, so after a restart every batch is re-read with
//!   the same ranges: nothing read twice into different batches, nothing
//!   skipped. Offsets can also be committed back to Kafka once a batch's
//!   outputs are done.
//! - [`KafkaExt::save_to_kafka`]: writes a stream's records to a topic with
//!   an idempotent producer; a delivery that fails stops the context with
//!   the reason, never silently.
//!
//! ```no_run
//! use ember_core::{seconds, StreamingConf, StreamingContext};
//! use ember_kafka::{create_direct_stream, KafkaParams, Subscribe};
//!
//! let conf = StreamingConf::new("DirectKafkaWordCount", seconds(2));
//! let ssc = StreamingContext::new(conf)?;
//! ssc.define(|s| {
//!     let params = KafkaParams::new("localhost:9092").group_id("word-count");
//!     let stream = create_direct_stream(s, Subscribe::topics(["words"]), params);
//!     stream
//!         .records()
//!         .flat_map(|r| r.value_str().split(' ').map(str::to_string).collect::<Vec<_>>())
//!         .map(|w| (w, 1u64))
//!         .reduce_by_key(|a, b| a + b)
//!         .print();
//! })?;
//! ssc.start()?;
//! ssc.await_termination()?;
//! # Ok::<(), ember_core::Error>(())
//! ```

mod direct;
mod error;
mod params;
mod record;
mod sink;

pub use direct::{create_direct_stream, DirectKafkaStream};
pub use error::KafkaFailure;
pub use params::{KafkaParams, Subscribe};
pub use record::{ConsumerRecord, OffsetRange};
pub use sink::{KafkaExt, KafkaSink};
