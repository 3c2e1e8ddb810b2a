"""Units (dual-coded MDC/UCUM) and numbers (exact, as written) → contract Quantities.

A unit field (OBX-6, RXG-7/16/18/24) is a CWE that may carry an MDC triplet
(``265266^MDC_DIM_MILLI_L_PER_HR^MDC``), a UCUM one (``mL/h^mL/h^UCUM``), or both in either
order — the PIV examples even put the MDC term code in the UCUM triplet's identifier
(``3475^ug/kg/min^UCUM``). Each triplet is read on its own; the MDC one through its
reference id (parsed by its grammar: ``MDC_DIM_MICRO_G_PER_KG_PER_MIN`` → ``ug/kg/min``)
or its number, the UCUM one through its identifier or text. Both must agree, or the value
is dropped with the reason: the ledger never picks one side of a contradiction.

Numbers keep the digits as written (OBX-5 trailing zeros are significant): only a ``+``
sign, superfluous leading zeros and a bare trailing dot are normalised, and noted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.units import UnitError, parse_unit

#: MDC unit numbers confirmed in the TF (DOMAIN.md §2.4) or derived by prefix arithmetic.
MDC_UNIT_CODES: dict[int, str] = {
    263762: "MDC_DIM_MILLI_L",
    263744: "MDC_DIM_X_L",
    265266: "MDC_DIM_MILLI_L_PER_HR",
    265619: "MDC_DIM_MICRO_G_PER_KG_PER_MIN",
    264306: "MDC_DIM_MILLI_G_PER_ML",
    263890: "MDC_DIM_MILLI_G",
    263891: "MDC_DIM_MICRO_G",
    263892: "MDC_DIM_NANO_G",
    263872: "MDC_DIM_X_G",
    263875: "MDC_DIM_KILO_G",
    263441: "MDC_DIM_CENTI_M",
    263616: "MDC_DIM_SQ_X_M",
    264320: "MDC_DIM_X_SEC",
    264352: "MDC_DIM_MIN",
    264384: "MDC_DIM_HR",
    262688: "MDC_DIM_PERCENT",
}

_PREFIX = {"X": "", "KILO": "k", "MILLI": "m", "MICRO": "u", "NANO": "n", "CENTI": "c"}
_BASE = {"G": "g", "L": "L", "M": "m", "SEC": "s", "MIN": "min", "HR": "h", "DAY": "d",
         "EQUIV": "eq", "MOLE": "mol"}
_WHOLE = {"INTL_UNIT": "[iU]", "MIN": "min", "HR": "h", "PERCENT": "%"}
_TIME_BASES = {"SEC", "MIN", "HR", "DAY"}
_ABBREVIATED = {"KG": "kg", "ML": "mL"}

#: UCUM spellings seen in the wild → the contract's UCUM code.
UCUM_ALIASES: dict[str, str] = {
    "ml": "mL", "ml/hr": "mL/h", "ml/h": "mL/h", "ml/min": "mL/min", "l": "L",
    "mcg": "ug", "µg": "ug", "μg": "ug", "iu": "[iU]", "[iu]": "[iU]", "meq": "meq",
    "sec": "s", "hr": "h", "hour": "h", "kg": "kg", "mg/ml": "mg/mL",
}


def _mdc_atom(tokens: list[str]) -> tuple[str, int] | None:
    """One unit atom at the front of ``tokens`` (``MILLI G``, ``KG``...): UCUM and length."""
    if len(tokens) >= 2 and tokens[0] == "INTL" and tokens[1] == "UNIT":
        return "[iU]", 2
    if tokens and tokens[0] in _BASE and tokens[0] in _TIME_BASES:
        return _BASE[tokens[0]], 1
    if tokens and tokens[0] in _ABBREVIATED:
        return _ABBREVIATED[tokens[0]], 1
    if len(tokens) >= 2 and tokens[0] in _PREFIX and tokens[1] in _BASE:
        return _PREFIX[tokens[0]] + _BASE[tokens[1]], 2
    return None


def ucum_from_refid(refid: str) -> str | None:
    """``MDC_DIM_MICRO_G_PER_KG_PER_MIN`` → ``ug/kg/min`` (``None`` if not understood)."""
    if not refid.startswith("MDC_DIM_"):
        return None
    body = refid[len("MDC_DIM_"):]
    if body in _WHOLE:
        return _WHOLE[body]
    tokens = body.split("_")
    parts: list[str] = []
    while tokens:
        if parts:
            if tokens[0] != "PER":
                return None
            tokens = tokens[1:]
        atom = _mdc_atom(tokens)
        if atom is None:
            return None
        parts.append(atom[0])
        tokens = tokens[atom[1]:]
    return "/".join(parts) if parts else None


def ucum_code(text: str) -> str | None:
    """A UCUM code the contract accepts, from an identifier or text as sent."""
    candidate = text.strip()
    if not candidate:
        return None
    for attempt in (candidate, UCUM_ALIASES.get(candidate.lower(), "")):
        if attempt:
            try:
                return parse_unit(attempt).code
            except UnitError:
                continue
    return None


@dataclass(frozen=True)
class UnitReading:
    """The contract UCUM code of a unit field, and the original code kept for the record."""

    ucum: str | None
    original: str
    problem: str | None = None


def read_unit(triplets: list[tuple[str, str, str]]) -> UnitReading:
    """Read the CWE triplets (identifier, text, coding system) of a unit field."""
    original = " / ".join("^".join(t).rstrip("^") for t in triplets if any(t))
    found: dict[str, str] = {}
    for ident, text, system in triplets:
        if not (ident or text):
            continue
        refid = text if text.upper().startswith("MDC_DIM") else ""
        if system.upper() == "MDC" or refid or (ident.isdigit() and int(ident) in MDC_UNIT_CODES):
            name = refid.upper() or MDC_UNIT_CODES.get(int(ident) if ident.isdigit() else -1, "")
            ucum = ucum_from_refid(name) if name else None
            if ucum is not None and ucum_code(ucum) is not None:
                found.setdefault("MDC", ucum_code(ucum) or ucum)
            elif name or ident:
                found.setdefault("MDC?", name or ident)
        else:
            ucum = ucum_code(ident) or ucum_code(text)
            if ucum is not None:
                found.setdefault("UCUM", ucum)
            else:
                found.setdefault("UCUM?", ident or text)
    codes = {found[k] for k in ("MDC", "UCUM") if k in found}
    if len(codes) > 1:
        return UnitReading(None, original, f"MDC and UCUM codes disagree ({original})")
    if codes:
        return UnitReading(codes.pop(), original)
    if not original:
        return UnitReading(None, original, "no unit given")
    why = f"unit {original!r} has no UCUM equivalent the contract accepts"
    return UnitReading(None, original, why)


_NUMBER = re.compile(r"\+?(?P<int>\d*)(?:\.(?P<frac>\d*))?")


def exact_number(text: str) -> tuple[str | None, str | None]:
    """``(decimal literal, note)`` or ``(None, reason)``; digits kept as written."""
    value = text.strip()
    match = _NUMBER.fullmatch(value)
    if not value or match is None or not (match.group("int") or match.group("frac")):
        if value.startswith("-"):
            return None, f"negative value {value!r}: quantities are zero or more"
        return None, f"{value!r} is not a decimal number"
    whole = match.group("int").lstrip("0") or "0"
    frac = match.group("frac")
    literal = f"{whole}.{frac}" if frac else whole
    note = None if literal == value else f"number {value!r} written as {literal!r}"
    return literal, note
