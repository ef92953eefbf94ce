"""Entry points of the core API: configuration, the context, shared variables.

These mirror PySpark's ``SparkConf``, ``SparkContext``, ``Broadcast``,
``Accumulator`` and ``StorageLevel`` for programs run by ember.  Everything
lives in the driver process; RDDs are the eager, in-memory kind of
:mod:`ember.rdd`.
"""

from __future__ import annotations

import bisect
import glob
import getpass
import os
import re
import sys
import threading
import time
from typing import Any, ClassVar, Dict, Generic, Iterable, List, Optional, Tuple, TypeVar

from ember.rdd import RDD, _local_path

__all__ = [
    "SparkConf",
    "SparkContext",
    "Broadcast",
    "Accumulator",
    "AccumulatorParam",
    "StorageLevel",
]

T = TypeVar("T")

# Environment variables a launcher may set; read by SparkConf(loadDefaults=True).
_ENV_DEFAULTS = (("EMBER_MASTER", "spark.master"), ("EMBER_APP_NAME", "spark.app.name"))

_LOG_LEVELS = ("ALL", "DEBUG", "ERROR", "FATAL", "INFO", "OFF", "TRACE", "WARN")

# Hadoop's block size for the local file system, the upper bound of a text split.
_LOCAL_BLOCK_SIZE = 32 * 1024 * 1024

_LINE_END = re.compile(rb"\r\n|\r|\n")


class SparkConf:
    """Configuration of an application, as key-value pairs of strings.

    Parameters
    ----------
    loadDefaults : bool
        Whether to start from the settings a launcher passes in the
        environment: ``EMBER_MASTER`` becomes ``spark.master``,
        ``EMBER_APP_NAME`` becomes ``spark.app.name``, and each
        ``EMBER_CONF_<key>`` becomes ``<key>``.

    All setters return the conf itself, so calls can be chained.

    >>> conf = SparkConf(loadDefaults=False).setMaster("local[2]").setAppName("demo")
    >>> conf.get("spark.master")
    'local[2]'
    """

    def __init__(self, loadDefaults: bool = True, _jvm: Any = None, _jconf: Any = None):
        self._conf: Dict[str, str] = {}
        if loadDefaults:
            for variable, key in _ENV_DEFAULTS:
                value = os.environ.get(variable)
                if value:
                    self._conf[key] = value
            # The launcher's `--conf key=value` settings.
            for variable, value in os.environ.items():
                if variable.startswith("EMBER_CONF_"):
                    self._conf[variable[len("EMBER_CONF_"):]] = value

    def set(self, key: str, value: Any) -> "SparkConf":
        """Set ``key`` to ``str(value)``."""
        self._conf[key] = str(value)
        return self

    def setIfMissing(self, key: str, value: Any) -> "SparkConf":
        """Set ``key`` only if it has no value yet."""
        if key not in self._conf:
            self.set(key, value)
        return self

    def setAll(self, pairs: Iterable[Tuple[str, Any]]) -> "SparkConf":
        """Set every ``(key, value)`` pair in turn."""
        for key, value in pairs:
            self.set(key, value)
        return self

    def setMaster(self, value: str) -> "SparkConf":
        """Set the master URL, e.g. ``local[4]``."""
        return self.set("spark.master", value)

    def setAppName(self, value: str) -> "SparkConf":
        """Set the application's name."""
        return self.set("spark.app.name", value)

    def setSparkHome(self, value: str) -> "SparkConf":
        """Set ``spark.home`` (kept for compatibility; unused)."""
        return self.set("spark.home", value)

    def setExecutorEnv(
        self,
        key: Optional[str] = None,
        value: Optional[str] = None,
        pairs: Optional[List[Tuple[str, str]]] = None,
    ) -> "SparkConf":
        """Set executor environment variables, one or a list of pairs."""
        if (key is None) == (pairs is None):
            raise ValueError("Either pass one key-value pair or a list of pairs")
        for k, v in pairs if pairs is not None else [(key, value)]:
            self.set("spark.executorEnv." + str(k), v)
        return self

    def get(self, key: str, defaultValue: Optional[str] = None) -> Optional[str]:
        """The value of ``key``, or ``defaultValue`` if it is not set."""
        return self._conf.get(key, defaultValue)

    def getAll(self) -> List[Tuple[str, str]]:
        """Every setting as a list of ``(key, value)`` pairs."""
        return list(self._conf.items())

    def contains(self, key: str) -> bool:
        """Whether ``key`` is set."""
        return key in self._conf

    def toDebugString(self) -> str:
        """The settings as ``key=value`` lines, sorted by key."""
        return "\n".join(f"{k}={v}" for k, v in sorted(self._conf.items()))

    def _copy(self) -> "SparkConf":
        twin = SparkConf(loadDefaults=False)
        twin._conf = dict(self._conf)
        return twin


