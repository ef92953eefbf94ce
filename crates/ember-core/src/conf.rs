//! Configuration: master, batch interval and friends, from code, environment
//! and command line, in the manner of `spark-submit`.
//!
//! Precedence, lowest first: defaults, environment (`EMBER_MASTER`,
//! `EMBER_BATCH_INTERVAL`, `EMBER_APP_NAME`, `EMBER_UI`, `EMBER_MAX_RATE`,
//! `EMBER_BACKPRESSURE`, `EMBER_HOSTS`, `EMBER_PROCESS`, `EMBER_WORKERS`), code,
//! then command-line flags read by [`StreamingConf::parse_args`], or by a
//! program's clap parser holding `ember_core::cli::StreamingArgs` (the `cli`
//! feature) and applied with `StreamingConf::with_args`. Durations need a
//! unit (`500ms`, `2s`, `1m`): a bare number is refused.
//!
//! | flag | meaning | example |
//! |---|---|---|
//! | `--master M` | where to run | `local[4]`, `local[*]`, `local`, `cluster` |
//! | `--hosts H,H,..` | cluster: every process's `host:port`, in order | `10.0.0.1:2101,10.0.0.2:2101` |
//! | `--hosts-file F` | cluster: the same, one per line | `hosts.txt` |
//! | `--process I` | cluster: this process's index, or `ordinal` (the host name's trailing `-N`) | `0` |
//! | `--workers N` | cluster: worker threads per process | `2` |
//! | `--connect-timeout D` | cluster: how long to wait for the other processes | `60s` |
//! | `--batch-interval D` | the batch interval | `1s`, `500ms` |
//! | `--name N` | the application name | `NetworkWordCount` |
//! | `--ui ADDR` | where the web UI listens, or `off` | `127.0.0.1:4040`, `0.0.0.0:4040` |
//! | `--ui-port P` | the UI on loopback at port `P` | `4041` |
//! | `--ui-max-connections N` | connections the UI serves at once | `256` |
//! | `--no-ui` | no web UI | |
//! | `--max-rate R` | records/s per receiver at most | `10000` |
//! | `--backpressure` | estimate the sustainable rate | `--backpressure=false` |
//! | `--backpressure-initial-rate R` | the rate before the first estimate | `5000` |
//! | `--graceful-stop-timeout D` | bound on a graceful stop | `30s` |
//! | `--checkpoint-interval D` | how often state is checkpointed | `10s` |
//! | `--fresh-start` | set the checkpoint directory's contents aside and start from empty state | `--fresh-start=false` |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::duration::{parse_duration, whole_millis};
use crate::error::{Error, Result};
use crate::rate::PidSettings;

/// Where a streaming program runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Master {
    /// `local[N]`: N worker threads in this process (`local` is `local[1]`,
    /// `local[*]` one per core).
    Local(usize),
    /// Several processes that timely connects over TCP: every process runs
    /// the same program with the list of all processes' `host:port`, its own
    /// index in it, and its number of worker threads.
    Cluster {
        /// Every process's `host:port`, in order.
        hosts: Vec<String>,
        /// This process's index in `hosts`.
        process: usize,
        /// Worker threads in each process.
        workers: usize,
    },
}

impl Master {
    /// The number of worker threads in this process.
    pub fn workers(&self) -> usize {
        match self {
            Master::Local(n) => *n,
            Master::Cluster { workers, .. } => *workers,
        }
    }

    /// Worker threads of the whole program: of every process in a cluster.
    pub(crate) fn all_workers(&self) -> usize {
        match self {
            Master::Local(n) => *n,
            Master::Cluster { hosts, workers, .. } => hosts.len() * workers,
        }
    }
}

impl fmt::Display for Master {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Master::Local(n) => write!(f, "local[{n}]"),
            Master::Cluster {
                hosts,
                process,
                workers,
            } => write!(
                f,
                "cluster (process {process} of {}, {workers} workers each)",
                hosts.len()
            ),
        }
    }
}

