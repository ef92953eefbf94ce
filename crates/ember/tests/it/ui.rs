//! The web UI against a running context fed by a real TCP server: the JSON
//! API and `/metrics` agree with the records sent and with
//! `StreamingContext::completed_batches`; the Streaming page and a
//! `to_dashboard` page, rendered by headless Chromium, show what the API
//! and the program's own output say, and keep updating.
//!
//! The browser tests run the `chromium` binary directly (`--dump-dom`,
//! `--screenshot`) and read the page's test hooks (`data-*` attributes)
//! from the dumped DOM. Without Chromium they are skipped with a note, or
//! fail in CI (`ember_testkit::services::services_required`);
//! `EMBER_CHROMIUM` names another binary. Screenshots are kept in
//! `target/test-artifacts/ui/`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ember::prelude::*;
use serde_json::Value;

pub(super) const INTERVAL_MS: u64 = 200;

pub(super) fn conf(name: &str) -> StreamingConf {
    StreamingConf::new(name, millis(INTERVAL_MS))
        .master("local[2]")
        .unwrap()
        .ui(Some("127.0.0.1:0"))
}

/// Batch time + `n` intervals.
pub(super) fn batches_after(t: Time, n: u64) -> Time {
    Time::from_millis(t.milliseconds() + n * INTERVAL_MS)
}

/// Polls `cond` until it holds; fails with `what()` after `limit`.
pub(super) fn wait_until(
    limit: Duration,
    mut cond: impl FnMut() -> bool,
    what: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {}",
            what()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------ servers

/// Accepts one connection, giving up after 30 s (the receiver never came).
pub(super) fn accept_within(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match listener.accept() {
            Ok((c, _)) => {
                c.set_nonblocking(false).unwrap();
                return c;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "the socket receiver never connected"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept failed: {e}"),
        }
    }
}

/// A server that writes the waves of lines it is handed, as they come.
/// Dropping the sender ends the thread, which returns the still open
/// connection so that the receiver stays connected until the test drops it.
pub(super) fn wave_server() -> (u16, mpsc::Sender<Vec<String>>, JoinHandle<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel::<Vec<String>>();
    let server = std::thread::spawn(move || {
        let mut c = accept_within(&listener);
        for wave in rx {
            let mut text = String::new();
            for l in wave {
                text.push_str(&l);
                text.push('\n');
            }
            c.write_all(text.as_bytes()).unwrap();
            c.flush().unwrap();
        }
        c
    });
    (port, tx, server)
}

/// A server that writes `wave` every `every` until stopped: a steady input.
pub(super) struct SteadyServer {
    pub(super) port: u16,
    stop: Arc<AtomicBool>,
    waves: Arc<AtomicU64>,
    thread: Option<JoinHandle<TcpStream>>,
}

impl SteadyServer {
    pub(super) fn start(wave: &'static [&'static str], every: Duration) -> SteadyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let waves = Arc::new(AtomicU64::new(0));
        let (s, w) = (stop.clone(), waves.clone());
        let text: String = wave.iter().map(|l| format!("{l}\n")).collect();
        let thread = std::thread::spawn(move || {
            let mut c = accept_within(&listener);
            while !s.load(Ordering::SeqCst) {
                c.write_all(text.as_bytes()).unwrap();
                c.flush().unwrap();
                w.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(every); // the input's pace, not synchronisation
            }
            c
        });
        SteadyServer {
            port,
            stop,
            waves,
            thread: Some(thread),
        }
    }

    /// Stops writing; returns the number of waves written and the open connection.
    pub(super) fn finish(mut self) -> (u64, TcpStream) {
        self.stop.store(true, Ordering::SeqCst);
        let c = self.thread.take().unwrap().join().unwrap();
        (self.waves.load(Ordering::SeqCst), c)
    }
}

impl Drop for SteadyServer {
    fn drop(&mut self) {
        // A failed test must not leave the thread writing forever.
        self.stop.store(true, Ordering::SeqCst);
    }
}

// ------------------------------------------------------------------- HTTP

pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: String,
    pub(super) body: String,
}

/// `GET base+path` over a plain HTTP/1.1 connection (`Connection: close`).
pub(super) fn http_get(base: &str, path: &str) -> Reply {
    let host = base.strip_prefix("http://").expect("an http:// URL");
    let addr = host.parse().expect("host:port");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("cannot connect to the UI at {host}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let raw = String::from_utf8(raw).expect("a UTF-8 reply");
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("GET {path}: no header end in {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: bad status line in {head:?}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers: head.to_string(),
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
            .expect("a hex chunk size");
        if n == 0 {
            return out;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").expect("CRLF after a chunk");
    }
}

/// A JSON endpoint that must answer 200.
pub(super) fn get_json(base: &str, path: &str) -> Value {
    let r = http_get(base, path);
    assert_eq!(r.status, 200, "GET {path}:\n{}\n\n{}", r.headers, r.body);
    serde_json::from_str(&r.body)
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}):\n{}", r.body))
}

/// What `read` answers, with the statistics at `stats_path` of the same
/// moment: retried, 20 times at most, while a batch completes between the
/// requests.
pub(super) fn at_one_moment<T>(base: &str, stats_path: &str, read: impl Fn() -> T) -> (Value, T) {
    let mut last = None;
    for _ in 0..20 {
        let before = get_json(base, stats_path);
        let got = read();
        let after = get_json(base, stats_path);
        if before["numTotalCompletedBatches"] == after["numTotalCompletedBatches"] {
            return (after, got);
        }
        last = Some((before, after));
    }
    let (before, after) = last.unwrap();
    panic!("batches kept completing between requests:\n{before:#}\n{after:#}")
}

/// `/metrics` as `name{labels}` → value.
pub(super) fn get_metrics(base: &str) -> BTreeMap<String, f64> {
    let r = http_get(base, "/metrics");
    assert_eq!(r.status, 200, "GET /metrics:\n{}", r.body);
    assert!(
        r.headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "/metrics content type:\n{}",
        r.headers
    );
    r.body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample {l:?}"));
            let v = v.parse().unwrap_or_else(|_| panic!("bad value in {l:?}"));
            (k.to_string(), v)
        })
        .collect()
}

