"""Sending outbox rows to a FHIR R4 server, idempotently.

The EHR owns its resource ids, so every interaction is *conditional* on the entry's stable
identifier (``urn:ietf:rfc:3986|urn:uuid:<entry id>``) rather than on our id:

* an entry's first version: ``POST [base]/MedicationAdministration`` with
  ``If-None-Exist: identifier=…`` — a re-send after a crash finds the resource and creates
  nothing (200 instead of 201);
* later versions: ``PUT [base]/MedicationAdministration?identifier=…`` (conditional update:
  updates the one match; re-sending the same version changes nothing).

The body is the stored resource without ``id`` (a conditional interaction must not carry
an id that disagrees with the server's), re-serialised canonically with its decimals as
written. Answers: 2xx acknowledged; 400, 412 and 422 rejected for good (the content or the
match is wrong: recorded with the server's OperationOutcome, and the feed moves on);
anything else — network errors, timeouts, 401/403/404, 408, 409, 429, 5xx — is retried.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from projections.documentation.fhir import URI, canonical_json
from publisher.errors import TargetUnavailable
from publisher.outbox import Delivery, OutboxRow

FHIR_JSON = "application/fhir+json"
REJECTED = frozenset({400, 412, 422})
_DETAIL_LIMIT = 2000


class FhirHttpSink:
    """A FHIR server at ``base_url`` (``https://ehr.example.org/fhir``)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0):
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"docs_fhir_base_url {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.target = f"http:{self.base_url}"
        self.timeout = timeout
        self._token = token
        self._opener = urllib.request.build_opener()

    def deliver(self, rows: list[OutboxRow]) -> Iterator[Delivery]:
        for row in rows:
            yield self._send(row)

    def close(self) -> None:
        return None

    def request_for(self, row: OutboxRow) -> urllib.request.Request:
        identifier = f"{URI}|urn:uuid:{row.entry_id}"
        url = f"{self.base_url}/{row.resource_type}"
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON,
                   "Prefer": "return=minimal", "X-Ledger-Outbox-Position": str(row.seq)}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if row.first_revision:
            method = "POST"
            headers["If-None-Exist"] = f"identifier={identifier}"
        else:
            method = "PUT"
            url += "?" + urllib.parse.urlencode({"identifier": identifier})
        return urllib.request.Request(url, data=_body(row.resource), headers=headers,
                                      method=method)

    def _send(self, row: OutboxRow) -> Delivery:
        request = self.request_for(row)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                location = response.headers.get("Location") or \
                    response.headers.get("Content-Location")
                response.read()
        except urllib.error.HTTPError as error:
            detail = error.read(_DETAIL_LIMIT).decode("utf-8", "replace")
            if error.code in REJECTED:
                return Delivery(row, "rejected", error.code, detail or error.reason)
            raise TargetUnavailable(f"{request.method} {request.full_url}: HTTP {error.code}"
                                    f" {error.reason}", error.code) from error
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            raise TargetUnavailable(f"{request.method} {request.full_url}: {error}") from error
        if not 200 <= status < 300:
            raise TargetUnavailable(f"{request.method} {request.full_url}: HTTP {status}",
                                    status)
        return Delivery(row, "acknowledged", status, None, location)


def _body(resource: str) -> bytes:
    parsed: dict[str, Any] = json.loads(resource, parse_float=Decimal)
    parsed.pop("id", None)
    return canonical_json(parsed).encode()
