//! The UI server's bounds, on real sockets against a bare statistics bus:
//! the connection cap, the header and write timeouts, the `Host` check,
//! the security headers, answers served from a snapshot without the
//! tracker's lock, and where it binds.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::listener::DashboardContent;

const INTERVAL: u64 = 200;

fn limits(max_connections: usize, timeout: Duration) -> Limits {
    Limits {
        max_connections,
        header_timeout: timeout,
        request_timeout: timeout,
    }
}

/// A UI on a free loopback port over a fresh bus.
fn start(limits: Limits) -> (UiServer, Arc<Bus>) {
    let bus = Bus::start(INTERVAL, true, Vec::new());
    let socket = bind("127.0.0.1:0", true).unwrap().unwrap();
    let server = serve(socket, bus.clone(), "ui-test".into(), false, limits).unwrap();
    (server, bus)
}

struct Reply {
    status: u16,
    /// Lowercase.
    head: String,
    body: String,
}

/// Sends `request` as is and reads the answer to the end of the connection.
fn exchange(addr: SocketAddr, request: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("no answer to {request:?}: {e}"));
    parse(&String::from_utf8(raw).unwrap())
}

fn parse(raw: &str) -> Reply {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {raw:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

fn assert_security_headers(r: &Reply, what: &str) {
    for h in [
        "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
        "cross-origin-resource-policy: same-origin",
    ] {
        assert!(r.head.contains(h), "{what}: no `{h}` in\n{}", r.head);
    }
}

/// Reads until the server closes `s`; fails after `limit`.
fn await_close(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!("the server did not close the connection within {limit:?}: {e}"),
    }
}

#[test]
fn idle_and_slow_connections_are_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(300);
    let (server, _bus) = start(limits(16, timeout));
    let addr = server.address();

    // Nothing sent at all.
    let started = Instant::now();
    let mut idle = TcpStream::connect(addr).unwrap();
    assert!(await_close(&mut idle, Duration::from_secs(10)).is_empty());
    assert!(started.elapsed() >= timeout - Duration::from_millis(50));

    // Headers trickled, never finished.
    let started = Instant::now();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    await_close(&mut slow, Duration::from_secs(10));
    assert!(started.elapsed() >= timeout - Duration::from_millis(50));

    // A kept-alive connection gets the same time for its next request.
    let mut kept = TcpStream::connect(addr).unwrap();
    write!(kept, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let rest = await_close(&mut kept, Duration::from_secs(10));
    let r = parse(&String::from_utf8(rest).unwrap());
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(!r.head.contains("connection: close"), "{}", r.head);
}

#[test]
fn connections_over_the_cap_are_closed_at_once_with_a_503() {
    let (server, _bus) = start(limits(4, Duration::from_secs(30)));
    let addr = server.address();
    // The server takes connections in order: these four hold every slot.
    let mut held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for _ in 0..3 {
        let mut over = TcpStream::connect(addr).unwrap();
        let answer = await_close(&mut over, Duration::from_secs(10));
        let r = parse(&String::from_utf8(answer).unwrap());
        assert_eq!(r.status, 503, "{}", r.head);
        assert!(r.head.contains("connection: close"), "{}", r.head);
        assert_security_headers(&r, "the 503 over the cap");
    }
    // A held connection still works, and once one is gone a new one is served.
    write!(
        held[0],
        "GET /api/v1/streaming/statistics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let r = parse(&String::from_utf8(await_close(&mut held[0], Duration::from_secs(10))).unwrap());
    assert_eq!(r.status, 200, "{}", r.head);
    held.remove(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(addr, "/metrics");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        std::thread::yield_now();
    }
}

#[test]
fn a_client_that_reads_nothing_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        // Nobody reads the other end: the 64-byte pipe fills, the write waits.
        let (a, _b) = tokio::io::duplex(64);
        let mut guarded = net::Unstalled::new(a, Duration::from_millis(100));
        let started = Instant::now();
        let e = guarded.write_all(&[7; 4096]).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(90));

        // A reader that keeps up, however slowly overall, is never cut off.
        let (a, mut b) = tokio::io::duplex(64);
        let mut guarded = net::Unstalled::new(a, Duration::from_millis(100));
        let reader = async move {
            let mut got = Vec::new();
            let mut buf = [0; 16];
            while got.len() < 4096 {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let n = b.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            got
        };
        let (w, got) = tokio::join!(guarded.write_all(&[7; 4096]), reader);
        w.unwrap();
        assert_eq!(got.len(), 4096);
    });
}

