"""IEEE 11073-10101 (MDC) terms the translators use, keyed by reference id *and* number.

OBX-3 is ``<code>^<REFID>^MDC``. Messages send code ``0`` while a term is "assignment
pending" (the draft IPEC sample does it for nine terms), omit the ``^MDC`` coding system,
or send only the number. :func:`resolve` therefore prefers the reference id, falls back to
the number, and notes a disagreement between the two. Private ``MDCX_`` terms are kept by
their reference id. Codes marked in DOMAIN.md §2 as confirmed in the IHE TF, or derived
from Vol 3 ``partition::term`` (decimal = partition × 65536 + term), are listed here;
anything else is looked up by reference id only.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Containment objects of both trees → level and role.
#: IHE Vol 3 tree: MDS / VMD / CHAN_SOURCE, CHAN_DELIVERY.
#: Infusion Pump Model tree: LVP/syringe MDS / VMD, DELIVERY_INFO, INFUSATE_SOURCE_*.
OBJECTS: dict[str, tuple[int, str]] = {
    "MDC_DEV_PUMP_INFUS_MDS": (69985, "mds"),
    "MDC_DEV_PUMP_INFUS_VMD": (69986, "vmd"),
    "MDC_DEV_PUMP_INFUS_CHAN_SOURCE": (126977, "source"),
    "MDC_DEV_PUMP_INFUS_CHAN_DELIVERY": (126978, "delivery"),
    "MDC_DEV_PUMP_INFUS_LVP_MDS": (70049, "mds"),
    "MDC_DEV_PUMP_INFUS_LVP_VMD": (70050, "vmd"),
    "MDC_DEV_PUMP_INFUS_SYRINGE_MDS": (70053, "mds"),
    "MDC_DEV_PUMP_INFUS_SYRINGE_VMD": (70054, "vmd"),
    "MDC_DEV_PUMP_DELIVERY_INFO": (70067, "delivery"),
    "MDC_DEV_PUMP_INFUSATE_SOURCE_PRIMARY": (70071, "source"),
    # Numbers of the other sources are not confirmed (DOMAIN.md §10): reference id only.
    "MDC_DEV_PUMP_INFUSATE_SOURCE_SECONDARY": (0, "source"),
    "MDC_DEV_PUMP_INFUSATE_SOURCE_PCA": (0, "source"),
    "MDC_DEV_PUMP_INFUSATE_SOURCE_LOADING": (0, "source"),
    "MDC_DEV_PUMP_INFUSATE_SOURCE_CLINICIAN": (0, "source"),
    "MDC_DEV_PUMP_INFUSATE_SOURCE_INTERMITTENT": (0, "source"),
}

#: Which infusate source (contract ``infusate_source``) a source object stands for.
SOURCE_KIND: dict[str, str] = {
    "MDC_DEV_PUMP_INFUSATE_SOURCE_PRIMARY": "primary",
    "MDC_DEV_PUMP_INFUSATE_SOURCE_SECONDARY": "secondary",
    "MDC_DEV_PUMP_INFUSATE_SOURCE_PCA": "pca",
    "MDC_DEV_PUMP_INFUSATE_SOURCE_LOADING": "loading",
    "MDC_DEV_PUMP_INFUSATE_SOURCE_CLINICIAN": "bolus",
    "MDC_DEV_PUMP_INFUSATE_SOURCE_INTERMITTENT": "primary",
}

#: Metrics, settings, attributes and events with a confirmed or derived number.
TERMS: dict[str, int] = {
    "MDC_FLOW_FLUID_PUMP": 157784,
    "MDC_FLOW_FLUID_PUMP_CURRENT": 158014,
    "MDC_RATE_DOSE": 157924,
    "MDC_FLOW_DRUG_DELIV": 157804,
    "MDC_VOL_FLUID_TBI": 157884,
    "MDC_VOL_FLUID_TBI_REMAIN": 157872,
    "MDC_VOL_FLUID_DELIV": 157864,
    "MDC_VOL_FLUID_DELIV_TOTAL": 157993,
    "MDC_VOL_INFUS_ACTUAL_TOTAL": 157948,
    "MDC_TIME_PD_REMAIN": 157916,
    "MDC_CONC_DRUG": 157760,
    "MDC_DRUG_NAME_LABEL": 184514,
    "MDC_DRUG_NAME_TYPE": 184330,
    "MDC_PUMP_DRUG_LIBRARY_VERSION": 184517,
    "MDC_PUMP_DRUG_LIBRARY_CARE_AREA": 184516,
    "MDC_PUMP_INFUSING_STATUS": 184519,
    "MDC_PUMP_STAT": 184508,
    "MDC_PUMP_MODE": 184504,
    "MDC_DEV_PUMP_ACTIVE_SOURCES": 158016,
    "MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS": 158005,
    "MDC_DEV_PUMP_PROGRAM_DELIVERY_MODE": 158008,
    "MDC_DEV_PUMP_SOURCE_CHANNEL_LABEL": 158012,
    "MDC_ATTR_PT_WEIGHT": 68063,
    "MDC_ATTR_PT_HEIGHT": 68060,
    "MDC_AREA_BODY_SURF_ACTUAL": 188744,
    "MDC_ATTR_EVT_COND": 68487,
    "MDC_ATTR_EVT_SOURCE": 68488,
    "MDC_ATTR_ALERT_SOURCE": 68480,
    "MDC_ATTR_EVENT_PHASE": 68481,
    "MDC_ATTR_ALARM_STATE": 68482,
    "MDC_ATTR_ALARM_INACTIVATION_STATE": 68483,
    "MDC_ATTR_ALARM_PRIORITY": 68484,
    "MDC_ATTR_ALERT_TYPE": 68485,
    "MDC_EVT_ALARM": 196616,
    "MDC_EVT_FLUID_LINE_OCCL": 196940,
    "MDC_EVT_LO": 196670,
    "MDC_EVT_OCCL": 196688,
    "MDC_EVT_EMPTY": 196634,
    "MDC_EVT_ERR": 196638,
    "MDC_EVT_FAIL": 196646,
    "MDC_EVT_INOP": 196660,
    "MDC_EVT_BATT_FAIL": 196800,
    "MDC_EVT_BATT_LO": 196802,
    "MDC_EVT_DOOR_OR_HANDLE_POSN_PROB": 196842,
    "MDC_EVT_FLUID_LINE_PROB": 196860,
    "MDC_EVT_TIMEOUT": 197192,
    "MDC_EVT_PUMP_FLOW_FREE": 197206,
    "MDC_EVT_STAT_AL_SILENCE": 202822,
    "MDC_EVT_STAT_DOOR_OPEN": 202828,
    "MDC_EVT_STAT_DOOR_CLOS": 202852,
    "MDC_EVT_ADVIS_CHK": 203266,
    "MDC_EVT_ADVIS_SETTINGS_CHK": 203276,
    "MDC_EVT_ADVIS_BATT_REPLACE": 203286,
    "MDC_EVT_ADVIS_PUMP_SYRINGE_REPLACE_WARN": 203320,
    "MDC_EVT_PUMP_DELIV_START": 197288,
}
for _refid, (_code, _role) in OBJECTS.items():
    if _code:
        TERMS[_refid] = _code

BY_CODE: dict[int, str] = {code: refid for refid, code in TERMS.items() if code}


@dataclass(frozen=True)
class Term:
    """An OBX-3 (or CWE value) read as an MDC term: ``refid`` is what the ledger keys on."""

    code: int | None
    refid: str | None
    text: str = ""

    @property
    def key(self) -> str:
        """The reference id, else ``#<number>`` for an unknown number, else ``?``."""
        if self.refid:
            return self.refid
        return f"#{self.code}" if self.code is not None else "?"

    @property
    def known(self) -> bool:
        return self.refid is not None and (self.refid in TERMS or self.refid in OBJECTS)


