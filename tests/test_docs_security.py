"""docs/security.md: the numbers it gives are the code's defaults, and its "NOT protected" rows are true.

The page's Python example runs through the generic doc runner
(tests/test_docs_examples.py); here:

* every default the page quotes is read from the code and looked for in the page;
* the limits the threat table admits are shown to exist: an uncovered header
  can be changed without a refusal, a request accepted by one process's
  in-memory nonce store is accepted again by another's (and refused with a
  shared SQLite store), a self-asserted ``client_id`` registers under open
  registration, and key records are answered without a signature.
"""

from __future__ import annotations

import http.client
import importlib.util
import inspect
import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import datafold_auth as df
from datafold_auth import wire
from datafold_auth.admin import AdminApp
from datafold_auth.audit import verify_chain
from datafold_auth.client.requests import DatafoldAuth
from datafold_auth.keys.kdf import ScryptParams
from datafold_auth.keys.pkcs8 import KDF_ITERATIONS
from datafold_auth.middleware import DatafoldAuthMiddleware
from datafold_auth.nonce.redis import RedisNonceStore
from datafold_auth.nonce.sqlite import SQLiteNonceStore
from datafold_auth.profile import DEFAULT_POLICY
from datafold_auth.ratelimit import DEFAULT_PER_CLIENT, DEFAULT_TOTAL, MemoryRateLimiter, Rate
from datafold_auth.registration import (
    RegistrationApp,
    approval_request,
    handle_registration,
    registration_request,
    rotation_request,
)
from datafold_auth.registration.core import DEFAULT_MAX_BODY, DEFAULT_ROTATION_OVERLAP
from datafold_auth.registry import CachedRegistry
from datafold_auth.registry.remote import RemoteRegistry
from datafold_auth.registry.sqlite import path_from_url

from .conftest import ROOT
from .servers import serve_asgi, serve_wsgi

DOC = ROOT / "docs" / "security.md"
NOW = 1_800_000_000


def text() -> str:
    return " ".join(DOC.read_text().split())


def default(callable_: object, name: str) -> object:
    return inspect.signature(callable_).parameters[name].default  # type: ignore[arg-type]


def test_quoted_defaults_are_the_code_defaults() -> None:
    page = text()
    assert (DEFAULT_POLICY.max_age, DEFAULT_POLICY.clock_skew) == (300, 30)
    assert "from `created - 30 s` (clock skew) to `created + 300 s` (max age)" in page
    assert "within `max_age + clock_skew` (330 s)" in page
    assert (DEFAULT_POLICY.max_keyid_length, DEFAULT_POLICY.max_components, wire.DEFAULT_MAX_BODY) == (
        128,
        32,
        1024 * 1024,
    )
    assert "keyid ≤ 128 characters, ≤ 32 components, body ≤ 1 MiB" in page
    assert default(df.Verifier, "cache_ttl") == 5.0 and default(CachedRegistry, "negative_ttl") == 1.0
    assert "`cache_ttl` seconds (default **5**; unknown keyids 1 s)" in page
    assert default(RemoteRegistry, "ttl") == 5.0 and "its `ttl` (default 5 s)" in page
    assert DEFAULT_ROTATION_OVERLAP == 600 and "`rotation_overlap` (default **600 s**)" in page
    assert default(df.MemoryNonceStore, "capacity") == 1_000_000 and "holds 1,000,000 live nonces" in page
    assert (DEFAULT_PER_CLIENT.count, DEFAULT_PER_CLIENT.per, DEFAULT_TOTAL.count, DEFAULT_TOTAL.per) == (
        10,
        60.0,
        600,
        60.0,
    )
    assert "(10/min per address, 600/min in total)" in page
    assert KDF_ITERATIONS == 600_000 and "PBKDF2-HMAC-SHA256, 600,000 iterations" in page
    assert (ScryptParams().log2_n, ScryptParams().r, ScryptParams().p) == (17, 8, 1)
    assert 128 * 8 * 2**17 == 128 * 1024 * 1024 and "scrypt N=2^17, r=8, p=1** (128 MiB per guess)" in page
    assert "DF_ITER_MIN=600000" in (ROOT / "keytools" / "openssl" / "datafold-lib.sh").read_text()
    assert "export const PBKDF2_ITERATIONS = 600000" in (ROOT / "browser" / "datafold-auth.js").read_text()
    assert DEFAULT_MAX_BODY == 16 * 1024


