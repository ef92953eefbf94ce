//! The web UI: a Streaming page in the manner of Spark's Streaming tab, the
//! live result dashboards, a JSON API and a Prometheus endpoint, served by
//! the running program (axum on a small tokio runtime of its own).
//!
//! | path | what |
//! |---|---|
//! | `/streaming` | the Streaming page (`/` redirects here) |
//! | `/dashboard/{id}` | a `to_dashboard` stream's latest results |
//! | `/api/v1/streaming/statistics` | totals and averages |
//! | `/api/v1/streaming/batches` | active and retained batches, newest first |
//! | `/api/v1/streaming/batches/{batchId}/operations` | a batch's output operations |
//! | `/api/v1/streaming/receivers` | receivers, their state and rates |
//! | `/api/v1/dashboards`, `/api/v1/dashboards/{id}` | dashboard contents |
//! | `/metrics` | Prometheus text format |
//! | `/static/ember.css` | the style sheet both pages share |
//! | `/static/ember.js` | the script helpers both pages share |
//! | `/static/{streaming,dashboard}.{css,js}` | each page's own styles and script |
//!
//! The pages hold no inline script or style: everything they run comes
//! from `/static/`, so that a Content-Security-Policy can forbid the rest.
//!
//! Answers are made from a snapshot of the statistics (see `snapshot`),
//! copied under the tracker's lock only when something changed since the
//! last copy and rendered outside it, so that a flood of requests costs the
//! workers, who take that lock as batches close and complete, no more than
//! one reader would. Dashboards show at most 100 rows and shorten keys over
//! 1 KiB and records over 4 KiB (see `to_dashboard`).
//!
//! The UI listens on `127.0.0.1:4040` unless told otherwise
//! ([`StreamingConf::ui`](crate::StreamingConf::ui), `--ui`, `EMBER_UI`),
//! and takes the next port when one is taken, trying 16 in all as Spark
//! does. It has no authentication: bind it to another interface only on a
//! network you trust.

mod snapshot;

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::error::{Error, Result};
use crate::listener::Bus;

use snapshot::Snapshots;

const STREAMING_PAGE: &str = include_str!("streaming.html");
const DASHBOARD_PAGE: &str = include_str!("dashboard.html");
const EMBER_CSS: &str = include_str!("ember.css");
const EMBER_JS: &str = include_str!("ember.js");

/// Each page's own styles and script: path, content type, content.
const PAGE_FILES: &[(&str, &str, &str)] = &[
    ("/static/streaming.css", CSS, include_str!("streaming.css")),
    ("/static/streaming.js", JS, include_str!("streaming.js")),
    ("/static/dashboard.css", CSS, include_str!("dashboard.css")),
    ("/static/dashboard.js", JS, include_str!("dashboard.js")),
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

/// Binds `address` (or the next free port) and serves the UI on its own thread.
pub(crate) fn serve(
    address: &str,
    bus: Arc<Bus>,
    app_name: String,
    backpressure: bool,
) -> Result<UiServer> {
    let listener = bind(address)?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::config(format!("the web UI socket has no address: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::config(format!("cannot set up the web UI socket: {e}")))?;
    let state = Arc::new(Snapshots::new(bus, app_name, backpressure));
    let mut app = Router::new()
        .route("/", get(|| async { Redirect::to("/streaming") }))
        .route("/streaming", get(|| async { Html(STREAMING_PAGE) }))
        .route("/streaming/", get(|| async { Redirect::to("/streaming") }))
        .route("/dashboard/{id}", get(dashboard_page))
        .route("/api/v1/streaming/statistics", get(statistics))
        .route("/api/v1/streaming/batches", get(batches))
        .route("/api/v1/streaming/batches/{id}/operations", get(operations))
        .route("/api/v1/streaming/receivers", get(receivers))
        .route("/api/v1/dashboards", get(dashboards))
        .route("/api/v1/dashboards/{id}", get(dashboard))
        .route("/metrics", get(metrics))
        .route(
            "/static/ember.css",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
                    EMBER_CSS,
                )
            }),
        )
        .route(
            "/static/ember.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    EMBER_JS,
                )
            }),
        );
    for &(path, kind, content) in PAGE_FILES {
        app = app.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, kind)], content) }),
        );
    }
    let app = app.with_state(state);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the web UI's runtime: {e}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ember-ui".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("the web UI cannot listen: {e}");
                        return;
                    }
                };
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!("the web UI stopped: {e}");
                }
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

/// The asked address, or the next port up when it is taken.
fn bind(address: &str) -> Result<TcpListener> {
    let addr: SocketAddr = address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            Error::config(format!(
                "the web UI address `{address}` does not resolve; use host:port, e.g. 127.0.0.1:4040"
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
            Err(e) => last = Some(e),
        }
    }
    Err(Error::config(format!(
        "the web UI cannot listen on {addr} or the {PORT_RETRIES} ports after it ({}); pick \
         another with --ui HOST:PORT or turn it off with --no-ui",
        last.map_or_else(|| "no port left".to_string(), |e| e.to_string())
    )))
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
    ui.latest().metrics()
}
