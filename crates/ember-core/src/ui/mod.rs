//! The web UI: a Streaming page in the manner of Spark's Streaming tab, the
//! live result dashboards, a JSON API and a Prometheus endpoint, served by
//! the running program (axum and hyper on a small tokio runtime of its own).
//!
//! | path | what |
//! |---|---|
//! | `/streaming` | the Streaming page (`/` redirects here) |
//! | `/streaming/batch?id={batchTime}` | one batch: its delays, records per input, output operations |
//! | `/dashboard/{id}` | a `to_dashboard` stream's latest results |
//! | `/api/v1/streaming/statistics` | totals and averages |
//! | `/api/v1/streaming/batches` | active and retained batches, newest first |
//! | `/api/v1/streaming/batches/{batchId}` | a batch with its output operations |
//! | `/api/v1/streaming/batches/{batchId}/operations` | a batch's output operations |
//! | `/api/v1/streaming/receivers` | receivers, their state and rates |
//! | `/api/v1/dashboards`, `/api/v1/dashboards/{id}` | dashboard contents |
//! | `/api/v1/applications` | this application, as Spark lists applications |
//! | `/api/v1/applications/{appId}/streaming/...` | Spark's streaming REST API, in Spark's shape: `statistics`, `receivers`, `receivers/{streamId}`, `batches` (`?status=`), `batches/{batchId}`, `batches/{batchId}/operations`, `batches/{batchId}/operations/{outputOpId}` |
//! | `/api/v1/openapi.json` | an OpenAPI 3 description of the JSON API |
//! | `/metrics` | Prometheus text format: histograms of the batch delays, totals, `process_*` |
//! | `/static/*.css`, `/static/*.js` | the pages' style sheets and scripts |
//!
//! # Where it listens
//!
//! On `127.0.0.1:4040` unless told otherwise
//! ([`StreamingConf::ui`](crate::StreamingConf::ui), `--ui`, `--ui-port`,
//! `EMBER_UI`). When the port is taken it tries the next one, 16 more in
//! all, as Spark does (port 0 takes any free port). An address that was
//! asked for and cannot be used (every port taken, not an address of this
//! machine, no permission) makes `start()` fail with a configuration error;
//! when the default address cannot be used the program runs without the
//! UI and says so in a warning.
//!
//! # What it costs the job
//!
//! The UI must never slow the batches down, whatever its clients do:
//!
//! - It runs on one thread (a single-threaded runtime), at a lower CPU
//!   priority than the workers on Linux, so it can take at most one core
//!   and yields it to the workers when they need it.
//! - Answers are made from a snapshot of the statistics, copied under the
//!   tracker's lock only when something changed since the last copy (a
//!   batch closed or completed, an output operation ran, a receiver
//!   connected) and rendered outside it; a completed batch's JSON is
//!   rendered once. A flood of requests therefore costs the workers
//!   nothing more than one reader would.
//! - At most [`StreamingConf::ui_max_connections`](crate::StreamingConf::ui_max_connections)
//!   connections (256 by default) are served at once; one more is closed
//!   as soon as it is accepted, after a best-effort `503`, so that idle
//!   connections cannot take the file descriptors the sources need.
//! - A client has 10 s to send a request's headers (and, on a kept-alive
//!   connection, the next request's), a request must be answered within
//!   10 s, and a connection whose client reads nothing of an answer for
//!   10 s is closed. Request heads are limited to 64 KiB.
//! - Dashboards show at most 100 rows, and shorten keys over 1 KiB and
//!   records over 4 KiB (see `to_dashboard`).
//!
//! # Security
//!
//! The UI has no authentication and only reads: bind it to another
//! interface only on a network you trust. On a loopback address (the
//! default) it answers only requests whose `Host` is `localhost`, an IP
//! address, or the host name it was asked to listen on, and refuses others
//! with `421 Misdirected Request`: a web page elsewhere cannot reach it by
//! pointing a name of its own at 127.0.0.1 (DNS rebinding). On any other
//! address every `Host` is accepted, as the machine's names are not known.
//! Every answer carries `X-Content-Type-Options: nosniff`,
//! `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
//! `Cross-Origin-Resource-Policy: same-origin` and a `Content-Security-Policy`
//! that lets the pages load only their own scripts, styles and data.

mod metrics;
mod net;
mod snapshot;
mod spark;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::error::{Error, Result};
use crate::listener::Bus;

pub(crate) use net::Limits;
use snapshot::Snapshots;

const STREAMING_PAGE: &str = include_str!("streaming.html");
const DASHBOARD_PAGE: &str = include_str!("dashboard.html");
const BATCH_PAGE: &str = include_str!("batch.html");
const OPENAPI: &str = include_str!("openapi.json");

