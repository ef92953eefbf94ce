//! # ember
//!
//! Apache Spark Streaming's model — DStreams, a live stream cut into
//! micro-batches and processed as small parallel jobs — in Rust, on
//! [timely dataflow](https://docs.rs/timely). Programs keep Spark's shape
//! and names (in snake_case): a [`StreamingContext`] with a master and a
//! batch interval, input DStreams, transformations, output operations,
//! `start()` and `await_termination()`.
//!
//! ```
//! use ember::prelude::*;
//! use std::sync::{Arc, Mutex};
//!
//! // A word count over two queued batches, on a manual clock.
//! let clock = ManualClock::new();
//! let conf = StreamingConf::new("QueueWordCount", seconds(1)).master("local[2]")?;
//! let ssc = StreamingContext::with_clock(conf, clock.clone())?;
//! let results = Arc::new(Mutex::new(Vec::new()));
//! let sink = results.clone();
//! ssc.define(move |s| {
//!     let batches = vec![vec!["to be or not to be".to_string()], vec!["be".to_string()]];
//!     let counts = s
//!         .queue_stream(batches, true, None)
//!         .flat_map(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
//!         .map(|word| (word, 1u64))
//!         .reduce_by_key(|a, b| a + b);
//!     let sink = sink.clone();
//!     counts.foreach_rdd(move |mut batch, time| {
//!         batch.sort();
//!         sink.lock().unwrap().push((time.milliseconds(), batch));
//!     });
//! })?;
//! ssc.start()?;
//! for t in [1000, 2000] {
//!     clock.advance(seconds(1));
//!     ssc.await_batch(Time::from_millis(t))?;
//! }
//! ssc.stop(false)?;
//! let results = results.lock().unwrap();
//! let w = |s: &str, n| (s.to_string(), n);
//! assert_eq!(results[0], (1000, vec![w("be", 2), w("not", 1), w("or", 1), w("to", 2)]));
//! assert_eq!(results[1], (2000, vec![w("be", 1)]));
//! # Ok::<(), ember::Error>(())
//! ```
//!
//! ## Map
//!
//! | item | Spark | what |
//! |---|---|---|
//! | [`StreamingContext`] | `StreamingContext` | master, batch interval, lifecycle |
//! | [`StreamingConf`] | `SparkConf` | settings from code, environment, `--master` flags |
//! | [`StreamingArgs`] | `spark-submit`'s options | ember's flags for a program's own clap parser (`--help`, named mistakes) |
//! | [`StreamingScope`] | the context inside a graph | sources: `socket_text_stream`, `text_file_stream`, `queue_stream` |
//! | [`DStream`] | `DStream`, `PairDStreamFunctions` | transformations, keyed operations, outputs |
//! | [`Show`], `#[derive(Show)]` | `toString` | how `print()` and `save_as_text_files` write records; the derive gives a case class's `Name(a,b)` |
//! | [`Data`], `ember::serde` | (the JVM's serialization) | what records must be: `Clone`, serde's `Serialize` and `Deserialize` (derives in the [`prelude`]; [without a serde line](porting#record-types)) |
//! | [`porting`] | | porting a Spark program: closures, record types, overloads, names |
//! | [`ManualClock`], [`testing`] | `ManualClock` | deterministic tests without sleeping |
//! | [`StreamingListener`], [`BatchInfo`] | `StreamingListener` | batch, receiver and output events |
//! | [`PidSettings`], [`RateControl`] | `backpressure.*`, `receiver.maxRate` | rate limits and backpressure |
//!
//! ## Porting from Spark
//!
//! Spark's names carry over in snake_case and are rustdoc aliases
//! (`foreachRDD` finds [`foreach_rdd`](DStream::foreach_rdd)). What Rust
//! adds is in [`porting`]: `move` closures inside `define` (and what rustc
//! says without them), cloning what several closures share, record types
//! (serde's derives, `#[derive(Show)]` for `print()`, [`ShowDisplay`]),
//! and the `_inv` suffix for Spark's inverse-function overloads.
//!
//! ## How a program runs
//!
//! [`StreamingContext::define`] takes a closure that builds the DStream graph;
//! it runs once on every worker when the context starts (`local[N]` is N
//! worker threads). Batch times are multiples of the batch interval in
//! milliseconds since the epoch; the batch at `t` holds what arrived in
//! `[t - interval, t)`.
//!
//! ## Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `cli` | yes | [`StreamingArgs`] and [`cli`]: ember's flags as a clap `Args` struct to flatten into a program's parser (clap) |
//! | `kafka` | no | `kafka::create_direct_stream` (offset ranges per batch, replayed exactly after recovery) and `kafka::KafkaSink` (rdkafka; builds librdkafka from source) |
//! | `postgres` | no | `postgres::PostgresSink` and `save_to_postgres`: each batch written in one transaction with its batch time, so re-run batches are not written twice (the `postgres` client) |
//! | `sql` | no | `sql::SqlStream::table`: each batch as a table for SQL (`sql::<T>(query)` gives a DStream of rows, `foreach_batch_df` a DataFrame with Spark's `show()`), joins with other streams and CSV/Parquet files (Apache DataFusion; Rust 1.94) |
//! | `ui` | yes | the web UI at `127.0.0.1:4040`: Streaming page, `to_dashboard` pages, JSON API, Prometheus `/metrics` (axum, tokio) |
//!
//! Without `ui`, programs run the same; `to_dashboard` keeps its results but
//! nothing serves them.

