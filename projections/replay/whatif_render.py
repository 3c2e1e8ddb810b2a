"""The what-if section of the text and HTML reports (the JSON carries ``what_if`` as is)."""

from __future__ import annotations

import html
import json
from typing import Any


def _where(finding: dict[str, Any]) -> str:
    device = f"{finding['pump_id']}/{finding['channel']}" if finding.get("pump_id") else ""
    return " ".join(x for x in (device, finding.get("order_id") or "") if x)


def _changes(entry: dict[str, Any]) -> list[str]:
    notes = []
    for field, change in entry["changes"].items():
        if field == "severity":
            notes.append(f"severity {change['from']} -> {change['to']}")
        elif field == "resolved_at":
            notes.append(f"resolved {change['from'] or 'never'} -> {change['to'] or 'never'}")
        elif field == "evidence":
            before, after = change["from"] or {}, change["to"] or {}
            keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            notes.append("evidence " + ", ".join(
                f"{k}: {json.dumps(before.get(k))} -> {json.dumps(after.get(k))}" for k in keys))
        else:
            notes.append(field.replace("_", " ") + " changed")
    return notes


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _header(what_if: dict[str, Any]) -> str:
    candidate, baseline, stored = what_if["ruleset"], what_if["baseline"], what_if["stored"]
    return (f"rule set {candidate['name']} {candidate['version']} "
            f"({_count(what_if['findings'], 'finding')}) against {baseline['name']} "
            f"{baseline['version']} in force ({_count(baseline['findings'], 'finding')}; "
            f"{stored['reproduced_by_baseline']} of {_count(stored['findings'], 'stored finding')}"
            " reproduced)")


def text_section(what_if: dict[str, Any]) -> list[str]:
    lines = ["", f"What-if: {_header(what_if)}"]
    for sign, name in (("+", "added"), ("-", "removed")):
        for f in what_if[name]:
            lines.append(f"  {sign} {name:<8} {f['rule_id']} {f['severity']} {f['opened_at']} "
                         f"{_where(f)}: {f.get('summary') or ''}")
    for entry in what_if["changed"]:
        lines.append(f"  ~ changed  {entry['rule_id']} {entry['opened_at']} {_where(entry)}: "
                     + "; ".join(_changes(entry)))
    if not (what_if["added"] or what_if["removed"] or what_if["changed"]):
        lines.append("  no finding would differ")
    return lines


def html_section(what_if: dict[str, Any]) -> str:
    rows = []
    for css, name in (("fired", "added"), ("resolved", "removed")):
        for f in what_if[name]:
            rows.append(f"<tr class='{css}'><td>{name}</td><td>{html.escape(f['rule_id'])} "
                        f"{html.escape(f['severity'])}</td><td class='mono'>"
                        f"{html.escape(f['opened_at'] or '')}</td><td>{html.escape(_where(f))}"
                        f"</td><td>{html.escape(f.get('summary') or '')}</td></tr>")
    for entry in what_if["changed"]:
        rows.append(f"<tr><td>changed</td><td>{html.escape(entry['rule_id'])}</td>"
                    f"<td class='mono'>{html.escape(entry['opened_at'] or '')}</td>"
                    f"<td>{html.escape(_where(entry))}</td>"
                    f"<td>{'<br>'.join(html.escape(n) for n in _changes(entry))}</td></tr>")
    body = (f"<table><tr><th>difference</th><th>rule</th><th>opened</th><th>where</th>"
            f"<th>finding</th></tr>{''.join(rows)}</table>" if rows
            else "<p>No finding would differ.</p>")
    return f"<h2>What-if</h2><p>{html.escape(_header(what_if))}</p>{body}"
