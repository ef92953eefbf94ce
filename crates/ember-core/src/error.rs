//! ember's error type, sorted by whose fault it is.
//!
//! An [`Error`] is a value: cheap to clone (its causes are shared behind
//! [`Arc`]s), so the one error that stopped a context reaches every caller of
//! [`await_termination`](crate::StreamingContext::await_termination), every
//! listener and, in a cluster, the other processes, with its kind and its
//! chain of causes intact. An error a program's own function returned keeps
//! its value: [`Error::downcast_ref`] finds it again.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::time::Time;

/// The result type of every fallible ember call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A cause that any error type can be: what connectors and user functions
/// return, shared so that the error stays cheap to clone.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in ember.
///
/// Variants name whose fault it is: a program that defines an impossible graph
/// ([`Error::InvalidGraph`]), a bad setting ([`Error::Config`]), the outside
/// world ([`Error::Source`], [`Error::Sink`], [`Error::Connector`]), the
/// user's own code returning an error ([`Error::User`]) or panicking
/// ([`Error::UserCode`]), or ember itself ([`Error::Internal`]).
///
/// `Debug` writes the same text as `Display`, followed by the causes not
/// already in it, so `fn main() -> Result<(), ember::Error>` prints a
/// readable message; match on the variant to tell kinds apart in code.
#[derive(Clone)]
#[non_exhaustive]
pub enum Error {
    /// The DStream graph cannot run as defined (found when the context starts).
    InvalidGraph(String),

    /// A setting is malformed or out of range.
    Config(String),

    /// A call that the context's lifecycle does not allow now.
    IllegalState(String),

    /// An input source failed in a way ember cannot recover from by itself.
    Source {
        /// The source, as named in the graph (e.g. `text_file_stream(/data/in)`).
        source_name: String,
        /// What happened and what to do about it.
        message: String,
        /// The underlying I/O error, when there is one.
        cause: Option<Arc<std::io::Error>>,
    },

    /// An output operation failed.
    Sink {
        /// The output operation (e.g. `save_as_text_files(out/counts)`).
        sink: String,
        /// What happened and what to do about it.
        message: String,
        /// The underlying I/O error, when there is one.
        cause: Option<Arc<std::io::Error>>,
    },

    /// A filesystem path could not be used.
    Path {
        /// The path in question.
        path: PathBuf,
        /// What was attempted.
        message: String,
        /// The underlying I/O error.
        cause: Arc<std::io::Error>,
    },

    /// A checkpoint could not be written or read back.
    Checkpoint {
        /// The checkpoint file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
        /// The underlying I/O error, when there is one.
        cause: Option<Arc<std::io::Error>>,
    },

    /// A function of the program returned an error (e.g. the closure of
    /// [`try_foreach_rdd`](crate::DStream::try_foreach_rdd)); the context
    /// stopped. The error is kept as it was returned:
    /// [`downcast_ref`](Error::downcast_ref) gives it back.
    User {
        /// The operation whose function failed (e.g. `try_foreach_rdd`).
        operator: String,
        /// The batch it was working on.
        time: Time,
        /// The error the function returned.
        cause: Cause,
    },

    /// A closure of the user's program panicked on a worker; the context stopped.
    UserCode {
        /// The global index of the worker that panicked.
        worker: usize,
        /// The panic message.
        message: String,
    },

    /// A graceful stop did not finish within its timeout.
    StopTimeout(Duration),

    /// An error from a connector crate (Kafka, PostgreSQL, ...), kept as its
    /// own type (see [`Error::connector`] and [`Error::downcast_ref`]) so
    /// that this enum does not change with features.
    Connector(Cause),

    /// A process of the cluster could not be reached, or went away.
    Cluster(String),

