"""Spark Streaming's Python API on ember's engine: ``pyspark.streaming``'s
names and semantics (``StreamingContext``, ``DStream``,
``StreamingListener``), plus Spark's ``mapWithState`` (``StateSpec``)."""

from ember.streaming.context import StreamingContext
from ember.streaming.dstream import DStream, MapWithStateDStream, TransformedDStream
from ember.streaming.listener import StreamingListener
from ember.streaming.state import State, StateSpec

__all__ = [
    "StreamingContext",
    "DStream",
    "StreamingListener",
    "StateSpec",
    "State",
    "TransformedDStream",
    "MapWithStateDStream",
]
