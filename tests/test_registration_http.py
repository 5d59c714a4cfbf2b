"""Registration over real HTTP: the WSGI app under werkzeug and the ASGI app under uvicorn, on loopback.

Nothing is mocked: real keys, real servers in threads, real ``requests`` calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.routing import Mount
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

import datafold_auth as df
from datafold_auth.jwk import b64url_encode, jwk_thumbprint, public_jwk
from datafold_auth.registration import RegistrationApp, RegistrationASGIApp, registration_request

WSGIApp = Callable[..., Any]
Serve = Callable[..., str]


@contextmanager
def wsgi_server(app: WSGIApp) -> Iterator[str]:
    """Serve a WSGI app with werkzeug (threaded) on 127.0.0.1; yield the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), name="werkzeug-test", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def asgi_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1; yield the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True)
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


@pytest.fixture(params=["wsgi", "asgi"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """``serve(registry, **app_options) -> base URL``: the registration app on a real server."""
    with ExitStack() as stack:

        def start(registry: df.KeyRegistry, nonce_store: df.NonceStore | None = None, **options: Any) -> str:
            store = nonce_store or df.MemoryNonceStore()
            if request.param == "wsgi":
                return stack.enter_context(wsgi_server(RegistrationApp(registry, store, **options)))
            return stack.enter_context(asgi_server(RegistrationASGIApp(registry, store, **options)))

        yield start


def send(req: df.Request) -> requests.Response:
    return requests.request(req.method, req.target_uri, data=req.body, headers=dict(req.headers), timeout=10)


def signed_post(url: str, doc: Any, key: Ed25519PrivateKey | None) -> df.Request:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    req = df.Request.from_url("POST", url, [("Content-Type", "application/json")], body)
    if key is not None:
        df.Signer(key).sign(req)
    return req


def assert_problem(resp: requests.Response, status: int, reason: str) -> None:
    assert (resp.status_code, resp.headers["Content-Type"]) == (status, "application/problem+json")
    assert resp.json()["reason"] == reason


def signed_get(key: Ed25519PrivateKey, url: str) -> df.Request:
    req = df.Request.from_url("GET", url)
    df.Signer(key).sign(req)
    return req


# ------------------------------------------------------------------ the flow


def test_valid_proof_registers_and_the_key_then_verifies(serve: Serve) -> None:
    registry = df.MemoryRegistry()
    base = serve(registry)
    key = Ed25519PrivateKey.generate()
    keyid = jwk_thumbprint(key)
    resp = send(registration_request(df.Signer(key), base + "/keys", label="laptop"))
    assert resp.status_code == 201, resp.text
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Location"] == f"/keys/{keyid}"
    record = resp.json()
    assert record == registry.get(keyid).to_dict()  # type: ignore[union-attr]
    assert (record["client_id"], record["label"], record["status"], record["jwk"]) == (
        keyid,
        "laptop",
        "active",
        public_jwk(key),
    )
    assert abs(record["created_at"] - time.time()) < 5

    got = requests.get(base + resp.headers["Location"], timeout=10)
    assert (got.status_code, got.json()) == (200, record)
    head = requests.head(base + resp.headers["Location"], timeout=10)
    assert (head.status_code, head.content) == (200, b"")

    verified = df.Verifier(registry, df.MemoryNonceStore()).verify(signed_get(key, base + "/api/items"), time.time())
    assert verified.client_id == keyid


def test_keyid_mismatch(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    body_key, signing_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    assert_problem(send(signed_post(base + "/keys", {"jwk": public_jwk(body_key)}, signing_key)), 400, "keyid_mismatch")


def test_forged_keyid_is_a_bad_proof(serve: Serve) -> None:
    from datafold_auth.signer import new_nonce, sign_message

    base = serve(df.MemoryRegistry())
    victim, attacker = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    req = signed_post(base + "/keys", {"jwk": public_jwk(victim)}, None)
    req.add_header("Content-Digest", df.content_digest(req.body))
    components: list[tuple[str, dict[str, object]]] = [
        (n, {}) for n in ("@method", "@authority", "@path", "@query", "content-digest", "content-type")
    ]
    params: dict[str, object] = {
        "created": int(time.time()),
        "nonce": new_nonce(),
        "keyid": jwk_thumbprint(victim),
        "tag": "datafold",
    }
    signature_input, signature = sign_message(req, attacker, label="df", components=components, params=params)
    req.add_header("Signature-Input", signature_input)
    req.add_header("Signature", signature)
    assert_problem(send(req), 400, "bad_proof")


def test_replay_is_refused_as_replayed_nonce(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    req = registration_request(df.Signer(Ed25519PrivateKey.generate()), base + "/keys")
    assert send(req).status_code == 201
    replay = send(req)
    assert_problem(replay, 401, "replayed_nonce")
    assert "WWW-Authenticate" in replay.headers


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(b"\x01" + bytes(31))},  # identity: small order
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(bytes(32))},  # small order
        {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(bytes(range(31)))},  # 31 bytes
        {"kty": "OKP", "crv": "Ed25519", "x": "***"},  # not base64url
        {
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
        },
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
        },
    ],
)
def test_invalid_keys(serve: Serve, jwk: dict[str, str]) -> None:
    base = serve(df.MemoryRegistry())
    assert_problem(send(signed_post(base + "/keys", {"jwk": jwk}, Ed25519PrivateKey.generate())), 400, "invalid_key")