#[test]
fn warnings_of_a_flood_come_once_a_minute_with_a_count() {
    let mut w = net::Throttled::default();
    let t0 = Instant::now();
    assert_eq!(w.hit(t0), Some(1));
    for i in 1..1000 {
        assert_eq!(w.hit(t0 + Duration::from_millis(i)), None);
    }
    assert_eq!(w.hit(t0 + Duration::from_secs(61)), Some(1000));
    assert_eq!(w.hit(t0 + Duration::from_secs(62)), None);
}

#[test]
fn host_names_on_loopback() {
    let lo = net::HostCheck::new("127.0.0.1".parse().unwrap(), "127.0.0.1");
    for ok in [
        "127.0.0.1:4040",
        "127.0.0.1",
        "10.1.2.3:80",
        "localhost:4040",
        "LocalHost",
        "[::1]:4040",
        "[::1]",
    ] {
        assert!(lo.allows(ok), "{ok} refused");
    }
    for bad in [
        "evil.example:4040",
        "evil.example",
        "127.0.0.1.nip.io:4040",
        "localhost.evil.example",
        "localhost:4040x",
        "[::1]x",
        "[not-an-ip]:4040",
        "",
    ] {
        assert!(!lo.allows(bad), "{bad} accepted");
    }
    let named = net::HostCheck::new("127.0.0.1".parse().unwrap(), "MyBox");
    assert!(named.allows("mybox:4040") && named.allows("MYBOX"));
    assert!(!named.allows("otherbox:4040"));
    let open = net::HostCheck::new("0.0.0.0".parse().unwrap(), "0.0.0.0");
    assert!(open.allows("build-7.internal:4040") && open.allows("anything"));
}

