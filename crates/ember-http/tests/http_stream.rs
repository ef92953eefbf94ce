//! The HTTP streaming receivers against a real HTTP server on loopback
//! (written here with std's sockets, so each test decides what every
//! connection gets): JSON lines and Server-Sent Events arrive whole and
//! once at one and three workers, across dropped connections, a server
//! down at start and mid-run, and `Last-Event-ID` resumption, within a
//! run and after `kill -9` from the write-ahead log; a refusal stops the
//! context with a clear error.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ember_core::{millis, Receiver, ReceiverOptions, StreamingConf, StreamingContext};
use ember_http::{json_lines, server_sent_events, SseEvent};

/// What a test's server does with its `n`th connection, given the request
/// head; `hold` tells it to keep the connection open until the test ends.
type Script = dyn Fn(usize, &str, &mut TcpStream, &AtomicBool) + Send + Sync;

/// Serves connections on `listener` one after another with `script`,
/// keeping each request head in `heads`, until `done`.
fn serve(
    listener: TcpListener,
    script: Arc<Script>,
    heads: Arc<Mutex<Vec<String>>>,
    done: Arc<AtomicBool>,
    first: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut n = first;
        while !done.load(Ordering::SeqCst) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            let mut head = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            heads.lock().unwrap().push(head.clone());
            script(n, &head, &mut conn, &done);
            n += 1;
            if n >= first + 1000 {
                break;
            }
        }
    })
}

/// The answer's head: 200 and a body that lasts until the connection closes.
fn ok(conn: &mut TcpStream, content_type: &str) {
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
}

/// Writes `text` in pieces of varying size (cutting lines anywhere).
fn send_in_pieces(conn: &mut TcpStream, text: &str) {
    let bytes = text.as_bytes();
    let mut at = 0;
    let mut size = 1;
    while at < bytes.len() {
        let end = (at + size).min(bytes.len());
        if conn.write_all(&bytes[at..end]).is_err() {
            return;
        }
        conn.flush().unwrap();
        at = end;
        size = size * 7 % 61 + 1;
        if size % 5 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Keeps a connection open, sending a keep-alive newline now and then,
/// until the test is done.
fn hold(conn: &mut TcpStream, done: &AtomicBool, keep_alive: &str) {
    while !done.load(Ordering::SeqCst) {
        if conn.write_all(keep_alive.as_bytes()).is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A context with 100 ms batches at `local[workers]`.
fn context(workers: usize) -> StreamingContext {
    let conf = StreamingConf::new("http", millis(100))
        .master(&format!("local[{workers}]"))
        .unwrap()
        .ui(None);
    StreamingContext::new(conf).unwrap()
}

/// Waits (bounded) until `seen` holds `want` records, then for three more
/// batches (any record stored twice would show), and returns them.
fn wait_for<T: Clone>(seen: &Arc<Mutex<(Vec<T>, usize)>>, want: usize) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().0.len() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let batches = seen.lock().unwrap().1;
    while seen.lock().unwrap().1 < batches + 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    seen.lock().unwrap().0.clone()
}

type Seen<T> = Arc<Mutex<(Vec<T>, usize)>>;

/// A started context at `local[workers]` whose stream is the receiver
/// `make` gives (every worker defines it; one runs it), collecting every
/// batch's records.
fn started<R: Receiver>(
    workers: usize,
    make: impl Fn() -> R + Send + Sync + 'static,
) -> (StreamingContext, Seen<R::Record>) {
    let ssc = context(workers);
    let seen: Seen<R::Record> = Arc::default();
    let sink = seen.clone();
    ssc.define(move |s| {
        let sink = sink.clone();
        s.receiver_stream(make()).foreach_rdd(move |b, _| {
            let mut seen = sink.lock().unwrap();
            seen.0.extend(b);
            seen.1 += 1;
        });
    })
    .unwrap();
    ssc.start().unwrap();
    (ssc, seen)
}

fn lines(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!("{{\"n\":{i},\"text\":\"é {i}\"}}"))
        .collect()
}

#[test]
fn json_lines_arrive_whole_and_once_across_a_dropped_connection() {
    for workers in [1, 3] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(|n, _head, conn, done| {
            ok(conn, "application/x-ndjson");
            match n {
                0 => {
                    // Keep-alive blank lines between records, then a line
                    // cut off by the connection's end.
                    let mut text = String::new();
                    for (i, l) in lines(0..300).iter().enumerate() {
                        text.push_str(l);
                        text.push_str(if i % 50 == 0 { "\r\n\r\n" } else { "\n" });
                    }
                    text.push_str("{\"cut\":");
                    send_in_pieces(conn, &text);
                }
                1 => {
                    send_in_pieces(conn, &(lines(300..400).join("\n") + "\n"));
                    hold(conn, done, "\n");
                }
                _ => hold(conn, done, "\n"),
            }
        });
        let server = serve(listener, script, heads.clone(), done.clone(), 0);
        let (ssc, seen) = started(workers, move || {
            json_lines(&url)
                .bearer_token("s3cret")
                .backoff(Duration::from_millis(50), Duration::from_millis(200))
        });
        let mut got = wait_for(&seen, 400);
        ssc.stop(false).unwrap();
        done.store(true, Ordering::SeqCst);
        server.join().unwrap();
        got.sort();
        let mut want = lines(0..400);
        want.sort();
        assert_eq!(got, want, "workers = {workers}");
        let heads = heads.lock().unwrap();
        assert!(heads.len() >= 2, "connected again: {heads:?}");
        assert!(
            heads[0]
                .to_ascii_lowercase()
                .contains("authorization: bearer s3cret"),
            "{}",
            heads[0]
        );
    }
}

fn sse(id: usize) -> String {
    format!("event: tick\nid: {id}\ndata: line one of {id}\ndata: line two\n\n")
}

fn sse_event(id: usize) -> SseEvent {
    SseEvent {
        id: Some(id.to_string()),
        event: "tick".into(),
        data: format!("line one of {id}\nline two"),
    }
}

#[test]
fn server_sent_events_resume_from_the_last_event_id() {
    for workers in [1, 3] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        let heads = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(|_n, head, conn, done| {
            ok(conn, "text/event-stream");
            // Resume after the id the client last saw.
            let after: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("last-event-id")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            let mut text = String::from(": hello\nretry: 50\n\n");
            if after < 20 {
                for id in after + 1..=(after + 10).min(20) {
                    text.push_str(&sse(id));
                }
                // Half an event, then the connection ends.
                text.push_str("event: tick\ndata: cut off");
                send_in_pieces(conn, &text);
            } else {
                send_in_pieces(conn, &text);
                hold(conn, done, ": keep-alive\n");
            }
        });
        let server = serve(listener, script, heads.clone(), done.clone(), 0);
        let (ssc, seen) = started(workers, move || server_sent_events(&url));
        let mut got = wait_for(&seen, 20);
        ssc.stop(false).unwrap();
        done.store(true, Ordering::SeqCst);
        server.join().unwrap();
        got.sort_by_key(|e| e.id.clone().unwrap().parse::<usize>().unwrap());
        let want: Vec<SseEvent> = (1..=20).map(sse_event).collect();
        assert_eq!(got, want, "workers = {workers}");
        let heads = heads.lock().unwrap();
        assert!(
            heads
                .iter()
                .any(|h| h.to_ascii_lowercase().contains("last-event-id: 10")),
            "{heads:?}"
        );
    }
}

