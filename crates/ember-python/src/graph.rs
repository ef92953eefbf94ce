//! The DStream graph a Python program describes, and how each worker builds
//! it from ember's operators.
//!
//! Python builds the graph lazily, as PySpark does, and hands it over at
//! `start()` as a list of nodes in creation order (parents first). Each node
//! names an operation; Python functions are called once per batch and
//! partition for the per-record stages (Python fuses consecutive ones into
//! one function), and once per key for the functions that combine values of
//! one key (reductions, state updates), with the GIL taken only for the call.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ember::{DStream, Error, FailureHandle, StateSpec, StreamingScope, Time};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::lift::{self, Defer, Expr};
use crate::value::{from_py, iter_from_py, list_to_py, to_py, Value};

/// A Python callable, shared by every worker.
pub(crate) type Func = Arc<Py<PyAny>>;

/// A Python function of values, and its native form when `ember._lift`
/// recognised it.
#[derive(Clone)]
pub(crate) struct Lifted {
    func: Func,
    native: Option<Arc<Expr>>,
    /// Also call the Python function and fail on any difference.
    check: bool,
}

impl Lifted {
    /// A function that always runs in Python.
    fn python(func: &Func) -> Lifted {
        Lifted {
            func: func.clone(),
            native: None,
            check: false,
        }
    }
}

/// What a native stage of a pipeline does with its expression.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StepKind {
    Map,
    FlatMap,
    Filter,
    MapValues,
    FlatMapValues,
}

/// A piece of a pipeline of per-record stages.
pub(crate) enum Segment {
    /// `func(partition_index, records) -> iterable`: consecutive Python
    /// stages, fused into one call per batch and partition.
    Python(Func),
    /// One stage run natively; `fallback` is the stage as Python runs it
    /// (over a partition), called for the records the native evaluation
    /// defers and, in the differential mode, for every partition.
    Native {
        kind: StepKind,
        expr: Arc<Expr>,
        fallback: Func,
        check: bool,
        name: String,
    },
}

/// A window's length and slide in milliseconds (no slide: the batch's).
#[derive(Clone, Copy)]
pub(crate) struct Window {
    length: u64,
    slide: Option<u64>,
}

impl Window {
    fn length(&self) -> Duration {
        Duration::from_millis(self.length)
    }
    fn slide(&self) -> Option<Duration> {
        self.slide.map(Duration::from_millis)
    }
}

/// How the sides of a join are kept.
#[derive(Clone, Copy)]
pub(crate) enum JoinKind {
    Inner,
    LeftOuter,
    RightOuter,
    FullOuter,
    Cogroup,
}

/// One operation of the graph.
pub(crate) enum Op {
    Queue {
        batches: Vec<Vec<Value>>,
        one_at_a_time: bool,
        default: Option<Vec<Value>>,
    },
    Socket {
        host: String,
        port: u16,
        write_ahead_log: bool,
    },
    TextFile {
        dir: String,
    },
    BinaryRecords {
        dir: String,
        record_length: usize,
    },
    /// Per-record stages, some native, the rest fused Python calls.
    Pipeline {
        segments: Vec<Segment>,
    },
    /// Folds the values of each key of each batch with `func`.
    ReduceByKey {
        func: Lifted,
    },
    Union,
    Repartition {
        partitions: usize,
    },
    Count,
    CountByValue,
    Glom,
    /// Folds the batch's partial results (one per partition) with `func`.
    Reduce {
        func: Lifted,
    },
    GroupByKey,
    Window(Window),
    CountByWindow(Window),
    CountByValueAndWindow(Window),
    GroupByKeyAndWindow(Window),
    ReduceByWindow {
        func: Lifted,
        inv: Option<Lifted>,
        window: Window,
    },
    ReduceByKeyAndWindow {
        func: Lifted,
        inv: Option<Lifted>,
        filter: Option<Lifted>,
        window: Window,
    },
    UpdateStateByKey {
        func: Lifted,
        initial: Vec<(Value, Value)>,
    },
    /// `call(key, value, has_value, exists, state, timing_out)` →
    /// `(emit, mapped, action, state)`, action 0 keep, 1 update, 2 remove.
    MapWithState {
        call: Func,
        timeout: Option<u64>,
        initial: Vec<(Value, Value)>,
    },
    /// The state snapshots of the `MapWithState` node that is the parent.
    StateSnapshots,
    Join(JoinKind),
    /// `func(time_ms, [records of each parent]) -> iterable`, on one worker.
    Transform {
        func: Func,
    },
    /// `func(time_ms, records)`, on one worker.
    Foreach {
        func: Func,
    },
    /// A live page of the web UI: pairs by value, or the records.
    Dashboard {
        title: String,
        pairs: bool,
    },
    /// Kafka's direct stream (see `connectors::kafka`).
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    Kafka {
        topics: Vec<String>,
        params: BTreeMap<String, String>,
    },
    /// An HTTP stream: JSON lines or Server-Sent Events (`connectors::http_stream`).
    #[cfg_attr(not(feature = "http-stream"), allow(dead_code))]
    Http {
        url: String,
        events: bool,
        headers: BTreeMap<String, String>,
        write_ahead_log: bool,
    },
    /// A Kinesis stream (see `connectors::kinesis`).
    #[cfg_attr(not(feature = "kinesis"), allow(dead_code))]
    Kinesis {
        params: BTreeMap<String, String>,
    },
    /// Writes to a Kafka topic.
    #[cfg_attr(not(feature = "kafka"), allow(dead_code))]
    KafkaSink {
        brokers: String,
        topic: String,
        config: BTreeMap<String, String>,
    },
    /// Writes to a PostgreSQL table, exactly once.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres {
        url: String,
        table: String,
        columns: Vec<String>,
        keys: Option<Vec<String>>,
        create_sql: Option<String>,
    },
}

