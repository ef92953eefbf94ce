//! Directory streams over object stores: `text_file_stream("s3://bucket/logs/")`.
//!
//! [`install`] registers a [`FileStore`] for the URL schemes of the
//! [`object_store`] crate: `s3://` and `s3a://` (AWS S3 and S3-compatible
//! servers), `gs://` (Google Cloud Storage), `az://`, `azure://`, `abfs://`,
//! `abfss://` and `adl://` (Azure Blob Storage and Data Lake), and `http://`
//! / `https://` (a WebDAV-style HTTP server); with the `hdfs` feature also
//! `hdfs://` and `viewfs://` (HDFS, through the hdfs-native client: no JVM,
//! the NameNode's RPC protocol spoken in Rust, settings from
//! `HADOOP_CONF_DIR`'s core-site.xml and hdfs-site.xml and from the
//! options, e.g. `("dfs.ha.namenodes.ns", "nn1,nn2")`; a NameNode that
//! does not answer is given up on after 2 attempts, not Hadoop's 15, unless
//! the options set `dfs.client.failover.max.attempts`). After it,
//! [`text_file_stream`](ember_core::StreamingScope::text_file_stream),
//! [`binary_records_stream`](ember_core::StreamingScope::binary_records_stream)
//! and [`file_stream`](ember_core::StreamingScope::file_stream) take such
//! URLs with the same semantics as local directories: a batch takes the
//! objects directly under the prefix (not in "subdirectories") whose
//! last-modified time is new, each once; names starting with `.` or `_`
//! are ignored; with checkpointing, every batch's objects are logged and a
//! restart reads exactly the same objects again.
//!
//! Credentials, regions and endpoints come from the environment as the
//! cloud tools name them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ENDPOINT` for an S3-compatible server, instance
//! metadata on EC2; `GOOGLE_SERVICE_ACCOUNT`, `GOOGLE_APPLICATION_CREDENTIALS`;
//! `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY`, ...), or
//! from [`install_with`]'s options (`aws_endpoint`, `aws_region`, ... — the
//! same names, lowercase). An `http://` endpoint is allowed without further
//! settings.
//!
//! ```no_run
//! use ember_core::{seconds, StreamingConf, StreamingContext};
//!
//! ember_object_store::install();
//! let ssc = StreamingContext::new(StreamingConf::new("S3WordCount", seconds(2)))?;
//! ssc.define(|s| {
//!     s.text_file_stream("s3://my-bucket/incoming/")
//!         .flat_map(|line| line.split(' ').map(str::to_string).collect::<Vec<_>>())
//!         .map(|w| (w, 1u64))
//!         .reduce_by_key(|a, b| a + b)
//!         .print();
//! })?;
//! # Ok::<(), ember_core::Error>(())
//! ```
//!
//! Errors: a missing bucket, refused credentials or a malformed URL fail
//! `start` with [`ember_core::Error::Source`]. A store that cannot be
//! reached is retried: at start with a warning, at each batch's listing
//! with a warning (objects that arrive meanwhile are taken when it
//! returns), and while an object is read (from where the read stopped, for
//! up to [`READ_RETRY_LIMIT`]). An object that changes while it is read
//! stops the context naming it: write objects whole, once.

use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ember_core::{register_file_store, FileStore, OpenedFile, StoredFile};
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreScheme, RetryConfig};
use url::Url;

/// The URL schemes [`install`] registers (`hdfs` and `viewfs` read HDFS
/// with the `hdfs` feature, and say that they need it without).
pub const SCHEMES: &[&str] = &[
    "s3", "s3a", "gs", "az", "azure", "abfs", "abfss", "adl", "http", "https", "hdfs", "viewfs",
];

/// How long reading an object keeps retrying a store that cannot be
/// reached, without progress, before the context stops.
pub const READ_RETRY_LIMIT: Duration = Duration::from_secs(300);

/// Registers the object stores for [`SCHEMES`], configured from the
/// environment. Call it once before defining streams; calling it again is
/// harmless.
pub fn install() {
    install_with(Vec::<(String, String)>::new());
}

