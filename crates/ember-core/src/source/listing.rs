//! A directory stream's listings, kept from making every batch late.
//!
//! While listing the directory is quick, it is listed when a batch closes,
//! as Spark's file stream does. A directory whose listing takes more than
//! half the batch interval (a prefix of many thousand objects in an object
//! store) is then listed by a thread of its own: each batch takes the newest
//! finished listing at once and asks for the next, so at most one listing
//! is in flight and at most one starts per batch. New files then show up
//! one listing later; the listing's start time stands in for the batch time
//! in the remember window (see [`Listed::as_of`]), so a listing older than
//! the batch loses no file.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::listener::wall_ms;
use crate::source::store::{FileStore, StoredFile};

/// A listing and the time it reflects.
pub(crate) struct Listed {
    /// The files in the directory.
    pub(crate) files: Arc<Vec<StoredFile>>,
    /// The batch time for a listing made at the batch; for an older one,
    /// the wall-clock time it started (earlier than anything it missed).
    pub(crate) as_of: u64,
}

/// What the listing thread and the batches share.
#[derive(Default)]
struct Slot {
    /// A finished listing and the wall-clock time (ms) it started.
    done: Option<(u64, std::io::Result<Vec<StoredFile>>)>,
    /// A batch asked for a new listing.
    wanted: bool,
    /// The stream is gone: the thread ends.
    stop: bool,
}

type Shared = Arc<(Mutex<Slot>, Condvar)>;

/// The listing thread's side, once listings moved to it.
struct Background {
    shared: Shared,
    /// The newest finished listing and when it started.
    newest: Arc<Vec<StoredFile>>,
    newest_at: u64,
}

/// Lists a directory for its stream's batches (see the module docs).
pub(crate) struct Lister {
    name: String,
    store: Arc<dyn FileStore>,
    dir: String,
    interval_ms: u64,
    background: Option<Background>,
}

impl Lister {
    pub(crate) fn new(
        name: String,
        store: Arc<dyn FileStore>,
        dir: String,
        interval_ms: u64,
    ) -> Self {
        Lister {
            name,
            store,
            dir,
            interval_ms,
            background: None,
        }
    }

    /// The listing the batch at `time` uses.
    pub(crate) fn list(&mut self, time: u64) -> std::io::Result<Listed> {
        if let Some(bg) = self.background.as_mut() {
            let (lock, wake) = &*bg.shared;
            let mut slot = lock.lock().expect("listing slot");
            let finished = slot.done.take();
            slot.wanted = true;
            wake.notify_one();
            drop(slot);
            if let Some((started, result)) = finished {
                bg.newest = Arc::new(result?);
                bg.newest_at = started;
            }
            return Ok(Listed {
                files: bg.newest.clone(),
                as_of: bg.newest_at.min(time),
            });
        }
        let started = Instant::now();
        let files = Arc::new(self.store.list(&self.dir)?);
        let took = started.elapsed();
        if took > Duration::from_millis(self.interval_ms / 2) {
            tracing::info!(
                source = %self.name,
                "listing {} took {} ms, more than half the batch interval: it is listed in the \
                 background from now on, each batch taking the newest finished listing (new \
                 files show up one listing later)",
                self.dir,
                took.as_millis()
            );
            self.background = self.start_thread(files.clone(), time);
        }
        Ok(Listed { files, as_of: time })
    }

    /// The listing thread, or `None` (listings stay at each batch) when
    /// none can be started.
    fn start_thread(&self, newest: Arc<Vec<StoredFile>>, newest_at: u64) -> Option<Background> {
        let shared: Shared = Arc::default();
        let (store, dir, slot) = (self.store.clone(), self.dir.clone(), shared.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("ember-list-{}", self.name))
            .spawn(move || loop {
                let (lock, wake) = &*slot;
                let mut s = lock.lock().expect("listing slot");
                while !s.wanted && !s.stop {
                    s = wake.wait(s).expect("listing slot");
                }
                if s.stop {
                    return;
                }
                s.wanted = false;
                drop(s);
                let started = wall_ms();
                let result = store.list(&dir);
                lock.lock().expect("listing slot").done = Some((started, result));
            });
        if let Err(e) = spawned {
            tracing::warn!(
                source = %self.name,
                "cannot start a listing thread ({e}): listing at each batch"
            );
            return None;
        }
        Some(Background {
            shared,
            newest,
            newest_at,
        })
    }
}

