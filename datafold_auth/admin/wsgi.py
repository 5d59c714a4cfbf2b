"""The admin API as a WSGI application (mount it, e.g. with werkzeug's ``DispatcherMiddleware``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from ..audit import request_id
from ..errors import DatafoldAuthError
from ..middleware._common import IDENTITY_KEY, Identity
from ..wire import read_wsgi_body, request_from_environ
from .core import AdminService

StartResponse = Callable[..., Any]


class AdminApp(AdminService):
    """WSGI admin API (routes: :mod:`datafold_auth.admin.core`).

    Mounted beside the protected app, it verifies each request itself with the
    verifier it is given; mounted inside a :class:`~datafold_auth.middleware.DatafoldAuthMiddleware`
    path, it uses the identity the middleware verified (a request is never verified twice,
    which would spend its nonce twice). Constructor: :class:`~datafold_auth.admin.core.AdminService`.
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (PEP 3333)."""
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        request = None
        identity: Identity | None = None
        try:
            body = read_wsgi_body(environ, self.max_body)
            request = request_from_environ(environ, body, self.authority)
            identity = self.identify(request, environ.get(IDENTITY_KEY))
            self.authorize(identity, request)
            response = self.handle(self.route(method, path), identity, request, rid)
        except DatafoldAuthError as exc:
            response = self.refuse(
                exc,
                request=request,
                method=method,
                path=environ.get("SCRIPT_NAME", "") + path,
                remote=environ.get("REMOTE_ADDR"),
                request_id=rid,
                identity=identity,
            )
        status, headers, content = response
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [b"" if method == "HEAD" else content]


__all__ = ["AdminApp"]
