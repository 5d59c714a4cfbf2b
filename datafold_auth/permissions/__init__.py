"""Scope checks per route: the key's scopes are the identity's scopes (docs/operations.md, Permissions).

The middleware authenticates and hands the app an
:class:`~datafold_auth.middleware.Identity` whose ``scopes`` are those of the
key that signed. These helpers require scopes per route and answer a
missing one with ``403 application/problem+json`` and reason
``insufficient_scope`` (a request that reached the route unsigned gets
``401 missing_signature``):

* Flask: :func:`datafold_auth.permissions.flask.require_scopes` (a view decorator);
* Django: :func:`datafold_auth.permissions.django.require_scopes` (a view decorator);
* Starlette/FastAPI: :func:`datafold_auth.permissions.starlette.require_scopes`
  (a FastAPI dependency) and :func:`~datafold_auth.permissions.starlette.requires_scopes`
  (a Starlette endpoint decorator).

Every check goes through :func:`allowed`, which asks the
``datafold_auth_authorize`` pluggy hook first: an application plugs its
existing permission system in there (see :mod:`datafold_auth.registry.hookspecs`).

Every refusal is logged at INFO on the ``datafold_auth`` logger, in the
middleware's style: ``datafold_auth rejected 'POST' '/api/items':
reason=insufficient_scope client_id='bob' keyid=... required='write'`` (no
signature, body or header value besides these).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..errors import PermissionDenied, Reason, SignatureError
from ..middleware._common import Identity

logger = logging.getLogger("datafold_auth")


def _method_and_path(request: Any) -> tuple[str | None, str | None]:
    """The method and path of a Flask, Django or Starlette request (``None`` for what it does not have)."""
    method = getattr(request, "method", None)
    path = getattr(request, "path", None)  # Flask, Django
    if path is None:
        path = getattr(getattr(request, "url", None), "path", None)  # Starlette
    return (method if isinstance(method, str) else None), (path if isinstance(path, str) else None)


def log_refusal(
    identity: Identity | None, scopes: tuple[str, ...], request: Any, reason: Reason, *, by_hook: bool = False
) -> None:
    """Log a refused route at INFO: method and path (repr, as sent), reason, client id, keyid, required
    scopes, and ``decided_by=hook`` when the ``datafold_auth_authorize`` hook refused (the key may hold
    every scope: the answer on the wire is the same ``insufficient_scope``)."""
    method, path = _method_and_path(request)
    logger.info(
        "datafold_auth rejected %r %r: reason=%s client_id=%r keyid=%s required=%r%s",
        method,
        path,
        reason.value,
        identity.client_id if identity is not None else None,
        identity.keyid if identity is not None else None,
        " ".join(scopes),
        " decided_by=hook" if by_hook else "",
    )


def scopes_tuple(scopes: Iterable[str]) -> tuple[str, ...]:
    """The required scopes as a tuple; ``"read write"`` counts as two.

    Raises:
        ValueError: no scope given, or an empty one.
    """
    found: list[str] = []
    for scope in scopes:
        found.extend(scope.split())
    if not found:
        raise ValueError("require at least one scope")
    return tuple(found)


def allowed(identity: Identity | None, scopes: tuple[str, ...], request: Any = None) -> bool:
    """``True`` if ``identity`` may use a resource requiring ``scopes``.

    The ``datafold_auth_authorize`` hook decides if an implementation answers
    ``True``/``False``; otherwise every scope must be among ``identity.scopes``.
    ``None`` (no verified identity) is never allowed.
    """
    return identity is not None and _decide(identity, scopes, request)[0]


def _decide(identity: Identity, scopes: tuple[str, ...], request: Any) -> tuple[bool, bool]:
    """``(allowed, decided by the hook)``."""
    from ..registry import plugin_manager

    verdict = plugin_manager().hook.datafold_auth_authorize(identity=identity, scopes=scopes, request=request)
    if verdict is not None:
        return bool(verdict), True
    have = identity.scopes
    return all(scope in have for scope in scopes), False


async def authorize_offloading(
    identity: Identity | None,
    scopes: tuple[str, ...],
    request: Any,
    offload: Callable[..., Awaitable[Identity]],
) -> Identity:
    """:func:`authorize` from an event loop.

    A ``datafold_auth_authorize`` hook is application code that may block (a database
    query): with one registered, the check runs as ``offload(authorize, identity, scopes,
    request)`` (e.g. Starlette's ``run_in_threadpool``); without one it is pure and cheap and
    runs here. Same result and errors as :func:`authorize`.
    """
    if identity is None or not has_authorize_hook():
        return authorize(identity, scopes, request)
    return await offload(authorize, identity, scopes, request)


def has_authorize_hook() -> bool:
    """``True`` if an application registered a ``datafold_auth_authorize`` implementation.

    Such a hook is application code that may block (a database query): the async
    helpers then run :func:`authorize` off the event loop. Without one the check is
    pure and cheap, and runs where it is called.
    """
    from ..registry import plugin_manager

    return bool(plugin_manager().hook.datafold_auth_authorize.get_hookimpls())


def authorize(identity: Identity | None, scopes: tuple[str, ...], request: Any = None) -> Identity:
    """Return ``identity`` if :func:`allowed`, else raise.

    Raises:
        SignatureError: ``missing_signature`` (401): no verified identity (the route is not
            behind the middleware, or is exempt from it).
        PermissionDenied: ``insufficient_scope`` (403).
    """
    if identity is None:
        log_refusal(None, scopes, request, Reason.MISSING_SIGNATURE)
        raise SignatureError(
            "this route needs a verified identity; is it behind the middleware?", Reason.MISSING_SIGNATURE
        )
    permitted, by_hook = _decide(identity, scopes, request)
    if not permitted:
        log_refusal(identity, scopes, request, Reason.INSUFFICIENT_SCOPE, by_hook=by_hook)
        raise PermissionDenied(f"client {identity.client_id!r} lacks scope(s) {' '.join(scopes)}")
    return identity


__all__ = ["allowed", "authorize", "authorize_offloading", "has_authorize_hook", "scopes_tuple"]