class StorageLevel:
    """Where and how an RDD would be stored (recorded, never acted on).

    The usual levels are class attributes, e.g. ``StorageLevel.MEMORY_ONLY``.
    """

    DISK_ONLY: ClassVar["StorageLevel"]
    DISK_ONLY_2: ClassVar["StorageLevel"]
    DISK_ONLY_3: ClassVar["StorageLevel"]
    MEMORY_ONLY: ClassVar["StorageLevel"]
    MEMORY_ONLY_2: ClassVar["StorageLevel"]
    MEMORY_AND_DISK: ClassVar["StorageLevel"]
    MEMORY_AND_DISK_2: ClassVar["StorageLevel"]
    MEMORY_AND_DISK_DESER: ClassVar["StorageLevel"]
    OFF_HEAP: ClassVar["StorageLevel"]
    MEMORY_ONLY_SER: ClassVar["StorageLevel"]
    MEMORY_ONLY_SER_2: ClassVar["StorageLevel"]
    MEMORY_AND_DISK_SER: ClassVar["StorageLevel"]
    MEMORY_AND_DISK_SER_2: ClassVar["StorageLevel"]

    def __init__(
        self, useDisk: bool, useMemory: bool, useOffHeap: bool, deserialized: bool, replication: int = 1
    ):
        self.useDisk = useDisk
        self.useMemory = useMemory
        self.useOffHeap = useOffHeap
        self.deserialized = deserialized
        self.replication = replication

    def _fields(self) -> Tuple[bool, bool, bool, bool, int]:
        return (self.useDisk, self.useMemory, self.useOffHeap, self.deserialized, self.replication)

    def __repr__(self) -> str:
        return "StorageLevel({}, {}, {}, {}, {})".format(*self._fields())

    def __str__(self) -> str:
        words = [name for name, on in (("Disk", self.useDisk), ("Memory", self.useMemory),
                                       ("OffHeap", self.useOffHeap)) if on]
        words.append("Deserialized" if self.deserialized else "Serialized")
        words.append(f"{self.replication}x Replicated")
        return " ".join(words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorageLevel) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())


