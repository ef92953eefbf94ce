"""DStream: a stream of batches, each a small RDD, as ``pyspark.streaming``."""

from __future__ import annotations

import itertools
from datetime import datetime
from functools import reduce as _fold
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, List, Optional, Tuple

from ember import _lift
from ember.rdd import RDD, ResultIterable

if TYPE_CHECKING:
    from ember.streaming.context import StreamingContext
    from ember.streaming.state import StateSpec

__all__ = ["DStream", "TransformedDStream", "MapWithStateDStream"]


def _batch_time(ms: int) -> datetime:
    """A batch time as PySpark gives it to functions: a local datetime."""
    return datetime.fromtimestamp(ms / 1000.0)


def _ms(seconds: float, what: str) -> int:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        raise TypeError(f"{what} must be a number of seconds, got {seconds!r}")
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"{what} must be positive, got {seconds!r} s")
    return ms


def _arg_count(func: Callable[..., Any]) -> int:
    """How many positional arguments ``func`` takes (PySpark dispatches on it)."""
    code = getattr(func, "__code__", None)
    if code is None:
        code = getattr(getattr(func, "__call__", None), "__code__", None)
        if code is None:
            return 1
        return code.co_argcount - 1
    count = code.co_argcount
    if getattr(func, "__self__", None) is not None:
        count -= 1
    return count


def _pairs(operation: str, records: Iterable[Any]) -> Iterator[Tuple[Any, Any]]:
    """The records as ``(key, value)`` pairs; any other record raises a
    TypeError naming ``operation``, as the engine's keyed operations do."""
    for record in records:
        try:
            key, value = record
        except (TypeError, ValueError):
            shown = repr(record)
            if len(shown) > 80:
                shown = shown[:80] + "..."
            raise TypeError(f"{operation} needs (key, value) pairs, got {shown}") from None
        yield key, value


def _combine_locally(
    create: Callable[[Any], Any], merge: Callable[[Any, Any], Any], operation: str
) -> Callable[[int, Iterable[Any]], Iterable[Any]]:
    def combine(_: int, records: Iterable[Any]) -> Iterable[Any]:
        combined: dict = {}
        for k, v in _pairs(operation, records):
            if k in combined:
                combined[k] = merge(combined[k], v)
            else:
                combined[k] = create(v)
        return list(combined.items())

    return combine


def _identity(x: Any) -> Any:
    return x


class _Step:
    """A narrow stage: ``func(index, records)`` over a partition, and for a
    per-record stage its kind and the user's function."""

    __slots__ = ("func", "kind", "user")

    def __init__(self, func: Callable[[int, Iterable[Any]], Iterable[Any]], kind: Optional[str],
                 user: Optional[Callable[..., Any]]) -> None:
        self.func = func
        self.kind = kind
        self.user = user


