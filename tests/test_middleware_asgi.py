"""The ASGI middleware called in process: pass-through scopes, body replay, disconnects, worker threads."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import KeyRecord, Request, Signer, Verifier
from datafold_auth.middleware import IDENTITY_KEY, VERIFIED_KEY, DatafoldAuthASGIMiddleware, Identity
from datafold_auth.middleware.asgi import Message, Receive, Scope, Send

from .servers import DOWN_NONCE, FlakyNonceStore, FlakyRegistry, Harness


class Recorder:
    """An ASGI app that records its calls and, for HTTP, drains receive until the body is complete."""

    def __init__(self) -> None:
        self.calls: list[tuple[Scope, Receive, Send]] = []
        self.received: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls.append((scope, receive, send))
        if scope["type"] != "http":
            return
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def scope_for(req: Request, *, host: str | None = None) -> Scope:
    headers = [(b"host", (host or req.authority).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in req.headers]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": req.method,
        "scheme": req.scheme,
        "path": req.path,
        "raw_path": req.path.encode(),
        "query_string": (req.query or "").encode(),
        "root_path": "",
        "headers": headers,
        "server": ("127.0.0.1", 8000),
    }


def body_messages(body: bytes, parts: int = 3) -> list[Message]:
    size = max(1, -(-len(body) // parts))
    chunks = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    return [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]


def run(app: Any, scope: Scope, messages: list[Message]) -> tuple[list[Message], Receive]:
    """Call ``app``; the client sends ``messages`` then disconnects. Return what was sent and the server's receive."""
    queue = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent, receive


def signed(h: Harness, body: bytes = b"", url: str = "http://api.test/a?q=1") -> Request:
    req = Request.from_url("POST" if body else "GET", url, [("Content-Type", "text/plain")] if body else [], body)
    h.signer.sign(req)
    return req


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_non_http_scopes_pass_through_untouched(h: Harness, kind: str) -> None:
    """Lifespan always; websockets on unprotected paths (see test_adversarial_middleware for protected ones)."""
    app = Recorder()
    scope: Scope = {"type": kind, "asgi": {"version": "3.0"}, "path": "/api"}

    async def receive() -> Message:
        return {"type": f"{kind}.startup" if kind == "lifespan" else "websocket.connect"}

    async def send(message: Message) -> None:
        raise AssertionError("the middleware must not answer")

    asyncio.run(DatafoldAuthASGIMiddleware(app, h.verifier, exempt="/api")(scope, receive, send))
    assert app.calls == [(scope, receive, send)]
    assert scope == {"type": kind, "asgi": {"version": "3.0"}, "path": "/api"}


def test_body_messages_are_replayed_then_receive_passes_through(h: Harness) -> None:
    app = Recorder()
    req = signed(h, b"0123456789" * 10)
    messages = body_messages(req.body)
    scope = scope_for(req)
    sent, _ = run(DatafoldAuthASGIMiddleware(app, h.verifier), scope, messages)
    assert sent[0]["status"] == 200
    assert app.received == messages  # the same message objects, in order, untouched
    assert app.received[0] is messages[0]
    assert scope["user"] == scope[IDENTITY_KEY] == Identity("alice", h.signer.keyid, ("read", "write"))
    assert scope["auth"] == ("read", "write")
    assert scope[VERIFIED_KEY].nonce


def test_receive_after_the_body_reaches_the_server(h: Harness) -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.extend([await receive(), await receive()])

    run(DatafoldAuthASGIMiddleware(app, h.verifier), scope_for(signed(h)), body_messages(b""))
    assert [m["type"] for m in seen] == ["http.request", "http.disconnect"]


def test_client_gone_during_body_gets_no_answer(h: Harness) -> None:
    app = Recorder()
    req = signed(h, b"x" * 30)
    sent, _ = run(DatafoldAuthASGIMiddleware(app, h.verifier), scope_for(req), body_messages(req.body)[:1])
    assert sent == [] and app.calls == []


def test_rejection_is_a_complete_problem_response(h: Harness) -> None:
    app = Recorder()
    sent, _ = run(
        DatafoldAuthASGIMiddleware(app, h.verifier),
        scope_for(Request.from_url("GET", "http://api.test/a")),
        body_messages(b""),
    )
    assert app.calls == []
    start, body = sent
    assert start["type"] == "http.response.start" and start["status"] == 401
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/problem+json"
    assert b"www-authenticate" in headers and b"accept-signature" in headers
    assert int(headers[b"content-length"]) == len(body["body"])
    assert json.loads(body["body"])["reason"] == "missing_signature"


def test_body_over_limit_is_413(h: Harness) -> None:
    req = signed(h, b"x" * 101)
    sent, _ = run(
        DatafoldAuthASGIMiddleware(Recorder(), h.verifier, max_body=100), scope_for(req), body_messages(req.body)
    )
    assert sent[0]["status"] == 413 and json.loads(sent[1]["body"])["reason"] == "body_too_large"


@pytest.mark.parametrize(("path", "protected"), [("/api/x", True), ("/apix", False), ("/api/open", False)])
def test_paths_and_exempt_prefixes(h: Harness, path: str, protected: bool) -> None:
    mw = DatafoldAuthASGIMiddleware(Recorder(), h.verifier, paths=("/api",), exempt=("/api/open",))
    sent, _ = run(mw, scope_for(Request.from_url("GET", "http://api.test" + path)), body_messages(b""))
    assert sent[0]["status"] == (401 if protected else 200)


def test_public_authority_behind_a_proxy(h: Harness) -> None:
    scope = scope_for(signed(h, url="https://api.example.com/a"), host="10.0.0.7:8080")
    mw = DatafoldAuthASGIMiddleware(Recorder(), h.verifier, authority="api.example.com")
    assert run(mw, scope, body_messages(b""))[0][0]["status"] == 200


