//! The web UI cannot starve the job (the tester's findings on the UI):
//! thousands of idle connections take no more file descriptors than the
//! UI's connection cap, so a socket receiver still reconnects and a
//! directory stream still lists and reads; a flood of requests neither
//! holds the batches up nor garbles the answers; foreign `Host`s are
//! refused; and huge dashboard keys and records are shown shortened, so
//! the answers stay small.
//!
//! The idle connections are held by a second process (this test binary
//! again, running the ignored `idle_connection_holder`), so that the file
//! descriptors counted in `/proc/self/fd` are the UI's alone.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ember::prelude::*;
use serde_json::Value;

use super::ui::{
    accept_within, batches_after, conf, get_json, http_get, totals, u64_field, wait_until,
    word_count, word_counts, SteadyServer, INTERVAL_MS,
};

// ------------------------------------------------------------ descriptors

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Sockets of this process whose local port is `port`: the UI's listener
/// and the connections it accepted.
fn sockets_on(port: u16) -> usize {
    let mut inodes = std::collections::BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = f[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && f[9] != "0" {
                inodes.insert(format!("socket:[{}]", f[9]));
            }
        }
    }
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|l| inodes.contains(l.to_string_lossy().as_ref()))
        .count()
}

/// The status of `GET path`, or the error that ended the exchange.
fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let head = String::from_utf8_lossy(&raw);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))
}

// ------------------------------------------------------- the other process

const HOLDER_ENV: &str = "EMBER_TEST_HOLD_CONNECTIONS";

/// Not a test on its own: the process `idle_connections_...` starts to hold
/// `n` idle connections to `addr` (`EMBER_TEST_HOLD_CONNECTIONS=addr,n`),
/// replacing the oldest with a new one about every millisecond, until its
/// stdin closes. It says `holding n` once they are open and
/// `opened m failed f` at the end.
#[test]
#[ignore = "a helper process of idle_connections_beyond_the_cap_leave_the_job_its_descriptors"]
fn idle_connection_holder() {
    let Ok(spec) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let (addr, n) = spec.split_once(',').unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    let n: usize = n.parse().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        d.store(true, Ordering::SeqCst);
    });
    let (mut opened, mut failed) = (0u64, 0u64);
    let mut connect = || match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => {
            opened += 1;
            Some(s)
        }
        Err(_) => {
            failed += 1;
            None
        }
    };
    let mut held: VecDeque<TcpStream> = VecDeque::new();
    while held.len() < n {
        held.extend(connect());
    }
    println!("holding {n}");
    std::io::stdout().flush().unwrap();
    while !done.load(Ordering::SeqCst) {
        held.pop_front();
        held.extend(connect());
        std::thread::sleep(Duration::from_millis(1)); // the flood's pace
    }
    println!("opened {opened} failed {failed}");
}

/// The holder process, running.
struct Holder {
    child: std::process::Child,
    out: mpsc::Receiver<String>,
}

