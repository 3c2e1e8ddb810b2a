"""Channels in the engine's model: episodes, their order link, rate history and subject.

Episodes come from the ``infusions`` projection's own pure fold (``ChannelFold``), so a
finding's ``episode_id`` is the id ``infusion_state`` shows. Next to each episode the
engine keeps an *extra*: its order link (the order the pump named, the auto-program's,
else the patient's unique active order for the same medication: EVENTS.md's heuristic),
when delivery began and ended, the programmed-rate segments (for charting checks), recent
boluses, and the deadlines armed on it. Telemetry that changes nothing a rule reads (only
volumes move) is not folded: it still drives the event clock.
"""

from __future__ import annotations

from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies.context import ChannelChange, Context
from projections.discrepancies.findings import Subject
from projections.discrepancies.orders import active_at
from projections.discrepancies.world import facility, order_key, patient_key
from projections.infusions.episodes import ENDED, ChannelFold

FOLD = ChannelFold()
#: Delivery events that move an episode's state: one older than the episode (or, with no
#: episode, than the end of the last one) arrived out of order and is not folded.
_STATEFUL = frozenset({
    "infusion.started", "infusion.rate_changed", "infusion.paused", "infusion.resumed",
    "infusion.kvo_started", "infusion.vtbi_completed", "infusion.stopped",
})
_DELIVERING = frozenset({"infusing", "kvo"})
_SAME_CLEAR = 60 * clock.SECOND
_KEEP_REQUESTS = 5
_KEEP_SEGMENTS = 30
_KEEP_ENDED = 4
_RETAIN_ENDED = 24 * 60 * clock.MINUTE
_RATE_FIELDS = {
    "infusion.started": ("rate", "dose_rate"),
    "infusion.rate_changed": ("new_rate", "new_dose_rate"),
    "infusion.kvo_started": ("rate", None), "infusion.status_reported": ("rate", "dose_rate"),
}


def source_of(record: StoredRecord) -> str:
    return ChannelFold._source(record)


