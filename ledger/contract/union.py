"""The discriminated union of every event type, and the one entry point that validates.

``parse_event`` is how bytes from Kafka, lines of an NDJSON import or mappings built in
code become typed events. It reads JSON itself (exact decimals, see ``reading``), refuses
internal types unless asked, and reports every problem at once as a ``ContractError``.
The union and its adapters are built once, at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, get_args

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from ledger.contract.alarms import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmRaised,
    AlarmSilenced,
    AlarmUpdated,
)
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
from ledger.contract.envelope import Envelope, Subject
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
from ledger.contract.reading import check_strings, load_json
from ledger.contract.safety import LibraryActivated, LimitAlertRaised, LimitAlertResolved
from ledger.contract.translate import field_errors
from ledger.errors import ContractError, FieldError

AnyPublicEvent = (
    OrderPlaced
    | OrderVerified
    | OrderModified
    | OrderHeld
    | OrderReleased
    | OrderDiscontinued
    | OrderCompleted
    | PatientLocated
    | BcmaScanRecorded
    | PumpAssociated
    | PumpDisassociated
    | AutoProgramRequested
    | AutoProgramAccepted
    | AutoProgramRejected
    | ProgramConfirmed
    | ProgramCleared
    | InfusionStarted
    | InfusionRateChanged
    | InfusionPaused
    | InfusionResumed
    | KvoStarted
    | BolusDelivered
    | VtbiCompleted
    | InfusionStopped
    | InfusionStatusReported
    | LimitAlertRaised
    | LimitAlertResolved
    | LibraryActivated
    | AlarmRaised
    | AlarmUpdated
    | AlarmSilenced
    | AlarmAcknowledged
    | AlarmCleared
    | DocumentationValidated
    | DocumentationEdited
    | DocumentationEnteredManually
    | DocumentationRetracted
    | PumpCommunicationChanged
    | PumpClockChanged
)
AnyInternalEvent = DiscrepancyReviewed | AccessRecorded | AccessSealed

#: Any v1 event a producer may send, discriminated by ``type``.
PublicEvent = Annotated[AnyPublicEvent, Field(discriminator="type")]
#: Any v1 event, producer or internal, discriminated by ``type``.
Event = Annotated[AnyPublicEvent | AnyInternalEvent, Field(discriminator="type")]

EVENT_ADAPTER: TypeAdapter[AnyPublicEvent | AnyInternalEvent] = TypeAdapter(Event)
PUBLIC_EVENT_ADAPTER: TypeAdapter[AnyPublicEvent] = TypeAdapter(PublicEvent)


def _type_of(model: type[Envelope]) -> str:
    (name,) = get_args(model.model_fields["type"].annotation)
    return str(name)


#: Model class of each type string.
MODELS: Mapping[str, type[Envelope]] = {
    _type_of(model): model for model in get_args(AnyPublicEvent | AnyInternalEvent)
}
INTERNAL_TYPES: frozenset[str] = frozenset(_type_of(m) for m in get_args(AnyInternalEvent))
PUBLIC_TYPES: frozenset[str] = frozenset(MODELS) - INTERNAL_TYPES
EVENT_TYPES: frozenset[str] = frozenset(MODELS)


def _refuse_internal(kind: str) -> ContractError:
    return ContractError(
        [
            FieldError(
                "type",
                "internal_type_refused",
                f"{kind!r} is appended by the ledger itself and never accepted from producers",
            )
        ]
    )


def _fast(raw: bytes | str) -> AnyPublicEvent | AnyInternalEvent | None:
    """Validate straight from JSON with pydantic's faster parser when that is exact.

    Pydantic reads a JSON number with a fraction as a binary float; every field refuses a
    float (a decimal field with ``float_not_allowed``), so such a message fails here and
    takes the slow, exact path. Escapes may hide NUL or lone surrogates: slow path too.
    ``None`` means "take the slow path", which also explains any error in contract terms.
    """
    escaped = "\\u" in raw if isinstance(raw, str) else b"\\u" in raw
    if escaped:
        return None
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError:
        return None


def _fast_allowed(
    raw: bytes | str, allow_internal: bool
) -> AnyPublicEvent | AnyInternalEvent | None:
    """``_fast``, refusing an internal type unless it is allowed."""
    event = _fast(raw)
    if event is not None and event.type in INTERNAL_TYPES and not allow_internal:
        raise _refuse_internal(event.type)
    return event


def _document(raw: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        document: Any = raw if isinstance(raw, dict) else dict(raw)
        check_strings(document)
    else:
        document = load_json(raw)
    if not isinstance(document, dict):
        raise ContractError([FieldError("", "not_an_object", "an event is a JSON object")])
    return document


def parse_event(
    raw: bytes | bytearray | memoryview | str | Mapping[str, Any], *, allow_internal: bool = False
) -> AnyPublicEvent | AnyInternalEvent:
    """Validate one event against contract v1; raise ``ContractError`` listing every problem.

    ``raw`` is a JSON document (bytes in UTF-8, or text) or an already decoded mapping;
    a mapping must not hold Python floats (they cannot carry an exact decimal).
    Internal types (``INTERNAL_TYPES``) are refused unless ``allow_internal`` is true.
    """
    if isinstance(raw, bytes | str):
        event = _fast_allowed(raw, allow_internal)
        if event is not None:
            return event
    document = _document(raw)
    kind = document.get("type")
    if not allow_internal and isinstance(kind, str) and kind in INTERNAL_TYPES:
        raise _refuse_internal(kind)
    try:
        return EVENT_ADAPTER.validate_python(document)
    except ValidationError as exc:
        raise ContractError(field_errors(exc)) from None


def subject_of(event: Envelope) -> Subject:
    """The ids the event is about (``facility_id``, ``patient_id``, ``pump_id``, ...)."""
    return event.subject


def parse_mapping(
    document: Mapping[str, Any], *, allow_internal: bool = False
) -> AnyPublicEvent | AnyInternalEvent:
    """``parse_event`` for an event built in code (a mapping), by the JSON fast path.

    Validating a mapping walks every string for NUL bytes and lone surrogates in Python;
    written as JSON (``orjson`` refuses lone surrogates and escapes NUL, which sends such a
    document down the exact path) the contract's native JSON validation does it. Whatever
    the fast path does not accept — including a Python float, which JSON would carry as a
    number the exact path reads as a decimal — is validated as the mapping it is, so the
    result and the errors are ``parse_event(document)``'s."""
    try:
        raw = orjson.dumps(document)
    except TypeError:  # a value JSON cannot carry as is (a Decimal, a UUID object)
        raw = None
    event = _fast_allowed(raw, allow_internal) if raw is not None else None
    if event is not None:
        return event
    return parse_event(document, allow_internal=allow_internal)