StorageLevel.DISK_ONLY = StorageLevel(True, False, False, False)
StorageLevel.DISK_ONLY_2 = StorageLevel(True, False, False, False, 2)
StorageLevel.DISK_ONLY_3 = StorageLevel(True, False, False, False, 3)
StorageLevel.MEMORY_ONLY = StorageLevel(False, True, False, False)
StorageLevel.MEMORY_ONLY_2 = StorageLevel(False, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK = StorageLevel(True, True, False, False)
StorageLevel.MEMORY_AND_DISK_2 = StorageLevel(True, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK_DESER = StorageLevel(True, True, False, True)
StorageLevel.OFF_HEAP = StorageLevel(True, True, True, False, 1)
# Python data is always stored serialized, so the _SER names are aliases.
StorageLevel.MEMORY_ONLY_SER = StorageLevel.MEMORY_ONLY
StorageLevel.MEMORY_ONLY_SER_2 = StorageLevel.MEMORY_ONLY_2
StorageLevel.MEMORY_AND_DISK_SER = StorageLevel.MEMORY_AND_DISK
StorageLevel.MEMORY_AND_DISK_SER_2 = StorageLevel.MEMORY_AND_DISK_2


class Broadcast(Generic[T]):
    """A read-only value shared with every task, made by
    :meth:`SparkContext.broadcast`.  Read it through :attr:`value`."""

    def __init__(self, value: T, bid: int = 0):
        self._value = value
        self._bid = bid
        self._destroyed = False

    @property
    def value(self) -> T:
        """The broadcast value."""
        return self._value

    def unpersist(self, blocking: bool = False) -> None:
        """Drop cached copies on executors; a no-op here."""

    def destroy(self, blocking: bool = False) -> None:
        """Release the value for good (recorded; the driver keeps its copy)."""
        self._destroyed = True


class AccumulatorParam(Generic[T]):
    """How an :class:`Accumulator` adds values: a subclass supplies
    :meth:`zero` and :meth:`addInPlace`."""

    def zero(self, value: T) -> T:
        """The identity of :meth:`addInPlace` for values like ``value``."""
        raise NotImplementedError

    def addInPlace(self, value1: T, value2: T) -> T:
        """Add ``value2`` to ``value1`` (in place if it is mutable) and return the sum."""
        raise NotImplementedError


class _NumberParam(AccumulatorParam[Any]):
    def __init__(self, zero_value: Any):
        self._zero = zero_value

    def zero(self, value: Any) -> Any:
        return self._zero

    def addInPlace(self, value1: Any, value2: Any) -> Any:
        return value1 + value2


class Accumulator(Generic[T]):
    """A shared variable that tasks can only add to, made by
    :meth:`SparkContext.accumulator`.

    ``add`` and ``+=`` may be used from several threads at once.

    >>> acc = Accumulator(0, 1)
    >>> acc += 2
    >>> acc.add(3)
    >>> acc.value
    6
    """

    def __init__(self, aid: int, value: T, accum_param: Optional[AccumulatorParam[T]] = None):
        if accum_param is None:
            accum_param = _default_param(value)
        self.aid = aid
        self.accum_param = accum_param
        self._value = value
        self._lock = threading.Lock()

    @property
    def value(self) -> T:
        """The accumulated value."""
        with self._lock:
            return self._value

    @value.setter
    def value(self, value: T) -> None:
        with self._lock:
            self._value = value

    def add(self, term: T) -> None:
        """Add ``term`` to the accumulated value."""
        with self._lock:
            self._value = self.accum_param.addInPlace(self._value, term)

    def __iadd__(self, term: T) -> "Accumulator[T]":
        self.add(term)
        return self

    def __str__(self) -> str:
        return str(self.value)

    def __repr__(self) -> str:
        return f"Accumulator<id={self.aid}, value={self.value}>"


def _default_param(value: Any) -> AccumulatorParam[Any]:
    for kind in (int, float, complex):
        if isinstance(value, kind):
            return _NumberParam(kind(0))
    raise TypeError(f"No default accumulator param for type {type(value)}; pass accum_param")


class SparkContext:
    """The entry point of an application: makes RDDs and shared variables.

    Parameters
    ----------
    master : str, optional
        Master URL such as ``local[4]``.  When absent, ``spark.master`` of
        ``conf`` is used, then the environment variable ``EMBER_MASTER``,
        then ``local[*]``.
    appName : str, optional
        The application's name.  When absent, ``spark.app.name`` of
        ``conf`` is used, then ``EMBER_APP_NAME``, then the script's name.
    sparkHome, pyFiles, environment, batchSize, serializer
        Accepted for compatibility with PySpark and ignored.
    conf : :class:`SparkConf`, optional
        Further settings.

    Only one context may be active at a time; :meth:`stop` ends it.  A
    context is also a context manager that stops itself on exit.
    """

    _active_spark_context: ClassVar[Optional["SparkContext"]] = None
    _lock: ClassVar[Any] = threading.RLock()
    _next_id: ClassVar[int] = 0

    def __init__(
        self,
        master: Optional[str] = None,
        appName: Optional[str] = None,
        sparkHome: Optional[str] = None,
        pyFiles: Optional[List[str]] = None,
        environment: Optional[Dict[str, Any]] = None,
        batchSize: int = 0,
        serializer: Any = None,
        conf: Optional[SparkConf] = None,
        **ignored: Any,
    ):
        with SparkContext._lock:
            active = SparkContext._active_spark_context
            if active is not None:
                raise ValueError(
                    "Cannot run multiple SparkContexts at once; existing "
                    f"SparkContext(app={active.appName}, master={active.master}) is still running"
                )
            self._conf = conf._copy() if conf is not None else SparkConf()
            self.master: str = (
                master or self._conf.get("spark.master") or os.environ.get("EMBER_MASTER") or "local[*]"
            )
            self.appName: str = (
                appName
                or self._conf.get("spark.app.name")
                or os.environ.get("EMBER_APP_NAME")
                or os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "")
                or "ember"
            )
            self._conf.set("spark.master", self.master).set("spark.app.name", self.appName)
            self.environment: Dict[str, Any] = dict(environment or {})
            self.startTime: int = int(time.time() * 1000)
            self._log_level: Optional[str] = None
            self._checkpoint_dir: Optional[str] = None
            self._local_properties: Dict[str, str] = {}
            SparkContext._active_spark_context = self

    @classmethod
    def getOrCreate(cls, conf: Optional[SparkConf] = None) -> "SparkContext":
        """Return the active context, creating one from ``conf`` if there is none."""
        with cls._lock:
            if cls._active_spark_context is None:
                cls(conf=conf or SparkConf())
            assert cls._active_spark_context is not None
            return cls._active_spark_context

    def __repr__(self) -> str:
        return f"<SparkContext master={self.master} appName={self.appName}>"

    def __enter__(self) -> "SparkContext":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop this context so another one may be created."""
        with SparkContext._lock:
            if SparkContext._active_spark_context is self:
                SparkContext._active_spark_context = None

    # ------------------------------------------------------------------
    # Information
    # ------------------------------------------------------------------

    @property
    def defaultParallelism(self) -> int:
        """Partitions used when none are asked for: ``spark.default.parallelism``
        if set, else the number of cores of the master (``N`` for
        ``local[N]``, 1 for ``local``, every CPU for ``local[*]``)."""
        configured = self._conf.get("spark.default.parallelism")
        if configured is not None:
            return int(configured)
        return _master_cores(self.master)

    @property
    def defaultMinPartitions(self) -> int:
        """Minimum partitions for :meth:`textFile`: at most 2."""
        return min(self.defaultParallelism, 2)

    @property
    def version(self) -> str:
        """The version of the engine: ``"ember"``."""
        return "ember"

    @property
    def uiWebUrl(self) -> Optional[str]:
        """Always ``None``: this context serves no web UI of its own."""
        return None

    @property
    def applicationId(self) -> str:
        """An identifier of the application, ``local-<start time in ms>``."""
        return f"local-{self.startTime}"

    def sparkUser(self) -> str:
        """The name of the user running the application."""
        try:
            return getpass.getuser()
        except Exception:  # pragma: no cover - no user database
            return os.environ.get("USER", "")

    def getConf(self) -> SparkConf:
        """A copy of this context's configuration."""
        return self._conf._copy()

    def setLogLevel(self, logLevel: str) -> None:
        """Record the log level (one of Spark's: ALL, DEBUG, ERROR, FATAL,
        INFO, OFF, TRACE, WARN); nothing else changes."""
        level = str(logLevel).upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"Supplied level {logLevel} did not match one of: {','.join(_LOG_LEVELS)}")
        self._log_level = level

    def setCheckpointDir(self, dirName: str) -> None:
        """Set the directory for checkpoints, creating it if needed."""
        os.makedirs(_local_path(dirName), exist_ok=True)
        self._checkpoint_dir = dirName

    def getCheckpointDir(self) -> Optional[str]:
        """The directory given to :meth:`setCheckpointDir`, or ``None``."""
        return self._checkpoint_dir

    def setLocalProperty(self, key: str, value: Optional[str]) -> None:
        """Set (or with ``None`` remove) a property of this thread's jobs."""
        if value is None:
            self._local_properties.pop(key, None)
        else:
            self._local_properties[key] = value

    def getLocalProperty(self, key: str) -> Optional[str]:
        """A property set with :meth:`setLocalProperty`, or ``None``."""
        return self._local_properties.get(key)

    def setJobDescription(self, value: str) -> None:
        """Describe the jobs that follow (recorded only)."""
        self.setLocalProperty("spark.job.description", value)

    def setJobGroup(self, groupId: str, description: str, interruptOnCancel: bool = False) -> None:
        """Put the jobs that follow in a group (recorded only)."""
        self.setLocalProperty("spark.jobGroup.id", groupId)
        self.setJobDescription(description)

    # ------------------------------------------------------------------
    # RDDs
    # ------------------------------------------------------------------

    def parallelize(self, c: Iterable[T], numSlices: Optional[int] = None) -> RDD[T]:
        """Distribute a local collection as an RDD of ``numSlices`` partitions
        (default :attr:`defaultParallelism`).

        Slice ``i`` of ``n`` items in ``k`` slices is
        ``items[i * n // k : (i + 1) * n // k]``, as in Spark.

        >>> with SparkContext("local[2]", "doc", conf=SparkConf(False)) as sc:
        ...     sc.parallelize(range(5), 2).glom().collect()
        [[0, 1], [2, 3, 4]]
        """
        slices = self.defaultParallelism if numSlices is None else int(numSlices)
        return RDD._from_items(c, slices, self)

    def range(
        self, start: int, end: Optional[int] = None, step: int = 1, numSlices: Optional[int] = None
    ) -> RDD[int]:
        """An RDD of ``range(start, end, step)``; with one argument,
        ``range(0, start)``."""
        if end is None:
            start, end = 0, start
        return self.parallelize(range(start, end, step), numSlices)

    def emptyRDD(self) -> RDD[Any]:
        """An RDD with no partitions and no records."""
        return RDD([], self)

    def union(self, rdds: List[RDD[Any]]) -> RDD[Any]:
        """The partitions of every RDD in ``rdds``, one after another."""
        return RDD([p for rdd in rdds for p in rdd._parts], self)

    def broadcast(self, value: T) -> Broadcast[T]:
        """Share a read-only ``value`` with every task."""
        return Broadcast(value, self._new_id())

    def accumulator(self, value: T, accum_param: Optional[AccumulatorParam[T]] = None) -> Accumulator[T]:
        """An :class:`Accumulator` starting at ``value``.

        Numbers (int, float, complex) add with ``+``; other values need an
        ``accum_param`` with ``addInPlace``.
        """
        return Accumulator(self._new_id(), value, accum_param)

    def textFile(self, name: str, minPartitions: Optional[int] = None, use_unicode: bool = True) -> RDD[Any]:
        """The lines of a text file, or of every file in a directory, without
        their line endings (``\\n``, ``\\r\\n`` or ``\\r``).

        ``name`` may hold several comma-separated paths and glob patterns.
        In a directory, files whose names start with ``_`` or ``.`` are
        skipped.  Files are split into partitions as Hadoop splits them: by
        bytes into about ``minPartitions`` pieces (default
        :attr:`defaultMinPartitions`), a line belonging to the piece in which
        it starts.  With ``use_unicode=False`` the lines are UTF-8 bytes.
        """
        files = _input_files(name)
        wanted = self.defaultMinPartitions if minPartitions is None else minPartitions
        contents = []
        for path in files:
            with open(path, "rb") as f:
                contents.append(f.read())
        goal = sum(len(c) for c in contents) // max(wanted, 1)
        split_size = max(1, min(goal, _LOCAL_BLOCK_SIZE))
        partitions: List[List[Any]] = []
        for data in contents:
            for piece in _split_lines(data, split_size):
                partitions.append([line.decode("utf-8", "replace") if use_unicode else line for line in piece])
        return RDD(partitions, self)

    def _new_id(self) -> int:
        with SparkContext._lock:
            SparkContext._next_id += 1
            return SparkContext._next_id - 1


