//! The sink's error type.

/// The result type of this crate's fallible calls (see [`Error`]).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with a PostgreSQL sink outside a running stream (see
/// [`PostgresSink::last_committed`](crate::PostgresSink::last_committed)).
///
/// Inside a stream, a batch that cannot be written stops the context with
/// this error as an [`ember_core::Error::Connector`] (find it again with
/// [`ember_core::Error::downcast_ref`]). It converts into that variant, for
/// `?` in a program returning ember's result.
///
/// ```no_run
/// use ember_postgres::PostgresSink;
///
/// fn resume_point() -> ember_core::Result<Option<u64>> {
///     let sink = PostgresSink::append("postgres://ember@localhost/analytics", "events", &["id"]);
///     Ok(sink.last_committed()?.map(|c| c.batch_time.milliseconds()))
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The sink is defined wrongly: a bad connection string, a key column
    /// that is not among the columns, no columns.
    #[error("PostgreSQL sink `{sink}` is misconfigured: {message}")]
    Config {
        /// The sink's name.
        sink: String,
        /// What is wrong and what to do.
        message: String,
    },

    /// The server could not be reached or refused a statement.
    #[error("PostgreSQL sink `{sink}`: {message}")]
    Postgres {
        /// The sink's name.
        sink: String,
        /// What was attempted, the server's answer and what to do.
        message: String,
        /// The client's error, when there is one.
        #[source]
        cause: Option<postgres::Error>,
    },
}

impl From<Error> for ember_core::Error {
    fn from(e: Error) -> Self {
        ember_core::Error::connector(e)
    }
}
