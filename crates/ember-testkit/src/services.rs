//! The real services some tests talk to, as `.ci/test.sh` starts them: a
//! Kafka-protocol broker (tansu), a PostgreSQL server, and moto's server
//! for S3 and Kinesis, found through environment variables.

/// Whether a test must fail rather than skip when what it needs (a
/// service, a browser) is missing: in CI (`CI` set, as CI systems do) or
/// with `EMBER_REQUIRE_SERVICES=1` (as `.ci/test.sh` sets, having started
/// them). On a developer's machine a plain `cargo test` skips such tests.
pub fn services_required() -> bool {
    let set = |var: &str| {
        std::env::var(var)
            .is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    };
    set("EMBER_REQUIRE_SERVICES") || set("CI")
}

/// The value of `var`, naming the service; `None`, with a note saying what
/// is missing and how to start it, when it is not set — a failure instead
/// when [`services_required`].
pub fn service(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) if services_required() => panic!(
            "{var} is not set: this test needs {what}; run `bash .ci/test.sh`, which starts it"
        ),
        Err(_) => {
            eprintln!(
                "skipped: this test needs {what} ({var} is not set; `bash .ci/test.sh` starts it)"
            );
            None
        }
    }
}

/// The Kafka broker's `host:port` (EMBER_TEST_KAFKA_BROKERS).
pub fn kafka_brokers() -> Option<String> {
    service("EMBER_TEST_KAFKA_BROKERS", "a Kafka broker")
}

/// The PostgreSQL server's URL (EMBER_TEST_POSTGRES_URL).
pub fn postgres_url() -> Option<String> {
    service("EMBER_TEST_POSTGRES_URL", "a PostgreSQL server")
}

/// A name no other test run uses: `prefix-<pid>-<nanos>`.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Creates `topic` with `partitions` partitions on the broker at `brokers`,
/// with tansu's command line (installed by `.ci/setup.sh`).
pub fn create_topic(brokers: &str, topic: &str, partitions: u32) {
    let out = std::process::Command::new("tansu")
        .args([
            "topic",
            "create",
            topic,
            "--partitions",
            &partitions.to_string(),
        ])
        .args(["--broker", &format!("tcp://{brokers}")])
        .output()
        .expect("tansu is installed by .ci/setup.sh");
    assert!(
        out.status.success(),
        "creating topic {topic}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The S3-compatible server's endpoint, `http://127.0.0.1:<port>`
/// (EMBER_TEST_S3_ENDPOINT; moto's server, started by `.ci/test.sh`).
pub fn s3_endpoint() -> Option<String> {
    service("EMBER_TEST_S3_ENDPOINT", "an S3-compatible object store")
}

/// The Kinesis-API server's endpoint, `http://127.0.0.1:<port>`
/// (EMBER_TEST_KINESIS_ENDPOINT; moto's server, started by `.ci/test.sh`).
pub fn kinesis_endpoint() -> Option<String> {
    service("EMBER_TEST_KINESIS_ENDPOINT", "a Kinesis-API server")
}

/// An S3- and Kinesis-API server that checks credentials and knows none,
/// so it refuses every signed request (EMBER_TEST_AWS_REFUSING_ENDPOINT;
/// moto's server with its IAM authentication on, started by `.ci/test.sh`).
pub fn aws_refusing_endpoint() -> Option<String> {
    service(
        "EMBER_TEST_AWS_REFUSING_ENDPOINT",
        "an AWS-API server that checks credentials",
    )
}

/// Sends one HTTP/1.1 request to `endpoint` and returns the status code
/// (moto's server takes unsigned requests).
fn http_request(endpoint: &str, method: &str, path: &str, body: &[u8]) -> std::io::Result<u16> {
    http_request_with(endpoint, method, path, &[], body)
}

/// [`http_request`] with more headers.
fn http_request_with(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(host)?;
    let more: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{more}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body)?;
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {answer:?}")))
}

/// Creates `bucket` on the S3-compatible server at `endpoint`.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let status =
        http_request(endpoint, "PUT", &format!("/{bucket}"), b"").expect("the S3 server answers");
    assert_eq!(status, 200, "creating bucket {bucket}");
}

/// Writes the object `key` (percent-encoded where needed) of `bucket`.
pub fn put_object(endpoint: &str, bucket: &str, key: &str, body: &[u8]) {
    let status = http_request(endpoint, "PUT", &format!("/{bucket}/{key}"), body)
        .expect("the S3 server answers");
    assert_eq!(status, 200, "writing {bucket}/{key}");
}

/// A TCP forwarder from a loopback port to `target`, which can refuse
/// connections and cut the open ones, as a server that goes down does.
pub struct Proxy {
    port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Bumped by `down`: connections of an older generation end.
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    /// Starts forwarding a free loopback port to `target` (`host:port`),
    /// up or down.
    pub fn start(target: &str, up: bool) -> Proxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            up: Arc::new(AtomicBool::new(up)),
            generation: Arc::new(AtomicU64::new(0)),
        };
        let (on, generation, target) = (
            proxy.up.clone(),
            proxy.generation.clone(),
            target.to_string(),
        );
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !on.load(Ordering::SeqCst) {
                    // Down: the connection is closed at once.
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                let born = generation.load(Ordering::SeqCst);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let generation = generation.clone();
                    std::thread::spawn(move || pump(from, to, &generation, born));
                }
            }
        });
        proxy
    }

    /// The address clients connect to, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Accepts and forwards connections again.
    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Refuses new connections and cuts the open ones.
    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either ends or the proxy goes down.
