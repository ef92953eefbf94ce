"""The directory sources from Python on the real clock: textFileStream and
binaryRecordsStream read each new file once, whole."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, List

import pytest

from ember import SparkConf, SparkContext
from ember.streaming import StreamingContext


@pytest.fixture(params=["local[1]", "local[3]"])
def ssc(request):
    conf = SparkConf().set("spark.ui.enabled", "false")
    sc = SparkContext(master=request.param, appName="files", conf=conf)
    ssc = StreamingContext(sc, 0.2)
    yield ssc
    ssc.stop(stopSparkContext=True)


def _drop(directory: Path, name: str, data: bytes) -> None:
    staged = directory.parent / f"{name}.staged"
    staged.write_bytes(data)
    os.rename(staged, directory / name)


class Collected:
    """The records of every batch, and a way to wait for a condition on them."""

    def __init__(self) -> None:
        self.records: List = []
        self.errors: List[BaseException] = []
        self.changed = threading.Condition()

    def add(self, rdd) -> None:
        with self.changed:
            self.records.extend(rdd.collect())
            self.changed.notify_all()

    def wait_for(self, done: Callable[[List], bool], ssc: StreamingContext) -> None:
        with self.changed:
            ok = self.changed.wait_for(lambda: done(self.records), timeout=60)
        if not ok:
            ssc.awaitTerminationOrTimeout(0.01)  # raises the context's error, if any
            pytest.fail(f"never done; records: {self.records[:20]}")


def test_text_files_are_read_line_by_line(ssc: StreamingContext, tmp_path: Path) -> None:
    watched = tmp_path / "in"
    watched.mkdir()
    got = Collected()
    ssc.textFileStream(str(watched)).foreachRDD(got.add)
    ssc.start()
    _drop(watched, "a.txt", b"one\ntwo\r\nthree")
    _drop(watched, ".hidden", b"never\n")
    got.wait_for(lambda r: len(r) >= 3, ssc)
    _drop(watched, "b.txt", "caf\u00e9\n".encode())
    got.wait_for(lambda r: len(r) >= 4, ssc)
    assert sorted(got.records) == sorted(["one", "two", "three", "caf\u00e9"])


def test_binary_records_are_bytes_of_the_record_length(ssc: StreamingContext, tmp_path: Path) -> None:
    watched = tmp_path / "in"
    watched.mkdir()
    got = Collected()
    ssc.binaryRecordsStream(str(watched), 3).foreachRDD(got.add)
    ssc.start()
    _drop(watched, "a.bin", bytes(range(9)))
    got.wait_for(lambda r: len(r) >= 3, ssc)
    assert got.records == [b"\x00\x01\x02", b"\x03\x04\x05", b"\x06\x07\x08"]


def test_a_partial_binary_record_stops_the_context(ssc: StreamingContext, tmp_path: Path) -> None:
    from ember import StreamingError

    watched = tmp_path / "in"
    watched.mkdir()
    ssc.binaryRecordsStream(str(watched), 4).foreachRDD(lambda rdd: None)
    ssc.start()
    _drop(watched, "odd.bin", b"12345")
    with pytest.raises(StreamingError, match="odd.bin.*not a multiple"):
        ssc.awaitTermination(60)


def test_record_length_must_be_positive(ssc: StreamingContext, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="recordLength"):
        ssc.binaryRecordsStream(str(tmp_path), 0)


@pytest.mark.parametrize("wal", [True, False])
def test_socket_write_ahead_log_follows_the_spark_setting(tmp_path: Path, wal: bool) -> None:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    conf = SparkConf().set("spark.ui.enabled", "false") \
        .set("spark.streaming.receiver.writeAheadLog.enable", str(wal).lower())
    sc = SparkContext(master="local[2]", appName="wal", conf=conf)
    ssc = StreamingContext(sc, 0.2)
    ssc.checkpoint(str(tmp_path / "ckpt"))
    got = Collected()
    ssc.socketTextStream("127.0.0.1", port).foreachRDD(got.add)
    try:
        ssc.start()
        conn, _ = server.accept()
        conn.sendall(b"one\ntwo\n")
        got.wait_for(lambda r: len(r) >= 2, ssc)
        conn.close()
    finally:
        ssc.stop(stopSparkContext=True)
        server.close()
    assert sorted(got.records) == ["one", "two"]
    logged = [p for p in (tmp_path / "ckpt").rglob("*") if p.is_file() and "receiver" in str(p)]
    assert bool(logged) == wal, logged
