"""Delivery events: what a pump channel actually did, from start to stop.

Subject ``[pump_id, channel]``. Every delivery event may say which source on the channel
it concerns (``infusate_source``, ``primary`` when absent or null, which is stored
explicitly so a retry that spells the default out is still the same event).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import model_validator

from ledger.contract.common import Frozen, Text, at_least_one, null_means
from ledger.contract.envelope import ChannelSubject, Envelope
from ledger.contract.quantities import Dose, DoseRate, Duration, Flow, Volume

InfusateSource = Literal["primary", "secondary", "bolus", "loading", "pca"]
InfusateSourceField = Annotated[InfusateSource, null_means("primary")]
RateChangeInitiator = Literal["manual", "auto_program", "protocol"]
PauseReason = Literal["clinician", "alarm", "between_doses", "switching_source", "unknown"]
AfterVtbi = Literal["kvo", "stop"]
ChannelState = Literal["infusing", "paused", "kvo", "stopped", "idle", "alarming"]


class DeliveryData(Frozen):
    infusate_source: InfusateSourceField = "primary"


class StartedData(DeliveryData):
    rate: Flow
    dose_rate: DoseRate | None = None
    vtbi: Volume | None = None


class RateChangedData(DeliveryData):
    new_rate: Flow
    previous_rate: Flow | None = None
    new_dose_rate: DoseRate | None = None
    previous_dose_rate: DoseRate | None = None
    initiated_by: RateChangeInitiator | None = None


class PausedData(DeliveryData):
    reason: PauseReason | None = None
    volume_infused: Volume | None = None


class KvoStartedData(DeliveryData):
    rate: Flow


class BolusDeliveredData(DeliveryData):
    dose: Dose | None = None
    volume: Volume | None = None
    rate: Flow | None = None

    @model_validator(mode="after")
    def _dose_or_volume(self) -> BolusDeliveredData:
        at_least_one(self, "dose", "volume")
        return self


class VtbiCompletedData(DeliveryData):
    volume_infused: Volume | None = None
    next: AfterVtbi | None = None


class StoppedData(DeliveryData):
    volume_infused: Volume | None = None
    reason: Text | None = None


class StatusReportedData(DeliveryData):
    state: ChannelState
    rate: Flow | None = None
    dose_rate: DoseRate | None = None
    volume_infused: Volume | None = None
    vtbi_remaining: Volume | None = None
    time_remaining: Duration | None = None


class _DeliveryEvent(Envelope):
    subject: ChannelSubject


class InfusionStarted(_DeliveryEvent):
    """``infusion.started``: The channel started delivering."""

    type: Literal["infusion.started"]
    data: StartedData


class InfusionRateChanged(_DeliveryEvent):
    """``infusion.rate_changed``: The channel's rate changed while delivering."""

    type: Literal["infusion.rate_changed"]
    data: RateChangedData


class InfusionPaused(_DeliveryEvent):
    """``infusion.paused``: Delivery paused."""

    type: Literal["infusion.paused"]
    data: PausedData


class InfusionResumed(_DeliveryEvent):
    """``infusion.resumed``: Delivery resumed after a pause."""

    type: Literal["infusion.resumed"]
    data: DeliveryData


class KvoStarted(_DeliveryEvent):
    """``infusion.kvo_started``: The channel switched to keep-vein-open flow."""

    type: Literal["infusion.kvo_started"]
    data: KvoStartedData


class BolusDelivered(_DeliveryEvent):
    """``infusion.bolus_delivered``: A bolus was delivered (dose and/or volume)."""

    type: Literal["infusion.bolus_delivered"]
    data: BolusDeliveredData


class VtbiCompleted(_DeliveryEvent):
    """``infusion.vtbi_completed``: The volume to be infused was reached."""

    type: Literal["infusion.vtbi_completed"]
    data: VtbiCompletedData


class InfusionStopped(_DeliveryEvent):
    """``infusion.stopped``: Delivery stopped."""

    type: Literal["infusion.stopped"]
    data: StoppedData


class InfusionStatusReported(_DeliveryEvent):
    """``infusion.status_reported``: Periodic telemetry of the channel's state."""

    type: Literal["infusion.status_reported"]
    data: StatusReportedData
