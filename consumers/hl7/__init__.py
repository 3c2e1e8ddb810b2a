"""The HL7 v2 edge: IHE PCD messages translated into the same typed v1 events.

Pump gateways and interface engines speak HL7 v2 per the IHE Patient Care Device profiles;
this package turns their messages into contract events at the edge (ARCHITECTURE.md
principle 2), on top of python-hl7 (``hl7``) — fields are never split by hand.

Reading order:

* ``cleanup`` (messy input → segment lists), ``view`` (safe field reads), ``timestamps``
  (DTM with offsets; the no-offset rule), ``mdc`` and ``units`` (nomenclature, MDC/UCUM),
  ``observations`` and ``containment`` (OBX → both pump containment trees), ``groups``;
* ``routing`` (MSH-21 OID allow-list, then MSH-9) and ``config``;
* one translator per profile: ``pcd01`` (+ ``pcd01_derive``), ``pcd03``, ``pcd04``,
  ``pcd10``; ``context`` (event ids, validation) and ``outcome`` (events / no event /
  dead letter, with everything dropped and repaired);
* ``translator.Session`` — the entry point; never raises for anything in the input;
* transports: ``ack`` (MSH-15/16, original and enhanced mode), ``mllp`` (asyncio listener,
  TLS optional), ``sinks`` (Kafka or ledger hand-off), ``kafka_hook`` (``ledger consume``
  on the raw HL7 topic); ``outbound`` renders ``program.auto_requested`` as RGV^O15.

``docs/hl7.md`` has the mapping table and the list of quirks handled.
"""

from consumers.hl7.config import Hl7Config
from consumers.hl7.outcome import DeadLetter, Dropped, Translation
from consumers.hl7.translator import Session

__all__ = ["DeadLetter", "Dropped", "Hl7Config", "Session", "Translation"]
