"""Safe, typed reads of a parsed message: a value or ``""``, never an exception.

``python-hl7`` parses the message (separators from MSH-1/MSH-2, escapes ``\\F\\`` etc.);
this view reads it the way messy input needs: positions that do not exist read as empty,
surrounding spaces are trimmed (and the trim is noted once per place, so a stray space in
``^ 00095CFFFE741952 ^`` is visible in the translation report), and structures are
normalised to *repetitions → components → subcomponents* whatever depth the parser built.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import hl7

Components = list[list[str]]  # components → subcomponents, escapes resolved


@dataclass
class Segment:
    """One segment of the message, with its position (1-based) and id."""

    index: int
    id: str
    raw: hl7.Segment
    view: MessageView

    def reps(self, number: int) -> list[Components]:
        return self.view.repetitions(self, number)

    def comps(self, number: int, rep: int = 1) -> Components:
        reps = self.reps(number)
        return reps[rep - 1] if 0 < rep <= len(reps) else []

    def get(self, number: int, component: int = 1, sub: int = 1, rep: int = 1) -> str:
        """Field ``number`` (component, subcomponent, repetition), trimmed; ``""`` if absent."""
        comps = self.comps(number, rep)
        if not 0 < component <= len(comps):
            return ""
        subs = comps[component - 1]
        if not 0 < sub <= len(subs):
            return ""
        return self.view.trimmed(subs[sub - 1], f"{self.id}-{number}")

    def field_count(self) -> int:
        return max(len(self.raw) - 1, 0)

    def where(self, number: int | None = None) -> str:
        place = f"{self.id}[{self.index}]"
        return f"{place}-{number}" if number is not None else place


@dataclass
class MessageView:
    """The parsed message and the notes reading it produced."""

    message: hl7.Message
    notes: list[str] = field(default_factory=list)
    _noted: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, text: str) -> MessageView:
        """Parse CR-separated segments (raises ``hl7.ParseException``/``ValueError``)."""
        return cls(hl7.parse(text))

    def segments(self, *ids: str) -> Iterator[Segment]:
        for index, raw in enumerate(self.message, start=1):
            seg_id = _leaf(raw[0]) if len(raw) else ""
            if not ids or seg_id in ids:
                yield Segment(index, seg_id, raw, self)

    def first(self, seg_id: str) -> Segment | None:
        return next(self.segments(seg_id), None)

    def note(self, text: str) -> None:
        if text not in self._noted:
            self._noted.add(text)
            self.notes.append(text)

    def trimmed(self, value: str, where: str) -> str:
        stripped = value.strip()
        if stripped != value and stripped:
            self.note(f"{where}: surrounding spaces trimmed from {value!r}")
        return stripped

    def repetitions(self, segment: Segment, number: int) -> list[Components]:
        raw = segment.raw
        if number < 1 or number >= len(raw):
            return []
        node = raw[number]
        if segment.id == "MSH" and number in (1, 2):
            return [[[_leaf(node)]]]
        reps = list(node) if isinstance(node, hl7.Field) else [node]
        return [self._components(rep) for rep in reps]

    def unescape(self, text: str) -> str:
        """Resolve ``\\F\\``-style escapes; a value with one python-hl7 would drop or
        misread (unknown, unterminated, charset switches) is kept as sent, and noted."""
        esc = self.message.esc
        if not esc or esc not in text:
            return text
        if esc in _escapes(esc).sub("", text):
            self.note(f"escape sequence in {text[:40]!r} not understood: kept as sent")
            return text
        try:
            return str(self.message.unescape(text))
        except (ValueError, IndexError, KeyError, TypeError):
            self.note(f"escape sequence in {text[:40]!r} not understood: kept as sent")
            return text

    def _components(self, rep: object) -> Components:
        if isinstance(rep, str):
            return [[self.unescape(rep)]]
        if isinstance(rep, hl7.Repetition):
            return [self._subs(component) for component in rep]
        return [self._subs(rep)]

    def _subs(self, component: object) -> list[str]:
        if isinstance(component, str):
            return [self.unescape(component)]
        if isinstance(component, list):
            return [self.unescape(str(sub)) for sub in component]
        return [self.unescape(str(component))]


@functools.lru_cache(maxsize=8)
def _escapes(esc: str) -> re.Pattern[str]:
    e = re.escape(esc)
    return re.compile(
        rf"{e}(?:[FSTREHN]|X(?:[0-9A-Fa-f]{{2}})+|\.(?:br|fi|nf|ce|(?:sp|sk|in|ti)[+-]?\d*)){e}"
    )


def _leaf(node: object) -> str:
    while isinstance(node, list) and node:
        node = node[0]
    return node if isinstance(node, str) else ""
