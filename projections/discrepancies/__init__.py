"""The discrepancy engine: clinical rules (DOMAIN.md §7) evaluated inside ``ledger project``.

Each rule is code (``rules/``); its parameters are versioned data (``rulesets/*.json``,
validated by :mod:`projections.discrepancies.ruleset`). The engine (``engine``) folds every
event in global order into a compact cross-stream model of orders, channels, pumps and
patients (``world``), fires event-time deadlines (``timers``) and keeps findings
(``findings``); the projection (``projection``) runs it batch by batch and writes the
``discrepancies`` read model. docs/discrepancies.md explains the design.
"""