pub(super) fn u64_field(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("`{field}` is not an integer in {v:#}"))
}

/// The COMPLETED batches of `/api/v1/streaming/batches`, oldest first, as
/// (batch time, records by input).
fn completed_in(batches: &Value) -> Vec<(u64, BTreeMap<String, u64>)> {
    let mut out: Vec<_> = batches
        .as_array()
        .expect("an array of batches")
        .iter()
        .filter(|b| b["status"] == "COMPLETED")
        .map(|b| {
            let by_input = b["recordsByInput"]
                .as_object()
                .expect("recordsByInput")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect::<BTreeMap<_, _>>();
            assert_eq!(
                u64_field(b, "inputSize"),
                by_input.values().sum::<u64>(),
                "inputSize is the sum of recordsByInput in {b:#}"
            );
            (u64_field(b, "batchTime"), by_input)
        })
        .collect();
    out.reverse();
    out
}

// ---------------------------------------------------------------- Chromium

/// The Chromium binary, or `None` when it is missing and the browser tests
/// are skipped on purpose.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EMBER_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .flat_map(|d| names.iter().map(move |n| d.join(n)))
        .find(|p| p.is_file());
    if found.is_none() {
        let fix = "run .ci/setup.sh (it installs Debian's chromium) or set EMBER_CHROMIUM to a \
                   Chromium/Chrome binary";
        if ember_testkit::services::services_required() {
            panic!("chromium not found in PATH: {fix}");
        }
        eprintln!("skipped: this browser test needs chromium, not found in PATH ({fix})");
        return None;
    }
    found
}

/// Runs headless Chromium on `url` with `extra` flags and a fresh profile;
/// returns its stdout. Fails (with Chromium's stderr) on a non-zero exit or
/// after 60 s.
fn run_chromium(bin: &Path, extra: &[String], url: &str) -> String {
    use std::os::unix::process::CommandExt;
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    // Its own process group, so that a hung browser is killed with its helpers.
    .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        None => panic!("chromium did not finish within 60 s on {url}; its stderr:\n{err}"),
        Some(s) if !s.success() => panic!("chromium failed ({s}) on {url}; its stderr:\n{err}"),
        Some(_) => {}
    }
    assert!(
        !extra.iter().any(|a| a == "--dump-dom") || out.contains("</html>"),
        "chromium dumped no document for {url}; stdout:\n{out}\nstderr:\n{err}"
    );
    out
}

/// The page at `url` after 3 s of (virtual) time: at least two refreshes.
fn dump_dom(bin: &Path, url: &str) -> Dom {
    let html = run_chromium(
        bin,
        &["--virtual-time-budget=3000".into(), "--dump-dom".into()],
        url,
    );
    Dom::parse(&html)
}

/// Saves a screenshot of `url` as `name` among the test artefacts.
fn screenshot(bin: &Path, url: &str, name: &str) -> PathBuf {
    let dir = artifacts_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    let _ = std::fs::remove_file(&file);
    run_chromium(
        bin,
        &[
            format!("--screenshot={}", file.display()),
            "--window-size=1400,1800".into(),
            "--virtual-time-budget=3000".into(),
            "--hide-scrollbars".into(),
        ],
        url,
    );
    let png =
        std::fs::read(&file).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", file.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} is not a plausible screenshot ({} bytes)",
        file.display(),
        png.len()
    );
    file
}

/// `$CARGO_TARGET_DIR/test-artifacts/ui`, or the workspace's `target/`.
fn artifacts_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
        Some(t) => workspace.join(t),
        None => workspace.join("target"),
    };
    target.join("test-artifacts").join("ui")
}

// --------------------------------------------------------------------- DOM

/// Just enough of an HTML tree to read the pages' test hooks from
/// Chromium's `--dump-dom` output (well-formed, double-quoted attributes).
struct Dom {
    nodes: Vec<Node>,
}

struct Node {
    /// Lowercase tag name; `#text` for text.
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<usize>,
    text: String,
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title"];

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

impl Dom {
    fn parse(html: &str) -> Dom {
        let mut dom = Dom {
            nodes: vec![Node {
                name: "#document".into(),
                attrs: Vec::new(),
                children: Vec::new(),
                text: String::new(),
            }],
        };
        let b = html.as_bytes();
        let mut stack = vec![0usize];
        let mut i = 0;
        while i < b.len() {
            let rest = &html[i..];
            if rest.starts_with("<!--") {
                i += rest.find("-->").map_or(rest.len(), |e| e + 3);
            } else if rest.starts_with("<!") || rest.starts_with("<?") {
                i += rest.find('>').map_or(rest.len(), |e| e + 1);
            } else if let Some(close) = rest.strip_prefix("</") {
                let end = close.find('>').unwrap_or(close.len());
                let name = close[..end].trim().to_ascii_lowercase();
                if let Some(at) = stack.iter().rposition(|&n| dom.nodes[n].name == name) {
                    stack.truncate(at.max(1));
                }
                i += 2 + end + 1;
            } else if rest.len() > 1 && b[i] == b'<' && b[i + 1].is_ascii_alphabetic() {
                let (name, attrs, self_closing, len) = parse_tag(rest);
                let id = dom.push(*stack.last().unwrap(), &name, attrs, String::new());
                i += len;
                if RAW_TEXT.contains(&name.as_str()) {
                    let lower = html[i..].to_ascii_lowercase();
                    let end = lower.find(&format!("</{name}")).unwrap_or(lower.len());
                    let text = &html[i..i + end];
                    let text = if name == "script" || name == "style" {
                        text.to_string()
                    } else {
                        unescape(text)
                    };
                    dom.push(id, "#text", Vec::new(), text);
                    i += end;
                    i += html[i..].find('>').map_or(html.len() - i, |e| e + 1);
                } else if !self_closing && !VOID.contains(&name.as_str()) {
                    stack.push(id);
                }
            } else {
                let first = rest.chars().next().map_or(1, char::len_utf8);
                let end = rest[first..].find('<').map_or(rest.len(), |e| e + first);
                dom.push(
                    *stack.last().unwrap(),
                    "#text",
                    Vec::new(),
                    unescape(&rest[..end]),
                );
                i += end;
            }
        }
        dom
    }

