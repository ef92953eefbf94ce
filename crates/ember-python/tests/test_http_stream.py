"""HttpUtils against a real HTTP server on loopback (Python's http.server in
a thread): JSON lines and Server-Sent Events arrive decoded and once,
across a dropped connection, with the bearer token sent and
``Last-Event-ID`` honoured."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List

import pytest

from ember import SparkConf, SparkContext
from ember.streaming import StreamingContext
from ember.streaming.http import HttpUtils


class Feed(BaseHTTPRequestHandler):
    """First request: half the data, then the connection closes; later
    requests: the rest (after the last event id for SSE), held open."""

    protocol_version = "HTTP/1.0"
    requests: List[dict] = []
    counts: dict = {}
    done = threading.Event()

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        Feed.requests.append({k.lower(): v for k, v in self.headers.items()})
        n = Feed.counts.get(self.path, 0)
        Feed.counts[self.path] = n + 1
        self.send_response(200)
        if self.path == "/lines":
            self.send_header("Content-Type", "application/x-ndjson")
            self.end_headers()
            ids = range(0, 50) if n == 0 else range(50, 100)
            body = "".join(json.dumps({"n": i, "text": f"é {i}"}) + ("\n\n" if i % 10 == 0 else "\n")
                           for i in ids)
            hold = n > 0
        else:
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            after = int(self.headers.get("Last-Event-ID") or 0)
            body = ": hello\nretry: 50\n\n"
            for i in range(after + 1, min(after + 5, 10) + 1):
                body += f"event: tick\nid: {i}\ndata: one {i}\ndata: two\n\n"
            hold = after + 5 >= 10
            if not hold:
                body += "data: cut off"  # an unfinished event, then the end
        self.wfile.write(body.encode())
        self.wfile.flush()
        while hold and not Feed.done.is_set():
            self.wfile.write(b"\n" if self.path == "/lines" else b": keep-alive\n")
            self.wfile.flush()
            time.sleep(0.05)


@pytest.fixture
def server():
    Feed.requests = []
    Feed.counts = {}
    Feed.done = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    Feed.done.set()
    httpd.shutdown()
    httpd.server_close()


def _collect(ssc: StreamingContext, stream, want: int) -> list:
    got: list = []
    batches = [0]
    changed = threading.Condition()

    def add(rdd) -> None:
        with changed:
            got.extend(rdd.collect())
            batches[0] += 1
            changed.notify_all()

    stream.foreachRDD(add)
    ssc.start()
    with changed:
        assert changed.wait_for(lambda: len(got) >= want, timeout=60), got[:10]
        seen = batches[0]
        assert changed.wait_for(lambda: batches[0] >= seen + 3, timeout=60)
    return got


@pytest.mark.parametrize("master", ["local[1]", "local[3]"])
def test_json_lines_arrive_decoded_and_once(server: str, master: str) -> None:
    conf = SparkConf().set("spark.ui.enabled", "false")
    ssc = StreamingContext(SparkContext(master=master, appName="http", conf=conf), 0.2)
    try:
        stream = HttpUtils.createJsonLinesStream(ssc, server + "/lines", bearerToken="s3cret")
        got = _collect(ssc, stream, 100)
        assert sorted(got, key=lambda r: r["n"]) == [{"n": i, "text": f"é {i}"} for i in range(100)]
        assert Feed.requests[0].get("authorization") == "Bearer s3cret"
    finally:
        ssc.stop(stopSparkContext=True)


def test_server_sent_events_resume_after_the_last_id(server: str) -> None:
    conf = SparkConf().set("spark.ui.enabled", "false")
    ssc = StreamingContext(SparkContext(master="local[2]", appName="http", conf=conf), 0.2)
    try:
        stream = HttpUtils.createServerSentEventsStream(ssc, server + "/events")
        got = _collect(ssc, stream, 10)
        assert sorted(got, key=lambda e: int(e[0])) == [
            (str(i), "tick", f"one {i}\ntwo") for i in range(1, 11)]
        assert any(r.get("last-event-id") == "5" for r in Feed.requests), Feed.requests
    finally:
        ssc.stop(stopSparkContext=True)