impl FromStr for Master {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::config(format!(
                "invalid master `{s}`: {why}; use local, local[N] with N ≥ 1, local[*], or cluster (with --hosts, --process, --workers)"
            ))
        };
        let t = s.trim();
        if t == "local" {
            return Ok(Master::Local(1));
        }
        if t == "cluster" {
            // Hosts, index and workers come from --hosts, --process, --workers.
            return Ok(Master::Cluster {
                hosts: Vec::new(),
                process: 0,
                workers: 1,
            });
        }
        let inner = t
            .strip_prefix("local[")
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(|| bad("unknown form"))?;
        if inner == "*" {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            return Ok(Master::Local(n));
        }
        match inner.parse::<usize>() {
            Ok(0) => Err(bad("the thread count must be at least 1")),
            Ok(n) if n > 1024 => Err(bad("more than 1024 threads")),
            Ok(n) => Ok(Master::Local(n)),
            Err(_) => Err(bad("the thread count is not a number")),
        }
    }
}

/// A streaming program's settings, Spark's `SparkConf` plus the batch interval.
///
/// # Examples
///
/// ```
/// use ember_core::{StreamingConf, seconds};
/// let conf = StreamingConf::new("NetworkWordCount", seconds(1))
///     .master("local[2]")
///     .unwrap();
/// assert_eq!(conf.workers(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct StreamingConf {
    pub(crate) app_name: String,
    pub(crate) master: Master,
    pub(crate) batch_interval: Duration,
    pub(crate) batch_ms: u64,
    pub(crate) checkpoint_interval: Option<Duration>,
    pub(crate) ui: Option<String>,
    /// Whether the UI's address was asked for (else it is the default).
    pub(crate) ui_asked: bool,
    pub(crate) ui_max_connections: usize,
    pub(crate) max_rate: Option<f64>,
    pub(crate) backpressure: bool,
    pub(crate) initial_rate: Option<f64>,
    pub(crate) pid: PidSettings,
    pub(crate) graceful_stop_timeout: Option<Duration>,
    pub(crate) stop_on_signals: bool,
    pub(crate) default_logging: bool,
    pub(crate) cluster: ClusterFlags,
    pub(crate) connect_timeout: Duration,
    pub(crate) fresh_start: bool,
}

/// Cluster settings given apart from `--master cluster`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClusterFlags {
    hosts: Option<Vec<String>>,
    process: Option<usize>,
    workers: Option<usize>,
}

/// The web UI's default address (Spark's port 4040, on loopback only).
pub(crate) const DEFAULT_UI_ADDRESS: &str = "127.0.0.1:4040";

/// How many connections the web UI serves at once by default.
pub(crate) const DEFAULT_UI_MAX_CONNECTIONS: usize = 256;

