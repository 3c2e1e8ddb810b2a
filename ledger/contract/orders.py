"""Order events: what was prescribed, and the order's life (verify, modify, hold, stop).

Subject ``[order_id, patient_id]``. ``order.placed`` needs a dose and/or a rate;
``order.modified`` carries only the fields that changed, so nothing in it is required and
nothing defaults (an absent ``high_alert`` means "unchanged", not "false").
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import StrictBool, model_validator

from ledger.contract.common import (
    Frozen,
    Medication,
    Text,
    Timestamp,
    at_least_one,
    null_means,
)
from ledger.contract.envelope import Envelope, NoData, OrderSubject
from ledger.contract.quantities import (
    BodyWeight,
    Bolus,
    Concentration,
    Flow,
    OrderedDose,
    Titration,
    Volume,
    require_commensurable,
)


def _titration_matches_dose(dose: OrderedDose | None, titration: Titration | None) -> None:
    if dose is not None and titration is not None:
        require_commensurable(
            {
                "dose": dose,
                "titration.min": titration.min,
                "titration.max": titration.max,
                "titration.step": titration.step,
            },
            "a titration is in the dose's dimension",
        )


class _OrderFields(Frozen):
    concentration: Concentration | None = None
    dose: OrderedDose | None = None
    rate: Flow | None = None
    titration: Titration | None = None
    vtbi: Volume | None = None
    dosing_weight: BodyWeight | None = None
    route: Text | None = None
    bolus: Bolus | None = None
    start_at: Timestamp | None = None
    stop_at: Timestamp | None = None

    @model_validator(mode="after")
    def _titration_in_dose_dimension(self) -> _OrderFields:
        _titration_matches_dose(self.dose, self.titration)
        return self


class OrderPlacedData(_OrderFields):
    medication: Medication
    high_alert: Annotated[StrictBool, null_means(False)] = False
    continuous: Annotated[StrictBool, null_means(True)] = True

    @model_validator(mode="after")
    def _dose_or_rate(self) -> OrderPlacedData:
        at_least_one(self, "dose", "rate")
        return self


class OrderModifiedData(_OrderFields):
    medication: Medication | None = None
    high_alert: StrictBool | None = None
    continuous: StrictBool | None = None
    reason: Text | None = None


class OrderStatusData(Frozen):
    """Hold, release, discontinue, complete: ``effective_at`` defaults to ``occurred_at``."""

    effective_at: Timestamp | None = None
    reason: Text | None = None


class OrderPlaced(Envelope):
    """``order.placed``: A prescriber's order: drug, concentration, dose and/or rate, limits."""

    type: Literal["order.placed"]
    subject: OrderSubject
    data: OrderPlacedData


class OrderVerified(Envelope):
    """``order.verified``: A pharmacist verified the order."""

    type: Literal["order.verified"]
    subject: OrderSubject
    data: NoData


class OrderModified(Envelope):
    """``order.modified``: The order changed; ``data`` holds only the fields with new values."""

    type: Literal["order.modified"]
    subject: OrderSubject
    data: OrderModifiedData


class _OrderStatusEvent(Envelope):
    subject: OrderSubject
    data: OrderStatusData

    @property
    def effective_at(self) -> datetime:
        """When the status change takes effect: ``data.effective_at`` or ``occurred_at``."""
        return self.data.effective_at or self.occurred_at


class OrderHeld(_OrderStatusEvent):
    """``order.held``: The order is held: not active until released."""

    type: Literal["order.held"]


class OrderReleased(_OrderStatusEvent):
    """``order.released``: A held order is active again."""

    type: Literal["order.released"]


class OrderDiscontinued(_OrderStatusEvent):
    """``order.discontinued``: The order was stopped before its end."""

    type: Literal["order.discontinued"]


class OrderCompleted(_OrderStatusEvent):
    """``order.completed``: The order ran to its end."""

    type: Literal["order.completed"]
