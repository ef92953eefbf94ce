//! What the UI's answers are made from: a copy of the statistics, taken
//! under the tracker's lock only when the tracker changed since the last
//! copy, and rendered after the lock is let go.
//!
//! The copy is cheap whatever the history: completed batches and dashboard
//! contents are shared by reference (`Arc`), and the rest is a handful of
//! active batches and receivers. Rendering happens on the UI's own thread;
//! what does not change is rendered once (a completed batch's JSON, a
//! dashboard's answer) and what changes without the tracker knowing (the
//! receivers' record counts and rate limits, the uptime) is read at each
//! request from atomics.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::metrics::{self, BatchHistograms};
use crate::listener::{
    wall_ms, BatchInfo, Bus, CheckpointStats, CheckpointTotals, CompletedBatch, Dashboard,
    DashboardContent, DelaysUs, OutputOperationInfo, ReceiverStatus,
};

/// The latest snapshot, and what outlives snapshots.
pub(super) struct Snapshots {
    bus: Arc<Bus>,
    pub(super) app_name: String,
    /// The application's id in Spark's REST API (`ember-<start ms>`).
    pub(super) app_id: String,
    /// Wall-clock ms when the UI was set up.
    pub(super) created: u64,
    backpressure: bool,
    /// Delays of every completed batch, for `/metrics`.
    histograms: BatchHistograms,
    latest: Mutex<Option<Arc<Snapshot>>>,
    /// Rendered completed batches, by batch time (they never change).
    completed_json: Mutex<BTreeMap<u64, Arc<str>>>,
}

impl Snapshots {
    pub(super) fn new(bus: Arc<Bus>, app_name: String, backpressure: bool) -> Snapshots {
        let histograms = BatchHistograms::new();
        bus.listen(Arc::new(histograms.clone()));
        let created = wall_ms();
        Snapshots {
            bus,
            app_name,
            app_id: format!("ember-{created}"),
            created,
            backpressure,
            histograms,
            latest: Mutex::new(None),
            completed_json: Mutex::new(BTreeMap::new()),
        }
    }

    /// The statistics as of now: the last snapshot if nothing changed since,
    /// else a new one.
    pub(super) fn latest(&self) -> Arc<Snapshot> {
        let generation = self.bus.generation();
        let mut latest = self.latest.lock().expect("snapshot lock");
        if let Some(s) = latest.as_ref().filter(|s| s.generation == generation) {
            return s.clone();
        }
        let s = Arc::new(Snapshot::take(&self.bus, latest.as_deref()));
        *latest = Some(s.clone());
        s
    }
}

/// The tracker at one generation.
pub(super) struct Snapshot {
    generation: u64,
    pub(super) interval: u64,
    pub(super) started: Option<u64>,
    pub(super) stopped: bool,
    pub(super) total_completed: u64,
    pub(super) failed_batches: u64,
    pub(super) processed_records: u64,
    pub(super) received_records: u64,
    /// Active batches by time, with their output operations so far.
    pub(super) active: Vec<(BatchInfo, Vec<OutputOperationInfo>)>,
    /// Oldest first.
    pub(super) completed: Vec<Arc<CompletedBatch>>,
    pub(super) receivers: Vec<ReceiverStatus>,
    /// Records each input put into batches since the start.
    pub(super) input_records: BTreeMap<String, u64>,
    pub(super) checkpoint: Option<CheckpointStats>,
    pub(super) checkpoints: CheckpointTotals,
    /// Keys in each stateful operator's state, all workers together.
    pub(super) state_keys: Vec<(String, u64)>,
    pub(super) dashboards: Vec<Dashboard>,
    batches_json: OnceLock<Bytes>,
    averages: OnceLock<Averages>,
    rates_json: OnceLock<Vec<Box<RawValue>>>,
    dashboards_json: OnceLock<Bytes>,
    dashboard_json: Vec<OnceLock<Bytes>>,
}

