"""Structured logs: one JSON object per line, the same fields everywhere, no PHI, no secrets.

Every line carries ``ts`` (UTC, RFC 3339 with milliseconds), ``level``, ``logger``,
``message``, ``process`` (the ledger command: consume, project, serve, ...), ``pid`` and
``host``. Context that code passes as ``extra={...}`` is added only when its key is on
:data:`CONTEXT_FIELDS` (partition, batch, positions, counts, durations, ids of Kafka
records and projections — never patient data).

PHI policy (``docs/operations.md``):

* keys on :data:`PHI_FIELDS` are dropped at every level, whatever the value;
* at INFO and above, any other key not on :data:`CONTEXT_FIELDS` is dropped too, so a new
  ``extra`` cannot leak identifiers into production logs by accident; at DEBUG (an operator's
  deliberate choice, never the default) unknown keys are kept;
* exceptions carry their type, the first line of their message and the stack *frames*;
  the following lines of a message (where PostgreSQL puts ``DETAIL: Key (...)=(...)``,
  i.e. row values) are not logged;
* messages and values pass :func:`mask_secrets` (URL passwords, ``password=...``).

Log messages themselves are written by code; the rule for authors is to put identifiers
in no message at INFO and above — the formatter cannot recognise a patient's name.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

CONTEXT_FIELDS = frozenset({
    "event", "topic", "topics", "partition", "partitions", "offset", "batch", "batches",
    "records", "ingested", "duplicates", "conflicts", "rejected", "deadlettered", "lag",
    "ms", "duration_ms", "position", "positions", "from_position", "to_position", "head",
    "projection", "generation", "status", "group", "origin", "code", "kind", "count",
    "attempt", "delay_s", "error_type", "method", "route", "status_code", "port",
    "checkpoint", "verified_events", "problems", "ok", "rule_id", "severity", "finding_id",
    "message_control_id", "transaction", "outbox_id", "retries", "seconds", "operation",
    "attempts", "error",
})
PHI_FIELDS = frozenset({
    "patient", "patient_id", "mrn", "name", "given", "family", "birth_date", "dob", "sex",
    "address", "phone", "email", "encounter_id", "location", "bed", "room", "note", "text",
    "payload", "body", "raw", "message", "segment", "value", "data", "event_json",
    "clinician", "user", "actor", "actor_id",
})
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName",
}
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@", re.I)
_KEY_VALUE_SECRET = re.compile(
    r"(?P<key>\b[\w.-]*(?:password|passwd|secret|token|api[_-]?key)[\w.-]*\s*[=:]\s*)"
    r"(?P<quote>['\"]?)[^\s'\",;&]+(?P=quote)",
    re.I,
)
MASK = "***"


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs and ``password=``/``token: ...`` pairs."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _KEY_VALUE_SECRET.sub(lambda m: f"{m['key']}{m['quote']}{MASK}{m['quote']}", text)


class SecretMaskingFilter(logging.Filter):
    """For the text format: masks secrets in the rendered message (args included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str = "ledger"):
        super().__init__()
        self.process = process
        self.pid = os.getpid()
        self.host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            "process": self.process,
            "pid": self.pid,
            "host": self.host,
        }
        verbose = record.levelno < logging.INFO
        for key, value in vars(record).items():
            if key in _RESERVED or key in entry or key in PHI_FIELDS:
                continue
            if key in CONTEXT_FIELDS or verbose:
                entry[key] = _jsonable(value)
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, exc, tb = record.exc_info
            entry["error_type"] = exc_type.__name__
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            entry["error"] = mask_secrets(first_line)[:300]
            entry["stack"] = _frames(traceback.extract_tb(tb))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _frames(frames: Iterable[traceback.FrameSummary]) -> list[str]:
    # Where, not what: source lines and locals can hold values, file:line:function cannot.
    return [f"{f.filename}:{f.lineno}:{f.name}" for f in frames]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask_secrets(value)[:500]
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in list(value)[:50]]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in list(value.items())[:50]
                if str(k) not in PHI_FIELDS}
    return mask_secrets(str(value))[:500]


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(
    log_format: Literal["text", "json"] = "text",
    *,
    level: int = logging.INFO,
    process: str = "ledger",
    stream: Any = None,
) -> logging.Handler:
    """Make one stderr handler in the chosen format the root logger's console output."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        handler.addFilter(SecretMaskingFilter())
    root = logging.getLogger()
    # Replace the plain console handlers (logging.basicConfig's); keep anything else a host
    # installed on purpose, such as a file handler or pytest's capture handlers.
    for old in list(root.handlers):
        if type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
