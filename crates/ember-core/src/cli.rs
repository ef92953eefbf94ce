//! ember's command-line flags for [clap](https://docs.rs/clap): a program
//! declares its own arguments and takes ember's with `#[command(flatten)]`,
//! so that `--help` lists both, and a mistake in either is named with what
//! is accepted.
//!
//! ```
//! use clap::Parser;
//! use ember_core::{seconds, StreamingArgs, StreamingConf};
//!
//! /// Counts words from a TCP server.
//! #[derive(Parser, Debug)]
//! struct Cli {
//!     /// The server's host.
//!     host: String,
//!     /// The server's port.
//!     port: u16,
//!     #[command(flatten)]
//!     ember: StreamingArgs,
//! }
//!
//! let cli = Cli::parse_from(["wc", "localhost", "9999", "--master", "local[3]", "--batch-interval", "500ms"]);
//! let conf = StreamingConf::new("WordCount", seconds(1)).with_args(&cli.ember);
//! assert_eq!(conf.workers(), 3);
//! assert_eq!(conf.interval(), ember_core::millis(500));
//!
//! // A duration without a unit is refused, naming the flag.
//! let e = Cli::try_parse_from(["wc", "localhost", "9999", "--batch-interval", "1"]).unwrap_err();
//! assert!(e.to_string().contains("--batch-interval"), "{e}");
//! assert!(e.to_string().contains("write 1s or 1ms"), "{e}");
//! ```
//!
//! The flags, their values and their checks are those of
//! [`StreamingConf::parse_args`] (the way without clap): both read every
//! value through the same function. Precedence stays as the
//! [`conf`](crate::StreamingConf) module describes: flags applied with
//! [`StreamingConf::with_args`] after [`StreamingConf::with_env`] win over it.

use std::time::Duration;

use clap::Args;

use crate::conf::{at_least_one, Setting};
use crate::StreamingConf;

/// ember's flags, to flatten into a program's own clap parser; they are
/// listed under "Streaming options" in its `--help`. Apply them with
/// [`StreamingConf::with_args`].
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Streaming options")]
pub struct StreamingArgs {
    /// Where to run: local[N] (N worker threads), local[*] (one per core),
    /// local, or cluster (with --hosts, --process, --workers)
    #[arg(long, value_name = "MASTER", value_parser = setting("--master"))]
    master: Option<Setting>,

    /// The batch interval, with a unit: 500ms, 1s, 1.5s, 1m
    #[arg(long, value_name = "DURATION", value_parser = setting("--batch-interval"))]
    batch_interval: Option<Setting>,

    /// The application name (shown in the web UI)
    #[arg(long, value_name = "NAME", value_parser = setting("--name"))]
    name: Option<Setting>,

    /// Where the web UI listens: HOST:PORT, a port on loopback, or off
    /// [default: 127.0.0.1:4040]
    #[arg(long, value_name = "ADDR", value_parser = setting("--ui"))]
    ui: Option<Setting>,

    /// The web UI on loopback at this port
    #[arg(long, value_name = "PORT", value_parser = setting("--ui-port"), conflicts_with = "ui")]
    ui_port: Option<Setting>,

    /// How many connections the web UI serves at once [default: 256]
    #[arg(long, value_name = "N", value_parser = setting("--ui-max-connections"))]
    ui_max_connections: Option<Setting>,

    /// No web UI
    #[arg(long, conflicts_with_all = ["ui", "ui_port"])]
    no_ui: bool,

    /// Records per second that each receiver reads at most
    #[arg(long, value_name = "RATE", value_parser = setting("--max-rate"))]
    max_rate: Option<Setting>,

    /// Read at the rate the completed batches show to be sustainable
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = setting("--backpressure"),
    )]
    backpressure: Option<Setting>,

    /// With --backpressure, the rate (records/s) before the first estimate
    #[arg(long, value_name = "RATE", value_parser = setting("--backpressure-initial-rate"))]
    backpressure_initial_rate: Option<Setting>,

    /// Set the checkpoint directory's contents aside and start from empty
    /// state
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = setting("--fresh-start"),
    )]
    fresh_start: Option<Setting>,

    /// The bound on a graceful stop, e.g. 30s [default: ten batch
    /// intervals, at least 10s]
    #[arg(long, value_name = "DURATION", value_parser = setting("--graceful-stop-timeout"))]
    graceful_stop_timeout: Option<Setting>,

    /// How often state is checkpointed, a multiple of the batch interval,
    /// e.g. 10s
    #[arg(long, value_name = "DURATION", value_parser = setting("--checkpoint-interval"))]
    checkpoint_interval: Option<Setting>,

    /// Cluster: every process's HOST:PORT, in order, comma-separated
    #[arg(long, value_name = "HOSTS", value_parser = setting("--hosts"))]
    hosts: Option<Setting>,

    /// Cluster: a file of HOST:PORT lines, one per process
    #[arg(
        long,
        value_name = "FILE",
        value_parser = setting("--hosts-file"),
        conflicts_with = "hosts"
    )]
    hosts_file: Option<Setting>,

    /// Cluster: this process's index in the hosts, or `ordinal` (the
    /// number the host name ends in, as a StatefulSet's pod ember-2)
    #[arg(long, value_name = "INDEX", value_parser = setting("--process"))]
    process: Option<Setting>,

    /// Cluster: how long to wait for the other processes [default: 60s]
    #[arg(long, value_name = "DURATION", value_parser = setting("--connect-timeout"))]
    connect_timeout: Option<Setting>,

    #[command(flatten)]
    workers: Workers,
}

