//! Directory streams over object stores started by `.ci/test.sh`: an
//! S3-compatible one (moto's server) and Azure Blob Storage (Azurite).
//! Objects in = records out, at one and three workers; a missing bucket or
//! container and refused credentials fail the start; the binary and parsed
//! forms; a program killed with SIGKILL and restarted with `get_or_create`
//! reads every object exactly once; and, on S3, the store down at start
//! and mid-run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember::prelude::*;
use ember_testkit::services::{
    aws_refusing_endpoint, azurite_url, create_bucket, create_container, put_blob, put_object,
    s3_endpoint, unique, webdav_mkdir, webdav_put, webdav_url, Proxy,
};
use ember_testkit::{await_first_output, restartable_child, settled_word_counts, Restartable};

/// A test server's store.
#[derive(Clone, Debug)]
enum Store {
    /// S3 at this endpoint (moto takes any credentials).
    S3(String),
    /// Azure Blob Storage on Azurite at this URL (the object_store crate's
    /// emulator mode finds it in AZURITE_BLOB_STORAGE_URL).
    Azure(String),
    /// An HTTP server that lists with WebDAV's PROPFIND, at this URL.
    Http(String),
}

impl Store {
    /// Every store the test script started: a test runs on each.
    fn all() -> Vec<Store> {
        let mut stores: Vec<Store> = s3_endpoint().map(Store::S3).into_iter().collect();
        stores.extend(azurite_url().map(Store::Azure));
        stores.extend(webdav_url().map(Store::Http));
        stores
    }

    /// The kind `install_as` takes.
    fn kind(&self) -> &'static str {
        match self {
            Store::S3(_) => "s3",
            Store::Azure(_) => "az",
            Store::Http(_) => "http",
        }
    }

    /// Registers `<kind>-<name>://` as this store and returns the scheme.
    fn install(&self, name: &str) -> String {
        let scheme = format!("{}-{name}", self.kind());
        match self {
            Store::S3(endpoint) => install(&scheme, endpoint),
            Store::Azure(_) => ember::object_store::install_as(
                &scheme,
                "az",
                [("azure_storage_use_emulator", "true")],
            ),
            Store::Http(_) => ember::object_store::install_as(&scheme, "http", [("", ""); 0]),
        }
        scheme
    }

    /// A bucket or container (on HTTP, a directory) of its own.
    fn bucket(&self) -> Bucket {
        let name = unique("ember").to_lowercase();
        let name = match self {
            Store::S3(endpoint) => {
                create_bucket(endpoint, &name);
                name
            }
            Store::Azure(url) => {
                create_container(url, &name);
                name
            }
            Store::Http(url) => {
                webdav_mkdir(url, &name);
                format!("{}/{name}", url.trim_start_matches("http://"))
            }
        };
        Bucket {
            store: self.clone(),
            name,
        }
    }
}

/// A bucket (or container) of its own on a test server.
struct Bucket {
    store: Store,
    name: String,
}

impl Bucket {
    /// Writes the object `key` (percent-encoded where needed).
    fn put(&self, key: &str, body: &[u8]) {
        match &self.store {
            Store::S3(endpoint) => put_object(endpoint, &self.name, key, body),
            Store::Azure(url) => put_blob(url, &self.name, key, body),
            Store::Http(url) => {
                let dir = self.name.split_once('/').map_or("", |(_, d)| d);
                webdav_put(url, &format!("{dir}/{key}"), body)
            }
        }
    }

    /// The URL of `path` in the bucket under `scheme`.
    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}/{path}", self.name)
    }
}

/// Registers `scheme` as S3 at `endpoint` (moto takes any credentials).
fn install(scheme: &str, endpoint: &str) {
    ember::object_store::install_as(
        scheme,
        "s3",
        [
            ("aws_endpoint", endpoint),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
        ],
    );
}

/// What the stream gave, batch by batch.
type Seen = Arc<Mutex<Vec<(u64, Vec<String>)>>>;

/// A running context over `url`'s new objects, collecting their lines.
fn collect_lines(url: &str, workers: usize) -> (StreamingContext, Seen) {
    let conf = StreamingConf::new("s3-lines", millis(200))
        .master(&format!("local[{workers}]"))
        .unwrap();
    let ssc = StreamingContext::new(conf).unwrap();
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let url = url.to_string();
    ssc.define(move |s| {
        let sink = sink.clone();
        s.text_file_stream(&url)
            .foreach_rdd(move |b, t| sink.lock().unwrap().push((t.milliseconds(), b)));
    })
    .unwrap();
    ssc.start().unwrap();
    (ssc, seen)
}

