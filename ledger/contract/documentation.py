"""Documentation (EHR charting) events: what a nurse charted, edited, entered or retracted.

Subject ``[order_id, patient_id]``, plus ``pump_id``/``channel`` when the values came from
a pump. Charted values must name at least one of rate, dose rate or volume infused. An
edit's ``device_value`` and ``charted_value`` are Quantities of the edited ``field``. A
retraction names the retracted entry in the envelope's ``corrects_event_id``.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from ledger.contract.common import Frozen, Text, Timestamp, at_least_one
from ledger.contract.envelope import Envelope, OrderSubject
from ledger.contract.quantities import DoseRate, Flow, Quantity, Volume, require_dimension
from ledger.units import DOSE_RATE, Dimension

ChartedField = Literal["rate", "dose_rate", "volume_infused"]

FIELD_DIMENSIONS: dict[str, frozenset[Dimension]] = {
    "rate": frozenset({"flow"}),
    "dose_rate": DOSE_RATE,
    "volume_infused": frozenset({"volume"}),
}


class ManualEntryData(Frozen):
    """Values a clinician charted by hand: no device data behind them."""

    observed_at: Timestamp
    rate: Flow | None = None
    dose_rate: DoseRate | None = None
    volume_infused: Volume | None = None

    @model_validator(mode="after")
    def _some_value(self) -> ManualEntryData:
        at_least_one(self, "rate", "dose_rate", "volume_infused")
        return self


class ValidatedData(ManualEntryData):
    """Device values a clinician accepted into the chart; ``source_event_ids`` are the
    pump events the values came from."""

    source_event_ids: tuple[UUID, ...] | None = None


class EditedData(Frozen):
    field: ChartedField
    device_value: Quantity
    charted_value: Quantity
    reason: Text | None = None

    @model_validator(mode="after")
    def _values_of_the_field(self) -> EditedData:
        dimensions = FIELD_DIMENSIONS[self.field]
        why = f"field {self.field!r}"
        require_dimension(self.device_value, dimensions, "device_value.unit", why)
        require_dimension(self.charted_value, dimensions, "charted_value.unit", why)
        return self


class RetractedData(Frozen):
    reason: Text | None = None


class DocumentationValidated(Envelope):
    """``documentation.validated``: A clinician accepted device values into the chart."""

    type: Literal["documentation.validated"]
    subject: OrderSubject
    data: ValidatedData


class DocumentationEdited(Envelope):
    """``documentation.edited``: A clinician charted a value different from the device's."""

    type: Literal["documentation.edited"]
    subject: OrderSubject
    data: EditedData


class DocumentationEnteredManually(Envelope):
    """``documentation.entered_manually``: values charted by hand, no device data."""

    type: Literal["documentation.entered_manually"]
    subject: OrderSubject
    data: ManualEntryData


class DocumentationRetracted(Envelope):
    """``documentation.retracted``: the entry named in ``corrects_event_id`` is void."""

    type: Literal["documentation.retracted"]
    subject: OrderSubject
    data: RetractedData

    @model_validator(mode="after")
    def _names_the_retracted_entry(self) -> DocumentationRetracted:
        if self.corrects_event_id is None:
            raise PydanticCustomError(
                "missing",
                "{reason}",
                {
                    "reason": "a retraction names the retracted entry in corrects_event_id",
                    "at": "corrects_event_id",
                },
            )
        return self
