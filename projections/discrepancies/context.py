"""What a rule sees and may do while the engine applies one event (or fires one deadline).

Rules are functions ``rule(ctx, ...)``. Through the context they read the rule set, the
cross-stream model and the event clock, and they open, update and resolve findings and
arm or answer deadlines. Every finding opened here carries the rule id, the rule's
version, the rule-set version, the parameters used (with care-area overrides) and event
time only: ``ctx.now`` is the current event's ``occurred_at``, never the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.store.reader import StoredRecord
from projections.discrepancies import clock
from projections.discrepancies.findings import Book, Subject, apply_review, finding_id
from projections.discrepancies.ruleset import RuleSet, worst
from projections.discrepancies.timers import Timers
from projections.discrepancies.world import World


@dataclass
class ChannelChange:
    """What folding one channel event changed: for the rules that run after the fold."""

    entity: dict[str, Any]
    episodes: list[dict[str, Any]] = field(default_factory=list)
    previous_patient: str | None = None
    started: list[str] = field(default_factory=list)  # episodes whose delivery began now
    ended: list[str] = field(default_factory=list)  # episodes that ended now
    skipped: bool = False  # telemetry that changed nothing a rule reads


class Context:
    def __init__(self, ruleset: RuleSet, world: World, book: Book, timers: Timers):
        self.ruleset = ruleset
        self.world = world
        self.book = book
        self.timers = timers
        self.clock = clock.EventClock()
        self.late = clock.minutes(ruleset.late_data_allowance_min)
        #: R30's lateness threshold (None when R30 is disabled): judged on every event.
        self.lateness = clock.minutes(ruleset.params("R30").late_min) \
            if ruleset.enabled("R30") else None
        self.record: StoredRecord | None = None
        self.now = 0
        self.received: int | None = None
        self.position = 0
        self._event_id: str | None = None
        self.change: ChannelChange | None = None
        self.firing = False  # True while deadlines fire (they arm follow-ups themselves)

    def begin(self, record: StoredRecord) -> None:
        self.record = record
        self.now = clock.us(record.occurred_at)
        self.received = clock.us(record.received_at) if record.received_at else None
        self.position = record.notification_id
        self._event_id = None
        self.change = None

    @property
    def event_id(self) -> str:
        """The current event's id (rendered only when a rule needs it: telemetry is hot)."""
        if self._event_id is None:
            self._event_id = str(self.record.event_id) if self.record is not None else ""
        return self._event_id

    # -- rule set -----------------------------------------------------------------------
    def enabled(self, rule_id: str) -> bool:
        return self.ruleset.enabled(rule_id)

    def params(self, rule_id: str, care_area: str | None = None) -> Any:
        return self.ruleset.params(rule_id, care_area)

    def high_alert(self, medication: dict[str, Any] | None,
                   order: dict[str, Any] | None = None) -> bool:
        if order is not None and order.get("high_alert"):
            return True
        if self.ruleset.high_alert.matches(medication):
            return True
        return order is not None and self.ruleset.high_alert.matches(order.get("medication"))

    # -- findings -----------------------------------------------------------------------
    def open(
        self, rule_id: str, *, condition: str, subject: Subject, summary: str,
        evidence: dict[str, Any], event_ids: list[str], cases: tuple[str, ...] = (),
        trigger: str | None = None, opened_at: int | None = None, tracked: bool = True,
        triggered_at: int | None = None,
    ) -> dict[str, Any] | None:
        """Open a finding, or return the open one for ``condition`` (updated, escalated).

        ``condition`` names the condition instance (rule and subject); with ``tracked``
        the engine keeps the finding until the condition clears. ``cases`` are the
        severity cases that apply (``high_alert``, ``unassociated``...); the worst of their
        configured levels wins, and ``default`` applies when no case does.
        """
        if not self.enabled(rule_id):
            return None
        care_area = subject.care_area
        severity = worst(*(self.ruleset.severity(rule_id, c, care_area)
                           for c in (cases or ("default",))))
        key = f"{rule_id}|{condition}"
        existing = self.book.open_for(key) if tracked else None
        if existing is not None:
            existing["evidence"] = {**existing["evidence"], "latest": evidence}
            for event_id in event_ids:
                if event_id not in existing["evidence_event_ids"]:
                    existing["evidence_event_ids"].append(event_id)
            self.book.touch(existing, self.position)
            self.book.escalate(existing, severity, self.position)
            return existing
        trigger_id = trigger or self.event_id
        spec = self.ruleset.rules[rule_id]
        fid = finding_id(rule_id, condition, trigger_id)
        finding: dict[str, Any] = {
            "finding_id": fid, "rule_id": rule_id, "rule_version": spec.version,
            "ruleset_version": self.ruleset.version, "severity": severity,
            "status": "open", "condition_status": "open", "tracked": tracked,
            "condition_key": key, "review_outcome": None, "review_note": None,
            "reviewed_at": None, "review_event_id": None, **subject.as_dict(),
            "opened_at": self.now if opened_at is None else opened_at,
            "triggered_at": triggered_at if triggered_at is not None else (
                self.now if opened_at is None else opened_at),
            "detected_at": self.clock.watermark if self.clock.watermark is not None
            else self.now,
            "resolved_at": None, "resolving_event_id": None, "summary": summary,
            "evidence": evidence,
            "evidence_event_ids": list(dict.fromkeys([trigger_id, *event_ids])),
            "params": self.ruleset.raw_params(rule_id, care_area),
            "trigger_event_id": trigger_id, "last_position": self.position,
        }
        finding["detected_at"] = max(finding["detected_at"], finding["opened_at"])
        pending = self.world.reviews.get(fid)
        if pending is not None:
            apply_review(finding, pending["outcome"], pending.get("note"), pending["at"],
                         pending["event_id"])
            self.world.reviews.drop(fid)
        return self.book.add(finding)

    def resolve(self, rule_id: str, condition: str, *, at: int | None = None,
                event_id: str | None = None) -> bool:
        """Resolve the tracked finding of ``condition`` (the current event by default)."""
        return self.book.resolve_key(
            f"{rule_id}|{condition}", self.now if at is None else at,
            self.event_id if event_id is None else event_id, self.position)

    def live(self, rule_id: str, condition: str) -> dict[str, Any] | None:
        return self.book.open_for(f"{rule_id}|{condition}")

    # -- deadlines ----------------------------------------------------------------------
    def arm(self, rule_id: str, timer_id: str, due: int, *, pump: str | None = None,
            **payload: Any) -> dict[str, Any] | None:
        """A deadline at event time ``due``; it fires once the watermark passes
        ``due`` + the late-data allowance. ``pump`` names the pump whose clock the
        deadline depends on (suppressed while it is skewed, deferred during a gap)."""
        if not self.enabled(rule_id):
            return None
        if self.received is None and not self.firing and not self.ruleset.absence_on_backfill:
            return None  # a backfilled trigger: its answer may simply not be in the backfill
        skewed = False
        if pump is not None:
            entity = self.world.pumps.get(pump)
            skewed = bool(entity and entity.get("skew"))
        # A deadline armed by a late event may already be past: its answers are probably in
        # the same late burst, so it too waits the allowance from the current clock.
        base = due if self.clock.watermark is None or self.firing \
            else max(due, self.clock.watermark)
        return self.timers.arm(timer_id, rule_id, due, base + self.late, pump=pump,
                               skewed=skewed, trigger=self.event_id, armed_at=self.now,
                               **payload)

    def answer(self, timer_id: str, at: int | None = None, event_id: str | None = None) -> None:
        """An answering event for deadline ``timer_id``: in time it cancels the deadline;
        late, it is remembered so the finding opens and resolves at once."""
        timer = self.timers.get(timer_id)
        if timer is None:
            return
        at = self.now if at is None else at
        if at <= timer["due"]:
            self.timers.cancel(timer_id)
        elif timer.get("answer") is None or at < timer["answer"][0]:
            timer["answer"] = [at, event_id or self.event_id]
            self.timers.table.mark(timer_id)

    def settle(self, finding: dict[str, Any] | None, timer: dict[str, Any]) -> None:
        """After a deadline fired: resolve its finding at once if a late answer came."""
        answer = timer.get("answer")
        if finding is not None and answer is not None:
            self.book.resolve(finding, answer[0], answer[1], self.position)
