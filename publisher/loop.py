"""The publisher loop: outbox rows to a sink, in order, acknowledgements recorded after.

The loop is the same for every outbox the edge sends out; a :class:`publisher.feed.Feed`
says which one (the documentation outbox by default, the S1 discrepancy pages with
:data:`publisher.pages.PAGES`). One publisher per feed and target (a session advisory lock
refuses a second one: two would both send the same rows). The loop reads rows after its
position, hands them to the sink and records each answer in its own transaction as soon
as the sink yields it. A target that does not answer stops the line — the same row is
retried with exponential back-off, and nothing after it is sent meanwhile, so the EHR
never receives an entry's versions out of order. When idle it sleeps on ``LISTEN <feed
channel>`` (the projection notifies at commit), looking again at least every
``idle_seconds`` in case nothing notifies.

Killing the process at any point loses nothing: rows without a delivery row are sent
again on restart, and the target absorbs the copy (``fhir_http``, ``kafka_sink``,
``webhook`` say how).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Generic, cast

import psycopg
from psycopg import sql

from publisher.errors import PublishError, TargetUnavailable
from publisher.feed import Feed, RowT, Sink
from publisher.outbox import DOCUMENTATION

log = logging.getLogger(__name__)


@dataclass
class PublishStats:
    sent: int = 0
    acknowledged: int = 0
    rejected: int = 0
    retries: int = 0
    position: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Publisher(Generic[RowT]):
    """Sends the ``feed``'s outbox to ``sink`` from its last recorded position."""

    def __init__(self, conninfo: str, sink: Sink[RowT], *, feed: Feed[RowT] | None = None,
                 batch_size: int = 100, retry_max_seconds: float = 60.0,
                 idle_seconds: float = 1.0, give_up_after: int | None = None):
        self.conninfo = conninfo
        self.sink = sink
        # The documentation outbox when none is named: what publish-docs always sent (the
        # cast: a default cannot be typed by the caller's RowT).
        self.feed = cast("Feed[RowT]", feed if feed is not None else DOCUMENTATION)
        self.batch_size = batch_size
        self.retry_max_seconds = retry_max_seconds
        self.idle_seconds = idle_seconds
        #: ``--once``: fail after this many consecutive unavailable attempts (None: never).
        self.give_up_after = give_up_after
        self.stats = PublishStats()

    def run(self, stop: threading.Event | None = None, *, once: bool = False) -> PublishStats:
        """Publish until ``stop`` is set (or, with ``once``, until the outbox is drained)."""
        stop = stop or threading.Event()
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            self._lock(conn)
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.feed.channel)))
            failures = 0
            while not stop.is_set():
                after = self.feed.position(conn, self.sink.target)
                self.stats.position = after
                rows = self.feed.pending(conn, after, self.batch_size)
                if not rows:
                    if once:
                        break
                    for _ in conn.notifies(timeout=self.idle_seconds, stop_after=1):
                        pass
                    continue
                try:
                    self._publish(conn, rows, failures + 1)
                    failures = 0
                except TargetUnavailable as error:
                    failures += 1
                    self.stats.retries += 1
                    if self.give_up_after is not None and failures >= self.give_up_after:
                        raise PublishError(f"giving up after {failures} attempts: {error}"
                                           ) from error
                    delay = min(self.retry_max_seconds, 0.25 * 2 ** min(failures, 16))
                    log.warning("%s unavailable (attempt %s), retrying in %.1f s: %s",
                                self.sink.target, failures, delay, error)
                    stop.wait(delay)
            self.stats.position = self.feed.position(conn, self.sink.target)
        self.sink.close()
        return self.stats

    def _publish(self, conn: psycopg.Connection[Any], rows: list[RowT], attempts: int) -> None:
        for delivery in self.sink.deliver(rows):
            # The head row may have been tried before; the rows after it are first tries.
            tried = attempts if delivery.row is rows[0] else 1
            self.feed.record(conn, self.sink.target, delivery, tried)
            self.stats.sent += 1
            if delivery.outcome == "acknowledged":
                self.stats.acknowledged += 1
            else:
                self.stats.rejected += 1
                log.error("%s rejected outbox position %s (%s): HTTP %s %s",
                          self.sink.target, delivery.row.seq, self.feed.describe(delivery.row),
                          delivery.status_code, delivery.detail)
            self.stats.position = delivery.row.seq

    def _lock(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                           (f"{self.feed.name}:{self.sink.target}",)).fetchone()
        if not row or not row[0]:
            raise PublishError(f"another publisher is already sending to {self.sink.target}")
