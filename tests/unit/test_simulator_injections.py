"""Each injected error kind shows up when its rate is forced to 1, with the rules it targets,
and turning injection off leaves only natural conditions."""

from __future__ import annotations

import pytest

from simulator import TARGETS, ErrorKind, MemorySink, SimulationConfig, simulate
from simulator.config import ErrorRates

COUNTED = {ErrorKind.DUPLICATE_DELIVERY: "duplicates", ErrorKind.OUT_OF_ORDER: "out_of_order",
           ErrorKind.MALFORMED: "malformed"}


def only(kind: ErrorKind, hours: float = 4.0) -> SimulationConfig:
    rates = ErrorRates(**{k.value: 0.0 for k in ErrorKind}).model_copy(update={kind.value: 1.0})
    config = SimulationConfig(seed=4, hours=hours, errors=rates, telemetry=False)
    return config.resized(units=4, beds=60, pumps=130)


@pytest.mark.parametrize("kind", list(ErrorKind), ids=lambda k: k.value)
def test_a_kind_forced_to_one_appears_with_its_rules(kind: ErrorKind) -> None:
    result = simulate(only(kind), MemorySink())
    truth = result.truth
    if kind in COUNTED:
        assert truth[COUNTED[kind]]["count"] > 0
        assert all(c["injection"] is None for c in truth["conditions"])
        return
    injected = [c for c in truth["conditions"] if c["injection"] == kind.value]
    assert injected, f"no condition from {kind.value}"
    assert TARGETS[kind][0] in {c["rule"] for c in injected}
    assert all(c["injection"] in (None, kind.value) for c in truth["conditions"])
    assert truth["malformed"]["count"] == truth["duplicates"]["count"] == 0


def test_a_wrong_rate_within_tolerance_is_not_a_condition() -> None:
    result = simulate(only(ErrorKind.WRONG_RATE), MemorySink())
    rules = {c["id"]: c["rule"] for c in result.truth["conditions"]}
    injections = [i for i in result.truth["injections"] if i["kind"] == "wrong_rate"]
    with_r01 = [i for i in injections if "R01" in {rules[c] for c in i["conditions"]}]
    assert with_r01
    assert len(with_r01) < len(injections)  # some stayed within max(5 %, 0.1 mL/h)


def test_no_errors_means_natural_conditions_only() -> None:
    config = SimulationConfig(seed=4, hours=6, inject_errors=False, telemetry=False).resized(
        units=4, beds=60, pumps=130)
    truth = simulate(config, MemorySink()).truth
    assert truth["injections"] == []
    assert truth["malformed"]["count"] == truth["duplicates"]["count"] == 0
    assert truth["conditions"], "manual programs, overrides and slow answers still happen"
    assert {c["rule"] for c in truth["conditions"]} <= {
        "R11", "R13", "R22", "R23", "R24"}


def test_the_error_multiplier_scales_every_rate() -> None:
    config = SimulationConfig(error_multiplier=2.5)
    assert config.error_rate("wrong_rate") == pytest.approx(0.015)
    assert SimulationConfig(error_multiplier=1e6).error_rate("library_bypass") == 1.0
    assert SimulationConfig(inject_errors=False).error_rate("library_bypass") == 0.0
