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
//! The UI listens on `127.0.0.1:4040` unless told otherwise
//! ([`StreamingConf::ui`](crate::StreamingConf::ui), `--ui`, `EMBER_UI`),
//! and takes the next port when one is taken, trying 16 in all as Spark
//! does. It has no authentication: bind it to another interface only on a
//! network you trust.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::listener::{wall_ms, BatchInfo, Bus, Tracker};

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

/// What the handlers read.
struct Ui {
    bus: Arc<Bus>,
    app_name: String,
    backpressure: bool,
}

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
    let state = Arc::new(Ui {
        bus,
        app_name,
        backpressure,
    });
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

fn tracker(ui: &Ui) -> std::sync::MutexGuard<'_, Tracker> {
    ui.bus.tracker.lock().expect("tracker lock")
}

async fn dashboard_page(Path(id): Path<String>) -> Response {
    match id.parse::<usize>() {
        Ok(_) => Html(DASHBOARD_PAGE).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such dashboard").into_response(),
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

async fn statistics(State(ui): State<Arc<Ui>>) -> Json<Value> {
    let t = tracker(&ui);
    let interval = t.interval.max(1) as f64;
    let done = &t.completed;
    let active_receivers = t.receivers.values().filter(|r| r.info.active).count();
    let rate = t
        .receivers
        .values()
        .filter_map(|r| r.rate.as_ref().and_then(|c| c.rate()))
        .reduce(f64::min);
    let now = wall_ms();
    Json(json!({
        "appName": ui.app_name,
        "startTime": t.started,
        "batchDuration": t.interval,
        "uptime": t.started.map(|s| now.saturating_sub(s)),
        "numReceivers": t.receivers.len(),
        "numActiveReceivers": active_receivers,
        "numInactiveReceivers": t.receivers.len() - active_receivers,
        "numTotalCompletedBatches": t.total_completed,
        "numRetainedCompletedBatches": done.len(),
        "numActiveBatches": t.batches.len(),
        "numProcessedRecords": t.processed_records,
        "numReceivedRecords": t.received_records,
        "avgInputRate": mean(done.iter().map(|b| b.num_records() as f64 * 1000.0 / interval)),
        "avgSchedulingDelay": mean(done.iter().filter_map(|b| b.scheduling_delay().map(|d| d as f64))),
        "avgProcessingTime": mean(done.iter().filter_map(|b| b.processing_delay().map(|d| d as f64))),
        "avgTotalDelay": mean(done.iter().filter_map(|b| b.total_delay().map(|d| d as f64))),
        "backpressure": { "enabled": ui.backpressure, "rate": rate },
        "state": if t.stopped { "STOPPED" } else if t.started.is_some() { "ACTIVE" } else { "INITIALIZED" },
    }))
}

fn batch_json(t: &Tracker, b: &BatchInfo, status: &str) -> Value {
    let time = b.batch_time.milliseconds();
    let ops = t.ops.get(&time).map(Vec::as_slice).unwrap_or_default();
    let failed = ops.iter().filter(|o| o.failure_reason.is_some()).count();
    let finished = ops.iter().filter(|o| o.end_time.is_some()).count();
    json!({
        "batchId": time,
        "batchTime": time,
        "status": status,
        "batchDuration": t.interval,
        "inputSize": b.num_records(),
        "recordsByInput": b.records_by_input,
        "submissionTime": b.submission_time,
        "processingStartTime": b.processing_start_time,
        "processingEndTime": b.processing_end_time,
        "schedulingDelay": b.scheduling_delay(),
        "processingTime": b.processing_delay(),
        "totalDelay": b.total_delay(),
        "numActiveOutputOps": ops.len() - finished,
        "numCompletedOutputOps": finished - failed,
        "numFailedOutputOps": failed,
        "numTotalOutputOps": ops.len(),
        "firstFailureReason": ops.iter().find_map(|o| o.failure_reason.clone()),
    })
}

async fn batches(State(ui): State<Arc<Ui>>) -> Json<Value> {
    let t = tracker(&ui);
    let mut out: Vec<Value> = t
        .batches
        .values()
        .rev()
        .map(|b| {
            let status = if b.processing_start_time.is_some() {
                "PROCESSING"
            } else {
                "QUEUED"
            };
            batch_json(&t, b, status)
        })
        .collect();
    out.extend(
        t.completed
            .iter()
            .rev()
            .map(|b| batch_json(&t, b, "COMPLETED")),
    );
    Json(Value::Array(out))
}

async fn operations(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let t = tracker(&ui);
    let Some(ops) = id.parse::<u64>().ok().and_then(|b| t.ops.get(&b)) else {
        return (StatusCode::NOT_FOUND, "no such batch").into_response();
    };
    let list: Vec<Value> = ops
        .iter()
        .map(|o| {
            json!({
                "outputOpId": o.id,
                "name": o.name,
                "startTime": o.start_time,
                "endTime": o.end_time,
                "duration": o.end_time.map(|e| e.saturating_sub(o.start_time)),
                "failureReason": o.failure_reason,
            })
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

async fn receivers(State(ui): State<Arc<Ui>>) -> Json<Value> {
    let t = tracker(&ui);
    let list: Vec<Value> = t
        .receivers
        .values()
        .map(|r| {
            json!({
                "streamId": r.stream_id,
                "streamName": r.info.name,
                "isActive": r.info.active,
                "worker": r.info.worker,
                "lastError": r.info.last_error,
                "lastErrorTime": r.last_error_time,
                "numRecords": r.read.load(std::sync::atomic::Ordering::Relaxed),
                "avgEventRate": mean(r.rates.iter().map(|(_, v)| *v)),
                "eventRates": r.rates.iter().map(|(b, v)| json!([b, v])).collect::<Vec<_>>(),
                "rateLimit": r.rate.as_ref().and_then(|c| c.rate()),
            })
        })
        .collect();
    Json(Value::Array(list))
}

async fn dashboards(State(ui): State<Arc<Ui>>) -> Json<Value> {
    let t = tracker(&ui);
    Json(Value::Array(
        t.dashboards
            .iter()
            .map(|d| json!({ "id": d.id, "title": d.title }))
            .collect(),
    ))
}

async fn dashboard(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    let t = tracker(&ui);
    let Some(d) = id.parse::<usize>().ok().and_then(|i| t.dashboards.get(i)) else {
        return (StatusCode::NOT_FOUND, "no such dashboard").into_response();
    };
    Json(json!({
        "id": d.id,
        "title": d.title,
        "kind": if d.pairs { "pairs" } else { "records" },
        "batchTime": d.batch_time,
        "updated": d.updated,
        "numRows": d.num_rows,
        "rows": d.rows.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
        "records": d.records,
    }))
    .into_response()
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(ui): State<Arc<Ui>>) -> Response {
    let t = tracker(&ui);
    let mut m = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(m, "# HELP {name} {help}");
        let _ = writeln!(m, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(m, "{name}{labels} {v}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    metric(
        "ember_batch_interval_seconds",
        "gauge",
        "The batch interval.",
        &one(t.interval as f64 / 1000.0),
    );
    metric(
        "ember_batches_completed_total",
        "counter",
        "Batches every output operation has finished.",
        &one(t.total_completed as f64),
    );
    metric(
        "ember_batches_active",
        "gauge",
        "Batches closed by their sources and not yet completed.",
        &one(t.batches.len() as f64),
    );
    metric(
        "ember_records_received_total",
        "counter",
        "Records the sources put into batches.",
        &one(t.received_records as f64),
    );
    metric(
        "ember_records_processed_total",
        "counter",
        "Records in completed batches.",
        &one(t.processed_records as f64),
    );
    if let Some(last) = t.completed.last() {
        let delays = [
            ("scheduling", last.scheduling_delay()),
            ("processing", last.processing_delay()),
            ("total", last.total_delay()),
        ];
        let samples: Vec<(String, f64)> = delays
            .iter()
            .filter_map(|(k, v)| v.map(|v| (format!("{{kind=\"{k}\"}}"), v as f64 / 1000.0)))
            .collect();
        metric(
            "ember_last_batch_delay_seconds",
            "gauge",
            "Delays of the last completed batch (Spark's definitions).",
            &samples,
        );
        metric(
            "ember_last_batch_records",
            "gauge",
            "Records in the last completed batch.",
            &one(last.num_records() as f64),
        );
        metric(
            "ember_last_completed_batch_time_seconds",
            "gauge",
            "The batch time of the last completed batch.",
            &one(last.batch_time.milliseconds() as f64 / 1000.0),
        );
    }
    let per = |f: &dyn Fn(&crate::listener::ReceiverStatus) -> Option<f64>| -> Vec<(String, f64)> {
        t.receivers
            .values()
            .filter_map(|r| f(r).map(|v| (format!("{{receiver=\"{}\"}}", label(&r.info.name)), v)))
            .collect()
    };
    metric(
        "ember_receiver_records_total",
        "counter",
        "Records a receiver has read.",
        &per(&|r| Some(r.read.load(std::sync::atomic::Ordering::Relaxed) as f64)),
    );
    metric(
        "ember_receiver_active",
        "gauge",
        "Whether a receiver is connected (1) or not (0).",
        &per(&|r| Some(if r.info.active { 1.0 } else { 0.0 })),
    );
    metric(
        "ember_receiver_rate_limit",
        "gauge",
        "A receiver's current rate limit in records/s, when it has one.",
        &per(&|r| r.rate.as_ref().and_then(|c| c.rate())),
    );
    if let Some(s) = t.started {
        metric(
            "ember_uptime_seconds",
            "gauge",
            "Time since the context started.",
            &one(wall_ms().saturating_sub(s) as f64 / 1000.0),
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m,
    )
        .into_response()
}
