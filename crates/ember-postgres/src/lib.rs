//! # ember-postgres
//!
//! PostgreSQL as an exactly-once output of [ember](https://docs.rs/ember-streaming)
//! streams, on the synchronous [`postgres`] client.
//!
//! Spark Streaming has no JDBC sink for DStreams: programs write one in
//! `foreachRDD`, with a transaction per batch and a table of written
//! batches. This crate is that pattern as an output operation:
//!
//! - [`PostgresSink`] says where: a connection string, a table, its columns,
//!   and [`upsert`](PostgresSink::upsert) (replace rows by key, e.g. running
//!   counts) or [`append`](PostgresSink::append) (insert every record).
//! - [`PostgresExt::save_to_postgres`] writes each batch in **one
//!   transaction** together with the batch's row in a progress table
//!   (`ember_sink_progress`: sink name, batch time, when, optional source
//!   offsets). A batch is in the table completely or not at all; a batch
//!   re-run after a recovery is skipped (append) or written again with the
//!   same result (upsert). With a replayable source the table holds every
//!   batch exactly once.
//! - A lost connection is retried with exponential backoff, the whole batch
//!   again; a mistake (missing table or column, type mismatch, bad SQL)
//!   stops the context at once with a message saying what to fix.
//! - Rows go in as multi-row `INSERT ... SELECT FROM unnest($1, $2, ..)`
//!   statements: one array parameter per column, 1000 rows per statement
//!   by default, prepared once per connection.
//! - [`ToRow`] turns records into rows: tuples of up to four values work as
//!   they are, `u64` counts included (written to `BIGINT` with a range check).
//!
//! ```no_run
//! use ember_core::{seconds, StreamingConf, StreamingContext};
//! use ember_postgres::{PostgresExt, PostgresSink};
//!
//! let conf = StreamingConf::new("NetworkWordCountToPostgres", seconds(1));
//! let ssc = StreamingContext::new(conf)?;
//! ssc.define(|s| {
//!     let sink = PostgresSink::upsert(
//!         "postgres://ember@localhost:5432/analytics",
//!         "word_counts",
//!         &["word", "count"],
//!         &["word"],
//!     )
//!     .create_table_sql(
//!         "CREATE TABLE IF NOT EXISTS word_counts (word TEXT PRIMARY KEY, count BIGINT NOT NULL)",
//!     );
//!     s.socket_text_stream("localhost", 9999)
//!         .flat_map(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
//!         .map(|word| (word, 1u64))
//!         .update_state_by_key(|new: Vec<u64>, total: Option<u64>| {
//!             Some(total.unwrap_or(0) + new.iter().sum::<u64>())
//!         })
//!         .save_to_postgres(sink);
//! })?;
//! ssc.start()?;
//! ssc.await_termination()?;
//! # Ok::<(), ember_core::Error>(())
//! ```
//!
//! | item | what |
//! |---|---|
//! | [`PostgresSink`] | table, columns, mode, sink name, DDL, retries |
//! | [`PostgresExt`] | `save_to_postgres`, `save_to_postgres_with` (source offsets in the progress row) |
//! | [`ToRow`], [`SqlValue`], [`Row`], [`Sql`] | records as rows |
//! | [`Committed`] | the newest batch a sink committed, to resume a source from |
//! | [`Error`] | what [`PostgresSink::last_committed`] can fail with |
//! | [`postgres`] | the rust-postgres client, re-exported |
//!
//! The sink connects without TLS (`sslmode=disable` or `prefer`). It is
//! tested with PostgreSQL 15 and uses nothing newer than 9.5 (`ON CONFLICT`).

mod error;
mod output;
mod row;
mod sink;
mod writer;

/// The rust-postgres client the sink uses, for [`ToSql`](postgres::types::ToSql)
/// impls of your own types and for reading tables back.
pub use postgres;

pub use error::{Error, Result};
pub use output::PostgresExt;
pub use row::{Row, Sql, SqlValue, ToRow};
pub use sink::{Committed, PostgresSink, DEFAULT_PROGRESS_TABLE};