impl Holder {
    fn start(addr: SocketAddr, n: usize) -> Holder {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ui_limits::idle_connection_holder",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "--quiet",
            ])
            .env(HOLDER_ENV, format!("{addr},{n}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut holder = Holder { child, out };
        holder.expect("holding");
        holder
    }

    /// The next line starting with `prefix`.
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(l) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(e) => panic!("the holder process never said `{prefix}…`: {e}"),
            }
        }
    }

    /// Closes its stdin; returns its last line.
    fn finish(mut self) -> String {
        drop(self.child.stdin.take());
        let last = self.expect("opened");
        assert!(self.child.wait().unwrap().success());
        last
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ tests

/// The time a wait for the job may take before the test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// Writes `lines` as file `name` into `dir`, through `staging`.
fn drop_file(dir: &Path, staging: &Path, name: &str, lines: &[String]) {
    let tmp = staging.join(name);
    std::fs::write(&tmp, lines.join("\n") + "\n").unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[test]
fn idle_connections_beyond_the_cap_leave_the_job_its_descriptors() {
    const CAP: usize = 64;
    const IDLE: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let source = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = source.local_addr().unwrap().port();

    let ssc = StreamingContext::new(conf("ui-idle-flood").ui_max_connections(CAP)).unwrap();
    let from_socket = Arc::new(AtomicU64::new(0));
    let from_files = Arc::new(AtomicU64::new(0));
    let (s_count, f_count) = (from_socket.clone(), from_files.clone());
    let watched = dir.path().to_path_buf();
    ssc.define(move |s| {
        let options = ember::SocketOptions::default().reconnect_delay(millis(20));
        let c = s_count.clone();
        s.socket_text_stream_with("127.0.0.1", port, options)
            .foreach_rdd(move |b, _| {
                c.fetch_add(b.len() as u64, Ordering::SeqCst);
            });
        let c = f_count.clone();
        s.text_file_stream(&watched).foreach_rdd(move |b, _| {
            c.fetch_add(b.len() as u64, Ordering::SeqCst);
        });
    })
    .unwrap();
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    let ui: SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
    let mut conn = accept_within(&source);
    ssc.await_batch(batches_after(ssc.first_batch_time().unwrap(), 2))
        .unwrap();
    let before = open_fds();

    let holder = Holder::start(ui, IDLE);
    let (mut most_fds, mut most_ui) = (0, 0);
    let mut sample = || {
        most_fds = most_fds.max(open_fds());
        most_ui = most_ui.max(sockets_on(ui.port()));
    };
    sample();

    // The receiver reads, loses its server, and reconnects: a new
    // descriptor while the UI is besieged.
    let wave = |w: u32| -> String { (0..1000).map(|i| format!("w{w} {i}\n")).collect() };
    conn.write_all(wave(1).as_bytes()).unwrap();
    wait_until(
        PATIENCE,
        || from_socket.load(Ordering::SeqCst) == 1000,
        || format!("{} of 1000 lines", from_socket.load(Ordering::SeqCst)),
    );
    sample();
    drop(conn);
    let mut conn = accept_within(&source);
    conn.write_all(wave(2).as_bytes()).unwrap();
    // The directory stream lists and opens files meanwhile.
    for f in 0..5 {
        let lines: Vec<String> = (0..200).map(|i| format!("f{f} {i}")).collect();
        drop_file(dir.path(), staging.path(), &format!("part-{f}.txt"), &lines);
        sample();
    }
    wait_until(
        PATIENCE,
        || {
            sample();
            from_socket.load(Ordering::SeqCst) == 2000 && from_files.load(Ordering::SeqCst) == 1000
        },
        || {
            format!(
                "socket lines {} of 2000, file lines {} of 1000",
                from_socket.load(Ordering::SeqCst),
                from_files.load(Ordering::SeqCst)
            )
        },
    );
    // The UI itself answers at once, if only to say it is full (or to
    // reset a connection it closed before reading the request).
    match try_get(ui, "/api/v1/streaming/statistics") {
        Ok(status) => assert!(matches!(status, 200 | 503), "status {status}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    sample();
    let said = holder.finish();

    eprintln!(
        "idle flood ({said}): descriptors {before} before, at most {most_fds} during; UI \
         sockets at most {most_ui} (cap {CAP})"
    );
    assert!(
        said.starts_with("opened ") && !said.starts_with("opened 0 "),
        "{said}"
    );
    // The listener plus the cap, and one just accepted over it.
    assert!(
        most_ui <= CAP + 2,
        "{most_ui} UI sockets open at once, over the cap of {CAP}"
    );
    // Other tests of this binary open some too: generous, far below IDLE.
    assert!(
        most_fds <= before + CAP + 100,
        "{most_fds} descriptors open during the flood, {before} before it (cap {CAP})"
    );
    // The held connections close with the holder: nothing leaks.
    wait_until(
        PATIENCE,
        || sockets_on(ui.port()) <= 1,
        || format!("{} UI sockets still open", sockets_on(ui.port())),
    );
    ssc.stop(false).unwrap();
}

/// A client on one kept-alive connection, as `wrk` uses.
struct KeepAlive {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl KeepAlive {
    /// Status and body of `GET path`; reconnects when the server closed.
    fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        for _ in 0..2 {
            if self.conn.is_none() {
                let s = TcpStream::connect(self.addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.set_nodelay(true).unwrap();
                self.conn = Some(BufReader::new(s));
            }
            match self.try_get(path) {
                Ok(r) => return r,
                Err(_) => self.conn = None,
            }
        }
        panic!("GET {path} failed twice");
    }

    fn try_get(&mut self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n\r\n",
            self.addr
        );
        let c = self.conn.as_mut().unwrap();
        // One write: a request in pieces waits on Nagle and delayed ACKs.
        c.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        c.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("status line {line:?}")))?;
        let mut length = None;
        let mut close = false;
        loop {
            line.clear();
            c.read_line(&mut line)?;
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            }
            close |= l == "connection: close";
        }
        let length =
            length.ok_or_else(|| std::io::Error::other(format!("GET {path}: no length")))?;
        let mut body = vec![0; length];
        c.read_exact(&mut body)?;
        if close {
            self.conn = None;
        }
        Ok((status, body))
    }
}

const FLOODED: &[&str] = &[
    "/api/v1/streaming/statistics",
    "/api/v1/streaming/batches",
    "/api/v1/streaming/receivers",
    "/api/v1/dashboards",
    "/api/v1/dashboards/0",
    "/metrics",
    "/streaming",
    "/static/streaming.js",
];

/// One flooding thread: requests round the routes until `stop`, checking
/// each answer; returns how many it made.
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>) -> u64 {
    let mut client = KeepAlive { addr, conn: None };
    let (mut n, mut completed, mut processed) = (0u64, 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let path = FLOODED[n as usize % FLOODED.len()];
        let (status, body) = client.get(path);
        n += 1;
        assert_eq!(status, 200, "GET {path} during the flood");
        if path == "/metrics" || path.starts_with("/static") {
            continue;
        }
        if path == "/streaming" {
            assert!(body.ends_with(b"</html>\n"), "the Streaming page is cut");
            continue;
        }
        let v: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}) during the flood"));
        match path {
            "/api/v1/streaming/statistics" => {
                // Counters never go back, and processed ≤ received.
                let c = u64_field(&v, "numTotalCompletedBatches");
                let p = u64_field(&v, "numProcessedRecords");
                assert!(c >= completed && p >= processed, "{v:#}");
                assert!(p <= u64_field(&v, "numReceivedRecords"), "{v:#}");
                (completed, processed) = (c, p);
            }
            "/api/v1/streaming/batches" => {
                let times: Vec<u64> = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|b| u64_field(b, "batchTime"))
                    .collect();
                assert!(times.windows(2).all(|w| w[0] > w[1]), "{times:?}");
            }
            _ => {}
        }
    }
    n
}