/// The static files: path, content type, content.
const STATIC: &[(&str, &str, &str)] = &[
    ("/static/ember.css", CSS, include_str!("ember.css")),
    ("/static/ember.js", JS, include_str!("ember.js")),
    ("/static/streaming.css", CSS, include_str!("streaming.css")),
    ("/static/streaming.js", JS, include_str!("streaming.js")),
    ("/static/dashboard.css", CSS, include_str!("dashboard.css")),
    ("/static/dashboard.js", JS, include_str!("dashboard.js")),
    ("/static/batch.js", JS, include_str!("batch.js")),
];
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Ports tried after the asked one when it is taken (Spark's
/// `spark.port.maxRetries`).
const PORT_RETRIES: u16 = 16;

/// A running UI server; dropping it shuts the server down.
pub(crate) struct UiServer {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl UiServer {
    /// The address it listens on.
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A socket the UI will serve, bound before the workers start so that an
/// address asked for and unusable fails `start()` before anything runs.
pub(crate) struct UiSocket {
    listener: TcpListener,
    /// The host part of the asked address, lowercase (`localhost`, a name,
    /// an IP address), accepted as a `Host`.
    host: String,
}

/// Binds the UI's socket for `address`: the asked port or, when it is
/// taken, one of the next [`PORT_RETRIES`]. `asked` says whether the
/// address was asked for (an error when unusable) or is the default (a
/// warning, and no UI).
pub(crate) fn bind(address: &str, asked: bool) -> Result<Option<UiSocket>> {
    match bind_any(address) {
        Ok(listener) => Ok(Some(UiSocket {
            listener,
            host: host_part(address),
        })),
        Err(e) if asked => Err(e),
        Err(e) => {
            tracing::warn!("no web UI: {e}");
            Ok(None)
        }
    }
}

/// Serves the UI on `socket` on its own thread.
pub(crate) fn serve(
    socket: UiSocket,
    bus: Arc<Bus>,
    app_name: String,
    backpressure: bool,
    limits: Limits,
) -> Result<UiServer> {
    let UiSocket { listener, host } = socket;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::config(format!("the web UI socket has no address: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::config(format!("cannot set up the web UI socket: {e}")))?;
    let app = router(Arc::new(Snapshots::new(bus, app_name, backpressure)));
    let hosts = net::HostCheck::new(bound.ip(), &host);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the web UI's runtime: {e}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ember-ui".into())
        .spawn(move || {
            net::lower_priority();
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("the web UI cannot listen: {e}");
                        return;
                    }
                };
                net::accept_loop(listener, app, hosts, limits, rx).await;
            });
        })
        .map_err(|e| Error::Internal(format!("cannot start the web UI thread: {e}")))?;
    tracing::info!("Streaming UI at http://{bound}/streaming");
    Ok(UiServer {
        address: bound,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

fn router(snapshots: Arc<Snapshots>) -> Router {
    let mut app = Router::new()
        .route("/", get(|| async { Redirect::to("/streaming") }))
        .route("/streaming", get(|| async { Html(STREAMING_PAGE) }))
        .route("/streaming/", get(|| async { Redirect::to("/streaming") }))
        .route("/streaming/batch", get(|| async { Html(BATCH_PAGE) }))
        .route("/streaming/batch/", get(|| async { Html(BATCH_PAGE) }))
        .route("/dashboard/{id}", get(dashboard_page))
        .route("/api/v1/streaming/statistics", get(statistics))
        .route("/api/v1/streaming/batches", get(batches))
        .route("/api/v1/streaming/batches/{id}", get(batch))
        .route("/api/v1/streaming/batches/{id}/operations", get(operations))
        .route("/api/v1/streaming/receivers", get(receivers))
        .route("/api/v1/dashboards", get(dashboards))
        .route("/api/v1/dashboards/{id}", get(dashboard))
        .route("/api/v1/applications", get(applications))
        .route("/api/v1/applications/{app}", get(application))
        .route(
            "/api/v1/applications/{app}/streaming/statistics",
            get(spark_statistics),
        )
        .route(
            "/api/v1/applications/{app}/streaming/receivers",
            get(spark_receivers),
        )
        .route(
            "/api/v1/applications/{app}/streaming/receivers/{id}",
            get(spark_receiver),
        )
        .route(
            "/api/v1/applications/{app}/streaming/batches",
            get(spark_batches),
        )
        .route(
            "/api/v1/applications/{app}/streaming/batches/{id}",
            get(spark_batch),
        )
        .route(
            "/api/v1/applications/{app}/streaming/batches/{id}/operations",
            get(spark_operations),
        )
        .route(
            "/api/v1/applications/{app}/streaming/batches/{id}/operations/{op}",
            get(spark_operation),
        )
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/metrics", get(metrics));
    for &(path, kind, content) in STATIC {
        app = app.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, kind)], content) }),
        );
    }
    app.with_state(snapshots)
}

