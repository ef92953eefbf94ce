"""The window cases of the Rust golden tests, from Python: the same queued
input (``crates/ember/tests/golden/<case>/input``, a file per batch, a
record per line) through the same pipeline written with the Python API
gives, batch by batch, the records real Apache Spark printed
(``expected.txt``), at ``local[1]`` and ``local[3]``. Records within a batch
are compared sorted, as the Rust runner does."""

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
}


def scala(record: Any) -> str:
    """A record as Scala's toString writes it: `(a,1)`."""
    if isinstance(record, tuple):
        return "(" + ",".join(scala(x) for x in record) + ")"
    return str(record)


def expected(case: Path) -> Dict[int, List[str]]:
    """Spark's printed batches: time in ms -> records."""
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
            out[ms] = sorted(records)
        i += 1
    return out


def test_every_golden_case_has_a_python_pipeline() -> None:
    cases = {p.name for p in GOLDEN.iterdir() if (p / "expected.txt").is_file()}
    assert cases == set(PIPELINES)


@pytest.mark.parametrize("master", ["local[1]", "local[3]"])
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_golden_case(name: str, master: str) -> None:
    case = GOLDEN / name
    inputs = [f.read_text().splitlines() for f in sorted((case / "input").iterdir())]
    want = expected(case)
    conf = SparkConf().set("spark.ui.enabled", "false") \
        .set("spark.streaming.clock", "org.apache.spark.util.ManualClock")
    sc = SparkContext(master, f"golden-{name}", conf=conf)
    ssc = StreamingContext(sc, 1)
    got: Dict[int, List[str]] = {}
    out = PIPELINES[name](ssc.queueStream(inputs))
    out.foreachRDD(lambda t, rdd: got.__setitem__(round(t.timestamp() * 1000),
                                                  sorted(scala(r) for r in rdd.collect())))
    try:
        ssc.start()
        ssc._run_batches(len(inputs) + DRAIN_BATCHES)
    finally:
        ssc.stop(stopSparkContext=True)
    assert got == want
