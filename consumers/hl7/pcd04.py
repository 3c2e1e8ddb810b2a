"""PCD-04 (ACM) ``ORU^R40``: one alert per message → ``alarm.*`` events.

The alert's facets are OBX segments at ``<path>.<facet>`` (TF-2 App. B.8.5), recognised by
their OBX-3 reference id first and by the facet number second: 1 event identification,
2 source, 3 phase, 4 state, 5 inactivation state, 6 priority, 7 type. Priority and type
may still come in the deprecated OBX-8 form (``L~PM~SP``); separate OBX segments win.

``alarm_id`` is OBR-29 (the alert's lifetime id, same on start/continue/end), else OBR-3.
Event ids are derived from sender + pump + alarm id + phase + alert time + event type, not
from MSH-10: ACM refreshes re-send the same phase under a new MSH-10 (DOMAIN.md §1.4).

=========================================  ==============================================
phase (and state)                          event
=========================================  ==============================================
start, start_only, present, tpoint         ``alarm.raised`` (code, priority, text, kind)
continue, update, escalate, deescalate     ``alarm.updated`` (priority, state); with an
                                           inactivation state audio-/alarm-paused or -off
                                           ``alarm.silenced``; alert-acknowledged
                                           ``alarm.acknowledged``
acknowledged                               ``alarm.acknowledged``
inactivate                                 ``alarm.silenced``
end, stop, reset                           ``alarm.cleared``
=========================================  ==============================================

A missing priority is recorded as ``info`` — ACM's ``PN`` "priority not indicated" — and noted.
"""

from __future__ import annotations

from typing import Any

from consumers.hl7.context import Context
from consumers.hl7.errors import Untranslatable
from consumers.hl7.groups import channel_of, drop_unused, pump_id, read_groups
from consumers.hl7.observations import Observation

FACETS = {
    "MDC_ATTR_ALERT_SOURCE": 2, "MDC_ATTR_EVENT_PHASE": 3, "MDC_ATTR_ALARM_STATE": 4,
    "MDC_ATTR_ALARM_INACTIVATION_STATE": 5, "MDC_ATTR_ALARM_PRIORITY": 6,
    "MDC_ATTR_ALERT_TYPE": 7,
}
PRIORITY = {"PH": "high", "PM": "medium", "PL": "low", "PN": "info"}
KIND = {"SP": "physiological", "ST": "technical", "SA": "advisory"}
RAISED = frozenset({"start", "start_only", "present", "tpoint"})
UPDATED = frozenset({"continue", "update", "escalate", "deescalate"})
CLEARED = frozenset({"end", "stop", "reset"})
SILENCED = frozenset({"audio-paused", "audio-off", "alarm-paused", "alarm-off"})


def _facets(items: list[Observation]) -> dict[int, Observation]:
    """Facet number → its OBX: by reference id first, else by the fifth OBX-4 level."""
    facets: dict[int, Observation] = {}
    for obs in items:
        number = FACETS.get(obs.term.key)
        fifth = obs.path[4] if obs.path and len(obs.path) >= 5 else None
        if number is None and (obs.term.key == "MDC_EVT_ALARM" or fifth == 1):
            number = 1
        if number is not None and number not in facets:
            facets[number] = obs
    return facets


