"""Which documentation action documents which entry: links kept in their own table.

Entries come from channel streams and actions from order streams, so they meet here, in
SQL, at write time. A link ``(entry, action)`` holds when

1. the action cites one of the entry's ``cite_ids`` (its source event ids and its own id);
2. a validation that cites nothing charts, for the entry's order (and pump/channel when
   given), a value the entry carries at exactly the entry's device time;
3. the action refers to another action linked to the entry (an edit or retraction of a
   validation documents the validation's entries), transitively.

Every predicate reads only attributes that never change once written (ids, device times,
values), so the set of links is a function of which rows exist, not of batch boundaries
or of how streams interleaved: a rebuild finds the same links, and a link, once made, is
never unmade. New rows are matched against all existing ones; new links are then carried
along the reference chains until nothing new appears.
"""

from __future__ import annotations

from typing import Any

import psycopg

_CITED = """
SELECT e.entry_id, a.event_id, a.position FROM {entries} e JOIN {actions} a
  ON e.cite_ids && a.cited
WHERE {new}
"""
# Rule 2. The parent (``infusion``) and manual entries are never matched by time alone.
_OBSERVED = """
SELECT e.entry_id, a.event_id, a.position FROM {entries} e JOIN {actions} a
  ON a.action = 'validated' AND cardinality(a.cited) = 0
 AND e.facility_id = a.facility_id AND e.order_id = a.order_id
 AND e.device_time = a.observed_at
 AND e.origin = 'device' AND e.kind <> 'infusion'
 AND (a.pump_id IS NULL OR (e.pump_id = a.pump_id AND e.channel IS NOT DISTINCT FROM a.channel))
 AND ((a.has_rate AND e.rate IS NOT NULL) OR (a.has_dose_rate AND e.dose_rate IS NOT NULL)
      OR (a.has_volume AND e.volume IS NOT NULL))
WHERE {new}
"""
# Rule 3 for new actions: they inherit the existing links of the action they refer to.
_INHERIT = """
SELECT l.entry_id, c.event_id, c.position FROM {actions} c JOIN {links} l
  ON l.action_id = c.refers_to
WHERE c.event_id = ANY(%s::uuid[])
"""
_INSERT = (
    "INSERT INTO {links} (entry_id, action_id, position) {select}"
    " ON CONFLICT DO NOTHING RETURNING entry_id, action_id"
)
_CARRY = """
INSERT INTO {links} (entry_id, action_id, position)
SELECT l.entry_id, c.event_id, c.position
FROM unnest(%s::uuid[], %s::uuid[]) AS f(entry_id, action_id)
JOIN {links} l ON l.entry_id = f.entry_id AND l.action_id = f.action_id
JOIN {actions} c ON c.refers_to = l.action_id
ON CONFLICT DO NOTHING RETURNING entry_id, action_id
"""


# New rows in a batch above which the GIN indexes' pending lists are merged first.
_MERGE_PENDING = 1000


def link(
    cur: psycopg.Cursor[Any], names: dict[str, str], entry_ids: list[Any], action_ids: list[Any]
) -> set[Any]:
    """Make the links new or changed entries and new actions imply; return the entry ids
    that gained a link (their documentation state must be recomputed)."""
    if len(entry_ids) + len(action_ids) >= _MERGE_PENDING:
        # A GIN index keeps new rows in an unordered pending list (until autovacuum) that
        # every search scans in full: after a large batch (a rebuild writes one per chunk)
        # each of the thousands of `&&` probes below would read it all — measured 0.5 ms a
        # probe, 11 s for one 100k-event chunk, against 70 ms once merged.
        cur.execute(f"SELECT gin_clean_pending_list('{names['entries']}_cite'::regclass),"
                    f" gin_clean_pending_list('{names['actions']}_cited'::regclass)".encode())
    found: list[tuple[Any, Any]] = []
    for template in (_CITED, _OBSERVED):
        for new, ids in (("e.entry_id = ANY(%s::uuid[])", entry_ids),
                         ("a.event_id = ANY(%s::uuid[])", action_ids)):
            if not ids:
                continue
            select = template.format(new=new, **names)
            cur.execute(_INSERT.format(links=names["links"], select=select).encode(), (ids,))
            found.extend(cur.fetchall())
    if action_ids:
        select = _INHERIT.format(**names)
        cur.execute(_INSERT.format(links=names["links"], select=select).encode(), (action_ids,))
        found.extend(cur.fetchall())
    frontier = found
    while frontier:
        cur.execute(_CARRY.format(**names).encode(),
                    ([f[0] for f in frontier], [f[1] for f in frontier]))
        frontier = list(cur.fetchall())
        found.extend(frontier)
    return {entry for entry, _ in found}
