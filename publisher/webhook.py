"""Sending S1 pages to a webhook (the paging system, an on-call integration) over HTTP.

Each page is one ``POST`` of the page JSON (:attr:`publisher.pages.PageRow.message`) with
``Idempotency-Key: <finding id>``: delivery is at least once (a crash after the receiver
answered and before the delivery row committed re-sends the page), so the receiver drops a
key it has already seen and the safety officer is paged once per finding.

Answers: 2xx acknowledged; 400, 413, 415 and 422 rejected for good (the receiver will
never take this body: recorded with its answer and logged as an error, and later pages
still go out rather than queueing behind it); anything else — network errors, timeouts,
401/403/404, 408, 409 (the same key still in flight), 429, 5xx — is retried by the loop
with exponential back-off, in order.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

from publisher.errors import TargetUnavailable
from publisher.feed import Delivery
from publisher.pages import PageRow

REJECTED = frozenset({400, 413, 415, 422})
_DETAIL_LIMIT = 2000


class WebhookSink:
    """POSTs each page to ``url`` (``https://paging.example.org/hooks/ledger``)."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"findings webhook URL {url!r} is not an http(s) URL")
        self.url = url
        self.target = f"http:{_without_secrets(parsed)}"
        self.timeout = timeout
        self._token = token
        self._opener = urllib.request.build_opener()

    def deliver(self, rows: list[PageRow]) -> Iterator[Delivery[PageRow]]:
        for row in rows:
            yield self._send(row)

    def close(self) -> None:
        return None

    def request_for(self, row: PageRow) -> urllib.request.Request:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Idempotency-Key": row.finding_id, "X-Ledger-Outbox-Id": row.outbox_id,
                   "X-Ledger-Outbox-Position": str(row.seq),
                   "User-Agent": "infusion-ledger publish-findings"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return urllib.request.Request(self.url, data=row.message, headers=headers,
                                      method="POST")

    def _send(self, row: PageRow) -> Delivery[PageRow]:
        request = self.request_for(row)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                response.read()
        except urllib.error.HTTPError as error:
            detail = error.read(_DETAIL_LIMIT).decode("utf-8", "replace")
            if error.code in REJECTED:
                return Delivery(row, "rejected", error.code, detail or error.reason)
            raise TargetUnavailable(f"POST {self.target}: HTTP {error.code} {error.reason}",
                                    error.code) from error
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            raise TargetUnavailable(f"POST {self.target}: {error}") from error
        if not 200 <= status < 300:
            raise TargetUnavailable(f"POST {self.target}: HTTP {status}", status)
        return Delivery(row, "acknowledged", status)


def _without_secrets(url: urllib.parse.SplitResult) -> str:
    """The URL without user info or query, which may carry credentials: it names the
    target in every delivery row, in logs and in the per-target lock."""
    host = url.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if url.port:
        host += f":{url.port}"
    return urllib.parse.urlunsplit((url.scheme, host, url.path, "", ""))