def test_registration_is_open_by_default_as_the_page_says() -> None:
    app = RegistrationApp(df.MemoryRegistry(), df.MemoryNonceStore())
    assert app.require_approval is False and app.allow_join is False
    assert app.rate_limit is None and app.allowed_scopes == frozenset() and app.default_scopes == ()
    assert app.key_lifetime is None and app.trusted_proxies == 0
    page = text()
    assert "By default registration is **open**" in page and "**NOT limited by default** (`rate_limit=None`)" in page


def test_uncovered_headers_can_be_changed() -> None:
    """The "NOT protected" row: a header outside the covered components changes without a refusal."""
    key = Ed25519PrivateKey.generate()
    record = df.KeyRecord.for_public_key(key.public_key(), client_id="alice")
    request = df.Request.from_url("GET", "https://api.example.com/a", [("X-Role", "user")], b"")
    added = df.Signer(key).sign(request, now=NOW)
    tampered = df.Request.from_url("GET", "https://api.example.com/a", [("X-Role", "admin"), *added], b"")
    verified = df.verify_request(tampered, now=NOW, resolve_key=lambda _k: record, nonce_store=df.MemoryNonceStore())
    assert verified.keyid == record.keyid
    # while a covered component does not
    moved = df.Request.from_url("GET", "https://api.example.com/b", list(added), b"")
    with pytest.raises(df.DatafoldAuthError) as refused:
        df.verify_request(moved, now=NOW, resolve_key=lambda _k: record, nonce_store=df.MemoryNonceStore())
    assert refused.value.reason is df.Reason.BAD_SIGNATURE


def test_replay_across_processes_needs_a_shared_nonce_store(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    record = df.KeyRecord.for_public_key(key.public_key(), client_id="alice")
    request = df.Request.from_url("POST", "https://api.example.com/pay", [], b'{"amount": 10}')
    sent = df.Request.from_url(
        "POST", "https://api.example.com/pay", df.Signer(key).sign(request, now=NOW), request.body
    )

    def verify(store: object) -> df.Reason | None:
        try:
            df.verify_request(sent, now=NOW + 1, resolve_key=lambda _k: record, nonce_store=store)  # type: ignore[arg-type]
        except df.DatafoldAuthError as exc:
            return exc.reason
        return None

    # one in-memory store per worker: the replay to the second worker is accepted
    assert verify(df.MemoryNonceStore()) is None and verify(df.MemoryNonceStore()) is None
    # one SQLite store shared by the workers of a machine: refused
    first, second = SQLiteNonceStore(tmp_path / "n.db"), SQLiteNonceStore(tmp_path / "n.db")
    assert verify(first) is None and verify(second) is df.Reason.REPLAYED_NONCE
    assert "**NOT protected** with `MemoryNonceStore` per process" in text()


def test_client_ids_are_self_asserted_and_records_public() -> None:
    registry, nonces = df.MemoryRegistry(), df.MemoryNonceStore()
    anyone = df.Signer(Ed25519PrivateKey.generate())
    request = registration_request(
        anyone, "https://api.example.com/register/keys", client_id="ceo", label="CEO laptop", now=NOW
    )
    record = handle_registration(request, now=NOW, registry=registry, nonce_store=nonces)
    assert (record.client_id, record.status) == ("ceo", df.KeyStatus.ACTIVE)
    # the record, label included, is answered to anyone who asks
    status, _headers, body = RegistrationApp(registry, nonces).lookup(anyone.keyid)
    assert status == 200 and json.loads(body)["label"] == "CEO laptop"
    assert re.search(r"\*\*NOT an identity\*\*: the first key to register a `client_id` gets it", text())


# ------------------------------------------------------------------ cross-service replay and `authority=`


def _send_with_host(base: str, path: str, host: str, headers: list[tuple[str, str]]) -> tuple[int, dict[str, Any]]:
    """GET ``path`` from the server at ``base`` with ``Host: host`` and ``headers``, over a real socket."""
    netloc = urlsplit(base).netloc
    conn = http.client.HTTPConnection(netloc, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _hello_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"hello": environ["REMOTE_USER"]}).encode()]