def _master_cores(master: str) -> int:
    cpus = os.cpu_count() or 1
    if master == "local":
        return 1
    local = re.fullmatch(r"local\[\s*(\*|\d+)\s*(?:,\s*\d+\s*)?\]", master)
    if local:
        return cpus if local.group(1) == "*" else int(local.group(1))
    cluster = re.fullmatch(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*\d+\s*\]", master)
    if cluster:
        return int(cluster.group(1)) * int(cluster.group(2))
    return cpus


def _input_files(name: str) -> List[str]:
    """The files that a ``textFile`` path names, in order."""
    files: List[str] = []
    for raw in name.split(","):
        path = _local_path(raw.strip())
        matches = sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]
        if not matches or not os.path.exists(matches[0]):
            raise FileNotFoundError(f"Input path does not exist: {raw.strip()}")
        for match in matches:
            if os.path.isdir(match):
                for entry in sorted(os.listdir(match)):
                    full = os.path.join(match, entry)
                    if not entry.startswith(("_", ".")) and os.path.isfile(full):
                        files.append(full)
            else:
                files.append(match)
    return files


def _split_lines(data: bytes, split_size: int) -> List[List[bytes]]:
    """Cut one file's bytes into Hadoop's splits and give each its lines.

    Splits are ``split_size`` bytes long, the last one up to 10% longer; an
    empty file still makes one (empty) split.  A line starting at byte
    ``s > 0`` belongs to the split with ``start < s <= end``, the first line
    to the first split, as Hadoop's line reader decides.
    """
    size = len(data)
    ends: List[int] = []
    start = 0
    while (size - start) / split_size > 1.1:
        start += split_size
        ends.append(start)
    if size > start or not ends:
        ends.append(size)
    pieces: List[List[bytes]] = [[] for _ in ends]
    pos = 0
    for match in _LINE_END.finditer(data):
        pieces[bisect.bisect_left(ends, pos)].append(data[pos : match.start()])
        pos = match.end()
    if pos < size:
        pieces[bisect.bisect_left(ends, pos)].append(data[pos:])
    return pieces
