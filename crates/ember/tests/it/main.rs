//! ember's integration tests: one binary, a module per area.

mod files;
mod lifecycle;
mod ops;
mod outputs;
mod socket;
mod windows;
mod state;
