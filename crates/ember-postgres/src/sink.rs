//! The sink's definition ([`PostgresSink`]): table, columns, keys, retries.
//! The output operation on DStreams is in `output.rs`, the writing in
//! `writer.rs`.

use std::fmt;
use std::time::Duration;

use ember_core::Time;

use crate::error::{Error, Result};

/// How a batch's rows go into the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `INSERT`; a batch already recorded in the progress table is skipped.
    Append,
    /// `INSERT ... ON CONFLICT (keys) DO UPDATE`; every batch is written.
    Upsert { keys: Vec<String> },
}

/// When and how long a batch is retried after a connection failure.
#[derive(Clone, Debug)]
pub(crate) struct Retry {
    pub(crate) max_retries: u32,
    pub(crate) initial: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) retry_for: Duration,
}

/// A PostgreSQL table as the output of a stream, written exactly once per
/// batch: see [`PostgresExt::save_to_postgres`](crate::PostgresExt::save_to_postgres).
///
/// Built with [`upsert`](Self::upsert) (keyed rows replaced in place, e.g.
/// running counts) or [`append`](Self::append) (every record a new row, e.g.
/// events), then adjusted with the builder methods.
///
/// Table and column names are taken literally, as the catalog stores them
/// (lower case for names created without quotes), and quoted in the SQL the
/// sink writes, so names like `user` or `order` work; a table may be
/// schema-qualified (`analytics.events`).
///
/// # Examples
///
/// ```
/// use ember_postgres::PostgresSink;
/// use std::time::Duration;
///
/// let sink = PostgresSink::upsert(
///     "postgres://ember@localhost:5432/analytics",
///     "word_counts",
///     &["word", "count"],
///     &["word"],
/// )
/// .create_table_sql("CREATE TABLE IF NOT EXISTS word_counts (word TEXT PRIMARY KEY, count BIGINT NOT NULL)")
/// .retry_for(Duration::from_secs(120));
/// assert_eq!(sink.name(), "word_counts");
/// ```
#[derive(Clone)]
pub struct PostgresSink {
    pub(crate) conn: String,
    pub(crate) table: String,
    pub(crate) columns: Vec<String>,
    pub(crate) mode: Mode,
    pub(crate) name: Option<String>,
    pub(crate) progress_table: String,
    pub(crate) create_table_sql: Option<String>,
    pub(crate) chunk_size: usize,
    pub(crate) retry: Retry,
}

/// The table of written batches: one row per sink and batch time.
///
/// ```
/// assert_eq!(ember_postgres::DEFAULT_PROGRESS_TABLE, "ember_sink_progress");
/// ```
pub const DEFAULT_PROGRESS_TABLE: &str = "ember_sink_progress";

impl PostgresSink {
    fn new(conn: String, table: String, columns: &[&str], mode: Mode) -> Self {
        PostgresSink {
            conn,
            table,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            mode,
            name: None,
            progress_table: DEFAULT_PROGRESS_TABLE.to_string(),
            create_table_sql: None,
            chunk_size: 1000,
            retry: Retry {
                max_retries: u32::MAX,
                initial: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                retry_for: Duration::from_secs(60),
            },
        }
    }

    /// Writes each record as a row of `columns`, replacing the row with the
    /// same `keys` if there is one: `INSERT INTO table (columns) ... ON
    /// CONFLICT (keys) DO UPDATE SET` every other column `= EXCLUDED.`column.
    ///
    /// The key columns need a `PRIMARY KEY` or `UNIQUE` constraint on exactly
    /// them. Within one batch, the last record with a key wins. Every batch
    /// is written, also one written before (replacing is idempotent), so a
    /// batch re-run after a recovery writes its current content.
    ///
    /// `conn` is a libpq connection string, as a URL
    /// (`postgres://user:password@host:5432/db`) or as `key=value` pairs
    /// (`host=localhost user=ember dbname=analytics`).
    ///
    /// ```
    /// use ember_postgres::PostgresSink;
    ///
    /// // INSERT INTO "word_counts" ("word", "count") ...
    /// //   ON CONFLICT ("word") DO UPDATE SET "count" = EXCLUDED."count"
    /// let sink = PostgresSink::upsert(
    ///     "host=localhost user=ember dbname=analytics",
    ///     "word_counts",
    ///     &["word", "count"],
    ///     &["word"],
    /// );
    /// # let _ = sink;
    /// ```
    pub fn upsert(
        conn: impl Into<String>,
        table: impl Into<String>,
        columns: &[&str],
        keys: &[&str],
    ) -> Self {
        let keys = keys.iter().map(|k| k.to_string()).collect();
        Self::new(conn.into(), table.into(), columns, Mode::Upsert { keys })
    }

