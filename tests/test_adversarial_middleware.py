"""Adversarial tests of the middleware at the HTTP layer: real werkzeug and uvicorn servers on loopback.

Each test is a finding of the adversarial review: the input, what must happen,
and (in the docstring) what used to happen.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests
import uvicorn
from flask import Flask
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from datafold_auth import KeyRecord, Request, SQLiteRegistry, Verifier
from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.middleware._common import PathSelector, asgi_mount
from datafold_auth.middleware.asgi import Message, Scope

from .servers import Harness, live_server, serve_asgi, serve_wsgi

# ------------------------------------------------------------------ helpers


def _flask_secret(h: Harness, **options: Any) -> Flask:
    app = Flask("adversarial")

    @app.route("/api/secret")
    @app.route("/health")
    def secret() -> str:
        identity = flask_request.environ.get(IDENTITY_KEY)
        return f"secret for {identity.client_id if identity else None}"

    app.wsgi_app = DatafoldAuthMiddleware(app.wsgi_app, h.verifier, **options)  # type: ignore[method-assign]
    return app


async def _starlette_secret(request: StarletteRequest) -> PlainTextResponse:
    identity = request.scope.get(IDENTITY_KEY)
    return PlainTextResponse(f"secret for {identity.client_id if identity else None}")


def _starlette_inner() -> Starlette:
    return Starlette(routes=[Route("/api/secret", _starlette_secret), Route("/health", _starlette_secret)])


def _get(h: Harness, url: str, *, signed_url: str | None = None) -> requests.Response:
    """GET ``url``, signed for ``signed_url`` (default: ``url``) when ``signed_url`` is not ``""``."""
    headers: dict[str, str] = {}
    if signed_url != "":
        req = Request.from_url("GET", signed_url or url)
        h.signer.sign(req)
        headers = dict(req.headers)
    return requests.get(url, headers=headers, timeout=10)


@contextmanager
def _uvicorn(app: Any, **config: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _raw(url: str, data: bytes, timeout: float = 5) -> bytes:
    """Send ``data`` on a fresh connection; return everything the server sent until it closed."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            out += b"<timeout>"
    return out


# ------------------------------------------------------------------ 1. paths= under a mount prefix


def test_paths_protect_a_wsgi_app_mounted_under_a_prefix() -> None:
    """``paths="/api"`` on an app mounted at ``/v1`` (SCRIPT_NAME) used to protect nothing:
    the prefix was matched against SCRIPT_NAME + PATH_INFO (``/v1/api/secret``)
    while Flask routes on PATH_INFO (``/api/secret``), so unsigned requests got the secret."""
    h = Harness()
    root = DispatcherMiddleware(NotFound(), {"/v1": _flask_secret(h, paths="/api", exempt="/v1/health")})
    with serve_wsgi(root) as url:
        r = _get(h, url + "/v1/api/secret", signed_url="")
        assert r.status_code == 401 and r.json()["reason"] == "missing_signature", r.text
        r = _get(h, url + "/v1/api/secret")
        assert (r.status_code, r.text) == (200, "secret for alice")
        # an exempt prefix written as the full path keeps working
        assert _get(h, url + "/v1/health", signed_url="").text == "secret for None"


def test_paths_protect_an_asgi_app_inside_a_starlette_mount() -> None:
    """Same bypass for ASGI: inside ``Mount("/v1")`` scope["path"] is ``/v1/api/secret``
    (root_path ``/v1``) while the app routes on ``/api/secret``."""
    h = Harness()
    outer = Starlette(
        routes=[Mount("/v1", app=DatafoldAuthASGIMiddleware(_starlette_inner(), h.verifier, paths="/api"))]
    )
    with serve_asgi(outer) as url:
        r = _get(h, url + "/v1/api/secret", signed_url="")
        assert r.status_code == 401 and r.json()["reason"] == "missing_signature", r.text
        r = _get(h, url + "/v1/api/secret")
        assert (r.status_code, r.text) == (200, "secret for alice")
        assert _get(h, url + "/v1/health", signed_url="").text == "secret for None"