def test_cross_service_replay_is_stopped_only_by_a_pinned_authority(tmp_path: Path) -> None:
    """Two services trusting one registry: a request signed for A, sent to B with A's Host, passes B unless B pins."""
    registry = df.SQLiteRegistry(tmp_path / "keys.db")
    key = Ed25519PrivateKey.generate()
    registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id="svc"))
    signer = df.Signer(key)

    def service(authority: str | None) -> DatafoldAuthMiddleware:
        verifier = df.Verifier(df.SQLiteRegistry(tmp_path / "keys.db"), df.MemoryNonceStore(), cache_ttl=0)
        return DatafoldAuthMiddleware(_hello_app, verifier, authority=authority)

    a, b = service(None), service(None)
    with serve_wsgi(a) as url_a, serve_wsgi(b) as url_b:
        host_a, host_b = urlsplit(url_a).netloc, urlsplit(url_b).netloc
        a.authority = host_a  # A pins its own public name

        def signed_for(url: str) -> list[tuple[str, str]]:
            return list(signer.sign(df.Request.from_url("GET", url + "/api/hello", [], b"")))

        # without the pin, B takes @authority from the Host header, which the sender writes: accepted
        status, body = _send_with_host(url_b, "/api/hello", host_a, signed_for(url_a))
        assert (status, body) == (200, {"hello": "svc"})
        # with B's own Host the signature does not match
        status, body = _send_with_host(url_b, "/api/hello", host_b, signed_for(url_a))
        assert (status, body["reason"]) == (401, "bad_signature")

        b.authority = host_b  # B pins its authority: the same forgery is refused
        status, body = _send_with_host(url_b, "/api/hello", host_a, signed_for(url_a))
        assert (status, body["reason"]) == (401, "bad_signature")
        # while requests really signed for B, and for A at A, still pass
        assert _send_with_host(url_b, "/api/hello", host_b, signed_for(url_b)) == (200, {"hello": "svc"})
        assert _send_with_host(url_a, "/api/hello", host_a, signed_for(url_a)) == (200, {"hello": "svc"})
    page = text()
    assert "**protected only when each service pins `authority=`**" in page
    assert "authority=AUTHORITY" in page and "`authority` only when `--authority` is given" in page
    assert "authority=" in (ROOT / "docs" / "operations.md").read_text().split("## 2. Backends")[0]


# ------------------------------------------------------------------ compromise: revoke every key of the client


