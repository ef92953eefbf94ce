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
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable, List, Optional

import pytest


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

DEADLINE = 60.0  # seconds a run may take on a busy machine before it fails


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Job:
    """A program running under the launcher, its stdout read line by line."""

    def __init__(self, example: str, args: List[str], cwd: Path) -> None:
        command = [
            sys.executable, "-m", "ember.submit", "--master", "local[2]",
            "--conf", "spark.ui.enabled=false", str(EXAMPLES / example), *args,
        ]
        self.proc = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: List[str] = []
        self.stderr = ""
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def wait_for(self, done: Callable[[List[str]], bool], what: str) -> None:
        """Waits until the output so far satisfies ``done``."""
        end = time.monotonic() + DEADLINE
        with self._changed:
            while not done(self.lines):
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not done(self.lines)):
                    self.stop()
                    pytest.fail(f"{what}; output:\n" + "\n".join(self.lines[-40:])
                                + "\nstderr:\n" + self.stderr[-3000:])
                self._changed.wait(min(left, 0.5))

    def finish(self) -> int:
        """Waits until the program ends by itself and its output is read."""
        try:
            self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail("the program did not stop by itself")
        for reader in self._readers:
            reader.join()
        return self.proc.returncode

    def stop(self) -> int:
        """Stops the program as Ctrl-C would (gracefully) and returns its status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _batches(lines: List[str]) -> List[List[str]]:
    """The records of each batch printed by pprint."""
    out: List[List[str]] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("Time: ") and i + 1 < len(lines) and lines[i + 1] == "-" * 43:
            records = []
            j = i + 2
            while j < len(lines) and lines[j] != "":
                records.append(lines[j])
                j += 1
            if j < len(lines):  # the batch is complete
                out.append(records)
            i = j
        else:
            i += 1
    return out


def _word_counts(lines: List[str]) -> Counter:
    total: Counter = Counter()
    for records in _batches(lines):
        for record in records:
            word, n = ast.literal_eval(record)
            total[word] += n
    return total


class Netcat:
    """``nc -lk`` on a free port, fed from this test."""

    def __init__(self) -> None:
        nc = shutil.which("nc")
        if nc is None:
            pytest.fail("nc (netcat) is needed: .ci/setup.sh installs it")
        self.port = _free_port()
        self.proc = subprocess.Popen([nc, "-lk", "127.0.0.1", str(self.port)],
                                     stdin=subprocess.PIPE, text=True)

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def netcat():
    nc = Netcat()
    yield nc
    nc.close()


LINES = ["to be or not to be", "that is the question", "to be"]


def test_network_wordcount(netcat: Netcat, tmp_path: Path) -> None:
    job = Job("network_wordcount.py", ["127.0.0.1", str(netcat.port)], tmp_path)
    job.wait_for(lambda ls: len(_batches(ls)) >= 1, "no batch printed")
    netcat.send("".join(line + "\n" for line in LINES))
    expected = Counter(w for line in LINES for w in line.split(" "))
    job.wait_for(lambda ls: _word_counts(ls) == expected, f"counts never reached {expected}")
    assert job.stop() == 0, job.stderr


def test_hdfs_wordcount(tmp_path: Path) -> None:
    watched = tmp_path / "in"
    watched.mkdir()
    job = Job("hdfs_wordcount.py", [str(watched)], tmp_path)
    job.wait_for(lambda ls: len(_batches(ls)) >= 1, "no batch printed")
    staged = tmp_path / "staged.txt"
    staged.write_text("".join(line + "\n" for line in LINES))
    os.rename(staged, watched / "words.txt")
    expected = Counter(w for line in LINES for w in line.split(" "))
    job.wait_for(lambda ls: _word_counts(ls) == expected, f"counts never reached {expected}")
    assert job.stop() == 0, job.stderr


def test_stateful_network_wordcount(netcat: Netcat, tmp_path: Path) -> None:
    job = Job("stateful_network_wordcount.py", ["127.0.0.1", str(netcat.port)], tmp_path)
    # The initial state alone: hello and world at 1.
    job.wait_for(lambda ls: any(sorted(b) == ["('hello', 1)", "('world', 1)"] for b in _batches(ls)),
                 "the initial state was never printed")
    netcat.send("hello spark hello\n")
    want = sorted(["('hello', 3)", "('spark', 1)", "('world', 1)"])
    job.wait_for(lambda ls: any(sorted(b) == want for b in _batches(ls)), f"state never reached {want}")
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
    batches = [b for b in _batches(job.lines) if b]
    # Each queued RDD holds 1..1000: 100 numbers per last digit. It sleeps 6 s
    # then stops gracefully, so the 5 RDDs fill (up to) the first 5 batches.
    assert 1 <= len(batches) <= 5
    for records in batches:
        assert sorted(ast.literal_eval(r) for r in records) == [(d, 100) for d in range(10)]


def test_sql_network_wordcount_says_sql_is_not_supported(tmp_path: Path) -> None:
    job = Job("sql_network_wordcount.py", ["127.0.0.1", "9"], tmp_path)
    assert job.finish() != 0
    assert "pyspark.sql" in job.stderr and "not supported by ember yet" in job.stderr