def test_paths_protect_an_asgi_app_under_uvicorn_root_path() -> None:
    """``uvicorn --root-path /v1`` behind a proxy that strips ``/v1``: scope["path"] (and
    raw_path) are root_path + path, the app routes without root_path."""
    h = Harness()
    app = DatafoldAuthASGIMiddleware(_starlette_inner(), h.verifier, paths="/api")
    with _uvicorn(app, root_path="/v1") as url:
        r = _get(h, url + "/api/secret", signed_url="")
        assert r.status_code == 401 and r.json()["reason"] == "missing_signature", r.text
        r = _get(h, url + "/api/secret", signed_url=url + "/v1/api/secret")  # the public path is signed
        assert (r.status_code, r.text) == (200, "secret for alice")


@pytest.mark.parametrize(
    ("path", "mount", "protected"),
    [
        ("/v1/api/x", "/v1", True),  # the app routes on /api/x
        ("/v1/api", "/v1", True),
        ("/v1/apix", "/v1", False),
        ("/v1/other", "/v1", False),
        ("/v1/other/../api/x", "/v1", True),
        ("/v1//api/x", "/v1", True),
        ("/v1/api/open", "/v1", False),  # exempt by its full path
        ("/api/x", "", True),
        ("/v1/api/x", "", False),  # no mount: the app routes on /v1/api/x
    ],
)
def test_path_selection_under_a_mount(path: str, mount: str, protected: bool) -> None:
    assert PathSelector("/api", "/v1/api/open").protects(path, mount) is protected


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"path": "/v1/api", "root_path": "/v1"}, ("/v1/api", "/v1")),
        ({"path": "/v1", "root_path": "/v1/"}, ("/v1", "/v1")),
        ({"path": "/v1x/api", "root_path": "/v1"}, ("/v1x/api", "")),
        ({"path": "/api", "root_path": "/v1"}, ("/api", "")),  # an older server that strips root_path
        ({"path": "/api"}, ("/api", "")),
    ],
)
def test_asgi_mount(scope: Scope, expected: tuple[str, str]) -> None:
    assert asgi_mount(scope) == expected


# ------------------------------------------------------------------ 2. websockets


def _ws_scope(req: Request, path: str | None = None, extensions: dict[str, Any] | None = None) -> Scope:
    path = path or req.path
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws" if req.scheme == "http" else "wss",
        "path": path,
        "raw_path": path.encode(),
        "query_string": (req.query or "").encode(),
        "root_path": "",
        "headers": [(b"host", req.authority.encode())]
        + [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in req.headers],
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": extensions or {},
    }


def _ws_run(wrap: Any, scope: Scope) -> tuple[list[Scope], list[Message]]:
    """Run a websocket connection through ``wrap(inner_app)``; return the scopes the inner app saw and what was sent."""
    seen: list[Scope] = []
    sent: list[Message] = []
    incoming: list[Message] = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]

    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "secret"})

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(wrap(inner)(scope, receive, send))
    return seen, sent


@pytest.mark.parametrize("extensions", [{}, {"websocket.http.response": {}}])
def test_unsigned_websocket_on_a_protected_path_is_refused(extensions: dict[str, Any]) -> None:
    """A websocket handshake to a protected path used to reach the app unauthenticated
    (the middleware passed every non-HTTP scope through)."""
    h = Harness()
    req = Request.from_url("GET", "http://api.test/api/ws")
    seen, sent = _ws_run(
        lambda inner: DatafoldAuthASGIMiddleware(inner, h.verifier), _ws_scope(req, extensions=extensions)
    )
    assert seen == []
    assert not any(m["type"] in ("websocket.accept", "websocket.send") for m in sent)
    if extensions:
        start, body = sent
        assert (start["type"], start["status"]) == ("websocket.http.response.start", 401)
        assert b'"reason":"missing_signature"' in body["body"]
    else:
        assert [m["type"] for m in sent] == ["websocket.close"]


def test_signed_websocket_handshake_is_verified_and_gets_the_identity() -> None:
    h = Harness()
    req = Request.from_url("GET", "http://api.test/api/ws?room=1")
    h.signer.sign(req)
    seen, sent = _ws_run(lambda inner: DatafoldAuthASGIMiddleware(inner, h.verifier), _ws_scope(req))
    assert len(seen) == 1 and seen[0][IDENTITY_KEY].client_id == "alice" and seen[0]["user"].client_id == "alice"
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send"]
    # the same handshake again is a replay
    seen, sent = _ws_run(lambda inner: DatafoldAuthASGIMiddleware(inner, h.verifier), _ws_scope(req))
    assert seen == [] and [m["type"] for m in sent] == ["websocket.close"]