    /// Appends each record as a new row of `columns`. A batch recorded in
    /// the progress table as written (by this sink name) is skipped, so a
    /// batch re-run after a recovery is not inserted twice.
    ///
    /// `conn` is as for [`upsert`](Self::upsert).
    ///
    /// ```
    /// use ember_postgres::PostgresSink;
    ///
    /// let sink = PostgresSink::append("postgres://ember@localhost/analytics", "events", &["id", "payload"]);
    /// assert_eq!(sink.name(), "events");
    /// ```
    pub fn append(conn: impl Into<String>, table: impl Into<String>, columns: &[&str]) -> Self {
        Self::new(conn.into(), table.into(), columns, Mode::Append)
    }

    /// Names the sink in the progress table, in logs and in errors (default:
    /// the table name). Two sinks writing the same table need different
    /// names; a program restarted after a failure must keep the name, or
    /// its append sinks write re-run batches again.
    ///
    /// ```
    /// # use ember_postgres::PostgresSink;
    /// let sink = PostgresSink::append("host=localhost", "events", &["id"]).sink_name("events-from-kafka");
    /// assert_eq!(sink.name(), "events-from-kafka");
    /// ```
    pub fn sink_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The table recording written batches (default `ember_sink_progress`;
    /// created if missing): `(sink TEXT, batch_time BIGINT, written_at
    /// TIMESTAMPTZ, offsets TEXT, PRIMARY KEY (sink, batch_time))`.
    ///
    /// ```
    /// # use ember_postgres::PostgresSink;
    /// let sink = PostgresSink::append("host=localhost", "events", &["id"]).progress_table("ops.batches");
    /// # let _ = sink;
    /// ```
    pub fn progress_table(mut self, table: impl Into<String>) -> Self {
        self.progress_table = table.into();
        self
    }

    /// SQL run once, on the first connection, before anything is written:
    /// typically `CREATE TABLE IF NOT EXISTS ...` for the sink's table.
    /// Several statements may be separated by `;`.
    ///
    /// ```
    /// # use ember_postgres::PostgresSink;
    /// let sink = PostgresSink::append("host=localhost", "events", &["id", "payload"])
    ///     .create_table_sql("CREATE TABLE IF NOT EXISTS events (id BIGINT, payload TEXT)");
    /// # let _ = sink;
    /// ```
    pub fn create_table_sql(mut self, sql: impl Into<String>) -> Self {
        self.create_table_sql = Some(sql.into());
        self
    }

    /// Rows per `INSERT` statement (default 1000): a batch is written as a
    /// few multi-row statements, each binding one array per column. Larger
    /// chunks mean fewer round trips; a table with an array column is
    /// written with `VALUES` lists of at most 65535 values.
    ///
    /// ```
    /// # use ember_postgres::PostgresSink;
    /// let sink = PostgresSink::append("host=localhost", "events", &["id"]).chunk_size(10_000);
    /// # let _ = sink;
    /// ```
    ///
    /// # Panics
    ///
    /// If `rows` is 0.
    pub fn chunk_size(mut self, rows: usize) -> Self {
        assert!(rows > 0, "chunk_size must be at least 1");
        self.chunk_size = rows;
        self
    }

    /// At most `n` retries of a batch after connection failures (default:
    /// as many as [`retry_for`](Self::retry_for) allows). `0` fails at the
    /// first connection failure.
    ///
    /// ```
    /// # use ember_postgres::PostgresSink;
    /// // Fail the stream rather than wait for a server that is away.
    /// let sink = PostgresSink::append("host=localhost", "events", &["id"]).retries(0);
    /// # let _ = sink;
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.retry.max_retries = n;
        self
    }

