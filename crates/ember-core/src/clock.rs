//! Clocks: the system clock for real runs, a manual clock for tests.
//!
//! Batch times are read from a [`Clock`]. With [`ManualClock`] nothing moves
//! until the test calls [`ManualClock::advance`], so a test never sleeps on
//! wall time: it advances the clock by one interval and waits for that batch
//! to complete (see [`StreamingContext::await_batch`](crate::StreamingContext::await_batch)).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use timely::scheduling::SyncActivator;

/// The clock a streaming context reads batch times from.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Milliseconds since the Unix epoch.
    #[default]
    System,
    /// A clock that moves only when told to.
    Manual(ManualClock),
}

impl Clock {
    /// The current time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            Clock::Manual(m) => m.now_ms(),
        }
    }

    /// Asks to be woken (through `activator`) when a manual clock moves.
    /// The system clock wakes its readers by timers instead.
    pub(crate) fn register(&self, activator: SyncActivator) {
        if let Clock::Manual(m) = self {
            m.inner.lock().expect("clock lock").wakers.push(activator);
        }
    }

    /// Whether time passes by itself.
    pub(crate) fn is_system(&self) -> bool {
        matches!(self, Clock::System)
    }
}

/// A clock for tests: starts at a chosen time and moves only on `advance`.
///
/// Spark's `ManualClock` in ember: sources seal a batch when this clock
/// reaches the batch's time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualInner>>,
}

#[derive(Debug, Default)]
struct ManualInner {
    now: u64,
    wakers: Vec<SyncActivator>,
}

impl ManualClock {
    /// A clock at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock at `ms` milliseconds.
    pub fn starting_at(ms: u64) -> Self {
        let c = Self::new();
        c.inner.lock().expect("clock lock").now = ms;
        c
    }

    /// The current time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.inner.lock().expect("clock lock").now
    }

    /// Moves the clock forward and wakes the sources that read it.
    pub fn advance(&self, by: Duration) {
        let mut inner = self.inner.lock().expect("clock lock");
        inner.now += by.as_millis() as u64;
        // A worker that has finished drops its activations; forget those.
        inner.wakers.retain(|w| w.activate().is_ok());
    }
}