/// The `--workers` flag alone: worker threads in each process of a cluster.
/// Part of [`StreamingArgs`]; on its own for launchers such as
/// `ember-submit`, which pass it on to the processes they start.
#[derive(Args, Clone, Debug, Default)]
pub struct Workers {
    /// Cluster: worker threads in each process
    #[arg(long, value_name = "N", value_parser = workers)]
    pub workers: Option<usize>,
}

/// A value parser reading `flag`'s value as [`Setting::parse`] does.
fn setting(
    flag: &'static str,
) -> impl Fn(&str) -> Result<Setting, String> + Clone + Send + Sync + 'static {
    move |value| Setting::parse(flag, value)
}

/// A value parser for a program's own duration flags (a window, a
/// timeout), read as ember's are: with a unit, `500ms`, `2s`, `1.5s`, `1m`.
///
/// ```
/// #[derive(clap::Parser)]
/// struct Cli {
///     /// How much each count covers
///     #[arg(long, default_value = "30s", value_parser = ember_core::cli::duration)]
///     window: std::time::Duration,
/// }
/// ```
pub fn duration(text: &str) -> Result<Duration, String> {
    crate::parse_duration(text).map_err(|e| match e {
        crate::Error::Config(why) => why,
        other => other.to_string(),
    })
}

fn workers(value: &str) -> Result<usize, String> {
    at_least_one("--workers", value)
}

impl StreamingConf {
    /// Applies the flags given on the command line (see [`crate::cli`]);
    /// those not given leave the settings as they are.
    pub fn with_args(self, args: &StreamingArgs) -> Self {
        let StreamingArgs {
            master,
            batch_interval,
            name,
            ui,
            ui_port,
            ui_max_connections,
            no_ui,
            max_rate,
            backpressure,
            backpressure_initial_rate,
            fresh_start,
            graceful_stop_timeout,
            checkpoint_interval,
            hosts,
            hosts_file,
            process,
            connect_timeout,
            workers,
        } = args;
        let given = [
            master,
            batch_interval,
            name,
            ui,
            ui_port,
            ui_max_connections,
            max_rate,
            backpressure,
            backpressure_initial_rate,
            fresh_start,
            graceful_stop_timeout,
            checkpoint_interval,
            hosts,
            hosts_file,
            process,
            connect_timeout,
        ];
        let mut conf = self;
        for setting in given.into_iter().flatten() {
            conf = conf.set(setting.clone());
        }
        if *no_ui {
            conf = conf.set(Setting::Ui(None));
        }
        if let Some(n) = workers.workers {
            conf = conf.set(Setting::Workers(n));
        }
        conf
    }
}

impl StreamingArgs {
    /// The batch interval given with `--batch-interval`, if it was, for a
    /// program whose other durations (a window, a slide) depend on it.
    pub fn batch_interval(&self) -> Option<Duration> {
        match self.batch_interval {
            Some(Setting::BatchInterval(d)) => Some(d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::seconds;

    #[derive(Parser, Debug)]
    #[command(name = "prog")]
    struct Cli {
        input: Option<String>,
        #[command(flatten)]
        ember: StreamingArgs,
    }

    fn conf(args: &[&str]) -> StreamingConf {
        let cli = Cli::try_parse_from(std::iter::once("prog").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        StreamingConf::new("x", seconds(1)).with_args(&cli.ember)
    }

    fn refused(args: &[&str]) -> String {
        Cli::try_parse_from(std::iter::once("prog").chain(args.iter().copied()))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_definition_is_sound() {
        Cli::command().debug_assert();
    }

    /// The clap parser and `parse_args` know the same flags.
    #[test]
    fn both_parsers_know_the_same_flags() {
        let command = Cli::command();
        let mut clap_flags: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(|l| format!("--{l}"))
            .collect();
        clap_flags.sort();
        let mut known: Vec<String> = crate::conf::FLAGS
            .iter()
            .chain(&["--no-ui"])
            .map(|f| f.to_string())
            .collect();
        known.sort();
        assert_eq!(clap_flags, known);
    }

    #[test]
    fn flags_reach_the_conf() {
        let c = conf(&[
            "in",
            "--master",
            "local[3]",
            "--batch-interval=250ms",
            "--name",
            "N",
            "--ui-port",
            "4041",
            "--backpressure",
        ]);
        assert_eq!(c.workers(), 3);
        assert_eq!(c.interval(), crate::millis(250));
        assert_eq!(c.name(), "N");
        assert_eq!(c.ui_address(), Some("127.0.0.1:4041"));
        assert!(c.backpressure_enabled());
        let cluster = conf(&["--master", "cluster", "--hosts", "h:1", "--workers", "2"]);
        assert_eq!(cluster.validated().unwrap().workers(), 2);
        assert!(!conf(&["--backpressure=false"]).backpressure_enabled());
        assert_eq!(conf(&["--no-ui"]).ui_address(), None);
        assert_eq!(conf(&["--ui", "off"]).ui_address(), None);
        // Not given: the conf keeps what it had.
        assert_eq!(conf(&[]).interval(), seconds(1));
    }

    #[test]
    fn mistakes_are_named_with_what_is_accepted() {
        let e = refused(&["--batch-interval", "1"]);
        assert!(
            e.contains("--batch-interval") && e.contains("write 1s or 1ms"),
            "{e}"
        );
        let e = refused(&["--ui-port", "99999"]);
        assert!(e.contains("--ui-port") && e.contains("0 to 65535"), "{e}");
        let e = refused(&["--master", "yarn"]);
        assert!(e.contains("--master") && e.contains("local[N]"), "{e}");
        let e = refused(&["--workers", "0"]);
        assert!(e.contains("--workers") && e.contains("≥ 1"), "{e}");
        let e = refused(&["--checkpoint-interval", "0s"]);
        assert!(e.contains("longer than zero"), "{e}");
        let e = refused(&["--bogus"]);
        assert!(e.contains("--bogus"), "{e}");
    }
}