/// A node: its operation and the nodes it reads.
pub(crate) struct Node {
    id: usize,
    op: Op,
    parents: Vec<usize>,
}

/// The whole graph, shared by the workers.
pub(crate) struct Plan {
    nodes: Vec<Node>,
}

fn arg<'py, T: FromPyObjectOwned<'py>>(args: &Bound<'py, PyDict>, name: &str) -> PyResult<T> {
    match args.get_item(name)? {
        Some(v) => v
            .extract::<T>()
            .map_err(Into::into)
            .map_err(|e: PyErr| PyTypeError::new_err(format!("argument {name}: {e}"))),
        None => Err(PyValueError::new_err(format!("missing argument {name}"))),
    }
}

fn opt_func(args: &Bound<'_, PyDict>, name: &str) -> PyResult<Option<Func>> {
    Ok(match args.get_item(name)? {
        Some(v) if !v.is_none() => Some(Arc::new(v.unbind())),
        _ => None,
    })
}

fn func(args: &Bound<'_, PyDict>, name: &str) -> PyResult<Func> {
    opt_func(args, name)?.ok_or_else(|| PyValueError::new_err(format!("missing function {name}")))
}

/// A function of values with its native form, if Python passed one as
/// `<name>_native`; `check` (the node's) turns on the differential mode.
fn opt_lifted(args: &Bound<'_, PyDict>, name: &str) -> PyResult<Option<Lifted>> {
    let Some(func) = opt_func(args, name)? else {
        return Ok(None);
    };
    let native = match args.get_item(format!("{name}_native"))? {
        Some(e) if !e.is_none() => Some(Arc::new(Expr::from_py(&e)?)),
        _ => None,
    };
    let check = match args.get_item("check")? {
        Some(c) => c.is_truthy()?,
        None => false,
    };
    Ok(Some(Lifted {
        func,
        native,
        check,
    }))
}

fn lifted(args: &Bound<'_, PyDict>, name: &str) -> PyResult<Lifted> {
    opt_lifted(args, name)?.ok_or_else(|| PyValueError::new_err(format!("missing function {name}")))
}

/// The segments of a pipeline: `("python", func)` or
/// `("native", kind, expr, fallback, check, name)`.
fn segments(args: &Bound<'_, PyDict>) -> PyResult<Vec<Segment>> {
    let list = args
        .get_item("segments")?
        .ok_or_else(|| PyValueError::new_err("pipeline without segments"))?;
    let mut out = Vec::new();
    for seg in list.try_iter()? {
        let seg = seg?;
        let seg = seg
            .cast::<PyTuple>()
            .map_err(|e| PyTypeError::new_err(e.to_string()))?;
        let tag: String = seg.get_item(0)?.extract()?;
        out.push(match tag.as_str() {
            "python" => Segment::Python(Arc::new(seg.get_item(1)?.unbind())),
            "native" => {
                let kind = match seg.get_item(1)?.extract::<String>()?.as_str() {
                    "map" => StepKind::Map,
                    "flatMap" => StepKind::FlatMap,
                    "filter" => StepKind::Filter,
                    "mapValues" => StepKind::MapValues,
                    "flatMapValues" => StepKind::FlatMapValues,
                    other => return Err(PyValueError::new_err(format!("unknown stage {other}"))),
                };
                Segment::Native {
                    kind,
                    expr: Arc::new(Expr::from_py(&seg.get_item(2)?)?),
                    fallback: Arc::new(seg.get_item(3)?.unbind()),
                    check: seg.get_item(4)?.is_truthy()?,
                    name: seg.get_item(5)?.extract()?,
                }
            }
            other => return Err(PyValueError::new_err(format!("unknown segment {other}"))),
        });
    }
    Ok(out)
}

fn window(args: &Bound<'_, PyDict>) -> PyResult<Window> {
    Ok(Window {
        length: arg(args, "length_ms")?,
        slide: arg(args, "slide_ms")?,
    })
}