impl StreamingConf {
    /// Settings with an application name and a batch interval, master
    /// `local[*]`, then overridden by the environment where it says so.
    ///
    /// An invalid interval is reported by [`StreamingContext::new`](crate::StreamingContext::new).
    pub fn new(app_name: impl Into<String>, batch_interval: Duration) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        StreamingConf {
            app_name: app_name.into(),
            master: Master::Local(workers),
            batch_interval,
            batch_ms: 0,
            checkpoint_interval: None,
            ui: Some(DEFAULT_UI_ADDRESS.to_string()),
            ui_asked: false,
            ui_max_connections: DEFAULT_UI_MAX_CONNECTIONS,
            max_rate: None,
            backpressure: false,
            initial_rate: None,
            pid: PidSettings::default(),
            graceful_stop_timeout: None,
            stop_on_signals: true,
            default_logging: true,
            cluster: ClusterFlags::default(),
            connect_timeout: Duration::from_secs(60),
            fresh_start: false,
        }
    }

    /// Reads `EMBER_MASTER`, `EMBER_BATCH_INTERVAL`, `EMBER_APP_NAME`,
    /// `EMBER_UI` (an address, or `off`), `EMBER_MAX_RATE` and
    /// `EMBER_BACKPRESSURE` (`true`/`false`) when set.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a variable is set but malformed.
    pub fn with_env(mut self) -> Result<Self> {
        if let Ok(m) = std::env::var("EMBER_MASTER") {
            self = self.master(&m)?;
        }
        if let Ok(d) = std::env::var("EMBER_BATCH_INTERVAL") {
            self.batch_interval = parse_duration(&d)
                .map_err(|e| Error::config(format!("EMBER_BATCH_INTERVAL: {}", message(e))))?;
        }
        if let Ok(n) = std::env::var("EMBER_APP_NAME") {
            self.app_name = n;
        }
        if let Ok(u) = std::env::var("EMBER_UI") {
            self = self.apply("--ui", &u)?;
        }
        if let Ok(r) = std::env::var("EMBER_MAX_RATE") {
            self = self.apply("--max-rate", &r)?;
        }
        for (var, flag) in [
            ("EMBER_HOSTS", "--hosts"),
            ("EMBER_PROCESS", "--process"),
            ("EMBER_WORKERS", "--workers"),
        ] {
            if let Ok(v) = std::env::var(var) {
                self = self.apply(flag, &v)?;
            }
        }
        if let Ok(b) = std::env::var("EMBER_BACKPRESSURE") {
            self.backpressure = parse_bool(&b)
                .map_err(|why| Error::config(format!("EMBER_BACKPRESSURE: {why}")))?;
        }
        Ok(self)
    }

    /// Sets the master (`local`, `local[N]`, `local[*]`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a master string ember does not understand.
    pub fn master(mut self, master: &str) -> Result<Self> {
        self.master = master.parse()?;
        Ok(self)
    }

    /// Sets the batch interval.
    pub fn batch_interval(mut self, interval: Duration) -> Self {
        self.batch_interval = interval;
        self
    }

    /// Serves the web UI at `address` (`host:port`; when the port is taken
    /// one of the next 16 is used, as Spark does; port 0 takes any free
    /// one), or turns it off with `None`. The default is `127.0.0.1:4040`:
    /// loopback only, so a UI on another interface has to be asked for.
    ///
    /// An address given here (or with `--ui`, `--ui-port`, `EMBER_UI`) that
    /// cannot be used makes [`StreamingContext::start`](crate::StreamingContext::start)
    /// fail with [`Error::Config`]; the default address that cannot be used
    /// only costs the UI, with a warning.
    pub fn ui(mut self, address: Option<&str>) -> Self {
        self.ui = address.map(str::to_string);
        self.ui_asked = address.is_some();
        self
    }

    /// How many connections the web UI serves at once (256 by default, at
    /// least 1). A connection beyond them is closed as soon as it is
    /// accepted, so that idle or slow clients cannot use up the file
    /// descriptors the sources need; the UI's answers are small and fast,
    /// so a few connections serve many viewers.
    pub fn ui_max_connections(mut self, connections: usize) -> Self {
        self.ui_max_connections = connections.max(1);
        self
    }

    /// Caps every receiver at `records_per_second` (Spark's
    /// `spark.streaming.receiver.maxRate`): it reads no faster, and no batch
    /// holds more than the rate times the batch interval from it.
    pub fn max_rate(mut self, records_per_second: f64) -> Self {
        self.max_rate = Some(records_per_second);
        self
    }

    /// Turns backpressure on or off (Spark's
    /// `spark.streaming.backpressure.enabled`): receivers read at the rate a
    /// PID estimator finds sustainable from the completed batches.
    pub fn backpressure(mut self, on: bool) -> Self {
        self.backpressure = on;
        self
    }

    /// With backpressure, the rate of the first batch, before any batch
    /// has completed (Spark's `spark.streaming.backpressure.initialRate`).
    pub fn backpressure_initial_rate(mut self, records_per_second: f64) -> Self {
        self.initial_rate = Some(records_per_second);
        self
    }

    /// The PID estimator's settings.
    pub fn backpressure_pid(mut self, pid: PidSettings) -> Self {
        self.pid = pid;
        self
    }

    /// How long a graceful stop may take before the context stops at once
    /// (Spark's `spark.streaming.gracefulStopTimeout`; default ten batch
    /// intervals).
    pub fn graceful_stop_timeout(mut self, timeout: Duration) -> Self {
        self.graceful_stop_timeout = Some(timeout);
        self
    }

    /// Whether the context installs ember's stderr log subscriber at start
    /// when the program has none (the default; see [`crate::logging`]). Off,
    /// nothing is logged unless the program installs a subscriber.
    pub fn default_logging(mut self, on: bool) -> Self {
        self.default_logging = on;
        self
    }

    /// Whether SIGTERM and Ctrl-C stop running contexts gracefully (the
    /// default; a second signal stops at once). Off, the signals keep their
    /// usual effect.
    pub fn stop_on_signals(mut self, on: bool) -> Self {
        self.stop_on_signals = on;
        self
    }

    /// Sets how often state is checkpointed (with
    /// [`StreamingContext::checkpoint`](crate::StreamingContext::checkpoint)).
    /// It must be a multiple of the slide of every stateful stream. The
    /// default, as Spark's, is the smallest such multiple of at least 10 s.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = Some(interval);
        self
    }

    /// Starts afresh even where a checkpoint could be resumed from: at
    /// start, what the checkpoint directory holds (checkpoints, plan logs,
    /// write-ahead logs) is moved into a new `set-aside-<unix ms>` folder
    /// inside it, logged at WARN, and the program starts from empty state.
    ///
    /// This is the explicit way past a checkpoint directory that
    /// [`StreamingContext::get_or_create`](crate::StreamingContext::get_or_create)
    /// refuses as damaged: ember never starts afresh over one on its own.
    /// In a cluster, process 0 moves the contents; give every process the
    /// flag. Also the `--fresh-start` flag of [`parse_args`](Self::parse_args).
    pub fn fresh_start(mut self, on: bool) -> Self {
        self.fresh_start = on;
        self
    }

    /// Sets the application name.
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = name.into();
        self
    }

    /// Takes ember's flags (`--master`, `--batch-interval`, `--name`, as
    /// `--flag value` or `--flag=value`) out of a program's arguments and
    /// returns the rest, in order, for the program itself.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a flag without its value or with a bad one.
    ///
    /// # Examples
    ///
    /// ```
    /// use ember_core::{StreamingConf, seconds};
    /// let args = ["localhost", "9999", "--master", "local[3]", "--batch-interval=500ms"];
    /// let (conf, rest) = StreamingConf::new("x", seconds(1))
    ///     .parse_args(args.iter().map(|s| s.to_string()))
    ///     .unwrap();
    /// assert_eq!(rest, ["localhost", "9999"]);
    /// assert_eq!(conf.workers(), 3);
    /// assert_eq!(conf.interval(), ember_core::millis(500));
    /// ```
    pub fn parse_args(
        mut self,
        args: impl IntoIterator<Item = String>,
    ) -> Result<(Self, Vec<String>)> {
        let mut rest = Vec::new();
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            if matches!(
                flag.as_str(),
                "--no-ui" | "--backpressure" | "--fresh-start"
            ) && inline.is_none()
            {
                self = self.apply(&flag, "")?;
                continue;
            }
            if !FLAGS.contains(&flag.as_str()) {
                rest.push(arg);
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => it.next().ok_or_else(|| {
                    Error::config(format!(
                        "{flag} needs a value, e.g. {flag} {}",
                        example(&flag)
                    ))
                })?,
            };
            self = self.apply(&flag, &value)?;
        }
        Ok((self, rest))
    }

    /// Applies one flag (or the environment variable standing for it).
    fn apply(self, flag: &str, value: &str) -> Result<Self> {
        let setting =
            Setting::parse(flag, value).map_err(|why| Error::config(format!("{flag}: {why}")))?;
        Ok(self.set(setting))
    }

    /// Puts one checked setting in place.
    pub(crate) fn set(mut self, setting: Setting) -> Self {
        match setting {
            Setting::Master(m) => self.master = m,
            Setting::BatchInterval(d) => self.batch_interval = d,
            Setting::Name(n) => self.app_name = n,
            Setting::Ui(address) => {
                self.ui_asked = address.is_some();
                self.ui = address;
            }
            Setting::UiMaxConnections(n) => self.ui_max_connections = n,
            Setting::MaxRate(r) => self.max_rate = Some(r),
            Setting::Backpressure(on) => self.backpressure = on,
            Setting::InitialRate(r) => self.initial_rate = Some(r),
            Setting::FreshStart(on) => self.fresh_start = on,
            Setting::GracefulStopTimeout(d) => self.graceful_stop_timeout = Some(d),
            Setting::CheckpointInterval(d) => self.checkpoint_interval = Some(d),
            Setting::Hosts(h) => self.cluster.hosts = Some(h),
            Setting::Process(p) => self.cluster.process = Some(p),
            Setting::ConnectTimeout(d) => self.connect_timeout = d,
            Setting::Workers(n) => self.cluster.workers = Some(n),
        }
        self
    }

    /// The application name.
    pub fn name(&self) -> &str {
        &self.app_name
    }

    /// The master.
    pub fn get_master(&self) -> &Master {
        &self.master
    }

    /// The batch interval.
    pub fn interval(&self) -> Duration {
        self.batch_interval
    }

    /// Worker threads in this process.
    pub fn workers(&self) -> usize {
        self.master.workers()
    }

    /// Checks the settings and fixes the interval in milliseconds.
    /// Where the web UI is asked to listen, if it is on.
    pub fn ui_address(&self) -> Option<&str> {
        self.ui.as_deref()
    }

    /// Whether backpressure is on.
    pub fn backpressure_enabled(&self) -> bool {
        self.backpressure
    }

    /// The bound on a graceful stop: as set, or ten batch intervals (as
    /// Spark's) but at least ten seconds, so that short intervals still
    /// leave time to drain.
    pub fn effective_graceful_stop_timeout(&self) -> Duration {
        self.graceful_stop_timeout
            .unwrap_or((self.batch_interval * 10).max(Duration::from_secs(10)))
    }

    /// A rate control for one receiver, from these settings.
    pub(crate) fn rate_control(&self) -> crate::rate::RateControl {
        crate::rate::RateControl::new(
            self.max_rate,
            self.backpressure.then_some((self.batch_ms, self.pid)),
            self.initial_rate,
        )
    }

    pub(crate) fn validated(mut self) -> Result<Self> {
        self.batch_ms = whole_millis(self.batch_interval, "the batch interval")?;
        if self.checkpoint_interval.is_some_and(|d| d.is_zero()) {
            return Err(Error::config(
                "the checkpoint interval must be longer than zero: give a multiple of the batch \
                 interval, e.g. ten intervals",
            ));
        }
        if let Master::Cluster {
            hosts,
            process,
            workers,
        } = &mut self.master
        {
            if let Some(h) = self.cluster.hosts.clone() {
                *hosts = h;
            }
            if let Some(p) = self.cluster.process {
                *process = p;
            }
            if let Some(w) = self.cluster.workers {
                *workers = w;
            }
            if hosts.is_empty() {
                return Err(Error::config(
                    "--master cluster needs every process's address: --hosts h1:p1,h2:p2 (or \
                     --hosts-file, or EMBER_HOSTS)",
                ));
            }
            if *process >= hosts.len() {
                return Err(Error::config(format!(
                    "--process {process} is out of range: --hosts lists {} process(es), indices \
                     0 to {}",
                    hosts.len(),
                    hosts.len() - 1
                )));
            }
        }
        Ok(self)
    }
}