def _keytools(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "keytools"
    done = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def test_a_compromised_client_needs_every_key_revoked(tmp_path: Path) -> None:
    """A thief with alice's key rotates it to their own and joins a second device.

    Revoking the thief's rotated key also ends the stolen key's overlap, but the
    joined device keeps working until ``keytools admin bulk-revoke --client-id``.
    """
    db = tmp_path / "keys.db"
    registry = df.SQLiteRegistry(db)
    nonces = df.MemoryNonceStore()
    verifier = df.Verifier(registry, nonces, cache_ttl=0)
    app = DispatcherMiddleware(
        NotFound(),
        {
            "/register": RegistrationApp(registry, nonces, allow_join=True, rotation_overlap=600),
            "/admin": AdminApp(registry, verifier),
            "/api": DatafoldAuthMiddleware(_hello_app, verifier),
        },
    )
    ops = tmp_path / "ops"
    _keytools("--home", ops, "generate", "--client-id", "ops", "--no-encryption")
    _keytools("--home", ops, "admin", "bootstrap", "--registry", f"sqlite:{db}", "--client-id", "ops")
    stolen, thief_rotated, thief_device = (df.Signer(Ed25519PrivateKey.generate()) for _ in range(3))
    with serve_wsgi(app) as base:
        keys_url = base + "/register/keys"

        def send(request: df.Request) -> requests.Response:
            url = f"{request.scheme}://{request.authority}{request.path}" + (
                f"?{request.query}" if request.query else ""
            )
            return requests.post(url, data=request.body, headers=dict(request.headers), timeout=10)

        def hello(signer: df.Signer) -> tuple[int, str]:
            answer = requests.get(base + "/api/hello", auth=DatafoldAuth(signer), timeout=10)
            return answer.status_code, answer.json().get("reason") or answer.json()["hello"]

        assert send(registration_request(stolen, keys_url, client_id="alice")).status_code == 201
        assert send(rotation_request(stolen, thief_rotated, keys_url)).status_code == 201
        joined = send(registration_request(thief_device, keys_url, client_id="alice"))
        assert joined.json()["status"] == "pending"
        assert send(approval_request(thief_rotated, keys_url, thief_device.keyid)).status_code == 200
        assert hello(stolen) == hello(thief_rotated) == hello(thief_device) == (200, "alice")

        admin = ("--home", ops)
        url = ("--url", base + "/admin")
        _keytools(*admin, "admin", "revoke", thief_rotated.keyid, "--reason", "stolen", *url)
        # the stolen key was in its rotation overlap: revoked with its successor
        assert hello(thief_rotated) == hello(stolen) == (401, "key_not_active")
        assert hello(thief_device) == (200, "alice")  # outside the rotation chain: still in
        bulk = _keytools(*admin, "admin", "bulk-revoke", "--client-id", "alice", "--reason", "stolen", *url)
        assert "revoked 1 key(s)" in bulk.stdout
        assert hello(thief_device) == (401, "key_not_active")
    page = text()
    assert '`keytools admin bulk-revoke --client-id CLIENT --reason "..."`' in page
    assert "Revoking a key also revokes the keys it replaced that are still in their rotation overlap" in page


# ------------------------------------------------------------------ audit retention


def test_the_audit_pruning_procedure_of_the_page(tmp_path: Path) -> None:
    """Archive, lift the trigger, delete up to N, put it back: the rest verifies from N + 1, not from 1."""
    registry = df.SQLiteRegistry(tmp_path / "keys.db")
    for i in range(4):
        registry.register(df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), client_id=f"c{i}"))
    archive = registry.audit_entries()
    assert verify_chain(archive).count == 4
    cut = archive[2]  # keep entry 4 only
    page = text()
    recreate = (
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is "
        "append-only'); END"
    )
    assert f"`{recreate}`" in page and "`DROP TRIGGER audit_no_delete`" in page
    conn = sqlite3.connect(tmp_path / "keys.db")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE seq <= ?", (cut.seq,))
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE seq <= ?", (cut.seq,))
    conn.execute(recreate)
    conn.commit()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit")
    conn.close()
    registry.register(df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), client_id="c4"))
    rest = registry.audit_entries()
    assert [e.seq for e in rest] == [4, 5]
    assert verify_chain(rest, start_seq=cut.seq + 1, start_prev=cut.hash).count == 2
    with pytest.raises(df.AuditChainError, match="removed"):
        verify_chain(rest)
    assert "`verify_chain(entries, start_seq=N + 1, start_prev=<hash of entry N>)`" in page


# ------------------------------------------------------------------ the facts of sections 2 and 3


