//! `save_to_postgres`: the sink as an output operation of a DStream.

use ember_core::{DStream, Data, Time};

use crate::row::ToRow;
use crate::sink::PostgresSink;
use crate::writer::Writer;

/// PostgreSQL outputs on DStreams: import it to call
/// [`save_to_postgres`](Self::save_to_postgres) on a `DStream` whose
/// records are [`ToRow`] (e.g. `(String, u64)`).
///
/// ```
/// use ember_core::DStream;
/// use ember_postgres::{PostgresExt, PostgresSink};
///
/// fn write_counts(counts: &DStream<'_, (String, u64)>, conn: &str) {
///     counts.save_to_postgres(PostgresSink::upsert(conn, "word_counts", &["word", "count"], &["word"]));
/// }
/// ```
pub trait PostgresExt<T> {
    /// Writes every batch to the sink's table in one transaction, together
    /// with the batch's row in the progress table: a batch is in the table
    /// completely or not at all, and counts as done only once `COMMIT`
    /// succeeded. An output operation, on top of
    /// [`foreach_rdd`](DStream::foreach_rdd): the batch is gathered on one
    /// worker, which keeps one connection, opened at the first batch.
    ///
    /// Exactly once: in append mode a batch already recorded is skipped; in
    /// upsert mode it is written again, which replaces rows with the same
    /// content. With a replayable source (Kafka's direct stream, checkpoints)
    /// the table therefore holds every batch once after any failure.
    ///
    /// A lost connection (server restarted, network) is retried: the whole
    /// batch transaction again, on a new connection, after a pause that
    /// doubles from 100 ms up to 5 s, for up to 60 s (see
    /// [`PostgresSink::backoff`] and [`retry_for`](PostgresSink::retry_for));
    /// each retry is logged as a warning naming the sink. While it retries,
    /// later batches wait, and so does a stop.
    ///
    /// ```no_run
    /// use ember_core::{seconds, StreamingConf, StreamingContext};
    /// use ember_postgres::{PostgresExt, PostgresSink};
    ///
    /// let conf = StreamingConf::new("WordCountToPostgres", seconds(1));
    /// let ssc = StreamingContext::new(conf)?;
    /// ssc.define(|s| {
    ///     let sink = PostgresSink::upsert(
    ///         "postgres://ember@localhost/analytics",
    ///         "word_counts",
    ///         &["word", "count"],
    ///         &["word"],
    ///     );
    ///     s.socket_text_stream("localhost", 9999)
    ///         .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
    ///         .map(|w| (w, 1u64))
    ///         .update_state_by_key(|new: Vec<u64>, old: Option<u64>| {
    ///             Some(old.unwrap_or(0) + new.iter().sum::<u64>())
    ///         })
    ///         .save_to_postgres(sink);
    /// })?;
    /// ssc.start()?;
    /// ssc.await_termination()?;
    /// # Ok::<(), ember_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The context stops with an error naming the sink, the statement and
    /// what to fix when the server refuses a batch (a missing table or
    /// column, a type mismatch, a value out of range, a constraint broken),
    /// or when it stays unreachable for longer than the retries allow.
    /// A sink defined wrongly (no columns, a key not among the columns, an
    /// unparsable connection string) fails `start()`.
    fn save_to_postgres(&self, sink: PostgresSink);

    /// [`save_to_postgres`](Self::save_to_postgres), also storing
    /// `offsets(batch, time)` (JSON text, by convention) in the batch's
    /// progress row, in the same transaction: e.g. the Kafka offset ranges
    /// the batch was read from, to resume from after a restart (see
    /// [`PostgresSink::last_committed`]). Called for every batch, empty ones
    /// too.
    ///
    /// ```no_run
    /// use ember_core::{seconds, StreamingConf, StreamingContext};
    /// use ember_postgres::{PostgresExt, PostgresSink};
    ///
    /// let ssc = StreamingContext::new(StreamingConf::new("Events", seconds(1)))?;
    /// ssc.define(|s| {
    ///     let sink = PostgresSink::append("postgres://ember@localhost/analytics", "events", &["line"]);
    ///     s.socket_text_stream("localhost", 9999)
    ///         .map(|line| (line,))
    ///         .save_to_postgres_with(sink, |batch, _time| Some(format!("{{\"records\": {}}}", batch.len())));
    /// })?;
    /// # Ok::<(), ember_core::Error>(())
    /// ```
    fn save_to_postgres_with(
        &self,
        sink: PostgresSink,
        offsets: impl FnMut(&[T], Time) -> Option<String> + 'static,
    );
}

impl<'s, T: ToRow + Data> PostgresExt<T> for DStream<'s, T> {
    fn save_to_postgres(&self, sink: PostgresSink) {
        self.save_to_postgres_with(sink, |_, _| None);
    }

    fn save_to_postgres_with(
        &self,
        sink: PostgresSink,
        mut offsets: impl FnMut(&[T], Time) -> Option<String> + 'static,
    ) {
        // A sink defined wrongly fails `start()` with this error.
        if let Err(e) = sink.validate() {
            self.fail_definition(e.into());
            return;
        }
        let mut writer = Writer::new(sink);
        self.try_foreach_rdd(move |batch, time| {
            let offsets = offsets(&batch, time);
            writer
                .write_batch(&batch, time, offsets.as_deref())
                .map_err(ember_core::Error::from)
        });
    }
}
