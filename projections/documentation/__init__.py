"""The EHR documentation feed: chart-ready infusion entries, FHIR R4, outbox and reconciliation.

* ``fold`` / ``volumes`` / ``charting`` — pure folds: device entries from channel streams
  (start, rate changes, pause/resume, bolus, KVO, completion/stop, interval volumes) and
  documentation actions from order streams (validated, edited, entered manually, retracted);
* ``links`` / ``status`` — which action documents which entry, and the entry's resulting
  documentation status (proposed → validated / edited / retracted);
* ``fhir`` — the MedicationAdministration renderer and its canonical JSON;
* ``outbox`` / ``feed`` / ``reconcile`` — the durable, rebuild-proof outbox log, the cursor
  feed (and its FHIR Bundle form) over it, and the per-episode reconciliation and gaps;
* ``api`` — the FastAPI router for ``GET /v1/feed/documentation`` (mounted by the API app).

See docs/ehr-feed.md.
"""