/// One flag's value, checked: what [`StreamingConf::parse_args`], the
/// environment and the command-line parser of [`crate::cli`] all go
/// through, so that a flag means the same and is refused for the same
/// reasons whichever way it comes.
#[derive(Clone, Debug)]
pub(crate) enum Setting {
    Master(Master),
    BatchInterval(Duration),
    Name(String),
    /// `--ui`, `--ui-port`, `--no-ui`: where the UI listens, or no UI.
    Ui(Option<String>),
    UiMaxConnections(usize),
    MaxRate(f64),
    Backpressure(bool),
    InitialRate(f64),
    FreshStart(bool),
    GracefulStopTimeout(Duration),
    CheckpointInterval(Duration),
    /// `--hosts`, or `--hosts-file` once read.
    Hosts(Vec<String>),
    Process(usize),
    ConnectTimeout(Duration),
    Workers(usize),
}

impl Setting {
    /// Reads `value` as the value of `flag`. The error says what is wrong
    /// and what is accepted, without the flag's name (the caller puts it
    /// first). A switch (`--no-ui`, `--backpressure`, `--fresh-start`)
    /// given alone has the empty string as its value.
    pub(crate) fn parse(flag: &str, value: &str) -> std::result::Result<Setting, String> {
        let rate = |v: &str| match v.trim().parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
            _ => Err(format!(
                "`{v}` is not a positive number of records per second, e.g. {flag} 10000"
            )),
        };
        let duration = |v: &str| parse_duration(v).map_err(message);
        let switch = |v: &str| {
            if v.is_empty() {
                Ok(true)
            } else {
                parse_bool(v)
            }
        };
        Ok(match flag {
            "--master" => Setting::Master(value.parse().map_err(message)?),
            "--batch-interval" => Setting::BatchInterval(duration(value)?),
            "--name" => Setting::Name(value.to_string()),
            "--no-ui" => Setting::Ui(None),
            "--ui" if matches!(value.trim(), "off" | "false" | "none") => Setting::Ui(None),
            "--ui" => Setting::Ui(Some(ui_address(value)?)),
            "--ui-port" => {
                let port: u16 = value.trim().parse().map_err(|_| {
                    format!("`{value}` is not a port number: give 0 to 65535, e.g. 4040")
                })?;
                Setting::Ui(Some(format!("127.0.0.1:{port}")))
            }
            "--ui-max-connections" => Setting::UiMaxConnections(at_least_one(flag, value)?),
            "--max-rate" => Setting::MaxRate(rate(value)?),
            "--backpressure" => Setting::Backpressure(switch(value)?),
            "--fresh-start" => Setting::FreshStart(switch(value)?),
            "--backpressure-initial-rate" => Setting::InitialRate(rate(value)?),
            "--graceful-stop-timeout" => Setting::GracefulStopTimeout(duration(value)?),
            "--checkpoint-interval" => {
                let every = duration(value)?;
                if every.is_zero() {
                    return Err("must be longer than zero, e.g. --checkpoint-interval 10s".into());
                }
                Setting::CheckpointInterval(every)
            }
            "--hosts" => Setting::Hosts(hosts_list(value)?),
            "--hosts-file" => Setting::Hosts(hosts_file(value)?),
            "--process" => Setting::Process(process_index(value)?),
            "--connect-timeout" => Setting::ConnectTimeout(duration(value)?),
            "--workers" => Setting::Workers(at_least_one(flag, value)?),
            _ => return Err("is not one of ember's flags".into()),
        })
    }
}

