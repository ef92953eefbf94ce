//! ember's error type, sorted by whose fault it is.

use std::path::PathBuf;
use std::time::Duration;

/// The result type of every fallible ember call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ember.
///
/// Variants name whose fault it is: a program that defines an impossible graph
/// ([`Error::InvalidGraph`]), a bad setting ([`Error::Config`]), the outside
/// world ([`Error::Source`], [`Error::Sink`]), the user's own code panicking
/// ([`Error::UserCode`]), or ember itself ([`Error::Internal`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The DStream graph cannot run as defined (found when the context starts).
    #[error("invalid DStream graph: {0}")]
    InvalidGraph(String),

    /// A setting is malformed or out of range.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// A call that the context's lifecycle does not allow now.
    #[error("{0}")]
    IllegalState(String),

    /// An input source failed in a way ember cannot recover from by itself.
    #[error("source `{source_name}` failed: {message}")]
    Source {
        /// The source, as named in the graph (e.g. `text_file_stream(/data/in)`).
        source_name: String,
        /// What happened and what to do about it.
        message: String,
        /// The underlying I/O error, when there is one.
        #[source]
        cause: Option<std::io::Error>,
    },

    /// An output operation failed.
    #[error("output `{sink}` failed: {message}")]
    Sink {
        /// The output operation (e.g. `save_as_text_files(out/counts)`).
        sink: String,
        /// What happened and what to do about it.
        message: String,
        /// The underlying I/O error, when there is one.
        #[source]
        cause: Option<std::io::Error>,
    },

    /// A filesystem path could not be used.
    #[error("{message}: {}", path.display())]
    Path {
        /// The path in question.
        path: PathBuf,
        /// What was attempted.
        message: String,
        /// The underlying I/O error.
        #[source]
        cause: std::io::Error,
    },

    /// A checkpoint could not be written or read back.
    #[error("checkpoint {}: {message}", path.display())]
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
        /// The underlying I/O error, when there is one.
        #[source]
        cause: Option<std::io::Error>,
    },

    /// A closure of the user's program panicked on a worker; the context stopped.
    #[error("a function of the streaming program panicked on worker {worker}: {message}")]
    UserCode {
        /// The global index of the worker that panicked.
        worker: usize,
        /// The panic message.
        message: String,
    },

    /// A graceful stop did not finish within its timeout.
    #[error("stop did not finish within {0:?}; the remaining batches were abandoned")]
    StopTimeout(Duration),

    /// An error from a connector crate (Kafka, PostgreSQL, ...), kept boxed so
    /// that this enum does not change with features.
    #[error(transparent)]
    Connector(Box<dyn std::error::Error + Send + Sync>),

    /// A process of the cluster could not be reached, or went away.
    #[error("cluster: {0}")]
    Cluster(String),

    /// A bug in ember. Please report it with the message.
    #[error("internal error (a bug in ember, please report it): {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    pub(crate) fn graph(message: impl Into<String>) -> Self {
        Error::InvalidGraph(message.into())
    }
}
