"""A lean request handler for hot read routes: FastAPI's own validation, less of its overhead.

FastAPI solves an operation's parameters anew for every request, walking each parameter's
type annotation each time; for the patient-history list that walk cost about 0.2 ms, more
than the query. For an operation marked :func:`responds_directly` (its endpoint always
returns a ``Response``), :func:`compile_handler` resolves once, at start-up, where each
parameter comes from, then per request fetches the raw values and validates each with
*FastAPI's own* field (``ModelField.validate``): the same coercion, the same constraints,
the same 422 errors. The dependencies such an operation may use are the API's cheap
``async`` request lookups (services, access, disclosure) and the ``bearer`` security
scheme, which exists for the OpenAPI document (authentication is SecuredRoute's).

Anything else — a body, headers or cookies as parameters, another dependency, a list
parameter, an alias choice, dependency overrides at run time, a FastAPI whose internals
moved — keeps FastAPI's handler, so this is an optimisation, never a behaviour of its own.
tests/integration/test_api_fastpath.py compares both handlers on valid and invalid requests.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase

from projections.api.deps import get_access, get_disclosure, get_services

log = logging.getLogger(__name__)

#: Read per request; the test that compares this handler with FastAPI's switches it off.
ENABLED = True
_CHEAP_DEPENDENCIES = frozenset({get_services, get_access, get_disclosure})
_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, frozenset)
_MARK = "__responds_directly__"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
F = TypeVar("F", bound=Callable[..., Any])


def responds_directly(endpoint: F) -> F:
    """Mark an endpoint that always returns a ``Response`` (lists rendered by ``render``)."""
    setattr(endpoint, _MARK, True)
    return endpoint


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    alias: str
    where: str  # "query" or "path"
    field: Any  # FastAPI's ModelField
    required: bool
    default: Any
    copy_default: bool
    validate_default: bool


def compile_handler(route: APIRoute, fallback: Handler) -> Handler:
    """The lean handler for ``route``, or ``fallback`` when it does not qualify."""
    if not getattr(route.endpoint, _MARK, False):
        return fallback
    try:
        plan = _plan(route)
    except Exception:  # FastAPI internals this relies on moved: stay on FastAPI's path
        log.warning("no lean handler for %s; using FastAPI's", route.path, exc_info=True)
        return fallback
    if plan is None:
        return fallback
    params, lookups, request_name, missing_error = plan
    endpoint = route.endpoint

    async def handler(request: Request) -> Response:
        if not ENABLED or request.app.dependency_overrides:
            return await fallback(request)
        values: dict[str, Any] = {}
        errors: list[Any] = []
        query = request.query_params
        path = request.path_params
        for param in params:
            raw = (query if param.where == "query" else path).get(param.alias)
            loc = (param.where, param.alias)
            if raw is None:
                if param.required:
                    errors.append(missing_error(loc=loc))
                    continue
                value = copy.deepcopy(param.default) if param.copy_default else param.default
                if not param.validate_default:
                    values[param.name] = value
                    continue
                raw = value
            value, problems = param.field.validate(raw, values, loc=loc)
            if problems:
                errors.extend(problems)
            else:
                values[param.name] = value
        if errors:
            raise RequestValidationError(errors, body=None)
        for name, lookup in lookups:
            values[name] = await lookup(request)
        if request_name is not None:
            values[request_name] = request
        response = await endpoint(**values)
        if not isinstance(response, Response):
            raise TypeError(f"{route.path}: a responds_directly endpoint returned "
                            f"{type(response).__name__}, not a Response")
        return response

    return handler


def _plan(route: APIRoute) -> tuple[list[_Param], list[tuple[str, Any]], str | None, Any] | None:
    from fastapi._compat import field_annotation_is_sequence, get_missing_field_error
    from fastapi.params import Path, Query

    dependant = route.dependant
    if not inspect.iscoroutinefunction(route.endpoint) or _has_other_inputs(dependant):
        return None
    lookups: list[tuple[str, Any]] = []
    for sub in dependant.dependencies:
        if sub.call in _CHEAP_DEPENDENCIES and sub.name is not None and not _has_inputs(sub):
            lookups.append((sub.name, sub.call))
        elif isinstance(sub.call, SecurityBase) and sub.name is None:
            continue  # the scheme documents authentication; SecuredRoute performs it
        else:
            return None
    params: list[_Param] = []
    for where, fields, kind in (("path", dependant.path_params, Path),
                                ("query", dependant.query_params, Query)):
        for field in fields:
            info = field.field_info
            alias = field.alias
            if (not isinstance(info, kind) or field_annotation_is_sequence(info.annotation)
                    or info.validation_alias not in (None, alias)
                    or getattr(field, "validation_alias", None) not in (None, alias)):
                return None
            required = info.is_required()
            default = None if required else field.default
            params.append(_Param(
                name=field.name, alias=alias, where=where, field=field, required=required,
                default=default, copy_default=not isinstance(default, _IMMUTABLE),
                validate_default=bool(info.validate_default),
            ))
    return params, lookups, dependant.request_param_name, get_missing_field_error


def _has_inputs(dependant: Any) -> bool:
    return bool(dependant.path_params or dependant.query_params or dependant.dependencies
                or _has_other_inputs(dependant))


def _has_other_inputs(dependant: Any) -> bool:
    return bool(
        dependant.header_params or dependant.cookie_params or dependant.body_params
        or dependant.http_connection_param_name or dependant.websocket_param_name
        or dependant.response_param_name or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    )
