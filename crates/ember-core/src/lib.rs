//! # ember-core
//!
//! The engine of [ember](https://docs.rs/ember-streaming): Spark Streaming's DStreams —
//! a live stream cut into micro-batches, each processed as a small parallel
//! job — on [timely dataflow](https://docs.rs/timely).
//!
//! Most programs use the `ember` facade crate, which re-exports this one.
//!
//! | module | what |
//! |---|---|
//! | [`StreamingContext`] | master, batch interval, `start` / `stop` / `await_termination` |
//! | [`StreamingScope`] | sources: `socket_text_stream`, `text_file_stream`, `queue_stream`, `receiver_stream` |
//! | [`DStream`] | transformations, keyed operations, outputs (also fallible: `try_foreach_rdd`, ...) |
//! | [`Receiver`] | a program's own push source, with buffering, rate limits and the write-ahead log |
//! | [`BatchPlanner`] | a replayable source that decides each batch's contents (Kafka, files) |
//! | [`Error`] | errors by whose fault they are; a program's own error comes back by `downcast_ref` |
//! | [`Show`] | how records print (Spark's `toString`) |
//! | [`ManualClock`] | deterministic time for tests |
//! | [`testing`] | run an operation over queued batches and collect the output |
//!
//! ## Layers
//!
//! The modules stand in layers, and a module imports from its own layer or
//! those below; no module imports one that imports it back
//! (`tests/layers.rs` checks that):
//!
//! 1. **values**: `time`, `duration`, `clock`, `hash`, `show`, `error`, and
//!    `source::lines` (a block of received text lines);
//! 2. **settings and bookkeeping**: `listener` (batch statistics and
//!    events), `rate` (rate limits, the backpressure estimator listening to
//!    batch completions), `conf`, `cli` (the flags for clap, read as `conf`
//!    reads them), `checkpoint` (the on-disk format);
//! 3. **runtime**: `runtime` (what a process's workers share: the stop, the
//!    timeline, cluster membership, checkpoint scheduling, the statistics
//!    bus, reached through methods), `signals`, `ui`;
//! 4. **graph and operators**: `scope` (what a worker's operators may ask of
//!    the runtime) and `dstream` (the DStream API, fused narrow steps,
//!    per-batch folds, windows, state, outputs);
//! 5. **sources**: `source` (receivers, planned sources, files, queues), on
//!    the public interfaces that connector crates use too ([`Receiver`],
//!    [`BatchPlanner`], [`FailureHandle`]);
//! 6. **the context**: `context` (`StreamingContext`: start, the workers'
//!    loop, the cluster handshake, stop); above the crate, the `ember`
//!    facade and the connector crates.

mod checkpoint;
#[cfg(feature = "cli")]
pub mod cli;
mod clock;
mod conf;
mod context;
mod dstream;
mod duration;
mod error;
pub mod hash;
mod listener;
pub mod logging;
pub mod rate;
mod runtime;
mod scope;
mod show;
mod signals;
mod source;
pub mod testing;
mod time;
#[cfg(feature = "ui")]
mod ui;

#[cfg(feature = "cli")]
pub use cli::StreamingArgs;
pub use clock::{Clock, ManualClock};
pub use conf::{Master, StreamingConf};
pub use context::StreamingContext;
pub use dstream::{
    BorrowedPairs, BorrowedWords, DStream, DashboardValue, MapWithState, SaveOptions, State,
    StateError, StateSpec, Words,
};
pub use duration::parse_duration;
/// Derives [`Show`](trait@Show) in Spark's case-class form, `Name(a,b)`;
/// the trait's docs show the forms and the `#[show(crate = "...")]` path.
pub use ember_derive::Show;
pub use error::{error_chain, Cause, Error, Result};
pub use listener::{BatchInfo, OutputOperationInfo, ReceiverInfo, StreamingListener};
pub use rate::{PidEstimator, PidSettings, RateControl};
pub use scope::{FailureHandle, StreamingScope};
pub use show::{Show, ShowDisplay};
pub use source::{
    register_file_store, BatchPlanner, FileStore, FileStreamOptions, LineSplitter, OpenedFile,
    Queue, Received, Receiver, ReceiverContext, ReceiverOptions, SocketOptions, StoreOpener,
    StoredFile,
};
pub use time::{millis, minutes, seconds, Time};

/// What a DStream's records must be: cloneable, sendable between threads,
/// and serializable so they can cross process boundaries in cluster mode.
///
/// For a type of your own, derive serde's traits (with `serde = { version =
/// "1", features = ["derive"] }` in `Cargo.toml`; the `ember` facade
/// re-exports serde as `ember::serde` for programs without that line, see
/// its `porting` page):
///
/// ```
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Click {
///     user: String,
///     page: String,
/// }
///
/// fn is_data<T: ember_core::Data>() {}
/// is_data::<Click>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a DStream record: records must be `Clone + Send + 'static` and serde-serializable",
    label = "not a record type",
    note = "add `#[derive(Clone, serde::Serialize, serde::Deserialize)]` to your type, with `serde = {{ version = \"1\", features = [\"derive\"] }}` in Cargo.toml; without that line, use the derives in `ember::prelude` and add `#[serde(crate = \"ember::serde\")]` to the type"
)]
pub trait Data: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static {}
impl<T: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static> Data for T {}
