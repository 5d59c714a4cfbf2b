"""WSGI (PEP 3333) middleware that verifies DataFold-signed requests."""

from __future__ import annotations

import io
from collections.abc import Iterable
from http import HTTPStatus
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from .. import wire
from ..errors import DatafoldAuthError
from ..message import Request
from ._common import IDENTITY_KEY, VERIFIED_KEY, Identity, MiddlewareBase


class DatafoldAuthMiddleware(MiddlewareBase[WSGIApplication]):
    """Verify the signature of every protected request before ``app`` sees it.

    On success the app gets ``environ["datafold_auth.identity"]`` (an
    :class:`~datafold_auth.middleware.Identity`), ``environ["datafold_auth.verified"]``
    (the :class:`~datafold_auth.verifier.VerifiedSignature`) and ``REMOTE_USER``
    (the ``client_id``); ``wsgi.input`` is replaced by the buffered body, unchanged,
    and ``CONTENT_LENGTH`` by its length. On failure the client gets an RFC 9457
    problem (:func:`datafold_auth.wire.problem`): 401, 413 for a body over
    ``max_body``, 400 for an unreadable ``Content-Length``, 503 when the
    registry or nonce store is unavailable; the app is not called.

    Arguments: see :class:`~datafold_auth.middleware._common.MiddlewareBase`
    (``app`` is the WSGI application).
    """

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
            rid = self._refused(
                error,
                request,
                environ.get("REQUEST_METHOD", ""),
                path,
                offered_request_id=environ.get("HTTP_X_REQUEST_ID"),
                remote=environ.get("REMOTE_ADDR"),
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
