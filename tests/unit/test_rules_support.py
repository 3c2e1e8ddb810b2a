"""Given-events scaffolding for the discrepancy rule tests (no tests of its own).

A :class:`Story` builds valid v1 events (from the contract fixtures, through
``tests.support.events.wire``) on one timeline in minutes, with the subject ids of one
facility, and runs the engine in memory over them (:mod:`projections.discrepancies.replay`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from projections.discrepancies import ruleset
from projections.discrepancies.replay import findings, replay
from tests.support.events import wire

T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
HEPARIN = {"code": "235473", "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
           "name": "heparin 25,000 units in 250 mL D5W"}
SALINE = {"code": "NS-1000", "system": "local", "name": "sodium chloride 0.9%"}
NOREPI = {"code": "NOREPI-4-250", "system": "local", "name": "norepinephrine"}
EPI = {"code": "EPI-4-250", "system": "local", "name": "epinephrine"}
HEPARIN_CONC = {"amount": {"value": "25000", "unit": "[iU]"},
                "volume": {"value": "250", "unit": "mL"}}
NOREPI_CONC = {"amount": {"value": "4", "unit": "mg"}, "volume": {"value": "250", "unit": "mL"}}


def q(value: str | int, unit: str) -> dict[str, str]:
    return {"value": str(value), "unit": unit}


def at(minute: float) -> str:
    return (T0 + timedelta(minutes=minute)).isoformat()


class Story:
    """One facility, one pump channel by default; times in minutes after ``T0``."""

    def __init__(self, pump: str = "PUMP-1", channel: str = "A", patient: str = "P1"):
        self.events: list[dict[str, Any]] = []
        self.pump, self.channel, self.patient = pump, channel, patient

    # -- the envelope -------------------------------------------------------------------
    def add(self, kind: str, minute: float, subject: dict[str, Any], data: dict[str, Any],
            *, received: float | bool | None = True, **envelope: Any) -> dict[str, Any]:
        """An event at ``minute``; ``received``: True = same instant + 1 s, a number = that
        minute, None/False = no received_at (a backfill)."""
        if kind == "discrepancy.reviewed":
            # Internal events are not in the public fixtures: same envelope, own type.
            event = wire("order.verified")
            event.update({"type": kind, "source": {"system": "infusion-ledger", "kind": "other"}})
        else:
            event = wire(kind)
        event.pop("received_at", None)
        event.pop("actor", None)
        event.pop("correlation_id", None)
        event.update({"occurred_at": at(minute), "subject": subject, "data": data, **envelope})
        if received is True:
            event["received_at"] = (T0 + timedelta(minutes=minute, seconds=1)).isoformat()
        elif isinstance(received, int | float) and received is not False:
            event["received_at"] = at(received)
        self.events.append(event)
        return event

    def channel_subject(self, order: str | None = "O1", patient: str | None = None,
                        **ids: Any) -> dict[str, Any]:
        subject = {"pump_id": ids.pop("pump", self.pump),
                   "channel": ids.pop("channel", self.channel)}
        patient = patient if patient is not None else self.patient
        if patient:
            subject["patient_id"] = patient
        if order:
            subject["order_id"] = order
        subject.update(ids)
        return subject

    # -- orders and patients -------------------------------------------------------------
    def order(self, minute: float, order_id: str = "O1", patient: str | None = None,
              received: Any = True, **data: Any) -> dict[str, Any]:
        body = {"medication": HEPARIN, "concentration": HEPARIN_CONC, "dose": q(18, "[iU]/kg/h"),
                "dosing_weight": q(80, "kg"), "high_alert": True, "vtbi": q(250, "mL")}
        body.update(data)
        body = {k: v for k, v in body.items() if v is not None}
        return self.add("order.placed", minute, {"order_id": order_id,
                                                "patient_id": patient or self.patient}, body,
                        received=received)

    def order_event(self, kind: str, minute: float, order_id: str = "O1",
                    **data: Any) -> dict[str, Any]:
        return self.add(kind, minute, {"order_id": order_id, "patient_id": self.patient}, data)

    def located(self, minute: float, unit: str = "MICU", care_area: str = "ICU",
                patient: str | None = None) -> dict[str, Any]:
        return self.add("patient.located", minute, {"patient_id": patient or self.patient},
                        {"unit": unit, "care_area": care_area})

    # -- the pump ------------------------------------------------------------------------
    def associate(self, minute: float, patient: str | None = None, received: Any = True,
                  **ids: Any) -> dict:
        subject = self.channel_subject(order=None, patient=patient, **ids)
        return self.add("pump.associated", minute, subject, {"method": "scan"},
                        received=received)

    def request(self, minute: float, request_id: str = "REQ-1", order: str = "O1",
                received: Any = True, **data: Any) -> dict[str, Any]:
        body = {"request_id": request_id, "medication": HEPARIN, "concentration": HEPARIN_CONC,
                "dose": q(18, "[iU]/kg/h"), "rate": q("14.4", "mL/h"), "vtbi": q(250, "mL"),
                "dosing_weight": q(80, "kg")}
        body.update(data)
        return self.add("program.auto_requested", minute, self.channel_subject(order), body,
                        received=received)

    def confirm(self, minute: float, order: str | None = "O1", received: Any = True,
                **data: Any) -> dict[str, Any]:
        body = {"mode": "auto", "medication": HEPARIN, "rate": q("14.4", "mL/h"),
                "library_mode": "library", "concentration": HEPARIN_CONC,
                "dose": q(18, "[iU]/kg/h"), "dosing_weight": q(80, "kg"), "vtbi": q(250, "mL"),
                "care_area": "ICU", "library_entry_id": "HEP-25K-250"}
        ids = data.pop("ids", {})
        if data.get("mode") != "manual" and "request_id" not in data:
            body["request_id"] = "REQ-1"
        body.update(data)
        body = {k: v for k, v in body.items() if v is not None}
        subject = self.channel_subject(order, **ids)
        return self.add("program.confirmed", minute, subject, body, received=received)

    def start(self, minute: float, rate: str = "14.4", order: str | None = "O1",
              dose_rate: dict[str, str] | None = None, received: Any = True,
              **ids: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"rate": q(rate, "mL/h")}
        if dose_rate:
            data["dose_rate"] = dose_rate
        return self.add("infusion.started", minute, self.channel_subject(order, **ids), data,
                        received=received)

    def auto_start(self, minute: float, rate: str = "14.4", order: str | None = "O1",
                   **program: Any) -> None:
        """Request, confirm and start: a clean auto-programmed start at ``minute``."""
        self.request(minute - 2, order=order or "O1")
        self.confirm(minute - 1, order=order, rate=q(rate, "mL/h"), **program)
        self.start(minute, rate, order=order)

    def delivery(self, kind: str, minute: float, order: str | None = "O1",
                 received: Any = True, **data: Any) -> dict[str, Any]:
        return self.add(kind, minute, self.channel_subject(order), data, received=received)

    def chart(self, minute: float, observed: float, rate: str | None = "14.4",
              order: str = "O1", kind: str = "documentation.validated",
              **data: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"observed_at": at(observed)}
        if rate is not None:
            body["rate"] = q(rate, "mL/h")
        body.update(data)
        subject = {"order_id": order, "patient_id": self.patient, "pump_id": self.pump,
                   "channel": self.channel}
        return self.add(kind, minute, subject, body)

    def alarm(self, kind: str, minute: float, alarm_id: str = "ALM-1", received: Any = True,
              **data: Any) -> dict:
        subject = {"pump_id": self.pump, "channel": self.channel, "alarm_id": alarm_id}
        return self.add(kind, minute, subject, data, received=received)

    def review(self, finding: dict[str, Any], minute: float, outcome: str = "confirmed",
               note: str = "seen") -> dict[str, Any]:
        return self.add("discrepancy.reviewed", minute, {},
                        {"finding_id": finding["finding_id"], "outcome": outcome, "note": note})

    def tick(self, minute: float, state: str = "infusing", rate: str = "14.4",
             received: Any = True, **data: Any) -> dict[str, Any]:
        """Telemetry: also what moves the event clock in a quiet story."""
        return self.add("infusion.status_reported", minute, self.channel_subject(),
                        {"state": state, "rate": q(rate, "mL/h"), **data}, received=received)

    def clock_until(self, minute: float) -> dict[str, Any]:
        """An unrelated pump's event at ``minute``: moves the event clock, nothing else."""
        return self.add("pump.library_activated", minute, {"pump_id": "PUMP-CLOCK"},
                        {"library_version": "L1"})

    # -- running -------------------------------------------------------------------------
    def run(self, rules: ruleset.RuleSet | None = None) -> list[dict[str, Any]]:
        return findings(replay(self.events, rules))

    def rule(self, rule_id: str, rules: ruleset.RuleSet | None = None) -> list[dict[str, Any]]:
        return [f for f in self.run(rules) if f["rule_id"] == rule_id]


def heparin_running(story: Story, rate: str = "14.4", **program: Any) -> Story:
    """Patient P1 in MICU, heparin order O1 (18 [iU]/kg/h, 80 kg: 14.4 mL/h), started at 10."""
    story.located(0)
    story.order(1)
    story.associate(5)
    story.auto_start(10, rate, **program)
    return story
