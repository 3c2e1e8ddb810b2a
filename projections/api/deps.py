"""What a request handler can ask for: the app's services, the caller, what it may see.

The services live on ``app.state`` (built in the lifespan, never at import time); the
access context is put on ``request.state`` by :class:`~projections.api.security.SecuredRoute`
once the caller is authenticated and authorised, so a handler that asks for it can rely
on both having happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from projections.api.audit import AccessContext, AuditLog
from projections.api.config import ApiConfig
from projections.api.deid import Disclosure, Pseudonyms, is_token
from projections.api.keys import KeyStore, Role
from projections.api.queries import Pool
from projections.api.writer import LedgerWriter

#: Roles that see identified patient-level data (DOMAIN.md §8: safety officers).
IDENTIFIED_ROLES = frozenset({Role.SAFETY_OFFICER})


@dataclass
class Services:
    config: ApiConfig
    pool: Pool
    keys: KeyStore
    audit: AuditLog
    pseudonyms: Pseudonyms
    writer: LedgerWriter
    cache: dict[str, Any] = field(default_factory=dict)


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker
# thread, and two thread hops per request cost more than the query they serve.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_access(request: Request) -> AccessContext:
    access: AccessContext = request.state.access
    return access


async def get_disclosure(request: Request) -> Disclosure:
    access: AccessContext = request.state.access
    identified = access.principal.role in IDENTIFIED_ROLES
    services: Services = request.app.state.services
    return Disclosure(access, services.pseudonyms, identified)


Svc = Annotated[Services, Depends(get_services)]
Access = Annotated[AccessContext, Depends(get_access)]
Disclose = Annotated[Disclosure, Depends(get_disclosure)]


async def resolve_patient(
    services: Services, disclosure: Disclosure, ref: str, facility: str | None
) -> tuple[str, str]:
    """``(facility_id, patient_id)`` for a patient reference from the request.

    A token (``pt_…``) works for every role. A raw patient id only for identified roles:
    an auditor probing raw ids could re-identify by trial, which is what break-glass is for.
    The patient counts as touched either way (the answer discloses something about them).
    """
    if is_token(ref):
        pair = await services.pseudonyms.resolve(ref)
        if pair is None:
            raise HTTPException(404, "unknown patient token")
        disclosure.access.touch(*pair)
        return pair
    if not disclosure.identified:
        raise HTTPException(
            403, "this role addresses patients by token; re-identification is break-glass"
        )
    pair = (facility or "default", ref)
    disclosure.access.touch(*pair)
    return pair


@dataclass(frozen=True)
class PatientFilter:
    """A patient condition for a query on a view with ``facility_id`` and ``patient_id``.

    A token this process has not resolved yet is resolved *inside* the query (two scalar
    subqueries on ``api_pseudonyms``), saving a round trip on the hot path; :meth:`settle`
    then records the patient as touched, or answers 404 for a token nobody was given.
    """

    ref: str
    pair: tuple[str, str] | None
    fingerprint: str

    @property
    def sql(self) -> str:
        if self.pair is not None:
            return "facility_id = %s AND patient_id = %s"
        lookup = "(SELECT {} FROM api_pseudonyms WHERE token = %s AND key_fingerprint = %s)"
        return (f"facility_id = {lookup.format('facility_id')}"
                f" AND patient_id = {lookup.format('patient_id')}")

    @property
    def params(self) -> tuple[str, ...]:
        if self.pair is not None:
            return self.pair
        return (self.ref, self.fingerprint, self.ref, self.fingerprint)

    async def settle(
        self, services: Services, disclosure: Disclosure, rows: list[dict[str, Any]]
    ) -> None:
        if self.pair is not None:
            return
        if rows:
            pair = (rows[0]["facility_id"], rows[0]["patient_id"])
            services.pseudonyms.learned(self.ref, pair)
        else:
            found = await services.pseudonyms.resolve(self.ref)
            if found is None:
                raise HTTPException(404, "unknown patient token")
            pair = found
        disclosure.access.touch(*pair)


async def patient_filter(
    services: Services, disclosure: Disclosure, ref: str, facility: str | None
) -> PatientFilter:
    """Like :func:`resolve_patient`, but leaves an unknown token to the query itself."""
    fingerprint = services.pseudonyms.fingerprint
    if is_token(ref):
        pair = services.pseudonyms.cached(ref)
        if pair is not None:
            disclosure.access.touch(*pair)
        return PatientFilter(ref, pair, fingerprint)
    return PatientFilter(ref, await resolve_patient(services, disclosure, ref, facility),
                         fingerprint)
