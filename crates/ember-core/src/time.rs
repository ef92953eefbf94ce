//! Durations and batch times.
//!
//! ember uses [`std::time::Duration`] for intervals, with Spark-like helpers
//! ([`seconds`], [`millis`], [`minutes`]) and a parser for the short forms
//! used on command lines (`500ms`, `2s`, `1m`, in `duration.rs`). A batch is labelled with a
//! [`Time`]: milliseconds since the Unix epoch (or since the manual clock's
//! zero in tests), always a multiple of the batch interval.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `n` milliseconds, as Spark's `Milliseconds(n)`.
pub const fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `n` seconds, as Spark's `Seconds(n)`.
pub const fn seconds(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` minutes, as Spark's `Minutes(n)`.
pub const fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// The time of a batch: milliseconds since the clock's epoch.
///
/// Displays as Spark's `Time` does: `1357008430000 ms`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(u64);

impl Time {
    /// A time `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Time(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn milliseconds(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0)
    }
}

/// Shows a millisecond count as Spark shows a `Duration`: `1000 ms`.
pub(crate) fn show_ms(ms: u64) -> String {
    format!("{ms} ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_displays_like_spark() {
        assert_eq!(
            Time::from_millis(1357008430000).to_string(),
            "1357008430000 ms"
        );
    }
}
