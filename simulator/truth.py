"""Ground truth: every condition a discrepancy rule should fire on, and how it was made.

Conditions come from two places. *Instant* checks (a program that differs from its order,
an override, a bolus without an order) are recorded when the triggering event is emitted.
*Deadline* rules (an alarm not acknowledged within T, a start not documented within N
minutes) are :class:`Watch` objects: armed at the trigger, satisfied by the answering event,
and turned into a condition when the deadline passes unanswered. An answer that lands
within ``band`` of the deadline, a deadline cut by the end of the run, and anything on a
pump while its clock is skewed (R30 tells rules to suppress timing checks then) are listed
as *don't care*: a rule may or may not fire there, and a benchmark should count neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulator import clock

if TYPE_CHECKING:
    from simulator.engine import Engine
    from simulator.events import Ref

FORMAT = "infusion-ledger-simulator-truth/1"

#: The rule parameters the truth assumes: DOMAIN.md §7 defaults.
RULE_PARAMS: dict[str, dict[str, Any]] = {
    "R01": {"rate_tol_pct": "5", "rate_tol_floor_ml_h": "0.1", "titratable": "range"},
    "R02": {"compare": "exact, dose unit of the order"},
    "R03": {"rate_tol_pct": "5", "rate_tol_floor": "0.1", "align_min": 5},
    "R04": {"compare": "medication code"},
    "R05": {"compare": "exact after unit normalisation"},
    "R06": {"compare": "exact UCUM equality"},
    "R07": {"grace_min": 10},
    "R08": {"whitelist": []},
    "R09": {"grace_min": 15},
    "R10": {"fields": ["medication", "concentration", "rate", "dose", "vtbi", "dosing_weight"]},
    "R11": {"pumps_interoperable": "all", "auto_request_window_min": 15},
    "R12": {"library_mode": "basic"},
    "R13": {"fast_override_s": 2},
    "R14": {"window_min": 15},
    "R17": {"tol_pct": "2", "tol_abs_kg": "0.5", "tolerance": "max"},
    "R20": {"n_min": 60},
    "R21": {"n_min": 60},
    "R22": {"t_high_min": 2, "t_medium_min": 10},
    "R23": {"t_vasoactive_min": 5, "t_other_min": 30},
    "R24": {"t_min": 30, "excludes": ["paused for switching_source", "paused for alarm"]},
    "R25": {"t_min": 60, "orders": "continuous"},
    "R27": {"compare": "medication code, same patient, two channels"},
    "R28": {"compare": "order.bolus dose and max_per_hour"},
    "R29": {"t_min": 15},
    "R30": {"t_min": 5, "unit": "one condition per skew episode or communication gap"},
}
#: Rules whose conditions the simulator never creates (consistent by construction): listed
#: so that a benchmark scores any finding of theirs as a false positive.
NEVER: dict[str, dict[str, Any]] = {
    "R15": {"compare": "care area of the patient's unit"},
    "R16": {"grace_h": 24, "library_versions": 1},
    "R18": {"allowance_pct": "10"},
    "R19": {"abs_ml": "2", "pct": "5", "kvo_volume": "counted", "bolus_volume": "counted"},
    "R26": {"compare": "a primary paused for switching_source while the secondary runs"},
    "R31": {"corrections": "none sent"},
}
for _rule, _params in NEVER.items():
    RULE_PARAMS[_rule] = {**_params, "never_produced": True}

#: Rules that compare times across events; R30 says to suppress them while skew is active.
TIMING_RULES = ("R07", "R09", "R14", "R20", "R21", "R22", "R23", "R24", "R25", "R29")


@dataclass(frozen=True)
class Subjects:
    patient_id: str | None = None
    order_id: str | None = None
    pump_id: str | None = None
    channel: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {
            "patient_id": self.patient_id,
            "order_id": self.order_id,
            "pump_id": self.pump_id,
            "channel": self.channel,
        }


@dataclass(eq=False)
class Injection:
    seq: int
    kind: str
    at_ms: int
    subjects: Subjects
    detail: str
    conditions: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Condition:
    seq: int
    rule: str
    kind: str
    at_ms: int
    time: str
    subjects: Subjects
    event_ids: list[str]
    injection: Injection | None
    detail: str
    due_ms: int | None = None
    reason: str = ""

    @property
    def cid(self) -> str:
        return f"C{self.seq:06d}"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.cid,
            "rule": self.rule,
            "kind": self.kind,
            "time": self.time,
            **self.subjects.as_json(),
            "event_ids": self.event_ids,
            "injected": self.injection is not None,
            "injection": self.injection.kind if self.injection else None,
            "params": RULE_PARAMS.get(self.rule, {}),
            "detail": self.detail,
        }
        if self.due_ms is not None:
            out["due_at"] = clock.fmt(self.due_ms)
        if self.reason:
            out["dont_care_reason"] = self.reason
        return out


class Watch:
    """A deadline rule armed at ``trigger``; :meth:`satisfy` records the answer."""

    def __init__(
        self, truth: Truth, rule: str, kind: str, trigger: Ref, subjects: Subjects,
        deadline_ms: int, injection: Injection | None, detail: str,
    ):
        self.truth, self.rule, self.kind, self.trigger = truth, rule, kind, trigger
        self.subjects, self.deadline_ms = subjects, deadline_ms
        self.injection, self.detail = injection, detail
        self.satisfied_at: int | None = None
        self.done = False

    def satisfy(self, at_ms: int) -> None:
        if self.satisfied_at is None and not self.done:
            self.satisfied_at = at_ms

    def expire(self) -> None:
        if self.done:
            return
        self.done = True
        band = self.truth.band_ms
        answer = self.satisfied_at
        if answer is not None and answer < self.deadline_ms - band:
            return
        reason = "" if answer is None or answer > self.deadline_ms + band else "answer at deadline"
        self.truth.add(
            self.rule, self.kind, self.trigger, self.subjects, injection=self.injection,
            detail=self.detail, due_ms=self.deadline_ms, dont_care=reason,
        )


class Truth:
    def __init__(self, engine: Engine, band_ms: int = 3 * clock.SECOND):
        self.engine = engine
        self.band_ms = band_ms
        self.conditions: list[Condition] = []
        self.dont_care: list[Condition] = []
        self.injections: list[Injection] = []
        self.watches: list[Watch] = []
        self.windows: list[dict[str, Any]] = []
        self.malformed: list[dict[str, Any]] = []
        self.duplicates: list[str] = []
        self.out_of_order: list[str] = []
        self._seq = 0

    def inject(self, kind: str, at_ms: int, subjects: Subjects, detail: str = "") -> Injection:
        injection = Injection(len(self.injections) + 1, kind, at_ms, subjects, detail)
        self.injections.append(injection)
        return injection

    def add(
        self, rule: str, kind: str, trigger: Ref, subjects: Subjects, *,
        event_ids: tuple[str, ...] | list[str] = (), injection: Injection | None = None,
        detail: str = "", due_ms: int | None = None, dont_care: str = "",
    ) -> Condition:
        self._seq += 1
        ids = [trigger.event_id, *[e for e in event_ids if e != trigger.event_id]]
        condition = Condition(
            self._seq, rule, kind, trigger.at_ms, trigger.occurred_at, subjects, ids,
            injection, detail, due_ms, dont_care,
        )
        (self.dont_care if dont_care else self.conditions).append(condition)
        if injection is not None and not dont_care:
            injection.conditions.append(condition.cid)
        return condition

    def watch(
        self, rule: str, kind: str, trigger: Ref, subjects: Subjects, deadline_ms: int, *,
        injection: Injection | None = None, detail: str = "",
    ) -> Watch:
        watch = Watch(self, rule, kind, trigger, subjects, deadline_ms, injection, detail)
        self.watches.append(watch)
        self.engine.call_at(deadline_ms + self.band_ms, watch.expire)
        return watch

    def suppress(self, pump_id: str, from_ms: int, to_ms: int | None, rules: tuple[str, ...],
                 reason: str) -> dict[str, Any]:
        """A window where ``rules`` on the pump are don't care. ``to_ms`` None: open until
        the caller closes it (sets ``to_ms``) — or until the end of the run, if it never
        does (the run may stop before the workflow that would close it)."""
        window = {"pump_id": pump_id, "from_ms": from_ms, "to_ms": to_ms, "rules": rules,
                  "reason": reason}
        self.windows.append(window)
        return window

    def finalize(self, end_ms: int) -> None:
        """Settle watches cut by the end of the run and apply suppression windows."""
        for watch in self.watches:
            if watch.done or watch.deadline_ms > end_ms:
                continue
            watch.done = True
            if watch.satisfied_at is None or watch.satisfied_at >= watch.deadline_ms - self.band_ms:
                self.add(
                    watch.rule, watch.kind, watch.trigger, watch.subjects,
                    injection=watch.injection, detail=watch.detail, due_ms=watch.deadline_ms,
                    dont_care="deadline at the end of the run",
                )
        self.watches = []
        for left_open in self.windows:
            if left_open["to_ms"] is None:
                left_open["to_ms"] = end_ms
        kept: list[Condition] = []
        for condition in self.conditions:
            window = self._window_for(condition)
            if window is None:
                kept.append(condition)
                continue
            condition.reason = window["reason"]
            self.dont_care.append(condition)
            if condition.injection is not None:
                condition.injection.conditions.remove(condition.cid)
        self.conditions = kept

    def _window_for(self, condition: Condition) -> dict[str, Any] | None:
        pump = condition.subjects.pump_id
        if pump is None or condition.rule == "R30":
            return None
        for window in self.windows:
            if window["pump_id"] != pump:
                continue
            if not window["from_ms"] <= condition.at_ms <= window["to_ms"]:
                continue
            if window["rules"] == ("*",) or condition.rule in window["rules"]:
                return window
        return None