/// An error's own words, without `Display`'s "invalid configuration: ".
fn message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

/// A count of at least one, for `flag`.
pub(crate) fn at_least_one(flag: &str, value: &str) -> std::result::Result<usize, String> {
    value
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            format!(
                "`{value}` is not a number ≥ 1, e.g. {flag} {}",
                example(flag)
            )
        })
}

/// The flags [`StreamingConf::parse_args`] takes with a value.
pub(crate) const FLAGS: &[&str] = &[
    "--master",
    "--batch-interval",
    "--name",
    "--ui",
    "--ui-port",
    "--ui-max-connections",
    "--max-rate",
    "--backpressure",
    "--backpressure-initial-rate",
    "--fresh-start",
    "--graceful-stop-timeout",
    "--checkpoint-interval",
    "--hosts",
    "--hosts-file",
    "--process",
    "--workers",
    "--connect-timeout",
];

fn example(flag: &str) -> &'static str {
    match flag {
        "--master" => "local[2]",
        "--batch-interval" | "--graceful-stop-timeout" => "1s",
        "--checkpoint-interval" => "10s",
        "--hosts" => "10.0.0.1:2101,10.0.0.2:2101",
        "--hosts-file" => "hosts.txt",
        "--process" => "0",
        "--connect-timeout" => "60s",
        "--ui" => "127.0.0.1:4040",
        "--ui-port" => "4040",
        "--ui-max-connections" => "256",
        "--workers" | "--processes" => "2",
        "--max-rate" | "--backpressure-initial-rate" => "10000",
        _ => "MyApp",
    }
}