class ThreadRecordingRegistry(FlakyRegistry):
    """Records the thread each lookup runs in."""

    def __init__(self, blocking: bool) -> None:
        super().__init__()
        self.blocking = blocking
        self.threads: list[int] = []

    def get(self, keyid: str) -> KeyRecord | None:
        self.threads.append(threading.get_ident())
        return super().get(keyid)


@pytest.mark.parametrize("blocking", [True, False])
def test_blocking_verifier_runs_in_a_worker_thread(blocking: bool) -> None:
    h = Harness(registry=ThreadRecordingRegistry(blocking))
    assert h.verifier.blocking is blocking
    loop_threads: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        loop_threads.append(threading.get_ident())

    run(DatafoldAuthASGIMiddleware(app, h.verifier), scope_for(signed(h)), body_messages(b""))
    registry = h.registry
    assert isinstance(registry, ThreadRecordingRegistry)
    assert len(registry.threads) == 1 and len(loop_threads) == 1
    assert (registry.threads[0] != loop_threads[0]) is blocking


class ThreadRecordingNonceStore(FlakyNonceStore):
    """A blocking nonce store that records the thread each ``add`` runs in."""

    blocking = True

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[int] = []

    def add(self, key: str, expires_at: float, now: float) -> bool:
        self.threads.append(threading.get_ident())
        return super().add(key, expires_at, now)


def test_blocking_stores_leave_the_cpu_work_on_the_loop_and_only_the_io_in_threads() -> None:
    """A cached key is not looked up again; a blocking nonce store is called off the loop, once per request,
    and still refuses a replay (recorded after every other check, as in Verifier.verify)."""
    h = Harness(registry=ThreadRecordingRegistry(True), nonce_store=ThreadRecordingNonceStore())
    verifier = Verifier(h.registry, h.nonce_store, cache_ttl=60)
    loop_threads: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        loop_threads.append(threading.get_ident())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    mw = DatafoldAuthASGIMiddleware(app, verifier)
    first, second = signed(h, b"one"), signed(h, b"two")
    assert run(mw, scope_for(first), body_messages(b"one"))[0][0]["status"] == 200
    assert run(mw, scope_for(second), body_messages(b"two"))[0][0]["status"] == 200
    replay = run(mw, scope_for(second), body_messages(b"two"))[0]
    assert replay[0]["status"] == 401 and json.loads(replay[1]["body"])["reason"] == "replayed_nonce"
    registry, store = h.registry, h.nonce_store
    assert isinstance(registry, ThreadRecordingRegistry) and isinstance(store, ThreadRecordingNonceStore)
    assert len(registry.threads) == 1  # then the cache answered
    assert len(store.threads) == 3 and len(loop_threads) == 2
    assert not set(store.threads + registry.threads) & set(loop_threads)
    # A refusal before the nonce check leaves the nonce unused (and the store untouched).
    tampered = signed(h, b"three")
    assert run(mw, scope_for(tampered), body_messages(b"THREE"))[0][0]["status"] == 401
    assert len(store.threads) == 3
    assert run(mw, scope_for(tampered), body_messages(b"three"))[0][0]["status"] == 200


@pytest.mark.parametrize("cache_ttl", [0, 60])
def test_offloaded_verification_answers_as_the_plain_one(cache_ttl: float) -> None:
    """Unknown keys, registry and nonce store outages: the same reasons with blocking stores as without."""
    h = Harness(registry=ThreadRecordingRegistry(True), nonce_store=ThreadRecordingNonceStore())
    verifier = Verifier(h.registry, h.nonce_store, cache_ttl=cache_ttl)
    mw = DatafoldAuthASGIMiddleware(Recorder(), verifier)
    stranger = Signer(Ed25519PrivateKey.generate())
    req = Request.from_url("GET", "http://api.test/a")
    stranger.sign(req)
    answer = run(mw, scope_for(req), body_messages(b""))[0]
    assert json.loads(answer[1]["body"])["reason"] == "unknown_key"
    h.registry.down.add(h.signer.keyid)
    answer = run(mw, scope_for(signed(h)), body_messages(b""))[0]
    assert answer[0]["status"] == 503
    assert json.loads(answer[1]["body"])["reason"] == "registry_unavailable"
    h.registry.down.clear()
    req = Request.from_url("GET", "http://api.test/a")
    h.signer.sign(req, nonce=DOWN_NONCE)
    answer = run(mw, scope_for(req), body_messages(b""))[0]
    assert json.loads(answer[1]["body"])["reason"] == "nonce_store_unavailable"
    assert run(mw, scope_for(signed(h)), body_messages(b""))[0][0]["status"] == 200


def test_a_verifier_overriding_verify_keeps_it_with_blocking_stores() -> None:
    """ClockedVerifier reads its own clock and logs; with blocking stores its verify still runs (off the loop)."""
    from datafold_auth.testing import ClockedVerifier

    h = Harness(registry=ThreadRecordingRegistry(True), nonce_store=ThreadRecordingNonceStore())
    at = 1_500_000_000.0  # long ago: only a verifier reading this clock accepts the request
    verifier = ClockedVerifier(h.registry, h.nonce_store, clock=lambda: at)
    req = Request.from_url("GET", "http://api.test/a")
    h.signer.sign(req, now=at)
    sent, _ = run(DatafoldAuthASGIMiddleware(Recorder(), verifier), scope_for(req), body_messages(b""))
    assert sent[0]["status"] == 200
    assert [entry.verified is not None for entry in verifier.log] == [True]
