"""ledger.units: UCUM parsing and exact flow <-> dose-rate conversions, on worked examples."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.units import (
    IncommensurableUnits,
    NotConvertible,
    UnknownUnit,
    WeightRequired,
    WrongDimension,
    convert,
    dose_from_volume,
    dose_rate_from_flow,
    flow_from_dose_rate,
    known_codes,
    parse_unit,
    rates_agree,
    tolerance,
    volume_from_dose,
    within_tolerance,
)

# DOMAIN.md's suggested rate tolerance for LVPs: 5 % of the reference, at least 0.1 mL/h.
REL, FLOOR = Decimal("0.05"), Decimal("0.1")


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "dimension"),
    [
        ("mL", "volume"),
        ("L", "volume"),
        ("mg", "amount"),
        ("[iU]", "amount"),
        ("mmol", "amount"),
        ("kg", "mass"),
        ("min", "time"),
        ("mL/h", "flow"),
        ("mL/min", "flow"),
        ("mg/mL", "concentration"),
        ("[iU]/kg", "weight_based_dose"),
        ("ug/min", "dose_rate"),
        ("ug/kg/min", "weight_based_dose_rate"),
        ("ng/kg/min", "weight_based_dose_rate"),
        ("mg/kg/h", "weight_based_dose_rate"),
    ],
)
def test_each_contract_unit_parses_to_its_dimension(code: str, dimension: str) -> None:
    assert parse_unit(code).dimension == dimension


def test_grams_read_as_a_drug_amount_or_as_a_body_weight_as_the_caller_expects() -> None:
    assert parse_unit("g").dimension == "amount"
    assert parse_unit("g", "mass").dimension == "mass"
    assert convert("2500", "g", "kg") == Decimal("2.5")


def test_mEq_is_accepted_and_normalised_to_the_ucum_code_meq() -> None:
    assert parse_unit("mEq").code == "meq"
    assert parse_unit("mEq/kg/h").code == "meq/kg/h"
    assert "mEq" not in known_codes()


@pytest.mark.parametrize("code", ["ml", "mcg", "units/h", "mL/hr", "[IU]", "", "mg/L"])
def test_codes_outside_the_contract_are_unknown(code: str) -> None:
    with pytest.raises(UnknownUnit):
        parse_unit(code)


def test_an_unknown_code_gets_a_hint_when_only_its_case_is_wrong() -> None:
    with pytest.raises(UnknownUnit, match="did you mean 'mL/h'"):
        parse_unit("ML/H")


def test_a_duration_where_a_flow_is_expected_is_the_wrong_dimension() -> None:
    with pytest.raises(WrongDimension, match="duration"):
        parse_unit("min", "flow")


def test_unit_errors_are_ledger_errors_with_stable_codes() -> None:
    with pytest.raises(LedgerError) as caught:
        parse_unit("ml")
    assert getattr(caught.value, "code", None) == "unknown_unit"


# --- plain conversions -----------------------------------------------------------------------


def test_ml_per_min_and_ml_per_h_convert_both_ways_exactly() -> None:
    assert convert("2.5", "mL/min", "mL/h") == Decimal("150")
    assert convert("150", "mL/h", "mL/min") == Decimal("2.5")


def test_mass_amounts_convert_exactly() -> None:
    assert convert("0.4", "g", "mg") == Decimal("400")
    assert convert("400", "mg", "ug") == Decimal("400000")
    assert convert("5", "ng/kg/min", "ug/kg/h") == Decimal("0.3")


def test_a_non_terminating_quotient_is_exact_to_28_significant_digits_unless_rounded() -> None:
    assert convert("1", "mL/h", "mL/min") == Decimal("0.01666666666666666666666666667")
    assert convert("1", "mL/h", "mL/min", places=3) == Decimal("0.017")


def test_rounding_on_request_is_half_even() -> None:
    assert convert("0.125", "mL", "mL", places=2) == Decimal("0.12")
    assert convert("0.135", "mL", "mL", places=2) == Decimal("0.14")


def test_converting_across_dimensions_is_refused() -> None:
    with pytest.raises(WrongDimension):
        convert("1", "mL/h", "mg/h")


def test_floats_are_refused_as_conversion_inputs() -> None:
    with pytest.raises(TypeError):
        convert(1.5, "mL/h", "mL/min")  # type: ignore[arg-type]


# --- flow <-> dose rate: worked examples ------------------------------------------------------


def test_ihe_piv_dopamine_10_ug_kg_min_at_400_mg_in_250_ml_for_85_kg_is_31_875_ml_h() -> None:
    # Given the IHE PCD-03 example order
    # When the dose rate is converted to a flow
    flow = flow_from_dose_rate("10", "ug/kg/min", "400", "mg", "250", "mL", weight_kg="85")
    # Then it is exactly 31.875 mL/h, and back again exactly 10 ug/kg/min
    assert flow == Decimal("31.875")
    assert dose_rate_from_flow(flow, "ug/kg/min", "400", "mg", "250", "mL", "85") == 10


def test_fhir_dopamine_200_ug_min_at_400_mg_in_500_ml_is_15_ml_h() -> None:
    assert flow_from_dose_rate("200", "ug/min", "400", "mg", "500", "mL") == 15


def test_the_fhir_example_rate_of_7_5_ml_h_is_flagged_inconsistent_with_its_order() -> None:
    # Given FHIR medicationrequest0337/0338: 200 ug/min of dopamine 400 mg in 500 mL
    expected = flow_from_dose_rate("200", "ug/min", "400", "mg", "500", "mL")
    # When the published 7.5 mL/h and the arithmetic's 15 mL/h are compared to it
    # Then 7.5 is outside tolerance (half the dose) and 15 is consistent
    assert not within_tolerance(Decimal("7.5"), expected, rel=REL, floor=FLOOR)
    assert within_tolerance(Decimal("15"), expected, rel=REL, floor=FLOOR)


def test_heparin_18_iu_kg_h_at_25000_iu_in_250_ml_for_80_kg_is_14_4_ml_h() -> None:
    flow = flow_from_dose_rate("18", "[iU]/kg/h", "25000", "[iU]", "250", "mL", "80")
    assert flow == Decimal("14.4")
    assert dose_rate_from_flow("14.4", "[iU]/kg/h", "25000", "[iU]", "250", "mL", "80") == 18


def test_a_tenfold_heparin_rate_is_caught_as_the_classic_decimal_error() -> None:
    expected = flow_from_dose_rate("18", "[iU]/kg/h", "25000", "[iU]", "250", "mL", "80")
    assert not within_tolerance(Decimal("144"), expected, rel=REL, floor=FLOOR)
    delivered = dose_rate_from_flow("144", "[iU]/kg/h", "25000", "[iU]", "250", "mL", "80")
    assert delivered == 180


def test_insulin_5_iu_h_at_100_iu_in_100_ml_is_5_ml_h() -> None:
    assert flow_from_dose_rate("5", "[iU]/h", "100", "[iU]", "100", "mL") == 5
    assert dose_rate_from_flow("5", "[iU]/h", "100", "[iU]", "100", "mL") == 5


def test_norepinephrine_8_ug_min_at_4_mg_in_250_ml_is_30_ml_h() -> None:
    assert flow_from_dose_rate("8", "ug/min", "4", "mg", "250", "mL") == 30


def test_propofol_2_mg_kg_h_at_1000_mg_in_100_ml_for_70_kg_is_14_ml_h() -> None:
    assert flow_from_dose_rate("2", "mg/kg/h", "1000", "mg", "100", "mL", "70") == 14


def test_potassium_chloride_20_meq_per_litre_at_100_ml_h_is_2_meq_h() -> None:
    assert dose_rate_from_flow("100", "mEq/h", "20", "mEq", "1", "L") == 2


def test_a_flow_in_ml_per_min_can_be_asked_for() -> None:
    flow = flow_from_dose_rate("200", "ug/min", "400", "mg", "500", "mL", flow_unit="mL/min")
    assert flow == Decimal("0.25")


def test_a_bolus_dose_converts_to_the_volume_that_holds_it_and_back() -> None:
    volume = volume_from_dose("80", "[iU]/kg", "25000", "[iU]", "250", "mL", "80")
    assert volume == 64
    assert dose_from_volume("64", "[iU]/kg", "25000", "[iU]", "250", "mL", "80") == 80


def test_a_weight_based_dose_rate_without_a_weight_is_refused() -> None:
    with pytest.raises(WeightRequired):
        flow_from_dose_rate("10", "ug/kg/min", "400", "mg", "250", "mL")


@pytest.mark.parametrize(
    ("dose_unit", "amount_unit"), [("[iU]/h", "mg"), ("mg/h", "meq"), ("mmol/h", "[iU]")]
)
def test_incommensurable_amounts_are_refused(dose_unit: str, amount_unit: str) -> None:
    with pytest.raises(IncommensurableUnits):
        flow_from_dose_rate("1", dose_unit, "10", amount_unit, "100", "mL")


def test_a_dose_unit_where_a_dose_rate_belongs_is_refused() -> None:
    with pytest.raises(WrongDimension):
        flow_from_dose_rate("10", "ug/kg", "400", "mg", "250", "mL", "85")


def test_a_zero_concentration_or_weight_cannot_convert() -> None:
    with pytest.raises(NotConvertible):
        flow_from_dose_rate("10", "ug/min", "0", "mg", "250", "mL")
    with pytest.raises(NotConvertible):
        flow_from_dose_rate("10", "ug/kg/min", "400", "mg", "250", "mL", "0")


# --- tolerance -------------------------------------------------------------------------------


def test_the_tolerance_is_the_larger_of_the_relative_part_and_the_floor() -> None:
    assert tolerance("100", rel=REL, floor=FLOOR) == 5
    assert tolerance("1", rel=REL, floor=FLOOR) == Decimal("0.1")


def test_rates_in_different_units_agree_after_conversion() -> None:
    assert rates_agree("0.25", "mL/min", "15", "mL/h", rel=REL, floor=FLOOR)
    assert not rates_agree("0.125", "mL/min", "15", "mL/h", rel=REL, floor=FLOOR)


# --- property --------------------------------------------------------------------------------

twelve_digits = st.builds(
    lambda coefficient, exponent: Decimal(coefficient).scaleb(-exponent),
    st.integers(min_value=1, max_value=10**12 - 1),
    st.integers(min_value=0, max_value=6),
)
dose_rate_units = st.sampled_from(
    ["ug/kg/min", "mg/kg/h", "[iU]/kg/h", "ng/kg/min", "ug/min", "mg/h", "[iU]/h", "g/h"]
)


@given(
    flow=twelve_digits,
    unit=dose_rate_units,
    amount=twelve_digits,
    volume=twelve_digits,
    weight=twelve_digits,
)
def test_flow_to_dose_rate_and_back_round_trips_within_decimal_precision(
    flow: Decimal, unit: str, amount: Decimal, volume: Decimal, weight: Decimal
) -> None:
    amount_unit = "[iU]" if unit.startswith("[iU]") else "mg"
    dose = dose_rate_from_flow(flow, unit, amount, amount_unit, volume, "mL", weight)
    back = flow_from_dose_rate(dose, unit, amount, amount_unit, volume, "mL", weight)
    # Each direction divides once at 28 significant digits, so 12-digit inputs survive.
    assert back.quantize(flow) == flow or abs(back - flow) <= abs(flow) * Decimal("1e-26")
