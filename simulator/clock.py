"""Simulated time: integer milliseconds since the Unix epoch, rendered as RFC 3339.

The simulator never reads the wall clock. Every instant is an ``int`` of milliseconds, so
arithmetic is exact and the same seed gives the same bytes on every machine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

#: The default ``--start``: a fixed instant, never "now", so runs are reproducible.
DEFAULT_START = "2026-03-01T06:00:00Z"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_instant(text: str) -> int:
    """Milliseconds since the epoch of an RFC 3339 timestamp that carries an offset."""
    moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or ±hh:mm)")
    return from_datetime(moment)


def from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no instant")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds // 1_000


def to_datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def minutes(value: float) -> int:
    """A duration in minutes (possibly fractional) as whole milliseconds."""
    return round(value * MINUTE)


def seconds(value: float) -> int:
    return round(value * SECOND)


_HEADS: dict[int, str] = {}
_SUFFIXES: dict[int, str] = {}


def fmt(ms: int, offset_minutes: int = 0) -> str:
    """Renders an instant as ``2026-03-01T06:00:00.000Z`` or with a fixed ``±hh:mm`` offset.

    The part down to the second is cached (pure results, so sharing is deterministic):
    telemetry formats hundreds of thousands of instants in a few thousand distinct seconds.
    """
    local = ms + offset_minutes * MINUTE
    whole = local // SECOND
    head = _HEADS.get(whole)
    if head is None:
        if len(_HEADS) > 50_000:
            _HEADS.clear()
        head = _HEADS[whole] = (_EPOCH + timedelta(seconds=whole)).strftime("%Y-%m-%dT%H:%M:%S")
    suffix = _SUFFIXES.get(offset_minutes)
    if suffix is None:
        suffix = _SUFFIXES[offset_minutes] = _suffix(offset_minutes)
    return f"{head}.{local - whole * SECOND:03d}{suffix}"


def _suffix(offset_minutes: int) -> str:
    if offset_minutes == 0:
        return "Z"
    sign = "+" if offset_minutes > 0 else "-"
    hours, mins = divmod(abs(offset_minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"
