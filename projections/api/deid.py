"""De-identification: stable keyed pseudonyms for patients, and free text withheld.

Minimum necessary (DOMAIN.md §8): auditors and admins get a patient *token* instead of
the patient id — ``pt_`` + the first 128 bits of HMAC-SHA256(key, facility ∥ patient), so
the same patient always has the same token under one key and nobody without the key can
compute or invert it — and no free text (alarm text, override reasons, notes), no bed,
no encounter id. Safety officers see identified data. Every patient a response mentions
passes through :class:`Disclosure`, which is also how the read audit learns which
patients a request touched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict
from typing import Any

from projections.api.audit import AccessContext
from projections.api.queries import Pool

TOKEN_PATTERN = r"^pt_[0-9a-f]{32}$"
_TOKEN = re.compile(TOKEN_PATTERN)
_CACHE_SIZE = 200_000
# Keys in event data / evidence documents whose values are free text or direct identifiers.
_DROPPED_KEYS = frozenset({"text", "reason_text", "note", "bed", "encounter_id", "value_text"})
# `reason` is free text except for the pause reasons EVENTS.md enumerates.
_CODED_REASONS = frozenset({"clinician", "alarm", "between_doses", "switching_source", "unknown"})


def is_token(value: str) -> bool:
    return _TOKEN.match(value) is not None


class Pseudonyms:
    """Tokens under one key; token → patient resolution for tokens this API handed out."""

    def __init__(self, key: bytes, fingerprint: str, pool: Pool | None = None):
        self._key = key
        self.fingerprint = fingerprint
        self.pool = pool
        self._tokens: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._registered: OrderedDict[str, None] = OrderedDict()
        self._resolved: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def token(self, facility_id: str, patient_id: str) -> str:
        pair = (facility_id, patient_id)
        token = self._tokens.get(pair)
        if token is None:
            # \x1f (unit separator) cannot occur in ids, so (a, bc) and (ab, c) never collide.
            message = f"{facility_id}\x1f{patient_id}".encode()
            token = "pt_" + hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]
            _remember(self._tokens, pair, token)
            # A token handed out is one the caller may send back: resolve it from memory.
            _remember(self._resolved, token, pair)
        return token

    def needs_registration(self, token: str) -> bool:
        return token not in self._registered

    def registered(self, tokens: list[str]) -> None:
        for token in tokens:
            _remember(self._registered, token, None)

    def cached(self, token: str) -> tuple[str, str] | None:
        return self._resolved.get(token)

    def learned(self, token: str, pair: tuple[str, str]) -> None:
        """A token resolved elsewhere (inside a query): it is registered, by definition."""
        _remember(self._resolved, token, pair)
        _remember(self._registered, token, None)

    async def resolve(self, token: str) -> tuple[str, str] | None:
        """``(facility_id, patient_id)`` behind a token this API issued under this key."""
        cached = self._resolved.get(token)
        if cached is not None:
            return cached
        if self.pool is None or not is_token(token):
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT facility_id, patient_id FROM api_pseudonyms"
                " WHERE token = %s AND key_fingerprint = %s",
                (token, self.fingerprint),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        pair = (row["facility_id"], row["patient_id"])
        self.learned(token, pair)
        return pair


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


class Disclosure:
    """What one request may show; records every patient it shows in the access context."""

    def __init__(self, access: AccessContext, pseudonyms: Pseudonyms, identified: bool):
        self.access = access
        self.pseudonyms = pseudonyms
        self.identified = identified

    @property
    def deidentified(self) -> bool:
        return not self.identified

    def patient(self, facility_id: str | None, patient_id: str | None) -> str | None:
        """The patient as this caller may see it: the id, or its token."""
        if patient_id is None:
            return None
        facility = facility_id or "default"
        self.access.touch(facility, patient_id)
        if self.identified:
            return patient_id
        token = self.pseudonyms.token(facility, patient_id)
        if self.pseudonyms.needs_registration(token):
            self.access.new_tokens[token] = (facility, patient_id)
        return token

    def text(self, value: Any) -> Any:
        """Free text: shown to identified roles only."""
        return value if self.identified else None

    def scrub(self, document: Any, facility_id: str | None, patient_id: str | None = None) -> Any:
        """A JSON document (event data, state, evidence) as this caller may see it."""
        if self.identified or document is None:
            return document
        token = self.patient(facility_id, patient_id) if patient_id else None
        return self._scrub(document, facility_id or "default", patient_id, token)

    def _scrub(self, value: Any, facility: str, patient_id: str | None, token: str | None) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if key in _DROPPED_KEYS or (key == "reason" and item not in _CODED_REASONS):
                    continue
                if key == "patient_id" and isinstance(item, str):
                    out[key] = self.patient(facility, item)
                else:
                    out[key] = self._scrub(item, facility, patient_id, token)
            return out
        if isinstance(value, list):
            return [self._scrub(item, facility, patient_id, token) for item in value]
        if isinstance(value, str) and patient_id and token and patient_id in value:
            # Generated summaries name the patient; the token takes the id's place.
            return value.replace(patient_id, token)
        return value

    def redact(self, value: str | None, patients: list[tuple[str, str]]) -> str | None:
        """A string that may name the given patients, with their ids replaced by tokens."""
        if value is None or self.identified:
            return value
        for facility, patient_id in patients:
            if patient_id in value:
                value = value.replace(patient_id, self.pseudonyms.token(facility, patient_id))
        return value
