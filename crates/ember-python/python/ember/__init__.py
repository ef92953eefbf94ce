"""ember: Spark Streaming's DStreams on a Rust engine, with PySpark's API.

``ember.streaming`` mirrors ``pyspark.streaming`` (``StreamingContext``,
``DStream``, ``StreamingListener``); ``ember`` itself offers the small part of
PySpark's core a streaming program touches (``SparkConf``, ``SparkContext``,
``RDD``, ``StorageLevel``). To run a PySpark program unchanged, use the
launcher: ``python -m ember.submit job.py``.
"""

from ember.context import Accumulator, Broadcast, SparkConf, SparkContext, StorageLevel
from ember.rdd import RDD

__all__ = [
    "Accumulator",
    "Broadcast",
    "RDD",
    "SparkConf",
    "SparkContext",
    "StorageLevel",
    "StreamingError",
]


def __getattr__(name: str):
    # The native module loads only when the engine is needed, so that the
    # pure-Python parts import without it.
    if name == "StreamingError":
        from ember._native import StreamingError

        return StreamingError
    raise AttributeError(f"module 'ember' has no attribute {name!r}")
