"""The device containment tree of an observation group, for both pump models.

OBX-4 ``<MDS>.<VMD>.<CHAN>.<METRIC>[.<FACET>...]`` places every observation; trailing
zeros name an object (``1.0.0.0`` MDS, ``1.1.0.0`` VMD, ``1.1.2.0`` channel), a non-zero
fourth level a metric of the object above it. The *role* of an object comes from its OBX-3
term, keyed on the reference id (so a pending code ``0`` still works), for both trees:

* IHE Vol 3: ``MDC_DEV_PUMP_INFUS_MDS`` / ``_VMD`` / ``_CHAN_SOURCE``, ``_CHAN_DELIVERY``;
* Infusion Pump Model: ``…_LVP_MDS`` or ``…_SYRINGE_MDS`` / ``_VMD`` /
  ``MDC_DEV_PUMP_DELIVERY_INFO``, ``MDC_DEV_PUMP_INFUSATE_SOURCE_*``.

A pump channel is a VMD (a multi-line pump exposes one VMD per line); the channel id the
ledger uses is the VMD's number in OBX-4. Times and equipment ids inherit down the tree
(OBX-14/OBX-18 of an object apply to what it contains unless overridden, then OBR-7).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from consumers.hl7 import mdc
from consumers.hl7.observations import Observation

Key = tuple[int, int, int]


@dataclass
class Node:
    """An MDS, VMD or channel: its own OBX (if sent) and its metrics keyed by reference id."""

    key: Key
    obx: Observation | None = None
    metrics: list[Observation] = field(default_factory=list)

    @property
    def role(self) -> str | None:
        return mdc.object_role(self.obx.term) if self.obx else None

    @property
    def refid(self) -> str | None:
        return self.obx.term.refid if self.obx else None

    @property
    def path_text(self) -> str:
        return ".".join(map(str, (*self.key, 0)))

    def find(self, *refids: str) -> Observation | None:
        """The first metric with one of ``refids`` (marked used); ``None`` if absent."""
        for refid in refids:
            for obs in self.metrics:
                if obs.term.refid == refid:
                    obs.used = True
                    return obs
        return None


def _key(path: tuple[int, ...]) -> tuple[Key, int]:
    padded = (*path, 0, 0, 0, 0)
    return (padded[0], padded[1], padded[2]), padded[3]


@dataclass
class Tree:
    """All objects of one group by key; observations without a usable path are listed apart."""

    nodes: dict[Key, Node] = field(default_factory=dict)
    unplaced: list[Observation] = field(default_factory=list)

    @classmethod
    def build(cls, items: list[Observation]) -> Tree:
        tree = cls()
        for obs in items:
            if obs.path is None or not obs.path or obs.path[0] == 0:
                tree.unplaced.append(obs)
                continue
            key, metric = _key(obs.path)
            node = tree.nodes.setdefault(key, Node(key))
            is_object = metric == 0 and len(obs.path) <= 4 and mdc.object_role(obs.term)
            if is_object and node.obx is None:
                node.obx = obs
                obs.used = True
                continue
            node.metrics.append(obs)
        return tree

    def node(self, key: Key) -> Node | None:
        return self.nodes.get(key)

    def mds(self) -> Iterator[Node]:
        return (n for k, n in sorted(self.nodes.items()) if k[1] == 0 and k[2] == 0)

    def vmds(self) -> Iterator[Node]:
        return (n for k, n in sorted(self.nodes.items()) if k[1] != 0 and k[2] == 0)

    def channels(self, vmd: Node) -> Iterator[Node]:
        m, v, _ = vmd.key
        return (
            n for k, n in sorted(self.nodes.items()) if k[0] == m and k[1] == v and k[2] != 0
        )

    def parents(self, key: Key) -> Iterator[Node]:
        """The node itself, then its VMD, then its MDS (those that exist)."""
        m, v, c = key
        for candidate in dict.fromkeys(((m, v, c), (m, v, 0), (m, 0, 0))):
            node = self.nodes.get(candidate)
            if node is not None:
                yield node

    def inherited_time(self, obs: Observation | None, key: Key) -> str:
        """OBX-14 of ``obs``, else of the objects above it; ``""`` when none has one."""
        if obs is not None and obs.time_text:
            return obs.time_text
        for node in self.parents(key):
            if node.obx is not None and node.obx.time_text:
                return node.obx.time_text
        return ""

    def equipment(self, key: Key) -> list[str]:
        """OBX-18 of the object or its ancestors (channel, VMD, MDS), first found."""
        for node in self.parents(key):
            if node.obx is not None and any(node.obx.equipment()):
                return node.obx.equipment()
        return []

    def pump_mds(self) -> Node | None:
        """The first MDS that is an infusion pump (either tree)."""
        for node in self.mds():
            if node.refid and node.refid.startswith("MDC_DEV_PUMP"):
                return node
        return None

    def unused(self) -> Iterator[Observation]:
        for node in self.nodes.values():
            if node.obx is not None and not node.obx.used:
                yield node.obx
            yield from (obs for obs in node.metrics if not obs.used)
        yield from (obs for obs in self.unplaced if not obs.used)
