"""Test helpers: real Flask/Starlette/FastAPI apps behind the middleware, served on loopback.

Nothing here is mocked: keys are real Ed25519 keys, the registry and nonce
store are the in-memory backends (with switchable outages), and the servers
are werkzeug's and uvicorn's, each in a thread on ``127.0.0.1``.
:func:`serve_process` runs a server (an example app, a Django project) as a
subprocess instead.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi import Request as FastAPIRequest
from werkzeug.serving import make_server

from datafold_auth import (
    KeyRecord,
    KeyStatus,
    MemoryNonceStore,
    MemoryRegistry,
    NonceStoreError,
    RegistryError,
    Signer,
    Verifier,
)
from datafold_auth.middleware import IDENTITY_KEY, VERIFIED_KEY, DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware

MAX_BODY = 64 * 1024
"""The body limit the test servers are configured with (bytes)."""
EXEMPT = ("/health",)
"""Prefixes the test servers pass through unsigned."""
DOWN_NONCE = "nonce-store-is-down"
"""Requests signed with this nonce find the nonce store unavailable."""


class FlakyRegistry(MemoryRegistry):
    """A :class:`MemoryRegistry` whose lookups of the keyids in ``down`` raise :class:`RegistryError`."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    def get(self, keyid: str) -> KeyRecord | None:
        if keyid in self.down:
            raise RegistryError("test registry is down")
        return super().get(keyid)


class FlakyNonceStore(MemoryNonceStore):
    """A :class:`MemoryNonceStore` that raises :class:`NonceStoreError` for :data:`DOWN_NONCE`."""

    def add(self, key: str, expires_at: float, now: float) -> bool:
        if key.endswith(" " + DOWN_NONCE):
            raise NonceStoreError("test nonce store is down")
        return super().add(key, expires_at, now)


_client_ids = itertools.count()


@dataclass
class Harness:
    """A registry with one active key (``alice``, scopes read+write) and a verifier over it."""

    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    registry: FlakyRegistry = field(default_factory=FlakyRegistry)
    nonce_store: FlakyNonceStore = field(default_factory=FlakyNonceStore)
    client_id: str = "alice"
    scopes: tuple[str, ...] = ("read", "write")

    def __post_init__(self) -> None:
        self.registry.register(
            KeyRecord.for_public_key(self.key.public_key(), client_id=self.client_id, scopes=self.scopes)
        )
        self.signer = Signer(self.key)
        # cache_ttl=0: status changes made by a test are seen by the next request.
        self.verifier = Verifier(self.registry, self.nonce_store, cache_ttl=0)

    def add_key(self, status: KeyStatus = KeyStatus.ACTIVE) -> Signer:
        """Register a new key for a fresh client_id with ``status``; return its signer."""
        key = Ed25519PrivateKey.generate()
        self.registry.register(
            KeyRecord.for_public_key(key.public_key(), client_id=f"client-{next(_client_ids)}", status=status)
        )
        return Signer(key)


def describe(identity: Any, verified: Any, body: bytes, user: str | None, auth: Any) -> dict[str, Any]:
    """What the echo endpoints answer: what the app saw of the identity and the body."""
    return {
        "client_id": identity and identity.client_id,
        "keyid": identity and identity.keyid,
        "scopes": identity and list(identity.scopes),
        "created": verified and verified.created,
        "user": user,
        "auth": None if auth is None else list(auth),
        "body_b64": base64.b64encode(body).decode("ascii"),
    }


METHODS = ["GET", "POST", "PUT", "DELETE"]


def flask_app(harness: Harness) -> Any:
    """A Flask app with ``/api/echo`` and ``/health``, its ``wsgi_app`` wrapped in the middleware."""
    from flask import Flask, request

    app = Flask("datafold-test")

    @app.route("/api/echo", methods=METHODS)
    @app.route("/health", methods=METHODS)
    def echo() -> dict[str, Any]:
        env = request.environ
        return describe(env.get(IDENTITY_KEY), env.get(VERIFIED_KEY), request.get_data(), request.remote_user, None)

    app.wsgi_app = DatafoldAuthMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, harness.verifier, exempt=EXEMPT, max_body=MAX_BODY
    )
    return app


async def _starlette_echo(request: Any) -> Any:
    from starlette.responses import JSONResponse

    scope = request.scope
    user = request.user.display_name if "user" in scope else None
    document = describe(scope.get(IDENTITY_KEY), scope.get(VERIFIED_KEY), await request.body(), user, scope.get("auth"))
    document["lifespan_ran"] = getattr(request.app.state, "lifespan_ran", False)
    return JSONResponse(document)


@asynccontextmanager
async def _lifespan(app: Any) -> Any:
    app.state.lifespan_ran = True
    yield


def starlette_app(harness: Harness) -> Any:
    """A Starlette app with ``/api/echo`` and ``/health`` and a lifespan, wrapped in the ASGI middleware."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    routes = [Route(p, _starlette_echo, methods=METHODS) for p in ("/api/echo", "/health")]
    app = Starlette(routes=routes, lifespan=_lifespan)
    return DatafoldAuthASGIMiddleware(app, harness.verifier, exempt=EXEMPT, max_body=MAX_BODY)


def fastapi_app(harness: Harness) -> Any:
    """The same endpoints in FastAPI, with the middleware added by ``add_middleware``."""
    app = FastAPI(lifespan=_lifespan)

    @app.api_route("/api/echo", methods=METHODS)
    @app.api_route("/health", methods=METHODS)
    async def echo(request: FastAPIRequest) -> Any:
        return await _starlette_echo(request)

    app.add_middleware(
        DatafoldAuthASGIMiddleware,
        verifier=harness.verifier,
        exempt=EXEMPT,
        max_body=MAX_BODY,
    )
    return app


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI app with werkzeug's threaded server on a free loopback port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="wsgi-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn (lifespan on) on a free loopback port; yield its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="asgi-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Live:
    """A running server: its kind (``flask``, ``starlette``, ``fastapi``), base URL and harness."""

    kind: str
    url: str
    harness: Harness


@contextmanager
def live_server(kind: str) -> Iterator[Live]:
    """Start the ``kind`` app behind the middleware with a fresh :class:`Harness`."""
    harness = Harness()
    if kind == "flask":
        with serve_wsgi(flask_app(harness)) as url:
            yield Live(kind, url, harness)
        return
    factory = {"starlette": starlette_app, "fastapi": fastapi_app}[kind]
    with serve_asgi(factory(harness)) as url:
        yield Live(kind, url, harness)


KINDS = ["flask", "starlette", "fastapi"]


STARTUP_SECONDS = 30.0
"""How long a server subprocess may take to accept connections (generous: CI machines are slow)."""


@contextmanager
def serve_process(
    argv: Sequence[str], *, port: int, log: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Run ``argv`` as a server in its own process group, its output in ``log``; yield ``http://127.0.0.1:<port>``.

    Waits until ``127.0.0.1:port`` accepts a TCP connection (at most :data:`STARTUP_SECONDS`;
    an ``AssertionError`` with the log if the process exits or the time runs out). Afterwards
    the group gets SIGTERM (SIGKILL after 10 s) and, when the ``with`` body raised nothing,
    the log must hold no ``Traceback``.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert b"Traceback" not in log.read_bytes(), log.read_text()
