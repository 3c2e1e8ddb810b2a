"""The ingestion loop: poll a bounded batch, settle it in PostgreSQL, then commit to Kafka.

How one batch is settled, in this order (each step retried on infrastructure errors, with
bounded back-off, for as long as it takes; nothing is ever skipped):

1. **Refused messages are dead-lettered and confirmed** (not JSON, not the contract).
2. **One PostgreSQL transaction** appends the accepted events (per event ``appended``,
   ``duplicate`` — absorbed, counted — or ``conflict``), then, still inside it, dead-letters
   the conflicts and waits for the broker's confirmation, then stores each partition's
   next offset, and commits.
3. The offsets are committed to Kafka (asynchronously: a convenience for tooling; the
   positions in PostgreSQL are what a consumer seeks to on every assignment), and the batch
   is counted and logged (``consumers.kafka.settled``).

Step 2 of batch N runs on a worker thread while the loop polls batch N+1 and does its
step 1 (``consumers.kafka.pipeline``, which also argues why that keeps every guarantee).

A conflict is only known once the append ran, and it must reach the dead-letter topic
before the position moves past it: confirming it inside the transaction gives both, with
events and positions in one transaction. Every crash point replays instead of losing:

* crash before the commit: nothing of the batch was stored; it is read again (a conflict
  whose dead letter was already sent is reported again — see below);
* crash between the commit and step 3: the Kafka commit is behind; the seek uses
  PostgreSQL anyway.

The ledger is therefore exactly-once; the dead-letter topic is at-least-once with a stable
identity per report (``x-origin``), which ``ledger deadletter`` folds. The broker round trip
happens inside the transaction only for batches that hold a conflict (rare).

Bounded memory: at most two batches (≤ ``max_poll_records`` each) are held, one in its
transaction and one being validated, and kafka-python's fetch buffer is capped by
``fetch_max_bytes``; nothing queues up however large the backlog. :meth:`KafkaIngestor.stop`
(SIGTERM) lets the in-flight transaction finish, or abandons it whole if it is waiting on
an unavailable service, and drops the batch not yet handed over: positions only move in
step 2, so an abandoned batch is simply read again by the next owner.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from consumers.kafka.batch import Batch, RecordTranslator, build_batch
from consumers.kafka.config import IngestConfig
from consumers.kafka.deadletter import (
    DeadLetter,
    DeadLetterPublisher,
    conflict_letter,
    refusal_letter,
)
from consumers.kafka.errors import DeadLetterNotConfirmed, Stopped, broker_error
from consumers.kafka.metrics import IngestMetrics
from consumers.kafka.pipeline import (
    AppendWorker,
    InFlight,
    Settled,
    Staged,
    prompt_switching,
    wait_quietly,
)
from consumers.kafka.rebalance import StoredPositions
from consumers.kafka.retry import Backoff, retry
from consumers.kafka.settled import account_batch, commit_to_kafka
from ledger.store.types import AppendResult, Incoming, Outcome, SourcePosition

log = logging.getLogger(__name__)

UNASSIGNED_WARNING_S = 30.0


class LedgerWriter(Protocol):
    """The part of :class:`ledger.store.event_store.EventStore` the consumer uses."""

    def append(
        self,
        items: Sequence[Incoming],
        positions: Sequence[SourcePosition] = (),
        *,
        before_commit: Callable[[list[AppendResult]], None] | None = None,
    ) -> list[AppendResult]: ...

    def source_positions(self, consumer: str, topic: str) -> dict[int, int]: ...


class KafkaIngestor:
    """``ledger consume``: one consumer-group member appending Kafka events to the ledger."""

    def __init__(
        self,
        store: LedgerWriter,
        config: IngestConfig,
        *,
        metrics: IngestMetrics | None = None,
        backoff: Backoff | None = None,
        consumer_factory: Callable[[], KafkaConsumer] | None = None,
        producer_factory: Callable[[], KafkaProducer] | None = None,
        stop_event: threading.Event | None = None,
        translators: Mapping[str, RecordTranslator] | None = None,
    ):
        self.store = store
        self.config = config
        self.translators = translators or {}
        self.metrics = metrics or IngestMetrics()
        self.backoff = backoff or Backoff()
        self._consumer_factory = consumer_factory or (
            lambda: KafkaConsumer(**config.consumer_kwargs())
        )
        self.deadletters = DeadLetterPublisher(
            producer_factory or (lambda: KafkaProducer(**config.producer_kwargs())),
            config.deadletter_topic,
            config.deadletter_timeout_s,
        )
        self._stop = stop_event or threading.Event()
        self.consumer: KafkaConsumer | None = None
        self.listener: StoredPositions | None = None
        self._workers = AppendWorker(threaded=config.overlap_appends)
        self._inflight: InFlight | None = None
        self._retries_lock = threading.Lock()

    # -- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish the current batch (or abandon it if stuck) and return."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, *, idle_exit_s: float | None = None) -> IngestMetrics:
        """Consume until :meth:`stop` (or ``idle_exit_s`` seconds without records)."""
        try:
            consumer, listener = self._connect()
        except Stopped:
            log.info("stopped before connecting to Kafka")
            return self.metrics
        try:
            with prompt_switching(self.config.overlap_appends):
                self._loop(consumer, listener, idle_exit_s)
        except Stopped as exc:
            log.warning("%s: current batch abandoned whole; it will be read again", exc)
        finally:
            self._close(consumer)
        return self.metrics

    # -- setup and teardown -----------------------------------------------------------------

    def _retry(self, operation: Callable[[], Any], what: str) -> Any:
        return retry(
            operation, what=what, stop=self._stop, backoff=self.backoff,
            on_failure=self._count_retry,
        )

    def _count_retry(self, _exc: BaseException) -> None:
        with self._retries_lock:  # the loop and the append worker both retry
            self.metrics.retries += 1

    def _connect(self) -> tuple[KafkaConsumer, StoredPositions]:
        def create() -> KafkaConsumer:
            try:
                return self._consumer_factory()
            except KafkaError as exc:
                raise broker_error("connect", exc) from exc

        servers = self.config.connection.bootstrap_servers
        consumer = self._retry(create, f"connecting to Kafka at {servers}")
        group = self.config.group_id
        listener = StoredPositions(
            consumer, lambda topic: self.store.source_positions(group, topic), self.metrics
        )
        consumer.subscribe(list(self.config.topics), listener=listener)
        self.consumer, self.listener = consumer, listener
        log.info(
            "consuming %s as group %s (dead letters to %s, batches of <= %d records / %d ms)",
            ",".join(self.config.topics), group, self.config.deadletter_topic,
            self.config.max_poll_records, self.config.poll_timeout_ms,
            extra={"event": "start", "topics": list(self.config.topics), "group": group},
        )
        return consumer, listener

    def _close(self, consumer: KafkaConsumer) -> None:
        self._workers.close()
        with contextlib.suppress(Exception):
            consumer.close(autocommit=False, timeout_ms=5000)
        self.deadletters.close()
        log.info("stopped: %s", self.metrics.summary(), extra={"event": "stop"})

    # -- the loop ---------------------------------------------------------------------------

    def _loop(
        self, consumer: KafkaConsumer, listener: StoredPositions, idle_exit_s: float | None
    ) -> None:
        inflight: InFlight | None = None
        try:
            inflight = self._poll_and_settle(consumer, listener, idle_exit_s)
        except BaseException:
            # The worker's transaction must end before the store and consumer close.
            wait_quietly(self._inflight)
            raise
        self._complete(consumer, inflight)

    def _poll_and_settle(
        self, consumer: KafkaConsumer, listener: StoredPositions, idle_exit_s: float | None
    ) -> InFlight | None:
        """The loop proper; returns the batch still in flight when asked to stop."""
        last_records = last_owned = last_warning = time.monotonic()
        while not self._stop.is_set():
            if listener.pending:
                # Seek only once the in-flight batch committed: its positions count too.
                self._complete(consumer, self._inflight)
                self._retry(listener.seek_pending, "reading stored positions from PostgreSQL")
                last_records = time.monotonic()
            polled = self._retry(
                lambda: consumer.poll(
                    timeout_ms=self.config.poll_timeout_ms,
                    max_records=self.config.max_poll_records,
                ),
                "polling Kafka",
            )
            now = time.monotonic()
            if polled:
                staged = self._stage(polled)
                previous = self._await(self._inflight)
                if not self._stop.is_set():
                    self._inflight = self._workers.submit(staged, self._append)
                # The previous batch's Kafka commit (a broker round trip) after the hand-over,
                # so it never delays the next transaction.
                if previous is not None:
                    self._finish(consumer, *previous)
                if self._stop.is_set():
                    break  # the staged batch, if not handed over, is read again by the next owner
                if staged.batch.records < self.config.max_poll_records:
                    # No backlog: overlapping would only slow this transaction (the poll
                    # running beside it takes the GIL from it between its round trips), so
                    # it is settled before the next poll, as fast as a serial loop would.
                    self._complete(consumer, self._inflight)
                last_records = last_owned = time.monotonic()
                continue
            self._complete(consumer, self._inflight)
            if listener.owned:
                last_owned = now
                idle = now - last_records
                if idle_exit_s is not None and not listener.pending and idle >= idle_exit_s:
                    log.info("no records for %.1f s: exiting as asked", idle_exit_s)
                    break
            elif now - last_owned >= UNASSIGNED_WARNING_S and now - last_warning >= 30:
                # kafka-python keeps reconnecting on its own; this says why nothing happens.
                last_warning = now
                log.warning(
                    "no partitions assigned for %.0f s: broker unreachable, topic missing, "
                    "or more consumers than partitions in group %s",
                    now - last_owned, self.config.group_id,
                    extra={"event": "unassigned", "seconds": round(now - last_owned)},
                )
        return self._inflight

    def settle(self, consumer: KafkaConsumer, polled: dict[TopicPartition, list[Any]]) -> Batch:
        """Steps 1–3 of the module docstring for one poll result, waiting for all of them."""
        self._complete(consumer, self._inflight)
        staged = self._stage(polled)
        self._inflight = self._workers.submit(staged, self._append)
        self._complete(consumer, self._inflight)
        return staged.batch

    def _stage(self, polled: dict[TopicPartition, list[Any]]) -> Staged:
        """Step 1 on the loop thread: validate, dead-letter the refused, note the positions."""
        started = time.perf_counter()
        batch = build_batch(polled, self.translators)
        refused = [refusal_letter(r) for r in batch.refused]
        self._dead_letter(refused)
        positions = batch.positions(self.config.group_id)
        return Staged(batch, positions, len(refused), (time.perf_counter() - started) * 1000)

    def _append(self, staged: Staged) -> Settled:
        """Step 2, on the worker thread: one transaction for events, conflicts, positions."""
        batch = staged.batch
        settled = Settled([])

        def report_conflicts(outcomes: list[AppendResult]) -> None:
            # Inside the append transaction: a conflict's dead letter is confirmed before the
            # positions past it commit together with the events. One attempt here; a failure
            # rolls the whole batch back and the retry below starts it over.
            settled.conflicts = [
                conflict_letter(record, result)
                for record, result in zip(batch.accepted_records, outcomes, strict=True)
                if result.outcome is Outcome.CONFLICT
            ]
            if settled.conflicts:
                self.deadletters.publish(settled.conflicts)
                for letter in settled.conflicts:
                    log.warning("dead-lettered %s: %s %s", letter.origin, letter.kind,
                                letter.code, extra={"event": "deadlettered",
                                                    "origin": letter.origin,
                                                    "code": letter.code, "kind": letter.kind})

        settled.results = self._retry(
            lambda: self.store.append(
                batch.accepted, staged.positions, before_commit=report_conflicts
            ),
            "appending a batch and its positions to PostgreSQL",
        )
        return settled

    def _complete(self, consumer: KafkaConsumer, inflight: InFlight | None) -> None:
        """Wait for the in-flight transaction (re-raising its error), then step 3."""
        done = self._await(inflight)
        if done is not None:
            self._finish(consumer, *done)

    def _await(self, inflight: InFlight | None) -> tuple[InFlight, Settled] | None:
        """Wait for the in-flight transaction to commit; its error is raised here."""
        if inflight is None:
            return None
        try:
            return inflight, inflight.future.result()
        finally:
            if self._inflight is inflight:
                self._inflight = None

    def _finish(self, consumer: KafkaConsumer, inflight: InFlight, settled: Settled) -> None:
        """Step 3 for a committed batch: the Kafka commit, the counters and the log line."""
        owned = consumer.assignment()
        batch = inflight.staged.batch
        commit_to_kafka(consumer, batch, owned)
        account_batch(
            self.metrics, consumer, batch, settled.results, inflight.staged.refused,
            len(settled.conflicts), inflight.elapsed_ms(), owned,
        )

    def _dead_letter(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        pending = letters

        def attempt() -> None:
            nonlocal pending
            try:
                self.deadletters.publish(pending)
            except DeadLetterNotConfirmed as exc:
                pending = exc.unconfirmed
                raise

        self._retry(attempt, f"dead-lettering to {self.config.deadletter_topic}")
        for letter in letters:
            log.warning(
                "dead-lettered %s: %s %s", letter.origin, letter.kind, letter.code,
                extra={"event": "deadlettered", "origin": letter.origin, "code": letter.code,
                       "kind": letter.kind},
            )
