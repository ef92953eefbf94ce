//! ember's log output: warnings, errors and the context's lifecycle (the UI
//! address, connections, stops, recoveries) on stderr.
//!
//! A context installs this subscriber when it starts, unless the program
//! installed a `tracing` subscriber of its own or turned it off with
//! [`StreamingConf::default_logging(false)`](crate::StreamingConf::default_logging),
//! so that a program prints what goes wrong with no setup, as Spark logs by
//! default. `RUST_LOG` (e.g. `RUST_LOG=debug`, `RUST_LOG=warn`) replaces the
//! default filter, [`DEFAULT_FILTER`].

/// What is shown unless `RUST_LOG` says otherwise: warnings and errors of
/// everything, and ember's own lifecycle messages.
pub const DEFAULT_FILTER: &str = "warn,ember_core=info,ember_kafka=info,ember_postgres=info";

/// Installs ember's stderr subscriber with `RUST_LOG`'s filter, or
/// [`DEFAULT_FILTER`]. Returns false, changing nothing, when the process
/// already has a global subscriber.
///
/// ```
/// ember_core::logging::init();
/// tracing::warn!("shown on stderr");
/// ```
pub fn init() -> bool {
    init_with(DEFAULT_FILTER)
}

/// [`init`] with `filter` (a `RUST_LOG`-style directive such as `"warn"` or
/// `"info,ember_core=debug"`) as the default when `RUST_LOG` is not set.
pub fn init_with(filter: &str) -> bool {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    // Colours only for a terminal: a log redirected to a file or read by
    // a test stays free of escape codes.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr)
        .try_init()
        .is_ok()
}

/// At start: the default subscriber, unless the program has one or opted out.
pub(crate) fn ensure_default(wanted: bool) {
    if wanted && !tracing::dispatcher::has_been_set() {
        init();
    }
}