/// An initial state: `(key, state)` pairs; anything else is a `TypeError`.
fn initial_pairs(args: &Bound<'_, PyDict>, operation: &str) -> PyResult<Vec<(Value, Value)>> {
    let items = match args.get_item("initial")? {
        Some(v) if !v.is_none() => iter_from_py(&v)?,
        _ => return Ok(Vec::new()),
    };
    items
        .into_iter()
        .map(|v| {
            v.into_pair().map_err(|bad| {
                PyTypeError::new_err(format!(
                    "{operation}: the initial state needs (key, state) pairs, got {}",
                    bad.describe()
                ))
            })
        })
        .collect()
}

impl Plan {
    /// Reads the nodes Python describes as `(id, kind, parents, args)`.
    pub(crate) fn from_py(nodes: &Bound<'_, PyList>) -> PyResult<Plan> {
        let mut out = Vec::with_capacity(nodes.len());
        for node in nodes.iter() {
            let (id, kind, parents, args): (usize, String, Vec<usize>, Bound<'_, PyDict>) =
                node.extract()?;
            let args = &args;
            let op = match kind.as_str() {
                "queue" => {
                    let batches = args
                        .get_item("batches")?
                        .ok_or_else(|| PyValueError::new_err("queue without batches"))?;
                    let batches = batches
                        .try_iter()?
                        .map(|b| iter_from_py(&b?))
                        .collect::<PyResult<Vec<_>>>()?;
                    let default = match args.get_item("default")? {
                        Some(d) if !d.is_none() => Some(iter_from_py(&d)?),
                        _ => None,
                    };
                    Op::Queue {
                        batches,
                        one_at_a_time: arg(args, "one_at_a_time")?,
                        default,
                    }
                }
                "socket" => Op::Socket {
                    host: arg(args, "host")?,
                    port: arg(args, "port")?,
                    write_ahead_log: arg(args, "write_ahead_log")?,
                },
                "text_file" => Op::TextFile {
                    dir: arg(args, "dir")?,
                },
                "binary_records" => Op::BinaryRecords {
                    dir: arg(args, "dir")?,
                    record_length: arg(args, "record_length")?,
                },
                "pipeline" => Op::Pipeline {
                    segments: segments(args)?,
                },
                "reduce_by_key" => Op::ReduceByKey {
                    func: lifted(args, "func")?,
                },
                "union" => Op::Union,
                "repartition" => Op::Repartition {
                    partitions: arg(args, "partitions")?,
                },
                "count" => Op::Count,
                "count_by_value" => Op::CountByValue,
                "glom" => Op::Glom,
                "reduce" => Op::Reduce {
                    func: lifted(args, "func")?,
                },
                "group_by_key" => Op::GroupByKey,
                "window" => Op::Window(window(args)?),
                "count_by_window" => Op::CountByWindow(window(args)?),
                "count_by_value_and_window" => Op::CountByValueAndWindow(window(args)?),
                "group_by_key_and_window" => Op::GroupByKeyAndWindow(window(args)?),
                "reduce_by_window" => Op::ReduceByWindow {
                    func: lifted(args, "func")?,
                    inv: opt_lifted(args, "inv")?,
                    window: window(args)?,
                },
                "reduce_by_key_and_window" => Op::ReduceByKeyAndWindow {
                    func: lifted(args, "func")?,
                    inv: opt_lifted(args, "inv")?,
                    filter: opt_lifted(args, "filter")?,
                    window: window(args)?,
                },
                "update_state_by_key" => Op::UpdateStateByKey {
                    func: lifted(args, "func")?,
                    initial: initial_pairs(args, "updateStateByKey")?,
                },
                "map_with_state" => Op::MapWithState {
                    call: func(args, "call")?,
                    timeout: arg(args, "timeout_ms")?,
                    initial: initial_pairs(args, "mapWithState")?,
                },
                "state_snapshots" => Op::StateSnapshots,
                "join" => Op::Join(JoinKind::Inner),
                "left_outer_join" => Op::Join(JoinKind::LeftOuter),
                "right_outer_join" => Op::Join(JoinKind::RightOuter),
                "full_outer_join" => Op::Join(JoinKind::FullOuter),
                "cogroup" => Op::Join(JoinKind::Cogroup),
                "transform" => Op::Transform {
                    func: func(args, "func")?,
                },
                "foreach" => Op::Foreach {
                    func: func(args, "func")?,
                },
                "dashboard" => Op::Dashboard {
                    title: arg(args, "title")?,
                    pairs: arg(args, "pairs")?,
                },
                "kafka" => Op::Kafka {
                    topics: arg(args, "topics")?,
                    params: crate::connectors::settings(args, "params")?,
                },
                "http" => Op::Http {
                    url: arg(args, "url")?,
                    events: arg(args, "events")?,
                    headers: crate::connectors::settings(args, "headers")?,
                    write_ahead_log: arg(args, "write_ahead_log")?,
                },
                "kinesis" => Op::Kinesis {
                    params: crate::connectors::settings(args, "params")?,
                },
                "kafka_sink" => Op::KafkaSink {
                    brokers: arg(args, "brokers")?,
                    topic: arg(args, "topic")?,
                    config: crate::connectors::settings(args, "config")?,
                },
                "postgres" => Op::Postgres {
                    url: arg(args, "url")?,
                    table: arg(args, "table")?,
                    columns: arg(args, "columns")?,
                    keys: arg(args, "keys")?,
                    create_sql: arg(args, "create_sql")?,
                },
                other => return Err(PyValueError::new_err(format!("unknown operation {other}"))),
            };
            out.push(Node { id, op, parents });
        }
        Ok(Plan { nodes: out })
    }

    /// Builds the graph on one worker.
    pub(crate) fn build(&self, s: &StreamingScope<'_>) {
        let mut built: HashMap<usize, DStream<'_, Value>> = HashMap::new();
        let mut snapshots: HashMap<usize, DStream<'_, Value>> = HashMap::new();
        let fail = s.failure_handle();
        for node in &self.nodes {
            let parents: Vec<DStream<'_, Value>> = node
                .parents
                .iter()
                .map(|p| built.get(p).cloned())
                .collect::<Option<_>>()
                .unwrap_or_default();
            if parents.len() != node.parents.len() {
                s.fail_definition(Error::InvalidGraph(format!(
                    "node {} reads a node defined after it",
                    node.id
                )));
                return;
            }
            let stream = match build_node(s, node, &parents, &fail, &mut snapshots) {
                Some(stream) => stream,
                None => continue,
            };
            built.insert(node.id, stream);
        }
    }
}

/// A Python exception raised by a function called once per key, where the
/// engine has no batch at hand; the context stops with it.
#[derive(Debug)]
pub(crate) struct PythonFailure {
    operation: &'static str,
    error: PyErr,
}

impl fmt::Display for PythonFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the function of {} raised {}",
            self.operation, self.error
        )
    }
}

