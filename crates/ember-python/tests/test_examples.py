"""The Python examples in ``crates/ember-python/examples``, run as their
top comments say, against a real ``nc -lk``, a directory, a real broker and
a real PostgreSQL server (the last two as in ``test_connectors.py``)."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import List

import pytest
from support import Job, Netcat, batches, create_topic, need_service, table_counts, word_counts

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BROKERS = os.environ.get("EMBER_TEST_KAFKA_BROKERS")
POSTGRES = os.environ.get("EMBER_TEST_POSTGRES_URL")
LINES = ["to be or not to be", "that is the question", "to be"]
EXPECTED = Counter(w for line in LINES for w in line.split(" "))


def example(name: str, args: List[str], cwd: Path) -> Job:
    return Job([sys.executable, str(EXAMPLES / name), *args], cwd)


@pytest.fixture
def netcat():
    nc = Netcat()
    yield nc
    nc.close()


@pytest.fixture(autouse=True)
def no_ui(monkeypatch):
    # Examples serve the web UI; several test runs side by side need other ports.
    monkeypatch.setenv("EMBER_UI", "127.0.0.1:0")


def test_network_wordcount(netcat: Netcat, tmp_path: Path) -> None:
    job = example("network_wordcount.py", ["127.0.0.1", str(netcat.port)], tmp_path)
    job.wait_for(lambda ls: len(batches(ls)) >= 1, "no batch printed")
    netcat.send("".join(line + "\n" for line in LINES))
    job.wait_for(lambda ls: word_counts(ls) == EXPECTED, f"counts never reached {EXPECTED}")
    assert job.stop() == 0, job.stderr


def test_windowed_network_wordcount(netcat: Netcat, tmp_path: Path) -> None:
    job = example("windowed_network_wordcount.py", ["127.0.0.1", str(netcat.port)], tmp_path)
    netcat.send("".join(line + "\n" for line in LINES))
    # Every 10 s, the last 30 s: the first window that holds the lines shows
    # their counts.
    job.wait_for(lambda ls: any(Counter(dict(ast.literal_eval(r) for r in b)) == EXPECTED
                                for b in batches(ls)), f"no window showed {EXPECTED}")
    assert job.stop() == 0, job.stderr
    assert "/dashboard/0" in job.stderr


def test_sql_network_wordcount(netcat: Netcat, tmp_path: Path) -> None:
    if importlib.util.find_spec("datafusion") is None and os.environ.get("EMBER_REQUIRE_SQL") != "1":
        pytest.skip("the sql extra (datafusion, pyarrow) is not installed")
    job = example("sql_network_wordcount.py", ["127.0.0.1", str(netcat.port)], tmp_path)
    job.wait_for(lambda ls: any(l.startswith("========= ") for l in ls), "no batch printed")
    netcat.send("".join(line + "\n" for line in LINES))
    job.wait_for(lambda ls: table_counts(ls) == EXPECTED, f"counts never reached {EXPECTED}")
    assert job.stop() == 0, job.stderr


def test_queue_stream(tmp_path: Path) -> None:
    job = example("queue_stream.py", [], tmp_path)
    assert job.finish() == 0, job.stderr
    printed = [b for b in batches(job.lines) if b]
    assert 1 <= len(printed) <= 5
    for records in printed:
        assert sorted(ast.literal_eval(r) for r in records) == [(d, 100) for d in range(10)]


def test_stateful_word_count_resumes_after_a_restart(tmp_path: Path) -> None:
    watched, checkpoint = tmp_path / "in", tmp_path / "ckpt"
    watched.mkdir()

    def drop(name: str, text: str) -> None:
        staged = tmp_path / f"{name}.staged"
        staged.write_text(text)
        os.rename(staged, watched / name)

    def totals(lines: List[str]) -> dict:
        last: dict = {}
        for records in batches(lines):
            for r in records:
                word, total = ast.literal_eval(r)
                last[word] = total
        return last

    job = example("stateful_word_count.py", [str(watched), str(checkpoint)], tmp_path)
    job.wait_for(lambda ls: len(batches(ls)) >= 1, "no batch printed")
    drop("1.txt", "to be or not to be\n")
    job.wait_for(lambda ls: totals(ls) == {"to": 2, "be": 2, "or": 1, "not": 1}, "first counts")
    assert job.stop() == 0, job.stderr
    # A restart resumes from the checkpoint: the totals go on.
    job = example("stateful_word_count.py", [str(watched), str(checkpoint)], tmp_path)
    job.wait_for(lambda ls: len(batches(ls)) >= 1, "no batch printed after the restart")
    drop("2.txt", "to be\n")
    job.wait_for(lambda ls: totals(ls) == {"to": 3, "be": 3}, "the totals did not go on")
    assert job.stop() == 0, job.stderr


def _produce(brokers: str, topic: str, lines: List[str], cwd: Path) -> None:
    # Written with ember's own Kafka sink, one batch.
    program = (
        "from ember import SparkConf, SparkContext\n"
        "from ember.streaming import StreamingContext\n"
        "conf = SparkConf().set('spark.ui.enabled', 'false')"
        ".set('spark.streaming.clock', 'org.apache.spark.util.ManualClock')\n"
        "ssc = StreamingContext(SparkContext('local[1]', 'produce', conf=conf), 1)\n"
        f"ssc.queueStream([{lines!r}]).saveToKafka({brokers!r}, {topic!r})\n"
        "ssc.start(); ssc._run_batches(1); ssc.stop()\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, cwd=cwd, timeout=120)


def test_direct_kafka_wordcount(tmp_path: Path) -> None:
    brokers = need_service(BROKERS, "EMBER_TEST_KAFKA_BROKERS")
    topic = f"ex-{uuid.uuid4().hex[:8]}"
    create_topic(brokers, topic, 2)
    _produce(brokers, topic, LINES, tmp_path)
    job = example("direct_kafka_wordcount.py", [brokers, topic], tmp_path)
    job.wait_for(lambda ls: word_counts(ls) == EXPECTED, f"counts never reached {EXPECTED}")
    assert job.stop() == 0, job.stderr


def test_kafka_to_postgres(tmp_path: Path) -> None:
    brokers = need_service(BROKERS, "EMBER_TEST_KAFKA_BROKERS")
    url = need_service(POSTGRES, "EMBER_TEST_POSTGRES_URL")
    psql = os.path.join(os.environ.get("EMBER_TEST_POSTGRES_BIN", "/usr/bin"), "psql")
    subprocess.run([psql, url, "-c", "DROP TABLE IF EXISTS word_counts"], check=True,
                   capture_output=True)
    topic = f"ex-{uuid.uuid4().hex[:8]}"
    create_topic(brokers, topic, 2)
    _produce(brokers, topic, LINES, tmp_path)

    def table() -> dict:
        out = subprocess.run([psql, url, "-At", "-c", "SELECT word, total FROM word_counts"],
                             capture_output=True, text=True)
        return {w: int(n) for w, n in (l.split("|") for l in out.stdout.split())} \
            if out.returncode == 0 else {}

    job = example("kafka_to_postgres.py", [brokers, topic, url, str(tmp_path / "ckpt")], tmp_path)
    job.wait_for(lambda ls: table() == dict(EXPECTED), f"the table never held {dict(EXPECTED)}")
    assert job.stop() == 0, job.stderr
