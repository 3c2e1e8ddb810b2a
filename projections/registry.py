"""Every projection the product runs, by name."""

from __future__ import annotations

from collections.abc import Callable

from projections.infusions.projection import InfusionsProjection
from projections.runtime.base import Projection

FACTORIES: dict[str, Callable[[], Projection]] = {
    "infusions": InfusionsProjection,
}


def build(names: list[str] | None = None) -> list[Projection]:
    chosen = names or list(FACTORIES)
    unknown = [n for n in chosen if n not in FACTORIES]
    if unknown:
        raise ValueError(f"unknown projection(s) {unknown}; known: {sorted(FACTORIES)}")
    return [FACTORIES[name]() for name in chosen]
