//! The UI's connections: accepted under a cap, served by hyper with
//! timeouts, each request checked for its `Host` and each answer given the
//! security headers.
//!
//! axum's own `serve` has no connection limit and no timeouts, so the UI
//! drives hyper's HTTP/1 connections itself (as `axum::serve` does inside).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::time::Sleep;
use tower::ServiceExt as _;

/// How the UI bounds its connections and requests.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Connections served at once; more are closed as they come.
    pub(crate) max_connections: usize,
    /// Time to receive a request's headers, the first or the next one.
    pub(crate) header_timeout: Duration,
    /// Time to answer a request, and the longest a client may leave an
    /// answer unread.
    pub(crate) request_timeout: Duration,
}

impl Limits {
    /// 10 s for headers and answers, and `max_connections`.
    pub(crate) fn new(max_connections: usize) -> Limits {
        Limits {
            max_connections: max_connections.max(1),
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The largest request head (line and headers) read, in bytes (hyper's
/// read buffer; its least is 8 KiB).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long connections may take to finish when the UI stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How long to wait before accepting again after `accept` failed (out of
/// file descriptors, most likely): the pending connections wait in the
/// kernel's queue meanwhile.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The least time between two warnings of the same trouble.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A warning given at most once per [`WARN_EVERY`], counting what happened
/// in between: a flood must not flood the log too.
#[derive(Default)]
pub(crate) struct Throttled {
    last: Option<Instant>,
    since: u64,
}

impl Throttled {
    /// Counts one more; returns the count to report when a warning is due.
    pub(crate) fn hit(&mut self, now: Instant) -> Option<u64> {
        self.since += 1;
        if self
            .last
            .is_some_and(|t| now.saturating_duration_since(t) < WARN_EVERY)
        {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

/// The security headers of every answer. The pages load their scripts and
/// styles from `/static/` and their data with `fetch` from the same origin;
/// nothing inline, nothing from elsewhere, and no one may frame them.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// The whole answer to a connection over the cap, written if the socket
/// takes it at once.
fn busy_answer() -> Vec<u8> {
    let body = "the web UI is serving as many connections as it may; try again\n";
    let mut a = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\nretry-after: 1\r\n",
        body.len()
    );
    for (k, v) in SECURITY_HEADERS {
        a.push_str(&format!("{k}: {v}\r\n"));
    }
    a.push_str("\r\n");
    a.push_str(body);
    a.into_bytes()
}

/// Which `Host`s the UI answers.
#[derive(Clone, Debug)]
pub(crate) struct HostCheck {
    /// Only when listening on loopback: elsewhere every name is accepted.
    loopback_only: bool,
    /// The host name the UI was asked to listen on, lowercase.
    name: String,
}

impl HostCheck {
    pub(crate) fn new(bound: IpAddr, asked_host: &str) -> HostCheck {
        HostCheck {
            loopback_only: bound.is_loopback(),
            name: asked_host.to_ascii_lowercase(),
        }
    }

    /// Whether a request for `host` (a `Host` header or a URI authority,
    /// with or without a port) is answered.
    pub(crate) fn allows(&self, host: &str) -> bool {
        if !self.loopback_only {
            return true;
        }
        let name = if let Some(rest) = host.strip_prefix('[') {
            // [v6] or [v6]:port
            match rest.split_once(']') {
                Some((v6, port)) if port.is_empty() || port.starts_with(':') => v6,
                _ => return false,
            }
        } else {
            match host.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
                Some(_) => return false,
                None => host,
            }
        };
        name.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || (!self.name.is_empty() && name.eq_ignore_ascii_case(&self.name))
    }

    /// Whether `req` may be answered: its `Host` and, when the request line
    /// names one, its authority.
    fn admits<B>(&self, req: &Request<B>) -> bool {
        let mut hosts = req.headers().get_all(header::HOST).iter();
        let header_ok = match (hosts.next(), hosts.next()) {
            // HTTP/1.0 clients may send none; browsers always do.
            (None, _) => true,
            (Some(h), None) => h.to_str().is_ok_and(|h| self.allows(h)),
            (Some(_), Some(_)) => false,
        };
        header_ok
            && req
                .uri()
                .authority()
                .is_none_or(|a| self.allows(a.as_str()))
    }
}

/// Lowers the calling thread's CPU priority (Linux, where the nice value
/// belongs to a thread): the UI yields to the workers when both want a
/// core.
pub(crate) fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: nice(2) only changes the calling thread's priority; an
        // error (e.g. already at the lowest) leaves it as it was.
        unsafe {
            libc::nice(10);
        }
    }
}

/// Accepts connections until `shutdown`, serving each with `app` under
/// `limits`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    app: Router,
    hosts: HostCheck,
    limits: Limits,
    mut shutdown: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing) = watch::channel(());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let busy = busy_answer();
    let hosts = Arc::new(hosts);
    let (mut refused, mut failed) = (Throttled::default(), Throttled::default());
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                if let Some(n) = failed.hit(Instant::now()) {
                    tracing::warn!(
                        "the web UI cannot accept connections: {e} ({n} time(s) since the last \
                         warning)"
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(n) = refused.hit(Instant::now()) {
                tracing::warn!(
                    "the web UI is serving {} connections, its limit, and closed {n} more since \
                     the last warning (StreamingConf::ui_max_connections, --ui-max-connections)",
                    limits.max_connections
                );
            }
            // Best effort: a client that already sent its request may see
            // a reset instead. Dropping the stream closes it.
            let _ = stream.try_write(&busy);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Unstalled::new(stream, limits.request_timeout));
        let service = {
            let (app, hosts) = (app.clone(), hosts.clone());
            hyper::service::service_fn(move |req: Request<Incoming>| {
                let (app, hosts) = (app.clone(), hosts.clone());
                async move { Ok::<_, Infallible>(answer(app, &hosts, limits, req).await) }
            })
        };
        let conn = http.serve_connection(io, service);
        let mut closing = closing.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closing.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
        });
    }
    drop(listener);
    // Ask the connections to finish, and give them a moment.
    let _ = closing_tx.send(());
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
}

/// One request's answer: refused for a foreign `Host`, else the router's
/// within the request timeout; with the security headers either way.
async fn answer(
    app: Router,
    hosts: &HostCheck,
    limits: Limits,
    req: Request<Incoming>,
) -> Response {
    let mut response = if !hosts.admits(&req) {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "this web UI answers only requests for localhost, an IP address or the name it \
             listens on\n",
        )
            .into_response()
    } else {
        let req = req.map(Body::new);
        match tokio::time::timeout(limits.request_timeout, app.oneshot(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(never)) => match never {},
            Err(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the web UI took too long to answer\n",
            )
                .into_response(),
        }
    };
    let headers = response.headers_mut();
    for (k, v) in SECURITY_HEADERS {
        headers.insert(*k, HeaderValue::from_static(v));
    }
    response
}

/// A connection whose writes fail once they have made no progress for a
/// while: a client that stops reading an answer gives its slot back.
pub(crate) struct Unstalled<T> {
    io: T,
    limit: Duration,
    /// Running while a write waits for the client.
    stall: Option<Pin<Box<Sleep>>>,
}

impl<T> Unstalled<T> {
    pub(crate) fn new(io: T, limit: Duration) -> Unstalled<T> {
        Unstalled {
            io,
            limit,
            stall: None,
        }
    }

    /// Passes `r` on, failing a write that has waited for `limit`.
    fn watch<R>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let limit = self.limit;
        let stall = self
            .stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Unstalled<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Unstalled<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