def test_sqlite_url_table_is_how_urls_are_read() -> None:
    rows = {
        "sqlite:keys.db": "keys.db",
        "sqlite:state/keys.db": "state/keys.db",
        "sqlite:///var/lib/myapi/keys.db": "/var/lib/myapi/keys.db",
        "sqlite:/var/lib/myapi/keys.db": "/var/lib/myapi/keys.db",
        "sqlite:///keys.db": "/keys.db",
        "sqlite:////var/lib/myapi/keys.db": "//var/lib/myapi/keys.db",
    }
    for url, path in rows.items():
        assert str(path_from_url(url)) == path, url
    page = text()
    for url in list(rows)[:5]:
        assert f"| `{url}` |" in page
    assert '| `f"sqlite:///{path}"` with an absolute `path` | `//var/...`' in page


def test_where_settings_go_and_their_defaults() -> None:
    assert default(DatafoldAuthMiddleware, "max_body") == 1024 * 1024
    assert default(RegistrationApp, "max_body") == 16 * 1024 and default(AdminApp, "max_body") == 8 * 1024 * 1024
    for cls in (DatafoldAuthMiddleware, RegistrationApp, AdminApp):
        assert default(cls, "authority") is None
    assert "trusted_proxies" not in inspect.signature(DatafoldAuthMiddleware).parameters
    assert list(inspect.signature(df.Verifier).parameters)[2] == "policy"
    assert DEFAULT_POLICY.tag == "datafold" and DEFAULT_POLICY.expires_required is False
    page = text()
    assert (
        "| `max_body` for registrations / admin requests | `RegistrationApp(max_body=)` / `AdminApp(max_body=)` | 16 KiB / 8 MiB |"
        in page
    )
    assert "passed as the third argument of `Verifier`" in page


def test_memory_rate_limiter_counts_per_process() -> None:
    """Two workers, two limiters: an address gets the rate from each (the page's "N times the rate")."""
    workers = [MemoryRateLimiter(Rate(2, 60), None), MemoryRateLimiter(Rate(2, 60), None)]
    admitted = sum(worker.hit("198.51.100.7", NOW) is None for worker in workers for _ in range(3))
    assert admitted == 4
    assert "an address can make up to N times the rate" in text()


def test_redis_nonce_keys_are_what_the_sizing_assumes(redis_key_prefix: str) -> None:
    import redis

    from .backends import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
    store = RedisNonceStore(client, prefix=redis_key_prefix)
    key = Ed25519PrivateKey.generate()
    record = df.KeyRecord.for_public_key(key.public_key(), client_id="m")
    now = time.time()
    request = df.Request.from_url("GET", "https://api.example.com/x", [], b"")
    sent = df.Request.from_url("GET", "https://api.example.com/x", df.Signer(key).sign(request, now=now), b"")
    df.verify_request(sent, now=now, resolve_key=lambda _k: record, nonce_store=store)
    (name,) = list(client.scan_iter(match=redis_key_prefix + "*"))
    # with the default prefix the key is 81 bytes: "datafold:nonce:" + 43-character keyid + " " + 22-character nonce
    assert len(name) - len(redis_key_prefix) + len("datafold:nonce:") == 81
    assert 300_000 < client.pttl(name) <= 331_000
    usage = client.memory_usage(name, samples=0)
    assert usage is not None and usage < 340  # the per-key part of the page's 340 bytes per nonce
    assert "**340 bytes \u00d7 peak requests per second \u00d7 331**" in text()