/// The asked address, or the next port up when it is taken.
fn bind_any(address: &str) -> Result<TcpListener> {
    let addr: SocketAddr = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            Error::config(format!(
                "the web UI address `{address}` does not resolve; use host:port, e.g. \
                 127.0.0.1:4040, or turn the UI off with --no-ui"
            ))
        })?;
    let tries = if addr.port() == 0 {
        1
    } else {
        PORT_RETRIES + 1
    };
    let mut last = None;
    for i in 0..tries {
        let Some(port) = addr.port().checked_add(i) else {
            break;
        };
        let mut a = addr;
        a.set_port(port);
        match TcpListener::bind(a) {
            Ok(l) => {
                if i > 0 {
                    tracing::warn!("port {} is taken; the web UI uses {port}", addr.port());
                }
                return Ok(l);
            }
            // Only a taken port is worth trying the next one for.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => {
                return Err(Error::config(format!(
                    "the web UI cannot listen on {a} ({e}); pick another address with --ui \
                     HOST:PORT or turn the UI off with --no-ui"
                )))
            }
        }
    }
    Err(Error::config(format!(
        "the web UI cannot listen on {addr} or the {PORT_RETRIES} ports after it ({}); pick \
         another with --ui HOST:PORT (port 0 for any free one) or turn it off with --no-ui",
        last.map_or_else(|| "no port left".to_string(), |e| e.to_string())
    )))
}

/// `host` of `host:port` or `[v6]:port`, lowercase.
fn host_part(address: &str) -> String {
    let host = address
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.to_ascii_lowercase()
}

type Ui = State<Arc<Snapshots>>;

async fn dashboard_page(Path(id): Path<String>) -> Response {
    match id.parse::<usize>() {
        Ok(_) => Html(DASHBOARD_PAGE).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such dashboard").into_response(),
    }
}

async fn statistics(State(ui): Ui) -> Response {
    ui.latest().statistics(&ui)
}

async fn batches(State(ui): Ui) -> Response {
    ui.latest().batches(&ui)
}

async fn operations(State(ui): Ui, Path(id): Path<String>) -> Response {
    match id
        .parse::<u64>()
        .ok()
        .and_then(|b| ui.latest().operations(b))
    {
        Some(r) => r,
        None => (StatusCode::NOT_FOUND, "no such batch").into_response(),
    }
}

async fn batch(State(ui): Ui, Path(id): Path<String>) -> Response {
    match id.parse::<u64>().ok().and_then(|b| ui.latest().batch(b)) {
        Some(r) => r,
        None => (StatusCode::NOT_FOUND, "no such batch").into_response(),
    }
}

async fn receivers(State(ui): Ui) -> Response {
    ui.latest().receivers()
}

async fn dashboards(State(ui): Ui) -> Response {
    ui.latest().dashboards()
}

async fn dashboard(State(ui): Ui, Path(id): Path<String>) -> Response {
    match id
        .parse::<usize>()
        .ok()
        .and_then(|i| ui.latest().dashboard(i))
    {
        Some(r) => r,
        None => (StatusCode::NOT_FOUND, "no such dashboard").into_response(),
    }
}

async fn metrics(State(ui): Ui) -> Response {
    ui.latest().metrics(&ui)
}

async fn applications(State(ui): Ui) -> Response {
    ui.applications()
}

/// `answer` of the snapshot, when `app` is this application's id; a 404
/// otherwise.
fn with_app(
    ui: &Snapshots,
    app: &str,
    answer: impl FnOnce(&snapshot::Snapshot) -> Response,
) -> Response {
    if app == ui.app_id {
        answer(&ui.latest())
    } else {
        spark::not_found(format!("unknown app: {app} (this UI serves {})", ui.app_id))
    }
}

async fn application(State(ui): Ui, Path(id): Path<String>) -> Response {
    with_app(&ui, &id, |_| axum::Json(ui.application()).into_response())
}

async fn spark_statistics(State(ui): Ui, Path(id): Path<String>) -> Response {
    with_app(&ui, &id, |s| s.spark_statistics())
}

async fn spark_receivers(State(ui): Ui, Path(id): Path<String>) -> Response {
    with_app(&ui, &id, |s| s.spark_receivers(None))
}

async fn spark_receiver(State(ui): Ui, Path((id, stream)): Path<(String, String)>) -> Response {
    with_app(&ui, &id, |s| s.spark_receivers(Some(&stream)))
}

async fn spark_batches(
    State(ui): Ui,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    with_app(&ui, &id, |s| s.spark_batches(query.as_deref()))
}

async fn spark_batch(State(ui): Ui, Path((id, batch)): Path<(String, String)>) -> Response {
    with_app(&ui, &id, |s| s.spark_batch(&batch))
}

async fn spark_operations(State(ui): Ui, Path((id, batch)): Path<(String, String)>) -> Response {
    with_app(&ui, &id, |s| s.spark_operations(&batch, None))
}

async fn spark_operation(
    State(ui): Ui,
    Path((id, batch, op)): Path<(String, String, String)>,
) -> Response {
    with_app(&ui, &id, |s| s.spark_operations(&batch, Some(&op)))
}

#[cfg(test)]
mod tests;
