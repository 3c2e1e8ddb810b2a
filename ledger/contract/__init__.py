"""The v1 wire contract: typed events, the one parser, the stored form and its digest.

Usage::

    from ledger.contract import parse_event, wire_dict, content_digest
    event = parse_event(message_bytes)          # ContractError(FieldError...) if malformed
    stored = wire_dict(event)                   # what the ledger stores
    key = content_digest(event)                 # duplicate vs conflict under one event_id

Modules: ``common`` (base model, strings, timestamps), ``decimals`` and ``reading``
(exact numbers), ``quantities`` (units per field), ``envelope``, one module per event
family (``orders``, ``patients``, ``programming``, ``delivery``, ``safety``, ``alarms``,
``documentation``, ``device``, ``internal``), ``union`` (the discriminated union and
``parse_event``), ``translate`` (error paths and codes), ``canonical`` and ``schema``.
"""

from ledger.contract.alarms import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmRaised,
    AlarmSilenced,
    AlarmUpdated,
)
from ledger.contract.canonical import canonical_json, content_digest, wire_dict, wire_json
from ledger.contract.common import Medication
from ledger.contract.decimals import JsonNumber
from ledger.contract.delivery import (
    BolusDelivered,
    InfusionPaused,
    InfusionRateChanged,
    InfusionResumed,
    InfusionStarted,
    InfusionStatusReported,
    InfusionStopped,
    KvoStarted,
    VtbiCompleted,
)
from ledger.contract.device import PumpClockChanged, PumpCommunicationChanged
from ledger.contract.documentation import (
    DocumentationEdited,
    DocumentationEnteredManually,
    DocumentationRetracted,
    DocumentationValidated,
)
from ledger.contract.envelope import Actor, Envelope, Source, Subject
from ledger.contract.internal import AccessRecorded, AccessSealed, DiscrepancyReviewed
from ledger.contract.orders import (
    OrderCompleted,
    OrderDiscontinued,
    OrderHeld,
    OrderModified,
    OrderPlaced,
    OrderReleased,
    OrderVerified,
)
from ledger.contract.patients import (
    BcmaScanRecorded,
    PatientLocated,
    PumpAssociated,
    PumpDisassociated,
)
from ledger.contract.programming import (
    AutoProgramAccepted,
    AutoProgramRejected,
    AutoProgramRequested,
    ProgramCleared,
    ProgramConfirmed,
)
from ledger.contract.quantities import Concentration, Quantity
from ledger.contract.safety import LibraryActivated, LimitAlertRaised, LimitAlertResolved
from ledger.contract.union import (
    EVENT_ADAPTER,
    EVENT_TYPES,
    INTERNAL_TYPES,
    MODELS,
    PUBLIC_EVENT_ADAPTER,
    PUBLIC_TYPES,
    AnyInternalEvent,
    AnyPublicEvent,
    Event,
    PublicEvent,
    parse_event,
    parse_mapping,
    subject_of,
)

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_TYPES",
    "INTERNAL_TYPES",
    "MODELS",
    "PUBLIC_EVENT_ADAPTER",
    "PUBLIC_TYPES",
    "AccessRecorded",
    "AccessSealed",
    "Actor",
    "AlarmAcknowledged",
    "AlarmCleared",
    "AlarmRaised",
    "AlarmSilenced",
    "AlarmUpdated",
    "AnyInternalEvent",
    "AnyPublicEvent",
    "AutoProgramAccepted",
    "AutoProgramRejected",
    "AutoProgramRequested",
    "BcmaScanRecorded",
    "BolusDelivered",
    "Concentration",
    "DiscrepancyReviewed",
    "DocumentationEdited",
    "DocumentationEnteredManually",
    "DocumentationRetracted",
    "DocumentationValidated",
    "Envelope",
    "Event",
    "InfusionPaused",
    "InfusionRateChanged",
    "InfusionResumed",
    "InfusionStarted",
    "InfusionStatusReported",
    "InfusionStopped",
    "JsonNumber",
    "KvoStarted",
    "LibraryActivated",
    "LimitAlertRaised",
    "LimitAlertResolved",
    "Medication",
    "OrderCompleted",
    "OrderDiscontinued",
    "OrderHeld",
    "OrderModified",
    "OrderPlaced",
    "OrderReleased",
    "OrderVerified",
    "PatientLocated",
    "ProgramCleared",
    "ProgramConfirmed",
    "PublicEvent",
    "PumpAssociated",
    "PumpClockChanged",
    "PumpCommunicationChanged",
    "PumpDisassociated",
    "Quantity",
    "Source",
    "Subject",
    "VtbiCompleted",
    "canonical_json",
    "content_digest",
    "parse_event",
    "parse_mapping",
    "subject_of",
    "wire_dict",
    "wire_json",
]
