"""Error root of the ``ledger`` package.

Every error the ledger raises on purpose derives from :class:`LedgerError`, so callers
(the CLI, the Kafka consumer, the API) can tell "the input or the ledger said no" apart
from programming errors. psycopg and eventsourcing errors are translated at the store
boundary into :class:`StoreUnavailable` (retryable infrastructure trouble) or left as
bugs.
"""

from __future__ import annotations

from dataclasses import dataclass


class LedgerError(Exception):
    """Root of all errors raised deliberately by the ledger."""


@dataclass(frozen=True)
class FieldError:
    """One reason an input was refused: where (a dotted field path), a stable code, why."""

    path: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message} [{self.code}]"


class ContractError(LedgerError):
    """The input does not satisfy the v1 wire contract (malformed, not clinically wrong)."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors) or "invalid event")

    @property
    def code(self) -> str:
        return self.errors[0].code if self.errors else "invalid"


class StoreUnavailable(LedgerError):
    """The database cannot be reached or refused the connection; retrying later may succeed."""


class MigrationError(LedgerError):
    """A migration could not be applied, or an applied migration file was changed."""


class ConfigurationError(LedgerError):
    """Settings are missing or contradictory."""
