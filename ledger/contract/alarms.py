"""Alarm events: an alarm's life on a pump, keyed by ``alarm_id`` (unique per pump).

Subject ``[pump_id, alarm_id]``, plus ``channel`` when the alarm is channel-level. ``code``
is the MDC reference id (``MDC_EVT_FLUID_LINE_OCCL``), not the numeric code, which some
systems send as ``0`` while it is pending.
"""

from __future__ import annotations

from typing import Literal

from ledger.contract.common import Frozen, Text
from ledger.contract.envelope import AlarmSubject, Envelope, NoData

AlarmPriority = Literal["high", "medium", "low", "info"]
AlarmKind = Literal["technical", "physiological", "advisory"]
AlarmState = Literal["active", "inactive"]


class AlarmRaisedData(Frozen):
    code: Text
    priority: AlarmPriority
    text: Text | None = None
    kind: AlarmKind | None = None


class AlarmUpdatedData(Frozen):
    priority: AlarmPriority | None = None
    state: AlarmState | None = None


class _AlarmEvent(Envelope):
    subject: AlarmSubject


class AlarmRaised(_AlarmEvent):
    """``alarm.raised``: The pump raised an alarm."""

    type: Literal["alarm.raised"]
    data: AlarmRaisedData


class AlarmUpdated(_AlarmEvent):
    """``alarm.updated``: An alarm's priority or state changed."""

    type: Literal["alarm.updated"]
    data: AlarmUpdatedData


class AlarmSilenced(_AlarmEvent):
    """``alarm.silenced``: An alarm's audio was silenced."""

    type: Literal["alarm.silenced"]
    data: NoData


class AlarmAcknowledged(_AlarmEvent):
    """``alarm.acknowledged``: A clinician acknowledged an alarm."""

    type: Literal["alarm.acknowledged"]
    data: NoData


class AlarmCleared(_AlarmEvent):
    """``alarm.cleared``: The alarm condition ended."""

    type: Literal["alarm.cleared"]
    data: NoData
