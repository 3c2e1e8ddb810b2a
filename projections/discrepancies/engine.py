"""The engine: apply events in global order, fire event-time deadlines, keep findings.

For each event: (1) R30 judges its clocks and says whether it may move the event clock;
(2) the watermark moves and every deadline due by then fires, in order, *before* the
event is applied; (3) the event is folded into the cross-stream model (orders, patients,
channels, pumps); (4) the rule families run their handlers; (5) episodes that ended run
the families' end hooks (conditions of the episode resolve). Nothing reads the wall
clock, so the same events in the same order give the same findings, batch boundaries
and restarts included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import channels, clock, orders, retention
from projections.discrepancies.context import Context
from projections.discrepancies.findings import Book
from projections.discrepancies.rules import (
    alarms,
    data_quality,
    documentation,
    lifecycle,
    program,
    rate,
    safety,
)
from projections.discrepancies.rules import orders as order_rules
from projections.discrepancies.ruleset import RuleSet
from projections.discrepancies.timers import Timers
from projections.discrepancies.world import World
from projections.infusions.projection import CHANNEL_TYPES, ORDER_TYPES

Handler = Callable[[Context, StoredRecord], None]
_HOUR = 60 * clock.MINUTE
# Order matters: links and patients first (order rules relink), then the rules that read them.
FAMILIES = (order_rules, lifecycle, rate, program, safety, documentation, alarms, data_quality)
DOCUMENTATION_TYPES = frozenset({
    "documentation.validated", "documentation.edited", "documentation.entered_manually",
    "documentation.retracted",
})
PUMP_TYPES = frozenset({
    "alarm.raised", "alarm.updated", "alarm.silenced", "alarm.acknowledged", "alarm.cleared",
    "pump.library_activated", "pump.communication_changed", "pump.clock_changed",
})
HANDLED = (CHANNEL_TYPES | ORDER_TYPES | DOCUMENTATION_TYPES | PUMP_TYPES
           | {"patient.located", "bcma.scan_recorded", "discrepancy.reviewed"})


def _handlers() -> dict[str, tuple[Handler, ...]]:
    table: dict[str, list[Handler]] = {}
    for family in FAMILIES:
        for kind, functions in family.HANDLERS.items():
            table.setdefault(kind, []).extend(functions)
    return {kind: tuple(functions) for kind, functions in table.items()}


class Engine:
    """One rule set applied to one event history; state in ``world``, results in ``book``."""

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        self.world = World()
        self.book = Book()
        self.timers = Timers()
        self.ctx = Context(ruleset, self.world, self.book, self.timers)
        self.handlers = _handlers()
        self.fire: dict[str, Callable[[Context, dict[str, Any]], None]] = {}
        for family in FAMILIES:
            self.fire.update(family.TIMERS)
        self.episode_end = [hook for family in FAMILIES
                            for hook in getattr(family, "ON_EPISODE_END", ())]
        self.position = 0
        self.pruned_hour = 0

    @property
    def watermark(self) -> int | None:
        return self.ctx.clock.watermark

    def process(self, record: StoredRecord) -> None:
        ctx = self.ctx
        ctx.begin(record)
        if data_quality.observe(ctx, record):
            ctx.clock.advance(ctx.now)
        self._fire_due()
        kind = record.type
        if kind in CHANNEL_TYPES:
            if channels.fold_channel(ctx, record).skipped:
                # Telemetry repeating what is known: it only moved the event clock.
                self.position = record.notification_id
                return
        elif kind in ORDER_TYPES:
            orders.fold_order(ctx, record)
        elif kind == "patient.located":
            orders.fold_patient(ctx, record)
        elif kind == "discrepancy.reviewed":
            self._review(record)
        for handler in self.handlers.get(kind, ()):
            handler(ctx, record)
        change = ctx.change
        if change is not None:
            for episode_id in change.ended:
                extra = change.entity["x"].get(episode_id)
                if extra is not None:
                    for hook in self.episode_end:
                        hook(ctx, change.entity, extra)
        self.position = record.notification_id
        watermark = ctx.clock.watermark
        if watermark is not None and watermark // _HOUR > self.pruned_hour:
            # Hourly in event time, so a replay forgets exactly what live processing did.
            self.pruned_hour = watermark // _HOUR
            retention.prune(self.world, watermark)

    def _fire_due(self) -> None:
        watermark = self.ctx.clock.watermark
        if watermark is None:
            return
        self.ctx.firing = True
        try:
            for timer in self.timers.due(watermark):
                if data_quality.suppress(self.ctx, timer):
                    continue
                fire = self.fire.get(timer["rule"])
                if fire is not None and self.ruleset.enabled(timer["rule"]):
                    fire(self.ctx, timer)
        finally:
            self.ctx.firing = False

    def _review(self, record: StoredRecord) -> None:
        ctx, data = self.ctx, record.data
        self.book.review(str(data["finding_id"]), data["outcome"], data.get("note"), ctx.now,
                         ctx.event_id, ctx.position)

    # -- persistence hooks --------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"watermark": self.ctx.clock.watermark, "seq": self.timers.seq,
                "position": self.position, "pruned_hour": self.pruned_hour,
                "ruleset_version": self.ruleset.version}

    def restore_meta(self, meta: dict[str, Any]) -> None:
        self.ctx.clock.watermark = meta.get("watermark")
        self.timers.seq = meta.get("seq", 0)
        self.position = meta.get("position", 0)
        self.pruned_hour = meta.get("pruned_hour", 0)

    def clear_batch(self) -> None:
        self.world.clear_batch()
        self.timers.table.clear_batch()
        self.book.clear_batch()