def test_duplicate_key_and_client_id_taken(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    key = Ed25519PrivateKey.generate()
    assert send(registration_request(df.Signer(key), base + "/keys", client_id="alice")).status_code == 201
    assert_problem(send(registration_request(df.Signer(key), base + "/keys")), 409, "duplicate_key")
    other = registration_request(df.Signer(Ed25519PrivateKey.generate()), base + "/keys", client_id="alice")
    assert_problem(send(other), 409, "client_id_taken")


def test_unsigned_registration(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    resp = send(signed_post(base + "/keys", {"jwk": public_jwk(Ed25519PrivateKey.generate())}, None))
    assert_problem(resp, 401, "missing_signature")
    assert resp.headers["WWW-Authenticate"].startswith("Signature ")


def test_require_approval_stores_pending_keys_that_do_not_verify(serve: Serve) -> None:
    registry = df.MemoryRegistry()
    base = serve(registry, require_approval=True)
    key = Ed25519PrivateKey.generate()
    resp = send(registration_request(df.Signer(key), base + "/keys"))
    assert (resp.status_code, resp.json()["status"]) == (201, "pending")
    with pytest.raises(df.SignatureError) as info:
        df.Verifier(registry, df.MemoryNonceStore()).verify(signed_get(key, base + "/api"), time.time())
    assert info.value.reason is df.Reason.KEY_NOT_ACTIVE


def test_scopes(serve: Serve) -> None:
    base = serve(df.MemoryRegistry(), allowed_scopes=frozenset({"read", "write"}), default_scopes=("read",))
    url = base + "/keys"
    refused = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), url, scopes=["read", "admin"]))
    assert_problem(refused, 403, "scope_not_allowed")
    granted = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), url, scopes=["write"]))
    assert granted.json()["scopes"] == ["write"]
    default = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), url))
    assert default.json()["scopes"] == ["read"]


