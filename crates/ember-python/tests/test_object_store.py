"""textFileStream and binaryRecordsStream over an S3-compatible object store
(moto's server, started by ``.ci/python.sh``; ``EMBER_TEST_S3_ENDPOINT``):
each new object is read once, whole, at one and three workers; a missing
bucket fails the start."""

from __future__ import annotations

import os
import threading
import urllib.request
import uuid
from typing import Callable, List

import pytest

from ember import SparkConf, SparkContext
from ember.streaming import StreamingContext
from support import need_service

ENDPOINT = os.environ.get("EMBER_TEST_S3_ENDPOINT")


@pytest.fixture
def endpoint(monkeypatch) -> str:
    url = need_service(ENDPOINT, "EMBER_TEST_S3_ENDPOINT")
    # The store is configured as AWS tools are; moto takes any credentials.
    for key, value in {
        "AWS_ENDPOINT": url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    return url


def _request(url: str, data: bytes = b"") -> None:
    # Without a content type urllib sends a form's, which moto's server
    # stores as an empty object.
    headers = {"Content-Type": "application/octet-stream"}
    request = urllib.request.Request(url, data=data, method="PUT", headers=headers)
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200, answer.status


def _bucket(endpoint: str) -> str:
    name = f"ember-py-{uuid.uuid4().hex[:12]}"
    _request(f"{endpoint}/{name}")
    return name


def _context(master: str) -> StreamingContext:
    conf = SparkConf().set("spark.ui.enabled", "false")
    return StreamingContext(SparkContext(master=master, appName="s3", conf=conf), 0.2)


class Collected:
    """Every batch's records, and a way to wait on them."""

    def __init__(self) -> None:
        self.records: List = []
        self.batches = 0
        self.changed = threading.Condition()

    def add(self, rdd) -> None:
        with self.changed:
            self.records.extend(rdd.collect())
            self.batches += 1
            self.changed.notify_all()

    def wait_for(self, done: Callable[["Collected"], bool]) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: done(self), timeout=60), self.records[:20]


@pytest.mark.parametrize("master", ["local[1]", "local[3]"])
def test_new_objects_are_read_once_each(endpoint: str, master: str) -> None:
    bucket = _bucket(endpoint)
    ssc = _context(master)
    try:
        got = Collected()
        ssc.textFileStream(f"s3://{bucket}/in/").foreachRDD(got.add)
        ssc.start()
        got.wait_for(lambda c: c.batches >= 1)
        want = []
        for i in range(8):
            lines = [f"o{i}-{j} é" for j in range(i + 1)]
            _request(f"{endpoint}/{bucket}/in/part-{i}", "\n".join(lines).encode())
            want += lines
        _request(f"{endpoint}/{bucket}/in/_SUCCESS", b"hidden\n")
        _request(f"{endpoint}/{bucket}/in/sub/x", b"deeper\n")
        got.wait_for(lambda c: len(c.records) >= len(want))
        seen = got.batches
        got.wait_for(lambda c: c.batches >= seen + 3)  # nothing read twice
        assert sorted(got.records) == sorted(want)
    finally:
        ssc.stop(stopSparkContext=True)


def test_binary_records_from_a_bucket(endpoint: str) -> None:
    bucket = _bucket(endpoint)
    ssc = _context("local[2]")
    try:
        got = Collected()
        ssc.binaryRecordsStream(f"s3://{bucket}/bin", 3).foreachRDD(got.add)
        ssc.start()
        got.wait_for(lambda c: c.batches >= 1)
        _request(f"{endpoint}/{bucket}/bin/r", bytes(range(9)))
        got.wait_for(lambda c: len(c.records) >= 3)
        assert sorted(got.records) == [bytes([0, 1, 2]), bytes([3, 4, 5]), bytes([6, 7, 8])]
    finally:
        ssc.stop(stopSparkContext=True)


def test_a_missing_bucket_fails_the_start(endpoint: str) -> None:
    ssc = _context("local[1]")
    try:
        ssc.textFileStream("s3://no-such-bucket-for-ember/in/").pprint()
        with pytest.raises(Exception, match="NoSuchBucket|no-such-bucket-for-ember"):
            ssc.start()
    finally:
        ssc.stop(stopSparkContext=True)
