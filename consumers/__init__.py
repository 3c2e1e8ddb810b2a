"""Edges that bring events into the ledger (Kafka today; HL7 translation beside it).

Depends on ``ledger`` only; never on ``projections``.
"""
