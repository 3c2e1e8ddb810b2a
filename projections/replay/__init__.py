"""Incident replay: what the order, the pump, the nurse and the alarms each said, moment by moment.

Replay reads the ledger and runs the projections' own folds in memory — so what a safety
officer sees is exactly what the read models computed — and never writes, except the audit
record of who replayed what.
"""