fn pump(
    mut from: std::net::TcpStream,
    mut to: std::net::TcpStream,
    generation: &std::sync::atomic::AtomicU64,
    born: u64,
) {
    use std::io::{Read, Write};
    let _ = from.set_read_timeout(Some(std::time::Duration::from_millis(50)));
    let mut buf = [0u8; 16 * 1024];
    loop {
        if generation.load(std::sync::atomic::Ordering::SeqCst) != born {
            break;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// Azurite's blob service, `http://127.0.0.1:<port>` (AZURITE_BLOB_STORAGE_URL,
/// started by `.ci/test.sh`; the object_store crate's emulator mode reads
/// the same variable).
pub fn azurite_url() -> Option<String> {
    service(
        "AZURITE_BLOB_STORAGE_URL",
        "Azurite, an Azure Blob Storage server",
    )
}

/// The storage account every Azurite serves, and its published key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Sends a request to Azurite at `url`, signed with the account's key
/// (Azure's Shared Key scheme: the verb, the standard headers, the `x-ms-`
/// headers and the resource, HMAC-SHA256'd), and returns the status code.
/// `path` is the percent-encoded path after the account; `query` its
/// parameters.
fn azurite_request(
    url: &str,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    ms_headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<u16> {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let mut headers: Vec<(String, String)> = vec![
        ("x-ms-date".into(), date),
        ("x-ms-version".into(), "2021-08-06".into()),
    ];
    headers.extend(
        ms_headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut sorted_query = query.to_vec();
    sorted_query.sort();
    let canonical_query: String = sorted_query
        .iter()
        .map(|(k, v)| format!("\n{k}:{v}"))
        .collect();
    let length = if body.is_empty() {
        String::new()
    } else {
        body.len().to_string()
    };
    let to_sign = format!(
        "{method}\n\n\n{length}\n\n\n\n\n\n\n\n\n{canonical_headers}/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}{path}{canonical_query}"
    );
    let key = b64.decode(AZURITE_KEY).expect("Azurite's key is base64");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(to_sign.as_bytes());
    let signature = b64.encode(mac.finalize().into_bytes());
    headers.push((
        "Authorization".into(),
        format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
    ));
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let target = if query.is_empty() {
        format!("/{AZURITE_ACCOUNT}{path}")
    } else {
        format!("/{AZURITE_ACCOUNT}{path}?{}", query.join("&"))
    };
    http_request_with(url, method, &target, &headers, body)
}

/// Creates the blob container `container` on Azurite at `url`.
pub fn create_container(url: &str, container: &str) {
    let status = azurite_request(
        url,
        "PUT",
        &format!("/{container}"),
        &[("restype", "container")],
        &[],
        b"",
    )
    .expect("Azurite answers");
    assert_eq!(status, 201, "creating container {container}");
}

/// Writes the blob `key` (percent-encoded where needed) of `container` on
/// Azurite at `url`.
pub fn put_blob(url: &str, container: &str, key: &str, body: &[u8]) {
    let status = azurite_request(
        url,
        "PUT",
        &format!("/{container}/{key}"),
        &[],
        &[("x-ms-blob-type", "BlockBlob")],
        body,
    )
    .expect("Azurite answers");
    assert_eq!(status, 201, "writing {container}/{key}");
}

/// A WebDAV server's root URL, `http://127.0.0.1:<port>` (EMBER_TEST_WEBDAV_URL;
/// WsgiDAV, started by `.ci/test.sh`): the kind of HTTP server the
/// object_store crate's `http://` store lists, with PROPFIND.
pub fn webdav_url() -> Option<String> {
    service("EMBER_TEST_WEBDAV_URL", "a WebDAV server")
}

/// Creates the collection (directory) `path` and those above it on the
/// WebDAV server at `url`.
pub fn webdav_mkdir(url: &str, path: &str) {
    let mut at = String::new();
    for part in path.trim_matches('/').split('/') {
        at = format!("{at}/{part}");
        let status = http_request(url, "MKCOL", &format!("{at}/"), b"").expect("WebDAV answers");
        // 405: it exists already.
        assert!(status == 201 || status == 405, "MKCOL {at}/: {status}");
    }
}

/// Writes the file `path` (percent-encoded where needed) on the WebDAV
/// server at `url`, making the collections above it.
pub fn webdav_put(url: &str, path: &str, body: &[u8]) {
    if let Some((dir, _)) = path.trim_start_matches('/').rsplit_once('/') {
        webdav_mkdir(url, dir);
    }
    let path = format!("/{}", path.trim_start_matches('/'));
    let status = http_request(url, "PUT", &path, body).expect("WebDAV answers");
    assert!(status == 201 || status == 204, "PUT {path}: {status}");
}
