"""One replay, from a selection to its documents: shared by ``ledger replay`` and the API.

Both front ends call :func:`build` and :func:`document`, so the JSON the API returns for a
selection is byte for byte the JSON ``ledger replay --format json`` prints for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from projections.discrepancies import ruleset as rulesets
from projections.discrepancies.ruleset import RuleSet
from projections.replay.engine import Frame, Replay, load_records
from projections.replay.findings import load_findings
from projections.replay.render import to_html, to_json, to_text
from projections.replay.selection import Selection, select
from projections.replay.whatif import what_if


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay: one selection, an optional window, an instant, a candidate rule set."""

    patient: str | None = None
    episode: str | None = None
    pump: str | None = None
    channel: str | None = None
    order: str | None = None
    facility: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    at: datetime | None = None
    rules: RuleSet | None = None
    #: What ``rules`` is compared with: the rule set in force (default: the shipped one).
    baseline: RuleSet | None = None


@dataclass
class ReplayReport:
    selection: Selection
    frames: list[Frame]
    extra: dict[str, Any]
    what_if: dict[str, Any] | None


def build(conn: psycopg.Connection[Any], request: ReplayRequest) -> ReplayReport:
    """Replay the request's selection (raises ``SelectionError`` when it names nothing)."""
    selection = select(conn, patient=request.patient, episode=request.episode,
                       pump=request.pump, channel=request.channel, order=request.order,
                       facility=request.facility)
    findings = load_findings(conn, selection.episode_ids, selection.streams)
    records = load_records(conn, selection.streams, until=request.end)
    frames = Replay(findings).frames(records)
    start = request.start
    if start is not None:
        # Compared as instants: the events' own offsets differ from the caller's, and their
        # texts do not sort as the moments they name (09:30-05:00 is after 14:00+00:00).
        frames = [f for f, r in zip(frames, records, strict=True) if r.occurred_at >= start]
    extra: dict[str, Any] = {}
    if request.at is not None:
        extra["as_of"] = as_of(conn, selection.streams, request.at)
    found = None
    if request.rules is not None:
        found = what_if(records, request.rules, request.baseline or rulesets.load(), start=start,
                        stored_ids={f["finding_id"] for f in findings.findings})
        extra["what_if"] = found
    return ReplayReport(selection, frames, extra, found)


def document(report: ReplayReport, fmt: str) -> str:
    """The report as a ``text``, ``json`` or ``html`` document."""
    label = report.selection.label
    if fmt == "json":
        return to_json(label, report.frames, report.extra)
    if fmt == "html":
        return to_html(label, report.frames, report.what_if)
    return to_text(label, report.frames, report.what_if)


def as_of(conn: psycopg.Connection[Any], streams: set[str], at: datetime) -> dict[str, Any]:
    """The state at ``at`` as it happened (device clock) and as it was known (ledger clock)."""
    states: dict[str, Any] = {}
    for clock in ("occurred", "recorded"):
        replay = Replay()
        frames = replay.frames(load_records(conn, streams, until=at, clock=clock))
        states[clock] = {"events": len(frames),
                         "state": replay.snapshot(at) if frames else None}
    states["late_data"] = states["occurred"] != states["recorded"]
    return states