#[test]
fn a_request_flood_neither_holds_up_the_batches_nor_garbles_the_answers() {
    const THREADS: usize = 8;
    const FLOOD_BATCHES: u64 = 15;
    let server = SteadyServer::start(&["a b c d", "e f g h"], Duration::from_millis(10));
    let ssc = StreamingContext::new(conf("ui-request-flood")).unwrap();
    let seen = word_count(&ssc, server.port, Some("words"));
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    let addr: SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
    let first = ssc.first_batch_time().unwrap();
    ssc.await_batch(batches_after(first, 5)).unwrap();
    let calm = ssc.completed_batches();

    let stop = Arc::new(AtomicBool::new(false));
    let flooding = Time::from_millis(calm.last().unwrap().batch_time.milliseconds());
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || flood(addr, stop))
        })
        .collect();
    let started = Instant::now();
    ssc.await_batch(batches_after(flooding, FLOOD_BATCHES))
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let requests: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let flood_time = started.elapsed();

    let all = ssc.completed_batches();
    let during: Vec<_> = all
        .iter()
        .filter(|b| {
            let t = b.batch_time.milliseconds();
            t > flooding.milliseconds()
                && t <= batches_after(flooding, FLOOD_BATCHES).milliseconds()
        })
        .collect();
    let delays = |bs: &mut dyn Iterator<Item = &ember::BatchInfo>| -> (u64, u64) {
        bs.fold((0, 0), |(s, t), b| {
            (
                s.max(b.scheduling_delay().unwrap_or(0)),
                t.max(b.total_delay().unwrap_or(0)),
            )
        })
    };
    let (calm_sched, calm_total) = delays(&mut calm.iter());
    let (sched, total) = delays(&mut during.iter().copied());
    eprintln!(
        "request flood: {requests} requests by {THREADS} clients in {flood_time:?} \
         ({:.0}/s); max scheduling delay {calm_sched} ms before, {sched} ms during; max total \
         delay {calm_total} ms before, {total} ms during",
        requests as f64 / flood_time.as_secs_f64()
    );
    assert_eq!(
        during.len() as u64,
        FLOOD_BATCHES,
        "every batch of the flood completed"
    );
    assert!(requests > 100, "the flood made only {requests} requests");
    // Not a benchmark: the tester saw 1.4–13.5 s; bounded means well under.
    assert!(
        total < 2_000 && sched < 2_000,
        "batches were held up during the flood: max total delay {total} ms, scheduling {sched} ms"
    );

    // And the answers add up once it is over.
    let (waves, conn) = server.finish();
    let want: BTreeMap<String, u64> = word_counts(["a b c d", "e f g h"])
        .into_iter()
        .map(|(w, n)| (w, n * waves))
        .collect();
    wait_until(
        PATIENCE,
        || totals(&seen) == want,
        || format!("totals {:?}, want {want:?}", totals(&seen)),
    );
    let last = *seen.lock().unwrap().keys().last().unwrap();
    ssc.await_batch(Time::from_millis(last)).unwrap();
    let stats = get_json(&base, "/api/v1/streaming/statistics");
    assert_eq!(
        u64_field(&stats, "numProcessedRecords"),
        2 * waves,
        "{stats:#}"
    );
    ssc.stop(false).unwrap();
    drop(conn);
}