#[test]
fn foreign_hosts_are_refused_and_every_answer_has_the_security_headers() {
    let (server, _bus) = start(Limits::new(16));
    let addr = server.address();
    let port = addr.port();

    let rebound = exchange(
        addr,
        &format!("GET /api/v1/streaming/statistics HTTP/1.1\r\nHost: attacker.example:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(rebound.status, 421, "{}\n{}", rebound.head, rebound.body);
    assert!(!rebound.body.contains("appName"), "{}", rebound.body);
    assert_security_headers(&rebound, "421");
    let absolute = exchange(
        addr,
        &format!("GET http://attacker.example:{port}/metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(absolute.status, 421, "{}", absolute.head);
    let twice = exchange(
        addr,
        &format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: attacker.example\r\nConnection: close\r\n\r\n"),
    );
    assert_ne!(twice.status, 200, "{}", twice.head);

    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = exchange(
            addr,
            &format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(r.status, 200, "Host {host}: {}", r.head);
    }
    let http10 = exchange(addr, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(http10.status, 200, "{}", http10.head);

    for path in [
        "/streaming",
        "/dashboard/0",
        "/api/v1/streaming/statistics",
        "/api/v1/streaming/batches",
        "/metrics",
        "/static/ember.js",
        "/static/streaming.css",
        "/no/such/page",
    ] {
        assert_security_headers(&get(addr, path), path);
    }
    assert_eq!(get(addr, "/no/such/page").status, 404);
}

/// The pages carry no inline script, style or event handler, which the
/// Content-Security-Policy would block; everything they load is served.
#[test]
fn pages_load_only_what_the_policy_allows() {
    let (server, _bus) = start(Limits::new(16));
    let addr = server.address();
    for (page, html) in [
        ("streaming.html", STREAMING_PAGE),
        ("dashboard.html", DASHBOARD_PAGE),
        ("batch.html", BATCH_PAGE),
    ] {
        let lower = html.to_ascii_lowercase();
        assert!(
            !lower.contains("<style"),
            "{page} has an inline style sheet"
        );
        assert!(!lower.contains(" style="), "{page} has a style attribute");
        assert!(
            !lower.contains("javascript:"),
            "{page} has a javascript: URL"
        );
        for (i, _) in lower.match_indices("<script") {
            let tag = &lower[i..i + lower[i..].find('>').unwrap()];
            assert!(
                tag.contains(" src=\"/static/"),
                "{page}: inline script {tag}"
            );
        }
        assert!(
            !inline_handler(&lower),
            "{page} has an inline event handler"
        );
        for (i, _) in lower.match_indices("=\"/static/") {
            let path = &html[i + 2..i + 2 + html[i + 2..].find('"').unwrap()];
            let r = get(addr, path);
            assert_eq!(r.status, 200, "{page} loads {path}: {}", r.head);
        }
    }
    for (file, _, text) in STATIC {
        // A script may set styles through `.style` (allowed) but not write
        // `style` attributes, nor evaluate strings.
        if file.ends_with(".js") {
            for bad in ["style:", "'style'", "eval(", "new function", "innerhtml"] {
                assert!(
                    !text.to_ascii_lowercase().contains(bad),
                    "{file} uses {bad}, which the policy blocks"
                );
            }
        }
    }
}

/// Whether some tag has an `on...=` attribute.
fn inline_handler(html: &str) -> bool {
    html.split('<').skip(1).any(|tag| {
        let tag = tag.split('>').next().unwrap_or("");
        tag.split_whitespace()
            .skip(1)
            .any(|attr| attr.starts_with("on") && attr.contains('='))
    })
}

#[test]
fn answers_come_from_a_snapshot_taken_once_per_change() {
    let (server, bus) = start(Limits::new(16));
    let addr = server.address();
    let paths = [
        "/api/v1/streaming/statistics",
        "/api/v1/streaming/batches",
        "/api/v1/streaming/receivers",
        "/api/v1/dashboards",
        "/metrics",
    ];
    bus.sealed(1_000, "queue", 5);
    bus.completed_through(1_000);
    bus.sealed(1_200, "queue", 7);
    for p in paths {
        assert_eq!(get(addr, p).status, 200, "{p}");
    }
    // While the workers hold the tracker's lock, nothing changed: the UI
    // answers all the same, without waiting for it.
    {
        let _held = bus.tracker.lock().unwrap();
        for p in paths {
            let r = get(addr, p);
            assert_eq!(r.status, 200, "{p}");
        }
        let batches: serde_json::Value =
            serde_json::from_str(&get(addr, "/api/v1/streaming/batches").body).unwrap();
        let times: Vec<u64> = batches
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["batchTime"].as_u64().unwrap())
            .collect();
        assert_eq!(times, [1_200, 1_000]);
    }
    // A change is seen by the next request.
    bus.completed_through(1_200);
    let stats: serde_json::Value =
        serde_json::from_str(&get(addr, "/api/v1/streaming/statistics").body).unwrap();
    assert_eq!(stats["numTotalCompletedBatches"], 2, "{stats:#}");
    assert_eq!(stats["numProcessedRecords"], 12, "{stats:#}");
    let batches: serde_json::Value =
        serde_json::from_str(&get(addr, "/api/v1/streaming/batches").body).unwrap();
    let statuses: Vec<&str> = batches
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["COMPLETED", "COMPLETED"], "{batches:#}");
}

#[test]
fn a_dashboard_answer_counts_what_was_shortened() {
    let (server, bus) = start(Limits::new(16));
    let addr = server.address();
    let id = bus.add_dashboard("long keys", true);
    let mut key = "k".repeat(5000);
    assert!(crate::dstream::dashboard::truncate_for_display(
        &mut key, 1024
    ));
    bus.update_dashboard(
        id,
        DashboardContent {
            batch_time: Some(1_000),
            num_rows: 1,
            rows: vec![(key.clone(), 1.0)],
            truncated: 1,
            ..DashboardContent::default()
        },
    );
    let r = get(addr, &format!("/api/v1/dashboards/{id}"));
    assert_eq!(r.status, 200);
    let d: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(d["numTruncated"], 1, "{d:#}");
    assert_eq!(d["totalTruncated"], 1, "{d:#}");
    assert_eq!(d["rows"][0]["key"], key.as_str());
    assert!(key.ends_with("…[5000 bytes in all]"));
}

#[test]
fn an_asked_address_that_cannot_be_used_is_an_error_the_default_a_warning() {
    // 192.0.2.1 (TEST-NET-1) is no address of this machine.
    let e = bind("192.0.2.1:4040", true).err().expect("an error");
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("--no-ui"), "{e}");
    assert!(bind("192.0.2.1:4040", false).unwrap().is_none());
    assert!(matches!(
        bind("no port here", true).err(),
        Some(Error::Config(_))
    ));

    // A taken port: the next free one, as Spark does.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    if port < u16::MAX - 16 {
        let socket = bind(&format!("127.0.0.1:{port}"), true).unwrap().unwrap();
        let got = socket.listener.local_addr().unwrap().port();
        assert!((port + 1..=port + 16).contains(&got), "{port} → {got}");
    }
}
