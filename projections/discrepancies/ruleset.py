"""Loading a versioned rule set: severities, parameters, medication lists, care-area overrides.

The file is JSON, validated here by pydantic: every rule of :data:`params.PARAMS` it
configures gets typed parameters, a severity per named case (``default`` plus the
escalations the rule's code knows, e.g. ``high_alert``), a rule version, and the clinical
rationale and source of the rule and of every parameter (a rule set whose parameter lacks
a rationale is refused: the file is the documentation safety committees sign off).
Care areas may override parameters or severities; :meth:`RuleSet.params` merges them.

A site may run its own file (``LEDGER_DISCREPANCY_RULESET`` / ``ledger project --rules``):
:func:`load` refuses an invalid one with a :class:`RuleSetError` naming every offending
field by its path in the file (``rules.R01.params.rate_tol_pct: ...``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from ledger.errors import ConfigurationError
from projections.discrepancies.params import PARAMS, Params

Severity = Literal["S1", "S2", "S3", "S4"]
SEVERITY_RANK: dict[str, int] = {"S1": 1, "S2": 2, "S3": 3, "S4": 4}
DEFAULT_PATH = Path(__file__).parent / "rulesets" / "default.json"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleSpec(_Model):
    """One rule's configuration: its version, severities and documented parameters."""

    title: str
    version: int = Field(ge=1)
    enabled: bool = True
    severity: dict[str, Severity]
    params: dict[str, Any] = {}
    rationale: str = Field(min_length=10)
    source: str = Field(min_length=3)
    param_docs: dict[str, str] = {}

    @model_validator(mode="after")
    def _documented(self) -> RuleSpec:
        if "default" not in self.severity:
            raise ValueError("severity must name a 'default' level")
        undocumented = sorted(set(self.params) - set(self.param_docs))
        if undocumented:
            raise ValueError(f"parameters without a rationale in param_docs: {undocumented}")
        return self


class MedicationList(_Model):
    """Medications matched by code, or by name as whole words (``heparin`` in
    ``heparin 25,000 units in 250 mL``), case-insensitively."""

    codes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    rationale: str = ""
    source: str = ""

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        if not self.names:
            return None
        words = "|".join(re.escape(n.casefold()) for n in sorted(self.names, key=len,
                                                                  reverse=True))
        return re.compile(rf"(?<![\w-])(?:{words})(?![\w-])")

    def matches(self, medication: dict[str, Any] | None) -> bool:
        if not medication:
            return False
        if medication.get("code") and medication["code"] in self.codes:
            return True
        pattern = self._pattern
        return bool(pattern and pattern.search(str(medication.get("name", "")).casefold()))


class CareAreaOverride(_Model):
    params: dict[str, Any] = {}
    severity: dict[str, Severity] = {}
    rationale: str = ""


class RuleSet(_Model):
    """A whole rule-set file. ``version`` is recorded on every finding."""

    name: str
    version: str = Field(min_length=1)
    description: str = ""
    late_data_allowance_min: Decimal = Field(ge=0)
    late_data_allowance_doc: str = Field(min_length=10)
    absence_on_backfill: bool
    absence_on_backfill_doc: str = Field(min_length=10)
    high_alert: MedicationList
    vasoactive: MedicationList
    rules: dict[str, RuleSpec]
    care_areas: dict[str, dict[str, CareAreaOverride]] = {}

    @model_validator(mode="after")
    def _known_rules(self) -> RuleSet:
        unknown = sorted(set(self.rules) - set(PARAMS))
        if unknown:
            raise ValueError(f"rules without an implementation: {unknown}")
        for rule_id, spec in self.rules.items():
            _check_params(rule_id, spec.params, ("rules", rule_id, "params"))
        for area, overrides in self.care_areas.items():
            for rule_id, override in overrides.items():
                if rule_id not in self.rules:
                    raise ValueError(f"care area {area!r} overrides unknown rule {rule_id}")
                _check_params(rule_id, {**self.rules[rule_id].params, **override.params},
                              ("care_areas", area, rule_id, "params"))
        return self

    def enabled(self, rule_id: str) -> bool:
        spec = self.rules.get(rule_id)
        return spec is not None and spec.enabled

    def params(self, rule_id: str, care_area: str | None = None) -> Any:
        """The rule's typed parameters, with the care area's overrides applied."""
        key = (rule_id, care_area if care_area in self.care_areas else None)
        cache = self._params_cache
        found = cache.get(key)
        if found is None:
            values = dict(self.rules[rule_id].params)
            if key[1] is not None and rule_id in self.care_areas[key[1]]:
                values.update(self.care_areas[key[1]][rule_id].params)
            found = cache[key] = PARAMS[rule_id].model_validate(values)
        return found

    def raw_params(self, rule_id: str, care_area: str | None = None) -> dict[str, Any]:
        """The parameters as JSON values, recorded on a finding as 'the parameters used'."""
        params: Params = self.params(rule_id, care_area)
        return params.model_dump(mode="json")

    def severity(self, rule_id: str, case: str, care_area: str | None = None) -> str:
        levels = dict(self.rules[rule_id].severity)
        if care_area in self.care_areas and rule_id in self.care_areas[care_area]:
            levels.update(self.care_areas[care_area][rule_id].severity)
        return levels.get(case) or levels["default"]

    @cached_property
    def _params_cache(self) -> dict[tuple[str, str | None], Any]:
        return {}


class RuleSetError(ConfigurationError):
    """A rule-set file that cannot be read or is not valid: the engine must not run on it."""


def _check_params(rule_id: str, values: dict[str, Any], where: tuple[str, ...]) -> None:
    """The rule's typed parameters validate ``values``; their errors are re-raised at their
    place in the file (the rule's model knows only ``rate_tol_pct``, not where it was)."""
    try:
        PARAMS[rule_id].model_validate(values)
    except ValidationError as error:
        details: list[InitErrorDetails] = []
        for e in error.errors():
            detail: InitErrorDetails = {"type": e["type"], "loc": (*where, *e["loc"]),
                                        "input": e["input"]}
            if "ctx" in e:
                detail["ctx"] = e["ctx"]
            details.append(detail)
        raise ValidationError.from_exception_data(error.title, details) from None


def load(path: Path | str | None = None) -> RuleSet:
    """Read and validate a rule-set file (the shipped defaults when ``path`` is None)."""
    if path is None:
        return _default()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise RuleSetError(f"rule set {path}: cannot read it: {error.strerror}") from error
    try:
        return RuleSet.model_validate_json(text)
    except ValidationError as error:
        problems = [_problem(e) for e in error.errors()]
        raise RuleSetError(f"rule set {path} is not valid ({len(problems)} error"
                           f"{'s' if len(problems) > 1 else ''}): " + "; ".join(problems)
                           ) from error


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(the file)"
    found = error.get("input")
    shown = f" (found {found!r})" if isinstance(found, str | int | float | bool) \
        and error["type"] != "missing" else ""
    return f"{where}: {error['msg']}{shown}"


@cache
def _default() -> RuleSet:
    # A rule set is immutable (frozen models), so the shipped one is read once per process.
    return RuleSet.model_validate_json(DEFAULT_PATH.read_text(encoding="utf-8"))


def worst(*severities: str) -> str:
    """The most severe of the given levels (S1 is the worst)."""
    return min(severities, key=lambda s: SEVERITY_RANK[s])