impl Drop for Lister {
    fn drop(&mut self) {
        if let Some(bg) = &self.background {
            let (lock, wake) = &*bg.shared;
            if let Ok(mut s) = lock.lock() {
                s.stop = true;
            }
            wake.notify_all();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store that takes `delay` to list, counting its listings.
    #[derive(Default)]
    pub(crate) struct SlowStore {
        pub(crate) files: Mutex<Vec<StoredFile>>,
        pub(crate) delay: Duration,
        listings: (Mutex<usize>, Condvar),
    }

    impl SlowStore {
        pub(crate) fn new(delay: Duration) -> Arc<SlowStore> {
            Arc::new(SlowStore {
                delay,
                ..Default::default()
            })
        }

        pub(crate) fn add(&self, name: &str, modified_ms: u64) {
            self.files.lock().unwrap().push(StoredFile {
                path: format!("d/{name}"),
                name: name.to_string(),
                modified_ms,
            });
        }

        /// Waits until `n` listings have finished.
        pub(crate) fn await_listings(&self, n: usize) {
            let (count, done) = &self.listings;
            let guard = count.lock().unwrap();
            let (_guard, timeout) = done
                .wait_timeout_while(guard, Duration::from_secs(30), |c| *c < n)
                .unwrap();
            assert!(!timeout.timed_out(), "{n} listings never finished");
        }
    }

    impl FileStore for SlowStore {
        fn list(&self, _dir: &str) -> std::io::Result<Vec<StoredFile>> {
            // The store's own slowness (a large prefix), not a wait for the test.
            std::thread::sleep(self.delay);
            let files = self.files.lock().unwrap().clone();
            *self.listings.0.lock().unwrap() += 1;
            self.listings.1.notify_all();
            Ok(files)
        }

        fn open(&self, path: &str) -> std::io::Result<crate::source::store::OpenedFile> {
            Err(std::io::Error::other(format!("{path}: not readable here")))
        }

        fn check(&self, _dir: &str) -> Result<(), String> {
            Ok(())
        }
    }

    fn names(listed: &Listed) -> Vec<&str> {
        listed.files.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn a_quick_listing_is_made_at_each_batch() {
        let store = SlowStore::new(Duration::ZERO);
        let mut lister = Lister::new("t".into(), store.clone(), "d".into(), 1000);
        store.add("a", 1);
        let first = lister.list(1000).unwrap();
        assert_eq!((names(&first), first.as_of), (vec!["a"], 1000));
        store.add("b", 2);
        let second = lister.list(2000).unwrap();
        assert_eq!((names(&second), second.as_of), (vec!["a", "b"], 2000));
        assert!(lister.background.is_none());
    }

    #[test]
    fn a_slow_listing_moves_to_the_background_and_batches_take_the_newest() {
        let store = SlowStore::new(Duration::from_millis(30));
        let mut lister = Lister::new("t".into(), store.clone(), "d".into(), 20);
        store.add("a", 1);
        // Far ahead of the wall clock, so the listing's start is older.
        let t = wall_ms() + 3_600_000;
        let first = lister.list(t).unwrap();
        assert_eq!((names(&first), first.as_of), (vec!["a"], t));
        assert!(lister.background.is_some());
        store.add("b", 2);
        // At once: the newest finished listing, and a new one asked for.
        let before = wall_ms();
        let second = lister.list(t + 20).unwrap();
        assert_eq!((names(&second), second.as_of), (vec!["a"], t));
        store.await_listings(2);
        let third = lister.list(t + 40).unwrap();
        assert_eq!(names(&third), ["a", "b"]);
        // The listing's start time, not the batch's.
        assert!(
            third.as_of >= before && third.as_of < t,
            "{} not in {before}..{t}",
            third.as_of
        );
    }
}