    /// The pause before the first retry (default 100 ms), doubled after each
    /// further failure up to `max` (default 5 s).
    ///
    /// ```
    /// # use ember_postgres::PostgresSink;
    /// use std::time::Duration;
    ///
    /// let sink = PostgresSink::append("host=localhost", "events", &["id"])
    ///     .backoff(Duration::from_millis(500), Duration::from_secs(30));
    /// # let _ = sink;
    /// ```
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry.initial = initial;
        self.retry.max_backoff = max.max(initial);
        self
    }

    /// How long a batch is retried after its first connection failure before
    /// the sink gives up and stops the context (default 60 s).
    ///
    /// ```
    /// # use ember_postgres::PostgresSink;
    /// use std::time::Duration;
    ///
    /// // Ride out a failover of up to 10 minutes.
    /// let sink = PostgresSink::append("host=localhost", "events", &["id"]).retry_for(Duration::from_secs(600));
    /// # let _ = sink;
    /// ```
    pub fn retry_for(mut self, limit: Duration) -> Self {
        self.retry.retry_for = limit;
        self
    }

    /// The sink's name: the one given to [`sink_name`](Self::sink_name), or
    /// the table name.
    ///
    /// ```
    /// # use ember_postgres::PostgresSink;
    /// let sink = PostgresSink::upsert("host=localhost", "word_counts", &["word", "count"], &["word"]);
    /// assert_eq!(sink.name(), "word_counts");
    /// ```
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.table)
    }

    /// Checks what can be checked without a server.
    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |message: String| {
            Err(Error::Config {
                sink: self.name().to_string(),
                message,
            })
        };
        if self.columns.is_empty() {
            return fail("no columns given: name the table's columns the records fill".into());
        }
        for (i, c) in self.columns.iter().enumerate() {
            if self.columns[..i].contains(c) {
                return fail(format!("column `{c}` is given twice"));
            }
        }
        if let Mode::Upsert { keys } = &self.mode {
            if keys.is_empty() {
                return fail(
                    "an upsert sink needs key columns (those of its PRIMARY KEY or UNIQUE \
                     constraint); use PostgresSink::append for rows without a key"
                        .into(),
                );
            }
            if let Some(k) = keys.iter().find(|k| !self.columns.contains(k)) {
                return fail(format!(
                    "key column `{k}` is not among the columns [{}]",
                    self.columns.join(", ")
                ));
            }
        }
        if let Err(e) = self.conn.parse::<postgres::Config>() {
            return fail(format!(
                "the connection string is invalid ({e}): use a URL like \
                 postgres://user@host:5432/db or key=value pairs like host=... dbname=..."
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresSink {
    /// Leaves the connection string out: it may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSink")
            .field("name", &self.name())
            .field("table", &self.table)
            .field("columns", &self.columns)
            .field("mode", &self.mode)
            .field("progress_table", &self.progress_table)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

/// A batch a sink committed, as recorded in its progress table (see
/// [`PostgresSink::last_committed`]).
///
/// ```
/// use ember_core::Time;
/// use ember_postgres::Committed;
///
/// let last = Committed { batch_time: Time::from_millis(5000), offsets: None };
/// assert_eq!(last.batch_time.milliseconds(), 5000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The batch's time.
    pub batch_time: Time,
    /// The offsets stored with it, if any.
    pub offsets: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_mistake() {
        let e = |s: PostgresSink| s.validate().unwrap_err().to_string();
        let url = "postgres://u@localhost/db";
        assert!(e(PostgresSink::append(url, "t", &[])).contains("no columns"));
        let m = e(PostgresSink::upsert(url, "t", &["a", "b"], &["c"]));
        assert!(
            m.contains("key column `c` is not among the columns [a, b]"),
            "{m}"
        );
        assert!(m.starts_with("PostgreSQL sink `t` is misconfigured"), "{m}");
        assert!(e(PostgresSink::upsert(url, "t", &["a"], &[])).contains("needs key columns"));
        assert!(e(PostgresSink::append(url, "t", &["a", "a"])).contains("`a` is given twice"));
        let m = e(PostgresSink::append("postgres://u@h:notaport/db", "t", &["a"]).sink_name("s"));
        assert!(
            m.contains("sink `s`") && m.contains("connection string is invalid"),
            "{m}"
        );
        assert!(PostgresSink::upsert(url, "t", &["a", "b"], &["a"])
            .validate()
            .is_ok());
    }

    #[test]
    fn debug_leaves_the_password_out() {
        let s = PostgresSink::append("postgres://u:secret@localhost/db", "t", &["a"]);
        let text = format!("{s:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("\"t\""), "{text}");
    }
}
