"""Signed test clients: the usual in-process test clients, signing every request with a test key.

* :class:`WSGIClientFactory`: werkzeug's test client (Flask's ``FlaskClient``
  for a Flask app) for any WSGI app;
* :class:`ASGIClientFactory`: Starlette's ``TestClient`` for any ASGI app (FastAPI, Starlette);
* :class:`HttpxClientFactory` / :class:`HttpxAsyncClientFactory`: ``httpx``
  clients on its WSGI / ASGI transports;
* :class:`RequestsSessionFactory`: a ``requests`` session, against a live
  server URL or, in process, a WSGI/ASGI app.

Every client signs with the given :class:`~datafold_auth.testing.EphemeralKey`
at the given clock's time (the fixtures give the test's key and clock), and
signs each redirect hop it follows again. A request that already carries a
``Signature-Input`` made elsewhere is sent as it is, so signatures made by
hand (for replays, tampering, expired ones) pass through.

Only werkzeug is needed up front; Flask, Starlette, httpx and requests are
imported when their client is asked for.
"""

from __future__ import annotations

import inspect
import io
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast
from wsgiref.types import WSGIApplication, WSGIEnvironment

from werkzeug.test import Client

from .. import wire
from ..message import Request
from ..signer import Signer
from .identities import EphemeralKey

if TYPE_CHECKING:
    import httpx
    from starlette.testclient import TestClient

    from ._requests import SignedSession

TEST_HOST = "testserver"
"""The host the httpx and requests in-process clients send (Starlette's convention); werkzeug sends ``localhost``."""


@dataclass(slots=True)
class RequestSigning:
    """How one client signs: which key, at which clock, with a pinned nonce or fresh ones.

    Attributes:
        key: the key that signs.
        clock: current time in epoch seconds, used as ``created``.
        nonce: a nonce put in every signature (so the second request is a
            replay), or ``None`` for a fresh nonce each time.
    """

    key: EphemeralKey
    clock: Callable[[], float]
    nonce: str | None = None
    signer: Signer = field(init=False)
    _made: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.signer = self.key.signer_with(nonce=self.nonce)

    def sign(self, request: Request) -> list[tuple[str, str]]:
        """Sign ``request`` in place at ``clock()``; return the added field lines."""
        added = self.signer.sign(request, now=self.clock())
        self._made.update(value for name, value in added if name == "Signature-Input")
        return added

    def should_sign(self, signature_input: str | None) -> bool:
        """``True`` unless the request carries a ``Signature-Input`` made elsewhere
        (one made here is a copy kept by a redirect, and is signed again)."""
        return signature_input is None or signature_input in self._made


def sign_environ(environ: WSGIEnvironment, signing: RequestSigning) -> None:
    """Sign a WSGI request in place: add ``Content-Digest``/``Signature-Input``/``Signature``.

    The request is read as the middleware will read it (same ``@authority``,
    ``@path`` and ``@query``); ``wsgi.input`` is replaced by the buffered body.
    An environ that already has a ``Signature-Input`` made elsewhere is left alone.
    """
    query = environ.get("QUERY_STRING")
    for name in ("RAW_URI", "REQUEST_URI"):
        # werkzeug's EnvironBuilder leaves the query out of these when it is
        # given apart (as on redirects); a real server keeps it.
        target = environ.get(name)
        if target and query and "?" not in target:
            environ[name] = f"{target}?{query}"
    previous = environ.get("HTTP_SIGNATURE_INPUT")
    if not signing.should_sign(previous):
        return
    if previous is not None:  # a redirect hop: drop the last hop's digest (its body may be gone)
        environ.pop("HTTP_CONTENT_DIGEST", None)
    body = wire.read_wsgi_body(environ, sys.maxsize)
    environ["wsgi.input"] = io.BytesIO(body)
    seen = wire.request_from_environ(environ, body)
    content_type = environ.get("CONTENT_TYPE")
    request = Request(
        method=seen.method,
        authority=seen.authority,
        path=seen.path,
        query=seen.query,
        headers=[("Content-Type", content_type)] if content_type else [],
        body=body,
        scheme=seen.scheme,
    )
    for name, value in signing.sign(request):
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))


def sign_httpx_request(signing: RequestSigning, request: Any) -> Any:
    """Sign an ``httpx`` (or ``httpx2``) request in place, unless it has a ``Signature-Input``
    made elsewhere; return it. The body must already be in memory (``content=``, ``json=``, ``data=``).
    """
    headers = request.headers
    if request.content and "content-length" not in headers:
        # A streamed body, now read: send it with a length, since a WSGI app
        # (and the middleware) read no body without CONTENT_LENGTH.
        headers.pop("transfer-encoding", None)
        headers["Content-Length"] = str(len(request.content))
    previous = headers.get("signature-input")
    if signing.should_sign(previous):
        if previous is not None:  # a redirect hop: drop the last hop's digest (its body may be gone)
            headers.pop("content-digest", None)
        lines = headers.multi_items() if hasattr(headers, "multi_items") else list(headers.items())
        parts = Request.from_url(request.method, str(request.url), lines, request.content)
        for name, value in signing.sign(parts):
            headers[name] = value
    return request


