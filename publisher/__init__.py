"""The documentation publisher: the edge that sends the EHR documentation outbox out.

``ledger publish-docs`` runs :class:`publisher.loop.Publisher` with a sink — a FHIR R4 HTTP
server (:mod:`publisher.fhir_http`) or the Kafka topic ``infusion.documentation.v1``
(:mod:`publisher.kafka_sink`). It lives outside ``projections/`` on purpose: projections
only *write* the outbox (in their batch transaction), so replaying or rebuilding them can
never send anything; sending, retrying and recording acknowledgements happen here.

Delivery is at least once, in outbox order, with the acknowledgement recorded after the
target confirmed. A crash between the two re-sends one version, which the target absorbs:
HTTP uses FHIR conditional interactions keyed by the entry's stable identifier (create
with ``If-None-Exist``, then conditional update), Kafka consumers dedupe on the
``x-entry-id`` / ``x-revision`` headers.
"""
