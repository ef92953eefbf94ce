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
mod state;
#[cfg(feature = "ui")]
mod ui;
#[cfg(feature = "ui")]
mod ui_limits;
mod windows;
