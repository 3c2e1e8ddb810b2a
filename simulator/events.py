"""Building v1 envelopes: ids, the three clocks, sources, quantities, Kafka keys.

Every event the simulator produces passes through :meth:`Emitter.emit`. It assigns a
deterministic ``event_id`` (uuid5 of the seed and a counter), stamps ``occurred_at`` from
the *source's* clock (a pump's, possibly skewed; the EHR's, in local time) and
``received_at`` from the edge's (true time plus latency, later when the pump's link is
down or the message is delayed), serialises the envelope once, and hands the line to the
arrival-ordered output. Transport faults (duplicates, delays, malformed copies) are
applied by :class:`simulator.transport.Faults`.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from simulator import clock
from simulator.sinks import OrderedOutput

if TYPE_CHECKING:
    from simulator.hospital import Pump
    from simulator.transport import Faults


class Ref(NamedTuple):
    """What the truth needs to know about an emitted event."""

    event_id: str
    occurred_at: str
    at_ms: int  # true (simulated) time of the fact
    type: str


@dataclass(frozen=True)
class Src:
    system: str
    kind: str
    prefix: str
    device: bool  # stamped by a pump's own clock


GATEWAY = Src("alaris-gw-1", "pump_gateway", "GW", True)
EHR = Src("ehr-adt-orders", "ehr", "EHR", False)
BCMA = Src("bcma-1", "bcma", "BCMA", False)
PHARMACY = Src("pharmacy-1", "pharmacy", "RX", False)

_BY_PATIENT = frozenset({"bcma.scan_recorded", "patient.located"})


def kafka_key(event_type: str, subject: dict[str, str]) -> str:
    """The message key EVENTS.md "Transport" prescribes for ``event_type``."""
    if event_type.startswith(("order.", "documentation.")):
        return subject["order_id"]
    if event_type in _BY_PATIENT:
        return subject["patient_id"]
    return subject["pump_id"]


def qty(value: Decimal | int, unit: str) -> dict[str, str]:
    """A wire Quantity; the value is written exactly, as a string, never as a float."""
    return {"value": format(value, "f") if isinstance(value, Decimal) else str(value),
            "unit": unit}


def compact(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the optional fields that are not known (None)."""
    return {k: v for k, v in data.items() if v is not None}


def uuid5_text(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``, several times faster (telemetry is hot)."""
    digest = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def namespace(run_key: str) -> uuid.UUID:
    """The uuid5 namespace of one run's event ids (see :func:`run_key`)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"infusion-ledger-simulator:{run_key}")


def run_key(seed: int, config_json: str) -> str:
    """The seed and a digest of the whole configuration: the same arguments give the same
    ids, and two different runs (another start day, another size) never share an id."""
    return f"{seed}:{hashlib.sha256(config_json.encode()).hexdigest()[:16]}"


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Line:
    """One rendered envelope; re-renderable with another arrival time and message id."""

    __slots__ = ("head", "src", "tail")

    def __init__(self, head: str, src: Src, tail: str):
        self.head, self.src, self.tail = head, src, tail

    def render(self, received: str | None, message_id: str) -> bytes:
        arrival = f',"received_at":"{received}"' if received is not None else ""
        return (f'{self.head}{arrival},"source":{{"system":"{self.src.system}",'
                f'"kind":"{self.src.kind}","message_id":"{message_id}"}}{self.tail}').encode()


class Emitter:
    def __init__(
        self, run_key: str, output: OrderedOutput, rng: random.Random, *,
        ehr_offset_minutes: int, pump_latency: tuple[int, int], ehr_latency: tuple[int, int],
    ):
        self._namespace = namespace(run_key).bytes
        self.output = output
        self.rng = rng
        self.ehr_offset = ehr_offset_minutes
        self.pump_latency = pump_latency
        self.ehr_latency = ehr_latency
        self.counter = 0
        self.message_counter = 0
        self.by_type: Counter[str] = Counter()  # live events (not the warm-start history)
        self.backfilled = 0
        self.faults: Faults | None = None

    def new_id(self) -> str:
        self.counter += 1
        return uuid5_text(self._namespace, str(self.counter))

    def message_id(self, src: Src) -> str:
        self.message_counter += 1
        return f"{src.prefix}-{self.message_counter:09d}"

    def emit(
        self, event_type: str, at_ms: int, subject: dict[str, str],
        data: dict[str, Any] | str, src: Src, *, actor: dict[str, str] | None = None,
        pump: Pump | None = None, backfill: bool = False, corrects: str | None = None,
        subject_json: str | None = None, key: str | None = None,
    ) -> Ref:
        """Emit one event whose fact happened at true time ``at_ms``.

        ``data`` may be given already rendered as JSON text (the telemetry fast path).
        """
        event_id = self.new_id()
        if src.device and pump is not None:
            occurred_ms, offset = at_ms + pump.offset_at(at_ms), 0
        else:
            occurred_ms, offset = at_ms, (0 if src.device else self.ehr_offset)
        occurred = clock.fmt(occurred_ms, offset)
        extra = f',"actor":{to_json(actor)}' if actor is not None else ""
        if corrects is not None:
            extra += f',"corrects_event_id":"{corrects}"'
        data_json = data if isinstance(data, str) else to_json(data)
        line = Line(
            f'{{"event_id":"{event_id}","type":"{event_type}","schema_version":1,'
            f'"occurred_at":"{occurred}"',
            src,
            f',"subject":{subject_json or to_json(subject)}{extra},"data":{data_json}}}',
        )
        ref = Ref(event_id, occurred, at_ms, event_type)
        if key is None:
            key = kafka_key(event_type, subject)
        message_id = self.message_id(src)
        if backfill:
            self.backfilled += 1
            self.output.push(at_ms, key, line.render(None, message_id), backfill=True)
            return ref
        self.by_type[event_type] += 1
        low, high = self.pump_latency if src.device else self.ehr_latency
        received_ms = at_ms + low + int(self.rng.random() * (high - low))
        if self.faults is not None:
            received_ms = self.faults.arrival(ref, pump, occurred_ms, received_ms)
        self.output.push(received_ms, key, line.render(clock.fmt(received_ms), message_id))
        if self.faults is not None:
            self.faults.after_emit(line, event_id, key, received_ms, src)
        return ref
