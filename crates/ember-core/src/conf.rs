//! Configuration: master, batch interval and friends, from code, environment
//! and command line, in the manner of `spark-submit`.
//!
//! Precedence, lowest first: defaults, environment (`EMBER_MASTER`,
//! `EMBER_BATCH_INTERVAL`, `EMBER_APP_NAME`), code, then command-line flags
//! read by [`StreamingConf::parse_args`]:
//!
//! | flag | meaning | example |
//! |---|---|---|
//! | `--master M` | where to run | `local[4]`, `local[*]`, `local` |
//! | `--batch-interval D` | the batch interval | `1s`, `500ms` |
//! | `--name N` | the application name | `NetworkWordCount` |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::time::{parse_duration, whole_millis};

/// Where a streaming program runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Master {
    /// `local[N]`: N worker threads in this process (`local` is `local[1]`,
    /// `local[*]` one per core).
    Local(usize),
}

impl Master {
    /// The number of worker threads in this process.
    pub fn workers(&self) -> usize {
        match self {
            Master::Local(n) => *n,
        }
    }
}

impl fmt::Display for Master {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Master::Local(n) => write!(f, "local[{n}]"),
        }
    }
}

impl FromStr for Master {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::config(format!(
                "invalid master `{s}`: {why}; use local, local[N] with N ≥ 1, or local[*]"
            ))
        };
        let t = s.trim();
        if t == "local" {
            return Ok(Master::Local(1));
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
}

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
        }
    }

    /// Reads `EMBER_MASTER`, `EMBER_BATCH_INTERVAL` and `EMBER_APP_NAME` when set.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a variable is set but malformed.
    pub fn with_env(mut self) -> Result<Self> {
        if let Ok(m) = std::env::var("EMBER_MASTER") {
            self = self.master(&m)?;
        }
        if let Ok(d) = std::env::var("EMBER_BATCH_INTERVAL") {
            self.batch_interval = parse_duration(&d)?;
        }
        if let Ok(n) = std::env::var("EMBER_APP_NAME") {
            self.app_name = n;
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

    /// Sets how often state is checkpointed (with
    /// [`StreamingContext::checkpoint`](crate::StreamingContext::checkpoint)).
    /// It must be a multiple of the slide of every stateful stream. The
    /// default, as Spark's, is the smallest such multiple of at least 10 s.
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = Some(interval);
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
            if !matches!(flag.as_str(), "--master" | "--batch-interval" | "--name") {
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
            match flag.as_str() {
                "--master" => self = self.master(&value)?,
                "--batch-interval" => self.batch_interval = parse_duration(&value)?,
                _ => self.app_name = value,
            }
        }
        Ok((self, rest))
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
    pub(crate) fn validated(mut self) -> Result<Self> {
        self.batch_ms = whole_millis(self.batch_interval, "the batch interval")?;
        Ok(self)
    }
}

fn example(flag: &str) -> &'static str {
    match flag {
        "--master" => "local[2]",
        "--batch-interval" => "1s",
        _ => "MyApp",
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
}
