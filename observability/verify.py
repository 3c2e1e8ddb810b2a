"""Publishing the result of ``ledger verify`` to the metrics of the long-running processes.

``ledger verify`` is a batch job (a CronJob in Kubernetes): it is gone before Prometheus
could scrape it. Its summary is therefore written to a small JSON file that every
process's :class:`observability.collectors.VerifyCollector` reads (compose shares it on a
volume), and, when ``LEDGER_METRICS_PUSHGATEWAY_URL`` is set, pushed to a Pushgateway —
the Prometheus way for batch jobs. Neither may fail the verify itself: a tamper check
whose result could not be published is still a tamper check.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, push_to_gateway
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ledger.settings import LedgerSettings
from observability.collectors import verify_families

log = logging.getLogger(__name__)

PUSH_JOB = "ledger_verify"


def verify_result_path(settings: LedgerSettings) -> Path:
    return settings.verify_result_file or settings.data_dir / "verify-last.json"


def record_verify(
    summary: Mapping[str, Any],
    settings: LedgerSettings,
    *,
    duration_seconds: float | None = None,
    finished_at: float | None = None,
) -> dict[str, Any]:
    """Record a ``VerifyReport.summary()``; returns what was recorded."""
    result = {
        "finished_at": time.time() if finished_at is None else finished_at,
        "ok": 1 if summary.get("ok") else 0,
        "problems": int(summary.get("problems") or 0),
        "verified_events": int(summary.get("verified_events") or 0),
        "unanchored_events": int(summary.get("unanchored_events") or 0),
        "checkpoints": int(summary.get("checkpoints") or 0),
        "duration_seconds": duration_seconds,
    }
    path = verify_result_path(settings)
    try:
        _write_atomically(path, json.dumps(result))
    except OSError as exc:
        log.warning("verify result not recorded in %s: %s", path, exc)
    if settings.metrics_pushgateway_url:
        _push(settings.metrics_pushgateway_url, result)
    return result


def _write_atomically(path: Path, text: str) -> None:
    # Readers scrape at any moment: they must see the old file or the new one, never half.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".verify-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Result(Collector):
    def __init__(self, result: Mapping[str, Any]):
        self.result = result

    def collect(self) -> Iterable[Metric]:
        return list(verify_families(self.result))


def _push(url: str, result: Mapping[str, Any]) -> None:
    registry = CollectorRegistry()
    registry.register(_Result(result))
    try:
        push_to_gateway(url, job=PUSH_JOB, registry=registry, timeout=10)
    except OSError as exc:
        log.warning("verify result not pushed to the Pushgateway: %s", type(exc).__name__)
