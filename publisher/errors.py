"""Errors of the publisher: the root, and the one that means "try again later"."""

from __future__ import annotations

from ledger.errors import LedgerError


class PublishError(LedgerError):
    """The publisher cannot go on (configuration, another publisher holding the target)."""


class TargetUnavailable(PublishError):
    """The target did not confirm a delivery (network, timeout, 5xx, auth): retry it, in
    order; nothing after it is sent meanwhile."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code
