"""HTTP streams for Python: a long-lived HTTP response read as JSON lines or
as Server-Sent Events — the shape of Twitter's old streaming API (whose
``TwitterUtils`` left Spark in 2.0) and of many vendors' event feeds — on
ember's HTTP receivers.

The receiver reconnects with a backoff (1 s doubling to 30 s, honouring
``Retry-After`` and the stream's ``retry:``), resumes Server-Sent Events
with ``Last-Event-ID``, and never stores a line cut off by a lost
connection; ``401``, ``403``, ``404`` and ``410`` stop the context. With
``spark.streaming.receiver.writeAheadLog.enable`` set (and a checkpoint
directory), what was received survives a crash, and a Server-Sent Events
stream restarted by ``StreamingContext.getOrCreate`` asks for what follows
the last event in the log (``Last-Event-ID``): from a server that honours
it, no event is lost or counted twice across a ``kill -9``."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional

from ember.streaming.dstream import DStream

__all__ = ["HttpUtils"]


def _headers(headers: Optional[Dict[str, str]], bearerToken: Optional[str]) -> Dict[str, str]:
    out = {str(k): str(v) for k, v in (headers or {}).items()}
    if bearerToken:
        out["Authorization"] = f"Bearer {bearerToken}"
    return out


class HttpUtils:
    """HTTP streaming sources."""

    @staticmethod
    def createJsonLinesStream(ssc: Any, url: str, headers: Optional[Dict[str, str]] = None,
                              bearerToken: Optional[str] = None,
                              decoder: Optional[Callable[[str], Any]] = json.loads) -> DStream:
        """A DStream of the lines of the response at ``url`` (blank
        keep-alive lines skipped), each decoded by ``decoder`` (``json.loads``
        by default; ``None`` keeps the text). A line ``decoder`` rejects
        raises in the batch, stopping the context with the error."""
        ssc._check_not_started()
        raw = HttpUtils._raw(ssc, url, False, _headers(headers, bearerToken))
        if decoder is None:
            return raw
        return raw._pipe(lambda _t, lines: (decoder(line) for line in lines))

    @staticmethod
    def createServerSentEventsStream(ssc: Any, url: str,
                                     headers: Optional[Dict[str, str]] = None,
                                     bearerToken: Optional[str] = None) -> DStream:
        """A DStream of the events of the ``text/event-stream`` at ``url``,
        each an ``(id, event, data)`` tuple: the last event id the stream
        set (or None), the event type (``"message"`` when not given) and
        the data lines joined with ``\\n``."""
        ssc._check_not_started()
        return HttpUtils._raw(ssc, url, True, _headers(headers, bearerToken))

    @staticmethod
    def _raw(ssc: Any, url: str, events: bool, headers: Dict[str, str]) -> DStream:
        from ember.streaming.context import _is_true

        wal = _is_true(ssc._sc.getConf().get("spark.streaming.receiver.writeAheadLog.enable"))
        args = {"url": str(url), "events": events, "headers": headers,
                "write_ahead_log": bool(wal)}
        return DStream(ssc, "http", [], args, ssc._batch_ms)
