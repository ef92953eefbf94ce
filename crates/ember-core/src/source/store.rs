//! Where directory streams find their files: the local file system, or any
//! store a connector registers for a URL scheme (`s3://`, `gs://`, `az://`,
//! `hdfs://`, ...).
//!
//! [`text_file_stream`](crate::StreamingScope::text_file_stream),
//! [`binary_records_stream`](crate::StreamingScope::binary_records_stream)
//! and [`file_stream`](crate::StreamingScope::file_stream) take a local
//! directory or a URL. A URL's scheme selects a [`FileStore`] registered
//! with [`register_file_store`] (ember's `object-store` feature registers
//! the cloud stores with `ember::object_store::install()`); `file://` URLs
//! and plain paths are the local file system. The directory semantics are
//! the same on every store: a batch takes the files directly in the
//! directory whose modification time is new, each once.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::UNIX_EPOCH;

/// A file found in a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// The file's full name as the store's `open` takes it (a local path,
    /// or a URL such as `s3://bucket/logs/part-1`).
    pub path: String,
    /// The file's base name (for the hidden-file rule: `.` and `_` first).
    pub name: String,
    /// Its modification time, in milliseconds since the Unix epoch.
    pub modified_ms: u64,
}

/// A file opened for reading: its bytes from the start, and its length.
pub struct OpenedFile {
    /// The file's bytes, from the start.
    pub reader: Box<dyn Read + Send>,
    /// Its length in bytes.
    pub len: u64,
}

/// A store of files that directory streams can watch. Implement it for a
/// storage system and [`register_file_store`] it for a URL scheme.
///
/// Calls come from the engine's worker threads and may block.
pub trait FileStore: Send + Sync + 'static {
    /// The files directly in `dir` (not in subdirectories). An error is
    /// logged and the listing tried again the next batch.
    fn list(&self, dir: &str) -> std::io::Result<Vec<StoredFile>>;

    /// Opens a file that [`list`](Self::list) returned. An error stops the
    /// context naming the file.
    fn open(&self, path: &str) -> std::io::Result<OpenedFile>;

    /// Checked when the stream is defined: `Err` (what is wrong and what to
    /// do) fails `start` for a directory that cannot be watched, such as a
    /// missing bucket or refused credentials. A store that cannot be
    /// reached yet should log that and return `Ok`: listings retry every
    /// batch.
    fn check(&self, dir: &str) -> Result<(), String>;

    /// The resolution of the store's modification times, in milliseconds
    /// (S3 lists whole seconds: 1000). The start threshold of
    /// [`FileStreamOptions::new_files_only`](crate::FileStreamOptions) is
    /// rounded down to it, so a file written just after the start is not
    /// taken for an old one (one written up to this long before the start
    /// may be taken as new).
    fn modified_resolution_ms(&self) -> u64 {
        1
    }
}

/// Makes the store that serves a URL (called once per stream defined).
pub type StoreOpener = dyn Fn(&str) -> Result<Arc<dyn FileStore>, String> + Send + Sync;

fn registry() -> &'static RwLock<HashMap<String, Arc<StoreOpener>>> {
    static STORES: OnceLock<RwLock<HashMap<String, Arc<StoreOpener>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// Registers `open` as the maker of stores for URLs `scheme://...`
/// (lowercase, without `://`), replacing any earlier one for that scheme.
pub fn register_file_store(
    scheme: &str,
    open: impl Fn(&str) -> Result<Arc<dyn FileStore>, String> + Send + Sync + 'static,
) {
    registry()
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(scheme.to_ascii_lowercase(), Arc::new(open));
}

/// The scheme of a URL (`s3` of `s3://b/k`), if `dir` is one. Windows
/// drive letters (`C:\`) are not schemes.
pub(crate) fn scheme_of(dir: &str) -> Option<&str> {
    let (scheme, _) = dir.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && scheme.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)))
    .then_some(scheme)
}

/// The store that serves `dir`, and the directory as that store names it.
pub(crate) fn resolve(dir: &str) -> Result<(Arc<dyn FileStore>, String), String> {
    let Some(scheme) = scheme_of(dir) else {
        return Ok((Arc::new(LocalStore), dir.to_string()));
    };
    let lower = scheme.to_ascii_lowercase();
    if lower == "file" {
        let path = &dir[scheme.len() + 3..];
        // file:///data/in and file://localhost/data/in name /data/in.
        let path = path.strip_prefix("localhost").unwrap_or(path);
        if !path.starts_with('/') {
            return Err(format!(
                "{dir}: a file:// URL names an absolute local path (file:///data/in)"
            ));
        }
        return Ok((Arc::new(LocalStore), path.to_string()));
    }
    let open = registry()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&lower)
        .cloned();
    match open {
        Some(open) => Ok((open(dir)?, dir.to_string())),
        None => Err(format!(
            "no file store is registered for {lower}:// URLs: build ember with the \
             `object-store` feature and call `ember::object_store::install()` before defining \
             streams (s3, s3a, gs, az, abfs, http and https are served there), or register \
             one with `ember::register_file_store`"
        )),
    }
}

/// The local file system.
pub(crate) struct LocalStore;

impl FileStore for LocalStore {
    fn list(&self, dir: &str) -> std::io::Result<Vec<StoredFile>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            // Follows symbolic links; a file that vanished meanwhile is skipped.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let Some(modified_ms) = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
            else {
                continue;
            };
            let file_name = entry.file_name();
            let (Some(path), Some(name)) = (path.to_str(), file_name.to_str()) else {
                tracing::warn!(
                    "{}: skipped, its name is not UTF-8 (rename it)",
                    path.display()
                );
                continue;
            };
            found.push(StoredFile {
                path: path.to_string(),
                name: name.to_string(),
                modified_ms,
            });
        }
        Ok(found)
    }

    fn open(&self, path: &str) -> std::io::Result<OpenedFile> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(OpenedFile {
            reader: Box::new(file),
            len,
        })
    }

    fn check(&self, dir: &str) -> Result<(), String> {
        match std::fs::metadata(dir) {
            Ok(m) if !m.is_dir() => Err(format!(
                "{dir} is not a directory: give the directory new files are moved into"
            )),
            Ok(_) => std::fs::read_dir(dir)
                .map(|_| ())
                .map_err(|e| format!("cannot read directory {dir}: check its permissions ({e})")),
            Err(e) => Err(format!(
                "cannot open directory {dir}: create it before starting ({e})"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_told_from_paths() {
        assert_eq!(scheme_of("s3://bucket/dir"), Some("s3"));
        assert_eq!(scheme_of("s3a://bucket/dir"), Some("s3a"));
        assert_eq!(scheme_of("HDFS://nn:8020/x"), Some("HDFS"));
        assert_eq!(scheme_of("/data/in"), None);
        assert_eq!(scheme_of("C://x"), None);
        assert_eq!(scheme_of("data/a://b"), None);
        assert_eq!(scheme_of("://x"), None);
    }

    #[test]
    fn file_urls_are_local_and_unknown_schemes_say_what_to_do() {
        let (_, dir) = resolve("file:///data/in").unwrap();
        assert_eq!(dir, "/data/in");
        let (_, dir) = resolve("file://localhost/data/in").unwrap();
        assert_eq!(dir, "/data/in");
        assert!(resolve("file://data/in").is_err());
        let err = resolve("nosuch://bucket/x").err().unwrap();
        assert!(err.contains("object-store"), "{err}");
    }
}
