"""StreamingContext: the entry point of a streaming program, as in PySpark."""

from __future__ import annotations

import os
import threading
from collections import deque
from datetime import datetime
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple

from ember import _lift
from ember.context import SparkContext
from ember.rdd import RDD
from ember.streaming.dstream import DStream, _batch_time, _items, _ms
from ember.streaming.listener import StreamingListener, _ListenerAdapter

__all__ = ["StreamingContext"]


def _native():
    from ember import _native

    return _native


def _is_true(value: Optional[str]) -> Optional[bool]:
    if value is None:
        return None
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _name(func: Any) -> str:
    """A function as :meth:`StreamingContext.explain` names it."""
    name = getattr(func, "__name__", None) or repr(func)
    code = getattr(func, "__code__", None)
    if code is not None:
        return f"{name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})"
    return name


def _arg_names(func: Any) -> Optional[List[str]]:
    code = getattr(func, "__code__", None)
    return list(code.co_varnames[: code.co_argcount]) if code is not None else None


def _chain(funcs: List[Callable[[int, Iterable[Any]], Iterable[Any]]]) -> Callable[[int, Iterable[Any]], Iterable[Any]]:
    """Consecutive partition functions as one."""
    if len(funcs) == 1:
        return funcs[0]

    def chained(index: int, records: Iterable[Any]) -> Iterable[Any]:
        for f in funcs:
            records = f(index, records)
        return records

    return chained


def _to_ms(t: Any) -> int:
    if isinstance(t, datetime):
        return round(t.timestamp() * 1000)
    if isinstance(t, (int, float)):
        return round(t * 1000)
    raise TypeError(f"expected a datetime or seconds since the epoch, got {t!r}")


class _OutputOrder:
    """Runs the Python outputs of each batch one after another, in the order
    the program defined them, as Spark runs a batch's output operations (so
    that several ``pprint`` s print in the same order as PySpark's).

    The engine calls each output on one worker as its batch completes; an
    output's call is held until every output due at that batch time has
    arrived (a windowed output is due only at its slides), then all run in
    definition order. A batch is also released when an output of a later
    batch arrives, and whatever is held when the context stops runs then:
    nothing is held back for good.
    """

    def __init__(self) -> None:
        self._slides: List[int] = []
        self._held: Dict[int, Dict[int, Tuple[Callable[[int, List[Any]], None], List[Any]]]] = {}
        self._lock = threading.Lock()
        self.zero_ms: Optional[int] = None

    def add(self, slide_ms: int, func: Callable[[int, List[Any]], None]) -> Callable[[int, List[Any]], None]:
        """``func`` as an output that runs in its turn."""
        index = len(self._slides)
        self._slides.append(slide_ms)

        def call(ms: int, records: List[Any]) -> None:
            for f, t, recs in self._arrive(index, ms, func, records):
                f(t, recs)

        return call

    def _due(self, ms: int) -> Optional[set]:
        if self.zero_ms is None:
            return None
        return {i for i, slide in enumerate(self._slides) if (ms - self.zero_ms) % slide == 0}

    def _arrive(self, index: int, ms: int, func: Callable[[int, List[Any]], None],
                records: List[Any]) -> List[Tuple[Callable[[int, List[Any]], None], int, List[Any]]]:
        with self._lock:
            self._held.setdefault(ms, {})[index] = (func, records)
            ready = []
            for t in sorted(self._held):
                waiting = self._held[t]
                due = self._due(t)
                if t < ms or due is None or due <= waiting.keys():
                    ready.extend((f, t, r) for _, (f, r) in sorted(waiting.items()))
                    del self._held[t]
                else:
                    break
            return ready

    def drain(self) -> None:
        """Runs what is still held (after the context stopped)."""
        with self._lock:
            ready = [(f, t, r) for t in sorted(self._held) for _, (f, r) in sorted(self._held[t].items())]
            self._held.clear()
        for f, t, r in ready:
            f(t, r)