    fn push(
        &mut self,
        parent: usize,
        name: &str,
        attrs: Vec<(String, String)>,
        text: String,
    ) -> usize {
        self.nodes.push(Node {
            name: name.to_string(),
            attrs,
            children: Vec::new(),
            text,
        });
        let id = self.nodes.len() - 1;
        self.nodes[parent].children.push(id);
        id
    }

    fn attr(&self, n: usize, name: &str) -> Option<&str> {
        self.nodes[n]
            .attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The attribute, which must be there.
    fn req(&self, n: usize, name: &str) -> &str {
        self.attr(n, name).unwrap_or_else(|| {
            panic!(
                "<{}> has no {name}: {:?}",
                self.nodes[n].name, self.nodes[n].attrs
            )
        })
    }

    fn has_class(&self, n: usize, class: &str) -> bool {
        self.attr(n, "class")
            .is_some_and(|c| c.split_whitespace().any(|x| x == class))
    }

    /// Descendants of `root` (document order) named `name`, with `class` if given.
    fn find(&self, root: usize, name: &str, class: Option<&str>) -> Vec<usize> {
        let mut out = Vec::new();
        let mut todo: Vec<usize> = self.nodes[root].children.iter().rev().copied().collect();
        while let Some(n) = todo.pop() {
            if self.nodes[n].name == name && class.is_none_or(|c| self.has_class(n, c)) {
                out.push(n);
            }
            todo.extend(self.nodes[n].children.iter().rev());
        }
        out
    }

    /// The only such descendant.
    fn one(&self, root: usize, name: &str, class: Option<&str>) -> usize {
        match self.find(root, name, class)[..] {
            [n] => n,
            ref v => panic!(
                "{} <{name}> (class {class:?}) under <{}>",
                v.len(),
                self.nodes[root].name
            ),
        }
    }

    fn by_id(&self, id: &str) -> usize {
        (0..self.nodes.len())
            .find(|&n| self.attr(n, "id") == Some(id))
            .unwrap_or_else(|| panic!("no element #{id}"))
    }

    /// The text inside `n`, trimmed.
    fn text(&self, n: usize) -> String {
        fn walk(d: &Dom, n: usize, out: &mut String) {
            if d.nodes[n].name == "#text" {
                out.push_str(&d.nodes[n].text);
            }
            for &c in &d.nodes[n].children {
                walk(d, c, out);
            }
        }
        let mut s = String::new();
        walk(self, n, &mut s);
        s.trim().to_string()
    }

    fn number(&self, id: &str) -> u64 {
        count(&self.text(self.by_id(id)))
    }

    /// `body[data-updates]`: how many refreshes the page rendered.
    fn updates(&self) -> u64 {
        let body = self.one(0, "body", None);
        self.attr(body, "data-updates")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// A count as the pages write it, with thousands separators (`1,606,796`);
/// fails on anything else, misplaced separators included.
pub(super) fn count(text: &str) -> u64 {
    let groups: Vec<&str> = text.split(',').collect();
    let well_formed = groups[0].len() <= 3
        && !groups[0].is_empty()
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && (groups.len() == 1 || groups[0] != "0");
    assert!(
        well_formed,
        "{text:?} is not a count with thousands separators"
    );
    groups.concat().parse().unwrap()
}

#[test]
fn counts_are_read_with_their_separators() {
    assert_eq!(count("7"), 7);
    assert_eq!(count("1,606,796"), 1_606_796);
    for bad in ["1606,796", "1,60,796", "", "12a", "0,001"] {
        assert!(std::panic::catch_unwind(|| count(bad)).is_err(), "{bad:?}");
    }
}

/// Parses `<name attr="v" ...>` at the start of `s`: name, attributes,
/// whether it ends with `/>`, and its length.
fn parse_tag(s: &str) -> (String, Vec<(String, String)>, bool, usize) {
    let b = s.as_bytes();
    let mut i = 1;
    let stop = |c: u8| c.is_ascii_whitespace() || c == b'>' || c == b'/';
    while i < b.len() && !stop(b[i]) {
        i += 1;
    }
    let name = s[1..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return (name, attrs, false, i);
        }
        if b[i] == b'>' {
            return (name, attrs, false, i + 1);
        }
        if s[i..].starts_with("/>") {
            return (name, attrs, true, i + 2);
        }
        if b[i] == b'/' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !stop(b[i]) && b[i] != b'=' {
            i += 1;
        }
        let key = s[start..i].to_ascii_lowercase();
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i] as char;
                let end = s[i + 1..].find(q).map_or(b.len(), |e| i + 1 + e);
                value = unescape(&s[i + 1..end]);
                i = (end + 1).min(b.len());
            } else {
                let start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = unescape(&s[start..i]);
            }
        }
        attrs.push((key, value));
    }
}

#[test]
fn dom_parser_reads_what_chromium_dumps() {
    let html = r#"<!DOCTYPE html><html><head><meta charset="utf-8"><script>if (a < b && c > d) x('</td>');</script></head>
<body data-updates="2"><table id="t"><tbody><tr class="batch x" data-batch-time="5"><td class="records">7</td></tr>
<tr class="ops-row"><td>&lt;a &amp; b&gt;</td></tr></tbody></table>
<svg id="s"><circle data-batch-time="5" data-value="35"></circle><rect class="bar" data-count="1"></rect></svg>
<p title="say &quot;hi&quot;">a<b>b</b>c</p><div id="u">← back</div></body></html>"#;
    let d = Dom::parse(html);
    assert_eq!(d.updates(), 2);
    let t = d.by_id("t");
    let rows = d.find(t, "tr", Some("batch"));
    assert_eq!(rows.len(), 1);
    assert_eq!(d.req(rows[0], "data-batch-time"), "5");
    assert_eq!(d.text(d.one(rows[0], "td", Some("records"))), "7");
    assert_eq!(d.find(t, "tr", None).len(), 2);
    assert_eq!(d.text(d.find(t, "td", None)[1]), "<a & b>");
    let s = d.by_id("s");
    assert_eq!(d.find(s, "circle", None).len(), 1);
    assert_eq!(d.req(d.one(s, "rect", Some("bar")), "data-count"), "1");
    let p = d.one(0, "p", None);
    assert_eq!(d.req(p, "title"), "say \"hi\"");
    assert_eq!(d.text(p), "abc");
    assert_eq!(d.text(d.by_id("u")), "← back");
}

