//! HTTP streaming receivers: a long-lived HTTP response read as JSON lines
//! (one record per line) or as Server-Sent Events — the shape of Twitter's
//! old streaming API and of many vendors' event feeds. Spark's
//! `TwitterUtils` left Spark in 2.0; this is its general form.
//!
//! Both are [`Receiver`]s, so the engine's block handling, rate limits,
//! backpressure, write-ahead log and UI come with them:
//!
//! ```no_run
//! use ember_core::{seconds, StreamingConf, StreamingContext};
//! use ember_http::{json_lines, server_sent_events};
//!
//! let ssc = StreamingContext::new(StreamingConf::new("feeds", seconds(1)))?;
//! ssc.define(|s| {
//!     // Each non-blank line of the response is a record.
//!     s.receiver_stream(json_lines("https://stream.example.com/v1/tweets").bearer_token("…"))
//!         .count()
//!         .print();
//!     // Each event is a record (`SseEvent`: id, event type, data).
//!     s.receiver_stream(server_sent_events("https://feed.example.com/events"))
//!         .map(|e| (e.event, 1u64))
//!         .reduce_by_key(|a, b| a + b)
//!         .print();
//! })?;
//! # Ok::<(), ember_core::Error>(())
//! ```
//!
//! Connections: when the connection cannot be made, fails, stalls for
//! longer than the idle timeout (90 s) or the server ends the response, the
//! receiver connects again after a backoff (1 s doubling to 30 s, reset
//! once data flows; a `Retry-After` header or an SSE `retry:` field is
//! honoured), logging each attempt at WARN and showing it in the UI's
//! receiver table. Server-Sent Events resume with `Last-Event-ID`, as
//! browsers do. A line or event cut off by a lost connection is dropped,
//! never stored truncated. `401`, `403`, `404` and `410` stop the context
//! with [`Error::Source`] naming the URL and status: credentials or the
//! address are wrong, and retrying cannot help.
//!
//! Delivery: what was stored is kept across a crash with the write-ahead
//! log on ([`ReceiverOptions::write_ahead_log`](ember_core::ReceiverOptions));
//! what the server sent while the program was down is up to the server.
//! A Server-Sent Events receiver restarted with
//! [`get_or_create`](ember_core::StreamingContext::get_or_create) connects
//! with the id of the last event the log kept as `Last-Event-ID`, so from a
//! server that honours it every event is received once across a `kill -9`:
//! the logged ones are replayed from the log, the rest are sent again. A JSON
//! lines stream has no such position: lines the server sent while the
//! program was down, or that were not yet logged, are lost.

use std::time::{Duration, Instant};

use ember_core::{Error, LineSplitter, Received, Receiver, ReceiverContext, Show};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// How long a read waits before looking at the stop flag again.
const POLL: Duration = Duration::from_millis(100);

/// Settings shared by both kinds of HTTP stream.
#[derive(Clone, Debug)]
struct Endpoint {
    url: String,
    headers: Vec<(String, String)>,
    first_backoff: Duration,
    max_backoff: Duration,
    idle_timeout: Duration,
    connect_timeout: Duration,
    max_line_bytes: usize,
    /// Connection attempts since data last flowed.
    failures: u32,
    runtime: Option<std::sync::Arc<tokio::runtime::Runtime>>,
    client: Option<reqwest::Client>,
}

impl Endpoint {
    fn new(url: &str) -> Self {
        Endpoint {
            url: url.to_string(),
            headers: Vec::new(),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(10),
            max_line_bytes: 16 << 20,
            failures: 0,
            runtime: None,
            client: None,
        }
    }

    /// The wait before the next connection attempt.
    fn backoff(&mut self) -> Duration {
        let wait = self
            .first_backoff
            .saturating_mul(1 << self.failures.min(16))
            .min(self.max_backoff);
        self.failures += 1;
        wait
    }

    fn fail(&self, message: String) -> Received {
        Received::Failed(Error::Source {
            source_name: self.url.clone(),
            message,
            cause: None,
        })
    }