def translate(ctx: Context) -> None:
    groups = read_groups(ctx)
    group = next((g for g in groups if g.obr is not None), None)
    if group is None or group.obr is None:
        raise Untranslatable("ORU^R40 without OBR: no alert")
    items = [o for n in group.tree.nodes.values() for o in ([n.obx] if n.obx else []) + n.metrics]
    items += group.tree.unplaced
    facets = _facets(items)
    ident = facets.get(1)
    if ident is None:
        raise Untranslatable("no event identification facet (alarm code)")
    obr = group.obr
    alarm_id = obr.get(29, 1) or obr.get(29, 2) or obr.get(3, 1)
    if not obr.get(29, 1) and not obr.get(29, 2):
        ctx.note("OBR-29 (alert lifetime id) empty: OBR-3 used as alarm id")
    # The placing of the event OBX: its path up to the metric level names MDS/VMD/channel.
    path = ident.path or (1, 0, 0, 0)
    key = (path[0], path[1] if len(path) > 1 else 0, path[2] if len(path) > 2 else 0)
    pump = pump_id(ident.equipment()) or pump_id(group.tree.equipment(key))
    if pump is None:
        raise Untranslatable("no pump id (OBX-18 of the alert)")
    for obs in facets.values():
        obs.used = True
    code_term = ident.term
    text = ident.segment.get(3, 9) or None
    if ident.term.key == "MDC_EVT_ALARM":
        code_term, notes = ident.coded()
        for note in notes:
            ctx.note(f"{ident.where}: {note}")
        text = ident.segment.get(5, 9) or None
    if code_term.key == "?":
        raise Untranslatable("the alert names no alarm code")
    legacy = [ident.segment.get(8, rep=r).upper() for r in range(1, len(ident.segment.reps(8)) + 1)]
    phase = _value(facets.get(3))
    state = _value(facets.get(4))
    inactivation = _value(facets.get(5))
    priority = _coded(ctx, facets.get(6), PRIORITY, legacy, "priority")
    kind = _coded(ctx, facets.get(7), KIND, legacy, "type")
    occurred = ctx.first_time(
        *[(o.time_text, f"{o.where} OBX-14") for o in [ident, *facets.values()] if o.time_text],
        (obr.get(7), "OBR-7"), (ctx.msh.get(7), "MSH-7"),
    )
    if occurred is None:
        raise Untranslatable("no readable alert time (OBX-14, OBR-7, MSH-7)")
    subject: dict[str, Any] = {"pump_id": pump, "alarm_id": alarm_id, **ctx.patient()}
    if key[1]:
        subject["channel"] = channel_of(key)
    if not phase:
        phase = "start" if state == "active" else "end" if state == "inactive" else ""
        ctx.note(f"no event phase facet: read as {phase or 'unknown'!r} from the alarm state")
    def emit(kind_: str, data: dict[str, Any]) -> None:
        identity = ctx.fact_identity(kind_, occurred, pump, alarm_id, phase)
        ctx.emit(kind_, slot=f"alert/{kind_}", occurred_at=occurred, subject=subject,
                 data=data, identity=identity)

    if phase in RAISED:
        if priority is None:
            ctx.note("no alarm priority sent: recorded as 'info' (ACM PN, priority not indicated)")
        emit("alarm.raised", {"code": code_term.key, "priority": priority or "info",
                              "text": text, "kind": kind})
    elif phase in UPDATED:
        if inactivation in SILENCED:
            emit("alarm.silenced", {})
        elif inactivation == "alert-acknowledged":
            emit("alarm.acknowledged", {})
        emit("alarm.updated", {"priority": priority,
                               "state": state if state in ("active", "inactive") else None})
    elif phase == "acknowledged":
        emit("alarm.acknowledged", {})
    elif phase == "inactivate":
        emit("alarm.silenced", {})
    elif phase in CLEARED:
        emit("alarm.cleared", {})
    else:
        raise Untranslatable(f"alert phase {phase!r} is not one ACM defines")
    drop_unused(ctx, groups, "evidentiary or extra alert data: not carried by alarm events")


def _value(obs: Observation | None) -> str:
    return (obs.segment.get(5, 2) or obs.text()).strip().lower() if obs else ""


def _coded(
    ctx: Context, obs: Observation | None, table: dict[str, str], legacy: list[str], what: str
) -> str | None:
    if obs is not None:
        value = (obs.text() or obs.segment.get(5, 2)).upper()
        if value in table:
            return table[value]
        ctx.drop(obs.where, f"alarm {what} {value!r} unknown")
    for item in legacy:
        if item in table:
            ctx.note(f"alarm {what} {item!r} read from OBX-8 (deprecated form)")
            return table[item]
    return None
