"""Spark's own Python streaming examples, run unmodified under ember's
launcher (``python -m ember.submit``) against a real ``nc -lk`` and a real
directory.

The examples are read at test time from the pyspark distribution on PyPI
(they ship in it; they are not copied into this repository): the directory
is ``$EMBER_PYSPARK_EXAMPLES``, or the ``examples`` of an installed pyspark.
``.ci/python.sh`` downloads them. Without them these tests are skipped,
unless ``EMBER_REQUIRE_PYSPARK_EXAMPLES=1`` (as in CI) makes that a failure.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from collections import Counter
from pathlib import Path
from typing import List, Optional

import pytest
from support import Job as _Job
from support import Netcat, batches, table_counts, word_counts


def _examples_dir() -> Optional[Path]:
    given = os.environ.get("EMBER_PYSPARK_EXAMPLES")
    if given:
        return Path(given)
    try:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
    except (ImportError, ValueError):
        spec = None
    if spec and spec.origin:
        found = Path(spec.origin).parent / "examples/src/main/python/streaming"
        if found.is_dir():
            return found
    return None


EXAMPLES = _examples_dir()
if EXAMPLES is None or not EXAMPLES.is_dir():
    if os.environ.get("EMBER_REQUIRE_PYSPARK_EXAMPLES") == "1":
        raise RuntimeError(
            "Spark's Python streaming examples are required but not found: set "
            "EMBER_PYSPARK_EXAMPLES to pyspark's examples/src/main/python/streaming"
        )
    pytest.skip("Spark's Python streaming examples not available", allow_module_level=True)

def Job(example: str, args: List[str], cwd: Path) -> _Job:
    """A Spark example run under the launcher."""
    return _Job([sys.executable, "-m", "ember.submit", "--master", "local[2]",
                 "--conf", "spark.ui.enabled=false", str(EXAMPLES / example), *args], cwd)


@pytest.fixture
def netcat():
    nc = Netcat()
    yield nc
    nc.close()


LINES = ["to be or not to be", "that is the question", "to be"]


def test_network_wordcount(netcat: Netcat, tmp_path: Path) -> None:
    job = Job("network_wordcount.py", ["127.0.0.1", str(netcat.port)], tmp_path)
    job.wait_for(lambda ls: len(batches(ls)) >= 1, "no batch printed")
    netcat.send("".join(line + "\n" for line in LINES))
    expected = Counter(w for line in LINES for w in line.split(" "))
    job.wait_for(lambda ls: word_counts(ls) == expected, f"counts never reached {expected}")
    assert job.stop() == 0, job.stderr


def test_hdfs_wordcount(tmp_path: Path) -> None:
    watched = tmp_path / "in"
    watched.mkdir()
    job = Job("hdfs_wordcount.py", [str(watched)], tmp_path)
    job.wait_for(lambda ls: len(batches(ls)) >= 1, "no batch printed")
    staged = tmp_path / "staged.txt"
    staged.write_text("".join(line + "\n" for line in LINES))
    os.rename(staged, watched / "words.txt")
    expected = Counter(w for line in LINES for w in line.split(" "))
    job.wait_for(lambda ls: word_counts(ls) == expected, f"counts never reached {expected}")
    assert job.stop() == 0, job.stderr


def test_stateful_network_wordcount(netcat: Netcat, tmp_path: Path) -> None:
    job = Job("stateful_network_wordcount.py", ["127.0.0.1", str(netcat.port)], tmp_path)
    # The initial state alone: hello and world at 1.
    job.wait_for(lambda ls: any(sorted(b) == ["('hello', 1)", "('world', 1)"] for b in batches(ls)),
                 "the initial state was never printed")
    netcat.send("hello spark hello\n")
    want = sorted(["('hello', 3)", "('spark', 1)", "('world', 1)"])
    job.wait_for(lambda ls: any(sorted(b) == want for b in batches(ls)), f"state never reached {want}")
    assert job.stop() == 0, job.stderr
    assert (tmp_path / "checkpoint").is_dir()


def test_recoverable_network_wordcount(netcat: Netcat, tmp_path: Path) -> None:
    output = tmp_path / "out.txt"
    job = Job("recoverable_network_wordcount.py",
              ["127.0.0.1", str(netcat.port), str(tmp_path / "ckpt"), str(output)], tmp_path)
    job.wait_for(lambda ls: any(l.startswith("Counts at time") for l in ls), "no batch echoed")
    netcat.send("a b c d d\n")
    # a, b and c are excluded by the broadcast list and counted as dropped.
    job.wait_for(lambda ls: "Dropped 3 word(s) totally" in ls, "the dropped words were not counted")
    assert job.stop() == 0, job.stderr
    assert "[('d', 2)]" in output.read_text()


def test_queue_stream(tmp_path: Path) -> None:
    job = Job("queue_stream.py", [], tmp_path)
    assert job.finish() == 0, job.stderr
    printed = [b for b in batches(job.lines) if b]
    # Each queued RDD holds 1..1000: 100 numbers per last digit. It sleeps 6 s
    # then stops gracefully, so the 5 RDDs fill (up to) the first 5 batches.
    assert 1 <= len(printed) <= 5
    for records in printed:
        assert sorted(ast.literal_eval(r) for r in records) == [(d, 100) for d in range(10)]


@pytest.mark.parametrize("master", ["local[1]", "local[3]"])
def test_sql_network_wordcount(netcat: Netcat, tmp_path: Path, master: str) -> None:
    if importlib.util.find_spec("datafusion") is None and os.environ.get("EMBER_REQUIRE_SQL") != "1":
        pytest.skip("the sql extra (datafusion, pyarrow) is not installed")
    job = _Job([sys.executable, "-m", "ember.submit", "--master", master,
                "--conf", "spark.ui.enabled=false",
                str(EXAMPLES / "sql_network_wordcount.py"), "127.0.0.1", str(netcat.port)], tmp_path)
    job.wait_for(lambda ls: any(l.startswith("========= ") for l in ls), "no batch printed")
    netcat.send("".join(line + "\n" for line in LINES))
    expected = Counter(w for line in LINES for w in line.split(" "))
    job.wait_for(lambda ls: table_counts(ls) == expected, f"counts never reached {expected}")
    assert job.stop() == 0, job.stderr
    # Every table is Spark's: a border, the header, a border, rows, a border.
    text = "\n".join(job.lines)
    for block in text.split("========= ")[1:]:
        table = [l for l in block.splitlines()[1:] if l]
        if not table:
            continue  # an empty batch: Spark's example prints its time only
        border = table[0]
        assert border.startswith("+") and border.endswith("+"), block
        assert table[2] == border and table[-1] == border, block
        assert all(len(line) == len(border) for line in table), block
        assert [c.strip() for c in table[1].split("|")[1:3]] == ["word", "total"], block