// ------------------------------------------------------------------- tests

/// Counts of the words (split on ' ') in `lines`.
pub(super) fn word_counts<'a>(lines: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in lines {
        for w in l.split(' ') {
            *m.entry(w.to_string()).or_default() += 1;
        }
    }
    m
}

/// Per batch time, the word counts a `foreach_rdd` saw.
pub(super) type PerBatch = Arc<Mutex<BTreeMap<u64, BTreeMap<String, u64>>>>;

/// NetworkWordCount on `port`: counts per batch into the returned map, and
/// to a dashboard when `dashboard` is given.
pub(super) fn word_count(
    ssc: &StreamingContext,
    port: u16,
    dashboard: Option<&'static str>,
) -> PerBatch {
    let seen: PerBatch = Arc::default();
    let sink = seen.clone();
    ssc.define(move |s| {
        let counts = s
            .socket_text_stream("127.0.0.1", port)
            .flat_map(|l: String| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .map(|w| (w, 1u64))
            .reduce_by_key(|a, b| a + b);
        if let Some(title) = dashboard {
            counts.to_dashboard(title);
        }
        let sink = sink.clone();
        counts.foreach_rdd(move |batch, time| {
            let mut m = BTreeMap::new();
            for (w, n) in batch {
                assert!(m.insert(w, n).is_none(), "a key twice in one batch");
            }
            sink.lock().unwrap().insert(time.milliseconds(), m);
        });
    })
    .unwrap();
    seen
}

/// Sends `waves` to the wave server, the `w`th just after batch `w` from
/// `first` completed; returns every line sent.
pub(super) fn send_waves(
    ssc: &StreamingContext,
    server: &mpsc::Sender<Vec<String>>,
    first: Time,
    waves: Vec<Vec<String>>,
) -> Vec<String> {
    let mut sent = Vec::new();
    for (w, wave) in waves.into_iter().enumerate() {
        ssc.await_batch(batches_after(first, w as u64)).unwrap();
        sent.extend(wave.iter().cloned());
        server.send(wave).unwrap();
    }
    sent
}

/// Waits until `seen` has counted every word of `sent`, then until every
/// output operation has finished the last batch with input, so that the
/// statistics include it.
pub(super) fn await_counted(ssc: &StreamingContext, seen: &PerBatch, sent: &[String]) {
    let want = word_counts(sent.iter().map(String::as_str));
    wait_until(
        Duration::from_secs(30),
        || totals(seen) == want,
        || {
            let got: u64 = totals(seen).values().sum();
            let words: u64 = want.values().sum();
            format!(
                "counted {got} of the {words} words in the {} lines sent",
                sent.len()
            )
        },
    );
    let last_input = *seen
        .lock()
        .unwrap()
        .iter()
        .rfind(|(_, m)| !m.is_empty())
        .unwrap()
        .0;
    ssc.await_batch(Time::from_millis(last_input)).unwrap();
}

pub(super) fn totals(seen: &PerBatch) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for batch in seen.lock().unwrap().values() {
        for (w, n) in batch {
            *m.entry(w.clone()).or_default() += n;
        }
    }
    m
}

