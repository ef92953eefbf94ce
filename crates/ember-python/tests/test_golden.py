"""The window cases of the Rust golden tests, from Python: the same queued
input (``crates/ember/tests/golden/<case>/input``, a file per batch, a
record per line) through the same pipeline written with the Python API
gives, batch by batch, the records real Apache Spark printed
(``expected.txt``), at ``local[1]``, ``local[2]`` and ``local[3]``. As in
the Rust runner, the order of a batch's records is compared where Spark
fixes it (windows list their batches oldest first, each in partition order;
``glom`` lists the partitions) and records are compared sorted elsewhere
(keyed results come in Spark's hash-partition order)."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from ember import SparkConf, SparkContext
from ember.streaming import StreamingContext

GOLDEN = Path(__file__).resolve().parents[2] / "ember" / "tests" / "golden"
DRAIN_BATCHES = 4  # batches run beyond the input, so windows drain

add, sub = operator.add, operator.sub


def pair(w: str) -> tuple:
    return (w, 1)


PIPELINES: Dict[str, Callable[[Any], Any]] = {
    "window_3s_2s": lambda d: d.window(3, 2),
    "window_2s_2s": lambda d: d.window(2, 2),
    "window_of_window": lambda d: d.window(2, 1).window(4, 2),
    "count_by_window_3s_1s": lambda d: d.countByWindow(3, 1),
    "reduce_by_window_4s_2s": lambda d: d.map(len).reduceByWindow(add, None, 4, 2),
    "reduce_by_window_inverse_4s_2s": lambda d: d.map(len).reduceByWindow(add, sub, 4, 2),
    "reduce_by_key_and_window_3s_1s": lambda d: d.map(pair).reduceByKeyAndWindow(add, None, 3, 1),
    "reduce_by_key_and_window_inverse_3s_1s":
        lambda d: d.map(pair).reduceByKeyAndWindow(add, sub, 3, 1),
    "reduce_by_key_and_window_inverse_filter_3s_1s":
        lambda d: d.map(pair).reduceByKeyAndWindow(add, sub, 3, 1, filterFunc=lambda kv: kv[1] > 0),
    "reduce_by_key_and_window_5s_2s": lambda d: d.map(pair).reduceByKeyAndWindow(add, None, 5, 2),
    "reduce_by_key_and_window_inverse_5s_2s":
        lambda d: d.map(pair).reduceByKeyAndWindow(add, sub, 5, 2),
    "count_by_value_and_window_3s_2s": lambda d: d.countByValueAndWindow(3, 2),
    "window_1s_2s": lambda d: d.window(1, 2),
    "window_4s_1s_filter_map": lambda d: d.window(4, 1).filter(lambda w: w != "e").map(str.upper),
    "window_of_window_3s_1s_2s_2s": lambda d: d.window(3, 1).window(2, 2),
    "glom_sizes": lambda d: d.glom().map(len),
}

ORDERED_PREFIXES = ("window", "count_by_window", "reduce_by_window", "glom")


def ordered(name: str) -> bool:
    """Whether Spark's output order is part of the case."""
    return name.startswith(ORDERED_PREFIXES)


def masters(name: str) -> List[str]:
    """Where a case runs: everywhere, except the cases that print Spark's
    two partitions per batch."""
    if name.startswith("glom"):
        return ["local[2]"]
    return ["local[1]", "local[2]", "local[3]"]


def scala(record: Any) -> str:
    """A record as Scala's toString writes it: `(a,1)`."""
    if isinstance(record, tuple):
        return "(" + ",".join(scala(x) for x in record) + ")"
    return str(record)


def expected(case: Path, keep_order: bool) -> Dict[int, List[str]]:
    """Spark's printed batches: time in ms -> records (sorted unless
    ``keep_order``)."""
    out: Dict[int, List[str]] = {}
    lines = case.joinpath("expected.txt").read_text().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("Time: "):
            ms = int(lines[i][len("Time: "):-len(" ms")])
            records = []
            i += 2
            while i < len(lines) and lines[i] != "":
                records.append(lines[i])
                i += 1
            out[ms] = records if keep_order else sorted(records)
        i += 1
    return out


def test_every_golden_case_has_a_python_pipeline() -> None:
    cases = {p.name for p in GOLDEN.iterdir() if (p / "expected.txt").is_file()}
    assert cases == set(PIPELINES)


@pytest.mark.parametrize("name,master",
                         [(n, m) for n in sorted(PIPELINES) for m in masters(n)])
def test_golden_case(name: str, master: str) -> None:
    case = GOLDEN / name
    inputs = [f.read_text().splitlines() for f in sorted((case / "input").iterdir())]
    keep_order = ordered(name)
    want = expected(case, keep_order)
    arrange = list if keep_order else sorted
    conf = SparkConf().set("spark.ui.enabled", "false") \
        .set("spark.streaming.clock", "org.apache.spark.util.ManualClock")
    sc = SparkContext(master, f"golden-{name}", conf=conf)
    ssc = StreamingContext(sc, 1)
    got: Dict[int, List[str]] = {}
    out = PIPELINES[name](ssc.queueStream(inputs))
    out.foreachRDD(lambda t, rdd: got.__setitem__(round(t.timestamp() * 1000),
                                                  arrange(scala(r) for r in rdd.collect())))
    try:
        ssc.start()
        ssc._run_batches(len(inputs) + DRAIN_BATCHES)
    finally:
        ssc.stop(stopSparkContext=True)
    assert got == want
