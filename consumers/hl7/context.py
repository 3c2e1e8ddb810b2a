"""The state of translating one message, and the one way events are made from it.

:meth:`Context.emit` builds the v1 wire envelope, derives the ``event_id`` and validates the
event through :func:`ledger.contract.parse_event` (a refusal is recorded as dropped with the
contract's field errors, never raised). Event ids are UUIDv5 of the message identity —
MSH-10, the message digest — and a *slot* naming where in the message the event comes
from (``orc1``): a re-sent message yields the same ids, so the ledger absorbs it as
duplicates. Device facts (PCD-01 snapshots, PCD-10 events, PCD-04 alarm phases) pass a
*fact identity* instead (:meth:`Context.fact_identity`: sender, pump, channel or alarm,
event, instant), because gateways re-send them under a new MSH-10 and MSH-7 — buffered
IPEC events, ACM refreshes — and the ledger must still hold each fact once; the same
identity with other values is then a conflict, reported, never a second fact.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from consumers.hl7.config import Hl7Config
from consumers.hl7.outcome import Dropped, Translation
from consumers.hl7.timestamps import BadTimestamp, Clock
from consumers.hl7.view import MessageView, Segment
from ledger.contract import parse_event
from ledger.errors import ContractError

#: Fixed forever: event ids of translated messages must be the same on every machine.
HL7_NAMESPACE = uuid.UUID("2f6d9f4a-8c1e-5b7a-9d3c-4e5f6a7b8c9d")

SourceKind = str


@dataclass
class Context:
    """One message being translated: the parsed view, its clocks, and the outcome so far."""

    view: MessageView
    translation: Translation
    config: Hl7Config
    clock: Clock
    received_at: datetime | None = None
    source_kind: SourceKind = "pump_gateway"
    used_segments: set[str] = field(default_factory=set)
    #: Session state: PCD-03 requests seen (``pcd03.RequestRegistry``) and the PCD-01
    #: snapshot tracker (``pcd01_derive.SnapshotTracker``, ``None`` unless enabled).
    requests: Any = None
    tracker: Any = None

    # -- reading -----------------------------------------------------------------------
    @property
    def msh(self) -> Segment:
        msh = self.view.first("MSH")
        assert msh is not None  # a RawMessage always starts with MSH (cleanup guarantees it)
        return msh

    @property
    def source_system(self) -> str:
        """MSH-3 (namespace id, else universal id): the sending application."""
        return self.msh.get(3, 1) or self.msh.get(3, 2) or "unknown-hl7-sender"

    def drop(self, where: str, reason: str) -> None:
        self.translation.dropped.append(Dropped(where, reason))

    def note(self, text: str) -> None:
        self.view.note(text)

    def time(self, text: str, where: str) -> datetime | None:
        """A DTM as an aware datetime; ``None`` (dropped with the reason) when unreadable.

        A DTM without offset and no way to place it raises ``NaiveTimestamp`` on purpose:
        the message is dead-lettered rather than the ledger guessing a zone.
        """
        if not text:
            return None
        try:
            value, notes = self.clock.aware(text, where)
        except BadTimestamp as exc:
            self.drop(where, str(exc))
            return None
        for note in notes:
            self.note(note)
        return value

    def first_time(self, *candidates: tuple[str, str]) -> datetime | None:
        """The first readable of ``(text, where)`` candidates (most specific first)."""
        for text, where in candidates:
            value = self.time(text, where)
            if value is not None:
                return value
        return None

    # -- identities --------------------------------------------------------------------
    def patient(self) -> dict[str, str]:
        """``patient_id`` (PID-3, first identifier) and ``encounter_id`` (PV1-19)."""
        ids: dict[str, str] = {}
        pid = self.view.first("PID")
        if pid is not None:
            self.used_segments.add("PID")
            patient = pid.get(3, 1)
            if patient:
                ids["patient_id"] = patient
        pv1 = self.view.first("PV1")
        if pv1 is not None:
            self.used_segments.add("PV1")
            encounter = pv1.get(19, 1)
            if encounter:
                ids["encounter_id"] = encounter
        return ids

    # -- making events -----------------------------------------------------------------
    def fact_identity(self, kind: str, occurred_at: datetime, *parts: str | None) -> str:
        """An identity from *what happened* (sender, kind, instant and ``parts``) rather
        than from the message, for facts a gateway re-sends under a new MSH-10/MSH-7."""
        instant = occurred_at.astimezone(UTC).isoformat()
        return "\x1f".join((kind, self.source_system, instant, *(p or "" for p in parts)))

    def event_id(self, slot: str) -> uuid.UUID:
        t = self.translation
        return uuid.uuid5(HL7_NAMESPACE, f"{t.control_id}\x1f{t.sha256}\x1f{slot}")

    def emit(
        self,
        kind: str,
        *,
        slot: str,
        occurred_at: datetime,
        subject: Mapping[str, str | None],
        data: dict[str, Any],
        actor: dict[str, str] | None = None,
        correlation_id: str | None = None,
        identity: str | None = None,
    ) -> Any | None:
        """Validate and keep one event; returns it, or ``None`` if the contract refused it."""
        event_id = (
            uuid.uuid5(HL7_NAMESPACE, identity) if identity is not None else self.event_id(slot)
        )
        ids = {k: v for k, v in subject.items() if v}
        if self.config.facility_id:
            ids.setdefault("facility_id", self.config.facility_id)
        wire: dict[str, Any] = {
            "event_id": str(event_id),
            "type": kind,
            "schema_version": 1,
            "occurred_at": occurred_at.isoformat(),
            "source": {
                "system": self.source_system,
                "kind": self.source_kind,
                "message_id": self.translation.control_id or None,
            },
            "subject": ids,
            "data": {k: v for k, v in data.items() if v is not None},
        }
        if self.received_at is not None:
            wire["received_at"] = self.received_at.isoformat()
        if actor:
            wire["actor"] = actor
        if correlation_id:
            wire["correlation_id"] = correlation_id
        try:
            event = parse_event(wire)
        except ContractError as exc:
            self.drop(slot, f"{kind} refused by the contract: {exc}")
            return None
        self.translation.events.append(event)
        return event
