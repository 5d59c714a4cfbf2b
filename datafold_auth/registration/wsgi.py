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
        try:
            keyid = self.route(method, environ.get("PATH_INFO", ""))
            if keyid is not None:
                response = self.lookup(keyid)
            else:
                body = read_wsgi_body(environ, self.max_body)
                request = request_from_environ(environ, body, self.authority)
                # SCRIPT_NAME is latin-1 decoded bytes (PEP 3333); re-encode for Location.
                response = self.register(request, quote(environ.get("SCRIPT_NAME", "").encode("latin-1")))
        except DatafoldAuthError as exc:
            response = self.refuse(exc)
        status, headers, content = response
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [b"" if method == "HEAD" else content]


__all__ = ["RegistrationApp"]