def resolve(code_text: str, refid_text: str, text: str = "") -> tuple[Term, list[str]]:
    """Read a coded value; returns the term and notes (pending code, disagreement)."""
    notes: list[str] = []
    code = int(code_text) if code_text.isdigit() else None
    refid = refid_text.strip().upper() if refid_text.strip().upper().startswith("MDC") else None
    if refid is None and refid_text.strip():
        notes.append(f"{refid_text!r} is not an MDC reference id")
    if refid is not None:
        expected = TERMS.get(refid)
        if code == 0:
            notes.append(f"{refid}: numeric code 0 (assignment pending): keyed on the reference id")
        elif code is not None and expected is not None and code != expected:
            notes.append(
                f"{refid}: code {code} disagrees with {expected}: keyed on the reference id"
            )
        return Term(code, refid, text), notes
    if code is not None and code in BY_CODE:
        return Term(code, BY_CODE[code], text), notes
    return Term(code, None, text), notes


def object_role(term: Term) -> str | None:
    """``mds``/``vmd``/``source``/``delivery`` for a containment object, else ``None``."""
    if term.refid in OBJECTS:
        return OBJECTS[term.refid][1]
    if term.refid and term.refid.startswith("MDC_DEV_"):
        for suffix, role in (("_MDS", "mds"), ("_VMD", "vmd")):
            if term.refid.endswith(suffix):
                return role
        if "INFUSATE_SOURCE" in term.refid or term.refid.endswith("_CHAN_SOURCE"):
            return "source"
    return None
