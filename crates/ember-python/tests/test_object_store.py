"""textFileStream and binaryRecordsStream over object stores started by
``.ci/python.sh``: an S3-compatible one (moto's server,
``EMBER_TEST_S3_ENDPOINT``) and Azure Blob Storage (Azurite,
``AZURITE_BLOB_STORAGE_URL``). Each new object is read once, whole, at one
and three workers; a missing bucket and refused credentials fail the
start."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import os
import threading
import urllib.error
import urllib.request
import uuid
from typing import Callable, Dict, List, Optional

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


AZURITE = os.environ.get("AZURITE_BLOB_STORAGE_URL")
# The account every Azurite serves, and its published key.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _azurite_request(url: str, path: str, query: Optional[Dict[str, str]] = None,
                     headers: Optional[Dict[str, str]] = None, body: bytes = b"") -> None:
    """A PUT to Azurite signed with the account's key (Azure's Shared Key
    scheme), which must answer 201."""
    query = query or {}
    ms = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06",
          **(headers or {})}
    to_sign = "\n".join(["PUT", "", "", str(len(body)) if body else "", "", "", "", "", "", "",
                         "", ""])
    to_sign += "\n" + "".join(f"{k}:{v}\n" for k, v in sorted(ms.items()))
    to_sign += f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}{path}"
    to_sign += "".join(f"\n{k}:{v}" for k, v in sorted(query.items()))
    mac = hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256)
    ms["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{base64.b64encode(mac.digest()).decode()}"
    ms["Content-Type"] = ""
    target = f"{url}/{AZURITE_ACCOUNT}{path}" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                                                 if query else "")
    request = urllib.request.Request(target, data=body, method="PUT", headers=ms)
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 201, answer.status


class Store:
    """A test server's store: where a bucket is made and objects written,
    and the URLs a stream reads."""

    def __init__(self, kind: str, address: str) -> None:
        self.kind, self.address = kind, address

    def bucket(self) -> str:
        name = f"ember-py-{uuid.uuid4().hex[:12]}"
        if self.kind == "s3":
            _request(f"{self.address}/{name}")
        else:
            _azurite_request(self.address, f"/{name}", {"restype": "container"})
        return name

    def put(self, bucket: str, key: str, body: bytes) -> None:
        if self.kind == "s3":
            _request(f"{self.address}/{bucket}/{key}", body)
        else:
            _azurite_request(self.address, f"/{bucket}/{key}",
                             headers={"x-ms-blob-type": "BlockBlob"}, body=body)


@pytest.fixture(params=["s3", "az"])
def store(request, monkeypatch) -> Store:
    if request.param == "s3":
        return Store("s3", request.getfixturevalue("endpoint"))
    url = need_service(AZURITE, "AZURITE_BLOB_STORAGE_URL")
    # Azure's emulator mode, as the object_store crate reads it; it finds
    # Azurite in AZURITE_BLOB_STORAGE_URL.
    monkeypatch.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
    return Store("az", url)


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
def test_new_objects_are_read_once_each(store: Store, master: str) -> None:
    bucket = store.bucket()
    ssc = _context(master)
    try:
        got = Collected()
        ssc.textFileStream(f"{store.kind}://{bucket}/in/").foreachRDD(got.add)
        ssc.start()
        got.wait_for(lambda c: c.batches >= 1)
        want = []
        for i in range(8):
            lines = [f"o{i}-{j} é" for j in range(i + 1)]
            store.put(bucket, f"in/part-{i}", "\n".join(lines).encode())
            want += lines
        store.put(bucket, "in/_SUCCESS", b"hidden\n")
        store.put(bucket, "in/sub/x", b"deeper\n")
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


def test_refused_credentials_fail_the_start_naming_what_to_check(monkeypatch) -> None:
    refusing = need_service(os.environ.get("EMBER_TEST_AWS_REFUSING_ENDPOINT"),
                            "EMBER_TEST_AWS_REFUSING_ENDPOINT")
    azurite = need_service(AZURITE, "AZURITE_BLOB_STORAGE_URL")
    container = Store("az", azurite).bucket()
    # moto checking credentials knows no keys; Azurite knows only its own.
    for key, value in {
        "AWS_ENDPOINT": refusing,
        "AWS_ACCESS_KEY_ID": "unknown",
        "AWS_SECRET_ACCESS_KEY": "unknown",
        "AWS_REGION": "us-east-1",
        "AZURE_STORAGE_USE_EMULATOR": "true",
        "AZURE_STORAGE_ACCOUNT_KEY": base64.b64encode(b"not the key").decode(),
    }.items():
        monkeypatch.setenv(key, value)
    for url, settings in [("s3://bucket/in/", "AWS_ACCESS_KEY_ID"),
                          (f"az://{container}/in/", "AZURE_STORAGE_ACCOUNT_KEY")]:
        ssc = _context("local[1]")
        try:
            ssc.textFileStream(url).pprint()
            with pytest.raises(Exception) as refused:
                ssc.start()
            text = str(refused.value)
            assert url in text and "403" in text and settings in text, text
        finally:
            ssc.stop(stopSparkContext=True)


def test_hdfs_with_its_namenode_down_starts_and_batches_go_on() -> None:
    # No NameNode can be run here (Hadoop comes from Maven Central, which
    # this machine cannot reach): the client's side only. A NameNode that
    # does not answer at start is logged and listed again every batch.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ssc = _context("local[2]")
    try:
        got = Collected()
        ssc.textFileStream(f"hdfs://127.0.0.1:{port}/user/ember/in/").foreachRDD(got.add)
        ssc.start()
        got.wait_for(lambda c: c.batches >= 3)
        assert got.records == []
    finally:
        ssc.stop(stopSparkContext=True)
