"""What ``ledger verify`` found: each problem with where it is, and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    kind: str
    detail: str
    stream: str | None = None
    version: int | None = None
    notification_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class VerifyReport:
    verified_events: int = 0
    streams: int = 0
    checkpoints: int = 0
    unanchored_events: int = 0
    access_records: int = 0
    access_seals: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "verified_events": self.verified_events,
            "streams": self.streams,
            "checkpoints": self.checkpoints,
            "unanchored_events": self.unanchored_events,
            "access_records": self.access_records,
            "access_seals": self.access_seals,
            "problems": len(self.problems),
            "ok": self.ok,
            "first_problem": self.problems[0].as_dict() if self.problems else None,
        }
