"""Authentication, roles, strict query strings and the audit hook, in one route class.

:class:`SecuredRoute` wraps FastAPI's own request handler, so for every protected
operation, in this order and *before* FastAPI parses parameters or a body:

1. a missing or unknown bearer token is a 401 (``WWW-Authenticate: Bearer``);
2. a role the operation does not allow is a 403 (audited when the operation is);
3. a query parameter the operation does not declare is a 422 (typos must not silently
   widen a query);

then the handler runs, and for audited operations the access record is written before
the response leaves (a failed audit write turns the response into a 503: no unaudited
disclosure). Roles and auditing are declared per operation with :func:`secured`, which
also documents them in OpenAPI (``x-roles``, ``x-audited``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import psycopg
from fastapi import HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from psycopg_pool import PoolTimeout

from projections.api.audit import AccessContext
from projections.api.fastpath import compile_handler
from projections.api.keys import Role
from projections.api.models import Problem

log = logging.getLogger(__name__)

#: Published as the ``bearer`` security scheme; never raises (SecuredRoute decides).
bearer = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="An API key created with `ledger api-key create --role ROLE`")

#: Errors that mean "cannot answer now" (503), not "bug" (500): the database is unreachable
#: or busy, or a projection has not created its view yet.
UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError, PoolTimeout, psycopg.errors.UndefinedTable,
)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The request body could not be parsed"},
    401: {"model": Problem, "description": "Missing or unknown API key"},
    403: {"model": Problem, "description": "The key's role may not use this operation"},
    503: {"model": Problem, "description": "Database or audit log unavailable"},
}


def secured(
    roles: Iterable[Role],
    *,
    audited: bool,
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator: who may call it, and whether it is audited."""
    return {
        "openapi_extra": {"x-roles": [r.value for r in roles], "x-audited": audited},
        "responses": {**_ERRORS, **(responses or {})},
    }


def _query_names(dependant: Dependant) -> frozenset[str]:
    """Every query parameter an operation declares, through its dependencies."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class SecuredRoute(APIRoute):
    """An APIRoute whose handler authenticates, authorises and audits (see module doc)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        extra = self.openapi_extra or {}
        if "x-roles" not in extra:
            return handler
        handler = compile_handler(self, handler)
        roles = frozenset(Role(r) for r in extra["x-roles"])
        audited = bool(extra.get("x-audited"))
        endpoint = self.path
        allowed_query = _query_names(self.dependant)

        async def secured_handler(request: Request) -> Response:
            services = request.app.state.services
            principal = await services.keys.authenticate(request.headers.get("authorization"))
            if principal is None:
                return _problem(401, "a valid API key is required",
                                {"WWW-Authenticate": 'Bearer realm="ledger"'})
            supplied = request.headers.get("x-request-id", "")
            access = AccessContext(
                principal=principal, method=request.method, endpoint=endpoint,
                path=request.url.path, query=request.url.query,
            )
            if _REQUEST_ID.match(supplied):
                access.request_id = supplied
            request.state.access = access
            if principal.role not in roles:
                response: Response = _problem(
                    403, f"role {principal.role.value} may not use {endpoint}")
            elif unknown := sorted(set(request.query_params) - allowed_query):
                response = JSONResponse(status_code=422, content={"detail": [
                    {"type": "extra_forbidden", "loc": ["query", name],
                     "msg": "unknown query parameter", "input": request.query_params[name]}
                    for name in unknown]})
            else:
                try:
                    response = await handler(request)
                except HTTPException as exc:
                    await _audit_failure(services, access, audited, exc.status_code)
                    raise
                except RequestValidationError:
                    await _audit_failure(services, access, audited, 422)
                    raise
                except Exception as exc:
                    status = (503 if isinstance(exc, UNAVAILABLE)
                              else 422 if isinstance(exc, psycopg.DataError) else 500)
                    await _audit_failure(services, access, audited, status)
                    raise
            if audited:
                try:
                    await services.audit.record(access, response.status_code)
                except Exception:
                    log.exception("access record not written; response withheld")
                    return _problem(503, "the access could not be audited; nothing was disclosed")
                services.pseudonyms.registered(list(access.new_tokens))
            response.headers["X-Request-ID"] = access.request_id
            return response

        return secured_handler


async def _audit_failure(services: Any, access: AccessContext, audited: bool, status: int) -> None:
    """Record a refused or failed request; never mask the original error."""
    if not audited:
        return
    try:
        await services.audit.record(access, status)
    except Exception:
        log.exception("access record for a failed request not written")
