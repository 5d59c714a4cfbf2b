"""Hostile input and a flapping database at the registration endpoint and the middleware.

* ``expires_at`` beyond 64 bits (or beyond year 9999) in a registration or a rotation is
  ``400 invalid_request`` on every registry. It was a 500 with a traceback on SQLite
  (``OverflowError``), a 503 ``registry_unavailable`` on PostgreSQL (``bigint out of range``:
  the client is told to retry for ever) and stored as is in memory.
* PostgreSQL stays reachable but every pooled connection is killed (``pg_terminate_backend``,
  as a failover or a restart of a connection pooler does), again and again: the pool checks a
  connection before use, so signed requests keep getting 200, never a 503, 401 or 500.
* A registration whose transaction is cut off mid-way (its backend terminated while it waits
  for the ``audit_head`` row lock) is ``503 registry_unavailable`` with ``Retry-After``, and
  leaves nothing half-registered: the same key registers afterwards.

Servers are real (werkzeug, uvicorn); PostgreSQL is a private cluster (tests/private_services.py),
or the shared one with a schema of its own for the input checks.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import KeyRecord, MemoryNonceStore, Signer, Verifier, open_registry
from datafold_auth.client.requests import DatafoldAuth
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.registration import RegistrationApp, registration_request
from datafold_auth.registration.core import rotation_request

from .private_services import PrivatePostgres, private_postgres
from .servers import serve_asgi, serve_wsgi
from .test_faults_services import _ok_asgi, _ok_wsgi

psycopg = pytest.importorskip("psycopg")

SHARED_PG = os.environ.get("DATAFOLD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _problem(answer: requests.Response) -> tuple[int, str]:
    assert answer.headers.get("Content-Type") == "application/problem+json", (answer.status_code, answer.text[:300])
    return answer.status_code, json.loads(answer.content)["reason"]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def registry(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    schema = f"adv_{uuid.uuid4().hex[:12]}"
    url = {
        "memory": "memory://",
        "sqlite": f"sqlite:{tmp_path / 'keys.db'}",
        "postgres": f"{SHARED_PG}?schema={schema}",
    }
    try:
        reg = open_registry(url[str(request.param)])
    except Exception as exc:  # the shared PostgreSQL is not running here
        pytest.skip(f"{request.param}: {exc}")
    try:
        yield reg
    finally:
        close = getattr(reg, "close", None)
        if close:
            close()
        if request.param == "postgres":
            with psycopg.connect(SHARED_PG, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


HUGE = [2**63 - 1, 2**63, 10**30, 253402300800]


@pytest.mark.parametrize("expires_at", HUGE)
def test_an_expiry_beyond_year_9999_is_a_400_not_a_500_or_503(registry: Any, expires_at: int) -> None:
    with serve_wsgi(RegistrationApp(registry, MemoryNonceStore())) as base:
        signer = Signer(Ed25519PrivateKey.generate())
        req = registration_request(signer, base + "/keys", expires_at=expires_at)
        answer = requests.post(base + "/keys", data=req.body, headers=dict(req.headers), timeout=10)
        assert _problem(answer) == (400, "invalid_request")
        # a rotation asking for it is refused the same way
        req = registration_request(signer, base + "/keys")
        assert requests.post(base + "/keys", data=req.body, headers=dict(req.headers), timeout=10).status_code == 201
        new = Signer(Ed25519PrivateKey.generate())
        rot = rotation_request(signer, new, base + "/keys", expires_at=expires_at)
        answer = requests.post(
            f"{rot.scheme}://{rot.authority}{rot.path}", data=rot.body, headers=dict(rot.headers), timeout=10
        )
        assert _problem(answer) == (400, "invalid_request")
        # the largest accepted value registers
        ok = registration_request(new, base + "/keys", client_id="late", expires_at=253402300799)
        assert requests.post(base + "/keys", data=ok.body, headers=dict(ok.headers), timeout=10).status_code == 201


# ------------------------------------------------------------------ a flapping PostgreSQL


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def _terminate(pg: PrivatePostgres, *, waiting_for_a_lock: bool = False, spare: int = 0) -> int:
    """Terminate client backends (not ours, not ``spare``; only those waiting for a lock if asked); return how many."""
    with psycopg.connect(pg.url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND pid <> %s AND backend_type = 'client backend'"
            " AND (NOT %s OR wait_event_type = 'Lock')",
            (spare, waiting_for_a_lock),
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_pooled_connections_killed_again_and_again_cost_no_request(pg: PrivatePostgres, kind: str) -> None:
    registry = open_registry(f"{pg.url}?schema=flap_{kind}&pool_min=2&pool_max=4&pool_timeout=2")
    try:
        key = Ed25519PrivateKey.generate()
        registry.register(KeyRecord.for_public_key(key.public_key(), client_id=f"flap-{kind}"))
        verifier = Verifier(registry, MemoryNonceStore(), cache_ttl=0)
        middleware: Any = DatafoldAuthMiddleware(_ok_wsgi, verifier) if kind == "wsgi" else None
        serve = serve_wsgi(middleware) if kind == "wsgi" else serve_asgi(DatafoldAuthASGIMiddleware(_ok_asgi, verifier))
        statuses: list[int] = []
        killed = 0
        with serve as base, requests.Session() as session:
            session.auth = DatafoldAuth(Signer(key))
            for _ in range(8):
                for _ in range(3):
                    statuses.append(session.get(base + "/api/x", timeout=20).status_code)
                killed += _terminate(pg)
        assert killed >= 8  # every round killed live pooled connections
        assert statuses == [200] * len(statuses)
    finally:
        registry.close()


def test_a_registration_cut_off_mid_transaction_is_503_and_leaves_nothing_half_done(pg: PrivatePostgres) -> None:
    registry = open_registry(f"{pg.url}?schema=midtx&pool_timeout=2")
    try:
        with serve_wsgi(RegistrationApp(registry, MemoryNonceStore())) as base:
            signer = Signer(Ed25519PrivateKey.generate())
            answers: list[requests.Response] = []
            with psycopg.connect(pg.url) as blocker:  # holds the audit_head row lock: the registration waits
                blocker.execute("SELECT 1 FROM midtx.audit_head WHERE id = 1 FOR UPDATE")
                req = registration_request(signer, base + "/keys", client_id="midtx")
                sender = threading.Thread(
                    target=lambda: answers.append(
                        requests.post(base + "/keys", data=req.body, headers=dict(req.headers), timeout=20)
                    )
                )
                sender.start()
                deadline = time.monotonic() + 10
                while not _terminate(pg, waiting_for_a_lock=True, spare=blocker.info.backend_pid):
                    assert time.monotonic() < deadline, "the registration never waited for the lock"
                    time.sleep(0.05)
                sender.join(20)
                blocker.rollback()
            (answer,) = answers
            assert _problem(answer) == (503, "registry_unavailable")
            assert int(answer.headers["Retry-After"]) >= 1
            assert registry.get(signer.keyid) is None
            again = registration_request(signer, base + "/keys", client_id="midtx")
            answer = requests.post(base + "/keys", data=again.body, headers=dict(again.headers), timeout=20)
            assert answer.status_code == 201, answer.text
    finally:
        registry.close()


# ------------------------------------------------------------------ settings that fail every request


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "0", "1e400"])
def test_a_redis_timeout_that_fails_every_command_is_refused_at_open(timeout: str) -> None:
    """Such a store used to open fine and then answer every signed request 503 (ValueError,
    OverflowError or a non-blocking socket at the first command)."""
    from datafold_auth import open_nonce_store
    from datafold_auth.errors import NonceStoreError

    with pytest.raises(NonceStoreError, match="timeout must be a positive number"):
        open_nonce_store(f"redis://127.0.0.1:1/0?timeout={timeout}")


@pytest.mark.parametrize(
    "query", ["pool_timeout=nan", "pool_timeout=inf", "pool_timeout=0", "pool_timeout=-1", "pool_max=0",
              "pool_min=5&pool_max=2", "pool_min=-1"],
)  # fmt: skip
def test_postgres_pool_settings_out_of_range_are_a_registry_error_before_connecting(query: str) -> None:
    """pool_max=0 escaped as a bare ValueError; nan/0/-1 timeouts were reported as an unavailable database."""
    from datafold_auth.errors import RegistryError

    with pytest.raises(RegistryError, match=r"^invalid_configuration: (pool_timeout must|pool sizes must)"):
        open_registry(f"postgresql://postgres@127.0.0.1:1/nowhere?{query}")  # port 1: never reached