    /// A bug in ember. Please report it with the message.
    Internal(String),
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }

    pub(crate) fn graph(message: impl Into<String>) -> Self {
        Error::InvalidGraph(message.into())
    }

    /// A connector's own error, kept as its type: [`Error::Connector`].
    pub fn connector(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Connector(Arc::new(error))
    }

    /// The error a program's function returned from `operator` at batch
    /// `time`: [`Error::User`], holding `error` as it is. An `ember::Error`
    /// (e.g. a connector's, returned through a fallible output) stays what
    /// it is instead, so its kind is not lost.
    pub fn user(
        operator: impl Into<String>,
        time: Time,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
        match boxed.downcast::<Error>() {
            Ok(own) => *own,
            Err(other) => Error::User {
                operator: operator.into(),
                time,
                cause: Arc::from(other),
            },
        }
    }

    /// The first error of type `E` in this error's chain of causes, itself
    /// included: a user's error type returned through [`Error::User`], or a
    /// connector's through [`Error::Connector`].
    ///
    /// ```
    /// use ember_core::{Error, Time};
    ///
    /// #[derive(Debug)]
    /// struct Rejected(u32);
    /// impl std::fmt::Display for Rejected {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         write!(f, "record {} rejected", self.0)
    ///     }
    /// }
    /// impl std::error::Error for Rejected {}
    ///
    /// let e = Error::user("try_foreach_rdd", Time::from_millis(2000), Rejected(7));
    /// assert_eq!(e.downcast_ref::<Rejected>().map(|r| r.0), Some(7));
    /// assert_eq!(e.to_string(), "try_foreach_rdd failed at batch 2000 ms: record 7 rejected");
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        use std::error::Error as _;
        let me: &(dyn std::error::Error + 'static) = self;
        if let Some(found) = me.downcast_ref::<E>() {
            return Some(found);
        }
        // A connector's error is shown as it is (its `source` is the
        // connector error's own source), so look at it first.
        let mut next: Option<&(dyn std::error::Error + 'static)> = match self {
            Error::Connector(cause) => Some(&**cause),
            _ => self.source(),
        };
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<E>() {
                return Some(found);
            }
            next = e.source();
        }
        None
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_cause =
            |f: &mut fmt::Formatter<'_>, cause: &Option<Arc<std::io::Error>>| match cause {
                Some(c) => write!(f, ": {c}"),
                None => Ok(()),
            };
        match self {
            Error::InvalidGraph(m) => write!(f, "invalid DStream graph: {m}"),
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::IllegalState(m) => write!(f, "{m}"),
            Error::Source {
                source_name,
                message,
                cause,
            } => {
                write!(f, "source `{source_name}` failed: {message}")?;
                with_cause(f, cause)
            }
            Error::Sink {
                sink,
                message,
                cause,
            } => {
                write!(f, "output `{sink}` failed: {message}")?;
                with_cause(f, cause)
            }
            Error::Path {
                path,
                message,
                cause,
            } => write!(f, "{message}: {}: {cause}", path.display()),
            Error::Checkpoint {
                path,
                message,
                cause,
            } => {
                write!(f, "checkpoint {}: {message}", path.display())?;
                with_cause(f, cause)
            }
            Error::User {
                operator,
                time,
                cause,
            } => write!(f, "{operator} failed at batch {time}: {cause}"),
            Error::UserCode { worker, message } => write!(
                f,
                "a function of the streaming program panicked on worker {worker}: {message}"
            ),
            Error::StopTimeout(d) => write!(
                f,
                "stop did not finish within {d:?}; the remaining batches were abandoned"
            ),
            Error::Connector(cause) => write!(f, "{cause}"),
            Error::Cluster(m) => write!(f, "cluster: {m}"),
            Error::Internal(m) => {
                write!(f, "internal error (a bug in ember, please report it): {m}")
            }
        }
    }
}

impl fmt::Debug for Error {
    /// The same text as `Display`, then each further cause whose text the
    /// message does not already hold, one per line — so that `main`
    /// returning `Err(e)` (which prints `Error: {e:?}`) reads as a message,
    /// not as the enum's structure. The kind is in the words: "invalid
    /// DStream graph: …", "invalid configuration: …", "cluster: …".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_string();
        f.write_str(&text)?;
        let mut next = std::error::Error::source(self);
        let mut first = true;
        while let Some(cause) = next {
            let line = cause.to_string();
            if !text.contains(&line) {
                if first {
                    f.write_str("\n\nCaused by:")?;
                    first = false;
                }
                write!(f, "\n    {line}")?;
            }
            next = cause.source();
        }
        Ok(())
    }
}

