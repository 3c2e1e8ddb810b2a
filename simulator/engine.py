"""A deterministic discrete-event scheduler: a heap ordered by (time, sequence number).

Two kinds of work are scheduled: plain callbacks and *processes* — generators that yield a
delay in milliseconds and are resumed that much later (a nurse's bedside workflow reads
top to bottom that way). Ties in time run in the order they were scheduled, so a run
depends only on the seed. Cancellation is lazy: work checks a generation counter of the
object it acts on and returns when it is stale, which keeps the heap a plain list.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator
from typing import Any

Process = Generator[int, None, None]


class Engine:
    def __init__(self, start_ms: int):
        self.now = start_ms
        self._heap: list[tuple[int, int, Any, tuple[Any, ...]]] = []
        self._seq = 0
        self.steps = 0

    def call_at(self, at_ms: int, fn: Callable[..., object], *args: Any) -> None:
        if at_ms < self.now:
            at_ms = self.now
        self._seq += 1
        heapq.heappush(self._heap, (at_ms, self._seq, fn, args))

    def call_after(self, delay_ms: int, fn: Callable[..., object], *args: Any) -> None:
        self.call_at(self.now + max(0, delay_ms), fn, *args)

    def spawn(self, process: Process, delay_ms: int = 0) -> None:
        """Start a process ``delay_ms`` from now."""
        self.call_after(delay_ms, self._resume, process)

    def _resume(self, process: Process) -> None:
        try:
            delay = next(process)
        except StopIteration:
            return
        self.call_after(delay, self._resume, process)

    def run_until(
        self,
        end_ms: int,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Run every piece of work scheduled at or before ``end_ms``; return the time reached.

        Returns early (at the time of the last work done) when ``should_stop`` says so;
        ``on_progress`` hears the simulated time about once per simulated minute.
        """
        heap = self._heap
        reported = self.now
        while heap and heap[0][0] <= end_ms:
            at_ms, _seq, fn, args = heapq.heappop(heap)
            self.now = at_ms
            fn(*args)
            self.steps += 1
            if self.steps & 63 == 0:
                if should_stop is not None and should_stop():
                    return at_ms
                if on_progress is not None and at_ms - reported >= 60_000:
                    reported = at_ms
                    on_progress(at_ms)
        self.now = end_ms
        return end_ms
