"""Every projection the product runs, by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from projections.alarms.projection import AlarmsProjection
from projections.ders.projection import DersProjection
from projections.discrepancies.projection import DiscrepanciesProjection
from projections.documentation.projection import DocumentationProjection
from projections.infusions.projection import InfusionsProjection
from projections.runtime.base import Projection

# In dependency order: the alarms view reads infusion_state, so infusions comes first.
FACTORIES: dict[str, Callable[[], Projection]] = {
    "infusions": InfusionsProjection,
    "alarms": AlarmsProjection,
    "ders": DersProjection,
    "discrepancies": DiscrepanciesProjection,
    "documentation": DocumentationProjection,
}


def build(names: list[str] | None = None, *,
          ruleset: Path | str | None = None) -> list[Projection]:
    """The named projections (all when none), in dependency order as named. ``ruleset``: a
    site's rule-set file for the discrepancy engine (None: the shipped defaults), read and
    validated here, so an invalid file stops a command before anything runs."""
    chosen = names or list(FACTORIES)
    unknown = [n for n in chosen if n not in FACTORIES]
    if unknown:
        raise ValueError(f"unknown projection(s) {unknown}; known: {sorted(FACTORIES)}")
    return [DiscrepanciesProjection(ruleset_path=ruleset)
            if name == "discrepancies" and ruleset is not None else FACTORIES[name]()
            for name in chosen]