impl std::error::Error for PythonFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Calls a Python function of values (a reduction, a state update, a
/// filter), natively when it was lifted; an exception stops the context and
/// the call gives `None`.
#[derive(Clone)]
struct Combine {
    func: Func,
    native: Option<Arc<Expr>>,
    check: bool,
    fail: FailureHandle,
    operation: &'static str,
}

impl Combine {
    fn new(func: &Lifted, fail: &FailureHandle, operation: &'static str) -> Self {
        Combine {
            func: func.func.clone(),
            native: func.native.clone(),
            check: func.check,
            fail: fail.clone(),
            operation,
        }
    }

    fn call(&self, a: Value, b: Value) -> Value {
        self.apply(&[a, b]).unwrap_or(Value::None)
    }

    /// `func(*args)`: natively when it can be, else in Python; `None` when
    /// it raised (the context is stopping).
    fn apply(&self, args: &[Value]) -> Option<Value> {
        let native = match &self.native {
            Some(expr) => expr.eval(args),
            None => Err(Defer),
        };
        if let (Ok(v), false) = (&native, self.check) {
            return Some(v.clone());
        }
        let result = Python::attach(|py| {
            let args = args
                .iter()
                .map(|a| to_py(py, a))
                .collect::<PyResult<Vec<_>>>()?;
            let out = self.func.bind(py).call1(PyTuple::new(py, args)?)?;
            from_py(&out)
        });
        let python = self.settle(result)?;
        if let Ok(v) = native {
            if !lift::same(&v, &python) {
                self.settle::<()>(Err(differs(self.operation, args, &v, &python)));
                return None;
            }
        }
        Some(python)
    }

    /// The truth of `func(*args)`, for filters.
    fn test(&self, args: &[Value]) -> bool {
        if let (Some(expr), false) = (&self.native, self.check) {
            if let Ok(v) = expr.eval(args).and_then(|v| lift::truthy(&v)) {
                return v;
            }
        }
        let Some(out) = self.apply(args) else {
            return false;
        };
        match lift::truthy(&out) {
            Ok(t) => t,
            Err(Defer) => {
                let t = Python::attach(|py| to_py(py, &out)?.is_truthy());
                self.settle(t).unwrap_or(false)
            }
        }
    }

    fn settle<T>(&self, result: PyResult<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(error) => {
                self.fail.fail(Error::connector(PythonFailure {
                    operation: self.operation,
                    error,
                }));
                None
            }
        }
    }
}

/// The records as `(key, value)` pairs; anything else stops the context with
/// a `TypeError` naming the operation and the record.
/// Record by record, so that a batch is never gathered for it.
fn pairs_of<'s>(
    stream: &DStream<'s, Value>,
    operation: &'static str,
    fail: &FailureHandle,
) -> DStream<'s, (Value, Value)> {
    let fail = fail.clone();
    stream.flat_map(move |v| match v.into_pair() {
        Ok(pair) => Some(pair),
        Err(bad) => {
            let error = PyTypeError::new_err(format!(
                "{operation} needs (key, value) pairs, got {}",
                bad.describe()
            ));
            fail.fail(Error::connector(PythonFailure { operation, error }));
            None
        }
    })
}

