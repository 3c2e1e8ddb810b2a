"""Partition assignment: every partition this consumer gets starts at the PostgreSQL position.

On assignment the listener only pauses the new partitions and remembers them; the consumer
loop then reads the stored positions (``EventStore.source_positions``) and seeks — with the
usual infrastructure retry, because the listener runs on kafka-python's network thread
where blocking on a database that is down would stall heartbeats. Until then the paused
partitions return no records, so nothing is read from a wrong (Kafka-committed or reset)
offset. A partition with no stored position starts from the earliest offset.

On revocation (or loss) the per-partition state goes: pending seeks, lag. The batch loop
holds no other per-partition state between polls, and a batch is settled before the next
poll (the only place a rebalance can happen), so nothing else needs dropping.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.structs import TopicPartition

from consumers.kafka.metrics import IngestMetrics

log = logging.getLogger(__name__)


def _names(partitions: Iterable[TopicPartition]) -> str:
    return ",".join(f"{tp.topic}:{tp.partition}" for tp in sorted(partitions)) or "-"


class StoredPositions(ConsumerRebalanceListener):
    """Rebalance listener + the seek to stored positions it defers to the consumer loop."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        lookup: Callable[[str], dict[int, int]],
        metrics: IngestMetrics,
    ):
        self.consumer = consumer
        self.lookup = lookup
        self.metrics = metrics
        self.pending: set[TopicPartition] = set()
        self.owned: set[TopicPartition] = set()

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        new = set(assigned)
        self.metrics.rebalances += 1
        if new:
            self.consumer.pause(*new)
        self.pending |= new
        self.owned |= new
        log.info(
            "partitions assigned: %s", _names(new),
            extra={"event": "assigned", "partitions": sorted(map(str, new))},
        )

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        gone = set(revoked)
        self.pending -= gone
        self.owned -= gone
        self.metrics.forget(gone)
        log.info(
            "partitions revoked: %s", _names(gone),
            extra={"event": "revoked", "partitions": sorted(map(str, gone))},
        )

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        gone = set(lost)
        log.warning("partitions lost (group membership expired): %s", _names(gone))
        self.on_partitions_revoked(gone)

    def seek_pending(self) -> None:
        """Seek pending partitions to their stored positions, then let them fetch again.

        Reads every topic's positions before touching the consumer, so a failed read (the
        caller retries) leaves the partitions paused and pending, exactly as before.
        """
        current = self.consumer.assignment()
        pending = sorted(tp for tp in self.pending if tp in current)
        by_topic: dict[str, list[TopicPartition]] = defaultdict(list)
        for tp in pending:
            by_topic[tp.topic].append(tp)
        stored = {topic: self.lookup(topic) for topic in by_topic}
        placed = []
        for topic, partitions in by_topic.items():
            for tp in partitions:
                offset = stored[topic].get(tp.partition)
                if offset is None:
                    self.consumer.seek_to_beginning(tp)
                    placed.append(f"{tp.topic}:{tp.partition}=earliest")
                else:
                    self.consumer.seek(tp, offset)
                    placed.append(f"{tp.topic}:{tp.partition}={offset}")
        if pending:
            self.consumer.resume(*pending)
            log.info(
                "positions from PostgreSQL: %s", " ".join(placed),
                extra={"event": "seek", "positions": placed},
            )
        self.pending.clear()
