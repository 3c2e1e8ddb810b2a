"""The envelope every event carries, and the subject ids each family of types requires.

EVENTS.md "Envelope": ids, the three clocks' first two (``occurred_at`` as the device
reported it, ``received_at`` at the edge), where the event came from, who it is about and
who did it. At the envelope level every subject id is optional; each event type then uses
one of the ``*Subject`` classes below, which make the ids EVENTS.md lists in ``[...]``
required, so a missing one is reported as ``subject.pump_id`` (code ``missing``) and the
JSON Schema shows producers exactly what each type needs.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from ledger.contract.common import Frozen, Id, Text, Timestamp

SourceKind = Literal[
    "pump_gateway", "ehr", "bcma", "pharmacy", "alarm_manager", "simulator", "other"
]
ActorRole = Literal["nurse", "pharmacist", "prescriber", "system", "device"]


def _version_one(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "schema_version must be the integer 1")
    if value != 1:
        raise PydanticCustomError(
            "unsupported_schema_version",
            "{reason}",
            {"reason": f"schema_version {value} is not supported; this contract is version 1"},
        )
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_version_one)]


class Source(Frozen):
    """The system that sent the event; ``message_id`` is HL7 MSH-10 or the native id."""

    system: Text
    kind: SourceKind
    message_id: Text | None = None


class Actor(Frozen):
    """Who did what the event records (never an ambient context)."""

    id: Id
    role: ActorRole


class Subject(Frozen):
    """Who and what the event is about; ids are unique within a facility."""

    facility_id: Id | None = None
    patient_id: Id | None = None
    encounter_id: Id | None = None
    order_id: Id | None = None
    pump_id: Id | None = None
    channel: Id | None = None
    alarm_id: Id | None = None


class OrderSubject(Subject):
    order_id: Id
    patient_id: Id


class PatientSubject(Subject):
    patient_id: Id


class PumpSubject(Subject):
    pump_id: Id


class ChannelSubject(Subject):
    pump_id: Id
    channel: Id


class AssociationSubject(Subject):
    pump_id: Id
    channel: Id
    patient_id: Id


class AutoProgramSubject(Subject):
    pump_id: Id
    channel: Id
    order_id: Id


class AlarmSubject(Subject):
    pump_id: Id
    alarm_id: Id


class Envelope(Frozen):
    """Fields common to every event; subclasses narrow ``type``, ``subject`` and ``data``."""

    event_id: UUID
    type: str
    schema_version: SchemaVersion
    occurred_at: Timestamp
    received_at: Timestamp | None = None
    source: Source
    subject: Subject
    actor: Actor | None = None
    correlation_id: Text | None = None
    causation_id: Text | None = None
    corrects_event_id: UUID | None = None
    data: Frozen


class NoData(Frozen):
    """``data`` of a type that carries nothing beyond its envelope: ``{}``."""