/// `host:port,host:port,...`
fn hosts_list(value: &str) -> std::result::Result<Vec<String>, String> {
    let hosts: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .collect();
    for h in &hosts {
        let ok = h
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(format!(
                "`{h}` is not host:port; give every process's address, e.g. --hosts \
                 10.0.0.1:2101,10.0.0.2:2101"
            ));
        }
    }
    if hosts.is_empty() {
        return Err("the list is empty: give every process's host:port".into());
    }
    Ok(hosts)
}

/// The hosts of a file of `host:port` lines (`#` comments and blank lines
/// skipped).
fn hosts_file(path: &str) -> std::result::Result<Vec<String>, String> {
    use std::io::Read;
    // A hosts file is a few lines; a device or a wrong path to a huge file
    // is refused rather than read without end.
    const MAX: u64 = 1 << 20;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read the hosts file {path}: {e}"))?;
    if text.len() as u64 > MAX {
        return Err(format!(
            "the hosts file {path} is larger than 1 MiB: give a file of host:port lines"
        ));
    }
    let joined: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    hosts_list(&joined.join(",")).map_err(|why| format!("the hosts file {path}: {why}"))
}

/// A process index, or `ordinal`: the number at the end of the host name
/// (a Kubernetes StatefulSet's pod `ember-2` is process 2).
fn process_index(value: &str) -> std::result::Result<usize, String> {
    if value == "ordinal" {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .unwrap_or_default();
        let host = host.trim();
        return host
            .rsplit('-')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                format!(
                    "ordinal: the host name `{host}` does not end in -N (as a StatefulSet's pods \
                     do); give the index itself"
                )
            });
    }
    value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a process index (0, 1, ...) or `ordinal`"))
}