impl Snapshot {
    /// Copies the tracker; `previous` lends what did not change.
    fn take(bus: &Bus, previous: Option<&Snapshot>) -> Snapshot {
        let t = bus.tracker.lock().expect("tracker lock");
        let generation = bus.generation();
        let active = t
            .batches
            .values()
            .map(|b| {
                let ops = t.ops.get(&b.batch_time.milliseconds()).cloned();
                (b.clone(), ops.unwrap_or_default())
            })
            .collect();
        let snapshot = Snapshot {
            generation,
            interval: t.interval,
            started: t.started,
            stopped: t.stopped,
            total_completed: t.total_completed,
            failed_batches: t.failed_batches,
            processed_records: t.processed_records,
            received_records: t.received_records,
            active,
            completed: t.completed.iter().cloned().collect(),
            receivers: t.receivers.values().cloned().collect(),
            input_records: t.input_records.clone(),
            checkpoint: t.checkpoint,
            checkpoints: t.checkpoints,
            state_keys: t
                .state_keys
                .iter()
                .map(|(op, per_worker)| (op.clone(), per_worker.values().sum()))
                .collect(),
            dashboards: t.dashboards.clone(),
            batches_json: OnceLock::new(),
            averages: OnceLock::new(),
            rates_json: OnceLock::new(),
            dashboards_json: OnceLock::new(),
            dashboard_json: t.dashboards.iter().map(|_| OnceLock::new()).collect(),
        };
        drop(t);
        // A dashboard whose content is the same keeps its rendered answer.
        if let Some(p) = previous {
            for (i, d) in snapshot.dashboards.iter().enumerate() {
                let same = p.dashboards.get(i).is_some_and(|o| {
                    Arc::ptr_eq(&o.content, &d.content)
                        && o.total_truncated == d.total_truncated
                        && o.title == d.title
                });
                if let (true, Some(rendered)) = (same, p.dashboard_json[i].get()) {
                    let _ = snapshot.dashboard_json[i].set(rendered.clone());
                }
            }
        }
        snapshot
    }

    pub(super) fn averages(&self) -> &Averages {
        self.averages.get_or_init(|| {
            let interval = self.interval.max(1) as f64;
            let delays: Vec<DelaysUs> = self.completed.iter().map(|c| c.info.delays_us()).collect();
            let ms = |us: u64| us as f64 / 1000.0;
            Averages {
                input_rate: mean(
                    self.completed
                        .iter()
                        .map(|c| c.info.num_records() as f64 * 1000.0 / interval),
                ),
                submission_delay: mean(delays.iter().map(|d| ms(d.submission))),
                scheduling_delay: mean(delays.iter().filter_map(|d| d.scheduling.map(ms))),
                processing_time: mean(delays.iter().filter_map(|d| d.processing.map(ms))),
                total_delay: mean(delays.iter().filter_map(|d| d.total.map(ms))),
            }
        })
    }

    pub(super) fn statistics(&self, ui: &Snapshots) -> Response {
        let avg = self.averages();
        let active_receivers = self.receivers.iter().filter(|r| r.info.active).count();
        let rate = self
            .receivers
            .iter()
            .filter_map(|r| r.rate.as_ref().and_then(|c| c.rate()))
            .reduce(f64::min);
        let now = wall_ms();
        let state = if self.stopped {
            "STOPPED"
        } else if self.started.is_some() {
            "ACTIVE"
        } else {
            "INITIALIZED"
        };
        json_response(&json!({
            "appName": ui.app_name,
            "startTime": self.started,
            "batchDuration": self.interval,
            "uptime": self.started.map(|s| now.saturating_sub(s)),
            "numReceivers": self.receivers.len(),
            "numActiveReceivers": active_receivers,
            "numInactiveReceivers": self.receivers.len() - active_receivers,
            "numTotalCompletedBatches": self.total_completed,
            "numFailedBatches": self.failed_batches,
            "numRetainedCompletedBatches": self.completed.len(),
            "numActiveBatches": self.active.len(),
            "numProcessedRecords": self.processed_records,
            "numReceivedRecords": self.received_records,
            "avgInputRate": avg.input_rate,
            "avgSubmissionDelay": avg.submission_delay,
            "avgSchedulingDelay": avg.scheduling_delay,
            "avgProcessingTime": avg.processing_time,
            "avgTotalDelay": avg.total_delay,
            "backpressure": { "enabled": ui.backpressure, "rate": rate },
            "checkpoint": self.checkpoint.map(|c| json!({
                "batchTime": c.time,
                "committed": c.committed,
                "duration": c.duration_us as f64 / 1000.0,
                "bytes": c.bytes,
            })),
            "checkpoints": {
                "count": self.checkpoints.count,
                "bytes": self.checkpoints.bytes,
                "duration": self.checkpoints.duration_us as f64 / 1000.0,
            },
            "stateKeys": self.state_keys.iter()
                .map(|(op, keys)| json!({ "operator": op, "keys": keys }))
                .collect::<Vec<_>>(),
            "state": state,
        }))
    }