class StreamingContext:
    """The main entry point of a streaming program: creates DStreams from
    sources, and starts and stops their processing.

    ``StreamingContext(sparkContext, batchDuration)`` cuts the input into
    batches every ``batchDuration`` seconds (floats allowed: ``0.5``) on the
    SparkContext's master (``local[N]``: N workers). Define the DStreams and
    their outputs, then call :meth:`start` and :meth:`awaitTermination`.
    """

    _activeContext: Optional["StreamingContext"] = None
    _lock = threading.RLock()

    def __init__(self, sparkContext: SparkContext, batchDuration: Optional[float] = None,
                 jssc: Any = None) -> None:
        if jssc is not None:
            raise ValueError("ember has no JVM: jssc is not supported")
        if batchDuration is None:
            raise ValueError("batchDuration is required (seconds between batches)")
        native = _native()
        native.init_logging()
        self._sc = sparkContext
        self._batch_ms = _ms(batchDuration, "batchDuration")
        conf = sparkContext.getConf()
        ui: Optional[str] = None
        if _is_true(conf.get("spark.ui.enabled")) is False:
            ui = "off"
        elif conf.get("spark.ui.port") is not None:
            ui = f"127.0.0.1:{conf.get('spark.ui.port')}"
        clock = conf.get("spark.streaming.clock") or ""
        self._manual = "ManualClock" in clock or clock == "manual"
        max_rate = conf.get("spark.streaming.receiver.maxRate")
        # A process of a cluster (`python -m ember.submit --processes N`, or
        # ember-submit): the cluster's settings come from the environment.
        in_cluster = os.environ.get("EMBER_MASTER") == "cluster" and "EMBER_PROCESS" in os.environ
        self._settings = (
            sparkContext.appName or "ember",
            "cluster" if in_cluster else sparkContext.master,
            self._batch_ms,
            self._manual,
            ui,
            float(max_rate) if max_rate else None,
            _is_true(conf.get("spark.streaming.backpressure.enabled")),
        )
        # Checks the settings now; start() makes the context that runs, with
        # what the program set since (checkpoints, listeners).
        self._native = native.NativeContext(*self._settings)
        self._checkpoint_dir: Optional[str] = None
        self._checkpoint_ms: Optional[int] = None
        self._recover_dir: Optional[str] = None
        self._listeners: List[_ListenerAdapter] = []
        self._workers: int = self._native.workers()
        self._nodes: List[Tuple[int, str, List[int], Dict[str, Any]]] = []
        # What :meth:`explain` prints: each function of values and where it runs.
        self._plan: List[str] = []
        self._streams: List[DStream] = []
        self._state = "initialized"
        self._remember_ms: Optional[int] = None
        self._history: Dict[int, Deque[Tuple[int, List[Any]]]] = {}
        self._history_lock = threading.Lock()
        self._clock_ms = 0
        self._outputs = _OutputOrder()

    # -- class methods ------------------------------------------------------

    @classmethod
    def getOrCreate(cls, checkpointPath: str, setupFunc: Callable[[], "StreamingContext"]) -> "StreamingContext":
        """A context that resumes from the checkpoint in ``checkpointPath``
        when there is one, else starts afresh.

        ``setupFunc`` builds the context and its DStreams. Unlike PySpark,
        ember calls it in both cases, since the graph of Python functions is
        not stored in the checkpoint; the state, windows and source positions
        are restored from the checkpoint at :meth:`start`.
        """
        ssc = setupFunc()
        if not isinstance(ssc, StreamingContext):
            raise TypeError("setupFunc must return a StreamingContext")
        ssc._recover_dir = str(checkpointPath)
        return ssc

    @classmethod
    def getActive(cls) -> Optional["StreamingContext"]:
        """The context that is running, or None."""
        return cls._activeContext

    @classmethod
    def getActiveOrCreate(cls, checkpointPath: Optional[str],
                          setupFunc: Callable[[], "StreamingContext"]) -> "StreamingContext":
        """The running context, else one from :meth:`getOrCreate` (or from
        ``setupFunc`` when ``checkpointPath`` is None)."""
        active = cls.getActive()
        if active is not None:
            return active
        if checkpointPath is not None:
            return cls.getOrCreate(checkpointPath, setupFunc)
        return setupFunc()

    @property
    def sparkContext(self) -> SparkContext:
        """The SparkContext this context was made with."""
        return self._sc

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        """Starts processing. The DStreams and outputs must be defined by now."""
        with StreamingContext._lock:
            if self._state == "active":
                raise ValueError("StreamingContext has already been started")
            if self._state == "stopped":
                raise ValueError("StreamingContext has already been stopped")
            active = StreamingContext._activeContext
            if active is not None and active is not self:
                raise ValueError("Only one StreamingContext may be started at a time")
            if self._remember_ms is not None:
                for stream in list(self._streams):
                    self._record(stream)
            native = _native().NativeContext(*self._settings, checkpoint_ms=self._checkpoint_ms)
            if self._checkpoint_dir is not None:
                native.checkpoint(self._checkpoint_dir)
            if self._recover_dir is not None:
                native.recover(self._recover_dir)
            for adapter in self._listeners:
                native.add_listener(adapter)
            native.define(list(self._nodes))
            if self._plan:
                native_count = sum(1 for line in self._plan if ": native " in line)
                _native().log_info(
                    f"{native_count} of {len(self._plan)} functions of the program run natively, "
                    f"{len(self._plan) - native_count} in Python (ssc.explain() lists them)")
            self._native = native
            self._native.start()
            first = native.first_batch_ms()
            if first is not None:
                self._outputs.zero_ms = first - self._batch_ms
            self._state = "active"
            StreamingContext._activeContext = self

    def awaitTermination(self, timeout: Optional[float] = None) -> None:
        """Waits until the context stops, or ``timeout`` seconds. Raises the
        exception that stopped it, if any: a Python function's own exception
        with its traceback, or a :class:`ember.StreamingError`."""
        self._native.await_termination(timeout)

    def awaitTerminationOrTimeout(self, timeout: float) -> bool:
        """Waits at most ``timeout`` seconds; True if the context stopped."""
        return self._native.await_termination(timeout)

    def stop(self, stopSparkContext: bool = True, stopGraceFully: bool = False) -> None:
        """Stops processing: gracefully (every record received is processed
        first) or at once. Also stops the SparkContext unless told not to."""
        with StreamingContext._lock:
            try:
                self._native.stop(bool(stopGraceFully))
                self._outputs.drain()
            finally:
                self._state = "stopped"
                if StreamingContext._activeContext is self:
                    StreamingContext._activeContext = None
                if stopSparkContext:
                    self._sc.stop()

    def remember(self, duration: float) -> None:
        """Keeps every DStream's batches for ``duration`` seconds, for
        :meth:`DStream.slice`."""
        self._check_not_started()
        self._remember_ms = _ms(duration, "remember duration")

    def checkpoint(self, directory: str) -> None:
        """Checkpoints the state of stateful operations into ``directory``."""
        self._checkpoint_dir = str(directory)

    # -- sources --------------------------------------------------------------

    def socketTextStream(self, hostname: str, port: int, storageLevel: Any = None) -> DStream:
        """Lines of text read from a TCP connection to ``hostname:port``
        (UTF-8, split at ``\\n``); reconnects when the connection drops.

        With ``spark.streaming.receiver.writeAheadLog.enable`` set to true in
        the SparkConf (and ``checkpoint(directory)``), every block received
        is logged before it is used, so a restart from the checkpoint loses
        nothing received."""
        self._check_not_started()
        wal = _is_true(self._sc.getConf().get("spark.streaming.receiver.writeAheadLog.enable"))
        args = {"host": str(hostname), "port": int(port), "write_ahead_log": bool(wal)}
        return DStream(self, "socket", [], args, self._batch_ms)

    def textFileStream(self, directory: str) -> DStream:
        """Lines of the files that appear in ``directory`` (each new file once,
        hidden files skipped)."""
        self._check_not_started()
        return DStream(self, "text_file", [], {"dir": str(directory)}, self._batch_ms)

    def binaryRecordsStream(self, directory: str, recordLength: int) -> DStream:
        """The fixed-length records (``bytes`` of ``recordLength``) of the files
        that appear in ``directory``, with :meth:`textFileStream`'s rules. A
        file whose length is not a multiple of ``recordLength`` stops the
        context with an error naming it."""
        self._check_not_started()
        if not isinstance(recordLength, int) or recordLength < 1:
            raise ValueError(f"recordLength must be a positive int, got {recordLength!r}")
        args = {"dir": str(directory), "record_length": recordLength}
        return DStream(self, "binary_records", [], args, self._batch_ms)

    def queueStream(self, rdds: List[Any], oneAtATime: bool = True, default: Any = None) -> DStream:
        """A DStream of the given RDDs (or lists): one per batch, or all in the
        first batch when ``oneAtATime`` is False; ``default`` (or an empty
        batch) once the queue is empty. The queue is read when this is called,
        as PySpark does."""
        self._check_not_started()
        batches = [_items(r) for r in rdds]
        args = {"batches": batches, "one_at_a_time": bool(oneAtATime), "default": _items(default)}
        return DStream(self, "queue", [], args, self._batch_ms)

    # -- composition ----------------------------------------------------------

    def transform(self, dstreams: List[DStream], transformFunc: Callable[[List[RDD]], Any]) -> DStream:
        """A DStream of ``transformFunc([rdd of each DStream])`` per batch."""
        for d in dstreams[1:]:
            dstreams[0]._check_slide(d, "transform")
        return self._transform(list(dstreams), lambda t, rdds: transformFunc(rdds))

    def union(self, *dstreams: DStream) -> DStream:
        """The records of all the DStreams, batch by batch."""
        if not dstreams:
            raise ValueError("should have at least one DStream to union")
        if len(dstreams) == 1:
            return dstreams[0]
        for d in dstreams[1:]:
            dstreams[0]._check_slide(d, "union")
        self._check_not_started()
        return DStream(self, "union", list(dstreams))

    def addStreamingListener(self, streamingListener: StreamingListener) -> None:
        """Adds a listener of batch, receiver and output events."""
        self._listeners.append(_ListenerAdapter(streamingListener))

    @property
    def uiWebUrl(self) -> Optional[str]:
        """The web UI's address (Streaming page, dashboards) while running."""
        return self._native.ui_url()

    # -- internals ------------------------------------------------------------

    def _check_not_started(self) -> None:
        if self._state != "initialized":
            raise ValueError("Adding new inputs, transformations, and output operations after "
                             "starting a context is not supported")

    def _register(self, stream: DStream) -> None:
        self._streams.append(stream)

    def _add_node(self, kind: str, parents: List[int], args: Dict[str, Any]) -> int:
        node = len(self._nodes)
        self._nodes.append((node, kind, parents, args))
        return node

    def _lift(self, func: Optional[Callable[..., Any]], nargs: int, operation: str) -> Optional[tuple]:
        """The native form of ``func`` (called with ``nargs`` values) when
        the engine can run it, noted for :meth:`explain`."""
        if func is None:
            return None
        if not _lift.enabled():
            self._plan.append(f"{operation} {_name(func)}: Python (EMBER_LIFT=0)")
            return None
        native, why = _lift.recognize(func, nargs)
        if native is None:
            self._plan.append(f"{operation} {_name(func)}: Python ({why})")
        else:
            self._plan.append(f"{operation} {_name(func)}: native {_lift.describe(native, _arg_names(func))}")
        return native

    def _add_pipeline(self, parent: int, steps: List[Any]) -> int:
        """A node for consecutive narrow stages: those the engine recognises
        run natively, each run of the others is one Python call per batch and
        partition."""
        segments: List[tuple] = []
        run: List[Callable[[int, Iterable[Any]], Iterable[Any]]] = []
        check = _lift.checking()

        def flush() -> None:
            if run:
                segments.append(("python", _chain(list(run))))
                run.clear()

        for step in steps:
            native = None
            if step.kind is not None:
                native = self._lift(step.user, 1, step.kind)
            if native is None:
                run.append(step.func)
            else:
                flush()
                segments.append(("native", step.kind, native, step.func, check,
                                 f"{step.kind} {_name(step.user)}"))
        flush()
        return self._add_node("pipeline", [parent], {"segments": segments})

    def explain(self) -> None:
        """Prints which functions of the program the engine runs natively and
        which run in Python, with the reason (ember's own addition: PySpark
        runs every function in Python). ``EMBER_LIFT=0`` runs them all in
        Python; ``EMBER_LIFT_CHECK=1`` runs the native ones in Python too and
        stops at the first difference."""
        print(self._explain_text())

    def _explain_text(self) -> str:
        lines = ["== ember: functions of the program =="]
        lines.extend(self._plan or ["(no functions of values yet: define the outputs first)"])
        return "\n".join(lines)

    def _transform_args(self, func: Callable[[datetime, List[RDD]], Any]) -> Dict[str, Any]:
        ctx = self._sc
        workers = self._workers

        def call(ms: int, lists: List[List[Any]]) -> List[Any]:
            rdds = [RDD._from_items(items, workers, ctx) for items in lists]
            out = func(_batch_time(ms), rdds)
            if out is None:
                return []
            if isinstance(out, RDD):
                return out.collect()
            return list(out)

        return {"func": call}

    def _transform(self, dstreams: List[DStream], func: Callable[[datetime, List[RDD]], Any]) -> DStream:
        self._check_not_started()
        return DStream(self, "transform", dstreams, self._transform_args(func))

    def _record(self, stream: DStream) -> None:
        keep = self._remember_ms or 0
        history: Deque[Tuple[int, List[Any]]] = deque()
        self._history[id(stream)] = history

        def store(ms: int, records: List[Any]) -> None:
            with self._history_lock:
                history.append((ms, records))
                while history and history[0][0] <= ms - keep - stream._slide_ms:
                    history.popleft()

        self._add_node("foreach", [stream._node_id()], {"func": store})

    def _slice(self, stream: DStream, begin: Any, end: Any) -> List[RDD]:
        history = self._history.get(id(stream))
        if history is None:
            raise ValueError("slice needs ssc.remember(duration) before ssc.start(): ember keeps "
                             "a DStream's batches for slicing only then")
        lo, hi = _to_ms(begin), _to_ms(end)
        with self._history_lock:
            kept = list(history)
        return [RDD._from_items(items, self._workers, self._sc) for ms, items in kept if lo <= ms <= hi]

    # -- testing --------------------------------------------------------------

    def _run_batches(self, count: int = 1) -> None:
        """On a manual clock (``spark.streaming.clock`` set to
        ``org.apache.spark.util.ManualClock``): moves the clock one batch at a
        time and waits until every output has finished each batch."""
        for _ in range(count):
            self._clock_ms += self._batch_ms
            self._native.advance(self._batch_ms)
            self._native.await_batch(self._clock_ms)