def httpx_signing_hooks(signing: RequestSigning, *, asynchronous: bool = False) -> dict[str, list[Any]]:
    """``event_hooks`` for an ``httpx`` (or ``httpx2``) client that sign every request it sends.

    Request hooks run for each hop, so redirects the client follows are signed
    again. The body is read first (streamed bodies included).

    Args:
        signing: how to sign.
        asynchronous: make ``async`` hooks, for ``httpx.AsyncClient``.
    """
    if asynchronous:

        async def sign_async(request: Any) -> None:
            await request.aread()
            sign_httpx_request(signing, request)

        return {"request": [sign_async]}

    def sign(request: Any) -> None:
        request.read()
        sign_httpx_request(signing, request)

    return {"request": [sign]}


class SignedClient(Client):
    """werkzeug's test :class:`~werkzeug.test.Client` that signs every request (redirects too).

    Attributes:
        datafold_signing: the :class:`RequestSigning` used; ``None`` sends requests unsigned.
    """

    datafold_signing: RequestSigning | None = None

    def run_wsgi_app(self, environ: WSGIEnvironment, buffered: bool = False) -> tuple[Iterable[bytes], str, Any]:
        """Sign the request in ``environ``, then run the app (see :meth:`werkzeug.test.Client.run_wsgi_app`)."""
        if self.datafold_signing is not None:
            sign_environ(environ, self.datafold_signing)
        answer = super().run_wsgi_app(environ, buffered=buffered)
        stream = environ.get("wsgi.input")
        if stream is not None and getattr(stream, "seekable", lambda: False)():
            # werkzeug re-sends this stream on a 307/308 redirect, from where the app left it.
            stream.seek(0)
        return answer


_SUBCLASSES: dict[type[Client], type[SignedClient]] = {}
_SUBCLASSES_LOCK = threading.Lock()


def signed_client_class(base: type[Client]) -> type[SignedClient]:
    """A :class:`SignedClient` subclass of ``base`` (e.g. ``FlaskClient``), made once per base."""
    if issubclass(base, SignedClient):
        return base
    with _SUBCLASSES_LOCK:
        cls = _SUBCLASSES.get(base)
        if cls is None:
            cls = cast(type[SignedClient], type(f"Signed{base.__name__}", (SignedClient, base), {}))
            _SUBCLASSES[base] = cls
        return cls


