"""Infusion episodes of one pump channel: a pure fold over the channel's events.

An episode starts when a channel is programmed (``program.confirmed``) or seen delivering
(``infusion.started`` / telemetry) for a medication, and ends when it is stopped, completed
without KVO continuation, cleared, or replaced by a different medication or order. Each
infusate source on a channel (primary, secondary piggyback, ...) has its own episode, so a
piggyback does not end the primary it interrupts. Episode ids are UUIDv5 of the first
event's id: deterministic, the same on every rebuild.

The channel state also remembers the patient associated with the channel (attached to
episodes that started before the association arrived: late association), auto-program
requests (linking a program to its order through ``request_id``), and events that precede
an episode (requests, DERS alerts) so they appear at the start of its timeline.
"""

from __future__ import annotations

import uuid
from typing import Any

from ledger.store.reader import StoredRecord

EPISODE_NAMESPACE = uuid.UUID("9c4f6f0e-2b7d-5d1a-8f3e-7a1b2c3d4e5f")
ENDED = frozenset({"stopped", "completed"})
_MAX_PENDING = 50
_MAX_REQUESTS = 20
# Telemetry states that show a channel delivering something, and the status they mean.
_TELEMETRY_STATUS = {
    "infusing": "infusing", "paused": "paused", "kvo": "kvo", "alarming": "alarming",
    "stopped": "stopped", "idle": "idle",
}


def _ref(record: StoredRecord) -> dict[str, Any]:
    """What an episode's timeline needs of an event that happened before the episode began."""
    return {
        "position": record.notification_id, "event_id": str(record.event_id),
        "type": record.type, "occurred_at": record.event["occurred_at"],
        "received_at": record.event.get("received_at"),
        "recorded_at": record.recorded_at.isoformat(), "data": record.data,
    }


def _new_episode(state: dict[str, Any], record: StoredRecord, source: str) -> dict[str, Any]:
    subject = record.subject
    return {
        "episode_id": str(uuid.uuid5(EPISODE_NAMESPACE, str(record.event_id))),
        "facility_id": subject.get("facility_id") or "default",
        "pump_id": subject.get("pump_id"),
        "channel": subject.get("channel"),
        "source": source,
        "patient_id": subject.get("patient_id") or state.get("patient_id"),
        "patient_from": "event" if subject.get("patient_id") else (
            "association" if state.get("patient_id") else None),
        "order_id": subject.get("order_id"),
        "order_link": "subject" if subject.get("order_id") else None,
        "request_id": None,
        "medication": None,
        "concentration": None,
        "program": None,
        "current_rate": None,
        "current_dose_rate": None,
        "status": "programmed",
        "volume_infused": None,
        "vtbi_remaining": None,
        "programmed_at": None,
        "started_at": None,
        "ended_at": None,
        "end_reason": None,
        "first_event_id": str(record.event_id),
        "first_position": record.notification_id,
        "last_position": record.notification_id,
        "last_occurred_at": record.event["occurred_at"],
        "last_recorded_at": record.recorded_at.isoformat(),
        "seq": 0,
        "boluses": 0,
        "soft_alerts": 0,
        "hard_alerts": 0,
        "overrides": 0,
        "paused_reason": None,
    }


def snapshot(episode: dict[str, Any]) -> dict[str, Any]:
    """The part of an episode's state a timeline row records after each event."""
    return {
        key: episode.get(key)
        for key in (
            "status", "current_rate", "current_dose_rate", "volume_infused", "vtbi_remaining",
            "patient_id", "order_id", "medication", "program", "paused_reason",
        )
    }


