"""Event-time deadlines: the queue behind every condition of absence.

A timer says "at event time ``due``, check whether the answer came" (an acknowledgement,
a chart, a stop...). It fires when the watermark reaches ``due`` plus the late-data
allowance (``fire``), so an answer that occurred before the deadline but arrives late is
still seen. Timers fire in (fire, seq) order, before the event that moved the watermark
is applied. A timer answered early is cancelled. Timers are JSON dicts persisted with the
engine's state; the heap is rebuilt from them on load. Ids are deterministic (rule,
subject, triggering event), so re-arming an existing timer is a no-op.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from projections.discrepancies.world import Table


class Timers:
    def __init__(self) -> None:
        self.table = Table("timer")
        self._heap: list[tuple[int, int, str]] = []
        self.seq = 0

    def arm(self, timer_id: str, rule: str, due: int, fire: int, **payload: Any) -> dict[str, Any]:
        """Arm (or return the already armed) timer ``timer_id``."""
        existing = self.table.get(timer_id)
        if existing is not None:
            return existing
        self.seq += 1
        timer = {"id": timer_id, "rule": rule, "due": due, "fire": fire, "seq": self.seq,
                 **payload}
        self.table[timer_id] = timer
        self.table.mark(timer_id)
        heapq.heappush(self._heap, (fire, self.seq, timer_id))
        return timer

    def get(self, timer_id: str) -> dict[str, Any] | None:
        return self.table.get(timer_id)

    def cancel(self, timer_id: str) -> dict[str, Any] | None:
        timer = self.table.get(timer_id)
        if timer is not None:
            self.table.drop(timer_id)
        return timer

    def reschedule(self, timer: dict[str, Any], fire: int) -> None:
        """Fire ``timer`` later (a deadline deferred while its pump's data is held back)."""
        self.seq += 1
        timer["fire"] = fire
        timer["seq"] = self.seq
        self.table[timer["id"]] = timer
        self.table.mark(timer["id"])
        heapq.heappush(self._heap, (fire, self.seq, timer["id"]))

    def due(self, watermark: int) -> Iterator[dict[str, Any]]:
        """Pop the timers whose fire time the watermark has reached, in order."""
        heap = self._heap
        while heap and heap[0][0] <= watermark:
            _fire, seq, timer_id = heapq.heappop(heap)
            timer = self.table.get(timer_id)
            # Stale heap entries (cancelled, or rescheduled under a newer seq) are skipped.
            if timer is None or timer["seq"] != seq:
                continue
            self.table.drop(timer_id)
            yield timer

    def load(self, timers: list[dict[str, Any]], seq: int) -> None:
        self.table.clear()
        self.table.clear_batch()
        self._heap = [(t["fire"], t["seq"], t["id"]) for t in timers]
        heapq.heapify(self._heap)
        for timer in timers:
            self.table[timer["id"]] = timer
        self.seq = seq

    def __len__(self) -> int:
        return len(self.table)