pub use ember_core::*;

/// Kafka: [`create_direct_stream`](kafka::create_direct_stream) and
/// [`save_to_kafka`](kafka::KafkaExt::save_to_kafka) (the `kafka` feature).
#[cfg(feature = "kafka")]
pub use ember_kafka as kafka;

/// PostgreSQL: [`PostgresSink`](postgres::PostgresSink) and
/// [`save_to_postgres`](postgres::PostgresExt::save_to_postgres) (the
/// `postgres` feature).
#[cfg(feature = "postgres")]
pub use ember_postgres as postgres;

/// Object stores for the directory streams: after
/// [`object_store::install()`](object_store::install),
/// `text_file_stream("s3://bucket/dir/")` and the other directory streams
/// read S3, Google Cloud Storage, Azure and HTTP stores (the `object-store`
/// feature).
#[cfg(feature = "object-store")]
pub use ember_object_store as object_store;

/// HTTP streaming receivers: [`json_lines`](http::json_lines) and
/// [`server_sent_events`](http::server_sent_events) for
/// `receiver_stream` (the `http-stream` feature).
#[cfg(feature = "http-stream")]
pub use ember_http as http;

/// Kinesis: [`create_stream`](kinesis::create_stream), Spark's
/// `KinesisInputDStream` with exactly-once recovery (the `kinesis` feature).
#[cfg(feature = "kinesis")]
pub use ember_kinesis as kinesis;

/// SQL on every batch: [`table`](sql::SqlStream::table) names a stream's
/// table, [`sql`](sql::Tables::sql) queries each batch, and
/// [`foreach_batch_df`](sql::Tables::foreach_batch_df) hands a DataFrame
/// ([`Frame`](sql::Frame)) with Spark's `show()` (the `sql` feature).
#[cfg(feature = "sql")]
pub use ember_sql as sql;

/// serde, which every record type implements (see [`Data`]).
///
/// Its derives are in the [`prelude`]. They expand to paths that start at
/// `::serde`, so a program whose `Cargo.toml` has no `serde` line points
/// them here with `#[serde(crate = "ember::serde")]` on each type; adding
/// `serde = { version = "1", features = ["derive"] }` instead makes that
/// attribute unnecessary.
///
/// ```
/// use ember::prelude::*;
///
/// #[derive(Clone, Serialize, Deserialize, Show)]
/// #[serde(crate = "ember::serde")]
/// struct Click {
///     user: String,
///     page: String,
/// }
///
/// fn is_printable_record<T: ember::Data + Show>() {}
/// is_printable_record::<Click>();
/// ```
pub use serde;

pub mod porting;

/// Everything a streaming program usually needs, including the derives a
/// record type wants: serde's `Serialize` and `Deserialize` (for a
/// program without serde in its `Cargo.toml`, see
/// [porting](crate::porting#record-types)) and [`Show`] for `print()`.
pub mod prelude {
    pub use ember_core::{
        millis, minutes, seconds, DStream, ManualClock, Queue, Show, StreamingConf,
        StreamingContext, StreamingScope, Time,
    };
    pub use serde::{Deserialize, Serialize};
}

#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
