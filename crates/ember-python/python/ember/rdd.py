"""Eager, in-memory resilient distributed datasets.

An :class:`RDD` here is the per-batch dataset that ``foreachRDD`` and
``transform`` hand to user code.  Its partitions are plain Python lists held
in this process, and every transformation is computed at once, but names,
signatures and results follow PySpark's ``pyspark.RDD``.

Shuffles (``reduceByKey``, ``groupByKey``, joins, ``distinct``, ...) group
keys by Python equality and send each key to the partition
``partitionFunc(key) % numPartitions``.  The default partition function,
:func:`stable_hash`, gives the same answer in every process, so results are
deterministic.  Inside a shuffled partition, keys keep the order in which
they first occurred.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import itertools
import math
import operator
import os
import zlib
from collections import defaultdict
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
)

if TYPE_CHECKING:
    from ember.context import SparkContext, StorageLevel

__all__ = ["RDD", "ResultIterable", "stable_hash", "portable_hash"]

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K")
V = TypeVar("V")

_MASK = (1 << 64) - 1


def stable_hash(key: Any) -> int:
    """Return a hash of ``key`` that is the same in every Python process.

    Numbers, booleans and ``None`` hash with :func:`hash` (which is not
    randomised for them), so ``1``, ``1.0`` and ``True`` hash alike, as they
    compare equal.  Strings (as UTF-8) and bytes hash with CRC-32, tuples
    combine their elements' hashes in order, and frozensets combine them
    regardless of order.  Any other object falls back to :func:`hash`.

    >>> stable_hash("a") == stable_hash("a")
    True
    >>> stable_hash(1) == stable_hash(1.0) == stable_hash(True)
    True
    """
    if key is None:
        return 0
    if isinstance(key, (bool, int)):
        return hash(key)
    if isinstance(key, float):
        return 0 if math.isnan(key) else hash(key)
    if isinstance(key, str):
        return zlib.crc32(key.encode("utf-8", "surrogatepass"))
    if isinstance(key, (bytes, bytearray, memoryview)):
        return zlib.crc32(key)
    if isinstance(key, tuple):
        h = 0x345678
        for item in key:
            h = ((h * 1000003) ^ (stable_hash(item) & _MASK)) & _MASK
        return h ^ len(key)
    if isinstance(key, frozenset):
        return sum(stable_hash(item) & _MASK for item in key) & _MASK
    return hash(key)


#: PySpark's name for the default partition function.
portable_hash = stable_hash


class ResultIterable(Generic[T]):
    """The values that share one key after ``groupByKey`` or ``cogroup``.

    It can be iterated any number of times and has a length; the values
    themselves are in the list :attr:`data`.
    """

    def __init__(self, data: List[T]):
        self.data = data

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


_rdd_ids = itertools.count()


class RDD(Generic[T]):
    """A dataset split into partitions, each a Python list.

    Parameters
    ----------
    partitions : list of list
        The records, partition by partition.
    ctx : :class:`ember.context.SparkContext`, optional
        The context the dataset belongs to.

    Notes
    -----
    Unlike PySpark's, this RDD is computed eagerly: each transformation
    builds its result when called.  An RDD is always true in a boolean
    context, whatever it holds; use :meth:`isEmpty` to test for records.
    """

    def __init__(self, partitions: Iterable[Iterable[T]], ctx: Optional["SparkContext"] = None):
        self._parts: List[List[T]] = [list(p) for p in partitions]
        self.ctx = ctx
        self._id = next(_rdd_ids)
        self._name: Optional[str] = None
        self._storage_level: Optional["StorageLevel"] = None
        self.is_cached = False
        self.is_checkpointed = False

    @classmethod
    def _from_items(cls, items: Iterable[T], num_partitions: int, ctx: Optional["SparkContext"] = None) -> "RDD[T]":
        """Split ``items`` into ``num_partitions`` slices where Spark would.

        Slice ``i`` holds ``items[i * n // k : (i + 1) * n // k]`` for ``n``
        items and ``k`` slices.
        """
        if num_partitions <= 0:
            raise ValueError(f"Positive number of partitions required, got {num_partitions}")
        data = list(items)
        n, k = len(data), num_partitions
        return cls([data[(i * n) // k : ((i + 1) * n) // k] for i in range(k)], ctx)

    def _new(self, partitions: Iterable[Iterable[U]]) -> "RDD[U]":
        return RDD(partitions, self.ctx)

    def _items(self) -> Iterator[T]:
        return itertools.chain.from_iterable(self._parts)

    def __repr__(self) -> str:
        n = len(self._parts)
        return f"RDD[{n} partition{'' if n == 1 else 's'}]"

    # ------------------------------------------------------------------
    # Identity and housekeeping
    # ------------------------------------------------------------------

    @property
    def context(self) -> Optional["SparkContext"]:
        """The :class:`SparkContext` this RDD was created on."""
        return self.ctx

    def id(self) -> int:
        """A number unique to this RDD within the process."""
        return self._id

    def getNumPartitions(self) -> int:
        """Return the number of partitions.

        >>> RDD([[1], [2, 3]]).getNumPartitions()
        2
        """
        return len(self._parts)

    def setName(self, name: str) -> "RDD[T]":
        """Give this RDD a name and return it."""
        self._name = name
        return self

    def name(self) -> Optional[str]:
        """The name given with :meth:`setName`, or ``None``."""
        return self._name

    def cache(self) -> "RDD[T]":
        """Mark the RDD as cached in memory (it already is); return it."""
        from ember.context import StorageLevel

        return self.persist(StorageLevel.MEMORY_ONLY)

    def persist(self, storageLevel: Optional["StorageLevel"] = None) -> "RDD[T]":
        """Record a storage level; the data stays in memory either way."""
        from ember.context import StorageLevel

        self._storage_level = storageLevel or StorageLevel.MEMORY_ONLY
        self.is_cached = True
        return self

    def unpersist(self, blocking: bool = False) -> "RDD[T]":
        """Forget the storage level set by :meth:`persist`; return the RDD."""
        self._storage_level = None
        self.is_cached = False
        return self

    def getStorageLevel(self) -> "StorageLevel":
        """The storage level set by :meth:`persist`, else one of no storage."""
        from ember.context import StorageLevel

        return self._storage_level or StorageLevel(False, False, False, False, 1)

    def checkpoint(self) -> None:
        """Mark the RDD as checkpointed; there is no lineage to cut."""
        self.is_checkpointed = True

    def localCheckpoint(self) -> None:
        """Same as :meth:`checkpoint`."""
        self.is_checkpointed = True

    def isCheckpointed(self) -> bool:
        """Whether :meth:`checkpoint` was called."""
        return self.is_checkpointed

    def getCheckpointFile(self) -> Optional[str]:
        """Always ``None``: nothing is written for checkpoints."""
        return None

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def toDF(self, schema: Any = None, sampleRatio: Optional[float] = None) -> Any:
        """This batch as a DataFrame (``ember.sql``, the ``sql`` extra): the
        same as ``SparkSession.builder.getOrCreate().createDataFrame(self,
        schema)``; ``schema`` may be a list of column names."""
        from ember.sql import SparkSession

        return SparkSession.active().createDataFrame(self, schema)

    def collect(self) -> List[T]:
        """Return every record as a list, partition by partition.

        >>> RDD([[1, 2], [3]]).collect()
        [1, 2, 3]
        """
        return list(self._items())

    def toLocalIterator(self, prefetchPartitions: bool = False) -> Iterator[T]:
        """Return an iterator over every record."""
        return iter(self.collect())

    def take(self, num: int) -> List[T]:
        """Return the first ``num`` records.

        >>> RDD([[1, 2], [3]]).take(2)
        [1, 2]
        """
        return list(itertools.islice(self._items(), max(num, 0)))

    def first(self) -> T:
        """Return the first record; raise :class:`ValueError` if there is none."""
        head = self.take(1)
        if not head:
            raise ValueError("RDD is empty")
        return head[0]

    def count(self) -> int:
        """Return the number of records."""
        return sum(len(p) for p in self._parts)

    def isEmpty(self) -> bool:
        """Return whether the RDD holds no records."""
        return all(not p for p in self._parts)

    def reduce(self, f: Callable[[T, T], T]) -> T:
        """Combine the records with the associative, commutative ``f``.

        Each partition is reduced on its own, then the partial results.
        Raises :class:`ValueError` when the RDD is empty.

        >>> RDD([[1, 2], [3, 4]]).reduce(lambda a, b: a + b)
        10
        """
        partials = [_reduce_list(f, p) for p in self._parts if p]
        if not partials:
            raise ValueError("Can not reduce() empty RDD")
        return _reduce_list(f, partials)

    def fold(self, zeroValue: T, op: Callable[[T, T], T]) -> T:
        """Fold each partition from ``zeroValue``, then fold the results.

        As in Spark, ``zeroValue`` is used once per partition and once more
        for the final fold, so it should be the identity of ``op``.

        >>> RDD([[1, 2], [3]]).fold(0, lambda a, b: a + b)
        6
        """
        acc = copy.deepcopy(zeroValue)
        for part in self._parts:
            local = copy.deepcopy(zeroValue)
            for x in part:
                local = op(local, x)
            acc = op(acc, local)
        return acc

    def aggregate(self, zeroValue: U, seqOp: Callable[[U, T], U], combOp: Callable[[U, U], U]) -> U:
        """Fold each partition with ``seqOp``, then merge with ``combOp``.

        Both start from a fresh copy of ``zeroValue``.

        >>> RDD([[1, 2], [3]]).aggregate((0, 0), lambda a, x: (a[0] + x, a[1] + 1),
        ...                              lambda a, b: (a[0] + b[0], a[1] + b[1]))
        (6, 3)
        """
        acc = copy.deepcopy(zeroValue)
        for part in self._parts:
            local = copy.deepcopy(zeroValue)
            for x in part:
                local = seqOp(local, x)
            acc = combOp(acc, local)
        return acc

    def sum(self) -> Any:
        """Return the sum of the records (``0`` for an empty RDD)."""
        return self.mapPartitions(lambda it: [sum(it)]).fold(0, operator.add)

    def max(self, key: Optional[Callable[[T], Any]] = None) -> T:
        """Return the largest record, compared by ``key`` if given."""
        if key is None:
            return self.reduce(max)
        return self.reduce(lambda a, b: max(a, b, key=key))

    def min(self, key: Optional[Callable[[T], Any]] = None) -> T:
        """Return the smallest record, compared by ``key`` if given."""
        if key is None:
            return self.reduce(min)
        return self.reduce(lambda a, b: min(a, b, key=key))

    def mean(self) -> float:
        """Return the mean of the records.

        It is computed as Spark does, as a running mean per partition merged
        across partitions, so an RDD whose partitions are all empty gives
        ``0.0``; one with no partitions at all raises :class:`ValueError`.
        """
        if not self._parts:
            raise ValueError("Can not reduce() empty RDD")
        count, mu = 0, 0.0
        for part in self._parts:
            n, m = 0, 0.0
            for x in part:
                n += 1
                m += (x - m) / n
            count, mu = _merge_means(count, mu, n, m)
        return mu

    def countByValue(self) -> Dict[T, int]:
        """Return how many times each distinct record occurs.

        >>> dict(RDD([[1, 2], [1]]).countByValue())
        {1: 2, 2: 1}
        """
        counts: Dict[T, int] = defaultdict(int)
        for x in self._items():
            counts[x] += 1
        return counts

    def countByKey(self) -> Dict[K, int]:
        """Return how many records each key of a pair RDD has."""
        return self.map(lambda kv: kv[0]).countByValue()

    def collectAsMap(self) -> Dict[K, V]:
        """Return the pairs as a dict; later pairs win for a repeated key."""
        return dict(self._items())

    def lookup(self, key: K) -> List[V]:
        """Return the values paired with ``key``, in order."""
        return [kv[1] for kv in self._items() if kv[0] == key]

    def foreach(self, f: Callable[[T], Any]) -> None:
        """Call ``f`` on every record."""
        for x in self._items():
            f(x)

    def foreachPartition(self, f: Callable[[Iterator[T]], Any]) -> None:
        """Call ``f`` once per partition with an iterator over its records."""
        for part in self._parts:
            f(iter(part))

    def takeOrdered(self, num: int, key: Optional[Callable[[T], Any]] = None) -> List[T]:
        """Return the ``num`` smallest records in ascending order.

        >>> RDD([[5, 1], [4, 2]]).takeOrdered(2)
        [1, 2]
        """
        return heapq.nsmallest(num, self._items(), key=key)

    def top(self, num: int, key: Optional[Callable[[T], Any]] = None) -> List[T]:
        """Return the ``num`` largest records in descending order.

        >>> RDD([[5, 1], [4, 2]]).top(2)
        [5, 4]
        """
        return heapq.nlargest(num, self._items(), key=key)

    def saveAsTextFile(self, path: str, compressionCodecClass: Optional[str] = None) -> None:
        """Write the RDD as text, one file per partition.

        ``path`` becomes a new directory holding ``part-00000``,
        ``part-00001``, ... with one record per line (``str(record)``; bytes
        are written unchanged) and an empty ``_SUCCESS`` file.  As in Spark,
        it is an error if ``path`` already exists.  Compression is not
        supported.
        """
        if compressionCodecClass is not None:
            raise NotImplementedError("saveAsTextFile does not support compression codecs")
        target = _local_path(path)
        if os.path.exists(target):
            raise FileExistsError(f"Output directory {path} already exists")
        os.makedirs(target)
        for index, part in enumerate(self._parts):
            with open(os.path.join(target, f"part-{index:05d}"), "wb") as out:
                for x in part:
                    if isinstance(x, (bytes, bytearray)):
                        out.write(x)
                    else:
                        out.write(str(x).encode("utf-8"))
                    out.write(b"\n")
        open(os.path.join(target, "_SUCCESS"), "wb").close()

    # ------------------------------------------------------------------
    # Narrow transformations
    # ------------------------------------------------------------------

    def map(self, f: Callable[[T], U], preservesPartitioning: bool = False) -> "RDD[U]":
        """Apply ``f`` to every record.

        >>> RDD([[1, 2], [3]]).map(lambda x: x * 10).glom().collect()
        [[10, 20], [30]]
        """
        return self._new([f(x) for x in p] for p in self._parts)

    def flatMap(self, f: Callable[[T], Iterable[U]], preservesPartitioning: bool = False) -> "RDD[U]":
        """Apply ``f`` to every record and flatten the iterables it returns."""
        return self._new([y for x in p for y in f(x)] for p in self._parts)

    def filter(self, f: Callable[[T], bool]) -> "RDD[T]":
        """Keep the records for which ``f`` is true."""
        return self._new([x for x in p if f(x)] for p in self._parts)

    def mapPartitions(
        self, f: Callable[[Iterator[T]], Iterable[U]], preservesPartitioning: bool = False
    ) -> "RDD[U]":
        """Replace each partition by ``f`` of an iterator over it."""
        return self._new(list(f(iter(p))) for p in self._parts)

    def mapPartitionsWithIndex(
        self, f: Callable[[int, Iterator[T]], Iterable[U]], preservesPartitioning: bool = False
    ) -> "RDD[U]":
        """Like :meth:`mapPartitions`, with the partition's index first."""
        return self._new(list(f(i, iter(p))) for i, p in enumerate(self._parts))

    def glom(self) -> "RDD[List[T]]":
        """Turn each partition into a single record, the list of its records.

        >>> RDD([[1, 2], [3]]).glom().collect()
        [[1, 2], [3]]
        """
        return self._new([list(p)] for p in self._parts)

    def mapValues(self, f: Callable[[V], U]) -> "RDD[Tuple[K, U]]":
        """Apply ``f`` to the value of every pair, keeping the key."""
        return self.map(lambda kv: (kv[0], f(kv[1])))

    def flatMapValues(self, f: Callable[[V], Iterable[U]]) -> "RDD[Tuple[K, U]]":
        """Pair the key with each value of the iterable ``f`` returns."""
        return self.flatMap(lambda kv: [(kv[0], u) for u in f(kv[1])])

    def keys(self) -> "RDD[K]":
        """The key of every pair."""
        return self.map(lambda kv: kv[0])

    def values(self) -> "RDD[V]":
        """The value of every pair."""
        return self.map(lambda kv: kv[1])

    def keyBy(self, f: Callable[[T], K]) -> "RDD[Tuple[K, T]]":
        """Pair every record with the key ``f`` computes from it."""
        return self.map(lambda x: (f(x), x))

    def union(self, other: "RDD[U]") -> "RDD[Any]":
        """This RDD's partitions followed by ``other``'s."""
        return self._new(self._parts + other._parts)

    def __add__(self, other: "RDD[U]") -> "RDD[Any]":
        if not isinstance(other, RDD):
            return NotImplemented
        return self.union(other)

    def cartesian(self, other: "RDD[U]") -> "RDD[Tuple[T, U]]":
        """Every pair ``(a, b)`` of a record of this RDD and one of ``other``.

        Partition ``i * m + j`` pairs partition ``i`` of this RDD with
        partition ``j`` of ``other`` (which has ``m`` partitions).
        """
        return self._new([(a, b) for a in p for b in q] for p in self._parts for q in other._parts)

    def zipWithIndex(self) -> "RDD[Tuple[T, int]]":
        """Pair every record with its position in the RDD.

        >>> RDD([["a"], ["b", "c"]]).zipWithIndex().collect()
        [('a', 0), ('b', 1), ('c', 2)]
        """
        counter = itertools.count()
        return self._new([(x, next(counter)) for x in p] for p in self._parts)

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> "RDD[T]":
        """Reduce the number of partitions to ``numPartitions``.

        Without ``shuffle``, neighbouring partitions are merged and the
        count never grows; with it, this is :meth:`repartition`.
        """
        if shuffle:
            return self.repartition(numPartitions)
        m = len(self._parts)
        if numPartitions <= 0:
            raise ValueError(f"Number of partitions ({numPartitions}) must be positive.")
        if numPartitions >= m:
            return self._new(self._parts)
        groups = (self._parts[(j * m) // numPartitions : ((j + 1) * m) // numPartitions] for j in range(numPartitions))
        return self._new(list(itertools.chain.from_iterable(g)) for g in groups)

    def repartition(self, numPartitions: int) -> "RDD[T]":
        """Spread the records evenly over ``numPartitions`` partitions, in order."""
        return RDD._from_items(self._items(), numPartitions, self.ctx)

    # ------------------------------------------------------------------
    # Shuffles
    # ------------------------------------------------------------------

    def _default_reduce_partitions(self) -> int:
        ctx = self.ctx
        if ctx is not None and ctx.getConf().contains("spark.default.parallelism"):
            return ctx.defaultParallelism
        return len(self._parts)

    def _place(
        self,
        pairs: Iterable[Tuple[K, V]],
        numPartitions: Optional[int],
        partitionFunc: Callable[[K], int],
    ) -> "RDD[Tuple[K, V]]":
        """Send every pair to partition ``partitionFunc(key) % n``, in order."""
        n = self._default_reduce_partitions() if numPartitions is None else numPartitions
        parts: List[List[Tuple[K, V]]] = [[] for _ in range(n)]
        for kv in pairs:
            if n == 0:
                raise ValueError("Number of partitions must be positive")
            parts[partitionFunc(kv[0]) % n].append(kv)
        return self._new(parts)

    def partitionBy(
        self, numPartitions: Optional[int], partitionFunc: Callable[[K], int] = stable_hash
    ) -> "RDD[Tuple[K, V]]":
        """Move every pair to partition ``partitionFunc(key) % numPartitions``."""
        return self._place(self._items(), numPartitions, partitionFunc)

    def combineByKey(
        self,
        createCombiner: Callable[[V], U],
        mergeValue: Callable[[U, V], U],
        mergeCombiners: Callable[[U, U], U],
        numPartitions: Optional[int] = None,
        partitionFunc: Callable[[K], int] = stable_hash,
    ) -> "RDD[Tuple[K, U]]":
        """Combine the values of each key.

        Within a partition, a key's first value goes through
        ``createCombiner`` and later ones are added with ``mergeValue``;
        the combiners of the partitions are then merged, in partition order,
        with ``mergeCombiners``.
        """
        merged: Dict[K, U] = {}
        for part in self._parts:
            local: Dict[K, U] = {}
            for k, v in part:
                local[k] = mergeValue(local[k], v) if k in local else createCombiner(v)
            for k, c in local.items():
                merged[k] = mergeCombiners(merged[k], c) if k in merged else c
        return self._place(merged.items(), numPartitions, partitionFunc)

    def reduceByKey(
        self,
        func: Callable[[V, V], V],
        numPartitions: Optional[int] = None,
        partitionFunc: Callable[[K], int] = stable_hash,
    ) -> "RDD[Tuple[K, V]]":
        """Combine the values of each key with the associative ``func``.

        >>> sorted(RDD([[("a", 1), ("b", 1)], [("a", 1)]]).reduceByKey(lambda a, b: a + b).collect())
        [('a', 2), ('b', 1)]
        """
        return self.combineByKey(lambda v: v, func, func, numPartitions, partitionFunc)

    def reduceByKeyLocally(self, func: Callable[[V, V], V]) -> Dict[K, V]:
        """Like :meth:`reduceByKey`, but return the result as a dict."""
        return dict(self.reduceByKey(func)._items())

    def aggregateByKey(
        self,
        zeroValue: U,
        seqFunc: Callable[[U, V], U],
        combFunc: Callable[[U, U], U],
        numPartitions: Optional[int] = None,
        partitionFunc: Callable[[K], int] = stable_hash,
    ) -> "RDD[Tuple[K, U]]":
        """Fold each key's values per partition from a copy of ``zeroValue``
        with ``seqFunc``, then merge the partitions' results with ``combFunc``."""
        return self.combineByKey(
            lambda v: seqFunc(copy.deepcopy(zeroValue), v), seqFunc, combFunc, numPartitions, partitionFunc
        )

    def foldByKey(
        self,
        zeroValue: V,
        func: Callable[[V, V], V],
        numPartitions: Optional[int] = None,
        partitionFunc: Callable[[K], int] = stable_hash,
    ) -> "RDD[Tuple[K, V]]":
        """:meth:`aggregateByKey` with one function for both steps."""
        return self.aggregateByKey(zeroValue, func, func, numPartitions, partitionFunc)

    def groupByKey(
        self, numPartitions: Optional[int] = None, partitionFunc: Callable[[K], int] = stable_hash
    ) -> "RDD[Tuple[K, ResultIterable[V]]]":
        """Gather the values of each key into a :class:`ResultIterable`.

        >>> [(k, list(vs)) for k, vs in RDD([[("a", 1)], [("a", 2)]]).groupByKey().collect()]
        [('a', [1, 2])]
        """

        def append(acc: List[V], v: V) -> List[V]:
            acc.append(v)
            return acc

        def extend(acc: List[V], more: List[V]) -> List[V]:
            acc.extend(more)
            return acc

        grouped = self.combineByKey(lambda v: [v], append, extend, numPartitions, partitionFunc)
        return grouped.mapValues(ResultIterable)

    def groupBy(
        self, f: Callable[[T], K], numPartitions: Optional[int] = None, partitionFunc: Callable[[K], int] = stable_hash
    ) -> "RDD[Tuple[K, ResultIterable[T]]]":
        """Group the records by the key ``f`` computes from each."""
        return self.keyBy(f).groupByKey(numPartitions, partitionFunc)

    def distinct(self, numPartitions: Optional[int] = None) -> "RDD[T]":
        """The distinct records (the first of equal ones is kept)."""
        return self.map(lambda x: (x, None)).reduceByKey(lambda a, _: a, numPartitions).keys()

    def sortByKey(
        self,
        ascending: bool = True,
        numPartitions: Optional[int] = None,
        keyfunc: Callable[[K], Any] = lambda x: x,
    ) -> "RDD[Tuple[K, V]]":
        """Sort the pairs by ``keyfunc(key)``.

        The result is range-partitioned: partition 0 holds the smallest keys
        (the largest when ``ascending`` is false), equal keys share a
        partition, and each partition is sorted.  The sort is stable.

        >>> RDD([[("b", 1), ("a", 2)], [("c", 3)]]).sortByKey().glom().collect()
        [[('a', 2), ('b', 1)], [('c', 3)]]
        """
        n = self._default_reduce_partitions() if numPartitions is None else numPartitions
        if n <= 0:
            return self._new([])
        pairs = list(self._items())
        ranks = sorted(keyfunc(kv[0]) for kv in pairs)
        bounds = [ranks[(len(ranks) * (i + 1)) // n] for i in range(n - 1)] if ranks else []
        parts: List[List[Tuple[K, V]]] = [[] for _ in range(n)]
        for kv in pairs:
            p = bisect.bisect_left(bounds, keyfunc(kv[0]))
            parts[p if ascending else n - 1 - p].append(kv)
        return self._new(sorted(p, key=lambda kv: keyfunc(kv[0]), reverse=not ascending) for p in parts)

    def sortBy(
        self, keyfunc: Callable[[T], Any], ascending: bool = True, numPartitions: Optional[int] = None
    ) -> "RDD[T]":
        """Sort the records by ``keyfunc`` (see :meth:`sortByKey`).

        >>> RDD([[3, 1], [2]]).sortBy(lambda x: x).collect()
        [1, 2, 3]
        """
        return self.keyBy(keyfunc).sortByKey(ascending, numPartitions).values()

    def cogroup(
        self, other: "RDD[Tuple[K, U]]", numPartitions: Optional[int] = None
    ) -> "RDD[Tuple[K, Tuple[ResultIterable[V], ResultIterable[U]]]]":
        """For every key of either RDD, the pair of its values in this RDD
        and in ``other``, each a :class:`ResultIterable`.

        Without ``numPartitions`` the result has as many partitions as the
        two inputs together, as in PySpark.
        """
        tagged = self.mapValues(lambda v: (0, v)).union(other.mapValues(lambda v: (1, v)))

        def split(tagged_values: Iterable[Tuple[int, Any]]) -> Tuple[ResultIterable[V], ResultIterable[U]]:
            sides: Tuple[list, list] = ([], [])
            for side, v in tagged_values:
                sides[side].append(v)
            return ResultIterable(sides[0]), ResultIterable(sides[1])

        return tagged.groupByKey(numPartitions).mapValues(split)

    def _join(
        self, other: "RDD[Tuple[K, U]]", numPartitions: Optional[int], keep_left: bool, keep_right: bool
    ) -> "RDD[Tuple[K, Tuple[Any, Any]]]":
        def pairs(sides: Tuple[ResultIterable[V], ResultIterable[U]]) -> List[Tuple[Any, Any]]:
            left: List[Any] = sides[0].data or ([None] if keep_right else [])
            right: List[Any] = sides[1].data or ([None] if keep_left else [])
            return [(v, w) for v in left for w in right]

        return self.cogroup(other, numPartitions).flatMapValues(pairs)

    def join(self, other: "RDD[Tuple[K, U]]", numPartitions: Optional[int] = None) -> "RDD[Tuple[K, Tuple[V, U]]]":
        """Pair every value of a key in this RDD with every value of it in
        ``other``; keys missing from either side are dropped.

        >>> RDD([[("a", 1), ("b", 2)]]).join(RDD([[("a", 3)]])).collect()
        [('a', (1, 3))]
        """
        return self._join(other, numPartitions, False, False)

    def leftOuterJoin(
        self, other: "RDD[Tuple[K, U]]", numPartitions: Optional[int] = None
    ) -> "RDD[Tuple[K, Tuple[V, Optional[U]]]]":
        """Like :meth:`join`, but a key missing from ``other`` pairs with ``None``."""
        return self._join(other, numPartitions, True, False)

    def rightOuterJoin(
        self, other: "RDD[Tuple[K, U]]", numPartitions: Optional[int] = None
    ) -> "RDD[Tuple[K, Tuple[Optional[V], U]]]":
        """Like :meth:`join`, but a key missing from this RDD pairs ``None``
        with each of its values in ``other``."""
        return self._join(other, numPartitions, False, True)

    def fullOuterJoin(
        self, other: "RDD[Tuple[K, U]]", numPartitions: Optional[int] = None
    ) -> "RDD[Tuple[K, Tuple[Optional[V], Optional[U]]]]":
        """Like :meth:`join`, but a key missing from either side pairs with ``None``."""
        return self._join(other, numPartitions, True, True)

    def subtractByKey(self, other: "RDD[Tuple[K, Any]]", numPartitions: Optional[int] = None) -> "RDD[Tuple[K, V]]":
        """The pairs of this RDD whose key does not occur in ``other``."""
        kept = self.cogroup(other, numPartitions).filter(lambda kv: len(kv[1][0]) > 0 and len(kv[1][1]) == 0)
        return kept.flatMapValues(lambda sides: sides[0])

    def subtract(self, other: "RDD[T]", numPartitions: Optional[int] = None) -> "RDD[T]":
        """The records of this RDD that do not occur in ``other``
        (duplicates of a kept record stay)."""
        mine = self.map(lambda x: (x, True))
        return mine.subtractByKey(other.map(lambda x: (x, True)), numPartitions).keys()

    def intersection(self, other: "RDD[T]") -> "RDD[T]":
        """The distinct records found in both RDDs."""
        both = self.map(lambda x: (x, None)).cogroup(other.map(lambda x: (x, None)))
        return both.filter(lambda kv: len(kv[1][0]) > 0 and len(kv[1][1]) > 0).keys()


def _reduce_list(f: Callable[[T, T], T], items: List[T]) -> T:
    acc = items[0]
    for x in items[1:]:
        acc = f(acc, x)
    return acc


def _merge_means(n1: int, m1: float, n2: int, m2: float) -> Tuple[int, float]:
    """Merge two (count, mean) summaries the way Spark's StatCounter does."""
    if n1 == 0:
        return n2, m2
    if n2 == 0:
        return n1, m1
    total = n1 + n2
    delta = m2 - m1
    if n2 * 10 < n1:
        return total, m1 + (delta * n2) / total
    if n1 * 10 < n2:
        return total, m2 - (delta * n1) / total
    return total, (m1 * n1 + m2 * n2) / total


def _local_path(path: str) -> str:
    """Strip a ``file:`` scheme from ``path``."""
    if path.startswith("file://"):
        return path[len("file://") :]
    if path.startswith("file:"):
        return path[len("file:") :]
    return path
