"""Device events: a pump's link to the gateway and its clock. Subject ``[pump_id]``.

A clock change is recorded with both times so projections can explain skew between
``occurred_at`` (the pump's clock, as reported) and ``received_at``.
"""

from __future__ import annotations

from typing import Literal

from ledger.contract.common import Frozen, Timestamp
from ledger.contract.envelope import Envelope, PumpSubject

CommunicationStatus = Literal["lost", "restored"]


class CommunicationChangedData(Frozen):
    status: CommunicationStatus


class ClockChangedData(Frozen):
    previous_time: Timestamp
    new_time: Timestamp


class PumpCommunicationChanged(Envelope):
    """``pump.communication_changed``: The pump's link to its gateway was lost or restored."""

    type: Literal["pump.communication_changed"]
    subject: PumpSubject
    data: CommunicationChangedData


class PumpClockChanged(Envelope):
    """``pump.clock_changed``: The pump's clock was changed (both times recorded)."""

    type: Literal["pump.clock_changed"]
    subject: PumpSubject
    data: ClockChangedData
