"""Starlette and FastAPI: scope checks behind :class:`~datafold_auth.middleware.DatafoldAuthASGIMiddleware`.

FastAPI, as a dependency (it returns the identity)::

    from datafold_auth.permissions.starlette import install, require_scopes

    install(app)  # answers InsufficientScope as RFC 9457 problem+json

    @app.post("/api/items")
    async def create_item(who: Identity = Depends(require_scopes("write"))): ...

Without :func:`install`, FastAPI still answers 403 (its own ``{"detail": ...}`` body).

Starlette, as an endpoint decorator (answers the problem itself)::

    @requires_scopes("write")
    async def create_item(request): ...

With a ``datafold_auth_authorize`` hook registered (application code, which may
query a database), both run the check in Starlette's thread pool, so a slow
hook never holds up the event loop; without one the check runs inline.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import wire
from ..errors import DatafoldAuthError, PermissionDenied, Reason
from ..middleware._common import IDENTITY_KEY, Identity
from . import authorize_offloading, scopes_tuple


class InsufficientScope(PermissionDenied, HTTPException):
    """Raised by :func:`require_scopes`: a :class:`~datafold_auth.errors.PermissionDenied` that
    Starlette/FastAPI also treat as an HTTP 403 (or 401 for an unsigned request)."""

    def __init__(self, error: DatafoldAuthError) -> None:
        PermissionDenied.__init__(self, error.detail, error.reason)
        HTTPException.__init__(self, status_code=error.reason.status, detail=error.reason.value)


def problem_response(reason: Reason) -> Response:
    """The RFC 9457 answer for ``reason`` as a Starlette response."""
    status, headers, body = wire.problem(reason)
    return Response(body, status_code=status, headers=dict(headers))


async def problem_handler(request: Request, exc: Exception) -> Response:
    """An exception handler answering any :class:`~datafold_auth.errors.DatafoldAuthError` as problem+json."""
    reason = exc.reason if isinstance(exc, DatafoldAuthError) else Reason.INSUFFICIENT_SCOPE
    return problem_response(reason)


def install(app: Any) -> None:
    """Register :func:`problem_handler` for :class:`InsufficientScope` on a Starlette/FastAPI app."""
    app.add_exception_handler(InsufficientScope, problem_handler)


def require_scopes(*scopes: str) -> Callable[[Request], Awaitable[Identity]]:
    """A FastAPI dependency returning the identity when its key holds every scope.

    Raises:
        ValueError: no scope given.
    """
    required = scopes_tuple(scopes)

    async def dependency(request: Request) -> Identity:
        try:
            return await authorize_offloading(request.scope.get(IDENTITY_KEY), required, request, run_in_threadpool)
        except DatafoldAuthError as error:
            raise InsufficientScope(error) from None

    return dependency


def requires_scopes(
    *scopes: str,
) -> Callable[[Callable[[Request], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """A decorator for Starlette endpoints ``async def endpoint(request)``: answers
    ``403 insufficient_scope`` (``401 missing_signature`` when unsigned) itself.

    Raises:
        ValueError: no scope given.
    """
    required = scopes_tuple(scopes)

    def decorate(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(endpoint)
        async def wrapper(request: Request) -> Response:
            try:
                await authorize_offloading(request.scope.get(IDENTITY_KEY), required, request, run_in_threadpool)
            except DatafoldAuthError as error:
                return problem_response(error.reason)
            return await endpoint(request)

        return wrapper

    return decorate


__all__ = ["InsufficientScope", "install", "problem_handler", "problem_response", "require_scopes", "requires_scopes"]
