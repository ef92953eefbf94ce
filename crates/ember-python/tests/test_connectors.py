"""Kafka, PostgreSQL and the dashboard from Python, against a real
Kafka-protocol broker, a real PostgreSQL server and the real web UI.

``.ci/python.sh`` starts a throw-away broker and server and exports
``EMBER_TEST_KAFKA_BROKERS`` and ``EMBER_TEST_POSTGRES_URL`` (as the Rust
tests have them); without them these tests are skipped, unless
``EMBER_REQUIRE_SERVICES=1`` (as in CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from collections import Counter
from typing import List

import pytest

from ember import SparkConf, SparkContext
from ember.streaming import StreamingContext
from ember.streaming.kafka import KafkaUtils
from support import create_topic, need_service

BROKERS = os.environ.get("EMBER_TEST_KAFKA_BROKERS")
POSTGRES = os.environ.get("EMBER_TEST_POSTGRES_URL")


def _context(master: str = "local[2]", ui: bool = False) -> StreamingContext:
    conf = SparkConf().set("spark.streaming.clock", "org.apache.spark.util.ManualClock")
    if ui:
        conf.set("spark.ui.port", "0")
    else:
        conf.set("spark.ui.enabled", "false")
    sc = SparkContext(master=master, appName="connectors", conf=conf)
    return StreamingContext(sc, 1)


@pytest.mark.parametrize("master", ["local[1]", "local[3]"])
def test_kafka_round_trip(master: str) -> None:
    brokers = need_service(BROKERS, "EMBER_TEST_KAFKA_BROKERS")
    topic = f"py-{uuid.uuid4().hex[:8]}"
    create_topic(brokers, topic, 3)
    records = [(f"k{i % 7}", f"value {i}") for i in range(200)] + [(None, "no key"), (b"\x00\xff", b"raw")]

    # Write: one batch of pairs, keys and values as str or bytes.
    ssc = _context(master)
    ssc.queueStream([records]).saveToKafka(brokers, topic)
    ssc.start()
    ssc._run_batches(1)
    ssc.stop()

    # Read back with a message handler that keeps everything.
    ssc = _context(master)
    got: List[tuple] = []
    stream = KafkaUtils.createDirectStream(
        ssc, [topic], {"bootstrap.servers": brokers, "auto.offset.reset": "smallest"},
        keyDecoder=lambda k: k, valueDecoder=lambda v: v,
        messageHandler=lambda m: (m.topic, m.partition, m.offset, m.key, m.message))
    stream.foreachRDD(lambda rdd: got.extend(rdd.collect()))
    ssc.start()
    ssc._run_batches(3)
    ssc.stop()

    def as_bytes(x):
        return None if x is None else x if isinstance(x, bytes) else x.encode()

    assert Counter((as_bytes(k), as_bytes(v)) for k, v in records) == \
        Counter((k, v) for _, _, _, k, v in got)
    assert {t for t, _, _, _, _ in got} == {topic}
    # Offsets within each partition are contiguous from 0, each read once.
    by_partition: dict = {}
    for _, p, o, _, _ in got:
        by_partition.setdefault(p, []).append(o)
    for offsets in by_partition.values():
        assert sorted(offsets) == list(range(len(offsets)))


def test_kafka_word_count_with_default_decoders() -> None:
    brokers = need_service(BROKERS, "EMBER_TEST_KAFKA_BROKERS")
    topic = f"py-{uuid.uuid4().hex[:8]}"
    create_topic(brokers, topic, 2)
    lines = ["to be or not to be", "that is the question"]
    ssc = _context()
    ssc.queueStream([[("line", l) for l in lines]]).saveToKafka(brokers, topic)
    ssc.start()
    ssc._run_batches(1)
    ssc.stop()

    ssc = _context()
    counts: Counter = Counter()
    kvs = KafkaUtils.createDirectStream(ssc, [topic], {"metadata.broker.list": brokers})
    kvs.map(lambda kv: kv[1]).flatMap(lambda l: l.split(" ")).map(lambda w: (w, 1)) \
        .reduceByKey(lambda a, b: a + b).foreachRDD(lambda rdd: counts.update(dict(rdd.collect())))
    ssc.start()
    ssc._run_batches(2)
    ssc.stop()
    assert counts == Counter(w for l in lines for w in l.split(" "))


def test_kafka_sink_refuses_records_it_cannot_write() -> None:
    brokers = need_service(BROKERS, "EMBER_TEST_KAFKA_BROKERS")
    ssc = _context()
    ssc.queueStream([[("k", 42)]]).saveToKafka(brokers, "never-written")
    ssc.start()
    with pytest.raises(TypeError, match="saveToKafka"):
        ssc._run_batches(1)
    ssc.stop()


def _psql(url: str, sql: str) -> str:
    psql = os.environ.get("EMBER_TEST_POSTGRES_BIN", "")
    exe = os.path.join(psql, "psql") if psql else shutil.which("psql")
    if not exe or not os.path.exists(exe):
        pytest.fail("psql is needed to read the table back")
    out = subprocess.run([exe, url, "-At", "-c", sql], check=True, capture_output=True, text=True)
    return out.stdout


@pytest.mark.parametrize("master", ["local[1]", "local[3]"])
def test_postgres_upsert_running_counts(master: str) -> None:
    url = need_service(POSTGRES, "EMBER_TEST_POSTGRES_URL")
    table = f"py_counts_{uuid.uuid4().hex[:8]}"
    batches = [["a b a", "c"], ["b b"], [], ["a"]]
    ssc = _context(master)
    ssc.checkpoint(os.path.join("/tmp", f"ember-py-ckpt-{uuid.uuid4().hex}"))
    totals = ssc.queueStream(batches).flatMap(lambda l: l.split()).map(lambda w: (w, 1)) \
        .updateStateByKey(lambda new, old: sum(new) + (old or 0))
    totals.saveToPostgres(url, table, ["word", "total"], keys=["word"],
                          createTableSql=f"CREATE TABLE {table} (word TEXT PRIMARY KEY, total BIGINT)")
    ssc.start()
    ssc._run_batches(len(batches))
    ssc.stop()
    rows = _psql(url, f"SELECT word, total FROM {table} ORDER BY word").split()
    expected = Counter(w for b in batches for l in b for w in l.split())
    assert rows == [f"{w}|{n}" for w, n in sorted(expected.items())]


def test_postgres_refuses_wrong_records_and_writes_nothing() -> None:
    url = need_service(POSTGRES, "EMBER_TEST_POSTGRES_URL")
    table = f"py_bad_{uuid.uuid4().hex[:8]}"
    ssc = _context()
    ssc.queueStream([[("a", 1), ("b", [1, 2])]]).saveToPostgres(
        url, table, ["word", "total"],
        createTableSql=f"CREATE TABLE {table} (word TEXT, total BIGINT)")
    ssc.start()
    with pytest.raises(TypeError, match="saveToPostgres"):
        ssc._run_batches(1)
    ssc.stop()
    exists = _psql(url, f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'")
    if exists.strip() == "1":
        assert _psql(url, f"SELECT count(*) FROM {table}").strip() == "0"


def test_dashboard_serves_the_counts() -> None:
    ssc = _context(ui=True)
    words = ["x", "y", "x", "z", "x", "y"]
    ssc.queueStream([words]).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).toDashboard("words")
    ssc.start()
    ssc._run_batches(1)
    url = ssc.uiWebUrl
    assert url and url.startswith("http://")
    data = json.loads(urllib.request.urlopen(f"{url}/api/v1/dashboards/0", timeout=10).read())
    page = urllib.request.urlopen(f"{url}/dashboard/0", timeout=10).read().decode()
    ssc.stop()
    assert data["title"] == "words"
    # Largest count first, as the page draws them.
    assert [(r["key"], r["value"]) for r in data["rows"]] == [("x", 3.0), ("y", 2.0), ("z", 1.0)]
    assert page.startswith("<!DOCTYPE html>")  # the page that polls the JSON above