/// [`install`] with configuration options for every store, on top of the
/// environment's: `object_store`'s configuration keys, e.g.
/// `("aws_endpoint", "http://127.0.0.1:9000")`, `("aws_region", "eu-west-1")`,
/// `("google_service_account", "/path/key.json")`. An unknown key is an
/// error when a stream using that store is defined.
pub fn install_with<K: Into<String>, V: Into<String>>(options: impl IntoIterator<Item = (K, V)>) {
    let options: Arc<Vec<(String, String)>> = Arc::new(
        options
            .into_iter()
            .map(|(k, v)| (k.into().to_ascii_lowercase(), v.into()))
            .collect(),
    );
    for scheme in SCHEMES {
        let options = options.clone();
        register_file_store(scheme, move |url| {
            ObjectFileStore::open(url, &options).map(|s| Arc::new(s) as Arc<dyn FileStore>)
        });
    }
}

/// Registers `scheme` as another name for the store kind `like` (one of
/// [`SCHEMES`]) with its own options, so one program can read two stores of
/// one kind configured differently: after
/// `install_as("minio", "s3", [("aws_endpoint", "http://10.0.0.5:9000")])`,
/// `minio://bucket/in/` is read from that S3-compatible server while
/// `s3://` URLs still go to AWS.
///
/// # Panics
///
/// If `like` is not one of [`SCHEMES`] (a programming error).
pub fn install_as<K: Into<String>, V: Into<String>>(
    scheme: &str,
    like: &str,
    options: impl IntoIterator<Item = (K, V)>,
) {
    let like = like.to_ascii_lowercase();
    assert!(
        SCHEMES.contains(&like.as_str()),
        "install_as: {like} is not one of {SCHEMES:?}"
    );
    let options: Vec<(String, String)> = options
        .into_iter()
        .map(|(k, v)| (k.into().to_ascii_lowercase(), v.into()))
        .collect();
    let scheme = scheme.to_ascii_lowercase();
    let name = scheme.clone();
    register_file_store(&scheme, move |url| {
        let rest = &url[name.len()..];
        ObjectFileStore::open(&format!("{like}{rest}"), &options).map(|mut store| {
            // Files keep the URL scheme the program gave.
            store.root = format!("{name}{}", &store.root[like.len()..]);
            Arc::new(store) as Arc<dyn FileStore>
        })
    });
}

/// The runtime the stores' requests run on (the engine's threads block on it).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ember-object-store")
            .enable_all()
            .build()
            .expect("cannot start the object store's I/O threads")
    })
}

/// A directory (prefix) in an object store.
struct ObjectFileStore {
    store: Arc<dyn ObjectStore>,
    /// The URL up to the object path: `s3://bucket`.
    root: String,
    /// What to check when the store refuses: the settings of its kind.
    settings: &'static str,
}

/// Whether an error of the store may pass by itself (the store cannot be
/// reached, is overloaded or failed), as against a refusal to act on.
fn transient(err: &object_store::Error) -> bool {
    use object_store::Error as E;
    if matches!(
        err,
        E::NotFound { .. }
            | E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
            | E::Precondition { .. }
            | E::InvalidPath { .. }
            | E::NotSupported { .. }
            | E::UnknownConfigurationKey { .. }
    ) {
        return false;
    }
    // A request that got no answer (connection refused or reset, timeout).
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.is::<object_store::client::HttpError>() {
            return true;
        }
        // A client speaking its own protocol (HDFS's RPC) fails with I/O.
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::TimedOut
                    | K::BrokenPipe
                    | K::UnexpectedEof
                    | K::HostUnreachable
                    | K::NetworkUnreachable
            ) {
                return true;
            }
        }
        cause = e.source();
    }
    // An answer: the server's failures and "slow down" pass, refusals don't.
    let text = describe(err);
    match text
        .split_once("status code: ")
        .and_then(|(_, rest)| rest.get(..3)?.parse::<u16>().ok())
    {
        Some(status) => status >= 500 || status == 429 || status == 408,
        None => false,
    }
}

/// An error's message with its causes, for one log line; an XML error
/// document from the server is cut to its code and message.
fn describe(err: &dyn std::error::Error) -> String {
    let text = ember_core::error_chain(err);
    match text.find("<?xml") {
        Some(at) => {
            let tag = |name: &str| {
                let open = format!("<{name}>");
                let start = text[at..].find(&open)? + at + open.len();
                let end = text[start..].find('<')? + start;
                Some(text[start..end].to_string())
            };
            let said = match (tag("Code"), tag("Message")) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code,
                _ => "an XML error document".to_string(),
            };
            format!("{}{said}", &text[..at])
        }
        None => text,
    }
}

