"""PCD-10 (IPEC) ``ORU^R42``: one infusion event per message → delivery and program events.

The event is OBX-5 of ``MDC_ATTR_EVT_COND`` at MDS level; ``MDC_ATTR_EVT_SOURCE`` gives the
OBX-4 path of the infusate source it concerns (TF-2 App. M). Mapping (``docs/hl7.md``):

==========================================  =============================================
IPEC event and source delivery status       ledger events
==========================================  =============================================
DELIV_START, delivering (or transitioning)  ``infusion.started``; plus ``program.confirmed``
                                            when cumulative volume is 0 (a new program,
                                            not the restart after a titration or pause)
DELIV_START, kvo                            ``infusion.kvo_started``
DELIV_STOP, transitioning                   none: first half of a rate change (STOP+START),
                                            the START carries the new rate
DELIV_STOP, other                           ``infusion.paused`` (reason, volume)
DELIV_COMP                                  ``infusion.vtbi_completed`` (next kvo/stop)
PROG_CLEARED, AUTO_PROG_CLEARED             ``program.cleared``
PATIENT_CHANGE, PATIENT_ID_CHANGE           ``pump.associated`` (PID-3)
others (counters, clock, relay, comm.)      dead-lettered: no contract event / no data
==========================================  =============================================
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from consumers.hl7 import mdc
from consumers.hl7.containment import Key, Node, Tree
from consumers.hl7.context import Context
from consumers.hl7.errors import Untranslatable
from consumers.hl7.groups import (
    Group,
    channel_of,
    concentration,
    drop_unused,
    enum,
    find,
    pump_id,
    quantity,
    read_groups,
    text,
)
from consumers.hl7.observations import Observation

EVENTS = {
    "MDC_EVT_PUMP_DELIV_START": "start",
    "MDC_EVT_PUMP_DELIV_STOP": "stop",
    "MDC_EVT_PUMP_DELIV_COMP": "complete",
    "MDC_EVT_PUMP_PROG_CLEARED": "cleared",
    "MDC_EVT_PUMP_AUTO_PROG_CLEARED": "cleared",
    "MDC_EVT_PATIENT_CHANGE": "patient",
    "MDC_EVT_PATIENT_ID_CHANGE": "patient",
}
NO_CONTRACT_EVENT = {
    "MDC_EVT_PATIENT_PARAMETER_CHANGE": "patient parameters changed",
    "MDC_EVT_PUMP_VOL_COUNTERS_CLEARED": "volume counters cleared",
    "MDC_EVT_DEVICE_TIME_CHANGED": "device time changed (previous/new time not carried)",
    "MDC_EVT_COMM_STATUS_CHANGE": "communication status change (lost/restored not carried)",
    "MDC_EVT_PUMP_RELAY_PROG": "channel relay programmed",
    "MDC_EVT_PUMP_PROG_RELAY": "channel relay programmed",
}
PAUSE_REASONS = {
    "pump-stopped-by-clinician": "clinician", "stopped-by-clinician": "clinician",
    "pump-alarming": "alarm", "alarming": "alarm",
    "pump-between-doses": "between_doses", "between-doses": "between_doses",
    "pump-switching-source": "switching_source", "switching-source": "switching_source",
    "pump-not-specified": "unknown", "not-specified": "unknown",
}
VOLUME_DELIVERED = ("MDC_VOL_FLUID_DELIV_TOTAL", "MDC_VOL_FLUID_DELIV_SEGMENT",
                    "MDC_VOL_FLUID_DELIV")


def _event(ctx: Context, mds: Node) -> tuple[mdc.Term, Observation]:
    cond = mds.find("MDC_ATTR_EVT_COND")
    if cond is None:
        raise Untranslatable("no MDC_ATTR_EVT_COND observation at MDS level: which event?")
    term, notes = cond.coded()
    for note in notes:
        ctx.note(f"{cond.where}: {note}")
    if term.refid is None:
        raise Untranslatable(f"IPEC event code {term.code} is unknown (no reference id sent)")
    return term, cond


def _source(ctx: Context, tree: Tree, mds: Node) -> Node:
    pointer = mds.find("MDC_ATTR_EVT_SOURCE")
    sources = [n for n in tree.nodes.values() if n.role == "source"]
    if pointer is not None:
        path = pointer.text().replace(" ", "").rstrip(".")
        parts = path.split(".")
        if all(p.isdigit() for p in parts) and parts:
            key: Key = tuple((*map(int, parts), 0, 0, 0)[:3])  # type: ignore[assignment]
            node = tree.node(key)
            if node is not None:
                return node
        ctx.drop(pointer.where, f"event source {path!r} names no object in the message")
    if len(sources) == 1:
        ctx.note("event source not given (or not found): the message's only source used")
        return sources[0]
    raise Untranslatable("the event's infusate source cannot be determined")


def _delivery(tree: Tree, source: Node) -> Node | None:
    vmd = tree.node((source.key[0], source.key[1], 0))
    if vmd is None:
        return None
    return next((n for n in tree.channels(vmd) if n.role == "delivery"), None)


def translate(ctx: Context) -> None:
    groups = read_groups(ctx)
    group = next((g for g in groups if g.tree.pump_mds() is not None), None)
    if group is None:
        raise Untranslatable("no infusion pump MDS in the message (OBX-3 MDC_DEV_PUMP_*_MDS)")
    tree = group.tree
    mds = tree.pump_mds()
    assert mds is not None
    term, cond = _event(ctx, mds)
    kind = EVENTS.get(term.key)
    if kind is None:
        what = NO_CONTRACT_EVENT.get(term.key, f"IPEC event {term.key}")
        raise Untranslatable(f"{what}: contract v1 has no event that carries it")
    _Ipec(ctx, group, mds, cond, kind, term.key).run()
    drop_unused(ctx, groups, f"not carried by the {kind} event's contract fields")


class _Ipec:
    """One IPEC event: subject, time and the event-specific mapping."""

    def __init__(
        self, ctx: Context, group: Group, mds: Node, cond: Observation, kind: str, event: str
    ):
        self.ctx, self.group, self.mds, self.cond, self.kind = ctx, group, mds, cond, kind
        self.event = event
        self.tree = group.tree
        self.library_version = text(mds.find("MDC_PUMP_DRUG_LIBRARY_VERSION"))

    def run(self) -> None:
        ctx, tree = self.ctx, self.tree
        pump = pump_id(tree.equipment(self.mds.key))
        if pump is None:
            raise Untranslatable("no pump id (OBX-18 of the MDS is empty)")
        occurred = ctx.first_time(
            (self.cond.time_text, f"{self.cond.where} OBX-14"),
            (tree.inherited_time(None, self.mds.key), "MDS OBX-14"),
            (self.group.time_text(), "OBR-7"),
            (ctx.msh.get(7), "MSH-7"),
        )
        if occurred is None:
            raise Untranslatable("no readable event time (OBX-14, OBR-7, MSH-7)")
        self.occurred = occurred
        patient = ctx.patient()
        if self.kind == "patient":
            if "patient_id" not in patient:
                raise Untranslatable("patient change without a patient id (PID-3)")
            for node in tree.vmds():
                self.subject: dict[str, str | None] = {
                    "pump_id": pump, "channel": channel_of(node.key), **patient}
                self.emit("pump.associated", f"vmd{node.key[1]}", {"method": None})
            return
        self.source = _source(ctx, tree, self.mds)
        self.delivery = _delivery(tree, self.source)
        self.subject = {"pump_id": pump, "channel": channel_of(self.source.key),
                        "order_id": self.group.order_id(), **patient}
        self.infusate = mdc.SOURCE_KIND.get(self.source.refid or "", "primary")
        getattr(self, "_" + self.kind)()

    def emit(self, kind: str, part: str, data: dict[str, Any]) -> None:
        identity = self.ctx.fact_identity(
            kind, self.occurred, self.event, self.subject.get("pump_id"),
            self.subject.get("channel"), self.subject.get("patient_id"), part)
        self.ctx.emit(kind, slot=f"{self.group.slot}/{part}/{kind}", occurred_at=self.occurred,
                      subject=self.subject, data=data, identity=identity)

    def metric(self, *refids: str) -> Observation | None:
        return find([self.source, self.delivery, self.tree.node(
            (self.source.key[0], self.source.key[1], 0)), self.mds], *refids)

    def status(self) -> str | None:
        return enum(self.metric("MDC_DEV_PUMP_CURRENT_DELIVERY_STATUS"), "pump-delivery-status-")

    def _start(self) -> None:
        status = self.status()
        rate = quantity(self.ctx, self.metric("MDC_FLOW_FLUID_PUMP", "MDC_FLOW_FLUID_PUMP_CURRENT"))
        part = f"src{self.source.path_text}"
        if status == "kvo":
            self.emit("infusion.kvo_started", part,
                      {"rate": rate, "infusate_source": self.infusate})
            return
        if status not in ("delivering", "transitioning", None):
            raise Untranslatable(f"DELIV_START with delivery status {status!r}")
        if status is None:
            self.ctx.note("DELIV_START without a delivery status: read as delivering")
        dose_rate = quantity(self.ctx, self.metric("MDC_RATE_DOSE", "MDC_FLOW_DRUG_DELIV"))
        vtbi = quantity(self.ctx, self.metric("MDC_VOL_FLUID_TBI"))
        self.emit("infusion.started", part, {"rate": rate, "dose_rate": dose_rate, "vtbi": vtbi,
                                             "infusate_source": self.infusate})
        self._confirmed(part, rate, dose_rate, vtbi)

    def _confirmed(self, part: str, rate: Any, dose_rate: Any, vtbi: Any) -> None:
        ctx = self.ctx
        delivered = quantity(ctx, self.metric(*VOLUME_DELIVERED))
        if delivered is None:
            ctx.drop(part, "program.confirmed not emitted: no volume delivered reported, so "
                           "whether this START begins a new program is unknown")
            return
        if Decimal(delivered["value"]) != 0:
            ctx.drop(part, "program.confirmed not emitted: volume delivered is not 0, so this "
                           "START continues a program (restart or titration)")
            return
        label = text(self.metric("MDC_DRUG_NAME_LABEL", "MDC_DRUG_NAME_TYPE"))
        if label is None:
            ctx.drop(part, "program.confirmed not emitted: no drug label (MDC_DRUG_NAME_LABEL)")
            return
        care_area = text(self.metric("MDC_PUMP_DRUG_LIBRARY_CARE_AREA"))
        order = self.group.order_id()
        ctx.note(f"program.confirmed: mode {'auto' if order else 'manual'} from "
                 f"{'OBR-2 placer order' if order else 'no OBR-2 order'}; library_mode "
                 f"{'library' if care_area else 'basic'} from "
                 f"{'the care area reported' if care_area else 'no care area reported'}")
        self.emit("program.confirmed", part, {
            "mode": "auto" if order else "manual",
            "medication": self.medication(label),
            "rate": rate,
            "library_mode": "library" if care_area else "basic",
            "concentration": concentration(ctx, self.metric("MDC_CONC_DRUG")),
            "dose": dose_rate,
            "vtbi": vtbi,
            "dosing_weight": quantity(ctx, self.metric("MDC_ATTR_PT_WEIGHT")),
            "care_area": care_area,
            "library_version": self.library_version,
            "infusate_source": self.infusate,
        })

    def medication(self, label: str) -> dict[str, str]:
        obr = self.group.obr
        code, name = (obr.get(4, 1), obr.get(4, 2)) if obr else ("", "")
        medication = {"name": label}
        if code and name.casefold() == label.casefold():
            medication["code"] = code
            if obr is not None and obr.get(4, 3):
                medication["system"] = obr.get(4, 3)
        return medication

    def _stop(self) -> None:
        status = self.status()
        if status == "transitioning":
            self.ctx.translation.no_event_reason = (
                "IPEC DELIV_STOP with status transitioning: the first half of a rate change; "
                "the DELIV_START that follows carries the new rate"
            )
            return
        reason_obs = self.metric("MDC_DEV_PUMP_NOT_DELIVERING_REASON")
        reason_text = enum(reason_obs, "")
        reason = PAUSE_REASONS.get(reason_text or "", "unknown")
        if reason_text and reason_text not in PAUSE_REASONS and reason_obs is not None:
            self.ctx.drop(reason_obs.where, f"not-delivering reason {reason_text!r} unknown: "
                                            "recorded as 'unknown'")
        volume = quantity(self.ctx, self.metric(*VOLUME_DELIVERED))
        self.emit("infusion.paused", f"src{self.source.path_text}", {
            "reason": reason, "volume_infused": volume, "infusate_source": self.infusate})

    def _complete(self) -> None:
        status = self.status()
        nxt = "kvo" if status in ("transitioning", "kvo") else (
            "stop" if status == "not-delivering" else None)
        volume = quantity(self.ctx, self.metric(*VOLUME_DELIVERED))
        self.emit("infusion.vtbi_completed", f"src{self.source.path_text}", {
            "volume_infused": volume, "next": nxt, "infusate_source": self.infusate})

    def _cleared(self) -> None:
        self.emit("program.cleared", f"src{self.source.path_text}", {})
