"""The HL7 edge's entry point: raw bytes in, one :class:`Translation` per message out.

``Session.translate`` never raises for anything in the input. The steps: find the
messages (:mod:`cleanup`), parse each with python-hl7, route it (:mod:`routing`), run the
profile's translator, then list what was not used. Any :class:`Hl7Error` becomes a
dead-letter outcome with its code; an unexpected exception (a bug) does too, with code
``internal_error``, and is logged with its traceback — a poison message must never stop
an MLLP listener or a Kafka partition.

A session keeps what translating a stream needs across messages: the PCD-03 requests
seen (so an ``RRG^O16`` reply, which names only the request's MSH-10, finds its pump) and,
when enabled, the PCD-01 snapshot tracker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from consumers.hl7 import pcd01, pcd03, pcd04, pcd10
from consumers.hl7.cleanup import RawMessage, split_messages
from consumers.hl7.config import Hl7Config
from consumers.hl7.context import Context
from consumers.hl7.errors import Hl7Error, Unparseable, Untranslatable
from consumers.hl7.outcome import DeadLetter, Dropped, Translation
from consumers.hl7.pcd01_derive import SnapshotTracker
from consumers.hl7.pcd03 import RequestRegistry
from consumers.hl7.routing import route
from consumers.hl7.timestamps import BadTimestamp, Clock, parse_dtm
from consumers.hl7.view import MessageView

log = logging.getLogger(__name__)

Handler = Callable[[Context], None]
HANDLERS: dict[str, Handler] = {
    "pcd01": pcd01.translate,
    "pcd10": pcd10.translate,
    "pcd04": pcd04.translate,
    "pcd03_request": pcd03.translate_request,
    "pcd03_reply": pcd03.translate_reply,
    "ack": pcd03.translate_ack,
}
#: Segments each handler reads; others present are reported as dropped.
READS = frozenset({"MSH", "PID", "PV1", "OBR", "OBX", "ORC", "RXG", "RXR", "TQ1", "MSA", "ERR"})
SOURCE_KINDS = {"pcd03_request": "bcma"}


class Session:
    """Translates messages of one stream (a file, a connection, a Kafka consumer)."""

    def __init__(self, config: Hl7Config | None = None):
        self.config = config or Hl7Config()
        self.requests = RequestRegistry()
        self.tracker = SnapshotTracker() if self.config.derive_pcd01_transitions else None

    def translate(
        self, raw: bytes | str, *, received_at: datetime | None = None
    ) -> list[Translation]:
        """Every message in ``raw`` with its outcome (a dead letter if there is none)."""
        try:
            split = split_messages(raw)
        except Exception as exc:  # a bug in cleanup must not escape either
            log.exception("HL7 cleanup failed")
            return [_dead(1, "internal_error", f"{type(exc).__name__}: {exc}")]
        if not split.messages:
            junk = f" ({'; '.join(split.junk[:3])})" if split.junk else ""
            detail = f"no MSH segment found{junk}"
            return [_dead(1, Unparseable.code, detail)]
        results = []
        for number, message in enumerate(split.messages, start=1):
            translation = self._one(number, message, received_at)
            if number == 1:
                translation.notes[:0] = split.notes + split.junk
            results.append(translation)
        return results

    def _one(self, number: int, raw: RawMessage, received_at: datetime | None) -> Translation:
        translation = Translation(number, line=raw.source_line, sha256=raw.sha256)
        translation.notes.extend(raw.repairs)
        translation.dropped.extend(Dropped("input", d) for d in raw.dropped)
        try:
            view = MessageView.parse(raw.text)
        except Exception as exc:  # python-hl7 raises ParseException, ValueError, IndexError...
            translation.dead_letter = DeadLetter(Unparseable.code, f"not parseable: {exc}")
            return translation
        try:
            self._route_and_run(view, translation, received_at)
        except Hl7Error as exc:
            translation.dead_letter = DeadLetter(exc.code, str(exc))
        except Exception as exc:
            log.exception("HL7 translation failed on message %s", translation.control_id)
            translation.dead_letter = DeadLetter("internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            translation.notes.extend(view.notes)
        if translation.dead_letter is not None:
            translation.events.clear()
        return translation

    def _route_and_run(
        self, view: MessageView, translation: Translation, received_at: datetime | None
    ) -> None:
        msh = view.first("MSH")
        if msh is None or msh.field_count() < 9:
            raise Unparseable("MSH is too short to hold a message type (MSH-9)")
        translation.control_id = msh.get(10)
        if not translation.control_id:
            view.note("MSH-10 (message control id) is empty: events are identified by the "
                      "message digest alone")
        translation.message_type = f"{msh.get(9, 1)}^{msh.get(9, 2)}".strip("^")
        notes: list[str] = []
        chosen = route(msh, self.config, notes)
        for note in notes:
            view.note(note)
        translation.transaction = chosen.transaction
        ctx = Context(view, translation, self.config, _clock(msh.get(7), self.config),
                      received_at=received_at,
                      source_kind=SOURCE_KINDS.get(chosen.handler, "pump_gateway"),
                      requests=self.requests, tracker=self.tracker)
        HANDLERS[chosen.handler](ctx)
        for segment in view.segments():
            if segment.id not in READS and segment.id not in ctx.used_segments:
                reason = ("Z-segment: site-specific, no mapping" if segment.id.startswith("Z")
                          else f"segment not used by the {chosen.handler} translator")
                ctx.drop(segment.where(), reason)
        if not translation.events and translation.no_event_reason is None:
            reasons = "; ".join(str(d) for d in translation.dropped[:5]) or "nothing to map"
            raise Untranslatable(f"no event could be recovered: {reasons}")


def _clock(msh7: str, config: Hl7Config) -> Clock:
    try:
        sender = parse_dtm(msh7)[0].offset if msh7 else None
    except BadTimestamp:
        sender = None
    return Clock(config.local_timezone, sender)


def _dead(number: int, code: str, detail: str) -> Translation:
    return Translation(number, dead_letter=DeadLetter(code, detail))
