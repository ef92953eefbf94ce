//! Streaming events delivered to a Python listener.
//!
//! The engine's events go to a Python adapter as `(callback name, dict)`;
//! `ember.streaming.listener` turns the dict into PySpark's event objects.

use ember::{BatchInfo, OutputOperationInfo, ReceiverInfo, StreamingListener};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A Python adapter object with a `_dispatch(name, info)` method.
pub(crate) struct PyListener {
    adapter: Py<PyAny>,
}

impl PyListener {
    pub(crate) fn new(adapter: Py<PyAny>) -> Self {
        PyListener { adapter }
    }

    fn dispatch(&self, name: &str, fill: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>) {
        Python::attach(|py| {
            let info = PyDict::new(py);
            let sent = fill(&info).and_then(|()| {
                self.adapter
                    .bind(py)
                    .call_method1("_dispatch", (name, info))
                    .map(drop)
            });
            if let Err(e) = sent {
                // As Spark: a listener's exception is logged, never fatal.
                tracing::warn!("streaming listener {name} raised: {e}");
            }
        });
    }
}

fn batch(info: &Bound<'_, PyDict>, b: &BatchInfo) -> PyResult<()> {
    info.set_item("batch_time", b.batch_time.milliseconds())?;
    info.set_item("num_records", b.num_records())?;
    info.set_item("submission_time", b.submission_time)?;
    info.set_item("processing_start_time", b.processing_start_time)?;
    info.set_item("processing_end_time", b.processing_end_time)?;
    info.set_item("scheduling_delay", b.scheduling_delay())?;
    info.set_item("processing_delay", b.processing_delay())?;
    info.set_item("total_delay", b.total_delay())?;
    info.set_item("records_by_input", b.records_by_input.clone())
}

fn receiver(info: &Bound<'_, PyDict>, r: &ReceiverInfo) -> PyResult<()> {
    info.set_item("name", &r.name)?;
    info.set_item("active", r.active)?;
    info.set_item("worker", r.worker)?;
    info.set_item("last_error", r.last_error.as_deref())?;
    info.set_item("num_records", r.num_records)
}

fn output(info: &Bound<'_, PyDict>, o: &OutputOperationInfo) -> PyResult<()> {
    info.set_item("batch_time", o.batch_time.milliseconds())?;
    info.set_item("id", o.id)?;
    info.set_item("name", &o.name)?;
    info.set_item("start_time", o.start_time)?;
    info.set_item("end_time", o.end_time)?;
    info.set_item("failure_reason", o.failure_reason.as_deref())
}

impl StreamingListener for PyListener {
    fn on_streaming_started(&self, time: u64) {
        self.dispatch("onStreamingStarted", |i| i.set_item("time", time));
    }
    fn on_receiver_started(&self, r: &ReceiverInfo) {
        self.dispatch("onReceiverStarted", |i| receiver(i, r));
    }
    fn on_receiver_error(&self, r: &ReceiverInfo) {
        self.dispatch("onReceiverError", |i| receiver(i, r));
    }
    fn on_receiver_stopped(&self, r: &ReceiverInfo) {
        self.dispatch("onReceiverStopped", |i| receiver(i, r));
    }
    fn on_batch_submitted(&self, b: &BatchInfo) {
        self.dispatch("onBatchSubmitted", |i| batch(i, b));
    }
    fn on_batch_started(&self, b: &BatchInfo) {
        self.dispatch("onBatchStarted", |i| batch(i, b));
    }
    fn on_batch_completed(&self, b: &BatchInfo) {
        self.dispatch("onBatchCompleted", |i| batch(i, b));
    }
    fn on_output_operation_started(&self, o: &OutputOperationInfo) {
        self.dispatch("onOutputOperationStarted", |i| output(i, o));
    }
    fn on_output_operation_completed(&self, o: &OutputOperationInfo) {
        self.dispatch("onOutputOperationCompleted", |i| output(i, o));
    }
}
