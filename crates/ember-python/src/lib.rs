//! ember's Python API: the native half of the `ember` Python package.
//!
//! The Python package (`python/ember`) mirrors `pyspark.streaming`: it builds
//! the DStream graph lazily and hands it to `NativeContext` at `start()`,
//! which builds it on every worker of an ember
//! [`ember::StreamingContext`]. Records are native
//! [`Value`](value::Value)s; Python runs only for the program's functions.
//! The GIL is released while the engine starts, runs, waits and stops.

mod connectors;
mod graph;
mod lift;
mod listener;
pub mod value;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ember::{ManualClock, StreamingConf, StreamingContext, Time};
use pyo3::create_exception;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyList;

// The engine's records are many small allocations (a string per word, a
// tuple per pair); glibc's malloc made them a quarter of the CPU time.
// Python's own objects keep Python's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    _native,
    StreamingError,
    PyRuntimeError,
    "An error of the streaming engine (a source, a checkpoint, a stop that timed out…)."
);

/// Turns an engine error into the Python exception to raise: the user's own
/// exception when a Python function failed, else a `StreamingError`.
fn to_pyerr(error: ember::Error) -> PyErr {
    if let Some(raised) = error.downcast_ref::<PyErr>() {
        return Python::attach(|py| raised.clone_ref(py));
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    StreamingError::new_err(text)
}

/// An ember streaming context driven from Python.
#[pyclass(module = "ember._native", frozen)]
struct NativeContext {
    ssc: StreamingContext,
    clock: Option<ManualClock>,
}

#[pymethods]
impl NativeContext {
    /// A context named `app_name` on `master` with batches every `batch_ms`.
    /// `manual_clock` makes batches follow `advance`;
    /// `ui` is an address, `"off"`, or `None` for the default;
    /// `checkpoint_ms` sets how often state is checkpointed.
    #[new]
    #[pyo3(signature = (app_name, master, batch_ms, manual_clock=false, ui=None, max_rate=None, backpressure=None, checkpoint_ms=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        app_name: String,
        master: String,
        batch_ms: u64,
        manual_clock: bool,
        ui: Option<String>,
        max_rate: Option<f64>,
        backpressure: Option<bool>,
        checkpoint_ms: Option<u64>,
    ) -> PyResult<Self> {
        let mut conf = StreamingConf::new(app_name, Duration::from_millis(batch_ms))
            .with_env()
            .map_err(to_pyerr)?
            .master(&master)
            .map_err(to_pyerr)?;
        match ui.as_deref() {
            Some("off") => conf = conf.ui(None),
            Some(address) => conf = conf.ui(Some(address)),
            None => {}
        }
        if let Some(rate) = max_rate {
            conf = conf.max_rate(rate);
        }
        if let Some(on) = backpressure {
            conf = conf.backpressure(on);
        }
        if let Some(ms) = checkpoint_ms {
            conf = conf.checkpoint_interval(Duration::from_millis(ms));
        }
        let (ssc, clock) = if manual_clock {
            let clock = ManualClock::new();
            (
                StreamingContext::with_clock(conf, clock.clone()).map_err(to_pyerr)?,
                Some(clock),
            )
        } else {
            (StreamingContext::new(conf).map_err(to_pyerr)?, None)
        };
        Ok(NativeContext { ssc, clock })
    }

    /// The number of workers (partitions of every batch).
    fn workers(&self) -> usize {
        self.ssc.conf().workers()
    }

    /// Checkpoints stateful operations into `directory`.
    fn checkpoint(&self, directory: &str) {
        self.ssc.checkpoint(directory);
    }

    /// Resumes from the checkpoint in `directory` at start, when there is one.
    fn recover(&self, directory: &str) -> PyResult<()> {
        let ssc = self.ssc.clone();
        StreamingContext::get_or_create(directory, move || Ok(ssc)).map_err(to_pyerr)?;
        Ok(())
    }

    /// The batch time the context resumed from, in ms, if it did.
    fn resumed_from(&self) -> Option<u64> {
        self.ssc.resumed_from().map(|t| t.milliseconds())
    }

    /// Adds the graph described by `nodes` (see `graph.rs`).
    fn define(&self, nodes: &Bound<'_, PyList>) -> PyResult<()> {
        let plan = Arc::new(graph::Plan::from_py(nodes)?);
        self.ssc.define(move |s| plan.build(s)).map_err(to_pyerr)
    }

    /// Registers a listener adapter (see `ember.streaming.listener`).
    fn add_listener(&self, adapter: Py<PyAny>) {
        self.ssc
            .add_streaming_listener(Arc::new(listener::PyListener::new(adapter)));
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.ssc.start()).map_err(to_pyerr)
    }

    /// Waits until the context stops (`True`) or `timeout` seconds pass
    /// (`False`), answering Python's signals in between.
    #[pyo3(signature = (timeout=None))]
    fn await_termination(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        loop {
            let mut slice = Duration::from_millis(100);
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                slice = slice.min(left);
            }
            let done = py
                .detach(|| self.ssc.await_termination_or_timeout(slice))
                .map_err(to_pyerr)?;
            // Ctrl-C: ember's own signal handler stops the context
            // gracefully (a second Ctrl-C exits at once), so Python's
            // KeyboardInterrupt is taken here and the wait goes on.
            if let Err(e) = py.check_signals() {
                if !e.is_instance_of::<PyKeyboardInterrupt>(py) {
                    return Err(e);
                }
            }
            if done {
                return Ok(true);
            }
        }
    }

    /// Stops the context, gracefully (every received record processed) or not.
    fn stop(&self, py: Python<'_>, graceful: bool) -> PyResult<()> {
        py.detach(|| self.ssc.stop(graceful)).map_err(to_pyerr)
    }

    /// Moves a manual clock forward by `ms`.
    fn advance(&self, ms: u64) -> PyResult<()> {
        let clock = self.clock.as_ref().ok_or_else(|| {
            StreamingError::new_err("this context does not run on a manual clock")
        })?;
        clock.advance(Duration::from_millis(ms));
        Ok(())
    }

    /// Waits until every output has finished the batch at `ms`.
    fn await_batch(&self, py: Python<'_>, ms: u64) -> PyResult<()> {
        py.detach(|| self.ssc.await_batch(Time::from_millis(ms)))
            .map_err(to_pyerr)
    }

    /// The time of the first batch in ms, once started: windows emit every
    /// slide from one interval before it.
    fn first_batch_ms(&self) -> Option<u64> {
        self.ssc.first_batch_time().map(|t| t.milliseconds())
    }

    /// The web UI's address while it runs.
    fn ui_url(&self) -> Option<String> {
        self.ssc.ui_url()
    }
}

/// The native module, `ember._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // textFileStream("s3://bucket/dir/") and the other object store URLs,
    // configured from the environment (AWS_ENDPOINT, AWS_REGION, ...).
    #[cfg(feature = "object-store")]
    ember::object_store::install();
    m.add_class::<NativeContext>()?;
    m.add("StreamingError", m.py().get_type::<StreamingError>())?;
    m.add_function(wrap_pyfunction!(init_logging, m)?)?;
    m.add_function(wrap_pyfunction!(log_info, m)?)?;
    Ok(())
}

/// Installs ember's stderr log subscriber (warnings, errors and the
/// context's lifecycle; `RUST_LOG` overrides the level), once per process.
#[pyfunction]
fn init_logging() {
    ember::logging::init_with(&format!(
        "{},ember_python=info",
        ember::logging::DEFAULT_FILTER
    ));
}

/// Logs `message` at INFO through ember's log (stderr, beside the engine's
/// own lines).
#[pyfunction]
fn log_info(message: &str) {
    tracing::info!("{message}");
}
