"""Django: ``@require_scopes("write")`` on a view of a project served through the DataFold middleware.

Under WSGI, :class:`~datafold_auth.middleware.DatafoldAuthMiddleware` wraps Django's WSGI
application and the identity is in ``request.META["datafold_auth.identity"]`` (and
``REMOTE_USER`` is its ``client_id``). Under ASGI,
:class:`~datafold_auth.middleware.DatafoldAuthASGIMiddleware` wraps Django's ASGI
application and the identity is in the ASGI scope (``request.scope["datafold_auth.identity"]``;
Django copies no scope key into ``META``, so there is no ``REMOTE_USER``).
:func:`identity` reads either; use it rather than ``META``.

Example::

    # wsgi.py (or asgi.py with DatafoldAuthASGIMiddleware(get_asgi_application(), ...))
    application = DatafoldAuthMiddleware(get_wsgi_application(), verifier, paths=["/api/"])

    # views.py
    from datafold_auth.permissions.django import identity, require_scopes

    @require_scopes("write")
    def create_item(request):
        owner = identity(request).client_id   # never None here: require_scopes answered 401 before
        ...

For class-based views, use ``django.utils.decorators.method_decorator(require_scopes("write"), name="dispatch")``
(with ``csrf_exempt`` on the class under ``CsrfViewMiddleware``: signed requests carry no cookies).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from .. import wire
from ..errors import DatafoldAuthError
from ..middleware._common import IDENTITY_KEY, Identity
from . import authorize, authorize_offloading, scopes_tuple

F = TypeVar("F", bound=Callable[..., Any])


def identity(request: Any) -> Identity | None:
    """The :class:`~datafold_auth.middleware.Identity` of a Django request, or ``None``.

    Looks in ``request.META`` (WSGI: put there by
    :class:`~datafold_auth.middleware.DatafoldAuthMiddleware`), then in the ASGI scope
    (``request.scope``, Django's ``ASGIRequest``: put there by
    :class:`~datafold_auth.middleware.DatafoldAuthASGIMiddleware`).

    Returns:
        ``None`` when no middleware verified this request: its path is outside the
        middleware's ``paths`` (or is ``exempt``), or the request did not go through
        ``wsgi.py``/``asgi.py`` at all (``django.test.Client`` calls Django directly).
        A value under that key that is not an :class:`~datafold_auth.middleware.Identity`
        (put there by something other than the DataFold middleware) counts as none.
        :func:`require_scopes` answers such a request ``401 missing_signature``.
    """
    found = request.META.get(IDENTITY_KEY)
    if not isinstance(found, Identity):
        scope = getattr(request, "scope", None)
        found = scope.get(IDENTITY_KEY) if isinstance(scope, Mapping) else None
    return found if isinstance(found, Identity) else None


def _is_async(view: Callable[..., Any]) -> bool:
    try:
        from asgiref.sync import iscoroutinefunction  # Django's own test: honours markcoroutinefunction
    except ImportError:  # pragma: no cover - asgiref comes with Django
        return inspect.iscoroutinefunction(view)
    return bool(iscoroutinefunction(view))


def _refusal(error: DatafoldAuthError) -> Any:
    from django.http import HttpResponse

    status, headers, body = wire.problem(error.reason)
    response = HttpResponse(body, status=status)
    for name, value in headers:
        response[name] = value
    return response


async def _authorize_async(who: Identity | None, required: tuple[str, ...], request: Any) -> Identity:
    """:func:`~datafold_auth.permissions.authorize` from an async view.

    A ``datafold_auth_authorize`` hook is application code, typically the Django ORM, which
    refuses to run in the event loop (``SynchronousOnlyOperation``, a 500). With a hook
    registered, the check runs through ``sync_to_async`` (Django's sync thread, as for any
    sync code an async view calls); without one it is pure and runs here.
    """
    from asgiref.sync import sync_to_async

    return await authorize_offloading(who, required, request, lambda f, *args: sync_to_async(f)(*args))


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """A view decorator: the signing key must hold every scope (``403 insufficient_scope`` otherwise).

    A request without a verified identity (see :func:`identity`) gets
    ``401 missing_signature``; the view is not called. Works on sync and
    async (``async def``) views, under WSGI and ASGI.

    Raises:
        ValueError: no scope given.
    """
    required = scopes_tuple(scopes)

    def decorate(view: F) -> F:
        if _is_async(view):

            @functools.wraps(view)
            async def async_wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
                try:
                    await _authorize_async(identity(request), required, request)
                except DatafoldAuthError as error:
                    return _refusal(error)
                return await view(request, *args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                authorize(identity(request), required, request)
            except DatafoldAuthError as error:
                return _refusal(error)
            return view(request, *args, **kwargs)

        return cast(F, wrapper)

    return decorate


__all__ = ["identity", "require_scopes"]