def test_websocket_on_an_exempt_or_unprotected_path_passes() -> None:
    h = Harness()
    req = Request.from_url("GET", "http://api.test/public/ws")
    seen, _ = _ws_run(lambda inner: DatafoldAuthASGIMiddleware(inner, h.verifier, exempt="/public"), _ws_scope(req))
    assert len(seen) == 1 and IDENTITY_KEY not in seen[0]
    seen, _ = _ws_run(lambda inner: DatafoldAuthASGIMiddleware(inner, h.verifier, paths="/api"), _ws_scope(req))
    assert len(seen) == 1


# ------------------------------------------------------------------ 3. component count / repeated parsing


@pytest.mark.parametrize("kind", ["flask", "starlette"])
def test_too_many_covered_components_are_refused(kind: str) -> None:
    """A Signature-Input covering thousands of ``@query-param`` components made the server
    re-parse the query once per component before the signature was checked (knowing a
    keyid is enough): 1,500 of them cost about 5 s of CPU per request."""
    with live_server(kind) as live:
        host = live.url.split("//")[1]
        n = 40
        query = "&".join(f"a{i}=v" for i in range(n))
        comps = " ".join(f'"@query-param";name="a{i}"' for i in range(n))
        signature_input = (
            f'df=("@method" "@authority" "@path" "@query" {comps});created={int(time.time())};'
            f'nonce="n0nce";keyid="{live.harness.signer.keyid}";alg="ed25519";tag="datafold"'
        )
        headers = {"Host": host, "Signature-Input": signature_input, "Signature": "df=:" + "A" * 86 + "==:"}
        r = requests.get(f"{live.url}/api/echo?{query}", headers=headers, timeout=10)
        assert r.status_code == 401 and r.json()["reason"] == "malformed_signature_input", r.text


# ------------------------------------------------------------------ 4. keyid length


@pytest.mark.parametrize("kind", ["flask", "starlette"])
def test_oversized_keyid_is_refused_before_the_registry(kind: str) -> None:
    """A 10 kB keyid went to the registry and into the verifier's negative cache
    (100,000 entries of any size: a memory exhaustion vector)."""
    with live_server(kind) as live:
        req = Request.from_url("GET", live.url + "/api/echo")
        live.harness.signer.sign(req)
        headers = dict(req.headers)
        headers["Signature-Input"] = headers["Signature-Input"].replace(
            live.harness.signer.keyid, "k" * 10_000 if kind == "flask" else "k" * 8_000
        )
        r = requests.get(live.url + "/api/echo", headers=headers, timeout=10)
        assert r.status_code == 401 and r.json()["reason"] == "missing_parameter", r.text
        assert not live.harness.verifier.cache._cache  # nothing was looked up or cached


# ------------------------------------------------------------------ 5. Content-Length lies (werkzeug passes them through)


