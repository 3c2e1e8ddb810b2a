"""Where generated events go: arrival ordering, an NDJSON file, Kafka, or memory.

:class:`OrderedOutput` releases lines in *arrival* order (``received_at``, then generation
order): events are generated in simulated time, but a buffered or delayed event arrives
later, and that is the order a file or a topic shows. A line can be released once the
simulation has passed its arrival time, because nothing generated later arrives earlier.

The Kafka sink keys each message exactly as EVENTS.md "Transport" says (the key is chosen
by :func:`simulator.events.kafka_key`) and can pace messages in wall time at a speed-up of
simulated time. kafka-python is imported here only, and only when a Kafka sink is built.
"""

from __future__ import annotations

import heapq
import threading
import time
from pathlib import Path
from typing import IO, Protocol

from simulator.errors import SimulatorError


class Sink(Protocol):
    def write(self, key: str, value: bytes, received_ms: int | None) -> None: ...

    def close(self) -> None: ...


class OrderedOutput:
    """A reorder buffer in front of a sink."""

    def __init__(self, sink: Sink):
        self.sink = sink
        self._heap: list[tuple[int, int, str, bytes, bool]] = []
        self._seq = 0
        self.lines = 0

    def push(self, order_ms: int, key: str, value: bytes, *, backfill: bool = False) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (order_ms, self._seq, key, value, backfill))

    def release(self, up_to_ms: int) -> None:
        heap = self._heap
        while heap and heap[0][0] <= up_to_ms:
            order_ms, _seq, key, value, backfill = heapq.heappop(heap)
            self.sink.write(key, value, None if backfill else order_ms)
            self.lines += 1

    def drain(self) -> None:
        self.release(2**62)


class NdjsonSink:
    """One JSON object per line, bytes exactly as generated."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._handle: IO[bytes] = self.path.open("wb")

    def write(self, key: str, value: bytes, received_ms: int | None) -> None:
        self._handle.write(value)
        self._handle.write(b"\n")

    def close(self) -> None:
        self._handle.close()


class MemorySink:
    """Keeps ``(key, value)`` pairs; for tests and for callers that post-process."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def write(self, key: str, value: bytes, received_ms: int | None) -> None:
        self.messages.append((key, value))

    def close(self) -> None:
        pass


class KafkaSink:
    """Produces each line to ``topic`` keyed per EVENTS.md, optionally paced.

    ``speedup`` > 0 sends a message when ``(received_at - start) / speedup`` of wall time
    has passed since the first message; 0 sends as fast as the broker takes them. Backfilled
    history (no ``received_at``) is sent at once. ``stop`` (a threading.Event) interrupts
    the pacing wait so Ctrl-C is prompt; what is still buffered is then sent unpaced.
    """

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        topic: str,
        *,
        start_ms: int,
        speedup: float = 0.0,
        stop: threading.Event | None = None,
        **producer_options: object,
    ):
        try:
            from kafka import KafkaProducer
            from kafka.errors import KafkaError
        except ImportError as exc:  # pragma: no cover - kafka-python is a dependency
            raise SimulatorError("kafka-python is not installed") from exc
        self._kafka_error = KafkaError
        self.topic = topic
        self.start_ms = start_ms
        self.speedup = speedup
        self.stop = stop
        self.sent = 0
        # Next offset per partition after the last acknowledged message: where a consumer
        # must have read to before it has seen everything this sink produced.
        self.end_offsets: dict[int, int] = {}
        self._offsets_lock = threading.Lock()
        self._wall0: float | None = None
        options: dict[str, object] = {
            "bootstrap_servers": bootstrap_servers,
            "acks": "all",
            "linger_ms": 5,
            "compression_type": "gzip",
        }
        options.update(producer_options)
        try:
            self._producer = KafkaProducer(**options)
        except KafkaError as exc:
            raise SimulatorError(f"cannot reach Kafka at {bootstrap_servers}: {exc}") from exc

    def _pace(self, received_ms: int | None) -> None:
        if self.speedup <= 0 or received_ms is None:
            return
        if self.stop is not None and self.stop.is_set():
            return  # stopping: send what is left at once so the truth stays complete
        if self._wall0 is None:
            self._wall0 = time.monotonic()
        due = self._wall0 + max(0, received_ms - self.start_ms) / 1000 / self.speedup
        wait = due - time.monotonic()
        if wait > 0:
            if self.stop is not None:
                self.stop.wait(wait)
            else:
                time.sleep(wait)

    def write(self, key: str, value: bytes, received_ms: int | None) -> None:
        self._pace(received_ms)
        try:
            future = self._producer.send(self.topic, key=key.encode(), value=value)
        except self._kafka_error as exc:
            raise SimulatorError(f"Kafka refused a message: {exc}") from exc
        future.add_callback(self._acknowledged)
        self.sent += 1

    def _acknowledged(self, metadata: object) -> None:
        # Runs on the producer's I/O thread.
        partition, offset = metadata.partition, metadata.offset  # type: ignore[attr-defined]
        with self._offsets_lock:
            if offset + 1 > self.end_offsets.get(partition, 0):
                self.end_offsets[partition] = offset + 1

    def close(self) -> None:
        try:
            self._producer.flush()
        except self._kafka_error as exc:
            raise SimulatorError(f"Kafka did not take every message: {exc}") from exc
        finally:
            self._producer.close()