fn io_error(err: object_store::Error) -> std::io::Error {
    let kind = match &err {
        object_store::Error::NotFound { .. } => std::io::ErrorKind::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => std::io::ErrorKind::PermissionDenied,
        _ => std::io::ErrorKind::Other,
    };
    std::io::Error::new(kind, describe(&err))
}

/// An `hdfs://` or `viewfs://` store: `hdfs://namenode:port/path` (or a
/// name service `hdfs://ns/path`), with the Hadoop settings of
/// `HADOOP_CONF_DIR` (core-site.xml, hdfs-site.xml) and the options.
#[cfg(feature = "hdfs")]
fn hdfs_store(
    parsed: &Url,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, String), String> {
    let url = parsed.as_str();
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{url}: name the NameNode, e.g. hdfs://namenode:8020/path"))?;
    let root = match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    };
    // Hadoop's client retries a NameNode it cannot reach for minutes (15
    // attempts, sleeps up to 15 s); ember lists again every batch, so a call
    // gives up sooner unless the options say otherwise.
    let mut config: std::collections::HashMap<String, String> = [
        ("dfs.client.failover.max.attempts", "2"),
        ("dfs.client.failover.sleep.base.millis", "100"),
        ("dfs.client.failover.sleep.max.millis", "1000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    config.extend(options.iter().cloned());
    let store = hdfs_native_object_store::HdfsObjectStoreBuilder::new()
        .with_url(&root)
        .with_config(config)
        .with_io_runtime(runtime().handle().clone())
        .build()
        .map_err(|e| format!("{url}: {}", describe(&e)))?;
    Ok((Arc::new(store), root))
}

#[cfg(not(feature = "hdfs"))]
fn hdfs_store(
    parsed: &Url,
    _options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, String), String> {
    Err(format!(
        "{parsed}: HDFS is read with ember's `hdfs` cargo feature (ember-streaming's `hdfs`, \
         or ember-streaming-object-store's): turn it on"
    ))
}

impl ObjectFileStore {
    fn open(url: &str, options: &[(String, String)]) -> Result<Self, String> {
        let parsed = Url::parse(url).map_err(|e| format!("{url} is not a valid URL: {e}"))?;
        if matches!(parsed.scheme(), "hdfs" | "viewfs") {
            let (store, root) = hdfs_store(&parsed, options)?;
            return Ok(ObjectFileStore {
                store,
                root,
                settings:
                    "HADOOP_CONF_DIR (core-site.xml, hdfs-site.xml), the NameNode's host and \
                           port, and HADOOP_USER_NAME",
            });
        }
        let (scheme, path) = ObjectStoreScheme::parse(&parsed)
            .map_err(|e| format!("{url} is not an object store URL ember can read: {e}"))?;
        let bare = url.split(['?', '#']).next().unwrap_or(url);
        let root = bare
            .trim_end_matches('/')
            .strip_suffix(path.as_ref())
            .unwrap_or(&parsed[..url::Position::BeforePath])
            .trim_end_matches('/')
            .to_string();
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..Default::default()
        };
        let bad = |e: object_store::Error| format!("{url}: {}", describe(&e));
        let store: Arc<dyn ObjectStore> = match scheme {
            ObjectStoreScheme::AmazonS3 => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::from_env().with_url(url);
                for (k, v) in options {
                    let key: AmazonS3ConfigKey = k.parse().map_err(bad)?;
                    b = b.with_config(key, v);
                }
                let endpoint = b.get_config_value(&AmazonS3ConfigKey::Endpoint);
                if endpoint.is_some_and(|e| e.starts_with("http://")) {
                    b = b.with_allow_http(true);
                }
                Arc::new(b.with_retry(retry).build().map_err(bad)?)
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(url);
                for (k, v) in options {
                    let key: GoogleConfigKey = k.parse().map_err(bad)?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.with_retry(retry).build().map_err(bad)?)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env().with_url(url);
                for (k, v) in options {
                    let key: AzureConfigKey = k.parse().map_err(bad)?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.with_retry(retry).build().map_err(bad)?)
            }
            ObjectStoreScheme::Http => {
                let origin = &parsed[..url::Position::BeforePath];
                let b = object_store::http::HttpBuilder::new()
                    .with_url(origin)
                    .with_client_options(object_store::ClientOptions::new().with_allow_http(true));
                Arc::new(b.with_retry(retry).build().map_err(bad)?)
            }
            other => {
                return Err(format!(
                    "{url}: {other:?} URLs are not served by ember's object store connector"
                ))
            }
        };
        let settings = match scheme {
            ObjectStoreScheme::AmazonS3 => "AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID",
            ObjectStoreScheme::GoogleCloudStorage => {
                "GOOGLE_SERVICE_ACCOUNT, GOOGLE_APPLICATION_CREDENTIALS"
            }
            ObjectStoreScheme::MicrosoftAzure => {
                "AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, \
                 AZURE_STORAGE_USE_EMULATOR"
            }
            _ => "the URL",
        };
        Ok(ObjectFileStore {
            store,
            root,
            settings,
        })
    }

    /// The object path a URL of this store names.
    fn object_path(&self, url: &str) -> std::io::Result<Path> {
        let rest = url
            .strip_prefix(&self.root)
            .map(|r| r.trim_start_matches('/'))
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{url} is not in {}", self.root),
                )
            })?;
        Path::parse(rest).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }

    fn url_of(&self, path: &Path) -> String {
        format!("{}/{}", self.root, path)
    }

    /// Lists the objects directly under `dir`.
    async fn list_dir(&self, dir: &str) -> object_store::Result<Vec<StoredFile>> {
        let prefix = self
            .object_path(dir)
            .map_err(|e| object_store::Error::Generic {
                store: "ember",
                source: Box::new(e),
            })?;
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        let listing = self.store.list_with_delimiter(prefix.as_ref()).await?;
        Ok(listing
            .objects
            .into_iter()
            .map(|meta| StoredFile {
                path: self.url_of(&meta.location),
                name: meta.location.filename().unwrap_or_default().to_string(),
                modified_ms: meta.last_modified.timestamp_millis().max(0) as u64,
            })
            .collect())
    }
}

