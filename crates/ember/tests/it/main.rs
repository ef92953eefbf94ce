//! ember's integration tests: one binary, a module per area.

mod errors;
mod files;
mod flow;
mod lifecycle;
mod listener;
mod ops;
mod outputs;
mod receiver;
mod recovery;
mod socket;
#[cfg(feature = "ui")]
mod spark_rest;
mod state;
#[cfg(feature = "ui")]
mod ui;
#[cfg(feature = "ui")]
mod ui_limits;
mod windows;