    /// Connects and feeds the response's bytes to `feed` until the
    /// context stops or the connection ends; returns how the run ended.
    fn run<T: ember_core::Data>(
        &mut self,
        ctx: &mut ReceiverContext<'_, T>,
        extra: &[(&str, String)],
        feed: &mut dyn FnMut(&[u8], &mut ReceiverContext<'_, T>) -> bool,
        retry_hint: &dyn Fn() -> Option<Duration>,
    ) -> Received {
        let runtime = match &self.runtime {
            Some(r) => r.clone(),
            None => match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => self.runtime.insert(std::sync::Arc::new(r)).clone(),
                Err(e) => return self.fail(format!("cannot start the HTTP client: {e}")),
            },
        };
        let client = match &self.client {
            Some(c) => c.clone(),
            None => match reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .build()
            {
                Ok(c) => self.client.insert(c).clone(),
                Err(e) => return self.fail(format!("cannot make the HTTP client: {e}")),
            },
        };
        let mut request = client.get(&self.url);
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        for (k, v) in extra {
            request = request.header(*k, v);
        }
        let answer = runtime.block_on(async {
            tokio::time::timeout(self.connect_timeout * 2, request.send()).await
        });
        let response = match answer {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let wait = self.backoff();
                return ctx.restart_after(
                    format!("cannot connect to {}: {}", self.url, describe(&e)),
                    wait,
                );
            }
            Err(_) => {
                let wait = self.backoff();
                return ctx.restart_after(
                    format!(
                        "{} did not answer within {:?}",
                        self.url,
                        self.connect_timeout * 2
                    ),
                    wait,
                );
            }
        };
        let status = response.status();
        if !status.is_success() {
            let code = status.as_u16();
            if matches!(code, 401 | 403 | 404 | 410) {
                return self.fail(format!(
                    "the server answered {status}: check the URL and the credentials in the \
                     headers (retrying cannot help)"
                ));
            }
            let after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let wait = self.backoff();
            return ctx.restart_after(
                format!("{} answered {status}", self.url),
                after.unwrap_or(wait).min(self.max_backoff.max(wait)),
            );
        }
        ctx.report_started();
        tracing::info!(url = %self.url, "connected to the HTTP stream");
        let mut body = response.bytes_stream();
        let mut last_data = Instant::now();
        loop {
            if ctx.is_stopped() {
                return Received::Stopped;
            }
            let next = runtime.block_on(async { tokio::time::timeout(POLL, body.next()).await });
            match next {
                Err(_) => {
                    if last_data.elapsed() > self.idle_timeout {
                        let wait = self.backoff();
                        return ctx.restart_after(
                            format!(
                                "{} sent nothing for {:?}; connecting again",
                                self.url, self.idle_timeout
                            ),
                            wait,
                        );
                    }
                    // Hand over what is stored while the stream is quiet.
                    if !ctx.flush() {
                        return Received::Stopped;
                    }
                }
                Ok(Some(Ok(bytes))) => {
                    last_data = Instant::now();
                    self.failures = 0;
                    if !feed(&bytes, ctx) {
                        return Received::Stopped;
                    }
                }
                Ok(Some(Err(e))) => {
                    let wait = self.backoff();
                    return ctx
                        .restart_after(format!("reading {}: {}", self.url, describe(&e)), wait);
                }
                Ok(None) => {
                    let wait = retry_hint().unwrap_or_else(|| self.backoff());
                    return ctx.restart_after(
                        format!("{} ended the response; connecting again", self.url),
                        wait,
                    );
                }
            }
        }
    }
}

fn describe(err: &dyn std::error::Error) -> String {
    ember_core::error_chain(err)
}

/// Splits `bytes` into lines with `lines`, giving each to `store` until it
/// refuses one (the context is stopping); false then. What follows the last
/// line ending waits for the next piece (and is dropped with the
/// connection by `reset`: never handed over cut short).
fn feed_lines(
    lines: &mut LineSplitter,
    bytes: &[u8],
    store: &mut dyn FnMut(String) -> bool,
) -> bool {
    let mut stopped = false;
    lines.feed(bytes, &mut |line| {
        if !stopped && !store(line) {
            stopped = true;
        }
    });
    !stopped
}

/// A receiver of a JSON-lines (NDJSON) HTTP stream: each non-blank line of
/// the response is a record (parse it with `serde_json` in a `map`). Blank
/// lines, which streaming APIs send to keep the connection open, are
/// skipped. Made by [`json_lines`].
#[derive(Debug)]
pub struct JsonLines {
    endpoint: Endpoint,
    lines: LineSplitter,
}