def same_medication(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Same drug: by code when both carry one (of the same system), else by name."""
    if not a or not b:
        return False
    if a.get("code") and b.get("code") and a.get("system") == b.get("system"):
        return bool(a["code"] == b["code"])
    return str(a.get("name", "")).casefold() == str(b.get("name", "")).casefold()


def _quiet(fold: dict[str, Any], record: StoredRecord) -> bool:
    """Telemetry that repeats the episode's known state, rate and dose rate."""
    data = record.event["data"]
    source = data.get("infusate_source") or "primary"
    episodes = fold.get("episodes")
    episode = episodes.get("primary" if source in ("bolus", "loading") else source) \
        if episodes else None
    if episode is None or episode["status"] in ENDED:
        return False
    state = data["state"]
    if state in ("stopped", "idle"):
        return True
    return (episode["status"] == state and episode.get("started_at") is not None
            and (data.get("rate") is None or data["rate"] == episode.get("current_rate"))
            and (data.get("dose_rate") is None
                 or data["dose_rate"] == episode.get("current_dose_rate")))


def fold_channel(ctx: Context, record: StoredRecord) -> ChannelChange:
    entity = ctx.world.channels.get(record.stream)
    if entity is None:
        subject = record.subject
        entity = ctx.world.channel_entity(record.stream, facility(subject), subject["pump_id"],
                                          subject["channel"])
    fold = entity["fold"]
    previous = fold.get("patient_id")
    if record.type == "infusion.status_reported":
        # A report older than the channel's last discrete event describes a state that
        # event already replaced (reports arrive late and out of order): clock only.
        if ctx.now < entity.get("last_discrete", 0) or _quiet(fold, record):
            return ChannelChange(entity, previous_patient=previous, skipped=True)
    else:
        if record.type in _STATEFUL and _stale(ctx, entity, fold, record):
            return ChannelChange(entity, previous_patient=previous, skipped=True)
        if ctx.now > entity.get("last_discrete", 0):
            entity["last_discrete"] = ctx.now
    held = {}
    if record.type == "program.cleared":
        # The contract's program.cleared names no infusate source. When another source of
        # the channel is stopped, paused, or has just ended, the clear is that source's: it
        # must not end a source that still delivers (a piggyback outliving its primary).
        episodes = fold.get("episodes") or {}
        ends = entity.get("ends", {})
        held = {s: e for s, e in episodes.items() if e["status"] in _DELIVERING}
        other = any(e["status"] not in ENDED for s, e in episodes.items() if s not in held) \
            or any(0 <= ctx.now - at <= _SAME_CLEAR for s, at in ends.items() if s not in held)
        if not other:
            held = {}
        # A clear that happened before an episode was programmed (it arrived late) is
        # not that episode's.
        for source, episode in episodes.items():
            extra = entity["x"].get(episode["episode_id"])
            if episode["status"] not in ENDED and extra is not None \
                    and ctx.now < max(extra["opened"], extra.get("programmed", 0)):
                held[source] = episode
        for source in held:
            del episodes[source]
    touched = FOLD.apply(fold, record)
    if held:
        fold["episodes"].update(held)
    fold.pop("pending", None)  # timeline material of the infusions projection only
    requests = fold.get("requests")
    if requests and len(requests) > _KEEP_REQUESTS:
        for stale in list(requests)[:-_KEEP_REQUESTS]:
            del requests[stale]
    change = ChannelChange(entity, touched, previous)
    source = source_of(record)
    for episode in touched:
        episode.pop("pending", None)
        extra = extra_of(entity, episode)
        _snapshot(extra, episode, fold)
        if record.type == "program.confirmed" and episode["source"] == source:
            extra["programmed"] = ctx.now
        if extra["started"] is None and episode.get("started_at") is not None:
            extra["started"] = ctx.now
            change.started.append(episode["episode_id"])
        if episode["status"] in ENDED and extra["ended"] is None:
            extra["ended"] = ctx.now
            change.ended.append(episode["episode_id"])
            entity.setdefault("ends", {})[episode["source"]] = ctx.now
        relink(ctx, entity, extra)
        if episode["source"] == source and record.type in _RATE_FIELDS:
            _segment(ctx, extra, record)
    serving = [patient_key(entity["facility_id"], p) for p in sorted(_patients(entity))]
    ctx.world.set_channel_patients(entity, serving)
    _prune(ctx, entity)
    ctx.world.channels.mark(entity["key"])
    ctx.change = change
    return change


def _stale(ctx: Context, entity: dict[str, Any], fold: dict[str, Any],
           record: StoredRecord) -> bool:
    source = source_of(record)
    episode = (fold.get("episodes") or {}).get(source)
    if episode is not None and episode["status"] not in ENDED:
        extra = entity["x"].get(episode["episode_id"])
        return extra is not None and ctx.now < max(extra["opened"], extra.get("programmed", 0))
    return ctx.now < entity.get("ends", {}).get(source, ctx.now)


def extra_of(entity: dict[str, Any], episode: dict[str, Any]) -> dict[str, Any]:
    extras: dict[str, dict[str, Any]] = entity["x"]
    extra = extras.get(episode["episode_id"])
    if extra is None:
        extra = extras[episode["episode_id"]] = {
            "id": episode["episode_id"], "src": episode["source"], "order": None,
            "opened": _opened(episode),
            "how": "none", "started": None, "ended": None, "segments": [], "boluses": [],
            "timers": [], "fired": [],
        }
    return extra


def _opened(episode: dict[str, Any]) -> int:
    """Event time of the episode's first event (its programming, or first delivery)."""
    first = episode.get("programmed_at") or episode.get("started_at") \
        or episode["last_occurred_at"]
    return clock.parse(first)


def _snapshot(extra: dict[str, Any], episode: dict[str, Any], fold: dict[str, Any]) -> None:
    program = episode.get("program") or {}
    extra.update({
        "status": episode["status"], "med": episode.get("medication"),
        "conc": episode.get("concentration"), "program": program,
        "patient": episode.get("patient_id") or fold.get("patient_id"),
        "order_id": episode.get("order_id"), "link": episode.get("order_link"),
        "rate": episode.get("current_rate"), "dose_rate": episode.get("current_dose_rate"),
        "paused_reason": episode.get("paused_reason"), "request_id": episode.get("request_id"),
    })


def _patients(entity: dict[str, Any]) -> set[str]:
    patients = {x["patient"] for x in entity["x"].values() if x["ended"] is None and x["patient"]}
    if entity["fold"].get("patient_id"):
        patients.add(entity["fold"]["patient_id"])
    return patients


def _segment(ctx: Context, extra: dict[str, Any], record: StoredRecord) -> None:
    rate_field, dose_field = _RATE_FIELDS[record.type]
    rate = record.data.get(rate_field)
    if rate is None:
        return
    dose = record.data.get(dose_field) if dose_field else None
    segments = extra["segments"]
    if segments and segments[-1][1] == rate and segments[-1][2] == dose:
        return
    segments.append([ctx.now, rate, dose, ctx.event_id])
    del segments[:-_KEEP_SEGMENTS]


def relink(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> bool:
    """(Re)compute an episode's order link; True when it changed."""
    if extra["ended"] is not None and extra["order"] is not None:
        return False
    fac = entity["facility_id"]
    key: str | None
    if extra.get("order_id"):
        key, how = order_key(fac, extra["order_id"]), extra.get("link") or "subject"
    else:
        key, how = _by_association(ctx, fac, extra)
    if key == extra["order"] and how == extra["how"]:
        return False
    ctx.world.link_source(key, entity["key"], extra["id"], extra["order"])
    extra["order"], extra["how"] = key, how
    ctx.world.channels.mark(entity["key"])
    return True


def _by_association(ctx: Context, fac: str, extra: dict[str, Any]) -> tuple[str | None, str]:
    """The associated patient's unique order for the medication, active at the start
    (else, for an episode still running, active now: an order written after the start)."""
    if not extra.get("patient") or not extra.get("med"):
        return None, "none"
    keys = sorted(ctx.world.patient_orders.get(patient_key(fac, extra["patient"]), ()))
    same = [k for k in keys if same_medication(ctx.world.orders[k].get("medication"),
                                               extra["med"])]
    at = extra["started"] if extra["started"] is not None else ctx.now
    candidates = [k for k in same if active_at(ctx.world.orders[k], at)]
    if not candidates and extra["ended"] is None:
        candidates = [k for k in same if active_at(ctx.world.orders[k], ctx.now)]
    if len(candidates) == 1:
        return candidates[0], "association_match"
    return None, "ambiguous" if candidates else "none"


def linked_order(ctx: Context, extra: dict[str, Any]) -> dict[str, Any] | None:
    return ctx.world.orders.get(extra["order"]) if extra.get("order") else None


def explicit_link(extra: dict[str, Any]) -> bool:
    """Linked because the pump or its auto-program named the order (not by heuristic)."""
    return extra["order"] is not None and extra["how"] in ("subject", "auto_program")


def subject(ctx: Context, entity: dict[str, Any], extra: dict[str, Any]) -> Subject:
    fac = entity["facility_id"]
    order = linked_order(ctx, extra)
    patient_id = extra.get("patient")
    patient = ctx.world.patients.get(patient_key(fac, patient_id)) if patient_id else None
    care_area = (extra.get("program") or {}).get("care_area") or (patient or {}).get("care_area")
    return Subject(
        facility_id=fac, patient_id=patient_id,
        order_id=order["order_id"] if order else extra.get("order_id"),
        pump_id=entity["pump_id"], channel=entity["channel"], episode_id=extra["id"],
        unit=(patient or {}).get("unit"), care_area=care_area,
    )


def active_extras(entity: dict[str, Any]) -> list[dict[str, Any]]:
    return [x for x in entity["x"].values() if x["ended"] is None]


def _prune(ctx: Context, entity: dict[str, Any]) -> None:
    extras = entity["x"]
    ended = sorted((x for x in extras.values() if x["ended"] is not None),
                   key=lambda x: (x["ended"], x["id"]))
    horizon = (ctx.clock.watermark or ctx.now) - _RETAIN_ENDED
    for index, extra in enumerate(ended):
        if index < len(ended) - _KEEP_ENDED or extra["ended"] < horizon:
            ctx.world.unlink_episode(extra["order"], entity["key"], extra["id"])
            del extras[extra["id"]]
