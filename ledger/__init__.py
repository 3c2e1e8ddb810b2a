"""The infusion ledger's domain and event store.

Wire contract (``ledger.contract``), flow/dose conversions (``ledger.units``), the
tamper-evident PostgreSQL event store (``ledger.store``) and settings. Imports no
Kafka and no FastAPI: edges (``consumers``) and the read side (``projections``)
depend on this package, never the other way round.
"""
