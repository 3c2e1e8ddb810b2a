"""A realistic, deterministic mix of v1 events for the benchmarks (no wall clock, no randomness
beyond a seeded generator): ~60% status telemetry, the rest orders, programming, delivery,
DERS, alarms and documentation, spread over many pumps, channels, orders and patients."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

NAMESPACE = uuid.UUID("0d9b6b7e-3a5e-4a55-9b59-3f4cf1c3a001")
START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def _q(value: str, unit: str) -> dict[str, str]:
    return {"value": value, "unit": unit}


def _ts(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def events(count: int, *, pumps: int = 400, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``count`` wire-format events (dicts), as producers would send them."""
    rng = random.Random(seed)
    for n in range(count):
        pump = rng.randrange(pumps)
        channel = "AB"[n % 2]
        patient = f"MRN{pump:06d}"
        order = f"ORD-{pump:05d}-{channel}"
        at = START + timedelta(milliseconds=n * 37)
        envelope: dict[str, Any] = {
            "event_id": str(uuid.uuid5(NAMESPACE, f"{seed}:{n}")),
            "schema_version": 1,
            "occurred_at": _ts(at),
            "received_at": _ts(at + timedelta(milliseconds=120)),
            "source": {"system": f"gw-{pump % 4}", "kind": "pump_gateway",
                       "message_id": f"M{n}"},
            "subject": {"facility_id": "GH", "patient_id": patient, "pump_id": f"PUMP-{pump:04d}",
                        "channel": channel, "order_id": order},
        }
        roll = rng.random()
        rate = f"{rng.randrange(10, 2500) / 10:.1f}"
        if roll < 0.60:
            envelope["type"] = "infusion.status_reported"
            envelope["data"] = {
                "state": "infusing", "rate": _q(rate, "mL/h"),
                "volume_infused": _q(f"{rng.randrange(0, 9000) / 10:.1f}", "mL"),
                "vtbi_remaining": _q(f"{rng.randrange(0, 5000) / 10:.1f}", "mL"),
                "time_remaining": _q(str(rng.randrange(1, 600)), "min"),
            }
        elif roll < 0.70:
            envelope["type"] = "infusion.rate_changed"
            envelope["data"] = {"new_rate": _q(rate, "mL/h"), "previous_rate": _q("14.4", "mL/h"),
                                "initiated_by": "manual"}
        elif roll < 0.76:
            envelope["type"] = "program.confirmed"
            envelope["data"] = {
                "mode": "auto", "library_mode": "library", "rate": _q(rate, "mL/h"),
                "medication": {"code": "5224", "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                               "name": "heparin"},
                "concentration": {"amount": _q("25000", "[iU]"), "volume": _q("250", "mL")},
                "dose": _q("18", "[iU]/kg/h"), "dosing_weight": _q("80", "kg"),
                "care_area": "ICU", "library_version": "2026.02",
            }
        elif roll < 0.82:
            envelope["type"] = "alarm.raised"
            envelope["subject"]["alarm_id"] = f"AL-{n}"
            envelope["data"] = {"code": "MDC_EVT_FLUID_LINE_OCCL", "priority": "high",
                                "text": "Occlusion downstream", "kind": "technical"}
        elif roll < 0.88:
            envelope["type"] = "order.placed"
            envelope["source"]["kind"] = "ehr"
            envelope["data"] = {
                "medication": {"code": "5224", "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                               "name": "heparin"},
                "concentration": {"amount": _q("25000", "[iU]"), "volume": _q("250", "mL")},
                "dose": _q("18", "[iU]/kg/h"), "dosing_weight": _q("80", "kg"),
                "route": "IV", "high_alert": True,
            }
        elif roll < 0.94:
            envelope["type"] = "documentation.validated"
            envelope["source"]["kind"] = "ehr"
            envelope["data"] = {"observed_at": _ts(at), "rate": _q(rate, "mL/h"),
                                "volume_infused": _q("120.5", "mL")}
        else:
            envelope["type"] = "ders.limit_alert_raised"
            envelope["data"] = {"alert_id": f"DA-{n}", "limit_kind": "soft", "parameter": "rate",
                                "bound": "upper", "limit": _q("25", "mL/h"),
                                "programmed": _q(rate, "mL/h")}
        yield envelope


def ndjson_lines(count: int, **kwargs: Any) -> list[bytes]:
    return [json.dumps(e).encode() for e in events(count, **kwargs)]