/// Raw `GET path` with the given `Host`, `Connection: close`.
fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> super::ui::Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    super::ui::Reply {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

#[test]
fn a_rebound_host_name_is_refused_and_answers_carry_security_headers() {
    let ssc = StreamingContext::new(conf("ui-host")).unwrap();
    ssc.define(|s| {
        s.queue_stream(vec![vec![1u64, 2, 3]], true, None)
            .foreach_rdd(|_, _| {});
    })
    .unwrap();
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    let addr: SocketAddr = base.strip_prefix("http://").unwrap().parse().unwrap();
    let port = addr.port();

    // A page on attacker.example whose name now resolves to 127.0.0.1.
    let r = get_with_host(
        addr,
        "/api/v1/streaming/statistics",
        &format!("attacker.example:{port}"),
    );
    assert_eq!(r.status, 421, "{}\n{}", r.headers, r.body);
    assert!(!r.body.contains("ui-host"), "{}", r.body);
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = get_with_host(addr, "/api/v1/streaming/statistics", &host);
        assert_eq!(r.status, 200, "Host {host}: {}", r.headers);
    }
    for path in [
        "/streaming",
        "/dashboard/0",
        "/api/v1/streaming/batches",
        "/metrics",
    ] {
        let r = http_get(&base, path);
        let h = r.headers.to_ascii_lowercase();
        for want in [
            "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';",
            "frame-ancestors 'none'",
            "x-frame-options: deny",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
        ] {
            assert!(
                h.contains(want),
                "GET {path}: no `{want}` in\n{}",
                r.headers
            );
        }
    }
    ssc.stop(false).unwrap();
}

