"""StreamingListener: callbacks on streaming events, as in PySpark.

The events are shaped like the Java objects PySpark hands its listeners:
``batchCompleted.batchInfo().batchTime().milliseconds()``,
``batchInfo.processingDelay()`` (milliseconds, -1 when unknown), and so on.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = ["StreamingListener"]


class StreamingListener:
    """Override the callbacks of the events you want; the others do nothing.

    Callbacks run on the engine's threads; an exception in one is logged and
    does not stop the program.
    """

    def onStreamingStarted(self, streamingStarted: Any) -> None:
        """The context started."""

    def onReceiverStarted(self, receiverStarted: Any) -> None:
        """A receiver started."""

    def onReceiverError(self, receiverError: Any) -> None:
        """A receiver reported an error (it retries by itself)."""

    def onReceiverStopped(self, receiverStopped: Any) -> None:
        """A receiver stopped."""

    def onBatchSubmitted(self, batchSubmitted: Any) -> None:
        """A batch was closed and submitted for processing."""

    def onBatchStarted(self, batchStarted: Any) -> None:
        """A batch started processing."""

    def onBatchCompleted(self, batchCompleted: Any) -> None:
        """Every output operation finished a batch."""

    def onOutputOperationStarted(self, outputOperationStarted: Any) -> None:
        """An output operation started on a batch."""

    def onOutputOperationCompleted(self, outputOperationCompleted: Any) -> None:
        """An output operation finished a batch."""


def _ms_or_minus_one(value: Optional[int]) -> int:
    return -1 if value is None else int(value)


class Time:
    """A batch time."""

    def __init__(self, ms: int) -> None:
        self._ms = ms

    def milliseconds(self) -> int:
        """The time in milliseconds since the epoch."""
        return self._ms

    def __repr__(self) -> str:
        return f"{self._ms} ms"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Time) and other._ms == self._ms

    def __hash__(self) -> int:
        return hash(self._ms)


class BatchInfo:
    """A batch's statistics; delays in milliseconds, -1 while unknown."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self._info = info

    def batchTime(self) -> Time:
        return Time(self._info["batch_time"])

    def numRecords(self) -> int:
        return int(self._info["num_records"])

    def submissionTime(self) -> int:
        return int(self._info["submission_time"])

    def processingStartTime(self) -> int:
        return _ms_or_minus_one(self._info["processing_start_time"])

    def processingEndTime(self) -> int:
        return _ms_or_minus_one(self._info["processing_end_time"])

    def schedulingDelay(self) -> int:
        return _ms_or_minus_one(self._info["scheduling_delay"])

    def processingDelay(self) -> int:
        return _ms_or_minus_one(self._info["processing_delay"])

    def totalDelay(self) -> int:
        return _ms_or_minus_one(self._info["total_delay"])

    def streamIdToInputInfo(self) -> Dict[str, int]:
        """Records per input, by the input's name."""
        return dict(self._info["records_by_input"])


class ReceiverInfo:
    """A receiver's state."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self._info = info

    def name(self) -> str:
        return self._info["name"]

    def active(self) -> bool:
        return bool(self._info["active"])

    def streamId(self) -> int:
        return int(self._info["worker"])

    def location(self) -> str:
        return f"worker {self._info['worker']}"

    def executorId(self) -> str:
        return str(self._info["worker"])

    def lastErrorMessage(self) -> str:
        return self._info["last_error"] or ""

    def lastError(self) -> str:
        return self._info["last_error"] or ""

    def lastErrorTime(self) -> int:
        return -1


class OutputOperationInfo:
    """An output operation's run on one batch."""

    def __init__(self, info: Dict[str, Any]) -> None:
        self._info = info

    def batchTime(self) -> Time:
        return Time(self._info["batch_time"])

    def id(self) -> int:
        return int(self._info["id"])

    def name(self) -> str:
        return self._info["name"]

    def description(self) -> str:
        return self._info["name"]

    def startTime(self) -> int:
        return int(self._info["start_time"])

    def endTime(self) -> int:
        return _ms_or_minus_one(self._info["end_time"])

    def duration(self) -> int:
        end = self._info["end_time"]
        return -1 if end is None else int(end) - int(self._info["start_time"])

    def failureReason(self) -> Optional[str]:
        return self._info["failure_reason"]


class _Event:
    """An event: one accessor named after what it carries."""

    def __init__(self, accessor: str, value: Any) -> None:
        setattr(self, accessor, lambda: value)


def _event(name: str, info: Dict[str, Any]) -> Any:
    if name == "onStreamingStarted":
        return _Event("time", info["time"])
    if name.startswith("onReceiver"):
        return _Event("receiverInfo", ReceiverInfo(info))
    if name.startswith("onBatch"):
        return _Event("batchInfo", BatchInfo(info))
    return _Event("outputOperationInfo", OutputOperationInfo(info))


class _ListenerAdapter:
    """What the engine calls: turns its dicts into events for a listener."""

    def __init__(self, listener: StreamingListener) -> None:
        self._listener = listener

    def _dispatch(self, name: str, info: Dict[str, Any]) -> None:
        callback = getattr(self._listener, name, None)
        if callback is not None:
            callback(_event(name, info))
