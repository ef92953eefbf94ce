"""Kafka for Python streams: the direct stream of PySpark 2's
``pyspark.streaming.kafka`` (removed from Spark in 3.0), on ember's Kafka
connector: each batch reads an offset range per partition, logged with the
checkpoint so that a restart reads exactly the same records again.
Writing to Kafka is :meth:`ember.streaming.DStream.saveToKafka`."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from ember.streaming.dstream import DStream

__all__ = ["KafkaUtils", "MessageAndMetadata", "utf8_decoder"]


def utf8_decoder(s: Optional[bytes]) -> Optional[str]:
    """Decodes UTF-8 bytes (None stays None)."""
    if s is None:
        return None
    return s.decode("utf-8")


class MessageAndMetadata:
    """One Kafka record with where it came from, for a ``messageHandler``."""

    def __init__(self, topic: str, partition: int, offset: int, key: Optional[bytes],
                 message: Optional[bytes]) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self._rawKey = key
        self._rawMessage = message
        self._keyDecoder: Callable[[Optional[bytes]], Any] = utf8_decoder
        self._valueDecoder: Callable[[Optional[bytes]], Any] = utf8_decoder

    @property
    def key(self) -> Any:
        """The key, decoded by the stream's key decoder."""
        return self._keyDecoder(self._rawKey)

    @property
    def message(self) -> Any:
        """The value, decoded by the stream's value decoder."""
        return self._valueDecoder(self._rawMessage)

    def __repr__(self) -> str:
        return (f"MessageAndMetadata(topic={self.topic}, partition={self.partition}, "
                f"offset={self.offset}, key={self._rawKey!r}, message={self._rawMessage!r})")


class KafkaUtils:
    """Kafka streams, as PySpark 2's ``KafkaUtils``."""

    @staticmethod
    def createDirectStream(ssc: Any, topics: List[str], kafkaParams: Dict[str, str],
                           fromOffsets: Optional[dict] = None,
                           keyDecoder: Callable[[Optional[bytes]], Any] = utf8_decoder,
                           valueDecoder: Callable[[Optional[bytes]], Any] = utf8_decoder,
                           messageHandler: Optional[Callable[[MessageAndMetadata], Any]] = None) -> DStream:
        """A DStream of ``(key, value)`` records of ``topics``, decoded by the
        decoders, or of ``messageHandler(MessageAndMetadata)``.

        ``kafkaParams`` are librdkafka settings: ``bootstrap.servers`` (or
        ``metadata.broker.list``), ``group.id``, ``auto.offset.reset``
        (``earliest``/``smallest`` by default, ``latest``/``largest``)…
        ``fromOffsets`` is not supported: a restart resumes from the
        checkpoint, a new start from ``auto.offset.reset``.
        """
        if fromOffsets:
            raise NotImplementedError("fromOffsets is not supported by ember: a restart resumes "
                                      "from the checkpoint; auto.offset.reset sets where a new "
                                      "start begins")
        if isinstance(topics, str):
            topics = [topics]
        ssc._check_not_started()
        params = {str(k): str(v) for k, v in kafkaParams.items()}
        raw = DStream(ssc, "kafka", [], {"topics": [str(t) for t in topics], "params": params},
                      ssc._batch_ms)

        if messageHandler is None:
            def decode(_: int, records: Any) -> Any:
                return ((keyDecoder(k), valueDecoder(v)) for _t, _p, _o, k, v in records)
        else:
            def decode(_: int, records: Any) -> Any:
                for topic, partition, offset, k, v in records:
                    m = MessageAndMetadata(topic, partition, offset, k, v)
                    m._keyDecoder, m._valueDecoder = keyDecoder, valueDecoder
                    yield messageHandler(m)

        return raw._pipe(decode)
