"""Errors of the Kafka edge, and which failures are infrastructure (retry) versus bugs (stop).

kafka-python and store errors are translated here, at the boundary. Infrastructure trouble
(PostgreSQL down, broker unreachable, a produce not confirmed) is retried with back-off and
never dead-lettered; anything else is a bug and stops the consumer without advancing a
position, so the batch is read again after the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from kafka.errors import KafkaError

from ledger.errors import LedgerError, StoreUnavailable


class IngestError(LedgerError):
    """Root of the errors raised deliberately by the Kafka edge."""


class BrokerUnavailable(IngestError):
    """The broker could not be reached, or did not confirm a write in time."""


class DeadLetterNotConfirmed(BrokerUnavailable):
    """Some dead letters were not confirmed by the broker; ``unconfirmed`` must be re-sent."""

    def __init__(self, message: str, unconfirmed: Sequence[Any]):
        super().__init__(message)
        self.unconfirmed = list(unconfirmed)


class Stopped(IngestError):
    """A stop was requested while waiting for infrastructure: the batch is abandoned whole."""


class DeadLetterNotFound(IngestError):
    """A dead-letter reference (``partition:offset`` or an origin) matches no message."""


# The store's own retries already ran when StoreUnavailable arrives; source_positions()
# reaches us untranslated, hence eventsourcing's connection errors here too.
_STORE_RETRYABLE: tuple[type[BaseException], ...] = (
    StoreUnavailable,
    OperationalError,
    InterfaceError,
)


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for failures that a later attempt may not have: retry, never dead-letter."""
    return isinstance(exc, (*_STORE_RETRYABLE, BrokerUnavailable, KafkaError, ConnectionError))


def broker_error(what: str, exc: BaseException) -> BrokerUnavailable:
    """A kafka-python error as this package's retryable error, naming what failed."""
    return BrokerUnavailable(f"{what}: {type(exc).__name__}: {exc}")
