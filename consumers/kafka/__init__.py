"""The Kafka ingestion edge: exactly-once consumption into the ledger, with dead-lettering.

``consumer.KafkaIngestor`` is the loop. Around it: ``config`` (client settings from the
ledger's settings), ``batch`` (a poll result decoded, validated and classified),
``deadletter`` (the dead-letter format and confirmed produce), ``deadletter_reader``
(reading the dead-letter topic back and re-submitting), ``rebalance`` (seeking every
assigned partition to its PostgreSQL position), ``retry`` (bounded back-off for
infrastructure failures), ``metrics`` (counters for operations), ``keys`` (the message key
producers must use) and ``errors``.
"""
