"""Django: ``@require_scopes("write")`` on a view of an app served through
:class:`~datafold_auth.middleware.DatafoldAuthMiddleware` (which wraps Django's WSGI
application, so the identity is in ``request.META["datafold_auth.identity"]``).

Example::

    # wsgi.py
    application = DatafoldAuthMiddleware(get_wsgi_application(), verifier, paths=["/api/"])

    # views.py
    from datafold_auth.permissions.django import require_scopes

    @require_scopes("write")
    def create_item(request): ...

For class-based views, use ``django.utils.decorators.method_decorator(require_scopes("write"), name="dispatch")``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from .. import wire
from ..errors import DatafoldAuthError
from ..middleware._common import IDENTITY_KEY
from . import authorize, scopes_tuple

F = TypeVar("F", bound=Callable[..., Any])


def identity(request: Any) -> Any:
    """The :class:`~datafold_auth.middleware.Identity` of a Django request, or ``None``."""
    return request.META.get(IDENTITY_KEY)


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """A view decorator: the signing key must hold every scope (``403 insufficient_scope`` otherwise).

    Raises:
        ValueError: no scope given.
    """
    required = scopes_tuple(scopes)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            from django.http import HttpResponse

            try:
                authorize(identity(request), required, request)
            except DatafoldAuthError as error:
                status, headers, body = wire.problem(error.reason)
                response = HttpResponse(body, status=status)
                for name, value in headers:
                    response[name] = value
                return response
            return view(request, *args, **kwargs)

        return cast(F, wrapper)

    return decorate


__all__ = ["identity", "require_scopes"]