def test_problem_answers_carry_no_time_but_the_server_sends_date() -> None:
    status, headers, body = wire.problem(df.Reason.CREATED_IN_FUTURE)
    assert status == 401 and "date" not in {name.lower() for name, _ in headers}
    assert set(json.loads(body)) == {"type", "title", "status", "reason"}  # no server time in the document
    verifier = df.Verifier(df.MemoryRegistry(), df.MemoryNonceStore())
    with serve_wsgi(DatafoldAuthMiddleware(_hello_app, verifier)) as base:
        answer = requests.get(base + "/api/hello", timeout=10)
    assert answer.status_code == 401 and answer.headers["Date"].endswith(" GMT")
    js = (ROOT / "browser" / "datafold-auth.js").read_text()
    # Signer.fetch signs with the device clock: the page must pass `now` itself to correct skew
    assert "const { request } = await this.signedRequest(input, init);" in js
    assert "const created = Math.floor(options.now ?? Date.now() / 1000);" in js
    assert "`Signer.fetch` always signs with the device's `Date.now()`" in text()


def test_passphrase_length_is_left_to_integrators() -> None:
    js = (ROOT / "browser" / "datafold-auth.js").read_text()
    check = js[js.index("function requirePassphrase(") :]
    check = check[: check.index("\n}\n")]
    assert 'passphrase === ""' in check and "length <" not in check  # the module: non-empty only
    assert "const MIN_PASSPHRASE = 12;" in (ROOT / "browser" / "app.js").read_text()  # the page: 12
    assert "**integrators must enforce a minimum length in their own pages and flows**" in text()


def test_shared_app_pins_the_authority_it_is_given(tmp_path: Path) -> None:
    """examples/shared_app.py --authority: requests signed for another host are refused, whatever Host they carry."""
    spec = importlib.util.spec_from_file_location("shared_app_for_security", ROOT / "examples" / "shared_app.py")
    assert spec is not None and spec.loader is not None
    shared_app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shared_app)
    key = Ed25519PrivateKey.generate()
    df.SQLiteRegistry(tmp_path / "keys.db").register(df.KeyRecord.for_public_key(key.public_key(), client_id="svc"))
    app = shared_app.create_app(f"sqlite:{tmp_path}/keys.db", authority="api.example")
    with serve_asgi(app) as base:
        for signed_host, status in (("api.example", 200), ("other.example", 401)):
            request = df.Request.from_url("GET", f"https://{signed_host}/api/hello", [], b"")
            headers = list(df.Signer(key).sign(request))
            code, body = _send_with_host(base, "/api/hello", signed_host, headers)
            assert code == status, body
            assert body.get("hello") == "svc" if status == 200 else body["reason"] == "bad_signature"


def test_the_audit_pruning_procedure_on_postgresql(pg_schema: str) -> None:
    """The PostgreSQL form: DISABLE TRIGGER, delete up to N, ENABLE TRIGGER, in one transaction."""
    import psycopg

    from .backends import POSTGRES_URL

    registry = df.open_registry(f"{POSTGRES_URL}?schema={pg_schema}")
    try:
        for i in range(3):
            registry.register(df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), client_id=f"p{i}"))
        cut = registry.audit_entries()[1]
        with psycopg.connect(POSTGRES_URL) as conn:
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(f'DELETE FROM "{pg_schema}".audit WHERE seq <= %s', (cut.seq,))  # noqa: S608
            conn.rollback()
            with conn.transaction():
                conn.execute(f'ALTER TABLE "{pg_schema}".audit DISABLE TRIGGER audit_append_only')
                conn.execute(f'DELETE FROM "{pg_schema}".audit WHERE seq <= %s', (cut.seq,))  # noqa: S608
                conn.execute(f'ALTER TABLE "{pg_schema}".audit ENABLE TRIGGER audit_append_only')
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(f'DELETE FROM "{pg_schema}".audit')  # noqa: S608
        registry.register(df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), client_id="p3"))
        rest = registry.audit_entries()
        assert [e.seq for e in rest] == [3, 4]
        assert verify_chain(rest, start_seq=cut.seq + 1, start_prev=cut.hash).count == 2
    finally:
        registry.close()
    assert "`ALTER TABLE audit DISABLE TRIGGER audit_append_only` / `ENABLE TRIGGER`" in text()
