//! Spark's monitoring REST API for streaming, in Spark's shape: the paths
//! under `/api/v1/applications/{appId}/streaming/`, the field names and
//! types of Spark's `StreamingStatistics`, `ReceiverInfo`, `BatchInfo` and
//! `OutputOperationInfo`, `?status=` filters, and dates written as Spark
//! writes them (`2026-12-05T01:02:03.456GMT`). A client written against a
//! Spark driver's UI reads ember's unchanged.
//!
//! ember's own paths (`/api/v1/streaming/...`) keep their epoch
//! milliseconds and extra fields for the Streaming page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::snapshot::{active_status, json_response, mean, OutputCounts, Snapshot, Snapshots};
use crate::listener::{wall_ms, BatchInfo, OutputOperationInfo, ReceiverStatus};

/// The batch statuses Spark's `?status=` takes.
const STATUSES: [&str; 3] = ["QUEUED", "PROCESSING", "COMPLETED"];

/// An error answer in Spark's manner: a status and a line saying why.
pub(super) fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, what).into_response()
}

/// Epoch milliseconds as Spark's REST API writes dates
/// (`yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'`, always in GMT).
pub(super) fn spark_date(ms: u64) -> String {
    let (secs, milli) = (ms / 1000, ms % 1000);
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}GMT",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Year, month, day of the `days`th day after 1970-01-01 (proleptic
/// Gregorian calendar; eras of 400 years, years starting in March).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Which statuses `?status=A&status=B` asks for (case ignored, as Spark);
/// none means all. An unknown status is an error saying which exist.
pub(super) fn statuses(query: Option<&str>) -> Result<Vec<&'static str>, String> {
    let mut wanted = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "status" {
            continue;
        }
        match STATUSES.iter().find(|s| s.eq_ignore_ascii_case(value)) {
            Some(s) => wanted.push(*s),
            None => {
                return Err(format!(
                    "unknown batch status `{value}`: use status=QUEUED, PROCESSING or \
                     COMPLETED (repeat `status` for several)"
                ))
            }
        }
    }
    Ok(wanted)
}

/// Inserts `key: value` when there is a value (Spark leaves out what it
/// does not know rather than writing `null`).
fn put(m: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        m.insert(key.to_string(), v.into());
    }
}

impl Snapshots {
    /// `/api/v1/applications`: the one application this process runs.
    pub(super) fn applications(&self) -> Response {
        json_response(&[self.application()])
    }

    /// Spark's `ApplicationInfo` of this process.
    pub(super) fn application(&self) -> Value {
        let s = self.latest();
        let start = s.started.unwrap_or(self.created);
        let now = wall_ms();
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        json!({
            "id": self.app_id,
            "name": self.app_name,
            "attempts": [{
                "startTime": spark_date(start),
                // A running application's end, as Spark writes it.
                "endTime": "1969-12-31T23:59:59.999GMT",
                "lastUpdated": spark_date(now),
                "duration": now.saturating_sub(start),
                "sparkUser": user,
                "completed": s.stopped,
                "appSparkVersion": concat!("ember ", env!("CARGO_PKG_VERSION")),
                "startTimeEpoch": start,
                "endTimeEpoch": -1,
                "lastUpdatedEpoch": now,
            }],
        })
    }
}

impl Snapshot {
    /// Spark's `StreamingStatistics`.
    pub(super) fn spark_statistics(&self) -> Response {
        let avg = self.averages();
        let active = self.receivers.iter().filter(|r| r.info.active).count();
        let mut m = Map::new();
        put(&mut m, "startTime", self.started.map(spark_date));
        m.insert("batchDuration".into(), self.interval.into());
        m.insert("numReceivers".into(), self.receivers.len().into());
        m.insert("numActiveReceivers".into(), active.into());
        m.insert(
            "numInactiveReceivers".into(),
            (self.receivers.len() - active).into(),
        );
        m.insert(
            "numTotalCompletedBatches".into(),
            self.total_completed.into(),
        );
        m.insert(
            "numRetainedCompletedBatches".into(),
            self.completed.len().into(),
        );
        m.insert("numActiveBatches".into(), self.active.len().into());
        m.insert("numProcessedRecords".into(), self.processed_records.into());
        m.insert("numReceivedRecords".into(), self.received_records.into());
        put(&mut m, "avgInputRate", avg.input_rate);
        // Spark's averages of delays are whole milliseconds.
        put(
            &mut m,
            "avgSchedulingDelay",
            avg.scheduling_delay.map(|d| d as u64),
        );
        put(
            &mut m,
            "avgProcessingTime",
            avg.processing_time.map(|d| d as u64),
        );
        put(&mut m, "avgTotalDelay", avg.total_delay.map(|d| d as u64));
        json_response(&m)
    }

    /// Spark's `ReceiverInfo` list, or one receiver by its stream id.
    pub(super) fn spark_receivers(&self, id: Option<&str>) -> Response {
        match id {
            None => {
                let all: Vec<Value> = self.receivers.iter().map(spark_receiver).collect();
                json_response(&all)
            }
            Some(id) => match self
                .receivers
                .iter()
                .find(|r| id.parse() == Ok(r.stream_id))
            {
                Some(r) => json_response(&spark_receiver(r)),
                None => not_found(format!("unknown receiver: {id}")),
            },
        }
    }

    /// Spark's `BatchInfo` list (newest first), those of the asked statuses.
    pub(super) fn spark_batches(&self, query: Option<&str>) -> Response {
        let wanted = match statuses(query) {
            Ok(w) => w,
            Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
        };
        let list: Vec<Value> = self
            .all_batches()
            .filter(|(_, _, status)| wanted.is_empty() || wanted.contains(status))
            .map(|(b, ops, status)| spark_batch(self.interval, b, ops, status))
            .collect();
        json_response(&list)
    }

