"""A small realistic formulary with its drug-library entries, and the flow arithmetic.

Each :class:`Drug` is one library entry: concentration, dosing unit, typical ordered doses,
titration range, soft and hard limits (in the dosing unit, or in mL/h for plain fluids and
intermittent drugs), high-alert and vasoactive flags. Alternative strengths and dosing
units, and look-alike partners, are what the injected wrong-concentration, wrong-unit and
wrong-drug errors pick from. Flow <-> dose-rate conversion goes through
:mod:`ledger.units` (exact Decimal) in :func:`flow_for` only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal

from ledger import units

D = Decimal
SYSTEM = "urn:infusion-ledger:sim:formulary"
_CENT = D("0.01")
_TENTH = D("0.1")


@dataclass(frozen=True)
class Limits:
    soft_min: Decimal | None
    soft_max: Decimal | None
    hard_max: Decimal | None


@dataclass(frozen=True)
class Drug:
    key: str
    code: str
    name: str
    vtbi: Decimal
    limits: Limits
    dose_unit: str | None = None  # None: the order is a plain mL/h rate
    amount: Decimal | None = None  # concentration amount ...
    amount_unit: str | None = None
    volume: Decimal | None = None  # ... in this many mL
    doses: tuple[Decimal, ...] = ()  # typical ordered doses (dose rates), or mL/h rates
    titration: tuple[Decimal, Decimal, Decimal] | None = None  # min, max, step
    one_off_dose: Decimal | None = None  # intermittent: the dose per administration
    one_off_unit: str | None = None
    interval_h: int | None = None  # intermittent: hours between doses
    duration_min: int | None = None  # intermittent: minutes per dose
    secondary: bool = False  # given as a piggyback when a primary fluid runs
    continuous: bool = True
    high_alert: bool = False
    vasoactive: bool = False
    bolus: tuple[Decimal, str, Decimal | None] | None = None  # dose, unit, max per hour
    pca: bool = False
    kvo_rate: Decimal = Decimal(1)
    lookalike: str | None = None
    alt_strength: tuple[Decimal, Decimal] | None = None  # (amount, volume) of a wrong bag
    alt_dose_unit: str | None = None
    entry: str = ""

    @property
    def weight_based(self) -> bool:
        return self.dose_unit is not None and "/kg/" in self.dose_unit

    def concentration_parts(self) -> tuple[Decimal, str, Decimal]:
        if self.amount is None or self.amount_unit is None or self.volume is None:
            raise ValueError(f"{self.key} has no concentration")
        return self.amount, self.amount_unit, self.volume

    def medication(self) -> dict[str, str]:
        return {"code": self.code, "system": SYSTEM, "name": self.name}


def quantize_rate(rate: Decimal) -> Decimal:
    """Pumps show 0.01 mL/h below 10 mL/h and 0.1 mL/h above."""
    step = _CENT if rate < 10 else _TENTH
    return rate.quantize(step, rounding=ROUND_HALF_EVEN)


def flow_for(
    dose: Decimal,
    dose_unit: str,
    amount: Decimal,
    amount_unit: str,
    volume: Decimal,
    weight_kg: Decimal | None,
) -> Decimal:
    """mL/h that delivers ``dose`` (a dose rate) from ``amount`` in ``volume`` mL, as a pump
    would display it."""
    exact = units.flow_from_dose_rate(
        dose, dose_unit, amount, amount_unit, volume, "mL", weight_kg
    )
    return quantize_rate(exact)


def volume_for_dose(
    dose: Decimal, dose_unit: str, drug: Drug, weight_kg: Decimal | None
) -> Decimal:
    """mL holding a one-off ``dose`` of ``drug`` (a bolus)."""
    amount, amount_unit, volume = drug.concentration_parts()
    exact = units.volume_from_dose(dose, dose_unit, amount, amount_unit, volume, "mL", weight_kg)
    return exact.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def _lim(soft_min: str | None, soft_max: str | None, hard_max: str | None) -> Limits:
    return Limits(*(D(v) if v is not None else None for v in (soft_min, soft_max, hard_max)))


def _ds(*values: str) -> tuple[Decimal, ...]:
    return tuple(D(v) for v in values)


_DRUGS = (
    Drug("heparin", "HEP-25K-250", "heparin", D(250), _lim("5", "25", "40"),
         "[iU]/kg/h", D(25000), "[iU]", D(250), _ds("12", "15", "18", "18", "20"),
         high_alert=True, bolus=(D(40), "[iU]/kg", None), alt_strength=(D(25000), D(500)),
         alt_dose_unit="[iU]/h"),
    Drug("insulin", "INS-100-100", "insulin regular", D(100), _lim("0.5", "15", "50"),
         "[iU]/h", D(100), "[iU]", D(100), _ds("1", "2", "3", "4", "6"),
         titration=(D("0.5"), D(15), D("0.5")), high_alert=True),
    Drug("norepinephrine", "NOREPI-4-250", "norepinephrine", D(250), _lim("1", "30", "60"),
         "ug/min", D(4), "mg", D(250), _ds("4", "5", "8", "10"),
         titration=(D(2), D(30), D(1)), high_alert=True, vasoactive=True,
         lookalike="epinephrine", alt_strength=(D(8), D(250))),
    Drug("epinephrine", "EPI-4-250", "epinephrine", D(250), _lim("1", "20", "40"),
         "ug/min", D(4), "mg", D(250), _ds("2", "3", "5"),
         titration=(D(1), D(20), D(1)), high_alert=True, vasoactive=True,
         lookalike="norepinephrine"),
    Drug("dopamine", "DOPA-400-250", "dopamine", D(250), _lim("2", "20", "50"),
         "ug/kg/min", D(400), "mg", D(250), _ds("3", "5", "5", "8"),
         titration=(D(2), D(20), D(1)), high_alert=True, vasoactive=True,
         alt_strength=(D(800), D(250)), alt_dose_unit="ug/min"),
    Drug("propofol", "PROP-1000-100", "propofol", D(100), _lim("5", "80", "200"),
         "ug/kg/min", D(1000), "mg", D(100), _ds("10", "20", "25", "30"),
         titration=(D(5), D(50), D(5)), high_alert=True, alt_dose_unit="mg/kg/h"),
    Drug("morphine", "MORPH-100-100", "morphine", D(100), _lim(None, "5", "10"),
         "mg/h", D(100), "mg", D(100), _ds("0.5", "1", "1", "2"),
         high_alert=True, bolus=(D(1), "mg", D(3)), pca=True, kvo_rate=D("0.5")),
    Drug("sodium_chloride", "NS-1000", "sodium chloride 0.9%", D(1000), _lim(None, "500", "999"),
         doses=_ds("75", "100", "100", "125", "150"), kvo_rate=D(5), lookalike="lactated_ringers"),
    Drug("lactated_ringers", "LR-1000", "lactated Ringer's", D(1000), _lim(None, "500", "999"),
         doses=_ds("75", "100", "125"), kvo_rate=D(5), lookalike="sodium_chloride"),
    Drug("vancomycin", "VANC-1G-250", "vancomycin", D(250), _lim(None, "250", "500"),
         amount=D(1000), amount_unit="mg", volume=D(250), doses=_ds("125"),
         one_off_dose=D(1000), one_off_unit="mg", interval_h=12, duration_min=120,
         secondary=True, continuous=False),
    Drug("piperacillin_tazobactam", "PIPTAZ-3375-50", "piperacillin-tazobactam", D(50),
         _lim(None, "300", "600"), amount=D(3375), amount_unit="mg", volume=D(50),
         doses=_ds("100"), one_off_dose=D(3375), one_off_unit="mg", interval_h=6,
         duration_min=30, secondary=True, continuous=False),
    Drug("potassium_chloride", "KCL-20-100", "potassium chloride", D(100), _lim(None, "10", "20"),
         "meq/h", D(20), "meq", D(100), _ds("10"), high_alert=True, continuous=False),
)

FORMULARY: dict[str, Drug] = {
    d.key: replace(d, entry=f"LIB-{d.code}") for d in _DRUGS
}

#: Relative weights of new orders by unit kind.
ORDER_MIX: dict[str, tuple[tuple[str, int], ...]] = {
    "icu": (("norepinephrine", 10), ("propofol", 8), ("insulin", 7), ("heparin", 6),
            ("dopamine", 3), ("epinephrine", 2), ("sodium_chloride", 12),
            ("lactated_ringers", 4), ("vancomycin", 6), ("piperacillin_tazobactam", 8),
            ("potassium_chloride", 5), ("morphine", 3)),
    "stepdown": (("heparin", 8), ("insulin", 5), ("sodium_chloride", 14),
                 ("lactated_ringers", 4), ("vancomycin", 6), ("piperacillin_tazobactam", 8),
                 ("potassium_chloride", 6), ("morphine", 3), ("dopamine", 1)),
    "medsurg": (("sodium_chloride", 16), ("lactated_ringers", 6),
                ("piperacillin_tazobactam", 8), ("vancomycin", 5), ("potassium_chloride", 6),
                ("heparin", 4), ("morphine", 5), ("insulin", 2)),
    "oncology": (("sodium_chloride", 16), ("piperacillin_tazobactam", 8), ("vancomycin", 6),
                 ("potassium_chloride", 5), ("morphine", 6), ("heparin", 3)),
}

#: Median hours a continuous order stays active before it is discontinued.
ORDER_DURATION_H: dict[str, float] = {
    "norepinephrine": 22, "epinephrine": 14, "dopamine": 18, "propofol": 28, "insulin": 30,
    "heparin": 48, "morphine": 40, "sodium_chloride": 30, "lactated_ringers": 20,
    "vancomycin": 96, "piperacillin_tazobactam": 96, "potassium_chloride": 6,
}

FLUIDS = ("sodium_chloride", "lactated_ringers")

#: Library entries of the same drugs in their alternative dosing units (a wrong-unit
#: program is checked against these limits, as the pump would).
ALT_UNIT_LIMITS: dict[tuple[str, str], Limits] = {
    ("heparin", "[iU]/h"): _lim("500", "2500", "5000"),
    ("dopamine", "ug/min"): _lim("100", "1600", "4000"),
    ("propofol", "mg/kg/h"): _lim("0.3", "4.8", "12"),
}