fn unpair<'s>(stream: &DStream<'s, (Value, Value)>) -> DStream<'s, Value> {
    stream.map(|(k, v)| Value::pair(k, v))
}

/// The error of the differential mode: the native result is not Python's.
fn differs(operation: &str, args: &[Value], native: &Value, python: &Value) -> PyErr {
    let shown: Vec<String> = args.iter().map(Value::describe).collect();
    pyo3::exceptions::PyAssertionError::new_err(format!(
        "EMBER_LIFT_CHECK: the native {operation} differs from Python's for ({}): native {}, Python {} \
         (run with EMBER_LIFT=0 to run it in Python, and please report this)",
        shown.join(", "),
        native.describe(),
        python.describe()
    ))
}

fn call_partition(func: &Func, index: usize, part: Vec<Value>) -> PyResult<Vec<Value>> {
    Python::attach(|py| {
        let list = list_to_py(py, &part)?;
        drop(part);
        let out = func.bind(py).call1((index, list))?;
        iter_from_py(&out)
    })
}

/// A pipeline's stages in order: a native one record by record (pipelined,
/// never gathering the batch), a Python one once per batch and partition.
fn pipeline<'s>(
    stream: &DStream<'s, Value>,
    segments: &[Segment],
    index: usize,
    fail: &FailureHandle,
) -> DStream<'s, Value> {
    let mut stream = stream.clone();
    for segment in segments {
        stream = match segment {
            Segment::Python(func) => {
                let func = func.clone();
                stream.try_map_partitions(move |part| call_partition(&func, index, part.collect()))
            }
            Segment::Native {
                kind,
                expr,
                fallback,
                check,
                name,
            } => {
                let stage = NativeStage {
                    kind: *kind,
                    expr: expr.clone(),
                    fallback: fallback.clone(),
                    check: *check,
                    name: name.clone(),
                    index,
                    fail: fail.clone(),
                };
                match kind {
                    StepKind::Map | StepKind::Filter | StepKind::MapValues => {
                        stream.flat_map(move |record| stage.one(record))
                    }
                    StepKind::FlatMap | StepKind::FlatMapValues => {
                        stream.flat_map(move |record| stage.many(record))
                    }
                }
            }
        };
    }
    stream
}

/// A native stage of a pipeline, run on each record.
struct NativeStage {
    kind: StepKind,
    expr: Arc<Expr>,
    fallback: Func,
    check: bool,
    name: String,
    index: usize,
    fail: FailureHandle,
}

impl NativeStage {
    /// The stage as Python runs it, on one record.
    fn python(&self, record: Value) -> Option<Vec<Value>> {
        match call_partition(&self.fallback, self.index, vec![record]) {
            Ok(out) => Some(out),
            Err(error) => {
                self.fail.fail(Error::connector(PythonFailure {
                    operation: "a Python function",
                    error,
                }));
                None
            }
        }
    }

    /// Native, else Python; in the differential mode both, compared.
    fn run(
        &self,
        record: Value,
        native: impl FnOnce(Value) -> Result<Vec<Value>, Value>,
    ) -> Vec<Value> {
        if !self.check {
            return match native(record) {
                Ok(out) => out,
                Err(record) => self.python(record).unwrap_or_default(),
            };
        }
        let python = self.python(record.clone()).unwrap_or_default();
        if let Ok(out) = native(record.clone()) {
            if out.len() != python.len() || out.iter().zip(&python).any(|(a, b)| !lift::same(a, b))
            {
                let error = differs(
                    &self.name,
                    &[record],
                    &Value::List(out),
                    &Value::List(python.clone()),
                );
                self.fail.fail(Error::connector(PythonFailure {
                    operation: "EMBER_LIFT_CHECK",
                    error,
                }));
            }
        }
        python
    }

    /// `map`, `filter`, `mapValues` natively: at most one record out, or
    /// the record back when the evaluation defers.
    fn native_one(&self, record: Value) -> Result<Option<Value>, Value> {
        match self.kind {
            StepKind::Map => self.expr.eval_owned(record).map(Some),
            StepKind::Filter => match self
                .expr
                .eval(std::slice::from_ref(&record))
                .and_then(|v| lift::truthy(&v))
            {
                Ok(true) => Ok(Some(record)),
                Ok(false) => Ok(None),
                Err(Defer) => Err(record),
            },
            _ => self.map_values(record).map(Some),
        }
    }

    /// `map`, `filter`, `mapValues`: at most one record out.
    fn one(&self, record: Value) -> Option<Value> {
        if self.check {
            return self.many(record).into_iter().next();
        }
        match self.native_one(record) {
            Ok(out) => out,
            Err(record) => self.python(record).and_then(|out| out.into_iter().next()),
        }
    }

