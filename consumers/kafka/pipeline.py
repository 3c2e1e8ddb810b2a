"""The one-deep append pipeline: batch N's transaction runs while batch N+1 is validated.

An append spends about half its time waiting on PostgreSQL (the COPY, index maintenance,
the commit's WAL flush), and the loop's own work — decoding, contract validation — is pure
Python. Running the transaction on one worker thread overlaps the two: the wait releases
the GIL, so the loop polls and validates the next batch meanwhile.

Only a full batch (``max_poll_records``: there is a backlog) is left in flight while the loop
polls on; a smaller one is settled before the next poll, because a poll running beside a
transaction takes the GIL from it between its round trips and would only add latency when
there is nothing to catch up on. The previous batch's Kafka commit is sent after the next
batch is handed over, so that broker round trip never stands in front of a transaction.

What is in flight, and why every guarantee of the serial loop still holds:

* **At most one batch in the worker, one being validated.** The loop waits for batch N to
  finish before it hands over N+1, so memory stays bounded by two polls, transactions run
  strictly in poll order (each stream's events stay in partition order), and a batch's
  positions never commit before the positions of the batch before it.
* **Events and positions still commit together**, in the worker's one transaction; the
  Kafka consumer's in-memory position runs one batch ahead of PostgreSQL, which is never
  what a consumer seeks to. A crash at any point loses the uncommitted batches whole: the
  next owner seeks to the positions in PostgreSQL and reads them again.
* **Dead letters before positions.** Refusals of batch N+1 are confirmed by the broker on
  the loop thread before N+1 is handed over, so before its transaction can move past them.
  Conflicts are confirmed inside the worker's transaction, as before.
* **Kafka commits after PostgreSQL**, on the loop thread (kafka-python's consumer is not
  thread-safe), once the worker reported the transaction committed, and only for
  partitions this consumer still owns.
* **Rebalance.** A rebalance happens inside ``poll``, possibly while a batch is in flight.
  Before seeking newly assigned partitions the loop waits for that batch, so the positions
  it reads include it. A revoked partition's in-flight batch may commit after the new
  owner read the older position: the new owner then appends the same records again, under
  the same append lock, and finds every one of them stored (same ``event_id``, same
  content: duplicates, absorbed); positions only ever move forward. Nothing is lost or
  stored twice, and the group's next rebalance after a crash is covered by the first point.
* **Stop (SIGTERM).** The loop stops handing over batches; the in-flight transaction
  finishes, or is abandoned whole if it is retrying against an unavailable service.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from consumers.kafka.batch import Batch
from consumers.kafka.deadletter import DeadLetter
from ledger.store.types import AppendResult, SourcePosition


@dataclass
class Staged:
    """A validated batch whose refusals are dead-lettered, ready for its transaction."""

    batch: Batch
    positions: list[SourcePosition]
    refused: int
    stage_ms: float


@dataclass
class Settled:
    """What the worker reports once a batch's transaction committed."""

    results: list[AppendResult]
    conflicts: list[DeadLetter] = field(default_factory=list)


@dataclass
class InFlight:
    staged: Staged
    future: Future[Settled]
    submitted: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> float:
        """The batch's own time: validating and dead-lettering it, then its transaction
        (not the time it waited for the batch before it)."""
        return self.staged.stage_ms + (time.perf_counter() - self.submitted) * 1000


#: While a transaction is in flight, the loop thread runs Python without pause (decoding,
#: validating) and the worker wakes from each PostgreSQL round trip needing the GIL back.
#: CPython hands it over only after the switch interval (5 ms by default): with ~10 round
#: trips per transaction, that stretched each one by tens of milliseconds and undid most of
#: the overlap. At 0.5 ms the worker waits little, and switching costs next to nothing.
SWITCH_INTERVAL_S = 0.0005


class AppendWorker:
    """One thread running one batch's transaction at a time (inline when not ``threaded``)."""

    def __init__(self, threaded: bool = True) -> None:
        self.threaded = threaded
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, staged: Staged, append: Callable[[Staged], Settled]) -> InFlight:
        if not self.threaded:
            done: Future[Settled] = Future()
            submitted = time.perf_counter()
            try:
                done.set_result(append(staged))
            except BaseException as exc:  # re-raised by whoever completes the batch
                done.set_exception(exc)
            return InFlight(staged, done, submitted)
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-append")
            return InFlight(staged, self._executor.submit(append, staged))

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


@contextlib.contextmanager
def prompt_switching(enabled: bool) -> Iterator[None]:
    """The switch interval above for the duration of a run (restored after)."""
    if not enabled:
        yield
        return
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def wait_quietly(inflight: InFlight | None) -> Any:
    """Wait for an in-flight batch while another error unwinds; its own outcome is moot."""
    if inflight is None:
        return None
    try:
        return inflight.future.result()
    except BaseException:  # the error already unwinding is the one to report
        return None