def is_asgi(app: object) -> bool:
    """``True`` if ``app`` looks like an ASGI application (an ``async`` callable)."""
    call = getattr(type(app), "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(app) or (call is not None and inspect.iscoroutinefunction(call))


class _Factory:
    """Shared part of the client factories: default key and clock, and the clients to close."""

    def __init__(self, default_key: Callable[[], EphemeralKey], clock: Callable[[], float]) -> None:
        self._default_key = default_key
        self.clock = clock
        self._closers: list[Callable[[], None]] = []

    def signing(
        self, key: EphemeralKey | None = None, clock: Callable[[], float] | None = None, nonce: str | None = None
    ) -> RequestSigning:
        """The :class:`RequestSigning` for ``key`` (default: the test's key) at ``clock`` (default: the test's)."""
        return RequestSigning(
            key=self._default_key() if key is None else key,
            clock=self.clock if clock is None else clock,
            nonce=nonce,
        )

    def close(self) -> None:
        """Close every client made (latest first)."""
        while self._closers:
            self._closers.pop()()


class WSGIClientFactory(_Factory):
    """Makes signed werkzeug test clients (``FlaskClient`` for Flask apps)."""

    def __call__(
        self,
        app: WSGIApplication,
        *,
        key: EphemeralKey | None = None,
        clock: Callable[[], float] | None = None,
        nonce: str | None = None,
        **kwargs: Any,
    ) -> Client:
        """A test client for ``app`` that signs every request.

        Args:
            app: a Flask app (gets its ``test_client_class`` or ``FlaskClient``)
                or any WSGI callable (gets a werkzeug ``Client``).
            key: the signing key (default: the test's ``datafold_key``).
            clock: time used as ``created`` (default: the test's ``datafold_clock``).
            nonce: pin the nonce, so the second request is a replay.
            kwargs: passed to the client class (e.g. ``use_cookies=False``).

        Returns:
            the client; requests go to ``http://localhost/...``.
        """
        signing = self.signing(key, clock, nonce)
        response_class = getattr(app, "response_class", None)
        if callable(getattr(app, "test_client", None)) and response_class is not None:  # Flask
            from flask.testing import FlaskClient

            base: type[Client] = getattr(app, "test_client_class", None) or FlaskClient
            kwargs.setdefault("use_cookies", True)
            client = signed_client_class(base)(app, response_class, **kwargs)
        else:
            client = SignedClient(app, **kwargs)
        client.datafold_signing = signing
        return client


class ASGIClientFactory(_Factory):
    """Makes signed Starlette ``TestClient`` objects."""

    def __call__(
        self,
        app: Any,
        *,
        key: EphemeralKey | None = None,
        clock: Callable[[], float] | None = None,
        nonce: str | None = None,
        **kwargs: Any,
    ) -> TestClient:
        """A Starlette ``TestClient`` for ``app`` that signs every request; closed after the test.

        Args:
            app: an ASGI app (FastAPI, Starlette, ...).
            key, clock, nonce: as for :class:`WSGIClientFactory`.
            kwargs: passed to ``TestClient`` (e.g. ``base_url``, ``raise_server_exceptions``).

        Returns:
            the client (an ``httpx.Client``); requests go to ``http://testserver/...``.
            Use it in ``with`` to run the app's lifespan.
        """
        from starlette.testclient import TestClient

        client = TestClient(app, **kwargs)
        # Event hooks rather than an httpx.Auth: TestClient is built on httpx
        # or, in newer Starlette, on httpx2; hooks also sign each redirect hop.
        for event, hooks in httpx_signing_hooks(self.signing(key, clock, nonce)).items():
            client.event_hooks[event].extend(hooks)
        self._closers.append(client.close)
        return client


class HttpxClientFactory(_Factory):
    """Makes signed ``httpx.Client`` objects on ``httpx.WSGITransport``."""

    def __call__(
        self,
        app: WSGIApplication,
        *,
        key: EphemeralKey | None = None,
        clock: Callable[[], float] | None = None,
        nonce: str | None = None,
        base_url: str = f"http://{TEST_HOST}",
        **kwargs: Any,
    ) -> httpx.Client:
        """An ``httpx.Client`` that calls the WSGI ``app`` in process and signs every request; closed after the test.

        Args:
            app: a WSGI app.
            key, clock, nonce: as for :class:`WSGIClientFactory`.
            base_url: where relative URLs go (default ``http://testserver``).
            kwargs: passed to ``httpx.Client`` (not ``event_hooks``, used for signing).
        """
        import httpx

        client = httpx.Client(
            transport=httpx.WSGITransport(app=app),
            base_url=base_url,
            event_hooks=httpx_signing_hooks(self.signing(key, clock, nonce)),
            **kwargs,
        )
        self._closers.append(client.close)
        return client


class HttpxAsyncClientFactory(_Factory):
    """Makes signed ``httpx.AsyncClient`` objects on ``httpx.ASGITransport``."""

    def __call__(
        self,
        app: Any,
        *,
        key: EphemeralKey | None = None,
        clock: Callable[[], float] | None = None,
        nonce: str | None = None,
        base_url: str = f"http://{TEST_HOST}",
        **kwargs: Any,
    ) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` that calls the ASGI ``app`` in process and signs every request.

        Use it as ``async with factory(app) as client:`` so it is closed in
        the test's event loop (``ASGITransport`` holds no connections, so an
        unclosed one leaks nothing).

        Args:
            app: an ASGI app (no lifespan events are sent).
            key, clock, nonce: as for :class:`WSGIClientFactory`.
            base_url: where relative URLs go (default ``http://testserver``).
            kwargs: passed to ``httpx.AsyncClient`` (not ``event_hooks``, used for signing).
        """
        import httpx

        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=base_url,
            event_hooks=httpx_signing_hooks(self.signing(key, clock, nonce), asynchronous=True),
            **kwargs,
        )


class RequestsSessionFactory(_Factory):
    """Makes signed ``requests`` sessions, for a live server or an app in process."""

    def __call__(
        self,
        target: str | Any,
        *,
        key: EphemeralKey | None = None,
        clock: Callable[[], float] | None = None,
        nonce: str | None = None,
    ) -> SignedSession:
        """A ``requests.Session`` that signs every request; closed after the test.

        Args:
            target: a base URL such as ``"http://127.0.0.1:8000"`` (a live
                server), or a WSGI or ASGI app, called in process (ASGI through
                ``httpx.ASGITransport``; no lifespan events, no cookie jar).
            key, clock, nonce: as for :class:`WSGIClientFactory`.

        Returns:
            a :class:`~datafold_auth.testing._requests.SignedSession`: relative
            URLs (``session.get("/api/hello")``) go to the base URL, which is
            ``http://testserver`` for an app.
        """
        from ._requests import InProcessAdapter, SignedSession, SigningRequestsAuth

        session = SignedSession(target if isinstance(target, str) else f"http://{TEST_HOST}")
        if not isinstance(target, str):
            adapter = InProcessAdapter(target)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        session.auth = SigningRequestsAuth(self.signing(key, clock, nonce))
        self._closers.append(session.close)
        return session


__all__ = [
    "TEST_HOST",
    "ASGIClientFactory",
    "HttpxAsyncClientFactory",
    "HttpxClientFactory",
    "RequestSigning",
    "RequestsSessionFactory",
    "SignedClient",
    "WSGIClientFactory",
    "httpx_signing_hooks",
    "is_asgi",
    "sign_environ",
    "sign_httpx_request",
    "signed_client_class",
]