#[test]
fn json_and_prometheus_match_the_records_sent() {
    let (port, waves, server) = wave_server();
    let ssc = StreamingContext::new(conf("ui-json")).unwrap();
    let seen = word_count(&ssc, port, None);
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    let first = ssc.first_batch_time().unwrap();

    // Three waves of 1000 numbered lines, one after each of the first batches.
    let lines = (0..3)
        .map(|w| (0..1000).map(|i| format!("w{w} n{i}")).collect())
        .collect();
    let sent = send_waves(&ssc, &waves, first, lines);
    let n = sent.len() as u64;
    await_counted(&ssc, &seen, &sent);

    // Statistics and /metrics from one moment: retried while a batch
    // completes between the requests.
    let (stats, metrics) =
        at_one_moment(&base, "/api/v1/streaming/statistics", || get_metrics(&base));
    assert_eq!(stats["appName"], "ui-json");
    assert_eq!(stats["state"], "ACTIVE");
    assert_eq!(u64_field(&stats, "batchDuration"), INTERVAL_MS);
    assert_eq!(u64_field(&stats, "numReceivedRecords"), n, "{stats:#}");
    assert_eq!(u64_field(&stats, "numProcessedRecords"), n, "{stats:#}");
    assert_eq!(u64_field(&stats, "numReceivers"), 1, "{stats:#}");
    assert_eq!(u64_field(&stats, "numActiveReceivers"), 1, "{stats:#}");

    let receiver = format!("socket_text_stream(127.0.0.1:{port})");
    let total_batches = u64_field(&stats, "numTotalCompletedBatches") as f64;
    let expected_metrics = [
        ("ember_records_received_total".to_string(), n as f64),
        ("ember_records_processed_total".to_string(), n as f64),
        (
            format!("ember_receiver_records_total{{receiver=\"{receiver}\"}}"),
            n as f64,
        ),
        (
            format!("ember_receiver_active{{receiver=\"{receiver}\"}}"),
            1.0,
        ),
        ("ember_batches_completed_total".to_string(), total_batches),
        (
            "ember_batch_interval_seconds".to_string(),
            INTERVAL_MS as f64 / 1000.0,
        ),
    ];
    for (name, want) in &expected_metrics {
        assert_eq!(
            metrics.get(name),
            Some(want),
            "/metrics sample {name}; all samples:\n{metrics:#?}"
        );
    }

    // The batches: the same as the context's own list, read around the request.
    let known_before = ssc.completed_batches();
    let batches = get_json(&base, "/api/v1/streaming/batches");
    let known_after = ssc.completed_batches();
    let times: Vec<u64> = batches
        .as_array()
        .unwrap()
        .iter()
        .map(|b| u64_field(b, "batchTime"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] > w[1]),
        "batches are not newest first: {times:?}"
    );
    let completed = completed_in(&batches);
    let as_listed = |l: &[ember::BatchInfo]| -> Vec<(u64, BTreeMap<String, u64>)> {
        l.iter()
            .map(|b| (b.batch_time.milliseconds(), b.records_by_input.clone()))
            .collect()
    };
    let (before, after) = (as_listed(&known_before), as_listed(&known_after));
    assert!(
        completed.len() >= before.len()
            && completed[..before.len()] == before[..]
            && after.len() >= completed.len()
            && after[..completed.len()] == completed[..],
        "the COMPLETED batches of the JSON API are not those of completed_batches()\n\
         api:\n{completed:?}\n\ncompleted_batches() before:\n{before:?}\n\nafter:\n{after:?}"
    );
    let sizes: u64 = completed.iter().map(|(_, m)| m.values().sum::<u64>()).sum();
    assert_eq!(sizes, n, "sum of inputSize over the COMPLETED batches");
    for (time, by_input) in &completed {
        let own: u64 = seen.lock().unwrap()[time].values().sum::<u64>();
        let records = by_input.values().sum::<u64>();
        // Each line holds two words, so the batch counted twice its records.
        assert_eq!(
            own,
            2 * records,
            "words counted in batch {time} vs its inputSize"
        );
        assert!(
            by_input.keys().all(|k| *k == receiver),
            "batch {time} records by input: {by_input:?}"
        );
    }

    // Receivers.
    let receivers = get_json(&base, "/api/v1/streaming/receivers");
    let list = receivers.as_array().unwrap();
    assert_eq!(list.len(), 1, "{receivers:#}");
    assert_eq!(list[0]["streamName"], receiver.as_str(), "{receivers:#}");
    assert_eq!(list[0]["isActive"], true, "{receivers:#}");
    assert_eq!(u64_field(&list[0], "numRecords"), n, "{receivers:#}");
    let own = ssc.receivers();
    assert_eq!(own.len(), 1);
    assert_eq!(
        (own[0].name.as_str(), own[0].num_records),
        (receiver.as_str(), n)
    );

    // Output operations of a batch that had input; unknown batches are 404.
    let (with_input, _) = completed
        .iter()
        .find(|(_, m)| m.values().sum::<u64>() > 0)
        .unwrap();
    let ops = get_json(
        &base,
        &format!("/api/v1/streaming/batches/{with_input}/operations"),
    );
    let ops = ops.as_array().unwrap();
    assert_eq!(ops.len(), 1, "output operations of {with_input}: {ops:#?}");
    assert_eq!(ops[0]["name"], "foreach_rdd", "{ops:#?}");
    assert!(ops[0]["failureReason"].is_null(), "{ops:#?}");
    assert!(ops[0]["endTime"].is_u64(), "{ops:#?}");
    for bad in [
        format!("{}", with_input + 1),
        "0".to_string(),
        "not-a-batch".to_string(),
    ] {
        let r = http_get(
            &base,
            &format!("/api/v1/streaming/batches/{bad}/operations"),
        );
        assert_eq!(r.status, 404, "operations of batch {bad:?}: {}", r.body);
    }
    assert_eq!(http_get(&base, "/api/v1/dashboards/0").status, 404);

    ssc.stop(false).unwrap();
    drop(waves);
    drop(server.join().unwrap());
}

/// One page's view of the completed batches.
struct StreamingView {
    updates: u64,
    completed: u64,
    /// `data-batch-time` → `td.records` of the completed-batch rows.
    rows: BTreeMap<u64, u64>,
}

/// Reads the Streaming page and checks it against `batches` and `stats`,
/// fetched just after it (so newer).
fn check_streaming_page(
    d: &Dom,
    batches: &Value,
    stats: &Value,
    receivers_api: &Value,
) -> StreamingView {
    let updates = d.updates();
    assert!(
        updates >= 1,
        "the page never refreshed (no body[data-updates])"
    );
    let api: BTreeMap<u64, u64> = completed_in(batches)
        .into_iter()
        .map(|(t, m)| (t, m.values().sum()))
        .collect();

    let table = d.by_id("completed-batches");
    let tbody = d.one(table, "tbody", None);
    let mut rows = BTreeMap::new();
    for tr in d.find(tbody, "tr", Some("batch")) {
        let time: u64 = d.req(tr, "data-batch-time").parse().unwrap();
        let records = count(&d.text(d.one(tr, "td", Some("records"))));
        assert_eq!(d.attr(tr, "data-status"), Some("COMPLETED"));
        assert!(rows.insert(time, records).is_none(), "row {time} twice");
    }
    assert!(!rows.is_empty(), "no completed-batch rows rendered");
    for (t, r) in &rows {
        assert_eq!(
            api.get(t),
            Some(r),
            "row {t} (records {r}) vs the JSON API's completed batches:\n{api:?}"
        );
    }

    // Timelines plot the latest 1000 completed batches; the table the latest 100.
    let circles_of = |key: &str| {
        let svg = d.by_id(&format!("timeline-{key}"));
        d.find(svg, "circle", None)
            .into_iter()
            .map(|c| {
                let t: u64 = d.req(c, "data-batch-time").parse().unwrap();
                let v: f64 = d.req(c, "data-value").parse().unwrap();
                (t, v)
            })
            .collect::<Vec<_>>()
    };
    let rate = circles_of("input-rate");
    if rate.len() <= 100 {
        assert_eq!(
            rate.len(),
            rows.len(),
            "timeline circles vs table rows: {rate:?}\n{rows:?}"
        );
    } else {
        assert_eq!(rows.len(), 100, "the table shows the latest 100");
    }
    assert!(rate.len() <= 1000);
    let plotted: BTreeSet<u64> = rate.iter().map(|(t, _)| *t).collect();
    assert!(
        rows.keys().all(|t| plotted.contains(t)),
        "every listed batch is plotted"
    );
    for (t, v) in &rate {
        let records = api
            .get(t)
            .unwrap_or_else(|| panic!("circle {t} is not a completed batch of the API"));
        let want = *records as f64 * 1000.0 / INTERVAL_MS as f64;
        assert!(
            (v - want).abs() < 1e-9,
            "input rate of {t}: {v}, want {want}"
        );
    }
    for key in [
        "input-rate",
        "scheduling-delay",
        "processing-time",
        "total-delay",
    ] {
        let circles = circles_of(key).len() as u64;
        assert_eq!(circles, rate.len() as u64, "circles on timeline-{key}");
        let svg = d.by_id(&format!("histogram-{key}"));
        let bars: u64 = d
            .find(svg, "rect", Some("bar"))
            .into_iter()
            .map(|r| d.req(r, "data-count").parse::<u64>().unwrap())
            .sum();
        assert_eq!(
            bars, circles,
            "histogram-{key} bar counts vs timeline circles"
        );
    }

    // The page asks for the statistics and the batches at once: a batch may
    // complete between the two answers, so the count may be one row short.
    let completed = d.number("num-completed-batches");
    let api_total = u64_field(stats, "numTotalCompletedBatches");
    assert!(
        (rows.len() as u64 - 1..=api_total).contains(&completed),
        "#num-completed-batches {completed}: not between the rows ({}) and the API's later {api_total}",
        rows.len()
    );
    let received = d.number("num-received-records");
    let processed = d.number("num-processed-records");
    assert!(
        processed <= received,
        "processed {processed} > received {received}"
    );
    assert!(received <= u64_field(stats, "numReceivedRecords"));
    assert!(processed <= u64_field(stats, "numProcessedRecords"));

    let receivers = d.one(d.by_id("receivers"), "tbody", None);
    let trs = d.find(receivers, "tr", None);
    assert_eq!(trs.len(), 1, "one receiver row");
    let read = count(&d.text(d.one(trs[0], "td", Some("records"))));
    let api_read = u64_field(&receivers_api[0], "numRecords");
    assert!(
        (1..=api_read).contains(&read),
        "the receiver row says {read} records; the API's later count is {api_read}"
    );
    StreamingView {
        updates,
        completed,
        rows,
    }
}