def test_a_refused_scope_is_named_in_the_problem_and_nothing_else_is(serve: Serve) -> None:
    base = serve(df.MemoryRegistry(), allowed_scopes=frozenset({"read", "write", "secret:ops"}))
    url = base + "/keys"
    asked = ["read", "read:itme", "write", "Admin"]
    refused = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), url, scopes=asked))
    assert_problem(refused, 403, "scope_not_allowed")
    doc = refused.json()
    # the client's own refused input, in its order: an RFC 9457 extension member
    assert doc["refused_scopes"] == ["read:itme", "Admin"]
    assert set(doc) == {"type", "title", "status", "reason", "request_id", "refused_scopes"}
    assert "secret:ops" not in refused.text and "write" not in refused.text  # never the allowed scopes
    # every other problem is as before: no extension member
    other = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), url, scopes=["read"]))
    assert other.status_code == 201
    unsigned = send(signed_post(url, {"jwk": public_jwk(Ed25519PrivateKey.generate()), "scopes": ["itme"]}, None))
    assert_problem(unsigned, 401, "missing_signature")
    assert set(unsigned.json()) <= {"type", "title", "status", "reason", "request_id"}


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"label": "no jwk"}', b"\xff\xfe", b"[" * 8000 + b"]" * 8000, b""],
)
def test_bad_bodies_are_invalid_requests(serve: Serve, body: bytes) -> None:
    base = serve(df.MemoryRegistry())
    assert_problem(send(signed_post(base + "/keys", body, Ed25519PrivateKey.generate())), 400, "invalid_request")


def test_wrong_content_type_and_oversized_body(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    resp = requests.post(base + "/keys", data=b"{}", headers={"Content-Type": "text/plain"}, timeout=10)
    assert_problem(resp, 400, "invalid_request")
    big = json.dumps({"jwk": {}, "label": "x" * 20_000}).encode()
    assert_problem(
        requests.post(base + "/keys", data=big, headers={"Content-Type": "application/json"}, timeout=10),
        413,
        "body_too_large",
    )


def test_verification_failures_keep_their_reasons(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    key = Ed25519PrivateKey.generate()
    assert_problem(send(registration_request(df.Signer(key), base + "/keys", now=time.time() - 1000)), 401, "expired")
    swapped = registration_request(df.Signer(key), base + "/keys", label="mine")
    swapped.body = swapped.body.replace(b'"mine"', b'"evil"')
    assert_problem(send(swapped), 401, "digest_mismatch")


def test_registry_outage_is_503(serve: Serve) -> None:
    class DownRegistry(df.MemoryRegistry):
        def register(self, record: df.KeyRecord) -> df.KeyRecord:
            raise df.RegistryError("backend down")

    base = serve(DownRegistry())
    resp = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), base + "/keys"))
    assert_problem(resp, 503, "registry_unavailable")
    assert resp.headers["Retry-After"] == "1"


def test_lookup_and_routing_errors(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    assert_problem(requests.get(f"{base}/keys/{'A' * 43}", timeout=10), 404, "not_found")
    assert_problem(requests.get(f"{base}/keys/short", timeout=10), 404, "not_found")
    assert_problem(requests.get(f"{base}/elsewhere", timeout=10), 404, "not_found")
    wrong = requests.get(f"{base}/keys", timeout=10)
    assert_problem(wrong, 405, "method_not_allowed")
    assert wrong.headers["Allow"] == "POST"
    delete = requests.delete(f"{base}/keys/{'A' * 43}", timeout=10)
    assert (delete.status_code, delete.headers["Allow"]) == (405, "GET, HEAD")


def test_refusals_are_logged_without_body_or_signature(serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    base = serve(df.MemoryRegistry())
    req = signed_post(base + "/keys", {"jwk": public_jwk(Ed25519PrivateKey.generate())}, Ed25519PrivateKey.generate())
    with caplog.at_level(logging.INFO, logger="datafold_auth.registration"):
        send(req)
    messages = [r.getMessage() for r in caplog.records if r.name == "datafold_auth.registration"]
    assert any(r.levelno == logging.INFO for r in caplog.records)
    assert any("keyid_mismatch" in m for m in messages), messages
    signature = dict(req.headers)["Signature"]
    assert not any(signature[4:-1] in m or req.body.decode() in m for m in messages)


# ------------------------------------------------------------ concurrency


def test_concurrent_registrations_into_sqlite_lose_nothing(tmp_path: Path) -> None:
    registry = df.SQLiteRegistry(tmp_path / "keys.db")
    keys = [Ed25519PrivateKey.generate() for _ in range(200)]
    local = threading.local()

    def register(key: Ed25519PrivateKey) -> int:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        req = registration_request(df.Signer(key), base + "/keys", label="bulk")
        return session.post(req.target_uri, data=req.body, headers=dict(req.headers), timeout=30).status_code

    with (
        wsgi_server(RegistrationApp(registry, df.MemoryNonceStore())) as base,
        ThreadPoolExecutor(max_workers=12) as pool,
    ):
        statuses = list(pool.map(register, keys))
    assert statuses == [201] * 200
    assert {r.keyid for r in registry.list()} == {jwk_thumbprint(k) for k in keys}
    registry.close()


def test_asgi_calls_a_blocking_registry_off_the_event_loop() -> None:
    threads: list[str] = []

    class BlockingRegistry(df.MemoryRegistry):
        blocking = True

        def register(self, record: df.KeyRecord) -> df.KeyRecord:
            threads.append(threading.current_thread().name)
            return super().register(record)

        def get(self, keyid: str) -> df.KeyRecord | None:
            threads.append(threading.current_thread().name)
            return super().get(keyid)

    with asgi_server(RegistrationASGIApp(BlockingRegistry(), df.MemoryNonceStore())) as base:
        resp = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), base + "/keys"))
        assert requests.get(base + resp.headers["Location"], timeout=10).status_code == 200
    assert len(threads) == 2
    assert "uvicorn-test" not in threads


