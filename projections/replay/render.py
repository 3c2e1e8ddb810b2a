"""Replay output: an aligned text timeline, deterministic JSON, a self-contained HTML report.

The JSON is byte-identical for the same selection on every run and on a rebuilt database:
keys sorted, no wall-clock values, nothing that depends on table generations.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from projections.replay.engine import Frame
from projections.replay.jsontext import dumps
from projections.replay.whatif_render import html_section, text_section


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def to_json(label: str, frames: Sequence[Frame], extra: dict[str, Any] | None = None) -> str:
    document = {"selection": label, "events": len(frames),
                "timeline": [f.as_dict() for f in frames], **(extra or {})}
    # What json.dumps(document, sort_keys=True, indent=1, default=_default,
    # ensure_ascii=False) writes, written once per shared state part (see jsontext).
    return dumps(document, _default) + "\n"


def _q(quantity: dict[str, Any] | None) -> str:
    return f"{quantity['value']} {quantity['unit']}" if quantity else "-"


def _channel_of(frame: Frame) -> dict[str, Any] | None:
    """The channel an event concerns: its own, or for order and patient events the channel
    running that order (or for that patient)."""
    channels = frame.state["channels"]
    subject = frame.subject
    if subject.get("pump_id"):
        prefix = f"{subject['pump_id']}/{subject.get('channel')}/"
        return next((c for k, c in channels.items() if k.startswith(prefix)), None)
    for field in ("order_id", "patient_id"):
        if subject.get(field):
            match = [c for c in channels.values() if c[field] == subject[field]]
            if match:
                return match[-1]
    return None


def _what(frame: Frame) -> str:
    c = _channel_of(frame)
    if c is None:
        return ""
    return (f"{c['status']:<10} ordered {_q(c['ordered_rate']):>12} programmed "
            f"{_q(c['programmed_rate']):>12} running {_q(c['running_rate']):>12} "
            f"vol {_q(c['volume_infused'])}")


def to_text(label: str, frames: Sequence[Frame], what_if: dict[str, Any] | None = None) -> str:
    lines = [f"Replay of {label}: {len(frames)} events", "",
             f"{'occurred (device)':<26} {'recorded (ledger)':<26} {'event':<28} "
             f"{'source':<14} {'actor':<12} state after"]
    for frame in frames:
        actor = (frame.actor or {}).get("id", "")
        lines.append(f"{frame.occurred_at[:25]:<26} {frame.recorded_at[:25]:<26} "
                     f"{frame.type:<28} {frame.source.get('system', '')[:14]:<14} "
                     f"{actor[:12]:<12} {_what(frame)}")
        for alarm in frame.state["open_alarms"]:
            if alarm["raised_at"] == frame.occurred_at:
                lines.append(f"{'':<54}  ALARM {alarm['code']} ({alarm['priority']})")
        for finding in frame.fired:
            lines.append(f"{'':<54}  >> FIRED {finding['rule_id']} {finding['severity']}: "
                         f"{finding.get('summary') or ''}")
        for finding in frame.resolved:
            lines.append(f"{'':<54}  << RESOLVED {finding['rule_id']}")
    if what_if is not None:
        lines += text_section(what_if)
    return "\n".join(lines) + "\n"


_CSS = """
body{font:13px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:18px} table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0} .fired{background:#fde2e1}
.resolved{background:#e3f4e1} .alarm{color:#a40000;font-weight:600} .mono{font-family:monospace}
small{color:#666}
"""


def to_html(label: str, frames: Sequence[Frame], what_if: dict[str, Any] | None = None) -> str:
    rows = []
    for frame in frames:
        css = "fired" if frame.fired else "resolved" if frame.resolved else ""
        notes = [f"FIRED {html.escape(f['rule_id'])} {html.escape(f['severity'])}: "
                 f"{html.escape(f.get('summary') or '')}" for f in frame.fired]
        notes += [f"RESOLVED {html.escape(f['rule_id'])}" for f in frame.resolved]
        alarms = ", ".join(html.escape(f"{a['code']} ({a['priority']})")
                           for a in frame.state["open_alarms"])
        rows.append(
            f"<tr class='{css}'><td class='mono'>{html.escape(frame.occurred_at)}<br><small>"
            f"rec {html.escape(frame.recorded_at)}</small></td><td>{html.escape(frame.type)}"
            f"<br><small>{html.escape(frame.source.get('system', ''))} · "
            f"{html.escape((frame.actor or {}).get('id', ''))}</small></td>"
            f"<td class='mono'>{html.escape(_what(frame))}</td>"
            f"<td class='alarm'>{alarms}</td><td>{'<br>'.join(notes)}</td></tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Replay: "
        f"{html.escape(label)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Replay of {html.escape(label)}</h1><p>{len(frames)} events, in the order they "
        "happened (device clock), with the ledger's clock beside it. Red rows: a rule fired; "
        "green: a finding resolved.</p><table><tr><th>occurred / recorded</th><th>event</th>"
        "<th>state after (ordered · programmed · running)</th><th>open alarms</th>"
        f"<th>findings</th></tr>{''.join(rows)}</table>"
        f"{html_section(what_if) if what_if is not None else ''}</body></html>\n")