#[test]
fn streaming_page_in_headless_chromium_shows_the_batches_and_updates() {
    let Some(bin) = chromium() else { return };
    let server = SteadyServer::start(&["tick tock"], Duration::from_millis(20));
    let ssc = StreamingContext::new(conf("ui-page")).unwrap();
    let _seen = word_count(&ssc, server.port, None);
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    let url = format!("{base}/streaming");
    ssc.await_batch(batches_after(ssc.first_batch_time().unwrap(), 3))
        .unwrap();

    let page = dump_dom(&bin, &url);
    let batches = get_json(&base, "/api/v1/streaming/batches");
    let stats = get_json(&base, "/api/v1/streaming/statistics");
    let receivers = get_json(&base, "/api/v1/streaming/receivers");
    let first = check_streaming_page(&page, &batches, &stats, &receivers);
    assert!(
        first.rows.values().any(|r| *r > 0),
        "no batch with input on the page: {:?}",
        first.rows
    );
    let name = page.text(page.by_id("app-name"));
    assert_eq!(name, "ui-page");

    // Three more batches, and the page shows them.
    let newest = completed_in(&batches).last().unwrap().0;
    ssc.await_batch(batches_after(Time::from_millis(newest), 3))
        .unwrap();
    let page = dump_dom(&bin, &url);
    let batches = get_json(&base, "/api/v1/streaming/batches");
    let stats = get_json(&base, "/api/v1/streaming/statistics");
    let receivers = get_json(&base, "/api/v1/streaming/receivers");
    let second = check_streaming_page(&page, &batches, &stats, &receivers);
    assert!(
        second.completed > first.completed,
        "#num-completed-batches did not grow: {} then {}",
        first.completed,
        second.completed
    );
    assert!(
        second
            .rows
            .keys()
            .any(|t| !first.rows.contains_key(t) && *t > newest),
        "no new batch row: first {:?}\nthen {:?}",
        first.rows.keys(),
        second.rows.keys()
    );
    assert!(second.updates >= 1);

    let shot = screenshot(&bin, &url, "streaming.png");
    eprintln!("screenshot: {}", shot.display());
    ssc.stop(false).unwrap();
    drop(server.finish());
}

/// Three lines with ties (e 4, a 3, b c d 2, f and `<i>&"q"` 1); the odd
/// word must come through the page's escaping intact.
const WAVE: &[&str] = &["a a a b b c", "d d e e e e", "f c <i>&\"q\""];

#[test]
fn dashboard_page_shows_the_network_word_count_counts() {
    let Some(bin) = chromium() else { return };
    let server = SteadyServer::start(WAVE, Duration::from_millis(25));
    let ssc = StreamingContext::new(conf("ui-dashboard")).unwrap();
    let seen = word_count(&ssc, server.port, Some("word counts"));
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    let url = format!("{base}/dashboard/0");
    ssc.await_batch(batches_after(ssc.first_batch_time().unwrap(), 2))
        .unwrap();

    // The page shows the latest batch when the dump is taken; an empty one
    // (no wave fell in it) proves little, so look again, a few times at most.
    let mut attempts = 0;
    let (d, shown, want) = loop {
        attempts += 1;
        let d = dump_dom(&bin, &url);
        assert!(d.updates() >= 1, "the dashboard never refreshed");
        assert_eq!(d.text(d.by_id("dashboard-title")), "word counts");
        let shown: u64 = d
            .req(d.by_id("dashboard-batch-time"), "data-batch-time")
            .parse()
            .expect("#dashboard-batch-time[data-batch-time] is a batch time");
        // Every output op has finished that batch, so foreach_rdd saw it too.
        ssc.await_batch(Time::from_millis(shown)).unwrap();
        let want = seen
            .lock()
            .unwrap()
            .get(&shown)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "the dashboard shows batch {shown}, which foreach_rdd never saw; it saw {:?}",
                    seen.lock().unwrap().keys()
                )
            });
        if !want.is_empty() || attempts == 3 {
            break (d, shown, want);
        }
    };
    assert!(!want.is_empty(), "three dumps showed empty batches");

    let mut expected: Vec<(String, u64)> = want.into_iter().collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    assert_eq!(d.number("dashboard-num-rows"), expected.len() as u64);
    let tbody = d.one(d.by_id("dashboard-rows"), "tbody", None);
    let rows: Vec<(String, u64)> = d
        .find(tbody, "tr", None)
        .into_iter()
        .map(|tr| {
            let key = d.req(tr, "data-key").to_string();
            let value: u64 = d.req(tr, "data-value").parse().unwrap();
            assert_eq!(d.text(d.one(tr, "td", Some("key"))), key);
            assert_eq!(d.text(d.one(tr, "td", Some("value"))), value.to_string());
            (key, value)
        })
        .collect();
    assert_eq!(
        rows, expected,
        "dashboard rows of batch {shown}\ngot:\n{rows:?}\nwant (foreach_rdd's counts, by value then key):\n{expected:?}"
    );
    let chart = d.by_id("dashboard-chart");
    let bars: Vec<(String, u64)> = d
        .find(chart, "rect", None)
        .into_iter()
        .filter(|&r| d.attr(r, "data-key").is_some())
        .map(|r| {
            let value = d.req(r, "data-value").parse().unwrap();
            (d.req(r, "data-key").to_string(), value)
        })
        .collect();
    let top: Vec<_> = expected.iter().take(20).cloned().collect();
    assert_eq!(bars, top, "chart bars of batch {shown}");
    let links = d.find(d.by_id("dashboard-links"), "a", Some("dashboard-link"));
    assert_eq!(links.len(), 1, "one dashboard in the navigation");
    assert_eq!(d.attr(links[0], "data-dashboard-id"), Some("0"));
    assert_eq!(d.text(links[0]), "word counts");

    let shot = screenshot(&bin, &url, "dashboard.png");
    eprintln!("screenshot: {}", shot.display());

    // foreach_rdd's counts themselves: all waves sent, each counted once.
    let (waves, conn) = server.finish();
    let per_wave = word_counts(WAVE.iter().copied());
    let all: BTreeMap<String, u64> = per_wave
        .iter()
        .map(|(w, n)| (w.clone(), n * waves))
        .collect();
    wait_until(
        Duration::from_secs(30),
        || totals(&seen) == all,
        || format!("totals {:?}, want {all:?} ({waves} waves)", totals(&seen)),
    );
    ssc.stop(false).unwrap();
    drop(conn);
}

