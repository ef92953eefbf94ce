//! # ember-core
//!
//! The engine of [ember](https://docs.rs/ember): Spark Streaming's DStreams —
//! a live stream cut into micro-batches, each processed as a small parallel
//! job — on [timely dataflow](https://docs.rs/timely).
//!
//! Most programs use the `ember` facade crate, which re-exports this one.
//!
//! | module | what |
//! |---|---|
//! | [`StreamingContext`] | master, batch interval, `start` / `stop` / `await_termination` |
//! | [`StreamingScope`] | sources: `socket_text_stream`, `text_file_stream`, `queue_stream` |
//! | [`DStream`] | transformations, keyed operations, outputs |
//! | [`Show`] | how records print (Spark's `toString`) |
//! | [`ManualClock`] | deterministic time for tests |
//! | [`testing`] | run an operation over queued batches and collect the output |

mod checkpoint;
mod clock;
mod conf;
mod context;
mod dstream;
mod error;
pub mod hash;
mod listener;
pub mod rate;
mod scope;
mod show;
mod signals;
mod source;
pub mod testing;
mod time;
#[cfg(feature = "ui")]
mod ui;

pub use clock::{Clock, ManualClock};
pub use conf::{Master, StreamingConf};
pub use context::StreamingContext;
pub use dstream::{
    BorrowedPairs, BorrowedWords, DStream, DashboardValue, MapWithState, SaveOptions, State,
    StateError, StateSpec, Words,
};
pub use error::{Cause, Error, Result};
pub use listener::{BatchInfo, OutputOperationInfo, ReceiverInfo, StreamingListener};
pub use rate::{PidEstimator, PidSettings, RateControl};
pub use scope::{FailureHandle, StreamingScope};
pub use show::{Show, ShowDisplay};
pub use source::{
    BatchPlanner, FileStreamOptions, Queue, Received, Receiver, ReceiverContext, ReceiverOptions,
    SocketOptions,
};
pub use time::{millis, minutes, parse_duration, seconds, Time};

/// What a DStream's records must be: cloneable, sendable between threads,
/// and serializable so they can cross process boundaries in cluster mode.
pub trait Data: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static {}
impl<T: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static> Data for T {}