impl FileStore for ObjectFileStore {
    fn list(&self, dir: &str) -> std::io::Result<Vec<StoredFile>> {
        runtime().block_on(self.list_dir(dir)).map_err(io_error)
    }

    fn open(&self, url: &str) -> std::io::Result<OpenedFile> {
        let path = self.object_path(url)?;
        let mut reader = ObjectReader {
            store: self.store.clone(),
            url: url.to_string(),
            path,
            etag: None,
            stream: None,
            chunk: bytes::Bytes::new(),
            pos: 0,
            len: u64::MAX,
        };
        reader.request()?;
        let len = reader.len;
        Ok(OpenedFile {
            reader: Box::new(reader),
            len,
        })
    }

    fn check(&self, dir: &str) -> Result<(), String> {
        match runtime().block_on(self.list_dir(dir)) {
            Ok(_) => Ok(()),
            Err(e) if transient(&e) => {
                tracing::warn!(
                    "cannot reach the store of {dir} yet ({}); starting anyway, its listing is \
                     tried again every batch",
                    describe(&e)
                );
                Ok(())
            }
            Err(e) => Err(format!(
                "cannot list {dir}: {} (check that the bucket or container exists, the \
                 credentials, region and endpoint in the environment, e.g. {})",
                describe(&e),
                self.settings
            )),
        }
    }

    fn modified_resolution_ms(&self) -> u64 {
        // S3's listings (and most S3-compatible servers') give whole seconds.
        1000
    }
}

/// An object's bytes from `pos` on, re-requested from where it stopped
/// when the connection fails.
struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    url: String,
    path: Path,
    /// The version first read: a later request for another one fails.
    etag: Option<String>,
    stream: Option<BoxStream<'static, object_store::Result<bytes::Bytes>>>,
    chunk: bytes::Bytes,
    pos: u64,
    len: u64,
}

