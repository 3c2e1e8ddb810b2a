"""Shared reading for the ORU translators: OBR groups, their trees, pumps and quantities.

An ORU message is ``MSH [PID [PV1]] { OBR { OBX } }``: each OBR starts a group whose OBX
segments form one containment tree (:mod:`containment`). The helpers here turn tree
observations into contract fields and write down every value that could not be used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consumers.hl7.containment import Key, Node, Tree
from consumers.hl7.context import Context
from consumers.hl7.observations import Observation, observations
from consumers.hl7.view import Segment

#: OBX-11 values that retract an earlier result: never read as a new value (DOMAIN.md §1.1).
RETRACTING = {"W": "posted as wrong", "D": "deleted"}


@dataclass
class Group:
    """One ORDER_OBSERVATION group: its OBR and the tree of its OBX segments."""

    number: int
    obr: Segment | None
    tree: Tree

    @property
    def slot(self) -> str:
        return f"obr{self.number}"

    def order_id(self) -> str | None:
        """OBR-2 placer order number (EI-1), the order an auto-program links to."""
        return (self.obr.get(2, 1) if self.obr else "") or None

    def time_text(self) -> str:
        return self.obr.get(7) if self.obr else ""


def read_groups(ctx: Context) -> list[Group]:
    groups: list[Group] = []
    obr: Segment | None = None
    pending: list[Segment] = []

    def close() -> None:
        if obr is not None or pending:
            items = []
            for obs in observations(ctx.view, pending):
                if obs.status in RETRACTING:
                    ctx.drop(obs.where, f"result status {obs.status} ({RETRACTING[obs.status]}): "
                             "retracting an earlier observation is not supported; not used")
                else:
                    items.append(obs)
            groups.append(Group(len(groups) + 1, obr, Tree.build(items)))

    for segment in ctx.view.segments():
        if segment.id == "OBR":
            close()
            obr, pending = segment, []
            ctx.used_segments.add("OBR")
        elif segment.id == "OBX":
            pending.append(segment)
            ctx.used_segments.add("OBX")
    close()
    return groups


def pump_id(ei: list[str]) -> str | None:
    """A pump's id from an EI (OBX-18): the universal id (EUI-64) if sent, else EI-1."""
    if len(ei) >= 3 and ei[2]:
        return ei[2]
    return (ei[0] if ei else "") or None


def quantity(ctx: Context, obs: Observation | None) -> dict[str, str] | None:
    """The observation as a Quantity dict, or ``None`` (and why it was dropped)."""
    if obs is None:
        return None
    obs.used = True
    value, note = obs.quantity()
    if value is None:
        ctx.drop(obs.where, note or "no value")
        return None
    if note:
        ctx.note(f"{obs.where}: {note}")
    return value


def enum(obs: Observation | None, prefix: str) -> str | None:
    """A coded enumeration without its prefix (``pump-delivery-status-kvo`` → ``kvo``)."""
    if obs is None:
        return None
    obs.used = True
    value = obs.enum()
    return value[len(prefix):] if value.startswith(prefix) else value or None


def text(obs: Observation | None) -> str | None:
    if obs is None:
        return None
    obs.used = True
    return obs.text() or None


def find(nodes: list[Node | None], *refids: str) -> Observation | None:
    """The first of ``refids`` found in ``nodes`` (most specific node first)."""
    for node in nodes:
        if node is not None:
            found = node.find(*refids)
            if found is not None:
                return found
    return None


def concentration(ctx: Context, obs: Observation | None) -> dict[str, Any] | None:
    """``MDC_CONC_DRUG`` 1.6 mg/mL → ``{"amount": 1.6 mg, "volume": 1 mL}``."""
    value = quantity(ctx, obs)
    if value is None or obs is None:
        return None
    amount_unit, _, volume_unit = value["unit"].partition("/")
    if volume_unit != "mL":
        ctx.drop(obs.where, f"concentration unit {value['unit']!r} is not amount per mL")
        return None
    return {"amount": {"value": value["value"], "unit": amount_unit},
            "volume": {"value": "1", "unit": "mL"}}


def channel_of(key: Key) -> str:
    """The ledger's channel id: the VMD number in OBX-4."""
    return str(key[1])


def drop_unused(ctx: Context, groups: list[Group], why: str) -> None:
    """Record every observation no translator used (nothing is silently ignored)."""
    for group in groups:
        for obs in group.tree.unused():
            if obs.term.refid is None:
                ctx.drop(obs.where, f"unknown MDC code {obs.term.code}: no mapping")
            else:
                ctx.drop(obs.where, why)
