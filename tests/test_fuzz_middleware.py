"""Property tests (hypothesis) of the WSGI and ASGI middleware and the registration apps, called in-process.

Requests are random (methods, paths, field names and values with non-ASCII,
huge and repeated ones, bodies, ``Content-Length`` that lies or is not a
number, body chunking) or validly signed requests with mutations. Properties:

* no exception escapes, and the answer is never a 500;
* the status is either the app's (the request verified) or a refusal: 400, 401,
  403, 413, 429 or 503 (plus 404, 405 and 409 for the registration apps) with
  ``application/problem+json`` whose ``reason`` is a :class:`datafold_auth.Reason`
  value and whose ``status`` is the answer's;
* when the app is called, the body it reads is exactly the body that was sent
  (replayed unchanged after verification), and an unmutated signed request
  always reaches the app.

The apps are called directly (WSGI environ + ``start_response``; ASGI scope,
``receive``, ``send`` under ``asyncio.run``) so that hypothesis can run many
examples; tests/test_middleware_servers.py covers real servers.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from datafold_auth import KeyRecord, KeyStatus, MemoryNonceStore, MemoryRegistry, Reason, Request, Signer, Verifier
from datafold_auth.audit import AuditSink, verify_chain
from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.registration import RegistrationApp, RegistrationASGIApp
from datafold_auth.registration.core import (
    approval_request,
    client_keys_url,
    lifecycle_request,
    registration_request,
    revocation_request,
    rotation_request,
)

from .test_fuzz_parsers import mutated

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_800_000_000
HOST = "api.example.com"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
NEW = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
PENDING = Ed25519PrivateKey.from_private_bytes(bytes(range(96, 128)))
REASONS = {r.value for r in Reason}
REFUSALS = {400, 401, 403, 413, 429, 503}
REGISTRATION_REFUSALS = REFUSALS | {404, 405, 409}
MAX_BODY = 2048
AUDIT_LOG = MemoryRegistry()
AUDIT = AuditSink(AUDIT_LOG)
"""Every refusal of these tests is recorded here: random methods, paths, addresses and request ids must not break it."""

Message = tuple[str, str, list[tuple[str, str]], bytes]
"""A request as ``(method, target, [(name, value)], body)``; names and values are latin-1 text."""


def registry() -> MemoryRegistry:
    reg = MemoryRegistry()
    reg.register(KeyRecord.for_public_key(KEY.public_key(), "alice", scopes=("read",), created_at=NOW - 60))
    pending = KeyRecord.for_public_key(PENDING.public_key(), "alice", status=KeyStatus.PENDING, created_at=NOW - 60)
    reg.register(pending, allow_existing_client=True)
    return reg


def verifier() -> Verifier:
    return Verifier(registry(), MemoryNonceStore(), cache_ttl=0)


def message_of(request: Request) -> Message:
    target = request.path + ("" if request.query is None else "?" + request.query)
    return request.method, target, list(request.headers), request.body


def signed(method: str, target: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> Message:
    request = Request.from_url(method, f"https://{HOST}{target}", [("Host", HOST), *headers], body)
    Signer(KEY).sign(request, now=NOW, nonce=f"nonce-{method}-{len(body)}")
    return message_of(request)


_JSON = [("Content-Type", "application/json")]
SIGNED: list[Message] = [
    signed("GET", "/api/items?page=2&q=%C3%A9"),
    signed("POST", "/api/items", b'{"name":"widget","tags":["a","b"]}', _JSON),
    signed("PUT", "/api/items/7", b"x" * 300 + b"\x00\xff", [("Content-Type", "application/octet-stream")]),
    signed("DELETE", "/api/items/7", b"", [("X-Trace", "\u00e9t\u00e9")]),
]


# ------------------------------------------------------------------ calling the apps


def environ_of(message: Message, content_length: str | None = None) -> dict[str, Any]:
    """A PEP 3333 environ as a server builds it: repeated fields joined with ``", "``."""
    method, target, headers, body = message
    path, _, query = target.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "RAW_URI": target,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "192.0.2.7",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": io.StringIO(),
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        environ[key] = f"{environ[key]}, {value}" if key in environ else value
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    return environ


def call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer[:] = [int(status.split(" ", 1)[0]), headers]
        return lambda _data: None

    content = b"".join(app(environ, start_response))
    return answer[0], answer[1], content


def scope_of(message: Message) -> dict[str, Any]:
    method, target, headers, _ = message
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("192.0.2.7", 4711),
        "server": (HOST, 443),
    }


def call_asgi(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, list[tuple[str, str]], bytes]:
    pending = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = [m for m in sent if m["type"] == "http.response.start"]
    assert len(start) == 1, sent
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start[0]["headers"]]
    return start[0]["status"], headers, content


def assert_refusal(status: int, headers: list[tuple[str, str]], content: bytes, allowed: set[int]) -> None:
    assert status in allowed, (status, content)
    assert [v for k, v in headers if k.lower() == "content-type"] == ["application/problem+json"]
    doc = json.loads(content)
    assert doc["reason"] in REASONS and doc["status"] == status, doc
    assert Reason(doc["reason"]).status == status


PASSED_THROUGH = 299
"""Status the echo apps answer with when called without an identity (an unprotected path)."""


def echo_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    identity = environ.get(IDENTITY_KEY)
    body = environ["wsgi.input"].read()
    if identity is None:
        start_response(f"{PASSED_THROUGH} Passed Through", [("Content-Type", "application/x-echo")])
        return [body]
    assert identity.client_id == "alice" and environ["CONTENT_LENGTH"] == str(len(body))
    start_response("200 OK", [("Content-Type", "application/x-echo")])
    return [body]


async def echo_asgi(scope: Any, receive: Any, send: Any) -> None:
    identity = scope.get(IDENTITY_KEY)
    assert identity is None or identity.client_id == "alice"
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    status = 200 if identity is not None else PASSED_THROUGH
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/x-echo")]})
    await send({"type": "http.response.body", "body": b"".join(chunks)})


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(body)) for c in cuts})
    edges = [0, *points, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)] or [b""]


def check_middlewares(message: Message, content_length: str | None, cuts: list[int]) -> tuple[int, int]:
    """Both middlewares (protecting ``/api``) on ``message``; returns their statuses after checking the properties:
    200 (verified, the app read the body as sent), 299 (an unprotected path, passed through) or a refusal."""
    body = message[3]
    wsgi = DatafoldAuthMiddleware(
        echo_wsgi, verifier(), clock=lambda: NOW, max_body=MAX_BODY, paths="/api", audit=AUDIT
    )
    environ = environ_of(message, content_length)
    status, headers, content = call_wsgi(wsgi, environ)
    if status == 200:
        length = (environ.get("CONTENT_LENGTH") or "").strip()
        assert content == (body[: int(length)] if length else body)  # what the server handed over, unchanged
    elif status == PASSED_THROUGH:
        assert not wsgi.selector.protects(environ["PATH_INFO"])
    else:
        assert_refusal(status, headers, content, REFUSALS)
    asgi = DatafoldAuthASGIMiddleware(
        echo_asgi, verifier(), clock=lambda: NOW, max_body=MAX_BODY, paths="/api", audit=AUDIT
    )
    scope = scope_of(message)
    a_status, a_headers, a_content = call_asgi(asgi, scope, split(body, cuts))
    if a_status in (200, PASSED_THROUGH):
        assert a_content == body
        assert a_status == 200 or not asgi.selector.protects(scope["path"])
    else:
        assert_refusal(a_status, a_headers, a_content, REFUSALS)
    return status, a_status


# ------------------------------------------------------------------ strategies

_text = st.one_of(
    st.text(st.characters(max_codepoint=0xFF), max_size=30),  # latin-1: any byte a server may pass on
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.sampled_from(["a" * 70_000, "\u00ff" * 5_000, ",", '"', ":" + "A" * 86 + "==:"]),
)
_names = st.one_of(
    st.sampled_from(
        ["Signature-Input", "Signature", "Content-Digest", "Content-Length", "Content-Type", "Host", "X-Request-Id"]
    ),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, blacklist_characters=":"), min_size=1, max_size=12),
)
_methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "get"]), _text)
_paths = st.one_of(
    st.sampled_from(["/api/items", "/api", "/api/", "//api/x", "/x/../api/y", "/health", "/api/%2e%2e/x", "/"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, blacklist_characters="?"), max_size=20).map(
        lambda p: "/" + p
    ),
)
_content_lengths = st.one_of(
    st.none(), st.sampled_from(["", "0", "00", "5", "-1", "+3", "1_0", " 7 ", "abc", "99999999999999999999", "\u0663"])
)
_cuts = st.lists(st.integers(0, 400), max_size=3)


@st.composite
def random_message(draw: st.DrawFn) -> Message:
    path = draw(_paths)
    query = draw(st.one_of(st.none(), _text.filter(lambda q: len(q) < 100)))
    headers = draw(st.lists(st.tuples(_names, _text), max_size=6))
    return draw(_methods), path + ("" if query is None else "?" + query), headers, draw(st.binary(max_size=300))


@st.composite
def mutated_signed(draw: st.DrawFn, valid: list[Message]) -> Message:
    """A signed request with one or more of: a mutated field value, a field dropped, repeated or added,
    another method/target/body, a mutated body."""
    method, target, headers, body = draw(st.sampled_from(valid))
    headers = list(headers)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["value", "drop", "repeat", "add", "method", "target", "body"]))
        index = draw(st.integers(0, len(headers) - 1)) if headers else 0
        if op == "value" and headers:
            name, value = headers[index]
            headers[index] = (name, draw(mutated([value.encode("latin-1")])).decode("latin-1"))
        elif op == "drop" and headers:
            del headers[index]
        elif op == "repeat" and headers:
            headers.insert(draw(st.integers(0, len(headers))), headers[index])
        elif op == "add":
            headers.append((draw(_names), draw(_text)))
        elif op == "method":
            method = draw(_methods)
        elif op == "target":
            target = draw(mutated([target.encode("latin-1")])).decode("latin-1")
            target = target if target.startswith("/") else "/" + target
        elif op == "body":
            body = draw(st.one_of(mutated([body or b"x"]), st.binary(max_size=50)))
    return method, target, headers, body


# ------------------------------------------------------------------ middleware properties


def test_signed_requests_reach_the_app_with_their_body() -> None:
    """The properties' unmutated inputs verify: the app answers and reads the body as sent (chunked or not)."""
    for message in SIGNED:
        assert check_middlewares(message, None, []) == (200, 200)
        assert check_middlewares(message, None, [1, 7, 100]) == (200, 200)


