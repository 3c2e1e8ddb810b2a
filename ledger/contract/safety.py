"""Safety (DERS) events: drug-library limit alerts, their resolution, library activation.

An alert's ``limit`` and ``programmed`` values are "Quantities of that parameter", so their
accepted units depend on ``parameter``: checked here and reported at ``data.limit.unit``.
Overrides are events, not flags: ``ders.limit_alert_resolved`` with ``overridden``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from ledger.contract.common import Frozen, MaybeEmptyText, Text
from ledger.contract.decimals import WireDecimal
from ledger.contract.envelope import ChannelSubject, Envelope, PumpSubject
from ledger.contract.quantities import Quantity, require_dimension
from ledger.units import DOSE, DOSE_RATE, Dimension

LimitKind = Literal["soft", "hard"]
LimitParameter = Literal["dose", "rate", "bolus", "vtbi", "concentration"]
Bound = Literal["upper", "lower"]
AlertOutcome = Literal["overridden", "reprogrammed", "cancelled"]

PARAMETER_DIMENSIONS: dict[str, frozenset[Dimension]] = {
    "dose": DOSE | DOSE_RATE,
    "rate": frozenset({"flow"}),
    "bolus": DOSE,
    "vtbi": frozenset({"volume"}),
    "concentration": frozenset({"concentration"}),
}


class LimitAlertRaisedData(Frozen):
    alert_id: Text
    limit_kind: LimitKind
    parameter: LimitParameter
    bound: Bound | None = None
    limit: Quantity | None = None
    programmed: Quantity | None = None
    library_entry_id: Text | None = None
    care_area: Text | None = None
    library_version: Text | None = None

    @model_validator(mode="after")
    def _quantities_of_the_parameter(self) -> LimitAlertRaisedData:
        dimensions = PARAMETER_DIMENSIONS[self.parameter]
        why = f"parameter {self.parameter!r}"
        require_dimension(self.limit, dimensions, "limit.unit", why)
        require_dimension(self.programmed, dimensions, "programmed.unit", why)
        return self


class LimitAlertResolvedData(Frozen):
    alert_id: Text
    outcome: AlertOutcome
    reason_code: Text | None = None
    reason_text: MaybeEmptyText | None = None
    seconds_to_resolve: WireDecimal | None = None


class LibraryActivatedData(Frozen):
    library_version: Text


class LimitAlertRaised(Envelope):
    """``ders.limit_alert_raised``: Programming hit a drug-library (DERS) soft or hard limit."""

    type: Literal["ders.limit_alert_raised"]
    subject: ChannelSubject
    data: LimitAlertRaisedData


class LimitAlertResolved(Envelope):
    """``ders.limit_alert_resolved``: a DERS alert overridden, reprogrammed or cancelled."""

    type: Literal["ders.limit_alert_resolved"]
    subject: ChannelSubject
    data: LimitAlertResolvedData


class LibraryActivated(Envelope):
    """``pump.library_activated``: The pump activated a drug-library version."""

    type: Literal["pump.library_activated"]
    subject: PumpSubject
    data: LibraryActivatedData