/// An error and its causes on one line, `: `-separated, leaving out a
/// cause whose text the line already holds (for connectors' log lines and
/// messages about a library's nested errors).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        next = cause.source();
    }
    text
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Source { cause, .. }
            | Error::Sink { cause, .. }
            | Error::Checkpoint { cause, .. } => cause
                .as_deref()
                .map(|c| c as &(dyn std::error::Error + 'static)),
            Error::Path { cause, .. } => Some(&**cause),
            // The cause itself, not the `Arc` around it, so that downcasting
            // finds the user's type.
            Error::User { cause, .. } => Some(&**cause),
            Error::Connector(cause) => cause.source(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Broker(&'static str);
    impl fmt::Display for Broker {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "broker {} unreachable", self.0)
        }
    }
    impl std::error::Error for Broker {}

    #[test]
    fn clones_keep_kind_and_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let e = Error::Sink {
            sink: "out".into(),
            message: "cannot write".into(),
            cause: Some(Arc::new(io)),
        };
        let c = e.clone();
        assert!(matches!(c, Error::Sink { .. }));
        assert_eq!(c.to_string(), "output `out` failed: cannot write: denied");
        let io = c.downcast_ref::<std::io::Error>().expect("the io cause");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);

        let k = Error::connector(Broker("b:9092")).clone();
        assert!(matches!(k, Error::Connector(_)));
        assert_eq!(k.downcast_ref::<Broker>().map(|b| b.0), Some("b:9092"));
    }

    #[test]
    fn user_errors_keep_their_value_and_ember_errors_their_kind() {
        let e = Error::user("try_transform", Time::from_millis(3000), Broker("x"));
        assert!(matches!(&e, Error::User { operator, time, .. }
            if operator == "try_transform" && time.milliseconds() == 3000));
        assert_eq!(e.downcast_ref::<Broker>().map(|b| b.0), Some("x"));
        let own = Error::user("try_foreach_rdd", Time::default(), Error::config("bad"));
        assert!(matches!(own, Error::Config(_)), "{own:?}");
    }

    #[test]
    fn debug_reads_like_display_with_the_causes_it_lacks() {
        #[derive(Debug)]
        struct Outer(Broker);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("cannot send")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Error::user("save", Time::from_millis(1000), Outer(Broker("b")));
        assert_eq!(
            format!("{e:?}"),
            "save failed at batch 1000 ms: cannot send\n\nCaused by:\n    broker b unreachable"
        );
    }

    /// What `fn main() -> Result<(), ember::Error>` prints after `Error: `,
    /// for every kind: the message, never the enum's structure.
    #[test]
    fn debug_of_every_kind_is_its_message() {
        let io = || Some(Arc::new(std::io::Error::other("disk full")));
        let cases = [
            (
                Error::graph("window 7s is not a multiple of the slide 2s"),
                "invalid DStream graph: window 7s is not a multiple of the slide 2s",
            ),
            (
                Error::config("--master: invalid master `yarn`"),
                "invalid configuration: --master: invalid master `yarn`",
            ),
            (
                Error::IllegalState("already stopped".into()),
                "already stopped",
            ),
            (
                Error::Source {
                    source_name: "socket_text_stream(h:1)".into(),
                    message: "gave up".into(),
                    cause: None,
                },
                "source `socket_text_stream(h:1)` failed: gave up",
            ),
            (
                Error::Sink {
                    sink: "save(out)".into(),
                    message: "cannot write".into(),
                    cause: io(),
                },
                "output `save(out)` failed: cannot write: disk full",
            ),
            (
                Error::Path {
                    path: "/x".into(),
                    message: "cannot list".into(),
                    cause: Arc::new(std::io::Error::other("denied")),
                },
                "cannot list: /x: denied",
            ),
            (
                Error::Checkpoint {
                    path: "/c".into(),
                    message: "damaged".into(),
                    cause: io(),
                },
                "checkpoint /c: damaged: disk full",
            ),
            (
                Error::UserCode {
                    worker: 1,
                    message: "boom".into(),
                },
                "a function of the streaming program panicked on worker 1: boom",
            ),
            (
                Error::StopTimeout(Duration::from_secs(3)),
                "stop did not finish within 3s; the remaining batches were abandoned",
            ),
            (
                Error::connector(Broker("b:9092")),
                "broker b:9092 unreachable",
            ),
            (
                Error::Cluster("process 1 left".into()),
                "cluster: process 1 left",
            ),
            (
                Error::Internal("oops".into()),
                "internal error (a bug in ember, please report it): oops",
            ),
        ];
        for (e, expected) in cases {
            assert_eq!(format!("{e:?}"), expected);
            assert_eq!(format!("{e:?}"), e.to_string(), "no cause to add");
        }
    }
}
