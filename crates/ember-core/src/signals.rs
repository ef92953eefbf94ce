//! SIGTERM and Ctrl-C stop running contexts gracefully.
//!
//! The first signal asks every active context to stop gracefully (bounded by
//! its graceful stop timeout); a second one, or a signal when no context is
//! running, ends the process at once, as the signal would have by default.

use std::sync::{Mutex, Once, Weak};

use crate::runtime::Shared;

static ACTIVE: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Registers a started context, installing the handler on first use.
pub(crate) fn watch(shared: &std::sync::Arc<Shared>) {
    {
        let mut active = ACTIVE.lock().expect("signal registry lock");
        active.retain(|w| w.strong_count() > 0);
        active.push(std::sync::Arc::downgrade(shared));
    }
    INSTALL.call_once(install);
}

#[cfg(unix)]
fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;

    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM/SIGINT, a signal will not stop gracefully: {e}");
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("ember-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                let running: Vec<_> = ACTIVE
                    .lock()
                    .expect("signal registry lock")
                    .iter()
                    .filter_map(Weak::upgrade)
                    .filter(|s| !s.is_terminated())
                    .collect();
                if stopping || running.is_empty() {
                    if stopping {
                        tracing::warn!("{name} again: exiting now");
                    }
                    std::process::exit(128 + signal);
                }
                stopping = true;
                tracing::info!("{name}: stopping gracefully (send it again to exit at once)");
                for shared in running {
                    std::thread::spawn(move || shared.stop_from_signal());
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the signal thread: {e}");
    }
}

#[cfg(not(unix))]
fn install() {}