/// Waits (bounded) until the stream has given `want` lines, then for three
/// more batches, and returns every line it gave, sorted.
fn lines_when(seen: &Seen, want: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = |s: &Seen| -> (usize, usize) {
        let s = s.lock().unwrap();
        (s.iter().map(|(_, b)| b.len()).sum(), s.len())
    };
    while count(seen).0 < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Three more batches, for any record given twice to show.
    let batches = count(seen).1;
    while count(seen).1 < batches + 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut all: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, b)| b.clone())
        .collect();
    all.sort();
    all
}

/// Waits (bounded) until the stream has run `n` more batches.
fn batches_pass(seen: &Seen, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let now = seen.lock().unwrap().len();
    while seen.lock().unwrap().len() < now + n {
        assert!(Instant::now() < deadline, "no batches ran");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn new_objects_are_read_once_each_at_one_and_three_workers() {
    for (store, workers) in Store::all().iter().flat_map(|s| [(s, 1), (s, 3)]) {
        let scheme = store.install("lines");
        let bucket = store.bucket();
        let dir = format!("in-{workers}");
        // Older than the start (by more than the store's one-second
        // resolution): not read.
        bucket.put(&format!("{dir}/old.txt"), b"old\n");
        std::thread::sleep(Duration::from_millis(1100));
        let (ssc, seen) = collect_lines(&bucket.url(&scheme, &format!("{dir}/")), workers);
        batches_pass(&seen, 1);
        let mut want = Vec::new();
        for i in 0..12 {
            let lines: Vec<String> = (0..=i).map(|j| format!("o{i}-l{j}")).collect();
            let name = if i == 5 {
                "with%20space.txt".to_string()
            } else {
                format!("part-{i:02}")
            };
            bucket.put(&format!("{dir}/{name}"), lines.join("\r\n").as_bytes());
            want.extend(lines);
        }
        // Hidden, in a "subdirectory", and beside the prefix: not read.
        bucket.put(&format!("{dir}/_SUCCESS"), b"hidden\n");
        bucket.put(&format!("{dir}/.part-00.crc"), b"hidden\n");
        bucket.put(&format!("{dir}/sub/deeper.txt"), b"deeper\n");
        bucket.put(&format!("{dir}-other/x.txt"), b"other\n");
        want.sort();
        let got = lines_when(&seen, want.len());
        ssc.stop(false).unwrap();
        assert_eq!(got, want, "{store:?}, workers = {workers}");
    }
}

#[test]
fn a_missing_bucket_or_container_fails_the_start_naming_it() {
    // Not on HTTP: the object_store crate lists a directory the server
    // answers 404 for as an empty one.
    for store in Store::all()
        .into_iter()
        .filter(|s| !matches!(s, Store::Http(_)))
    {
        let scheme = store.install("missing");
        let ssc = StreamingContext::new(StreamingConf::new("missing", millis(200))).unwrap();
        let bucket = unique("no-such-bucket").to_lowercase();
        let url = format!("{scheme}://{bucket}/in/");
        ssc.define(move |s| s.text_file_stream(&url).print())
            .unwrap();
        let err = ssc.start().expect_err("a missing bucket fails the start");
        let text = err.to_string();
        assert!(matches!(err, ember::Error::Source { .. }), "{text}");
        assert!(text.contains(&bucket), "{text}");
        assert!(text.contains("bucket or container exists"), "{text}");
    }
}

#[test]
fn refused_credentials_fail_the_start_saying_what_to_check() {
    let (Some(endpoint), Some(azurite)) = (aws_refusing_endpoint(), azurite_url()) else {
        return;
    };
    install("s3-refused", &endpoint);
    // Azurite checks every request's signature; this key is not its. The
    // container exists: only the key is wrong.
    let container = Store::Azure(azurite).bucket().name;
    ember::object_store::install_as(
        "az-refused",
        "az",
        [
            ("azure_storage_use_emulator", "true"),
            ("azure_storage_account_key", "bm90IHRoZSBrZXk="),
        ],
    );
    for url in [
        "s3-refused://bucket/in/".to_string(),
        format!("az-refused://{container}/in/"),
    ] {
        let ssc = StreamingContext::new(StreamingConf::new("refused", millis(200))).unwrap();
        let u = url.clone();
        ssc.define(move |s| s.text_file_stream(&u).print()).unwrap();
        let err = ssc.start().expect_err("refused credentials fail the start");
        let text = err.to_string();
        assert!(matches!(err, ember::Error::Source { .. }), "{text}");
        assert!(text.contains(&url), "{text}");
        assert!(text.contains("credentials"), "{text}");
        // The store's own word for it (moto: InvalidAccessKeyId; Azurite:
        // AuthorizationFailure; both 403).
        assert!(text.contains("403"), "{text}");
        // The settings of that kind of store.
        let settings = if url.starts_with("s3") {
            "AWS_ACCESS_KEY_ID"
        } else {
            "AZURE_STORAGE_ACCOUNT_KEY"
        };
        assert!(text.contains(settings), "{text}");
    }
}

#[test]
fn an_unknown_scheme_fails_the_start_saying_what_to_do() {
    let ssc = StreamingContext::new(StreamingConf::new("no-store", millis(200))).unwrap();
    ssc.define(|s| s.text_file_stream("nosuchstore://bucket/in/").print())
        .unwrap();
    let text = ssc.start().expect_err("refused").to_string();
    assert!(text.contains("nosuchstore://"), "{text}");
    assert!(text.contains("install()"), "{text}");
}

#[test]
fn a_store_down_at_start_and_mid_run_loses_nothing() {
    // On S3 only: Azurite's address comes from the environment, which a
    // test cannot point at a proxy of its own.
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = Store::S3(endpoint.clone()).bucket();
    let proxy = Proxy::start(endpoint.trim_start_matches("http://"), false);
    install("s3-outage", &proxy.endpoint());
    let (ssc, seen) = collect_lines(&bucket.url("s3-outage", "in/"), 2);
    let put = |name: &str, text: &str| bucket.put(&format!("in/{name}"), text.as_bytes());
    // Down at start: objects written meanwhile are read once it is up.
    batches_pass(&seen, 2);
    put("a", "a1\na2");
    put("b", "b1");
    batches_pass(&seen, 3);
    assert_eq!(
        lines_now(&seen),
        0,
        "nothing can be read while the store is down"
    );
    proxy.up();
    assert_eq!(lines_when(&seen, 3), sorted(&["a1", "a2", "b1"]));
    // Down mid-run, for several batches.
    proxy.down();
    put("c", "c1\nc2\nc3");
    batches_pass(&seen, 4);
    put("d", "d1");
    batches_pass(&seen, 2);
    proxy.up();
    let got = lines_when(&seen, 7);
    ssc.stop(false).unwrap();
    assert_eq!(got, sorted(&["a1", "a2", "b1", "c1", "c2", "c3", "d1"]));
}

fn lines_now(seen: &Seen) -> usize {
    seen.lock().unwrap().iter().map(|(_, b)| b.len()).sum()
}

#[test]
fn binary_records_and_parsed_objects() {
    for store in Store::all() {
        let scheme = store.install("forms");
        let bucket = store.bucket();
        let conf = StreamingConf::new("forms", millis(200))
            .master("local[2]")
            .unwrap();
        let ssc = StreamingContext::new(conf).unwrap();
        let records: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let parsed: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
        let batches: Arc<Mutex<usize>> = Arc::default();
        let (r, p, n) = (records.clone(), parsed.clone(), batches.clone());
        let (bin, csv) = (bucket.url(&scheme, "bin"), bucket.url(&scheme, "csv"));
        ssc.define(move |s| {
            let r = r.clone();
            s.binary_records_stream(&bin, 4)
                .foreach_rdd(move |b, _| r.lock().unwrap().extend(b));
            let (p, n) = (p.clone(), n.clone());
            s.file_stream(&csv, ember::FileStreamOptions::default(), |bytes| {
                String::from_utf8(bytes)
                    .map_err(|e| e.to_string())?
                    .lines()
                    .map(|l| {
                        let (k, v) = l.split_once(',').ok_or("no comma")?;
                        Ok((k.to_string(), v.parse::<i64>().map_err(|e| e.to_string())?))
                    })
                    .collect()
            })
            .foreach_rdd(move |b, _| {
                p.lock().unwrap().extend(b);
                *n.lock().unwrap() += 1;
            });
        })
        .unwrap();
        ssc.start().unwrap();
        let twelve: Vec<u8> = (0u8..12).collect();
        bucket.put("bin/r1", &twelve);
        bucket.put("bin/r2", b"wxyz");
        bucket.put("csv/c1", b"a,1\nb,-2\n");
        bucket.put("csv/c2", b"c,30");
        let deadline = Instant::now() + Duration::from_secs(60);
        while (records.lock().unwrap().len() < 4 || parsed.lock().unwrap().len() < 3)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let now = *batches.lock().unwrap();
        while *batches.lock().unwrap() < now + 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        ssc.stop(false).unwrap();
        let mut got = records.lock().unwrap().clone();
        got.sort();
        assert_eq!(
            got,
            vec![
                vec![0, 1, 2, 3],
                vec![4, 5, 6, 7],
                vec![8, 9, 10, 11],
                b"wxyz".to_vec()
            ]
        );
        let mut got = parsed.lock().unwrap().clone();
        got.sort();
        let want: Vec<(String, i64)> = vec![("a".into(), 1), ("b".into(), -2), ("c".into(), 30)];
        assert_eq!(got, want);
    }
}

// ---------------------------------------------------------------------------
// Killed with SIGKILL and restarted with get_or_create: every object is
// counted exactly once (the batches' object lists are in the plan log).
// ---------------------------------------------------------------------------

const CHILD_ENV: &str = "EMBER_S3_KILL_CHILD";

/// The child's program when this binary runs as the child (a no-op in a
/// normal run): running word counts of the objects under the URL.
#[test]
fn child_program() {
    let Some(([kind, endpoint, url], program)) = restartable_child::<3>(CHILD_ENV) else {
        return;
    };
    match kind.as_str() {
        "s3" => Store::S3(endpoint),
        "az" => Store::Azure(endpoint),
        _ => Store::Http(endpoint),
    }
    .install("kill");
    let conf = StreamingConf::new("kill", millis(100)).checkpoint_interval(millis(100));
    program.run(conf, move |s| s.text_file_stream(&url));
}

#[test]
fn killed_with_sigkill_the_counts_equal_every_object_read_once() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    for store in Store::all() {
        let scheme = store.install("kill");
        let bucket = store.bucket();
        let endpoint = match &store {
            Store::S3(e) | Store::Azure(e) | Store::Http(e) => e.clone(),
        };
        let url = bucket.url(&scheme, "in/");
        let spec = format!("{}|{endpoint}|{url}", store.kind());
        let mut program = Restartable::new("child_program", CHILD_ENV, spec);
        let mut child = program.spawn(2);
        // Objects older than the first start are not read: begin once the
        // first batch is out.
        await_first_output(&program.out);
        let words = ["alpha", "beta", "gamma", "delta"];
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for i in 0..40u64 {
            let line: Vec<&str> = (0..(i % 7 + 1))
                .map(|j| words[((i * 3 + j) % 4) as usize])
                .collect();
            for w in &line {
                *expected.entry(w.to_string()).or_default() += 1;
            }
            bucket.put(&format!("in/obj-{i:03}"), line.join(" ").as_bytes());
            std::thread::sleep(Duration::from_millis(60));
            if i % 10 == 7 {
                program.kill_and_restart(&mut child);
            }
        }
        let counts = settled_word_counts(&program.out, &expected);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(program.kills, 4);
        assert_eq!(counts, expected, "{store:?}, after {} kills", program.kills);
    }
}

/// HDFS: no NameNode can be run here (Hadoop comes from Maven Central,
/// which this machine cannot reach), so only the client's side is tried:
/// a NameNode that does not answer at start is logged and retried, as any
/// store that cannot be reached yet, and batches go on.
#[cfg(feature = "hdfs")]
#[test]
fn hdfs_with_its_namenode_down_starts_and_batches_go_on() {
    ember::object_store::install();
    let port = ember_testkit::free_port();
    let url = format!("hdfs://127.0.0.1:{port}/user/ember/in/");
    let (ssc, seen) = collect_lines(&url, 2);
    batches_pass(&seen, 3);
    ssc.stop(false).unwrap();
    assert_eq!(lines_now(&seen), 0);
}
