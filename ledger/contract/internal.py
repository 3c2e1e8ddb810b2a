"""Internal event types: appended by the product itself, never accepted from producers.

They go through the same append path (idempotency, hash chain) in their own streams;
``parse_event`` refuses them unless ``allow_internal=True``. EVENTS.md sketches
``access.recorded`` loosely ("who, what, outcome"); the fields below are this project's
reading of it (docs/contract-decisions.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictInt

from ledger.contract.common import Frozen, Id, Text
from ledger.contract.envelope import Envelope, Subject

ReviewOutcome = Literal["confirmed", "false_positive", "accepted_risk"]
AccessOutcome = Literal["allowed", "denied", "error"]


class DiscrepancyReviewedData(Frozen):
    """A person's review of a finding a projection raised."""

    finding_id: Text
    outcome: ReviewOutcome
    note: Text | None = None


class AccessRecordedData(Frozen):
    """The read audit: who (API key id, role) read what (endpoint, query, patients), outcome."""

    key_id: Text
    role: Text
    endpoint: Text
    query: Text | None = None
    patient_ids: tuple[Id, ...] = ()
    outcome: AccessOutcome
    status_code: Annotated[StrictInt, Field(ge=100, le=599)] | None = None


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", strict=True)]
RecordId = Annotated[StrictInt, Field(ge=1)]


class AccessSealedData(Frozen):
    """A seal over rows of the API's access log (docs/tamper-evidence.md §6): which rows, the
    Merkle root of their ``access.recorded`` events, and the seal chain's link."""

    seal_id: RecordId
    first_record_id: RecordId
    last_record_id: RecordId
    record_count: RecordId
    records_root: Sha256Hex
    previous_seal_hash: Sha256Hex
    seal_hash: Sha256Hex


class DiscrepancyReviewed(Envelope):
    """``discrepancy.reviewed``: Internal: a person's review of a finding."""

    type: Literal["discrepancy.reviewed"]
    subject: Subject
    data: DiscrepancyReviewedData


class AccessRecorded(Envelope):
    """``access.recorded``: Internal: the read audit of one API request."""

    type: Literal["access.recorded"]
    subject: Subject
    data: AccessRecordedData


class AccessSealed(Envelope):
    """``access.sealed``: Internal: anchors one seal of the access log in the ledger."""

    type: Literal["access.sealed"]
    subject: Subject
    data: AccessSealedData
