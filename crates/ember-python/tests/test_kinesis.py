"""KinesisUtils.createStream against a real Kinesis-API server (moto's,
started by ``.ci/python.sh``; ``EMBER_TEST_KINESIS_ENDPOINT``): every record
put is read once, decoded, at one and three workers."""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.request
import uuid
from typing import List

import pytest

from ember import SparkConf, SparkContext
from ember.streaming import StreamingContext
from ember.streaming.kinesis import InitialPositionInStream, KinesisUtils
from support import need_service

ENDPOINT = os.environ.get("EMBER_TEST_KINESIS_ENDPOINT")


def _call(endpoint: str, action: str, body: dict) -> dict:
    """One call of Kinesis's JSON API (moto does not check signatures)."""
    request = urllib.request.Request(
        endpoint + "/", data=json.dumps(body).encode(), method="POST",
        headers={
            "X-Amz-Target": f"Kinesis_20131202.{action}",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kinesis/"
                             "aws4_request, SignedHeaders=host, Signature=0",
        })
    with urllib.request.urlopen(request) as answer:
        text = answer.read()
    return json.loads(text) if text else {}


@pytest.mark.parametrize("master", ["local[1]", "local[3]"])
def test_records_put_are_read_once_each(master: str) -> None:
    endpoint = need_service(ENDPOINT, "EMBER_TEST_KINESIS_ENDPOINT")
    name = f"ember_py_{uuid.uuid4().hex[:12]}"
    _call(endpoint, "CreateStream", {"StreamName": name, "ShardCount": 2})
    want = [f"record {i} é" for i in range(60)]
    for text in want[:30]:  # before the start: TRIM_HORIZON reads them
        _call(endpoint, "PutRecord", {"StreamName": name, "PartitionKey": text,
                                      "Data": base64.b64encode(text.encode()).decode()})
    conf = SparkConf().set("spark.ui.enabled", "false")
    ssc = StreamingContext(SparkContext(master=master, appName="kinesis", conf=conf), 0.2)
    got: List[str] = []
    batches = [0]
    changed = threading.Condition()

    def add(rdd) -> None:
        with changed:
            got.extend(rdd.collect())
            batches[0] += 1
            changed.notify_all()

    try:
        stream = KinesisUtils.createStream(
            ssc, "app", name, endpoint, "us-east-1", InitialPositionInStream.TRIM_HORIZON, 1,
            awsAccessKeyId="test", awsSecretKey="test")
        stream.foreachRDD(add)
        ssc.start()
        for text in want[30:]:
            _call(endpoint, "PutRecord", {"StreamName": name, "PartitionKey": text,
                                          "Data": base64.b64encode(text.encode()).decode()})
        with changed:
            assert changed.wait_for(lambda: len(got) >= len(want), timeout=60), got
            seen = batches[0]
            assert changed.wait_for(lambda: batches[0] >= seen + 3, timeout=60)
        assert sorted(got) == sorted(want)
    finally:
        ssc.stop(stopSparkContext=True)


def test_a_missing_stream_fails_the_start() -> None:
    endpoint = need_service(ENDPOINT, "EMBER_TEST_KINESIS_ENDPOINT")
    conf = SparkConf().set("spark.ui.enabled", "false")
    ssc = StreamingContext(SparkContext(master="local[1]", appName="kinesis", conf=conf), 0.2)
    try:
        KinesisUtils.createStream(ssc, "app", "no_such_stream_for_ember", endpoint, "us-east-1",
                                  InitialPositionInStream.LATEST, 1, awsAccessKeyId="test",
                                  awsSecretKey="test").pprint()
        with pytest.raises(Exception, match="no_such_stream_for_ember"):
            ssc.start()
    finally:
        ssc.stop(stopSparkContext=True)