class DStream:
    """A discretized stream: a continuous sequence of batches (RDDs) of the
    same type, one per batch interval (or per slide, for windows).

    DStreams come from a :class:`StreamingContext`'s sources and from the
    operations below; nothing runs until the context starts. Functions given
    to the per-record operations run once per batch and partition.
    """

    def __init__(
        self,
        ssc: "StreamingContext",
        kind: str,
        parents: List["DStream"],
        args: Optional[dict] = None,
        slide_ms: Optional[int] = None,
    ) -> None:
        self._ssc = ssc
        self._kind = kind
        self._parents = parents
        self._args = args or {}
        self._slide_ms = slide_ms if slide_ms is not None else parents[0]._slide_ms
        # Narrow stages not yet given to the engine, over the records of
        # `_prev`: consecutive ones form one pipeline node, where the engine
        # runs the functions it recognises natively and chains the rest into
        # one Python call per batch and partition.
        self._prev: Optional[DStream] = None
        self._steps: List[_Step] = []
        self._node: Optional[int] = None
        ssc._register(self)

    # -- the graph ----------------------------------------------------------

    def _node_id(self) -> int:
        """The engine node of this stream, created on first use."""
        if self._node is None:
            if self._steps:
                assert self._prev is not None
                self._node = self._ssc._add_pipeline(self._prev._node_id(), self._steps)
            else:
                parents = [p._node_id() for p in self._parents]
                self._node = self._ssc._add_node(self._kind, parents, self._args)
        return self._node

    def _derive(self, kind: str, parents: List["DStream"], args: Optional[dict] = None,
                slide_ms: Optional[int] = None) -> "DStream":
        self._ssc._check_not_started()
        return DStream(self._ssc, kind, parents, args, slide_ms)

    def _then(self, kind: str, args: Optional[dict] = None, slide_ms: Optional[int] = None) -> "DStream":
        """An operation of the engine over this stream alone."""
        return self._derive(kind, [self], args, slide_ms)

    def _pipe(self, func: Callable[[int, Iterable[Any]], Iterable[Any]],
              kind: Optional[str] = None, user: Optional[Callable[..., Any]] = None) -> "DStream":
        """A narrow stage over this stream (``func(index, records)``), joined
        to this stream's own narrow stages when it has some and is not
        otherwise used by the engine. ``kind`` and ``user`` name a per-record
        stage (``map``, ``filter``…) and the user's function, which the
        engine may run natively."""
        self._ssc._check_not_started()
        out = DStream(self._ssc, "pipeline", [self])
        step = _Step(func, kind, user)
        if self._steps and self._node is None:
            out._prev = self._prev
            out._steps = self._steps + [step]
        else:
            out._prev = self
            out._steps = [step]
        return out

    def _lift(self, func: Optional[Callable[..., Any]], nargs: int, operation: str) -> Optional[tuple]:
        """The native form of a function of values, if the engine can run it."""
        return self._ssc._lift(func, nargs, operation)

    def _keyed(self, kind: str, others: List["DStream"], args: Optional[dict] = None) -> "DStream":
        for other in others:
            self._check_slide(other, kind)
        return self._derive(kind, [self, *others], args)

    def _check_slide(self, other: "DStream", what: str) -> None:
        if other._ssc is not self._ssc:
            raise ValueError(f"{what}: the DStreams belong to different StreamingContexts")
        if other._slide_ms != self._slide_ms:
            raise ValueError(
                f"{what}: the DStreams have different slide durations "
                f"({self._slide_ms / 1000} s and {other._slide_ms / 1000} s)"
            )

    def _window_ms(self, windowDuration: float, slideDuration: Optional[float]) -> dict:
        length = _ms(windowDuration, "windowDuration")
        slide = self._slide_ms if slideDuration is None else _ms(slideDuration, "slideDuration")
        for name, value in (("windowDuration", length), ("slideDuration", slide)):
            if value % self._slide_ms:
                raise ValueError(
                    f"{name} ({value / 1000} s) must be a multiple of the parent's slide "
                    f"duration ({self._slide_ms / 1000} s)"
                )
        return {"length_ms": length, "slide_ms": slide}

    # -- basics -------------------------------------------------------------

    def context(self) -> "StreamingContext":
        """The StreamingContext this DStream belongs to."""
        return self._ssc

    def count(self) -> "DStream":
        """A DStream with one record per batch: the number of records in it."""
        return self._derive("count", [self])

    def filter(self, f: Callable[[Any], bool]) -> "DStream":
        """The records for which ``f`` is true."""
        return self._pipe(lambda _, it: filter(f, it), "filter", f)

    def flatMap(self, f: Callable[[Any], Iterable[Any]], preservesPartitioning: bool = False) -> "DStream":
        """Applies ``f`` to each record and flattens the results."""
        return self._pipe(lambda _, it: itertools.chain.from_iterable(map(f, it)), "flatMap", f)

    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> "DStream":
        """Applies ``f`` to each record."""
        return self._pipe(lambda _, it: map(f, it), "map", f)

    def mapPartitions(self, f: Callable[[Iterator[Any]], Iterable[Any]],
                      preservesPartitioning: bool = False) -> "DStream":
        """Applies ``f`` to an iterator over each partition of each batch."""
        return self._pipe(lambda _, it: f(iter(it)))

    def mapPartitionsWithIndex(self, f: Callable[[int, Iterator[Any]], Iterable[Any]],
                               preservesPartitioning: bool = False) -> "DStream":
        """Applies ``f`` to each partition's index and an iterator over it."""
        return self._pipe(lambda i, it: f(i, iter(it)))

    def reduce(self, func: Callable[[Any, Any], Any]) -> "DStream":
        """A DStream with at most one record per batch: all records folded
        with ``func`` (none for an empty batch)."""

        def fold(_: int, it: Iterable[Any]) -> List[Any]:
            it = iter(it)
            for first in it:
                return [_fold(func, it, first)]
            return []

        native = self._lift(func, 2, "reduce")
        if native is not None:
            return self._then("reduce", {"func": func, "func_native": native, "check": _lift.checking()})
        return self._pipe(fold)._then("reduce", {"func": func})

    # -- keyed, per batch ---------------------------------------------------

    def reduceByKey(self, func: Callable[[Any, Any], Any], numPartitions: Optional[int] = None) -> "DStream":
        """Folds the values of each key within each batch with ``func``."""
        native = self._lift(func, 2, "reduceByKey")
        if native is not None:
            return self._then("reduce_by_key", {"func": func, "func_native": native, "check": _lift.checking()})
        return self._combine_by_key(_identity, func, func, "reduceByKey")

    def combineByKey(self, createCombiner: Callable[[Any], Any], mergeValue: Callable[[Any, Any], Any],
                     mergeCombiners: Callable[[Any, Any], Any],
                     numPartitions: Optional[int] = None) -> "DStream":
        """Combines the values of each key within each batch: ``createCombiner``
        starts a combiner from a value, ``mergeValue`` adds a value to one and
        ``mergeCombiners`` merges two."""
        return self._combine_by_key(createCombiner, mergeValue, mergeCombiners, "combineByKey")

    def _combine_by_key(self, createCombiner: Callable[[Any], Any], mergeValue: Callable[[Any, Any], Any],
                        mergeCombiners: Callable[[Any, Any], Any], operation: str) -> "DStream":
        def merge(_: int, groups: Iterable[Any]) -> Iterable[Any]:
            return [(k, _fold(mergeCombiners, cs)) for k, cs in groups]

        local = self._pipe(_combine_locally(createCombiner, mergeValue, operation))
        return local._then("group_by_key")._pipe(merge)

    def partitionBy(self, numPartitions: int, partitionFunc: Any = None) -> "DStream":
        """Sends the records of each key to one partition (the engine's hash of
        the key picks it; there is one partition per worker)."""

        def flatten(_: int, groups: Iterable[Any]) -> Iterable[Any]:
            return [(k, v) for k, vs in groups for v in vs]

        checked = self._pipe(lambda _, it: _pairs("partitionBy", it))
        return checked._then("group_by_key")._pipe(flatten)

    def groupByKey(self, numPartitions: Optional[int] = None) -> "DStream":
        """The values of each key within each batch, as a ResultIterable."""
        return self._then("group_by_key").mapValues(ResultIterable)

    def countByValue(self) -> "DStream":
        """Each distinct record of a batch with its number of occurrences."""
        return self._then("count_by_value")

    def mapValues(self, f: Callable[[Any], Any]) -> "DStream":
        """Applies ``f`` to the value of each (key, value) record."""
        return self._pipe(lambda _, it: ((k, f(v)) for k, v in _pairs("mapValues", it)), "mapValues", f)

    def flatMapValues(self, f: Callable[[Any], Iterable[Any]]) -> "DStream":
        """Applies ``f`` to each value and pairs the key with each result."""
        return self._pipe(lambda _, it: ((k, x) for k, v in _pairs("flatMapValues", it) for x in f(v)),
                          "flatMapValues", f)

    def glom(self) -> "DStream":
        """Each partition of each batch as one list."""
        return self._then("glom")

    # -- persistence (the engine keeps what it needs) ------------------------

    def cache(self) -> "DStream":
        """Accepted for PySpark's sake; ember keeps batches only as long as
        the operations need them."""
        return self

    def persist(self, storageLevel: Any = None) -> "DStream":
        """Accepted for PySpark's sake (see :meth:`cache`)."""
        return self

    def checkpoint(self, interval: float) -> "DStream":
        """Checkpoints state every ``interval`` seconds (with
        ``ssc.checkpoint(directory)``). ember checkpoints all stateful
        operations together, at the smallest interval any DStream asks for;
        the default, as Spark's, is the smallest multiple of the slides of at
        least 10 s."""
        ms = _ms(interval, "checkpoint interval")
        current = self._ssc._checkpoint_ms
        self._ssc._checkpoint_ms = ms if current is None else min(current, ms)
        return self

    # -- outputs --------------------------------------------------------------

    def foreachRDD(self, func: Callable[..., None]) -> None:
        """Calls ``func(rdd)`` or ``func(time, rdd)`` for every batch, in one
        place (the driver, in Spark's words); ``time`` is a local datetime."""
        self._ssc._check_not_started()
        with_time = _arg_count(func) != 1
        ctx = self._ssc.sparkContext
        workers = self._ssc._workers

        def call(ms: int, records: List[Any]) -> None:
            rdd = RDD._from_items(records, workers, ctx)
            if with_time:
                func(_batch_time(ms), rdd)
            else:
                func(rdd)

        ordered = self._ssc._outputs.add(self._slide_ms, call)
        self._ssc._add_node("foreach", [self._node_id()], {"func": ordered})

    def pprint(self, num: int = 10) -> None:
        """Prints the first ``num`` records of every batch, as PySpark does."""

        def take_and_print(time: datetime, rdd: RDD) -> None:
            taken = rdd.take(num + 1)
            print("-------------------------------------------")
            print("Time: %s" % time)
            print("-------------------------------------------")
            for record in taken[:num]:
                print(record)
            if len(taken) > num:
                print("...")
            print("", flush=True)

        self.foreachRDD(take_and_print)

    def saveAsTextFiles(self, prefix: str, suffix: Optional[str] = None) -> None:
        """Saves every batch as a directory of text files named
        ``prefix-<time in ms>[.suffix]``."""

        def save(time: datetime, rdd: RDD) -> None:
            ms = round(time.timestamp() * 1000)
            path = f"{prefix}-{ms}" if not suffix else f"{prefix}-{ms}.{suffix}"
            rdd.saveAsTextFile(path)

        self.foreachRDD(save)

    # -- outputs beyond PySpark ---------------------------------------------

    def toDashboard(self, title: str) -> None:
        """Shows every batch's ``(key, number)`` pairs on a live page of the
        web UI (``/dashboard/<n>``, the n-th dashboard defined): the keys with
        the largest values as a bar chart and a sorted table. A key longer
        than 1 KiB is shown shortened, ending with ``…[N bytes in all]``."""
        self._output("dashboard", {"title": str(title), "pairs": True})

    def toDashboardRecords(self, title: str) -> None:
        """Shows the first 100 records of every batch on a live page of the
        web UI, as ``print`` would show them (a record longer than 4 KiB
        shortened)."""
        self._output("dashboard", {"title": str(title), "pairs": False})

    def saveToKafka(self, brokers: str, topic: str, config: Optional[dict] = None) -> None:
        """Writes every record to the Kafka ``topic``: a ``(key, value)`` pair
        or a value alone, each ``str`` (written as UTF-8) or ``bytes``. The
        producer is idempotent; a delivery failure stops the context.
        ``config`` adds librdkafka producer settings."""
        args = {"brokers": str(brokers), "topic": str(topic),
                "config": {str(k): str(v) for k, v in (config or {}).items()}}
        self._output("kafka_sink", args)

    def saveToPostgres(self, url: str, table: str, columns: List[str],
                       keys: Optional[List[str]] = None, createTableSql: Optional[str] = None) -> None:
        """Writes every batch to a PostgreSQL table in one transaction, exactly
        once across restarts: each record is a tuple with one value per
        column (None, bool, int, float, str or bytes). With ``keys`` rows are
        upserted on those columns, else appended. ``url`` is a
        ``postgres://`` URL or ``key=value`` connection string;
        ``createTableSql`` creates the table when it is missing."""
        args = {"url": str(url), "table": str(table), "columns": [str(c) for c in columns],
                "keys": None if keys is None else [str(k) for k in keys],
                "create_sql": createTableSql}
        self._output("postgres", args)

    def _output(self, kind: str, args: dict) -> None:
        self._ssc._check_not_started()
        self._ssc._add_node(kind, [self._node_id()], args)

    # -- transforms ---------------------------------------------------------

    def transform(self, func: Callable[..., Any]) -> "TransformedDStream":
        """A DStream of ``func(rdd)`` or ``func(time, rdd)`` for each batch."""
        with_time = _arg_count(func) != 1
        return TransformedDStream(self, lambda t, rdds: func(t, rdds[0]) if with_time else func(rdds[0]))

    def transformWith(self, func: Callable[..., Any], other: "DStream",
                      keepSerializer: bool = False) -> "DStream":
        """A DStream of ``func(rdd, other_rdd)`` or ``func(time, rdd, other_rdd)``."""
        self._check_slide(other, "transformWith")
        with_time = _arg_count(func) == 3
        return self._ssc._transform(
            [self, other],
            lambda t, rdds: func(t, rdds[0], rdds[1]) if with_time else func(rdds[0], rdds[1]),
        )

    def repartition(self, numPartitions: int) -> "DStream":
        """Spreads each batch evenly over the partitions."""
        return self._then("repartition", {"partitions": int(numPartitions)})

    def union(self, other: "DStream") -> "DStream":
        """The records of both DStreams, batch by batch."""
        self._check_slide(other, "union")
        return self._derive("union", [self, other])

    # -- joins --------------------------------------------------------------

    def cogroup(self, other: "DStream", numPartitions: Optional[int] = None) -> "DStream":
        """Per batch, each key with the ResultIterables of its values on each side."""
        return self._keyed("cogroup", [other]).mapValues(
            lambda vw: (ResultIterable(vw[0]), ResultIterable(vw[1]))
        )

    def join(self, other: "DStream", numPartitions: Optional[int] = None) -> "DStream":
        """Per batch, ``(k, (v, w))`` for every pair of values of a key on both sides."""
        return self._keyed("join", [other])

    def leftOuterJoin(self, other: "DStream", numPartitions: Optional[int] = None) -> "DStream":
        """As :meth:`join`, keeping keys only on this side with ``w = None``."""
        return self._keyed("left_outer_join", [other])

    def rightOuterJoin(self, other: "DStream", numPartitions: Optional[int] = None) -> "DStream":
        """As :meth:`join`, keeping keys only on the other side with ``v = None``."""
        return self._keyed("right_outer_join", [other])

    def fullOuterJoin(self, other: "DStream", numPartitions: Optional[int] = None) -> "DStream":
        """As :meth:`join`, keeping keys of either side, the missing one ``None``."""
        return self._keyed("full_outer_join", [other])

    # -- windows and slices -------------------------------------------------

    def slice(self, begin: Any, end: Any) -> List[RDD]:
        """The batches of this DStream between ``begin`` and ``end`` (datetimes
        or seconds since the epoch), both included, as RDDs. Needs
        ``ssc.remember(duration)`` before ``start()``: ember keeps batches for
        slicing only then."""
        return self._ssc._slice(self, begin, end)

    def window(self, windowDuration: float, slideDuration: Optional[float] = None) -> "DStream":
        """Each batch of the result holds the records of the last
        ``windowDuration`` seconds, every ``slideDuration`` seconds."""
        w = self._window_ms(windowDuration, slideDuration)
        return self._then("window", w, w["slide_ms"])

    def reduceByWindow(self, reduceFunc: Callable[[Any, Any], Any],
                       invReduceFunc: Optional[Callable[[Any, Any], Any]],
                       windowDuration: float, slideDuration: float) -> "DStream":
        """All records of each window folded with ``reduceFunc``; with
        ``invReduceFunc`` the window is updated incrementally."""
        w = self._window_ms(windowDuration, slideDuration)

        def fold(_: int, it: Iterable[Any]) -> List[Any]:
            it = iter(it)
            for first in it:
                return [_fold(reduceFunc, it, first)]
            return []

        args = {"func": reduceFunc, "inv": invReduceFunc, **w, "check": _lift.checking(),
                "func_native": self._lift(reduceFunc, 2, "reduceByWindow"),
                "inv_native": self._lift(invReduceFunc, 2, "reduceByWindow (inverse)")}
        if args["func_native"] is not None:
            return self._then("reduce_by_window", args, w["slide_ms"])
        return self._pipe(fold)._then("reduce_by_window", args, w["slide_ms"])

    def countByWindow(self, windowDuration: float, slideDuration: float) -> "DStream":
        """The number of records in each window."""
        w = self._window_ms(windowDuration, slideDuration)
        return self._then("count_by_window", w, w["slide_ms"])

    def countByValueAndWindow(self, windowDuration: float, slideDuration: float,
                              numPartitions: Optional[int] = None) -> "DStream":
        """Each distinct record of each window with its number of occurrences."""
        w = self._window_ms(windowDuration, slideDuration)
        return self._then("count_by_value_and_window", w, w["slide_ms"])

    def groupByKeyAndWindow(self, windowDuration: float, slideDuration: float,
                            numPartitions: Optional[int] = None) -> "DStream":
        """The values of each key over each window, as a ResultIterable."""
        w = self._window_ms(windowDuration, slideDuration)
        return self._then("group_by_key_and_window", w, w["slide_ms"]).mapValues(ResultIterable)

    def reduceByKeyAndWindow(self, func: Callable[[Any, Any], Any],
                             invFunc: Optional[Callable[[Any, Any], Any]],
                             windowDuration: float, slideDuration: Optional[float] = None,
                             numPartitions: Optional[int] = None,
                             filterFunc: Optional[Callable[[Any], bool]] = None) -> "DStream":
        """The values of each key over each window folded with ``func``. With
        ``invFunc`` the window is updated incrementally (values leaving are
        taken out with it) and ``filterFunc`` drops the keys it rejects."""
        w = self._window_ms(windowDuration, slideDuration)
        keep = filterFunc if invFunc else None
        args = {"func": func, "inv": invFunc, "filter": keep, **w, "check": _lift.checking(),
                "func_native": self._lift(func, 2, "reduceByKeyAndWindow"),
                "inv_native": self._lift(invFunc, 2, "reduceByKeyAndWindow (inverse)"),
                "filter_native": self._lift(keep, 1, "reduceByKeyAndWindow (filter)")}
        if args["func_native"] is not None:
            return self._then("reduce_by_key_and_window", args, w["slide_ms"])
        local = self._pipe(_combine_locally(_identity, func, "reduceByKeyAndWindow"))
        return local._then("reduce_by_key_and_window", args, w["slide_ms"])

    # -- state --------------------------------------------------------------

    def updateStateByKey(self, updateFunc: Callable[[List[Any], Optional[Any]], Optional[Any]],
                         numPartitions: Optional[int] = None, initialRDD: Any = None) -> "DStream":
        """Keeps a state per key across batches: every batch calls
        ``updateFunc(new_values, last_state)`` for each key with new values or
        a state, and the key's new state is the result (``None`` removes it)."""
        initial = _items(initialRDD)
        args = {"func": updateFunc, "initial": initial, "check": _lift.checking(),
                "func_native": self._lift(updateFunc, 2, "updateStateByKey")}
        return self._then("update_state_by_key", args)

    def mapWithState(self, spec: "StateSpec") -> "MapWithStateDStream":
        """Spark's ``mapWithState`` (not in PySpark): calls the spec's function
        ``f(key, value, state)`` for every record, keeping ``state`` per key
        (with an idle timeout if the spec has one), and gives what it returns."""
        return MapWithStateDStream(self, spec)


def _items(data: Any) -> Optional[List[Any]]:
    if data is None:
        return None
    if isinstance(data, RDD):
        return data.collect()
    return list(data)


class TransformedDStream(DStream):
    """The DStream :meth:`DStream.transform` returns."""

    def __init__(self, prev: DStream, func: Callable[[datetime, List[RDD]], Any]) -> None:
        prev._ssc._check_not_started()
        ssc = prev._ssc
        super().__init__(ssc, "transform", [prev], ssc._transform_args(func))


class MapWithStateDStream(DStream):
    """The DStream :meth:`DStream.mapWithState` returns: the mapped records,
    and :meth:`stateSnapshots` for the state of every key."""

    def __init__(self, prev: DStream, spec: "StateSpec") -> None:
        prev._ssc._check_not_started()
        super().__init__(prev._ssc, "map_with_state", [prev], spec._args())

    def stateSnapshots(self) -> DStream:
        """Every key with its state, after each batch."""
        return self._then("state_snapshots")
