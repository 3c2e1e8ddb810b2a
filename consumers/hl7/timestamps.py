"""HL7 DTM values → timezone-aware datetimes. Never a naive datetime.

DTM is ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``. PCD messages must carry the UTC
offset (TF-2 §1.1, DOMAIN.md §1.1), but real ones do not always. The rule for a value
without an offset, in this order (each use written down in the translation's notes):

1. the configured facility zone (``LEDGER_HL7_LOCAL_TIMEZONE``, an IANA name: DST rules
   apply to the instant itself, which matters for IPEC events buffered across a change);
2. else the offset of the message's own MSH-7 — HL7 v2 says a DTM without a zone is in
   the sender's local zone, and MSH-7 is the sender telling us its offset;
3. else the value is refused (:class:`NaiveTimestamp`): the message is dead-lettered
   rather than the ledger guessing a zone.

Stray spaces inside a DTM (``20080101123456- 0600``) are removed and noted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from consumers.hl7.errors import Hl7Error

_DTM = re.compile(
    r"(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?"
    r"(?P<s>\d{2})?(?:\.(?P<frac>\d{1,6}))?(?P<tz>[+-]\d{4})?"
)


class BadTimestamp(Hl7Error):
    """The value is not an HL7 DTM (or names an impossible date/time or offset)."""

    code = "invalid_timestamp"


class NaiveTimestamp(Hl7Error):
    """A DTM without offset, and neither a configured zone nor MSH-7's offset to use."""

    code = "naive_timestamp"


@dataclass(frozen=True)
class Parsed:
    """A DTM read as written: wall-clock fields and the offset if the sender gave one."""

    wall: datetime  # naive: the wall clock as written
    offset: timezone | None


def parse_dtm(text: str) -> tuple[Parsed, list[str]]:
    """Read a DTM; returns the value and notes (spaces removed, coarse precision)."""
    notes: list[str] = []
    compact = re.sub(r"\s+", "", text)
    if compact != text.strip():
        notes.append(f"spaces removed from timestamp {text!r}")
    match = _DTM.fullmatch(compact)
    if match is None:
        raise BadTimestamp(f"{text!r} is not an HL7 DTM (YYYYMMDDHHMMSS[.S][+/-ZZZZ])")
    parts = match.groupdict()
    if parts["s"] is None:
        notes.append(f"timestamp {compact!r} has no seconds: missing parts read as zero")
    frac = (parts["frac"] or "").ljust(6, "0")
    try:
        wall = datetime(
            int(parts["y"]), int(parts["mo"] or 1), int(parts["d"] or 1), int(parts["h"] or 0),
            int(parts["mi"] or 0), int(parts["s"] or 0), int(frac or 0),
        )
        offset = None
        if parts["tz"]:
            sign = -1 if parts["tz"][0] == "-" else 1
            hours, minutes = int(parts["tz"][1:3]), int(parts["tz"][3:5])
            if hours > 14 or minutes > 59:
                raise ValueError(f"offset {parts['tz']} out of range")
            offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    except ValueError as exc:
        raise BadTimestamp(f"{text!r}: {exc}") from None
    return Parsed(wall, offset), notes


@dataclass(frozen=True)
class Clock:
    """How this message's offset-less DTMs are read (see the module docstring)."""

    local_zone: tzinfo | None
    sender_offset: timezone | None

    def aware(self, text: str, where: str) -> tuple[datetime, list[str]]:
        parsed, notes = parse_dtm(text)
        notes = [f"{where}: {note}" for note in notes]
        if parsed.offset is not None:
            return parsed.wall.replace(tzinfo=parsed.offset), notes
        if self.local_zone is not None:
            value = parsed.wall.replace(tzinfo=self.local_zone)
            notes.append(f"{where}: no UTC offset; read in the configured zone {self.local_zone}")
            # Pin the zone's offset at that instant, so the value serialises as RFC 3339.
            fixed = value.utcoffset() or timedelta(0)
            return parsed.wall.replace(tzinfo=timezone(fixed)), notes
        if self.sender_offset is not None:
            notes.append(f"{where}: no UTC offset; read with MSH-7's offset {self.sender_offset}")
            return parsed.wall.replace(tzinfo=self.sender_offset), notes
        raise NaiveTimestamp(
            f"{where} {text!r} has no UTC offset and neither MSH-7 nor "
            "LEDGER_HL7_LOCAL_TIMEZONE gives one: refusing to guess a zone"
        )
