"""Tests of ember.rdd and ember.context.

Run with:
    PYTHONPATH=crates/ember-python/python python3 -m pytest -q crates/ember-python/tests/test_rdd.py

Every expected value below was worked out by hand from the documented
semantics (slice positions, partition = hash % n, first-occurrence order).
"""

from __future__ import annotations

import operator
import os
import subprocess
import sys
import threading

import pytest

from ember.context import (
    Accumulator,
    AccumulatorParam,
    Broadcast,
    SparkConf,
    SparkContext,
    StorageLevel,
)
from ember.rdd import RDD, ResultIterable, stable_hash

PYTHON_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")


@pytest.fixture(autouse=True)
def clean_state(monkeypatch):
    """No launcher settings in the environment and no context left running."""
    monkeypatch.delenv("EMBER_MASTER", raising=False)
    monkeypatch.delenv("EMBER_APP_NAME", raising=False)
    yield
    active = SparkContext._active_spark_context
    if active is not None:
        active.stop()


@pytest.fixture
def sc():
    context = SparkContext("local[2]", "test", conf=SparkConf(loadDefaults=False))
    yield context
    context.stop()


def glom(rdd):
    return rdd.glom().collect()


def as_lists(pairs):
    """Turn ResultIterable values (also inside tuples) into lists."""
    out = []
    for k, v in pairs:
        if isinstance(v, tuple):
            v = tuple(list(x) for x in v)
        else:
            v = list(v)
        out.append((k, v))
    return out


# ----------------------------------------------------------------------
# Slicing and the context's RDD makers
# ----------------------------------------------------------------------


