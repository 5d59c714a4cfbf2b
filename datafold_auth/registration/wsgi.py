"""The registration endpoint as a WSGI application (PEP 3333).

Routes are relative to the mount point (``PATH_INFO``), so the app works
as the root application or mounted under a prefix (werkzeug
``DispatcherMiddleware``, a Flask mount) where ``SCRIPT_NAME`` holds the
prefix. Verification uses the full raw path as the client signed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from ..audit import request_id
from ..errors import DatafoldAuthError
from ..wire import read_wsgi_body, request_from_environ
from .core import RegistrationService

StartResponse = Callable[..., Any]


class RegistrationApp(RegistrationService):
    """WSGI app: ``POST /keys`` registers a key with proof of possession,
    ``GET /keys/{keyid}`` returns its public record (see :mod:`.core`).

    Constructor: see :class:`~datafold_auth.registration.core.RegistrationService`.
    Blocking registries are fine here: a WSGI server runs each request on a
    worker thread or process.
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (PEP 3333)."""
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        request = None
        rid = None
        remote = environ.get("REMOTE_ADDR")
        try:
            found = self.route_action(method, path)
            if found.action == "lookup":
                response = self.lookup(found.need_keyid())
            else:
                rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
                if found.action == "register":
                    self.check_rate(self.client_address(remote, environ.get("HTTP_X_FORWARDED_FOR")))
                body = read_wsgi_body(environ, self.max_body)
                request = request_from_environ(environ, body, self.authority)
                # SCRIPT_NAME is latin-1 decoded bytes (PEP 3333); re-encode for Location.
                mount = quote(environ.get("SCRIPT_NAME", "").encode("latin-1"))
                response = self.handle(found, request, mount, request_id=rid)
        except DatafoldAuthError as exc:
            full_path = environ.get("SCRIPT_NAME", "") + path
            response = self.refuse(exc, request=request, method=method, path=full_path, remote=remote, request_id=rid)
        status, headers, content = response
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [b"" if method == "HEAD" else content]


__all__ = ["RegistrationApp"]