#[test]
fn an_unusable_ui_address_asked_for_fails_start() {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine.
    let ssc = StreamingContext::new(
        StreamingConf::new("ui-bad-address", millis(INTERVAL_MS))
            .master("local[1]")
            .unwrap()
            .ui(Some("192.0.2.1:4040")),
    )
    .unwrap();
    ssc.define(|s| {
        s.queue_stream(vec![vec![1u64]], true, None)
            .foreach_rdd(|_, _| {});
    })
    .unwrap();
    let e = ssc.start().unwrap_err();
    assert!(matches!(e, ember::Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("192.0.2.1:4040"), "{e}");
}

/// Keys and records of 1 MiB: the answers stay small, each one shown cut
/// with its length, and counted.
#[test]
fn huge_dashboard_keys_and_records_are_shown_shortened() {
    const HUGE: usize = 1 << 20;
    const ROWS: usize = 12;
    // Every batch holds the same rows (the queue's default), so whichever
    // batch a dashboard shows when asked, it shows them; 1 s batches keep
    // the copying of 12 MiB per batch light.
    let conf = StreamingConf::new("ui-huge-keys", seconds(1))
        .master("local[2]")
        .unwrap()
        .ui(Some("127.0.0.1:0"));
    let ssc = StreamingContext::new(conf).unwrap();
    let batch: Vec<(String, u64)> = (0..ROWS)
        .map(|i| (format!("{i:02}{}", "k".repeat(HUGE)), i as u64))
        .collect();
    ssc.define(move |s| {
        let pairs = s.queue_stream(Vec::<Vec<(String, u64)>>::new(), true, Some(batch.clone()));
        pairs.to_dashboard("huge keys");
        pairs.map(|(k, _)| k).to_dashboard_records("huge records");
    })
    .unwrap();
    ssc.start().unwrap();
    let base = ssc.ui_url().expect("the UI runs");
    let first = ssc.first_batch_time().unwrap();
    ssc.await_batch(first).unwrap();

    let pairs = http_get(&base, "/api/v1/dashboards/0");
    let records = http_get(&base, "/api/v1/dashboards/1");
    eprintln!(
        "dashboards of {ROWS} keys of {HUGE} bytes: answers of {} and {} bytes",
        pairs.body.len(),
        records.body.len()
    );
    for (r, limit) in [(&pairs, 1024), (&records, 4096)] {
        assert_eq!(r.status, 200, "{}", r.headers);
        assert!(
            r.body.len() < ROWS * (limit + 200) + 1000,
            "an answer of {} bytes",
            r.body.len()
        );
    }
    let marker = format!("…[{} bytes in all]", HUGE + 2);
    let pairs: Value = serde_json::from_str(&pairs.body).unwrap();
    assert_eq!(u64_field(&pairs, "numRows"), ROWS as u64);
    assert_eq!(u64_field(&pairs, "numTruncated"), ROWS as u64, "{pairs:#}");
    // A multiple of ROWS: one batch or more so far.
    let total = u64_field(&pairs, "totalTruncated");
    assert!(total >= ROWS as u64 && total % ROWS as u64 == 0, "{total}");
    let rows = pairs["rows"].as_array().unwrap();
    assert_eq!(rows.len(), ROWS);
    for (i, row) in rows.iter().enumerate() {
        let key = row["key"].as_str().unwrap();
        let rank = ROWS - 1 - i; // largest value first
        assert!(
            key.starts_with(&format!("{rank:02}kkk")) && key.ends_with(&marker),
            "row {i}: {}…{}",
            &key[..10],
            &key[key.len() - 30..]
        );
        assert_eq!(key.len(), 1024 + marker.len());
    }
    let records: Value = serde_json::from_str(&records.body).unwrap();
    assert_eq!(u64_field(&records, "numTruncated"), ROWS as u64);
    for r in records["records"].as_array().unwrap() {
        let r = r.as_str().unwrap();
        assert!(r.ends_with(&marker) && r.len() == 4096 + marker.len());
    }
    // The nav list is small too.
    let list = http_get(&base, "/api/v1/dashboards");
    assert!(list.body.len() < 200, "{}", list.body);
    ssc.stop(false).unwrap();
}
