"""Progress and messages for long-running commands: a live line on a terminal, quiet otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Rewrites one status line on stderr when it is a terminal, at most ~10 times a second."""

    def __init__(self, label: str, stream: TextIO = sys.stderr):
        self.label = label
        self.stream = stream
        self.live = stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done: int, total: int | None = None, extra: str = "") -> None:
        if not self.live:
            return
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        rate = done / max(now - self.started, 1e-9)
        of = f"/{total:,}" if total else ""
        self.stream.write(f"\r{self.label}: {done:,}{of} ({rate:,.0f}/s) {extra}\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def say(message: str) -> None:
    """A human-readable line on stderr (stdout is kept for machine-readable output)."""
    print(message, file=sys.stderr, flush=True)