/// The id in a request head's `Last-Event-ID`, if any.
fn last_event_id(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("last-event-id")
            .then(|| v.trim().parse().ok())?
    })
}

const KILL_CHILD_ENV: &str = "EMBER_HTTP_KILL_CHILD";

/// The child's program when this binary runs as the child (a no-op in a
/// normal run): running counts of the events' data, with the write-ahead
/// log on, restarted with `get_or_create`.
#[test]
fn sse_child_program() {
    let Some(([url], program)) = ember_testkit::restartable_child::<1>(KILL_CHILD_ENV) else {
        return;
    };
    let conf = StreamingConf::new("http-kill", millis(100))
        .ui(None)
        .checkpoint_interval(millis(200));
    program.run(conf, move |s| {
        s.receiver_stream_with(
            server_sent_events(&url).backoff(Duration::from_millis(50), Duration::from_millis(200)),
            ReceiverOptions::default().write_ahead_log(true),
        )
        .map(|e| e.data)
    });
}

#[test]
fn server_sent_events_with_the_log_are_counted_once_across_kill_9() {
    if std::env::var(KILL_CHILD_ENV).is_ok() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let done = Arc::new(AtomicBool::new(false));
    // The server sends every published event after the client's
    // `Last-Event-ID` (all of them without one), as a feed that keeps its
    // history does; between events it writes comments, so that a killed
    // client's connection is noticed.
    let published = Arc::new(AtomicUsize::new(0));
    let feed = published.clone();
    let script: Arc<Script> = Arc::new(move |_n, head, conn, done| {
        ok(conn, "text/event-stream");
        let mut next = last_event_id(head).map_or(0, |id| id + 1);
        while !done.load(Ordering::SeqCst) {
            let upto = feed.load(Ordering::SeqCst);
            let text: String = (next..upto)
                .map(|id| format!("id: {id}\ndata: e{id}\n\n"))
                .collect();
            let text = if text.is_empty() {
                ": idle\n".into()
            } else {
                text
            };
            if conn.write_all(text.as_bytes()).is_err() {
                return;
            }
            next = next.max(upto);
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let heads = Arc::new(Mutex::new(Vec::new()));
    let server = serve(listener, script, heads.clone(), done.clone(), 0);
    let mut program =
        ember_testkit::Restartable::new("sse_child_program", KILL_CHILD_ENV, url.clone());
    let mut child = program.spawn(2);
    ember_testkit::await_first_output(&program.out);
    for i in 0..40u64 {
        published.fetch_add(10, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30 + i * 17 % 50));
        if i % 10 == 6 {
            program.kill_and_restart(&mut child);
        }
    }
    let expected: BTreeMap<String, u64> = (0..400).map(|id| (format!("e{id}"), 1)).collect();
    let counts = ember_testkit::settled_word_counts(&program.out, &expected);
    child.kill().unwrap();
    child.wait().unwrap();
    done.store(true, Ordering::SeqCst);
    server.join().unwrap();
    let kills = program.kills;
    assert_eq!(kills, 4);
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !counts.contains_key(*k))
        .collect();
    let twice: Vec<(&String, &u64)> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty() && counts.len() == expected.len(),
        "{} of 400 events missing ({:?}…), {} not counted once ({:?}…)",
        missing.len(),
        &missing[..missing.len().min(5)],
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    // The restarted programs asked for what followed their log.
    let resumed = heads
        .lock()
        .unwrap()
        .iter()
        .filter(|h| last_event_id(h).is_some())
        .count();
    assert!(resumed >= kills, "{resumed} resumed connections");
}

#[test]
fn a_server_down_at_start_and_mid_run_loses_nothing_it_sent() {
    // Nothing listens on the port at first.
    let port = ember_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}/stream");
    let u = url.clone();
    let (ssc, seen) = started(2, move || {
        json_lines(&u).backoff(Duration::from_millis(50), Duration::from_millis(200))
    });
    // The failed attempts are reported (the UI's receiver table shows them).
    let deadline = Instant::now() + Duration::from_secs(30);
    let last_error = || {
        ssc.receivers()
            .first()
            .and_then(|r| r.last_error.clone())
            .unwrap_or_default()
    };
    while !last_error().contains("cannot connect") {
        assert!(Instant::now() < deadline, "no failed attempt reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(last_error().contains(&url), "{}", last_error());

    let heads = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    // Up: the first half, then the server goes away (connection and
    // listener closed).
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let first: Arc<Script> = Arc::new(|n, _head, conn, _done| {
        // The first connection gets the first half; later ones are closed
        // unanswered, as by a server going down.
        if n == 0 {
            ok(conn, "application/x-ndjson");
            send_in_pieces(conn, &(lines(0..50).join("\n") + "\n"));
        }
    });
    let stop_first = Arc::new(AtomicBool::new(false));
    let server = serve(listener, first, heads.clone(), stop_first.clone(), 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().0.len() < 50 {
        assert!(Instant::now() < deadline, "the first half never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop_first.store(true, Ordering::SeqCst);
    server.join().unwrap();
    // Down for a while: refused connections, reported.
    let refusals = heads.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(400));
    assert!(last_error().contains("cannot connect") || last_error().contains("ended"));
    // Up again: the second half.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let second: Arc<Script> = Arc::new(|_n, _head, conn, done| {
        ok(conn, "application/x-ndjson");
        send_in_pieces(conn, &(lines(50..100).join("\n") + "\n"));
        hold(conn, done, "\n");
    });
    let server = serve(listener, second, heads.clone(), done.clone(), refusals);
    let mut got = wait_for(&seen, 100);
    ssc.stop(false).unwrap();
    done.store(true, Ordering::SeqCst);
    server.join().unwrap();
    got.sort();
    let mut want = lines(0..100);
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_refused_request_stops_the_context_naming_the_url_and_status() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/private", listener.local_addr().unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let script: Arc<Script> = Arc::new(|_n, _head, conn, _done| {
        let _ = conn.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let server = serve(listener, script, Arc::default(), done.clone(), 0);
    let ssc = context(1);
    let u = url.clone();
    ssc.define(move |s| {
        s.receiver_stream(json_lines(&u).bearer_token("wrong"))
            .print()
    })
    .unwrap();
    ssc.start().unwrap();
    let err = ssc
        .await_termination_or_timeout(Duration::from_secs(30))
        .expect_err("a 401 stops the context");
    done.store(true, Ordering::SeqCst);
    server.join().unwrap();
    let text = err.to_string();
    assert!(matches!(err, ember_core::Error::Source { .. }), "{text}");
    assert!(text.contains(&url) && text.contains("401"), "{text}");
}