    /// Active batches then completed ones, newest first.
    pub(super) fn batches(&self, ui: &Snapshots) -> Response {
        let body = self.batches_json.get_or_init(|| {
            let mut rendered = ui.completed_json.lock().expect("rendered batches lock");
            let mut out = String::from("[");
            let mut first = true;
            let mut push = |s: &str| {
                if !std::mem::take(&mut first) {
                    out.push(',');
                }
                out.push_str(s);
            };
            for (b, ops) in self.active.iter().rev() {
                push(&batch_json(self.interval, b, ops, active_status(b)).to_string());
            }
            for c in self.completed.iter().rev() {
                let time = c.info.batch_time.milliseconds();
                let s = rendered.entry(time).or_insert_with(|| {
                    batch_json(self.interval, &c.info, &c.ops, "COMPLETED")
                        .to_string()
                        .into()
                });
                push(s);
            }
            out.push(']');
            // Forget the batches no longer retained.
            match self.completed.first() {
                Some(oldest) => {
                    let keep = rendered.split_off(&oldest.info.batch_time.milliseconds());
                    *rendered = keep;
                }
                None => rendered.clear(),
            }
            Bytes::from(out)
        });
        raw_json(body.clone())
    }

    /// A batch and its output operations, if it is active or retained.
    pub(super) fn find(
        &self,
        batch: u64,
    ) -> Option<(&BatchInfo, &[OutputOperationInfo], &'static str)> {
        match self
            .completed
            .binary_search_by_key(&batch, |c| c.info.batch_time.milliseconds())
        {
            Ok(i) => Some((&self.completed[i].info, &self.completed[i].ops, "COMPLETED")),
            Err(_) => self
                .active
                .iter()
                .find(|(b, _)| b.batch_time.milliseconds() == batch)
                .map(|(b, ops)| (b, ops.as_slice(), active_status(b))),
        }
    }

    /// A batch's output operations, if the batch is active or retained.
    pub(super) fn operations(&self, batch: u64) -> Option<Response> {
        let (_, ops, _) = self.find(batch)?;
        Some(json_response(&operations_json(ops)))
    }

    /// One batch with its output operations (the batch page's data).
    pub(super) fn batch(&self, batch: u64) -> Option<Response> {
        let (b, ops, status) = self.find(batch)?;
        let mut v = batch_json(self.interval, b, ops, status);
        v["outputOperations"] = Value::Array(operations_json(ops));
        Some(json_response(&v))
    }

    pub(super) fn receivers(&self) -> Response {
        // The event rates change only when a batch completes: rendered once.
        let rates = self.rates_json.get_or_init(|| {
            self.receivers
                .iter()
                .map(|r| {
                    let pairs: Vec<(u64, f64)> = r.rates.iter().copied().collect();
                    serde_json::value::to_raw_value(&pairs).expect("numbers serialise")
                })
                .collect()
        });
        let list: Vec<ReceiverJson<'_>> = self
            .receivers
            .iter()
            .zip(rates)
            .map(|(r, rates)| ReceiverJson {
                stream_id: r.stream_id,
                stream_name: &r.info.name,
                is_active: r.info.active,
                worker: r.info.worker,
                last_error: r.info.last_error.as_deref(),
                last_error_time: r.last_error_time,
                num_records: self.input_records.get(&r.info.name).copied().unwrap_or(0),
                num_records_read: r.read.load(Ordering::Relaxed),
                avg_event_rate: mean(r.rates.iter().map(|(_, v)| *v)),
                event_rates: rates,
                rate_limit: r.rate.as_ref().and_then(|c| c.rate()),
            })
            .collect();
        json_response(&list)
    }

    pub(super) fn dashboards(&self) -> Response {
        let body = self.dashboards_json.get_or_init(|| {
            let list: Vec<Value> = self
                .dashboards
                .iter()
                .map(|d| json!({ "id": d.id, "title": d.title }))
                .collect();
            Bytes::from(serde_json::to_vec(&list).expect("JSON values serialise"))
        });
        raw_json(body.clone())
    }

    pub(super) fn dashboard(&self, id: usize) -> Option<Response> {
        let d = self.dashboards.get(id)?;
        let body = self.dashboard_json[id].get_or_init(|| {
            let c: &DashboardContent = &d.content;
            let v = json!({
                "id": d.id,
                "title": d.title,
                "kind": if d.pairs { "pairs" } else { "records" },
                "batchTime": c.batch_time,
                "updated": c.updated,
                "numRows": c.num_rows,
                "rows": c.rows.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
                "records": c.records,
                "numTruncated": c.truncated,
                "totalTruncated": d.total_truncated,
            });
            Bytes::from(serde_json::to_vec(&v).expect("JSON values serialise"))
        });
        Some(raw_json(body.clone()))
    }