fn parse_bool(value: &str) -> std::result::Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(format!("`{value}` is not true or false")),
    }
}

/// A `host:port` the UI can bind; a bare port means loopback.
fn ui_address(value: &str) -> std::result::Result<String, String> {
    let v = value.trim();
    if let Ok(port) = v.parse::<u16>() {
        return Ok(format!("127.0.0.1:{port}"));
    }
    match v.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(v.to_string()),
        _ => Err(format!(
            "`{value}` is not host:port, a port (0 to 65535), or off; e.g. --ui 127.0.0.1:4040"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::seconds;

    #[test]
    fn masters() {
        assert_eq!("local".parse::<Master>().unwrap(), Master::Local(1));
        assert_eq!("local[4]".parse::<Master>().unwrap(), Master::Local(4));
        assert!(matches!("local[*]".parse::<Master>().unwrap(), Master::Local(n) if n >= 1));
        for bad in [
            "",
            "local[0]",
            "local[-1]",
            "local[x]",
            "yarn",
            "local[4",
            "spark://h:7077",
        ] {
            let e = bad.parse::<Master>().unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{bad}");
            assert!(e.to_string().contains("local[N]"), "{e}");
        }
    }

    #[test]
    fn flags_win_and_positional_args_stay() {
        let args = ["--master", "local[2]", "in", "--name=Foo", "--other", "x"];
        let (conf, rest) = StreamingConf::new("a", seconds(1))
            .parse_args(args.iter().map(|s| s.to_string()))
            .unwrap();
        assert_eq!(conf.workers(), 2);
        assert_eq!(conf.name(), "Foo");
        assert_eq!(rest, ["in", "--other", "x"]);
    }

    #[test]
    fn flag_without_value() {
        let e = StreamingConf::new("a", seconds(1))
            .parse_args(["--master".to_string()])
            .unwrap_err();
        assert!(e.to_string().contains("--master needs a value"), "{e}");
    }

    #[test]
    fn zero_interval_is_rejected() {
        let e = StreamingConf::new("a", Duration::ZERO)
            .validated()
            .unwrap_err();
        assert!(
            e.to_string().contains("batch interval must be positive"),
            "{e}"
        );
    }

    #[test]
    fn a_hosts_file_that_never_ends_is_refused() {
        let args = ["--hosts-file", "/dev/zero"].map(String::from);
        let e = StreamingConf::new("x", crate::seconds(1))
            .parse_args(args)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/dev/zero") && e.contains("larger than 1 MiB"),
            "{e}"
        );
    }

    #[test]
    fn a_zero_checkpoint_interval_is_refused() {
        let args = ["--checkpoint-interval", "0s"].map(String::from);
        let e = StreamingConf::new("x", crate::seconds(1))
            .parse_args(args)
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than zero"), "{e}");
        let e = StreamingConf::new("x", crate::seconds(1))
            .checkpoint_interval(std::time::Duration::ZERO)
            .validated()
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than zero"), "{e}");
    }

    #[test]
    fn the_default_graceful_stop_timeout_has_a_floor() {
        let conf = StreamingConf::new("x", crate::millis(1));
        assert_eq!(
            conf.effective_graceful_stop_timeout(),
            std::time::Duration::from_secs(10)
        );
        let conf = StreamingConf::new("x", crate::seconds(2));
        assert_eq!(
            conf.effective_graceful_stop_timeout(),
            std::time::Duration::from_secs(20)
        );
    }

    #[test]
    fn fresh_start_is_a_flag() {
        let (conf, rest) = StreamingConf::new("x", crate::seconds(1))
            .parse_args(["--fresh-start", "dir"].map(String::from))
            .unwrap();
        assert!(conf.fresh_start);
        assert_eq!(rest, ["dir"]);
        let (conf, _) = StreamingConf::new("x", crate::seconds(1))
            .parse_args(["--fresh-start=false"].map(String::from))
            .unwrap();
        assert!(!conf.fresh_start);
    }
}