@FUZZ
@given(random_message(), _content_lengths, _cuts)
def test_middlewares_refuse_random_requests_with_a_reason(
    message: Message, content_length: str | None, cuts: list[int]
) -> None:
    assert 200 not in check_middlewares(message, content_length, cuts)  # nothing random verifies


@FUZZ
@given(mutated_signed(SIGNED), _content_lengths, _cuts)
def test_middlewares_answer_mutated_signed_requests_with_the_app_or_a_reason(
    message: Message, content_length: str | None, cuts: list[int]
) -> None:
    event(f"statuses {check_middlewares(message, content_length, cuts)}")


@FUZZ
@given(st.sampled_from(SIGNED), st.integers(0, 3), _cuts)
def test_middlewares_with_lying_content_length(message: Message, delta: int, cuts: list[int]) -> None:
    """A Content-Length other than the body's length: the WSGI server hands over that many bytes (or fewer),
    so the request verifies only when the body is unchanged; anything else is a refusal."""
    body = message[3]
    length = max(0, len(body) + delta * (1 if cuts else -1))
    wsgi_status, _ = check_middlewares(message, str(length), cuts)
    if wsgi_status == 200:
        assert length >= len(body) or not body


def test_oversized_body_is_413() -> None:
    message = signed("POST", "/api/items", b"x" * (MAX_BODY + 1), _JSON)
    assert check_middlewares(message, None, [MAX_BODY // 2]) == (413, 413)


# ------------------------------------------------------------------ registration apps

KEYS = f"https://{HOST}/keys"
REGISTRATION: list[Message] = [
    message_of(r)
    for r in (
        registration_request(Signer(STRANGER), KEYS, label="laptop", scopes=["read"], now=NOW),
        registration_request(Signer(STRANGER), KEYS, client_id="alice", expires_at=NOW + 3600, now=NOW),
        rotation_request(Signer(KEY), Signer(NEW), KEYS, label="new laptop", now=NOW),
        revocation_request(Signer(KEY), KEYS, reason="lost", now=NOW),
        approval_request(Signer(KEY), KEYS, jwk_thumbprint(PENDING), now=NOW),
        lifecycle_request(Signer(KEY), "GET", client_keys_url(KEYS, "alice"), now=NOW),
    )
] + [("GET", f"/keys/{jwk_thumbprint(KEY)}", [], b""), ("HEAD", f"/keys/{jwk_thumbprint(KEY)}", [], b"")]


def check_registration(message: Message, cuts: list[int]) -> tuple[int, int]:
    """Both registration apps (each on a fresh registry holding ``KEY`` of client ``alice``)."""
    statuses = []
    options: dict[str, Any] = {"allowed_scopes": {"read"}, "clock": lambda: NOW, "allow_join": True, "audit": AUDIT}
    wsgi = RegistrationApp(registry(), MemoryNonceStore(), **options)
    asgi = RegistrationASGIApp(registry(), MemoryNonceStore(), **options)
    for status, headers, content in (
        call_wsgi(wsgi, environ_of(message)),
        call_asgi(asgi, scope_of(message), split(message[3], cuts)),
    ):
        statuses.append(status)
        if message[0] == "HEAD":
            assert content == b"" and status in REGISTRATION_REFUSALS | {200}
        elif status >= 400:
            assert_refusal(status, headers, content, REGISTRATION_REFUSALS)
        else:
            assert status in (200, 201), status
            assert isinstance(json.loads(content), dict)
    return statuses[0], statuses[1]


def test_registration_seeds_succeed() -> None:
    expected = [201, 201, 201, 200, 200, 200, 200, 200]
    assert [check_registration(m, [])[0] for m in REGISTRATION] == expected  # WSGI
    assert [check_registration(m, [3])[1] for m in REGISTRATION] == expected  # ASGI


@FUZZ
@given(st.one_of(mutated_signed(REGISTRATION), random_message()), _cuts)
def test_registration_apps_answer_json_or_a_reason(message: Message, cuts: list[int]) -> None:
    event(f"statuses {check_registration(message, cuts)}")


@FUZZ
@given(
    st.sampled_from(REGISTRATION[:6]),
    st.one_of(mutated([m[3] or b"{}" for m in REGISTRATION[:4]]), st.binary(max_size=60)),
)
def test_registration_apps_refuse_changed_bodies(message: Message, body: bytes) -> None:
    method, target, headers, original = message
    status, _ = check_registration((method, target, headers, body), [])
    if status < 400:
        assert body == original or not original  # the body is bound by Content-Digest


@FUZZ
@given(st.one_of(random_message(), mutated_signed(SIGNED[:1])), st.booleans())
def test_websocket_handshakes_are_refused_with_a_close_or_a_problem(message: Message, extension: bool) -> None:
    """A websocket handshake to a protected path is verified as a GET: refused, it is closed (1008) or answered
    with a problem (``websocket.http.response`` extension); the app never sees it unverified."""
    scope = {**scope_of(message), "type": "websocket", "scheme": "wss"}
    scope.pop("method")
    if extension:
        scope["extensions"] = {"websocket.http.response": {}}
    sent: list[dict[str, Any]] = []
    reached: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope.get(IDENTITY_KEY))

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    middleware = DatafoldAuthASGIMiddleware(app, verifier(), clock=lambda: NOW, paths="/api", audit=AUDIT)
    asyncio.run(middleware(scope, receive, send))
    if reached:
        assert reached[0] is not None or not middleware.selector.protects(scope["path"])
        return
    if extension:
        start, body = sent
        assert start["type"] == "websocket.http.response.start"
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
        assert_refusal(start["status"], headers, body["body"], REFUSALS)
    else:
        assert sent == [{"type": "websocket.close", "code": 1008}]


def test_zz_the_audit_log_of_all_refusals_is_written_and_chains() -> None:
    """Runs after the properties above (file order): every refusal they caused was recorded and the chain verifies."""
    check_middlewares(("GET", "/api/\u00ff\x00", [("X-Request-Id", "\u00e9" * 70)], b""), None, [])
    assert AUDIT.flush(30) and AUDIT.failed == 0 and AUDIT.dropped == 0
    entries = AUDIT_LOG.audit_entries()
    assert len(entries) >= 2 and {e.event for e in entries} == {"rejected"}
    assert verify_chain(entries).count == len(entries)  # raises AuditChainError if it does not chain
