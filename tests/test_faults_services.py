"""Faults in the services: PostgreSQL stopped mid-run, Redis killed, unreachable or frozen.

Each test runs its own PostgreSQL cluster or redis-server (tests/private_services.py;
the shared servers on 5432/6379 are never touched), serves a real app behind the
middleware on loopback (werkzeug for WSGI, uvicorn for ASGI), and sends signed
requests from a client loop while the service goes away and comes back.

What must hold (docs/operations.md, "Failure behaviour"):

* during the outage every answer is ``503 application/problem+json`` with the
  reason (``registry_unavailable`` / ``nonce_store_unavailable``) and a
  ``Retry-After``; never 401, never 500, never a hang;
* when the service is back, requests succeed again after a bounded number of
  attempts, without restarting the app;
* the registration endpoint answers the same 503, not 500.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import KeyRecord, MemoryNonceStore, MemoryRegistry, Signer, Verifier, open_nonce_store
from datafold_auth.client.requests import DatafoldAuth
from datafold_auth.errors import RegistryError
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.registration import RegistrationApp, registration_request
from datafold_auth.registry.postgres import PostgresRegistry, open_postgres

from .private_services import PrivatePostgres, PrivateRedis, free_port, private_postgres, private_redis
from .servers import serve_asgi, serve_wsgi

KINDS = ["wsgi", "asgi"]
POOL = "pool_timeout=1"
"""Registry URL options: a request waits at most 1 s for a pooled connection during an outage."""
CLIENT_TIMEOUT = 20.0
"""Seconds the test client waits for an answer: a server that hangs longer fails the test."""
RECOVERY_ATTEMPTS = 10
"""Requests after the service is back within which one must succeed."""


# ------------------------------------------------------------------ the app and the client


def _ok_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"client_id": environ.get("REMOTE_USER")}).encode()]


async def _ok_asgi(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    user = scope.get("datafold_auth.identity")
    body = json.dumps({"client_id": user and user.client_id}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serve(kind: str, verifier: Verifier) -> Iterator[str]:
    """Serve the tiny app behind the WSGI or ASGI middleware; yield its base URL."""
    if kind == "wsgi":
        with serve_wsgi(DatafoldAuthMiddleware(_ok_wsgi, verifier)) as url:
            yield url
    else:
        with serve_asgi(DatafoldAuthASGIMiddleware(_ok_asgi, verifier)) as url:
            yield url


@dataclass
class Answer:
    """One request of the loop: when it started and what came back."""

    started: float
    status: int
    content_type: str
    reason: str | None
    retry_after: str | None


def call(session: requests.Session, url: str, signer: Signer) -> Answer:
    """One signed ``GET url``."""
    started = time.monotonic()
    resp = session.get(url, auth=DatafoldAuth(signer), timeout=CLIENT_TIMEOUT)
    ctype = resp.headers.get("Content-Type", "")
    reason = resp.json().get("reason") if ctype == "application/problem+json" else None
    return Answer(started, resp.status_code, ctype, reason, resp.headers.get("Retry-After"))


def assert_unavailable(answer: Answer, reason: str) -> None:
    """The answer is the documented outage answer: 503 problem+json with ``reason`` and ``Retry-After``."""
    assert (answer.status, answer.content_type, answer.reason) == (503, "application/problem+json", reason), answer
    assert answer.retry_after is not None and int(answer.retry_after) >= 1, answer


@dataclass
class ClientLoop:
    """Signed requests sent one after another from a thread until :meth:`stop`."""

    url: str
    signer: Signer
    answers: list[Answer] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-client", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    self.answers.append(call(session, self.url, self.signer))
                except BaseException as exc:  # a hang (client timeout) or a dropped connection fails the test
                    self.errors.append(exc)
                    return
                time.sleep(0.02)

    def wait_for(self, count: int, predicate: Callable[[Answer], bool], since: float, limit: float = 60.0) -> None:
        """Wait until ``count`` answers to requests started after ``since`` satisfy ``predicate``."""
        deadline = time.monotonic() + limit
        while sum(1 for a in list(self.answers) if a.started > since and predicate(a)) < count:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"waited {limit} s; answers: {self.answers[-5:]}"
            time.sleep(0.02)

    def stop(self) -> list[Answer]:
        self._stop.set()
        self._thread.join(CLIENT_TIMEOUT + 5)
        assert not self.errors, self.errors
        return list(self.answers)


def check_recovery(after: list[Answer], reason: str) -> None:
    """Requests sent once the service is back: the outage 503 at most until one succeeds (within
    :data:`RECOVERY_ATTEMPTS`), then only successes."""
    first_ok = next((i for i, a in enumerate(after) if a.status == 200), len(after))
    assert first_ok < RECOVERY_ATTEMPTS, after[: first_ok + 1]
    for answer in after[:first_ok]:
        assert_unavailable(answer, reason)
    assert all(a.status == 200 for a in after[first_ok:]), after[first_ok:]


def check_outage_run(answers: list[Answer], down: float, up: float, reason: str) -> None:
    """Every answer is 200 or the outage 503; all started in [down, up) are 503; recovery is bounded."""
    for answer in answers:
        if answer.status != 200:
            assert_unavailable(answer, reason)  # never 401, never 500
    during = [a for a in answers if down <= a.started < up]
    assert during, "no request was sent during the outage"
    for answer in during:
        assert_unavailable(answer, reason)
    check_recovery([a for a in answers if a.started >= up], reason)


def outage_run(
    kind: str, verifier: Verifier, signer: Signer, stop: Callable[[], None], start: Callable[[], None], reason: str
) -> None:
    """The ``kind`` app over ``verifier`` under a loop of requests signed by ``signer``; once 3 succeeded,
    ``stop()`` takes the service away; once 3 got 503, ``start()`` brings it back; then 5 must succeed.
    :func:`check_outage_run` holds for every answer but those to requests started while ``start()`` ran."""
    with serve(kind, verifier) as base:
        loop = ClientLoop(base + "/api/x", signer)
        loop.wait_for(3, lambda a: a.status == 200, since=0)
        stop()
        down = time.monotonic()
        loop.wait_for(3, lambda a: a.status == 503, since=down)
        up_called = time.monotonic()
        start()
        up = time.monotonic()
        loop.wait_for(5, lambda a: a.status == 200, since=up)
        answers = loop.stop()
    check_outage_run([a for a in answers if not up_called <= a.started < up], down, up_called, reason)


# ------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


_schemas = iter(range(10_000))


@pytest.fixture
def registry(pg: PrivatePostgres) -> Iterator[PostgresRegistry]:
    if not pg.running():
        pg.start()
    reg = open_postgres(f"{pg.url}?schema=faults_{next(_schemas)}&{POOL}", connect_timeout=2)
    try:
        yield reg
    finally:
        reg.close()
        if not pg.running():
            pg.start()


_clients = itertools.count()


def _alice(registry: Any) -> Signer:
    """Register a new active key for a new client; return its signer."""
    key = Ed25519PrivateKey.generate()
    registry.register(KeyRecord.for_public_key(key.public_key(), client_id=f"client-{next(_clients)}"))
    return Signer(key)


@pytest.mark.parametrize("mode", ["immediate", "fast"])
@pytest.mark.parametrize("kind", KINDS)
def test_postgres_stopped_mid_run_is_503_then_recovers(
    pg: PrivatePostgres, registry: PostgresRegistry, kind: str, mode: str
) -> None:
    """cache_ttl=0: every request reaches the database, so the outage is seen at once."""
    verifier = Verifier(registry, MemoryNonceStore(), cache_ttl=0)
    outage_run(kind, verifier, _alice(registry), lambda: pg.stop(mode), pg.start, "registry_unavailable")


def test_postgres_outage_with_the_cache(pg: PrivatePostgres, registry: PostgresRegistry) -> None:
    """With the cache on, a key looked up before the outage keeps verifying until its entry expires
    (``cache_ttl``: the same bound as for a revocation); a key not cached is 503 at once."""
    signer = _alice(registry)
    uncached = _alice(registry)
    verifier = Verifier(registry, MemoryNonceStore(), cache_ttl=3600)
    with serve("wsgi", verifier) as base, requests.Session() as session:
        url = base + "/api/x"
        assert call(session, url, signer).status == 200  # now cached
        pg.stop("fast")
        assert [call(session, url, signer).status for _ in range(3)] == [200, 200, 200]
        assert_unavailable(call(session, url, uncached), "registry_unavailable")
        verifier.cache.invalidate()  # what the passing of cache_ttl does
        assert_unavailable(call(session, url, signer), "registry_unavailable")
        pg.start()
        answers = [call(session, url, signer) for _ in range(RECOVERY_ATTEMPTS)]
        check_recovery(answers, "registry_unavailable")
        assert call(session, url, uncached).status == 200


@pytest.mark.parametrize("mode", ["immediate", "fast"])
def test_postgres_restarted_while_everything_was_cached(
    pg: PrivatePostgres, registry: PostgresRegistry, mode: str
) -> None:
    """The database restarts while no request needs it: the pooled connections are dead when the
    cache expires, and the first lookup must still succeed (the pool checks a connection before use)."""
    signer = _alice(registry)
    verifier = Verifier(registry, MemoryNonceStore(), cache_ttl=3600)
    with serve("wsgi", verifier) as base, requests.Session() as session:
        url = base + "/api/x"
        assert call(session, url, signer).status == 200
        pg.stop(mode)
        assert call(session, url, signer).status == 200  # from the cache
        pg.start()
        verifier.cache.invalidate()
        first = call(session, url, signer)
        assert first.status == 200, first


def test_registration_with_postgres_down_is_503(pg: PrivatePostgres, registry: PostgresRegistry) -> None:
    with serve_wsgi(RegistrationApp(registry, MemoryNonceStore())) as base, requests.Session() as session:

        def register() -> requests.Response:
            req = registration_request(Signer(Ed25519PrivateKey.generate()), base + "/keys")
            return session.post(base + "/keys", data=req.body, headers=dict(req.headers), timeout=CLIENT_TIMEOUT)

        assert register().status_code == 201
        pg.stop("immediate")
        for _ in range(3):
            resp = register()
            assert resp.status_code == 503, resp.text
            assert resp.headers["Content-Type"] == "application/problem+json"
            assert resp.json()["reason"] == "registry_unavailable" and int(resp.headers["Retry-After"]) >= 1
        pg.start()
        statuses = [register().status_code for _ in range(RECOVERY_ATTEMPTS)]
        assert 201 in statuses and set(statuses) <= {201, 503}, statuses
        assert all(s == 201 for s in statuses[statuses.index(201) :]), statuses


def test_postgres_unreachable_at_startup_is_a_registry_error() -> None:
    """Opening the registry (app start-up) against a dead server fails with a clear typed error."""
    with pytest.raises(RegistryError) as caught:
        open_postgres(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?{POOL}", connect_timeout=2)
    assert caught.value.reason.value == "registry_unavailable"
    assert "cannot open the PostgreSQL registry" in caught.value.detail


# ------------------------------------------------------------------ Redis


@pytest.fixture(scope="module")
def redis_server() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


@pytest.fixture
def redis_up(redis_server: PrivateRedis) -> Iterator[PrivateRedis]:
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    try:
        yield redis_server
    finally:
        if redis_server.process is not None and redis_server.process.poll() is None:
            redis_server.thaw()
        else:
            redis_server.start()


def _memory_registry() -> tuple[MemoryRegistry, Signer]:
    registry = MemoryRegistry()
    return registry, _alice(registry)


@pytest.mark.parametrize("kind", KINDS)
def test_redis_killed_mid_run_fails_closed_then_recovers(redis_up: PrivateRedis, kind: str) -> None:
    registry, signer = _memory_registry()
    verifier = Verifier(registry, open_nonce_store(redis_up.url + "?prefix=faults:"))
    outage_run(kind, verifier, signer, redis_up.kill, redis_up.start, "nonce_store_unavailable")


def test_redis_unreachable_from_the_start(redis_server: PrivateRedis) -> None:
    """The app starts (the client connects lazily), refuses with 503 until Redis is there, then works."""
    registry, signer = _memory_registry()
    later = PrivateRedis(redis_server.binary)  # a port nothing listens on yet
    try:
        verifier = Verifier(registry, open_nonce_store(later.url))
        with serve("wsgi", verifier) as base, requests.Session() as session:
            for _ in range(3):
                assert_unavailable(call(session, base + "/api/x", signer), "nonce_store_unavailable")
            later.start()
            answers = [call(session, base + "/api/x", signer) for _ in range(RECOVERY_ATTEMPTS)]
        check_recovery(answers, "nonce_store_unavailable")
    finally:
        later.close()


@pytest.mark.parametrize("kind", KINDS)
def test_frozen_redis_is_503_in_bounded_time(redis_up: PrivateRedis, kind: str) -> None:
    """SIGSTOP: the TCP connection stays up but nothing answers. The store's socket timeout (1 s by
    default) turns that into 503; the client's own timeout (20 s) would fail the test on a hang."""
    registry, signer = _memory_registry()
    verifier = Verifier(registry, open_nonce_store(redis_up.url))
    with serve(kind, verifier) as base, requests.Session() as session:
        url = base + "/api/x"
        assert call(session, url, signer).status == 200  # the pooled connection exists
        redis_up.freeze()
        for _ in range(3):  # the open connection, then new ones (accepted by the kernel, never answered)
            assert_unavailable(call(session, url, signer), "nonce_store_unavailable")
        redis_up.thaw()
        answers = [call(session, url, signer) for _ in range(RECOVERY_ATTEMPTS)]
    check_recovery(answers, "nonce_store_unavailable")


def test_registration_with_redis_down_is_503(redis_up: PrivateRedis) -> None:
    registry = MemoryRegistry()
    app = RegistrationApp(registry, open_nonce_store(redis_up.url))
    with serve_wsgi(app) as base, requests.Session() as session:

        def register() -> requests.Response:
            req = registration_request(Signer(Ed25519PrivateKey.generate()), base + "/keys")
            return session.post(base + "/keys", data=req.body, headers=dict(req.headers), timeout=CLIENT_TIMEOUT)

        assert register().status_code == 201
        redis_up.kill()
        resp = register()
        assert (resp.status_code, resp.headers["Content-Type"]) == (503, "application/problem+json"), resp.text
        assert resp.json()["reason"] == "nonce_store_unavailable" and int(resp.headers["Retry-After"]) >= 1
        assert len(registry.list()) == 1  # nothing stored without replay protection
        redis_up.start()
        statuses = [register().status_code for _ in range(RECOVERY_ATTEMPTS)]
        assert 201 in statuses and set(statuses) <= {201, 503}, statuses
