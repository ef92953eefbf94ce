"""The web UI's monitoring endpoints as existing tooling reads them:
``/metrics`` through the official Prometheus client's text parser, and
Spark's streaming REST API through the paths and fields a client written
for a Spark driver uses (``/api/v1/applications/{appId}/streaming/...``)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import datetime, timezone
from operator import add

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ember.context import SparkConf, SparkContext
from ember.streaming import StreamingContext

# Records per batch of the queue stream: varied, one batch empty.
SIZES = [5, 0, 12, 3]


@pytest.fixture(autouse=True)
def no_launcher_settings(monkeypatch):
    monkeypatch.delenv("EMBER_MASTER", raising=False)
    monkeypatch.delenv("EMBER_APP_NAME", raising=False)


def get(base: str, path: str) -> str:
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return r.read().decode()


def get_json(base: str, path: str):
    return json.loads(get(base, path))


def status_of(base: str, path: str) -> int:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def spark_date_ms(s: str) -> int:
    """A date in Spark's REST format (``2026-12-05T01:02:03.456GMT``) as epoch ms."""
    parsed = datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fGMT").replace(tzinfo=timezone.utc)
    return round(parsed.timestamp() * 1000)


@pytest.fixture
def finished_run():
    """Runs four 1 s batches on a manual clock with the UI on a free port and
    yields (UI address, records counted per batch time)."""
    conf = (
        SparkConf(loadDefaults=False)
        .set("spark.ui.port", "0")
        .set("spark.streaming.clock", "org.apache.spark.util.ManualClock")
    )
    sc = SparkContext("local[2]", "monitoring", conf=conf)
    ssc = StreamingContext(sc, 1)
    counted = {}
    lock = threading.Lock()

    def take(time, rdd):
        with lock:
            counted[round(time.timestamp() * 1000)] = sum(n for _, n in rdd.collect())

    batches = [[f"w{i % 4}" for i in range(n)] for n in SIZES]
    ssc.queueStream(batches).map(lambda w: (w, 1)).reduceByKey(add).foreachRDD(take)
    try:
        ssc.start()
        ssc._run_batches(len(SIZES))
        url = ssc.uiWebUrl
        assert url is not None, "the UI should run"
        yield url, counted
    finally:
        try:
            ssc.stop(stopSparkContext=True)
        finally:
            sc.stop()
            StreamingContext._activeContext = None


def test_metrics_parse_with_prometheus_parser(finished_run):
    base, counted = finished_run
    families = {f.name: f for f in text_string_to_metric_families(get(base, "/metrics"))}

    samples = [s for f in families.values() for s in f.samples]

    def value(name: str, **labels) -> float:
        for s in samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        raise AssertionError(f"no sample {name}{labels} in {sorted(families)}")

    batches = len(SIZES)
    assert families["ember_batches_completed"].type == "counter"
    assert value("ember_batches_completed_total") == batches
    assert value("ember_batches_failed_total") == 0
    assert value("ember_records_received_total") == sum(SIZES)
    assert value("ember_records_processed_total") == sum(SIZES)
    assert sum(counted.values()) == sum(SIZES)
    assert value("ember_info", app="monitoring") == 1
    for name in [
        "ember_batch_submission_delay_seconds",
        "ember_batch_scheduling_delay_seconds",
        "ember_batch_processing_time_seconds",
        "ember_batch_total_delay_seconds",
    ]:
        family = families[name]
        assert family.type == "histogram"
        buckets = [s for s in family.samples if s.name == name + "_bucket"]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), f"{name}: buckets not cumulative: {counts}"
        assert buckets[-1].labels["le"] == "+Inf"
        assert counts[-1] == batches
        assert value(name + "_count") == batches
    assert families["process_cpu_seconds"].type == "counter"
    assert value("process_resident_memory_bytes") > 0
    assert value("process_open_fds") >= 1


def test_a_spark_rest_client_reads_the_streaming_api(finished_run):
    base, counted = finished_run
    apps = get_json(base, "/api/v1/applications")
    assert [a["name"] for a in apps] == ["monitoring"]
    app = apps[0]["id"]
    api = f"/api/v1/applications/{app}/streaming"

    stats = get_json(base, f"{api}/statistics")
    assert stats["batchDuration"] == 1000
    assert stats["numTotalCompletedBatches"] == len(SIZES)
    assert stats["numReceivedRecords"] == sum(SIZES)
    assert stats["numProcessedRecords"] == sum(SIZES)
    assert stats["numReceivers"] == 0

    completed = get_json(base, f"{api}/batches?status=COMPLETED")
    # Newest first; the manual clock's batches are at 1 s, 2 s, ...
    assert [b["batchId"] for b in completed] == [4000, 3000, 2000, 1000]
    assert [spark_date_ms(b["batchTime"]) for b in completed] == [4000, 3000, 2000, 1000]
    assert [b["inputSize"] for b in reversed(completed)] == SIZES
    assert {t: n for t, n in counted.items()} == {1000: 5, 2000: 0, 3000: 12, 4000: 3}
    for b in completed:
        assert b["status"] == "COMPLETED"
        assert b["numTotalOutputOps"] == b["numCompletedOutputOps"] == 1
        assert get_json(base, f"{api}/batches/{b['batchId']}") == b
        ops = get_json(base, f"{api}/batches/{b['batchId']}/operations")
        assert [op["outputOpId"] for op in ops] == [0]
        assert get_json(base, f"{api}/batches/{b['batchId']}/operations/0") == ops[0]
    assert get_json(base, f"{api}/batches?status=QUEUED") == []
    assert status_of(base, f"{api}/batches?status=FINISHED") == 400
    assert status_of(base, f"{api}/batches/999") == 404
    assert status_of(base, "/api/v1/applications/app-0/streaming/statistics") == 404
    assert get_json(base, f"{api}/receivers") == []