    fn map_values(&self, record: Value) -> Result<Value, Value> {
        match record {
            Value::Tuple(mut kv) if kv.len() == 2 => match self.expr.eval(&kv[1..]) {
                Ok(v) => {
                    kv[1] = v;
                    Ok(Value::Tuple(kv))
                }
                Err(Defer) => Err(Value::Tuple(kv)),
            },
            other => Err(other),
        }
    }

    /// Any stage, as a list of records out.
    fn many(&self, record: Value) -> Vec<Value> {
        let kind = self.kind;
        let expr = &self.expr;
        self.run(record, |record| match kind {
            StepKind::Map | StepKind::Filter | StepKind::MapValues => {
                self.native_one(record).map(|out| out.into_iter().collect())
            }
            StepKind::FlatMap => {
                let mut out = Vec::new();
                match expr
                    .eval(std::slice::from_ref(&record))
                    .and_then(|v| lift::iterate(v, &mut out))
                {
                    Ok(()) => Ok(out),
                    Err(Defer) => Err(record),
                }
            }
            StepKind::FlatMapValues => {
                let Value::Tuple(kv) = &record else {
                    return Err(record);
                };
                if kv.len() != 2 {
                    return Err(record);
                }
                let mut items = Vec::new();
                match expr
                    .eval(&kv[1..])
                    .and_then(|v| lift::iterate(v, &mut items))
                {
                    Ok(()) => Ok(items
                        .into_iter()
                        .map(|x| Value::pair(kv[0].clone(), x))
                        .collect()),
                    Err(Defer) => Err(record),
                }
            }
        })
    }
}