@pytest.mark.parametrize("length", ["-1", "+5", "1_0", "5 5", "0x5"])
def test_content_length_that_is_not_digits_is_400(length: str) -> None:
    """``int()`` accepted ``+5`` and ``1_0`` (the middleware then waited for a body the
    client never declared) and ``-1`` was answered 401 ``missing_component``."""
    with live_server("flask") as live:
        host = live.url.split("//")[1]
        req = Request.from_url("POST", live.url + "/api/echo", body=b"x" * 10)
        live.harness.signer.sign(req)
        head = ["POST /api/echo HTTP/1.1", f"Host: {host}", f"Content-Length: {length}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in req.headers]
        answer = _raw(live.url, ("\r\n".join(head) + "\r\n\r\n").encode() + b"x" * 10)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert b'"reason":"invalid_request"' in answer


def test_content_length_with_leading_zeros_is_a_number() -> None:
    """``Content-Length: 00`` (a valid zero, RFC 9110 section 8.6) made a body-less signed GET
    need a Content-Digest (401 ``missing_component``)."""
    with live_server("flask") as live:
        req = Request.from_url("GET", live.url + "/api/echo")
        live.harness.signer.sign(req)
        r = requests.get(live.url + "/api/echo", headers={**dict(req.headers), "Content-Length": "00"}, timeout=10)
        assert r.status_code == 200, r.text


# ------------------------------------------------------------------ 6. corrupt registry rows


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("scopes", "not json"),
        ("scopes", '"admin"'),
        ("status", "bogus"),
        ("public_key", b"short"),
        ("expires_at", "soon"),
    ],
)
def test_corrupt_registry_row_is_503_not_500(tmp_path: Any, column: str, value: Any) -> None:
    """A damaged SQLite row gave an uncaught exception (500), a ``400 invalid_key_format``,
    or, for ``scopes = '"admin"'``, a key with the scopes ``a``, ``d``, ``m``, ``i``, ``n``."""
    import sqlite3

    h = Harness()
    registry = SQLiteRegistry(tmp_path / "keys.db")
    registry.register(KeyRecord.for_public_key(h.key.public_key(), client_id="alice", scopes=("read",)))
    with sqlite3.connect(tmp_path / "keys.db") as db:
        db.execute(f"UPDATE keys SET {column} = ?", (value,))  # noqa: S608 - test constant
    h.verifier = Verifier(registry, h.nonce_store, cache_ttl=0)
    with serve_wsgi(_flask_secret(h)) as url:
        r = _get(h, url + "/api/secret")
        assert r.status_code == 503 and r.json()["reason"] == "registry_unavailable", r.text


# ------------------------------------------------------------------ 7. servers without RAW_URI


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_non_ascii_path_verifies_under_a_server_without_raw_uri() -> None:
    """wsgiref gives no RAW_URI/REQUEST_URI; PATH_INFO is latin-1-decoded bytes and was
    re-quoted as UTF-8, so ``/api/%C3%A9`` became ``/api/%C3%83%C2%A9`` and never verified."""
    h = Harness()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ[IDENTITY_KEY].client_id.encode()]

    server = make_server("127.0.0.1", 0, DatafoldAuthMiddleware(app, h.verifier), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/%C3%A9"
        r = _get(h, url)
        assert (r.status_code, r.text) == (200, "alice")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ------------------------------------------------------------------ 8. log injection through the request method


def test_control_characters_in_the_method_do_not_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    """werkzeug takes any run of non-blank bytes as the method; the rejection log lines of the
    middleware and of the registration app wrote it raw, so a request could put terminal
    escape sequences (here: clear screen, set window title) into an operator's log."""
    import logging

    from datafold_auth import MemoryNonceStore, MemoryRegistry
    from datafold_auth.registration import RegistrationApp

    caplog.set_level(logging.INFO, logger="datafold_auth")
    method = b"G\x1b[2J\x1b]0;owned\x07ET"
    with live_server("flask") as live:
        answer = _raw(live.url, method + b" /api/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 401 ")
    with serve_wsgi(RegistrationApp(MemoryRegistry(), MemoryNonceStore())) as url:
        answer = _raw(url, method + b" /keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 405 ")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("datafold_auth")]
    assert len(messages) == 2
    for message in messages:
        assert "\x1b" not in message and "\x07" not in message
        assert "\\x1b" in message  # still there, escaped


# ------------------------------------------------------------------ attacks that hold (regression guards)


@pytest.mark.parametrize("kind", ["flask", "starlette"])
def test_replay_under_another_label_or_beside_a_second_signature_is_refused(kind: str) -> None:
    """The label is not part of the signature base, so a replay may rename it; the nonce is
    keyed by (keyid, nonce) and still catches it."""
    with live_server(kind) as live:
        req = Request.from_url("GET", live.url + "/api/echo")
        live.harness.signer.sign(req)
        headers = dict(req.headers)
        assert requests.get(live.url + "/api/echo", headers=headers, timeout=10).status_code == 200
        for label in ("zz", "df2"):
            relabeled = {
                k: v.replace("df=", f"{label}=", 1) if k.startswith("Signature") else v for k, v in headers.items()
            }
            r = requests.get(live.url + "/api/echo", headers=relabeled, timeout=10)
            assert r.status_code == 401 and r.json()["reason"] == "replayed_nonce", r.text