# ------------------------------------------------------------------ mounting


def test_wsgi_app_mounted_under_a_prefix() -> None:
    registry = df.MemoryRegistry()
    app = DispatcherMiddleware(NotFound(), {"/register": RegistrationApp(registry, df.MemoryNonceStore())})
    with wsgi_server(app) as base:
        check_mounted(base, registry)


def test_asgi_app_mounted_under_a_prefix() -> None:
    registry = df.MemoryRegistry()
    app = Starlette(routes=[Mount("/register", app=RegistrationASGIApp(registry, df.MemoryNonceStore()))])
    with asgi_server(app) as base:
        check_mounted(base, registry)


def check_mounted(base: str, registry: df.MemoryRegistry) -> None:
    key = Ed25519PrivateKey.generate()
    resp = send(registration_request(df.Signer(key), base + "/register/keys"))
    assert resp.status_code == 201, resp.text
    assert resp.headers["Location"] == f"/register/keys/{jwk_thumbprint(key)}"
    assert requests.get(base + resp.headers["Location"], timeout=10).json()["status"] == "active"
    # The signature covers the full path: a proof made for /keys does not pass at /register/keys.
    wrong = registration_request(df.Signer(Ed25519PrivateKey.generate()), base + "/keys")
    wrong.path = "/register/keys"
    assert_problem(send(wrong), 400, "bad_proof")
    assert len(registry.list()) == 1


def test_asgi_scope_without_raw_path_under_root_path() -> None:
    """Starlette >= 0.33 style: ``path`` holds the full path, ``root_path`` the prefix, no ``raw_path``."""
    registry = df.MemoryRegistry()
    app = RegistrationASGIApp(registry, df.MemoryNonceStore())
    req = registration_request(df.Signer(Ed25519PrivateKey.generate()), "http://testserver/register/keys")
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/register/keys",
        "root_path": "/register",
        "query_string": b"",
        "headers": [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in req.headers],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": req.body, "more_body": False}

    async def send_message(message: Any) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send_message))
    assert sent[0]["status"] == 201, sent
    assert dict(sent[0]["headers"])[b"location"].startswith(b"/register/keys/")


def test_public_authority_behind_a_proxy(serve: Serve) -> None:
    """The client signs for the public host; the app is told that host and ignores the backend ``Host``."""
    base = serve(df.MemoryRegistry(), authority="api.example.com")
    req = registration_request(df.Signer(Ed25519PrivateKey.generate()), "https://api.example.com/keys")
    resp = requests.post(base + "/keys", data=req.body, headers=dict(req.headers), timeout=10)
    assert resp.status_code == 201, resp.text
    local = registration_request(df.Signer(Ed25519PrivateKey.generate()), base + "/keys")
    assert_problem(send(local), 400, "bad_proof")
