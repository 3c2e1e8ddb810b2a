"""OBX segments read as observations: term, containment path, value, unit, status, time.

Each observation remembers whether a translator used it, so whatever was not used can be
reported as dropped with the reason (nothing is silently ignored). Repairs made here:

* OBX-11 empty but a result status letter one field off (OBX-10 or OBX-12): taken, noted —
  the B. Braun alarm sample has one OBX short a field;
* OBX-3 without ``^MDC`` or with code ``0``: keyed on the reference id (:mod:`mdc`);
* OBX-4 with spaces or a trailing dot: read as its numbers, noted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from consumers.hl7 import mdc
from consumers.hl7.units import UnitReading, exact_number, read_unit
from consumers.hl7.view import MessageView, Segment

#: HL7 table 0085 result status values allowed in PCD messages (TF-2 §1.1).
RESULT_STATUS = frozenset("CDFIPRSUWXON")
_PATH = re.compile(r"\d+(?:\.\d+)*")


@dataclass
class Observation:
    """One OBX. ``path`` is OBX-4 as numbers (``None`` if absent), kept as source coordinates."""

    segment: Segment
    term: mdc.Term
    path: tuple[int, ...] | None
    status: str
    used: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def set_id(self) -> str:
        return self.segment.get(1)

    @property
    def path_text(self) -> str:
        return ".".join(map(str, self.path)) if self.path else ""

    @property
    def where(self) -> str:
        return f"OBX|{self.set_id}|{self.term.key}" + (f"@{self.path_text}" if self.path else "")

    @property
    def time_text(self) -> str:
        return self.segment.get(14)

    @property
    def method(self) -> str:
        return self.segment.get(17)

    def text(self) -> str:
        """OBX-5 as text (first component: ST/NM; see :meth:`enum` for CWE values)."""
        return self.segment.get(5)

    def enum(self) -> str:
        """A coded enumeration (``^pump-status-infusing``): its text, else its identifier."""
        return (self.segment.get(5, 2) or self.segment.get(5, 1)).lower()

    def coded(self) -> tuple[mdc.Term, list[str]]:
        """OBX-5 as an MDC term (``196940^MDC_EVT_FLUID_LINE_OCCL^MDC^^^^^^Occlusion``)."""
        seg = self.segment
        text = seg.get(5, 9) or seg.get(5, 2)
        return mdc.resolve(seg.get(5, 1), seg.get(5, 2), text if not text.startswith("MDC") else "")

    def unit(self) -> UnitReading:
        seg = self.segment
        return read_unit(
            [(seg.get(6, 1), seg.get(6, 2), seg.get(6, 3)),
             (seg.get(6, 4), seg.get(6, 5), seg.get(6, 6))]
        )

    def quantity(self) -> tuple[dict[str, str] | None, str | None]:
        """``({"value", "unit"}, note)`` or ``(None, reason)``; the value exactly as written."""
        literal, note = exact_number(self.text())
        if literal is None:
            return None, note
        unit = self.unit()
        if unit.ucum is None:
            return None, unit.problem
        return {"value": literal, "unit": unit.ucum}, note

    def equipment(self) -> list[str]:
        """OBX-18 first repetition as EI components (id, namespace, universal id, type)."""
        return [self.segment.get(18, n) for n in range(1, 5)]


def _status(segment: Segment, notes: list[str]) -> str:
    status = segment.get(11).upper()
    if status in RESULT_STATUS:
        return status
    for other in (10, 12):
        candidate = segment.get(other).upper()
        if len(candidate) == 1 and candidate in RESULT_STATUS:
            notes.append(f"OBX|{segment.get(1)}: result status {candidate!r} found in OBX-{other} "
                         "(segment one field off); read as OBX-11")
            return candidate
    if status:
        notes.append(f"OBX|{segment.get(1)}: unknown result status {status!r}")
    return status


def _path(segment: Segment, notes: list[str]) -> tuple[int, ...] | None:
    raw = segment.get(4)
    compact = re.sub(r"\s+", "", raw).rstrip(".")
    if not compact:
        return None
    if _PATH.fullmatch(compact) is None:
        notes.append(f"OBX|{segment.get(1)}: OBX-4 {raw!r} is not a containment path; ignored")
        return None
    if compact != raw:
        notes.append(f"OBX|{segment.get(1)}: OBX-4 {raw!r} read as {compact!r}")
    return tuple(int(part) for part in compact.split("."))


def read_observation(segment: Segment) -> Observation:
    notes: list[str] = []
    term, term_notes = mdc.resolve(segment.get(3, 1), segment.get(3, 2), segment.get(3, 9))
    notes.extend(f"OBX|{segment.get(1)}: {n}" for n in term_notes)
    return Observation(segment, term, _path(segment, notes), _status(segment, notes), notes=notes)


def observations(view: MessageView, segments: list[Segment]) -> list[Observation]:
    result = []
    for segment in segments:
        if segment.id == "OBX":
            obs = read_observation(segment)
            for note in obs.notes:
                view.note(note)
            result.append(obs)
    return result