fn build_node<'s>(
    s: &StreamingScope<'s>,
    node: &Node,
    parents: &[DStream<'s, Value>],
    fail: &FailureHandle,
    snapshots: &mut HashMap<usize, DStream<'s, Value>>,
) -> Option<DStream<'s, Value>> {
    let first = parents.first();
    let stream = match &node.op {
        Op::Queue {
            batches,
            one_at_a_time,
            default,
        } => s.queue_stream(batches.clone(), *one_at_a_time, default.clone()),
        Op::Socket {
            host,
            port,
            write_ahead_log,
        } => {
            let options = ember::ReceiverOptions::default().write_ahead_log(*write_ahead_log);
            s.socket_text_stream_with(host, *port, options)
                .map(Value::Str)
        }
        Op::TextFile { dir } => s.text_file_stream(dir).map(Value::Str),
        Op::BinaryRecords { dir, record_length } => s
            .binary_records_stream(dir, *record_length)
            .map(Value::Bytes),
        Op::Pipeline { segments } => pipeline(first?, segments, s.worker_index(), fail),
        Op::ReduceByKey { func } => {
            let f = Combine::new(func, fail, "reduceByKey");
            unpair(&pairs_of(first?, "reduceByKey", fail).reduce_by_key(move |a, b| f.call(a, b)))
        }
        Op::Union => {
            let mut out = first?.clone();
            for other in &parents[1..] {
                out = out.union(other);
            }
            out
        }
        Op::Repartition { partitions } => first?.repartition(*partitions),
        Op::Count => first?.count().map(|n| Value::Int(n as i64)),
        Op::CountByValue => first?
            .count_by_value()
            .map(|(v, n)| Value::pair(v, Value::Int(n as i64))),
        Op::Glom => first?.glom().map(Value::List),
        Op::Reduce { func } => {
            let f = Combine::new(func, fail, "reduce");
            first?.reduce(move |a, b| f.call(a, b))
        }
        Op::GroupByKey => pairs_of(first?, "groupByKey", fail)
            .group_by_key()
            .map(|(k, vs)| Value::pair(k, Value::List(vs))),
        Op::Window(w) => first?.window(w.length(), w.slide()),
        Op::CountByWindow(w) => first?
            .count_by_window(w.length(), w.slide())
            .map(|n| Value::Int(n as i64)),
        Op::CountByValueAndWindow(w) => first?
            .count_by_value_and_window(w.length(), w.slide())
            .map(|(v, n)| Value::pair(v, Value::Int(n as i64))),
        Op::GroupByKeyAndWindow(w) => pairs_of(first?, "groupByKeyAndWindow", fail)
            .group_by_key_and_window(w.length(), w.slide())
            .map(|(k, vs)| Value::pair(k, Value::List(vs))),
        Op::ReduceByWindow { func, inv, window } => {
            let f = Combine::new(func, fail, "reduceByWindow");
            match inv {
                Some(inv) => {
                    let g = Combine::new(inv, fail, "reduceByWindow");
                    first?.reduce_by_window_inv(
                        move |a, b| f.call(a, b),
                        move |a, b| g.call(a, b),
                        window.length(),
                        window.slide(),
                    )
                }
                None => first?.reduce_by_window(
                    move |a, b| f.call(a, b),
                    window.length(),
                    window.slide(),
                ),
            }
        }
        Op::ReduceByKeyAndWindow {
            func,
            inv,
            filter,
            window,
        } => {
            let keyed = pairs_of(first?, "reduceByKeyAndWindow", fail);
            let f = Combine::new(func, fail, "reduceByKeyAndWindow");
            let out = match (inv, filter) {
                (None, _) => keyed.reduce_by_key_and_window(
                    move |a, b| f.call(a, b),
                    window.length(),
                    window.slide(),
                ),
                (Some(inv), None) => {
                    let g = Combine::new(inv, fail, "reduceByKeyAndWindow");
                    keyed.reduce_by_key_and_window_inv(
                        move |a, b| f.call(a, b),
                        move |a, b| g.call(a, b),
                        window.length(),
                        window.slide(),
                    )
                }
                (Some(inv), Some(filter)) => {
                    let g = Combine::new(inv, fail, "reduceByKeyAndWindow");
                    let keep = Combine::new(filter, fail, "reduceByKeyAndWindow");
                    keyed.reduce_by_key_and_window_inv_filter(
                        move |a, b| f.call(a, b),
                        move |a, b| g.call(a, b),
                        move |(k, v)| keep.test(&[Value::pair(k.clone(), v.clone())]),
                        window.length(),
                        window.slide(),
                    )
                }
            };
            unpair(&out)
        }
        Op::UpdateStateByKey { func, initial } => {
            let keyed = pairs_of(first?, "updateStateByKey", fail);
            let update = Combine::new(func, fail, "updateStateByKey");
            let out = keyed.update_state_by_key_with_initial(
                move |values: Vec<Value>, state: Option<Value>| {
                    let args = [Value::List(values), state.unwrap_or(Value::None)];
                    match update.apply(&args)? {
                        Value::None => None,
                        new => Some(new),
                    }
                },
                initial.clone(),
            );
            unpair(&out)
        }
        Op::MapWithState {
            call,
            timeout,
            initial,
        } => {
            let keyed = pairs_of(first?, "mapWithState", fail);
            let call = Combine::new(&Lifted::python(call), fail, "mapWithState");
            let mut spec = StateSpec::function_with_time(
                move |_time: Time,
                      key: &Value,
                      value: Option<Value>,
                      state: &mut ember::State<Value>| {
                    let result = Python::attach(|py| -> PyResult<(bool, Value, u8, Value)> {
                        let none = py.None().into_bound(py);
                        let value_py = match &value {
                            Some(v) => to_py(py, v)?,
                            None => none.clone(),
                        };
                        let state_py = match state.get() {
                            Some(v) => to_py(py, v)?,
                            None => none.clone(),
                        };
                        let out = call.func.bind(py).call1((
                            to_py(py, key)?,
                            value_py,
                            value.is_some(),
                            state.exists(),
                            state_py,
                            state.is_timing_out(),
                        ))?;
                        let (emit, mapped, action, new_state): (
                            bool,
                            Bound<'_, PyAny>,
                            u8,
                            Bound<'_, PyAny>,
                        ) = out.extract()?;
                        Ok((emit, from_py(&mapped)?, action, from_py(&new_state)?))
                    });
                    let (emit, mapped, action, new_state) = call.settle(result)?;
                    let changed = match action {
                        1 => state.update(new_state),
                        2 => state.remove(),
                        _ => Ok(()),
                    };
                    if let Err(e) = changed {
                        call.settle::<()>(Err(pyo3::exceptions::PyRuntimeError::new_err(
                            e.to_string(),
                        )));
                    }
                    emit.then_some(mapped)
                },
            );
            spec = spec.initial_state(initial.clone());
            if let Some(ms) = timeout {
                spec = spec.timeout(Duration::from_millis(*ms));
            }
            let mapped = keyed.map_with_state(spec);
            snapshots.insert(node.id, unpair(&mapped.state_snapshots()));
            mapped.stream()
        }
        Op::StateSnapshots => snapshots.get(node.parents.first()?)?.clone(),
        Op::Join(kind) => {
            let name = match kind {
                JoinKind::Inner => "join",
                JoinKind::LeftOuter => "leftOuterJoin",
                JoinKind::RightOuter => "rightOuterJoin",
                JoinKind::FullOuter => "fullOuterJoin",
                JoinKind::Cogroup => "cogroup",
            };
            let left = pairs_of(first?, name, fail);
            let right = pairs_of(parents.get(1)?, name, fail);
            let opt = |v: Option<Value>| v.unwrap_or(Value::None);
            let out = match kind {
                JoinKind::Inner => left.join(&right).map(|(k, (v, w))| (k, Value::pair(v, w))),
                JoinKind::LeftOuter => left
                    .left_outer_join(&right)
                    .map(move |(k, (v, w))| (k, Value::pair(v, opt(w)))),
                JoinKind::RightOuter => left
                    .right_outer_join(&right)
                    .map(move |(k, (v, w))| (k, Value::pair(opt(v), w))),
                JoinKind::FullOuter => left
                    .full_outer_join(&right)
                    .map(move |(k, (v, w))| (k, Value::pair(opt(v), opt(w)))),
                JoinKind::Cogroup => left
                    .cogroup(&right)
                    .map(|(k, (vs, ws))| (k, Value::pair(Value::List(vs), Value::List(ws)))),
            };
            unpair(&out)
        }
        Op::Transform { func } => transform(parents, func.clone())?,
        Op::Foreach { func } => {
            let func = func.clone();
            first?.try_foreach_rdd(move |batch, time| {
                Python::attach(|py| {
                    let list = list_to_py(py, &batch)?;
                    func.bind(py).call1((time.milliseconds(), list)).map(drop)
                })
            });
            return None;
        }
        Op::Dashboard { title, pairs } => {
            crate::connectors::dashboard(first?, title, *pairs);
            return None;
        }
        Op::Kafka { topics, params } => {
            #[cfg(feature = "kafka")]
            match crate::connectors::kafka::direct_stream(s, topics, params) {
                Ok(stream) => stream,
                Err(e) => {
                    s.fail_definition(Error::connector(PythonFailure {
                        operation: "KafkaUtils.createDirectStream",
                        error: e,
                    }));
                    return None;
                }
            }
            #[cfg(not(feature = "kafka"))]
            {
                let _ = (topics, params);
                return missing(s, "kafka");
            }
        }
        Op::Http {
            url,
            events,
            headers,
            write_ahead_log,
        } => {
            #[cfg(feature = "http-stream")]
            {
                crate::connectors::http_stream(s, url, *events, headers, *write_ahead_log)
            }
            #[cfg(not(feature = "http-stream"))]
            {
                let _ = (url, events, headers, write_ahead_log);
                return missing(s, "http-stream");
            }
        }
        Op::Kinesis { params } => {
            #[cfg(feature = "kinesis")]
            match crate::connectors::kinesis_stream(s, params) {
                Ok(stream) => stream,
                Err(e) => {
                    s.fail_definition(Error::connector(PythonFailure {
                        operation: "KinesisUtils.createStream",
                        error: e,
                    }));
                    return None;
                }
            }
            #[cfg(not(feature = "kinesis"))]
            {
                let _ = params;
                return missing(s, "kinesis");
            }
        }
        Op::KafkaSink {
            brokers,
            topic,
            config,
        } => {
            #[cfg(feature = "kafka")]
            crate::connectors::kafka::sink(first?, brokers, topic, config);
            #[cfg(not(feature = "kafka"))]
            {
                let _ = (brokers, topic, config);
                missing::<()>(s, "kafka");
            }
            return None;
        }
        Op::Postgres {
            url,
            table,
            columns,
            keys,
            create_sql,
        } => {
            #[cfg(feature = "postgres")]
            crate::connectors::postgres::sink(
                first?,
                url,
                table,
                columns,
                keys.as_deref(),
                create_sql.as_deref(),
            );
            #[cfg(not(feature = "postgres"))]
            {
                let _ = (url, table, columns, keys, create_sql);
                missing::<()>(s, "postgres");
            }
            return None;
        }
    };
    Some(stream)
}