/// A [`JsonLines`] receiver of `url`.
pub fn json_lines(url: &str) -> JsonLines {
    let endpoint = Endpoint::new(url);
    let lines = LineSplitter::new(endpoint.max_line_bytes);
    JsonLines { endpoint, lines }
}

/// A receiver of a Server-Sent Events stream (`text/event-stream`): each
/// event is an [`SseEvent`]. Comments and events without data are skipped;
/// the last event id is sent back as `Last-Event-ID` when connecting again.
/// Made by [`server_sent_events`].
#[derive(Debug)]
pub struct ServerSentEvents {
    endpoint: Endpoint,
    lines: LineSplitter,
    parser: SseParser,
}

/// A [`ServerSentEvents`] receiver of `url`.
pub fn server_sent_events(url: &str) -> ServerSentEvents {
    let endpoint = Endpoint::new(url);
    let lines = LineSplitter::new(endpoint.max_line_bytes);
    ServerSentEvents {
        endpoint,
        lines,
        parser: SseParser::default(),
    }
}

macro_rules! settings {
    ($t:ty) => {
        impl $t {
            /// Adds a request header (e.g. an API key).
            pub fn header(mut self, name: &str, value: &str) -> Self {
                self.endpoint
                    .headers
                    .push((name.to_string(), value.to_string()));
                self
            }

            /// Adds `Authorization: Bearer <token>`.
            pub fn bearer_token(self, token: &str) -> Self {
                self.header("Authorization", &format!("Bearer {token}"))
            }

            /// The first wait before connecting again, doubled after each
            /// failed attempt up to `max` (1 s and 30 s).
            pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
                self.endpoint.first_backoff = first;
                self.endpoint.max_backoff = max.max(first);
                self
            }

            /// Connects again when nothing arrived for this long (90 s).
            pub fn idle_timeout(mut self, timeout: Duration) -> Self {
                self.endpoint.idle_timeout = timeout;
                self
            }

            /// The longest line kept, in bytes (16 MiB): a longer one is
            /// dropped, counted and logged.
            pub fn max_line_bytes(mut self, bytes: usize) -> Self {
                self.endpoint.max_line_bytes = bytes.max(1);
                self.lines = LineSplitter::new(bytes.max(1));
                self
            }

            fn warn_too_long(&mut self) {
                let dropped = self.lines.take_dropped();
                if dropped > 0 {
                    tracing::warn!(
                        url = %self.endpoint.url,
                        "{dropped} line(s) longer than {} bytes were dropped (raise \
                         max_line_bytes to keep them)",
                        self.endpoint.max_line_bytes
                    );
                }
            }
        }
    };
}

settings!(JsonLines);
settings!(ServerSentEvents);

impl Receiver for JsonLines {
    type Record = String;

    fn name(&self) -> String {
        format!("json_lines({})", self.endpoint.url)
    }

    fn receive(&mut self, ctx: &mut ReceiverContext<'_, String>) -> Received {
        self.lines.reset();
        let lines = &mut self.lines;
        let ended = self.endpoint.run(
            ctx,
            &[(
                "Accept",
                "application/x-ndjson, application/json".to_string(),
            )],
            &mut |bytes, ctx| {
                feed_lines(lines, bytes, &mut |line| {
                    line.trim().is_empty() || ctx.store(line)
                })
            },
            &|| None,
        );
        self.warn_too_long();
        ended
    }
}

impl Receiver for ServerSentEvents {
    type Record = SseEvent;

    fn name(&self) -> String {
        format!("server_sent_events({})", self.endpoint.url)
    }

    fn receive(&mut self, ctx: &mut ReceiverContext<'_, SseEvent>) -> Received {
        self.lines.reset();
        self.parser.reset();
        let mut extra = vec![("Accept", "text/event-stream".to_string())];
        if let Some(id) = self.parser.last_id.as_ref().filter(|id| !id.is_empty()) {
            extra.push(("Last-Event-ID", id.clone()));
        }
        let (lines, parser) = (&mut self.lines, &mut self.parser);
        let retry = std::cell::Cell::new(None);
        let ended = self.endpoint.run(
            ctx,
            &extra,
            &mut |bytes, ctx| {
                let ok = feed_lines(lines, bytes, &mut |line| match parser.line(&line) {
                    Some(event) => ctx.store(event),
                    None => true,
                });
                retry.set(parser.retry);
                ok
            },
            &|| retry.get(),
        );
        self.warn_too_long();
        ended
    }

