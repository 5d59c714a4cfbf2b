"""Flask: ``@require_scopes("write")`` on a view behind :class:`~datafold_auth.middleware.DatafoldAuthMiddleware`.

Example::

    from datafold_auth.permissions.flask import require_scopes

    @app.post("/api/items")
    @require_scopes("write")
    def create_item(): ...
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


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """A view decorator: the signing key must hold every scope (``403 insufficient_scope`` otherwise).

    Raises:
        ValueError: no scope given.
    """
    required = scopes_tuple(scopes)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from flask import Response, request

            try:
                authorize(request.environ.get(IDENTITY_KEY), required, request)
            except DatafoldAuthError as error:
                status, headers, body = wire.problem(error.reason)
                return Response(body, status=status, headers=headers)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


__all__ = ["require_scopes"]