/// Refuses a graph that needs a connector this build lacks.
#[allow(dead_code)]
fn missing<T>(s: &StreamingScope<'_>, feature: &str) -> Option<T> {
    s.fail_definition(Error::Config(format!(
        "this build of ember's Python package has no {feature} support (cargo feature \"{feature}\")"
    )));
    None
}

/// A transform of one or more streams: the batch of each, gathered on one
/// worker, goes to `func` as a list of lists.
fn transform<'s>(parents: &[DStream<'s, Value>], func: Func) -> Option<DStream<'s, Value>> {
    let count = parents.len();
    let call = move |lists: Vec<Vec<Value>>, time: Time| {
        Python::attach(|py| {
            let lists = lists
                .iter()
                .map(|l| list_to_py(py, l))
                .collect::<PyResult<Vec<_>>>()?;
            let out = func
                .bind(py)
                .call1((time.milliseconds(), PyList::new(py, lists)?))?;
            iter_from_py(&out)
        })
    };
    if count == 1 {
        return Some(parents[0].try_transform(move |batch, time| call(vec![batch], time)));
    }
    // Several streams: tag each record with its stream, union, split again.
    let mut tagged = parents.first()?.map(|v| (0usize, v));
    for (i, other) in parents.iter().enumerate().skip(1) {
        tagged = tagged.union(&other.map(move |v| (i, v)));
    }
    Some(tagged.try_transform(move |batch, time| {
        let mut lists = vec![Vec::new(); count];
        for (i, v) in batch {
            lists[i].push(v);
        }
        call(lists, time)
    }))
}