    /// After a restart with the write-ahead log, the first connection
    /// sends the id of the last event the log kept as `Last-Event-ID`.
    fn resume_after(&mut self, last: &SseEvent) {
        if let Some(id) = last.id.as_ref().filter(|id| !id.is_empty()) {
            self.parser.last_id = Some(id.clone());
        }
    }
}

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseEvent {
    /// The last event id the stream set (`id:`), if any.
    pub id: Option<String>,
    /// The event type (`event:`), `message` when not given.
    pub event: String,
    /// The data (`data:` lines joined with `\n`).
    pub data: String,
}

impl Show for SseEvent {
    fn fmt_show(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "SseEvent(id = {}, event = {}, data = {})",
            self.id.as_deref().unwrap_or("null"),
            self.event,
            self.data
        );
    }
}

/// The event-stream format, line by line (the HTML standard's rules).
#[derive(Debug, Default)]
struct SseParser {
    data: String,
    event: String,
    last_id: Option<String>,
    /// The reconnection time the stream asked for.
    retry: Option<Duration>,
}

impl SseParser {
    /// A new connection: a half-received event is dropped.
    fn reset(&mut self) {
        self.data.clear();
        self.event.clear();
    }

    /// Takes one line; a blank line completes an event.
    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if self.data.is_empty() {
                return None;
            }
            let mut data = std::mem::take(&mut self.data);
            data.pop(); // the last line's "\n"
            return Some(SseEvent {
                id: self.last_id.clone(),
                event: if event.is_empty() {
                    "message".to_string()
                } else {
                    event
                },
                data,
            });
        }
        if line.starts_with(':') {
            return None; // a comment
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "event" => self.event = value.to_string(),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_stop_at_the_first_refusal_and_a_cut_line_is_dropped() {
        let mut lines = LineSplitter::new(100);
        let mut got = Vec::new();
        let fed = feed_lines(&mut lines, b"a\nb\nc\nd", &mut |l| {
            got.push(l);
            got.len() < 2
        });
        assert!(!fed);
        assert_eq!(got, ["a", "b"]);
        let mut rest = Vec::new();
        lines.feed(b"tail", &mut |l| rest.push(l));
        lines.reset();
        lines.feed(b"new\n", &mut |l| rest.push(l));
        assert_eq!(rest, ["new"]);
    }

    fn events(text: &str) -> (Vec<SseEvent>, SseParser) {
        let mut parser = SseParser::default();
        let mut lines = LineSplitter::new(1000);
        let mut got = Vec::new();
        lines.feed(text.as_bytes(), &mut |l| got.extend(parser.line(&l)));
        (got, parser)
    }

    fn ev(id: Option<&str>, event: &str, data: &str) -> SseEvent {
        SseEvent {
            id: id.map(str::to_string),
            event: event.to_string(),
            data: data.to_string(),
        }
    }

    #[test]
    fn server_sent_events_by_the_standard() {
        let (got, parser) = events(
            ": a comment\n\
             data: first\n\n\
             event: add\ndata:one\ndata:  two\nid: 7\n\n\
             data\n\n\
             id\n\n\
             retry: 2500\nevent: ignored without data\n\n\
             data: after\r\n\r\n\
             id: bad\0id\ndata: x\n\n\
             data: never dispatched",
        );
        assert_eq!(
            got,
            vec![
                ev(None, "message", "first"),
                ev(Some("7"), "add", "one\n two"),
                ev(Some("7"), "message", ""),
                ev(Some(""), "message", "after"),
                ev(Some(""), "message", "x"),
            ]
        );
        assert_eq!(parser.retry, Some(Duration::from_millis(2500)));
        assert_eq!(parser.last_id.as_deref(), Some(""));
    }

    #[test]
    fn backoff_doubles_to_its_limit_and_shows_the_record() {
        let mut e = Endpoint::new("http://x");
        e.first_backoff = Duration::from_millis(100);
        e.max_backoff = Duration::from_millis(500);
        let waits: Vec<u128> = (0..5).map(|_| e.backoff().as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(
            ev(Some("1"), "add", "x").show(),
            "SseEvent(id = 1, event = add, data = x)"
        );
    }
}
