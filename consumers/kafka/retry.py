"""Bounded exponential back-off for infrastructure failures, interruptible by a stop request.

An operation is retried for as long as it fails with an infrastructure error (see
:func:`~consumers.kafka.errors.is_infrastructure_error`): the consumer waits for the service
rather than skipping a message. Delays grow from ``initial_s`` to at most ``max_s`` with a
little jitter (so a fleet of consumers does not reconnect in lock-step). Every failure and
the recovery are logged; a stop request during a wait raises :class:`Stopped`, which the
caller turns into abandoning the current batch as a whole.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from consumers.kafka.errors import Stopped, is_infrastructure_error

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.2
    max_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.1

    def delays(self) -> Iterator[float]:
        delay = self.initial_s
        while True:
            yield delay * (1 + random.uniform(-self.jitter, self.jitter))
            delay = min(delay * self.factor, self.max_s)


def retry(
    operation: Callable[[], T],
    *,
    what: str,
    stop: threading.Event,
    backoff: Backoff = Backoff(),
    retryable: Callable[[BaseException], bool] = is_infrastructure_error,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds; re-raise at once what is not retryable."""
    delays = backoff.delays()
    attempt = 0
    started = time.monotonic()
    while True:
        try:
            result = operation()
        except Exception as exc:
            if not retryable(exc):
                raise
            attempt += 1
            if on_failure is not None:
                on_failure(exc)
            delay = next(delays)
            log.warning(
                "%s failed (attempt %d): %s: %s; retrying in %.1f s",
                what, attempt, type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc)
                else "", delay,
                extra={"event": "retry", "operation": what, "attempt": attempt,
                       "error": type(exc).__name__, "delay_s": round(delay, 3)},
            )
            if stop.wait(delay):
                raise Stopped(f"stop requested while retrying {what}") from exc
            continue
        if attempt:
            log.info(
                "%s recovered after %d failed attempts (%.1f s)",
                what, attempt, time.monotonic() - started,
                extra={"event": "recovered", "operation": what, "attempts": attempt},
            )
        return result