    /// One batch in Spark's shape; its id is its batch time in ms.
    pub(super) fn spark_batch(&self, id: &str) -> Response {
        match self.find_batch(id) {
            Some((b, ops, status)) => json_response(&spark_batch(self.interval, b, ops, status)),
            None => not_found(format!("unknown batch: {id}")),
        }
    }

    /// A batch's output operations, or one of them, in Spark's shape.
    pub(super) fn spark_operations(&self, batch: &str, op: Option<&str>) -> Response {
        let Some((_, ops, _)) = self.find_batch(batch) else {
            return not_found(format!("unknown batch: {batch}"));
        };
        match op {
            None => json_response(&ops.iter().map(spark_operation).collect::<Vec<_>>()),
            Some(op) => match ops.iter().find(|o| op.parse() == Ok(o.id)) {
                Some(o) => json_response(&spark_operation(o)),
                None => not_found(format!("unknown output operation: {op}")),
            },
        }
    }

    /// Every batch the snapshot knows, newest first, with its status.
    fn all_batches(
        &self,
    ) -> impl Iterator<Item = (&BatchInfo, &[OutputOperationInfo], &'static str)> {
        let active = self
            .active
            .iter()
            .rev()
            .map(|(b, ops)| (b, ops.as_slice(), active_status(b)));
        let done = self
            .completed
            .iter()
            .rev()
            .map(|c| (&c.info, c.ops.as_slice(), "COMPLETED"));
        active.chain(done)
    }

    fn find_batch(&self, id: &str) -> Option<(&BatchInfo, &[OutputOperationInfo], &'static str)> {
        self.find(id.parse().ok()?)
    }
}

fn spark_receiver(r: &ReceiverStatus) -> Value {
    let mut m = Map::new();
    m.insert("streamId".into(), r.stream_id.into());
    m.insert("streamName".into(), r.info.name.clone().into());
    m.insert("isActive".into(), r.info.active.into());
    m.insert("executorId".into(), r.info.worker.to_string().into());
    put(&mut m, "lastErrorTime", r.last_error_time.map(spark_date));
    put(&mut m, "lastErrorMessage", r.info.last_error.clone());
    put(&mut m, "lastError", r.info.last_error.clone());
    put(
        &mut m,
        "avgEventRate",
        mean(r.rates.iter().map(|(_, v)| *v)),
    );
    let pairs: Vec<Value> = r.rates.iter().map(|(t, v)| json!([t, v])).collect();
    m.insert("eventRates".into(), pairs.into());
    Value::Object(m)
}

fn spark_batch(interval: u64, b: &BatchInfo, ops: &[OutputOperationInfo], status: &str) -> Value {
    let time = b.batch_time.milliseconds();
    let counts = OutputCounts::of(ops);
    let mut m = Map::new();
    m.insert("batchId".into(), time.into());
    m.insert("batchTime".into(), spark_date(time).into());
    m.insert("status".into(), status.into());
    m.insert("batchDuration".into(), interval.into());
    m.insert("inputSize".into(), b.num_records().into());
    put(&mut m, "schedulingDelay", b.scheduling_delay());
    put(&mut m, "processingTime", b.processing_delay());
    put(&mut m, "totalDelay", b.total_delay());
    m.insert("numActiveOutputOps".into(), counts.active.into());
    m.insert("numCompletedOutputOps".into(), counts.succeeded.into());
    m.insert("numFailedOutputOps".into(), counts.failed.into());
    m.insert("numTotalOutputOps".into(), counts.total.into());
    put(&mut m, "firstFailureReason", counts.first_failure);
    Value::Object(m)
}

fn spark_operation(o: &OutputOperationInfo) -> Value {
    let mut m = Map::new();
    m.insert("outputOpId".into(), o.id.into());
    m.insert("name".into(), o.name.clone().into());
    m.insert("description".into(), o.name.clone().into());
    m.insert("startTime".into(), spark_date(o.start_time).into());
    put(&mut m, "endTime", o.end_time.map(spark_date));
    put(
        &mut m,
        "duration",
        o.end_time.map(|e| e.saturating_sub(o.start_time)),
    );
    put(&mut m, "failureReason", o.failure_reason.clone());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_as_spark_writes_them() {
        // Expected values from `date -u -d @SECONDS`.
        assert_eq!(spark_date(0), "1970-01-01T00:00:00.000GMT");
        // 2000-02-29 (a leap day of a century leap year), 23:59:59.999.
        assert_eq!(spark_date(951_868_799_999), "2000-02-29T23:59:59.999GMT");
        // 2100-03-01 (2100 is not a leap year).
        assert_eq!(spark_date(4_107_542_400_000), "2100-03-01T00:00:00.000GMT");
        assert_eq!(spark_date(1_764_896_523_456), "2025-12-05T01:02:03.456GMT");
    }

    #[test]
    fn status_filters() {
        assert_eq!(statuses(None).unwrap(), Vec::<&str>::new());
        assert_eq!(
            statuses(Some("status=completed&status=QUEUED")).unwrap(),
            vec!["COMPLETED", "QUEUED"]
        );
        assert_eq!(statuses(Some("other=1")).unwrap(), Vec::<&str>::new());
        let bad = statuses(Some("status=DONE")).unwrap_err();
        assert!(bad.contains("`DONE`") && bad.contains("COMPLETED"), "{bad}");
    }
}
