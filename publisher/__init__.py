"""The publishers: the edge that sends the outboxes the projections write.

``ledger publish-docs`` runs :class:`publisher.loop.Publisher` over the EHR documentation
outbox with a sink — a FHIR R4 HTTP server (:mod:`publisher.fhir_http`) or the Kafka topic
``infusion.documentation.v1`` (:mod:`publisher.kafka_sink`). ``ledger publish-findings``
runs the same loop over the discrepancy engine's S1 pages (:mod:`publisher.pages`) to a
webhook (:mod:`publisher.webhook`) and/or the Kafka topic ``infusion.discrepancies.v1``.
A :class:`publisher.feed.Feed` is what differs between the two outboxes.

This lives outside ``projections/`` on purpose: projections only *write* an outbox (in
their batch transaction), so replaying or rebuilding them can never send anything; sending,
retrying and recording acknowledgements happen here.

Delivery is at least once, in outbox order, with the acknowledgement recorded after the
target confirmed. A crash between the two re-sends one row, which the target absorbs:
FHIR conditional interactions keyed by the entry's stable identifier (create with
``If-None-Exist``, then conditional update); Kafka consumers dedupe on the ``x-entry-id`` /
``x-revision`` headers (documentation) or the ``idempotency-key`` header (pages); the
webhook on its ``Idempotency-Key`` header (the finding id).
"""
