"""Kinesis for Python streams: ``pyspark.streaming.kinesis``'s
``KinesisUtils.createStream`` on ember's Kinesis connector. Each batch reads
every open shard's next records; with checkpointing on, the batch's records
are logged and each shard's position saved, so a restart with
``StreamingContext.getOrCreate`` reads exactly the same records again.
Resharding (split, merge) is followed."""

from __future__ import annotations

import datetime
from typing import Any, Callable, Optional, Union

from ember.streaming.dstream import DStream

__all__ = ["KinesisUtils", "InitialPositionInStream", "MetricsLevel", "utf8_decoder"]


def utf8_decoder(s: Optional[bytes]) -> Optional[str]:
    """Decodes UTF-8 bytes (None stays None)."""
    if s is None:
        return None
    return s.decode("utf-8")


class InitialPositionInStream:
    """Where a first start reads shards from (PySpark's constants)."""

    LATEST, TRIM_HORIZON = (0, 1)


class MetricsLevel:
    """PySpark's CloudWatch metrics levels; ember publishes none (its
    metrics are on the web UI and ``/metrics``), so they are accepted and
    ignored."""

    DETAILED, SUMMARY, NONE = (0, 1, 2)


class KinesisUtils:
    """Kinesis streams, as PySpark's ``KinesisUtils``."""

    @staticmethod
    def createStream(ssc: Any, kinesisAppName: str, streamName: str, endpointUrl: str,
                     regionName: str,
                     initialPositionInStream: Union[int, datetime.datetime, float],
                     checkpointInterval: Any, metricsLevel: int = MetricsLevel.DETAILED,
                     storageLevel: Any = None, awsAccessKeyId: Optional[str] = None,
                     awsSecretKey: Optional[str] = None,
                     decoder: Callable[[Optional[bytes]], Any] = utf8_decoder,
                     stsAssumeRoleArn: Optional[str] = None,
                     stsSessionName: Optional[str] = None,
                     stsExternalId: Optional[str] = None) -> DStream:
        """A DStream of the records of ``streamName``, each decoded by
        ``decoder`` (UTF-8 text by default).

        ``initialPositionInStream`` is ``InitialPositionInStream.LATEST``,
        ``TRIM_HORIZON``, or a ``datetime`` (or seconds since the epoch) for
        records that arrived from then on. ``endpointUrl`` and
        ``regionName`` locate the service (an empty endpoint means AWS's);
        credentials are the arguments' or the environment's
        (``AWS_ACCESS_KEY_ID``...). ``kinesisAppName`` and
        ``checkpointInterval`` name the KCL's DynamoDB checkpoints in
        Spark; ember keeps shard positions in its own checkpoint, so they
        are accepted and not needed. STS role assumption is not supported.
        """
        if stsAssumeRoleArn or stsSessionName or stsExternalId:
            raise NotImplementedError("ember's Kinesis stream does not assume STS roles: give "
                                      "credentials (arguments or AWS_* variables)")
        ssc._check_not_started()
        params = {"stream": str(streamName), "endpoint": str(endpointUrl or ""),
                  "region": str(regionName or "")}
        if isinstance(initialPositionInStream, datetime.datetime):
            params["initial"] = "at_timestamp"
            params["timestamp"] = str(initialPositionInStream.timestamp())
        elif initialPositionInStream == InitialPositionInStream.LATEST:
            params["initial"] = "latest"
        elif initialPositionInStream == InitialPositionInStream.TRIM_HORIZON:
            params["initial"] = "trim_horizon"
        elif isinstance(initialPositionInStream, (int, float)):
            params["initial"] = "at_timestamp"
            params["timestamp"] = str(float(initialPositionInStream))
        else:
            raise ValueError(f"initialPositionInStream: {initialPositionInStream!r} is not "
                             "LATEST, TRIM_HORIZON or a time")
        if awsAccessKeyId and awsSecretKey:
            params["key_id"], params["secret"] = str(awsAccessKeyId), str(awsSecretKey)
        raw = DStream(ssc, "kinesis", [], {"params": params}, ssc._batch_ms)

        def decode(_: int, records: Any) -> Any:
            return (decoder(r) for r in records)

        return raw._pipe(decode)