    pub(super) fn metrics(&self, ui: &Snapshots) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            metrics::render(
                &metrics::Figures {
                    interval_ms: self.interval,
                    total_completed: self.total_completed,
                    failed_batches: self.failed_batches,
                    received_records: self.received_records,
                    processed_records: self.processed_records,
                    active_batches: self.active.len(),
                    last_completed: self
                        .completed
                        .last()
                        .map(|c| c.info.batch_time.milliseconds()),
                    started: self.started,
                    checkpoint: self.checkpoint,
                    checkpoints: self.checkpoints,
                    state_keys: &self.state_keys,
                    receivers: &self.receivers,
                },
                &ui.histograms,
                &ui.app_name,
            ),
        )
            .into_response()
    }
}

pub(super) struct Averages {
    pub(super) input_rate: Option<f64>,
    pub(super) submission_delay: Option<f64>,
    pub(super) scheduling_delay: Option<f64>,
    pub(super) processing_time: Option<f64>,
    pub(super) total_delay: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReceiverJson<'a> {
    stream_id: usize,
    stream_name: &'a str,
    is_active: bool,
    worker: usize,
    last_error: Option<&'a str>,
    last_error_time: Option<u64>,
    /// Records it put into batches (what the statistics' total counts).
    num_records: u64,
    /// Records it has read, some perhaps not yet in a batch.
    num_records_read: u64,
    avg_event_rate: Option<f64>,
    event_rates: &'a RawValue,
    rate_limit: Option<f64>,
}

pub(super) fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// A batch's output operations as the APIs count them.
pub(super) struct OutputCounts {
    /// Not finished yet.
    pub(super) active: usize,
    /// Finished without an error.
    pub(super) succeeded: usize,
    pub(super) failed: usize,
    pub(super) total: usize,
    pub(super) first_failure: Option<String>,
}

impl OutputCounts {
    pub(super) fn of(ops: &[OutputOperationInfo]) -> OutputCounts {
        let failed = ops.iter().filter(|o| o.failure_reason.is_some()).count();
        let finished = ops.iter().filter(|o| o.end_time.is_some()).count();
        OutputCounts {
            active: ops.len() - finished,
            succeeded: finished - failed,
            failed,
            total: ops.len(),
            first_failure: ops.iter().find_map(|o| o.failure_reason.clone()),
        }
    }
}

/// The status of a batch not yet completed.
pub(super) fn active_status(b: &BatchInfo) -> &'static str {
    if b.processing_start_time.is_some() {
        "PROCESSING"
    } else {
        "QUEUED"
    }
}

fn operations_json(ops: &[OutputOperationInfo]) -> Vec<Value> {
    ops.iter()
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
        .collect()
}

/// ember's own record of a batch: Spark's names, epoch-ms times, delays
/// in ms with µs precision (`submissionDelay + schedulingDelay +
/// processingTime = totalDelay`).
fn batch_json(interval: u64, b: &BatchInfo, ops: &[OutputOperationInfo], status: &str) -> Value {
    let time = b.batch_time.milliseconds();
    let d = b.delays_us();
    let ms = |us: u64| us as f64 / 1000.0;
    let counts = OutputCounts::of(ops);
    json!({
        "batchId": time,
        "batchTime": time,
        "status": status,
        "batchDuration": interval,
        "inputSize": b.num_records(),
        "recordsByInput": b.records_by_input,
        "submissionTime": b.submission_time,
        "processingStartTime": b.processing_start_time,
        "processingEndTime": b.processing_end_time,
        "submissionDelay": ms(d.submission),
        "schedulingDelay": d.scheduling.map(ms),
        "processingTime": d.processing.map(ms),
        "totalDelay": d.total.map(ms),
        "numActiveOutputOps": counts.active,
        "numCompletedOutputOps": counts.succeeded,
        "numFailedOutputOps": counts.failed,
        "numTotalOutputOps": counts.total,
        "firstFailureReason": counts.first_failure,
    })
}

pub(super) fn json_response(v: &impl Serialize) -> Response {
    raw_json(Bytes::from(
        serde_json::to_vec(v).expect("UI answers serialise"),
    ))
}

fn raw_json(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