impl ObjectReader {
    /// Requests the object from `pos` on, retrying while the store cannot
    /// be reached.
    fn request(&mut self) -> std::io::Result<()> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(200);
        loop {
            let options = GetOptions {
                range: (self.pos > 0).then_some(GetRange::Offset(self.pos)),
                if_match: self.etag.clone(),
                ..Default::default()
            };
            match runtime().block_on(self.store.get_opts(&self.path, options)) {
                Ok(got) => {
                    if self.etag.is_none() {
                        self.etag = got.meta.e_tag.clone();
                        self.len = got.meta.size;
                    }
                    self.stream = Some(got.into_stream());
                    return Ok(());
                }
                Err(e) => self.retry_or_fail(e, started, &mut wait)?,
            }
        }
    }

    fn retry_or_fail(
        &self,
        e: object_store::Error,
        started: Instant,
        wait: &mut Duration,
    ) -> std::io::Result<()> {
        if let object_store::Error::Precondition { .. } = e {
            return Err(std::io::Error::other(format!(
                "{} changed while it was read (write objects whole, once)",
                self.url
            )));
        }
        if !transient(&e) || started.elapsed() > READ_RETRY_LIMIT {
            return Err(io_error(e));
        }
        tracing::warn!(
            "reading {} at byte {}: {}; retrying in {:?}",
            self.url,
            self.pos,
            describe(&e),
            wait
        );
        std::thread::sleep(*wait);
        *wait = (*wait * 2).min(Duration::from_secs(5));
        Ok(())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(200);
        while self.chunk.is_empty() {
            if self.pos >= self.len {
                return Ok(0);
            }
            if self.stream.is_none() {
                self.request()?;
            }
            let stream = self.stream.as_mut().expect("requested");
            match runtime().block_on(stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => {
                    self.stream = None;
                    self.retry_or_fail(e, started, &mut wait)?;
                }
                None => {
                    self.stream = None;
                    if self.pos < self.len {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("{} ended at byte {} of {}", self.url, self.pos, self.len),
                        ));
                    }
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(not(feature = "hdfs"))]
    #[test]
    fn hdfs_without_its_feature_says_which_to_turn_on() {
        let err = ObjectFileStore::open("hdfs://namenode:8020/in/", &[])
            .err()
            .expect("refused");
        assert!(err.contains("`hdfs` cargo feature"), "{err}");
    }

    #[cfg(feature = "hdfs")]
    #[test]
    fn hdfs_roots_object_paths_and_a_missing_namenode() {
        let s = ObjectFileStore::open("hdfs://namenode:8020/user/ember/in/", &[]).unwrap();
        assert_eq!(s.root, "hdfs://namenode:8020");
        assert_eq!(
            s.object_path("hdfs://namenode:8020/user/ember/in")
                .unwrap()
                .as_ref(),
            "user/ember/in"
        );
        assert_eq!(
            s.url_of(&Path::from("user/ember/in/part-0")),
            "hdfs://namenode:8020/user/ember/in/part-0"
        );
        // A name service (resolved through the Hadoop settings): no port.
        let ns = [
            ("dfs.ha.namenodes.ns".to_string(), "nn1".to_string()),
            (
                "dfs.namenode.rpc-address.ns.nn1".to_string(),
                "127.0.0.1:1".to_string(),
            ),
        ];
        assert_eq!(
            ObjectFileStore::open("hdfs://ns/in/", &ns).unwrap().root,
            "hdfs://ns"
        );
        let err = ObjectFileStore::open("hdfs:///in/", &[])
            .err()
            .expect("refused");
        assert!(err.contains("name the NameNode"), "{err}");
    }

    #[test]
    fn roots_and_object_paths() {
        let s = ObjectFileStore::open("s3://bucket/logs/in/", &[]).unwrap();
        assert_eq!(s.root, "s3://bucket");
        assert_eq!(
            s.object_path("s3://bucket/logs/in").unwrap().as_ref(),
            "logs/in"
        );
        assert_eq!(
            s.object_path("s3://bucket/logs/in/a b.txt")
                .unwrap()
                .as_ref(),
            "logs/in/a b.txt"
        );
        assert!(s.object_path("s3://other/x").is_err());
        let root = ObjectFileStore::open("s3://bucket", &[]).unwrap();
        assert_eq!(root.root, "s3://bucket");
        assert_eq!(root.object_path("s3://bucket").unwrap().as_ref(), "");
    }

    #[test]
    fn bad_urls_and_options_are_refused() {
        assert!(ObjectFileStore::open("s3//bucket", &[]).is_err());
        let err = ObjectFileStore::open("s3://b/x", &[("no_such_key".into(), "1".into())])
            .err()
            .unwrap();
        assert!(err.contains("no_such_key"), "{err}");
    }
}