/// A receiver written with the public interface only is listed like the
/// built-in ones: in the JSON API and in the page's receiver table.
#[test]
fn a_custom_receiver_appears_in_the_receiver_table() {
    let Some(bin) = chromium() else { return };
    let ssc = StreamingContext::new(conf("ui-custom-receiver")).unwrap();
    ssc.define(|s| {
        s.receiver_stream(crate::receiver::Counter {
            next: 0,
            until: 500,
        })
        .foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    // Read, then put into a batch: the table counts what batches hold.
    wait_until(
        Duration::from_secs(30),
        || {
            let r = get_json(&base, "/api/v1/streaming/receivers");
            r[0]["numRecords"] == 500
        },
        || format!("the receiver read only {:?}", ssc.receivers()),
    );
    assert_eq!(ssc.receivers()[0].num_records, 500);
    let receivers = get_json(&base, "/api/v1/streaming/receivers");
    let list = receivers.as_array().unwrap();
    assert_eq!(list.len(), 1, "{receivers:#}");
    assert_eq!(list[0]["streamName"], "Counter", "{receivers:#}");
    assert_eq!(u64_field(&list[0], "numRecords"), 500, "{receivers:#}");

    let page = dump_dom(&bin, &format!("{base}/streaming"));
    let body = page.one(page.by_id("receivers"), "tbody", None);
    let rows = page.find(body, "tr", None);
    assert_eq!(rows.len(), 1, "one receiver row");
    assert_eq!(page.text(page.one(rows[0], "td", Some("name"))), "Counter");
    assert_eq!(page.text(page.one(rows[0], "td", Some("records"))), "500");
    ssc.stop(false).unwrap();
}

/// Whether element `id` of the dumped page is shown (no `hidden` attribute).
fn shown(d: &Dom, id: &str) -> bool {
    d.attr(d.by_id(id), "hidden").is_none()
}

/// A number the JSON API wrote, as a float (the delays are fractional).
pub(super) fn f64_field(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {v:#}"))
}

#[test]
fn batch_page_in_headless_chromium_shows_its_delays_inputs_and_operations() {
    let Some(bin) = chromium() else { return };
    let (port, waves, server) = wave_server();
    let ssc = StreamingContext::new(conf("ui-batch")).unwrap();
    let seen = word_count(&ssc, port, Some("counts"));
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    // Enough lines for a thousands separator.
    let wave: Vec<String> = (0..2345).map(|i| format!("x{} y", i % 10)).collect();
    let sent = send_waves(&ssc, &waves, ssc.first_batch_time().unwrap(), vec![wave]);
    await_counted(&ssc, &seen, &sent);

    // The completed batch with the most records, as the API has it.
    let batches = get_json(&base, "/api/v1/streaming/batches");
    let batch = batches
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "COMPLETED")
        .max_by_key(|b| u64_field(b, "inputSize"))
        .unwrap()
        .clone();
    let id = u64_field(&batch, "batchId");
    let detail = get_json(&base, &format!("/api/v1/streaming/batches/{id}"));
    let records = u64_field(&detail, "inputSize");
    assert!(records > 1000, "{detail:#}");
    // The delays add up (µs precision, in ms).
    let parts = f64_field(&detail, "submissionDelay")
        + f64_field(&detail, "schedulingDelay")
        + f64_field(&detail, "processingTime");
    assert!(
        (parts - f64_field(&detail, "totalDelay")).abs() < 1e-6,
        "{detail:#}"
    );

    let page = dump_dom(&bin, &format!("{base}/streaming/batch?id={id}"));
    assert!(page.updates() >= 1, "the batch page never rendered");
    assert_eq!(page.text(page.by_id("batch-status")), "COMPLETED");
    assert_eq!(
        page.req(page.by_id("batch-time"), "data-ms"),
        id.to_string()
    );
    assert_eq!(count(&page.text(page.by_id("batch-records"))), records);
    assert!(
        page.text(page.by_id("batch-records")).contains(','),
        "no separator"
    );
    for (key, field) in [
        ("submission-delay", "submissionDelay"),
        ("scheduling-delay", "schedulingDelay"),
        ("processing-time", "processingTime"),
        ("total-delay", "totalDelay"),
    ] {
        let shown: f64 = page
            .req(page.by_id(&format!("batch-{key}")), "data-ms")
            .parse()
            .unwrap();
        assert_eq!(shown, f64_field(&detail, field), "#batch-{key}");
    }
    // Records per input: the one receiver, with all the batch's records.
    let inputs = page.one(page.by_id("batch-inputs"), "tbody", None);
    let rows = page.find(inputs, "tr", None);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        page.req(rows[0], "data-input"),
        format!("socket_text_stream(127.0.0.1:{port})")
    );
    assert_eq!(
        count(&page.text(page.one(rows[0], "td", Some("records")))),
        records
    );
    // Output operations: the API's, all succeeded.
    let ops = page.one(page.by_id("batch-operations"), "tbody", None);
    let rows = page.find(ops, "tr", None);
    let api_ops = detail["outputOperations"].as_array().unwrap();
    assert_eq!(rows.len(), api_ops.len());
    assert_eq!(rows.len(), 2, "to_dashboard and foreach_rdd");
    for (tr, op) in rows.iter().zip(api_ops) {
        assert_eq!(
            page.req(*tr, "data-output-op-id"),
            op["outputOpId"].to_string()
        );
        assert_eq!(
            page.text(page.one(*tr, "td", Some("name"))),
            op["name"].as_str().unwrap()
        );
        assert_eq!(
            page.req(page.one(*tr, "td", Some("status")), "data-status"),
            "SUCCEEDED"
        );
    }
    // The Streaming page links each batch to its page.
    let streaming = dump_dom(&bin, &format!("{base}/streaming"));
    let links: Vec<String> = streaming
        .find(streaming.by_id("completed-batches"), "a", None)
        .into_iter()
        .map(|a| streaming.req(a, "href").to_string())
        .collect();
    assert!(
        links.contains(&format!("/streaming/batch?id={id}")),
        "{links:?}"
    );
    assert!(!shown(&streaming, "checkpoint-panel") && shown(&streaming, "checkpoint-off"));

    // A batch the UI does not know says so.
    let missing = dump_dom(&bin, &format!("{base}/streaming/batch?id=5"));
    assert!(shown(&missing, "batch-missing"));
    assert!(!shown(&missing, "batch-details"));
    assert_eq!(missing.text(missing.by_id("batch-status")), "UNKNOWN");

    screenshot(
        &bin,
        &format!("{base}/streaming/batch?id={id}"),
        "batch.png",
    );
    ssc.stop(false).unwrap();
    drop(waves);
    drop(server.join().unwrap());
}

#[test]
fn checkpoint_panel_shows_the_last_checkpoint_and_the_keys_in_state() {
    let Some(bin) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = SteadyServer::start(WAVE, Duration::from_millis(25));
    let ssc =
        StreamingContext::new(conf("ui-checkpoint").checkpoint_interval(millis(5 * INTERVAL_MS)))
            .unwrap();
    ssc.checkpoint(dir.path());
    let port = server.port;
    ssc.define(move |s| {
        let lines = s.socket_text_stream("127.0.0.1", port);
        ember_testkit::running_word_counts(&lines).foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    // The distinct words of WAVE: the keys the running counts hold.
    let keys = word_counts(WAVE.iter().copied()).len() as u64;
    let state_keys = |stats: &Value| -> Vec<(String, u64)> {
        stats["stateKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["operator"].as_str().unwrap().to_string(),
                    u64_field(k, "keys"),
                )
            })
            .collect()
    };
    wait_until(
        Duration::from_secs(30),
        || {
            let s = get_json(&base, "/api/v1/streaming/statistics");
            !s["checkpoint"].is_null() && state_keys(&s).first().is_some_and(|(_, k)| *k == keys)
        },
        || format!("{:#}", get_json(&base, "/api/v1/streaming/statistics")),
    );
    let before = get_json(&base, "/api/v1/streaming/statistics");
    let page = dump_dom(&bin, &format!("{base}/streaming"));
    let after = get_json(&base, "/api/v1/streaming/statistics");

    assert!(shown(&page, "checkpoint-panel") && !shown(&page, "checkpoint-off"));
    let time: u64 = page
        .req(page.by_id("checkpoint-batch-time"), "data-ms")
        .parse()
        .unwrap();
    let (t0, t1) = (
        u64_field(&before["checkpoint"], "batchTime"),
        u64_field(&after["checkpoint"], "batchTime"),
    );
    assert!((t0..=t1).contains(&time), "{time} not in {t0}..={t1}");
    assert_eq!(
        (time - ssc.first_batch_time().unwrap().milliseconds() + INTERVAL_MS) % (5 * INTERVAL_MS),
        0,
        "checkpoints come every 5 batches"
    );
    let n: u64 = page
        .req(page.by_id("checkpoint-count"), "data-count")
        .parse()
        .unwrap();
    let (n0, n1) = (
        u64_field(&before["checkpoints"], "count"),
        u64_field(&after["checkpoints"], "count"),
    );
    assert!((n0..=n1).contains(&n), "{n} not in {n0}..={n1}");
    let rows = page.find(
        page.one(page.by_id("state-keys"), "tbody", None),
        "tr",
        None,
    );
    assert_eq!(rows.len(), 1);
    let (operator, k) = &state_keys(&after)[0];
    assert_eq!(page.req(rows[0], "data-operator"), operator);
    assert_eq!(count(&page.text(page.one(rows[0], "td", Some("keys")))), *k);
    assert_eq!(*k, keys);

    // The size the API gives is what the checkpoint's files hold on disk.
    let last = &after["checkpoint"];
    let on_disk = dir
        .path()
        .join(format!("checkpoint-{}", u64_field(last, "batchTime")));
    let files: u64 = std::fs::read_dir(&on_disk)
        .unwrap_or_else(|e| panic!("{}: {e}", on_disk.display()))
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(files, u64_field(last, "bytes"), "{}", on_disk.display());
    assert!(f64_field(last, "duration") >= 0.0);

    let metrics = get_metrics(&base);
    assert!(
        metrics["ember_checkpoints_total"] >= n1 as f64,
        "{metrics:#?}"
    );
    assert_eq!(
        metrics.get(&format!("ember_state_keys{{operator=\"{operator}\"}}")),
        Some(&(keys as f64)),
        "{metrics:#?}"
    );
    ssc.stop(false).unwrap();
    drop(server.finish());
}