def test_parallelize_slices_at_sparks_positions(sc):
    assert glom(sc.parallelize(range(10), 3)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    assert glom(sc.parallelize([0, 1, 2, 3, 4], 4)) == [[0], [1], [2], [3, 4]]
    assert glom(sc.parallelize(["x", "y"], 4)) == [[], ["x"], [], ["y"]]
    assert glom(sc.parallelize(iter("abc"), 1)) == [["a", "b", "c"]]
    assert glom(sc.parallelize([], 2)) == [[], []]


def test_parallelize_defaults_to_default_parallelism(sc):
    rdd = sc.parallelize([1, 2, 3, 4, 5])
    assert rdd.getNumPartitions() == 2
    assert glom(rdd) == [[1, 2], [3, 4, 5]]
    assert rdd.context is sc


def test_parallelize_needs_positive_slices(sc):
    with pytest.raises(ValueError):
        sc.parallelize([1], 0)


def test_from_items():
    assert glom(RDD._from_items([1, 2, 3], 2)) == [[1], [2, 3]]
    assert glom(RDD._from_items(range(7), 3)) == [[0, 1], [2, 3], [4, 5, 6]]


def test_default_parallelism():
    conf = SparkConf(loadDefaults=False)
    for master, cores in [
        ("local", 1),
        ("local[3]", 3),
        ("local[*]", os.cpu_count()),
        ("local[2,4]", 2),
        ("local-cluster[2, 3, 1024]", 6),
    ]:
        with SparkContext(master, "p", conf=conf) as context:
            assert context.defaultParallelism == cores, master
            assert context.defaultMinPartitions == min(cores, 2)
    with SparkContext("local[4]", "p", conf=SparkConf(False).set("spark.default.parallelism", 7)) as context:
        assert context.defaultParallelism == 7


def test_spark_default_parallelism_sets_shuffle_partitions():
    conf = SparkConf(False).set("spark.default.parallelism", 3)
    with SparkContext("local[1]", "p", conf=conf) as context:
        rdd = context.parallelize([("a", 1)], 1)
        assert rdd.reduceByKey(operator.add).getNumPartitions() == 3
    # Without a context, or without the setting, a shuffle keeps the input's count.
    assert RDD([[("a", 1)], []]).reduceByKey(operator.add).getNumPartitions() == 2


def test_empty_rdd_union_and_range(sc):
    empty = sc.emptyRDD()
    assert empty.getNumPartitions() == 0
    assert empty.collect() == []
    assert empty.isEmpty()
    both = sc.union([sc.parallelize([1, 2], 2), sc.parallelize([3], 1)])
    assert glom(both) == [[1], [2], [3]]
    assert glom(sc.range(4, numSlices=2)) == [[0, 1], [2, 3]]
    assert sc.range(1, 7, 2, numSlices=1).collect() == [1, 3, 5]


# ----------------------------------------------------------------------
# Actions
# ----------------------------------------------------------------------


def test_collect_take_first_count():
    rdd = RDD([[1, 2], [3], []])
    assert rdd.collect() == [1, 2, 3]
    assert rdd.take(2) == [1, 2]
    assert rdd.take(0) == []
    assert rdd.take(10) == [1, 2, 3]
    assert rdd.first() == 1
    assert rdd.count() == 3
    assert not rdd.isEmpty()
    assert list(rdd.toLocalIterator()) == [1, 2, 3]


def test_empty_rdd_actions():
    empty = RDD([[], []])
    assert empty.isEmpty()
    assert RDD([]).isEmpty()
    assert empty.count() == 0
    assert empty.sum() == 0
    with pytest.raises(ValueError, match="RDD is empty"):
        empty.first()
    with pytest.raises(ValueError):
        empty.reduce(operator.add)
    with pytest.raises(ValueError):
        empty.max()


def test_rdd_is_always_true():
    assert RDD([])
    assert RDD([[]])
    assert not hasattr(RDD, "__len__")
    assert not hasattr(RDD, "__bool__")
    assert repr(RDD([[1], [], [2]])) == "RDD[3 partitions]"


def test_reduce_fold_aggregate():
    rdd = RDD([[1, 2], [3], []])
    assert rdd.reduce(operator.add) == 6
    assert rdd.fold(0, operator.add) == 6
    # zeroValue once per partition (3) and once in the final fold: 6 + 4.
    assert rdd.fold(1, operator.add) == 10
    assert rdd.aggregate((0, 0), lambda acc, x: (acc[0] + x, acc[1] + 1),
                         lambda a, b: (a[0] + b[0], a[1] + b[1])) == (6, 3)
    # A mutable zero is copied, never shared between partitions.
    assert rdd.aggregate([], lambda acc, x: acc + [x], lambda a, b: a + b) == [1, 2, 3]
    assert rdd.fold([], lambda a, b: a + (b if isinstance(b, list) else [b])) == [1, 2, 3]


def test_sum_max_min_mean():
    rdd = RDD([[4, 1], [3, 2]])
    assert rdd.sum() == 10
    assert RDD([[0.5], [0.25]]).sum() == 0.75
    assert rdd.max() == 4
    assert rdd.min() == 1
    assert rdd.max(key=lambda x: -x) == 1
    assert rdd.min(key=lambda x: -x) == 4
    assert rdd.mean() == 2.5
    assert RDD([[1, 2], [3, 4, 5], []]).mean() == 3.0


def test_count_by_value_and_key_collect_as_map_lookup():
    assert dict(RDD([["a", "b"], ["a"]]).countByValue()) == {"a": 2, "b": 1}
    pairs = RDD([[("a", 1), ("b", 2)], [("a", 3)]])
    assert dict(pairs.countByKey()) == {"a": 2, "b": 1}
    assert pairs.collectAsMap() == {"a": 3, "b": 2}
    assert pairs.lookup("a") == [1, 3]
    assert pairs.lookup("z") == []


def test_foreach_and_foreach_partition():
    rdd = RDD([[1, 2], [3], []])
    seen = []
    rdd.foreach(seen.append)
    assert seen == [1, 2, 3]
    parts = []

    def record(it):
        assert iter(it) is it  # an iterator, not a list
        parts.append(list(it))

    rdd.foreachPartition(record)
    assert parts == [[1, 2], [3], []]


def test_take_ordered_and_top():
    rdd = RDD([[5, 1, 4], [2, 3]])
    assert rdd.takeOrdered(3) == [1, 2, 3]
    assert rdd.takeOrdered(2, key=lambda x: -x) == [5, 4]
    assert rdd.top(2) == [5, 4]
    assert rdd.top(2, key=lambda x: -x) == [1, 2]


# ----------------------------------------------------------------------
# Narrow transformations
# ----------------------------------------------------------------------


def test_map_flat_map_filter_keep_partitions():
    rdd = RDD([[1, 2], [3, 4]])
    assert glom(rdd.map(lambda x: x * 2)) == [[2, 4], [6, 8]]
    assert glom(RDD([["a b"], ["c"]]).flatMap(str.split)) == [["a", "b"], ["c"]]
    assert glom(rdd.filter(lambda x: x % 2 == 0)) == [[2], [4]]
    assert glom(rdd.mapPartitions(lambda it: [sum(it)])) == [[3], [7]]
    assert rdd.mapPartitionsWithIndex(lambda i, it: [(i, sum(it))]).collect() == [(0, 3), (1, 7)]


def test_pair_value_helpers():
    pairs = RDD([[("a", [1, 2])], [("b", [])]])
    assert pairs.mapValues(len).collect() == [("a", 2), ("b", 0)]
    assert glom(pairs.flatMapValues(lambda v: v)) == [[("a", 1), ("a", 2)], []]
    assert pairs.keys().collect() == ["a", "b"]
    assert pairs.values().collect() == [[1, 2], []]
    assert RDD([["a", "bb"]]).keyBy(len).collect() == [(1, "a"), (2, "bb")]


def test_union_cartesian_zip_with_index():
    assert glom(RDD([[1], [2]]).union(RDD([[3]]))) == [[1], [2], [3]]
    product = RDD([[1], [2]]).cartesian(RDD([["a", "b"]]))
    assert glom(product) == [[(1, "a"), (1, "b")], [(2, "a"), (2, "b")]]
    product = RDD([[1], [2]]).cartesian(RDD([["a"], ["b"]]))
    assert glom(product) == [[(1, "a")], [(1, "b")], [(2, "a")], [(2, "b")]]
    indexed = RDD([["a", "b"], [], ["c"]]).zipWithIndex()
    assert glom(indexed) == [[("a", 0), ("b", 1)], [], [("c", 2)]]


def test_coalesce_and_repartition():
    rdd = RDD([[1], [2], [3], [4]])
    assert glom(rdd.coalesce(2)) == [[1, 2], [3, 4]]
    assert glom(rdd.coalesce(3)) == [[1], [2], [3, 4]]
    assert glom(rdd.coalesce(8)) == [[1], [2], [3], [4]]
    assert glom(rdd.coalesce(2, shuffle=True)) == [[1, 2], [3, 4]]
    assert glom(RDD([[1, 2, 3, 4, 5, 6, 7]]).repartition(3)) == [[1, 2], [3, 4], [5, 6, 7]]


def test_housekeeping_methods_return_self():
    rdd = RDD([[1]])
    assert rdd.cache() is rdd
    assert rdd.getStorageLevel() == StorageLevel.MEMORY_ONLY
    assert rdd.persist(StorageLevel.DISK_ONLY) is rdd
    assert rdd.getStorageLevel() == StorageLevel.DISK_ONLY
    assert rdd.unpersist() is rdd
    assert rdd.getStorageLevel() == StorageLevel(False, False, False, False, 1)
    assert rdd.checkpoint() is None
    assert rdd.isCheckpointed()
    assert rdd.name() is None
    assert rdd.setName("numbers") is rdd
    assert rdd.name() == "numbers"
    assert rdd.id() != RDD([[1]]).id()


# ----------------------------------------------------------------------
# Hashing and shuffles
# ----------------------------------------------------------------------


def test_stable_hash_values():
    assert stable_hash(1) == stable_hash(1.0) == stable_hash(True) == 1
    assert stable_hash(0) == stable_hash(False) == stable_hash(None) == 0
    assert stable_hash("abc") == 0x352441C2  # CRC-32 of b"abc"
    assert stable_hash(b"abc") == 0x352441C2
    assert stable_hash((1, "a")) == stable_hash((1.0, "a"))
    assert stable_hash((1, 2)) != stable_hash((2, 1))
    assert stable_hash(frozenset(["a", "b"])) == stable_hash(frozenset(["b", "a"]))


def test_stable_hash_is_the_same_in_other_processes():
    code = "from ember.rdd import stable_hash; print(stable_hash(('word', 1, None, b'x', 2.5)))"
    outputs = set()
    for seed in ("1", "2", "random"):
        env = dict(os.environ, PYTHONPATH=PYTHON_DIR, PYTHONHASHSEED=seed)
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outputs.add(result.stdout.strip())
    assert outputs == {str(stable_hash(("word", 1, None, b"x", 2.5)))}


def test_partition_by():
    rdd = RDD([[(1, "a"), (2, "b"), (3, "c")]])
    # 1 % 2 == 1, 2 % 2 == 0, 3 % 2 == 1
    assert glom(rdd.partitionBy(2)) == [[(2, "b")], [(1, "a"), (3, "c")]]
    assert glom(rdd.partitionBy(2, lambda k: 0)) == [[(1, "a"), (2, "b"), (3, "c")], []]


def test_distinct():
    rdd = RDD([[1, 2, 1], [2, 3]])
    assert rdd.distinct(1).collect() == [1, 2, 3]
    # Two partitions: 2 goes to partition 0; 1 and 3 to partition 1.
    assert glom(rdd.distinct()) == [[2], [1, 3]]


def test_reduce_by_key_first_occurrence_order():
    rdd = RDD([[("a", 1), ("b", 1)], [("a", 1), ("c", 5)]])
    assert rdd.reduceByKey(operator.add, 1).collect() == [("a", 2), ("b", 1), ("c", 5)]
    assert rdd.foldByKey(0, operator.add, 1).collect() == [("a", 2), ("b", 1), ("c", 5)]
    assert rdd.reduceByKeyLocally(operator.add) == {"a": 2, "b": 1, "c": 5}
    assert rdd.reduceByKey(operator.add).getNumPartitions() == 2


def test_reduce_by_key_int_partitions():
    rdd = RDD([[(1, 1), (2, 1), (3, 1)], [(4, 1), (1, 1)]])
    # key k goes to partition k % 3
    assert glom(rdd.reduceByKey(operator.add, 3)) == [[(3, 1)], [(1, 2), (4, 1)], [(2, 1)]]


def test_group_by_key_merges_equal_keys():
    rdd = RDD([[(1, "int"), (1.0, "float")], [(True, "bool"), (2, "two")]])
    grouped = rdd.groupByKey(1).collect()
    assert as_lists(grouped) == [(1, ["int", "float", "bool"]), (2, ["two"])]
    assert type(grouped[0][0]) is int  # the first key seen is kept
    assert all(isinstance(v, ResultIterable) for _, v in grouped)
    # Two partitions: hash 2 -> partition 0, hash 1 -> partition 1.
    assert [as_lists(p) for p in glom(rdd.groupByKey())] == [[(2, ["two"])], [(1, ["int", "float", "bool"])]]


def test_group_by():
    grouped = RDD([[1, 2, 3, 4]]).groupBy(lambda x: x % 2, 1).collect()
    assert as_lists(grouped) == [(1, [1, 3]), (0, [2, 4])]


def test_combine_by_key_merges_per_partition_then_across():
    rdd = RDD([[("a", 1), ("a", 2)], [("a", 3), ("b", 4)]])
    calls = []

    def merge_combiners(a, b):
        calls.append((list(a), list(b)))
        return a + b

    combined = rdd.combineByKey(lambda v: [v], lambda c, v: c + [v], merge_combiners, 1)
    assert combined.collect() == [("a", [1, 2, 3]), ("b", [4])]
    assert calls == [([1, 2], [3])]


def test_aggregate_by_key():
    rdd = RDD([[("a", 1), ("a", 2)], [("a", 3)]])
    # Partition 0: 10 + 1 + 2 = 13; partition 1: 10 + 3 = 13; merged: 26.
    assert rdd.aggregateByKey(10, operator.add, operator.add, 1).collect() == [("a", 26)]

    def append(acc, v):
        acc.append(v)
        return acc

    rdd = RDD([[("a", 1), ("b", 2)], [("a", 3)]])
    assert rdd.aggregateByKey([], append, operator.add, 1).collect() == [("a", [1, 3]), ("b", [2])]


LEFT = RDD([[("a", 1), ("b", 2)], [("a", 3)]])
RIGHT = RDD([[("a", "x"), ("c", "y")]])


def test_join():
    assert LEFT.join(RIGHT, 1).collect() == [("a", (1, "x")), ("a", (3, "x"))]
    # As in PySpark, the default is the two inputs' partitions together.
    assert LEFT.join(RIGHT).getNumPartitions() == 3


def test_outer_joins_fill_missing_side_with_none():
    assert LEFT.leftOuterJoin(RIGHT, 1).collect() == [("a", (1, "x")), ("a", (3, "x")), ("b", (2, None))]
    assert RIGHT.leftOuterJoin(LEFT, 1).collect() == [("a", ("x", 1)), ("a", ("x", 3)), ("c", ("y", None))]
    assert LEFT.rightOuterJoin(RIGHT, 1).collect() == [("a", (1, "x")), ("a", (3, "x")), ("c", (None, "y"))]
    assert LEFT.fullOuterJoin(RIGHT, 1).collect() == [
        ("a", (1, "x")),
        ("a", (3, "x")),
        ("b", (2, None)),
        ("c", (None, "y")),
    ]


def test_cogroup():
    grouped = LEFT.cogroup(RIGHT, 1).collect()
    assert as_lists(grouped) == [("a", ([1, 3], ["x"])), ("b", ([2], [])), ("c", ([], ["y"]))]
    for _, (left, right) in grouped:
        assert isinstance(left, ResultIterable) and isinstance(right, ResultIterable)
    assert LEFT.cogroup(RIGHT).getNumPartitions() == 3


def test_subtract_intersection():
    assert RDD([[1, 2, 2, 3]]).subtract(RDD([[2]]), 1).collect() == [1, 3]
    assert RDD([[1, 1, 2]]).subtract(RDD([[2]]), 1).collect() == [1, 1]
    assert LEFT.subtractByKey(RDD([[("a", 0)]]), 1).collect() == [("b", 2)]
    assert RDD([[1, 2, 2, 3]]).intersection(RDD([[2, 3, 4]])).collect() == [2, 3]


def test_sort_by_range_partitions():
    rdd = RDD([[3, 1], [2, 5, 4]])
    assert rdd.sortBy(lambda x: x).collect() == [1, 2, 3, 4, 5]
    # Bound of two partitions: the 3rd smallest key (3); keys <= 3 go first.
    assert glom(rdd.sortBy(lambda x: x)) == [[1, 2, 3], [4, 5]]
    assert glom(rdd.sortBy(lambda x: x, ascending=False)) == [[5, 4], [3, 2, 1]]
    assert rdd.sortBy(lambda x: x, numPartitions=1).getNumPartitions() == 1


def test_sort_by_key_is_stable_and_uses_keyfunc():
    rdd = RDD([[("b", 1), ("a", 2)], [("c", 3), ("a", 0)]])
    assert rdd.sortByKey(numPartitions=1).collect() == [("a", 2), ("a", 0), ("b", 1), ("c", 3)]
    assert rdd.sortByKey(False, 1).collect() == [("c", 3), ("b", 1), ("a", 2), ("a", 0)]
    assert RDD([[("B", 1), ("a", 2)]]).sortByKey(keyfunc=str.lower).collect() == [("a", 2), ("B", 1)]


def test_result_iterable():
    values = ResultIterable([1, 2])
    assert list(values) == [1, 2]
    assert list(values) == [1, 2]  # iterable more than once
    assert len(values) == 2
    assert values.data == [1, 2]
    assert repr(values).startswith("<ember.rdd.ResultIterable object at 0x")


# ----------------------------------------------------------------------
# Text files
# ----------------------------------------------------------------------


def test_save_as_text_file_layout(tmp_path):
    out = tmp_path / "out"
    RDD([[1, "a"], [], [b"raw", ("t", 1)]]).saveAsTextFile(str(out))
    assert sorted(os.listdir(out)) == ["_SUCCESS", "part-00000", "part-00001", "part-00002"]
    assert (out / "part-00000").read_bytes() == b"1\na\n"
    assert (out / "part-00001").read_bytes() == b""
    assert (out / "part-00002").read_bytes() == b"raw\n('t', 1)\n"
    assert (out / "_SUCCESS").read_bytes() == b""
    with pytest.raises(FileExistsError, match="already exists"):
        RDD([[1]]).saveAsTextFile(str(out))


def test_text_file_of_saved_directory(sc, tmp_path):
    out = tmp_path / "out"
    RDD([[1, "a"], [], [b"raw", ("t", 1)]]).saveAsTextFile(str(out))
    (out / ".hidden").write_text("skipped\n")
    # 17 bytes in 2 minimum partitions: 8-byte splits; part-00002 (13 bytes)
    # splits at byte 8, and both its lines start in the first split.
    assert glom(sc.textFile(str(out))) == [["1", "a"], [], ["raw", "('t', 1)"], []]


def test_text_file_line_endings_and_splits(sc, tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(b"aaa\nbbb\nccc\nddd\n")
    # Splits [0, 8) and [8, 16); the line starting at byte 8 belongs to the first.
    assert glom(sc.textFile(str(path), 2)) == [["aaa", "bbb", "ccc"], ["ddd"]]
    assert glom(sc.textFile(str(path), 1)) == [["aaa", "bbb", "ccc", "ddd"]]
    path.write_bytes(b"one\r\ntwo\rthree\nlast")
    assert sc.textFile(str(path), 1).collect() == ["one", "two", "three", "last"]
    assert sc.textFile("file://" + str(path), 1, use_unicode=False).collect() == [b"one", b"two", b"three", b"last"]
    with pytest.raises(FileNotFoundError):
        sc.textFile(str(tmp_path / "missing"))


# ----------------------------------------------------------------------
# Shared variables
# ----------------------------------------------------------------------


def test_accumulator_from_several_threads(sc):
    acc = sc.accumulator(0)

    def work():
        nonlocal acc
        for _ in range(500):
            acc.add(1)
            acc += 1  # __iadd__ returns the same accumulator

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acc.value == 8000
    acc.value = 5
    assert acc.value == 5
    assert str(acc) == "5"


def test_accumulator_params(sc):
    floats = sc.accumulator(0.5)
    floats += 0.25
    assert floats.value == 0.75

    class ListParam(AccumulatorParam):
        def zero(self, value):
            return []

        def addInPlace(self, value1, value2):
            value1.extend(value2)
            return value1

    lists = sc.accumulator([], ListParam())
    lists.add([1])
    lists += [2, 3]
    assert lists.value == [1, 2, 3]
    assert isinstance(lists, Accumulator)
    with pytest.raises(TypeError):
        sc.accumulator("text")


def test_broadcast(sc):
    b = sc.broadcast({"k": 1})
    assert isinstance(b, Broadcast)
    assert b.value == {"k": 1}
    b.unpersist()
    b.destroy()


# ----------------------------------------------------------------------
# Configuration and the context's life
# ----------------------------------------------------------------------


def test_spark_conf_methods():
    conf = SparkConf(loadDefaults=False)
    assert conf.set("b", 2) is conf
    assert conf.setAll([("a", "1"), ("c", 3.5)]) is conf
    assert conf.setIfMissing("a", "changed") is conf
    assert conf.setIfMissing("d", "new") is conf
    assert conf.setMaster("local[2]").setAppName("app") is conf
    assert conf.get("a") == "1"
    assert conf.get("b") == "2"  # values are strings
    assert conf.get("d") == "new"
    assert conf.get("missing") is None
    assert conf.get("missing", "fallback") == "fallback"
    assert conf.contains("c") and not conf.contains("missing")
    assert dict(conf.getAll()) == {
        "a": "1",
        "b": "2",
        "c": "3.5",
        "d": "new",
        "spark.master": "local[2]",
        "spark.app.name": "app",
    }
    assert conf.toDebugString() == "a=1\nb=2\nc=3.5\nd=new\nspark.app.name=app\nspark.master=local[2]"


def test_spark_conf_reads_launcher_environment(monkeypatch):
    monkeypatch.setenv("EMBER_MASTER", "local[3]")
    monkeypatch.setenv("EMBER_APP_NAME", "launched")
    assert SparkConf().get("spark.master") == "local[3]"
    assert SparkConf().get("spark.app.name") == "launched"
    assert SparkConf(loadDefaults=False).get("spark.master") is None


def test_master_precedence(monkeypatch):
    with SparkContext(conf=SparkConf(False)) as context:
        assert context.master == "local[*]"
    monkeypatch.setenv("EMBER_MASTER", "local[3]")
    with SparkContext() as context:
        assert context.master == "local[3]"
        assert context.getConf().get("spark.master") == "local[3]"
    with SparkContext(conf=SparkConf(False)) as context:  # env still applies
        assert context.master == "local[3]"
    with SparkContext(conf=SparkConf().setMaster("local[5]")) as context:
        assert context.master == "local[5]"
    with SparkContext("local[7]", conf=SparkConf().setMaster("local[5]")) as context:
        assert context.master == "local[7]"
        assert context.defaultParallelism == 7


def test_app_name_precedence(monkeypatch):
    with SparkContext("local", "explicit", conf=SparkConf(False).setAppName("conf")) as context:
        assert context.appName == "explicit"
    with SparkContext("local", conf=SparkConf(False).setAppName("conf")) as context:
        assert context.appName == "conf"
    monkeypatch.setenv("EMBER_APP_NAME", "env")
    with SparkContext("local") as context:
        assert context.appName == "env"


def test_get_conf_is_a_copy(sc):
    conf = sc.getConf()
    conf.set("spark.master", "elsewhere")
    assert sc.getConf().get("spark.master") == "local[2]"
    assert sc.getConf().get("spark.app.name") == "test"


def test_second_context_is_refused(sc):
    with pytest.raises(ValueError, match="Cannot run multiple SparkContexts at once"):
        SparkContext("local", "second")
    assert SparkContext.getOrCreate() is sc
    sc.stop()
    assert SparkContext._active_spark_context is None
    again = SparkContext("local", "second")
    assert SparkContext._active_spark_context is again
    again.stop()


def test_get_or_create_and_context_manager():
    conf = SparkConf(False).setMaster("local[2]").setAppName("made")
    created = SparkContext.getOrCreate(conf)
    assert created.appName == "made"
    assert SparkContext.getOrCreate() is created
    created.stop()
    with SparkContext("local", "managed") as context:
        assert SparkContext._active_spark_context is context
    assert SparkContext._active_spark_context is None


def test_context_properties(sc):
    assert sc.version == "ember"
    assert sc.uiWebUrl is None
    assert isinstance(sc.startTime, int) and sc.startTime > 0
    sc.setLogLevel("warn")
    with pytest.raises(ValueError):
        sc.setLogLevel("LOUD")


def test_set_checkpoint_dir(sc, tmp_path):
    target = tmp_path / "ckpt"
    sc.setCheckpointDir(str(target))
    assert target.is_dir()
    assert sc.getCheckpointDir() == str(target)


def test_storage_levels():
    assert StorageLevel.MEMORY_ONLY == StorageLevel(False, True, False, False, 1)
    assert StorageLevel.DISK_ONLY == StorageLevel(True, False, False, False)
    assert StorageLevel.DISK_ONLY_2.replication == 2
    assert StorageLevel.DISK_ONLY_3.replication == 3
    assert StorageLevel.MEMORY_ONLY_2 == StorageLevel(False, True, False, False, 2)
    assert StorageLevel.MEMORY_AND_DISK == StorageLevel(True, True, False, False)
    assert StorageLevel.MEMORY_AND_DISK_2 == StorageLevel(True, True, False, False, 2)
    assert StorageLevel.MEMORY_AND_DISK_DESER == StorageLevel(True, True, False, True)
    assert StorageLevel.OFF_HEAP == StorageLevel(True, True, True, False)
    assert StorageLevel.MEMORY_ONLY_SER is StorageLevel.MEMORY_ONLY
    assert StorageLevel.MEMORY_AND_DISK_SER is StorageLevel.MEMORY_AND_DISK
    assert repr(StorageLevel.MEMORY_AND_DISK_2) == "StorageLevel(True, True, False, False, 2)"
    assert str(StorageLevel.MEMORY_ONLY) == "Memory Serialized 1x Replicated"
