"""Messy input → clean segment lists, one per message, with every repair written down.

Real captures are not what the standard says: CR, LF or CRLF between segments, long
segments wrapped over several lines, two segments fused on one line, MLLP framing bytes
left in a file, batch envelopes, junk before the first MSH, a file in Latin-1. This module
only finds *segment boundaries*; fields are never split here (``hl7.parse`` does that).

Rules, each recorded as a ``repair`` (or a ``dropped`` line) on the message it touched:

* a line that does not start with a known segment id (or a ``Z..`` segment) followed by
  the message's field separator continues the previous segment: it was wrapped, and is
  re-joined without adding characters;
* a known segment id followed by the field separator inside a line, preceded by
  whitespace or a control character, starts a new segment (fused segments);
* ``BHS``/``BTS``/``FHS``/``FTS`` envelopes and text before the first ``MSH`` are dropped;
* MLLP start/end bytes are removed.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field

#: Standard segment ids a PCD message (or its neighbours in a capture) may hold.
KNOWN_SEGMENTS = frozenset({
    "MSH", "SFT", "UAC", "EVN", "PID", "PD1", "PV1", "PV2", "NK1", "ORC", "OBR", "OBX", "NTE",
    "PRT", "TQ1", "TQ2", "RXG", "RXR", "RXC", "RXE", "RXO", "RXA", "RXD", "MSA", "ERR", "AL1",
    "DG1", "IN1", "GT1", "ROL", "SPM", "TXA", "FT1", "ACC", "CTI", "DSC", "QAK", "QRD", "QPD",
    "RCP", "BHS", "BTS", "FHS", "FTS", "ARQ", "SCH",
})
ENVELOPE = frozenset({"BHS", "BTS", "FHS", "FTS"})
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_MLLP_BYTES = str.maketrans("", "", "\x0b\x1c")
_SEGMENT_START = re.compile(r"(?:[A-Z][A-Z0-9]{2})")


@dataclass
class RawMessage:
    """One message's segments (text, separators not yet interpreted) and what was repaired."""

    segments: list[str]
    repairs: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    source_line: int = 1

    @property
    def text(self) -> str:
        """The message as HL7 wants it: segments separated by CR."""
        return "\r".join(self.segments)

    @property
    def sha256(self) -> str:
        """Digest of the recovered message (segment text joined by CR; framing excluded),
        so the same message re-sent with other line endings or framing has one identity."""
        return hashlib.sha256(self.text.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass
class Split:
    """The messages found in one input, and input-level findings (encoding, junk)."""

    messages: list[RawMessage]
    notes: list[str] = field(default_factory=list)
    junk: list[str] = field(default_factory=list)


def decode(raw: bytes | str) -> tuple[str, list[str]]:
    """Text of ``raw``: UTF-8 (BOM allowed), else Latin-1 — which never fails — noted."""
    if isinstance(raw, str):
        return raw, []
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        return raw.decode("latin-1"), ["input is not UTF-8: decoded as ISO 8859-1 (Latin-1)"]


def _is_segment_start(line: str, sep: str) -> bool:
    head = line[:3]
    if _SEGMENT_START.fullmatch(head) is None:
        return False
    if not (head in KNOWN_SEGMENTS or head.startswith("Z")):
        return False
    return len(line) == 3 or line[3] == sep


@functools.lru_cache(maxsize=16)
def _fusion_pattern(sep: str) -> re.Pattern[str]:
    ids = "|".join(sorted(KNOWN_SEGMENTS - ENVELOPE))
    s = re.escape(sep)
    # After whitespace/control characters: any known segment. Glued to the previous value
    # without any gap: only the repeating segments, and only with a set id (OBX|12|).
    return re.compile(
        rf"[\s\x00-\x1f]+(?=(?:{ids}){s})|(?<=[A-Za-z0-9])(?=(?:OBX|OBR|NTE|PRT){s}\d{{1,4}}{s})"
    )


def _unfuse(line: str, sep: str) -> list[str]:
    """Split a line where a known segment id + separator follows whitespace or a control
    character (or a repeating segment with its set id is glued to the previous value)."""
    return [part for part in _fusion_pattern(sep).split(line) if part.strip()]


class _Splitter:
    """State of one pass over the lines: the message being filled and its separator."""

    def __init__(self, split: Split):
        self.split = split
        self.current: RawMessage | None = None
        self.sep = "|"

    def continuation(self, number: int, physical: str) -> None:
        if self.current is None:
            self.split.junk.append(f"line {number}: text before the first MSH dropped")
            return
        # A wrapped line: the source broke one segment over two lines. Re-joined as it is
        # (leading spaces may be data), without adding characters; the joined text may
        # reveal a fused segment.
        last = self.current.segments.pop()
        self.current.repairs.append(f"line {number}: continuation of {last[:3]} re-joined")
        self.place(number, _unfuse(last + physical, self.sep), rejoined=True)

    def place(self, number: int, parts: list[str], *, rejoined: bool = False) -> None:
        for index, part in enumerate(parts):
            head = part[:3]
            fused = bool(index)
            note = f"line {number}: {head} fused to the previous segment; split"
            if head == "MSH" and not (rejoined and index == 0):
                self.sep = part[3] if len(part) > 3 else self.sep
                self.current = RawMessage(segments=[part], source_line=number)
                self.split.messages.append(self.current)
                if fused:
                    self.current.repairs.append(note)
            elif head in ENVELOPE and not (rejoined and index == 0):
                target = self.current.dropped if self.current else self.split.junk
                target.append(f"line {number}: {head} batch/file envelope segment dropped")
            elif self.current is None:
                self.split.junk.append(f"line {number}: {head} before the first MSH dropped")
            else:
                self.current.segments.append(part)
                if fused:
                    self.current.repairs.append(note)


def split_messages(raw: bytes | str) -> Split:
    """Find the messages in ``raw`` (one message, a file of them, or a capture)."""
    text, notes = decode(raw)
    if "\x0b" in text or "\x1c" in text:
        text = text.translate(_MLLP_BYTES)
        notes.append("MLLP framing bytes removed")
    split = Split(messages=[], notes=notes)
    splitter = _Splitter(split)
    for number, physical in enumerate(_LINE_BREAK.split(text), start=1):
        probe = physical.strip()
        if not probe:
            continue
        if probe.startswith("MSH") and len(probe) > 3:
            splitter.sep = probe[3]
        if _is_segment_start(probe, splitter.sep):
            splitter.place(number, _unfuse(physical.lstrip(), splitter.sep))
        else:
            splitter.continuation(number, physical)
    return split