class ChannelFold:
    """Folds one channel's events; returns the episodes an event touched (for rows)."""

    def apply(self, state: dict[str, Any], record: StoredRecord) -> list[dict[str, Any]]:
        handler = getattr(self, "_" + record.type.replace(".", "_"), None)
        if handler is None:
            return []
        touched: list[dict[str, Any]] = handler(state, record) or []
        for episode in touched:
            episode["last_position"] = record.notification_id
            episode["last_occurred_at"] = record.event["occurred_at"]
            episode["last_recorded_at"] = record.recorded_at.isoformat()
        return touched

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def _source(record: StoredRecord) -> str:
        source = record.data.get("infusate_source") or "primary"
        # A bolus or loading dose is given from the running primary container: it belongs
        # to the primary's episode rather than starting one of its own.
        return "primary" if source in ("bolus", "loading") else source

    @staticmethod
    def _current(state: dict[str, Any], source: str) -> dict[str, Any] | None:
        episode: dict[str, Any] | None = state.setdefault("episodes", {}).get(source)
        return episode

    @staticmethod
    def _active(state: dict[str, Any], source: str) -> dict[str, Any] | None:
        episode = ChannelFold._current(state, source)
        return episode if episode and episode["status"] not in ENDED else None

    @staticmethod
    def _end(episode: dict[str, Any], record: StoredRecord, status: str, reason: str) -> None:
        episode["status"] = status
        episode["ended_at"] = record.event["occurred_at"]
        episode["end_reason"] = reason

    def _start(self, state: dict[str, Any], record: StoredRecord, source: str) -> dict[str, Any]:
        episode = _new_episode(state, record, source)
        episode["pending"] = state.pop("pending", [])
        for ref in episode["pending"]:
            data = ref["data"]
            if ref["type"] == "ders.limit_alert_raised":
                episode["hard_alerts" if data["limit_kind"] == "hard" else "soft_alerts"] += 1
            elif ref["type"] == "ders.limit_alert_resolved" and data["outcome"] == "overridden":
                episode["overrides"] += 1
        state.setdefault("episodes", {})[source] = episode
        return episode

    def _pend(self, state: dict[str, Any], record: StoredRecord) -> None:
        pending = state.setdefault("pending", [])
        pending.append(_ref(record))
        del pending[:-_MAX_PENDING]

    # -- association -----------------------------------------------------------------
    def _pump_associated(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        patient = record.subject.get("patient_id")
        state["patient_id"] = patient
        state["associated_at"] = record.event["occurred_at"]
        touched = []
        for episode in state.get("episodes", {}).values():
            if episode["status"] not in ENDED and episode["patient_id"] is None:
                # Late association: pump data came first; attach without rewriting events.
                episode["patient_id"] = patient
                episode["patient_from"] = "association"
                touched.append(episode)
        return touched

    def _pump_disassociated(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        state["patient_id"] = None
        state["associated_at"] = None
        return [e for e in state.get("episodes", {}).values() if e["status"] not in ENDED]

    # -- programming -----------------------------------------------------------------
    def _program_auto_requested(self, state: dict[str, Any], record: StoredRecord) -> None:
        data = record.data
        requests = state.setdefault("requests", {})
        requests[data["request_id"]] = {
            "order_id": record.subject.get("order_id"),
            "patient_id": record.subject.get("patient_id"),
            "medication": data.get("medication"),
            "concentration": data.get("concentration"),
            "dose": data.get("dose"),
            "rate": data.get("rate"),
            "vtbi": data.get("vtbi"),
            "dosing_weight": data.get("dosing_weight"),
            "requested_at": record.event["occurred_at"],
            "status": "requested",
        }
        for stale in list(requests)[:-_MAX_REQUESTS]:
            del requests[stale]
        self._pend(state, record)

    def _program_auto_accepted(self, state: dict[str, Any], record: StoredRecord) -> None:
        request = state.get("requests", {}).get(record.data["request_id"])
        if request:
            request["status"] = "accepted"
        self._pend(state, record)

    def _program_auto_rejected(self, state: dict[str, Any], record: StoredRecord) -> None:
        request = state.get("requests", {}).get(record.data["request_id"])
        if request:
            request["status"] = "rejected"
        self._pend(state, record)

    def _program_confirmed(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        data = record.data
        source = self._source(record)
        request = state.get("requests", {}).get(data.get("request_id") or "")
        order_id = record.subject.get("order_id") or (request or {}).get("order_id")
        medication = data["medication"]
        current = self._active(state, source)
        touched = []
        if current is not None and not _same_therapy(current, medication, order_id):
            self._end(current, record, "stopped", "replaced")
            touched.append(current)
            current = None
        if current is None:
            current = self._start(state, record, source)
        current["medication"] = medication
        current["concentration"] = data.get("concentration")
        current["request_id"] = data.get("request_id")
        if order_id and current["order_id"] is None:
            current["order_id"] = order_id
            current["order_link"] = "subject" if record.subject.get("order_id") else "auto_program"
        current["program"] = {
            key: data.get(key)
            for key in (
                "mode", "library_mode", "rate", "dose", "vtbi", "dosing_weight", "care_area",
                "library_version", "library_entry_id",
            )
        }
        current["programmed_at"] = current["programmed_at"] or record.event["occurred_at"]
        state["last_program"] = {"medication": medication, "order_id": order_id,
                                 "concentration": data.get("concentration"),
                                 "program": current["program"]}
        touched.append(current)
        return touched

    def _program_cleared(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        touched = []
        for episode in state.get("episodes", {}).values():
            if episode["status"] not in ENDED:
                self._end(episode, record, "stopped", "cleared")
                touched.append(episode)
        state.pop("last_program", None)
        return touched

    # -- delivery --------------------------------------------------------------------
    def _delivering(self, state: dict[str, Any], record: StoredRecord) -> dict[str, Any]:
        """The active episode of the event's source, starting one if the pump is already
        delivering without one (a restart after a stop, or data seen before its program)."""
        source = self._source(record)
        episode = self._active(state, source)
        if episode is None:
            episode = self._start(state, record, source)
            last = state.get("last_program")
            if last:
                episode["medication"] = last["medication"]
                episode["concentration"] = last["concentration"]
                episode["program"] = last["program"]
                if episode["order_id"] is None and last["order_id"]:
                    episode["order_id"] = last["order_id"]
                    episode["order_link"] = "auto_program"
        return episode

    def _infusion_started(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        episode = self._delivering(state, record)
        data = record.data
        episode["status"] = "infusing"
        episode["started_at"] = episode["started_at"] or record.event["occurred_at"]
        episode["current_rate"] = data.get("rate")
        episode["current_dose_rate"] = data.get("dose_rate")
        if data.get("vtbi"):
            episode["vtbi_remaining"] = data["vtbi"]
        return [episode]

    def _infusion_rate_changed(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        episode = self._delivering(state, record)
        episode["current_rate"] = record.data["new_rate"]
        episode["current_dose_rate"] = record.data.get("new_dose_rate")
        return [episode]

    def _infusion_paused(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        episode = self._delivering(state, record)
        episode["status"] = "paused"
        episode["paused_reason"] = record.data.get("reason") or "unknown"
        if record.data.get("volume_infused"):
            episode["volume_infused"] = record.data["volume_infused"]
        return [episode]

    def _infusion_resumed(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        episode = self._delivering(state, record)
        episode["status"] = "infusing"
        episode["paused_reason"] = None
        return [episode]

    def _infusion_kvo_started(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        episode = self._delivering(state, record)
        episode["status"] = "kvo"
        episode["current_rate"] = record.data["rate"]
        episode["current_dose_rate"] = None
        return [episode]

    def _infusion_bolus_delivered(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        episode = self._delivering(state, record)
        episode["boluses"] += 1
        return [episode]

    def _infusion_vtbi_completed(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        episode = self._delivering(state, record)
        if record.data.get("volume_infused"):
            episode["volume_infused"] = record.data["volume_infused"]
        episode["vtbi_remaining"] = {"value": "0", "unit": "mL"}
        if record.data.get("next") == "kvo":
            episode["status"] = "kvo"
        else:
            self._end(episode, record, "completed", "vtbi_completed")
        return [episode]

    def _infusion_stopped(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        source = self._source(record)
        episode = self._active(state, source)
        if episode is None:
            return []
        if record.data.get("volume_infused"):
            episode["volume_infused"] = record.data["volume_infused"]
        self._end(episode, record, "stopped", record.data.get("reason") or "stopped")
        return [episode]

    def _infusion_status_reported(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        data = record.data
        reported = data["state"]
        source = self._source(record)
        episode = self._active(state, source)
        if episode is None and reported in ("stopped", "idle"):
            return []
        if episode is None:
            episode = self._delivering(state, record)
        status = _TELEMETRY_STATUS[reported]
        if status in ("infusing", "paused", "kvo", "alarming"):
            episode["status"] = status
            if status == "infusing" and episode["started_at"] is None:
                episode["started_at"] = record.event["occurred_at"]
        for key, field in (("current_rate", "rate"), ("current_dose_rate", "dose_rate"),
                           ("volume_infused", "volume_infused"),
                           ("vtbi_remaining", "vtbi_remaining")):
            if data.get(field) is not None:
                episode[key] = data[field]
        return [episode]

    # -- safety ----------------------------------------------------------------------
    def _ders_limit_alert_raised(self, state: dict[str, Any], record: StoredRecord) -> list[dict]:
        episode = self._active(state, self._source(record))
        if episode is None:
            # Alerts fire while a nurse programs, before the episode exists.
            self._pend(state, record)
            return []
        episode["hard_alerts" if record.data["limit_kind"] == "hard" else "soft_alerts"] += 1
        return [episode]

    def _ders_limit_alert_resolved(self, state: dict[str, Any], record: StoredRecord) -> list:
        episode = self._active(state, self._source(record))
        if episode is None:
            self._pend(state, record)
            return []
        if record.data["outcome"] == "overridden":
            episode["overrides"] += 1
        return [episode]


def _same_therapy(
    episode: dict[str, Any], medication: dict[str, Any], order_id: str | None
) -> bool:
    if order_id and episode["order_id"] and order_id != episode["order_id"]:
        return False
    current = episode.get("medication")
    if current is None:
        return True
    if current.get("code") and medication.get("code"):
        return bool(current["code"] == medication["code"])
    return bool(current.get("name", "").casefold() == medication.get("name", "").casefold())
