"""WSGI (PEP 3333) middleware that verifies DataFold-signed requests."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from .. import wire
from ..audit import AuditSink, request_id
from ..errors import DatafoldAuthError
from ..message import Request
from ..verifier import Verifier
from ._common import IDENTITY_KEY, VERIFIED_KEY, Identity, PathSelector, log_rejection


class DatafoldAuthMiddleware:
    """Verify the signature of every protected request before ``app`` sees it.

    On success the app gets ``environ["datafold_auth.identity"]`` (an
    :class:`~datafold_auth.middleware.Identity`), ``environ["datafold_auth.verified"]``
    (the :class:`~datafold_auth.verifier.VerifiedSignature`) and ``REMOTE_USER``
    (the ``client_id``); ``wsgi.input`` is replaced by the buffered body, unchanged,
    and ``CONTENT_LENGTH`` by its length. On failure the client gets an RFC 9457
    problem (:func:`datafold_auth.wire.problem`): 401, 413 for a body over
    ``max_body``, 400 for an unreadable ``Content-Length``, 503 when the
    registry or nonce store is unavailable; the app is not called.

    Args:
        app: the WSGI application.
        verifier: checks signatures, keys and nonces.
        paths: path prefixes to protect (``None``: every path).
        exempt: path prefixes passed through unsigned (e.g. registration, health checks).
        max_body: largest body in bytes read for verification.
        authority: public ``host[:port]`` used for ``@authority`` behind a proxy
            (default: the ``Host`` header).
        clock: current time in epoch seconds, passed to the verifier as ``now``.
        audit: where rejected requests are recorded (an :class:`~datafold_auth.audit.AuditSink`;
            off the request path). With one, refusals also carry a ``request_id``
            (the client's ``X-Request-Id`` when it is sane, else a new one).

    Raises:
        ValueError: a path prefix does not start with ``/``.
    """

    def __init__(
        self,
        app: WSGIApplication,
        verifier: Verifier,
        *,
        paths: str | Iterable[str] | None = None,
        exempt: str | Iterable[str] = (),
        max_body: int = wire.DEFAULT_MAX_BODY,
        authority: str | None = None,
        clock: Callable[[], float] = time.time,
        audit: AuditSink | None = None,
    ) -> None:
        self.app = app
        self.audit = audit
        self.verifier = verifier
        self.selector = PathSelector(paths, exempt)
        self.max_body = max_body
        self.authority = authority
        self.clock = clock

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        mount = environ.get("SCRIPT_NAME", "")
        path = mount + environ.get("PATH_INFO", "")
        if not self.selector.protects(path, mount):
            return self.app(environ, start_response)
        request: Request | None = None
        try:
            body = wire.read_wsgi_body(environ, self.max_body)
            request = wire.request_from_environ(environ, body, self.authority)
            verified = self.verifier.verify(request, self.clock())
        except DatafoldAuthError as error:
            method = environ.get("REQUEST_METHOD", "")
            keyid = log_rejection(error, request, method, path)
            rid = None
            if self.audit is not None:
                rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
                self.audit.rejected(
                    error, keyid=keyid, method=method, path=path, remote=environ.get("REMOTE_ADDR"), request_id=rid
                )
            status, headers, content = wire.problem(error.reason, request_id=rid)
            start_response(f"{status} {HTTPStatus(status).phrase}", headers)
            return [content]
        identity = Identity.from_verified(verified)
        environ[IDENTITY_KEY] = identity
        environ[VERIFIED_KEY] = verified
        environ["REMOTE_USER"] = identity.client_id
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


__all__ = ["DatafoldAuthMiddleware"]
