"""Sending outbox rows to a Kafka topic, each confirmed by all in-sync replicas.

What a row becomes is the feed's business (an encoder: key, value, headers); sending,
flushing and waiting for every confirmation is the same for every feed. By default the
rows are the documentation outbox's, to the topic ``infusion.documentation.v1``:

Each message is the feed item (``{"position", "entry", "resource"}``, the same bytes the
feed API serves), keyed by the entry id so all versions of one entry stay in order on one
partition. Headers carry ``x-entry-id``, ``x-revision`` and ``x-position``: a crash after
the broker confirmed but before the acknowledgement was recorded re-sends a version, and a
consumer drops any ``(entry id, revision)`` it has already applied (or at or below the
highest revision it holds for the entry). The producer waits for all in-sync replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, NamedTuple, cast

from kafka import KafkaProducer
from kafka.errors import KafkaError

from publisher.errors import TargetUnavailable
from publisher.feed import Delivery, RowT
from publisher.outbox import OutboxRow

TOPIC = "infusion.documentation.v1"


class Message(NamedTuple):
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def documentation_message(row: OutboxRow) -> Message:
    headers = [("content-type", b"application/json"),
               ("x-entry-id", row.entry_id.encode()),
               ("x-revision", str(row.revision).encode()),
               ("x-position", str(row.seq).encode())]
    return Message(row.entry_id.encode(), row.feed_item, headers)


class KafkaSink(Generic[RowT]):
    def __init__(self, producer_kwargs: dict[str, Any], topic: str = TOPIC,
                 timeout: float = 30.0, encode: Callable[[RowT], Message] | None = None):
        self.topic = topic
        self.target = f"kafka:{topic}"
        self.timeout = timeout
        # The documentation encoding when none is named (the cast: see Publisher.feed).
        self._encode = cast("Callable[[RowT], Message]", encode or documentation_message)
        self._kwargs = producer_kwargs
        self._producer: KafkaProducer | None = None

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(**self._kwargs)
            except KafkaError as error:
                raise TargetUnavailable(f"kafka: {error}") from error
        return self._producer

    def deliver(self, rows: list[RowT]) -> Iterator[Delivery[RowT]]:
        producer = self._connect()
        futures = []
        try:
            for row in rows:
                message = self._encode(row)
                futures.append((row, producer.send(self.topic, key=message.key,
                                                   value=message.value,
                                                   headers=message.headers)))
            producer.flush(timeout=self.timeout)
        except KafkaError as error:
            self.close()
            raise TargetUnavailable(f"kafka {self.topic}: {error}") from error
        for row, future in futures:
            try:
                metadata = future.get(timeout=self.timeout)
            except KafkaError as error:
                self.close()
                raise TargetUnavailable(f"kafka {self.topic}: {error}") from error
            yield Delivery(row, "acknowledged",
                           location=f"{metadata.topic}:{metadata.partition}:{metadata.offset}")

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.close(timeout=5)
