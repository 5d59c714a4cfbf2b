"""Fuzz target: the whole verification path, sans-I/O and through both middlewares.

Input: an HTTP message (``_harness.decode_message``); seeds are requests signed by
a registered key at the harness clock, so mutations start from requests that verify.
Checks:

* :meth:`Verifier.verify` returns or raises a typed error with a reason;
* :class:`DatafoldAuthMiddleware` (WSGI, environ as a server builds it) and
  :class:`DatafoldAuthASGIMiddleware` (scope, body in two messages) answer either
  from the app (200) or with a refusal (wire status, ``application/problem+json``,
  known ``reason``); never raise;
* when the app is called, it reads exactly the body the client sent (the body
  is replayed unchanged after verification).
"""

from __future__ import annotations

from typing import Any

from _harness import (
    KEY_A,
    KEY_B,
    NOW,
    Finding,
    Signer,
    call_asgi,
    call_wsgi,
    check_problem,
    decode_message,
    environ_of,
    request_of,
    scope_of,
    signed_message,
    typed,
    verifier,
)

from datafold_auth.middleware import DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware

_JSON = [("Content-Type", "application/json")]


def seeds() -> list[bytes]:
    a = Signer(KEY_A)
    return [
        signed_message(a, "GET", "/v1/items?page=2&q=%C3%A9"),
        signed_message(a, "POST", "/v1/items", b'{"name":"widget","tags":["a","b"]}', _JSON),
        signed_message(Signer(KEY_A, digest_algorithms=("sha-512", "sha-256")), "PUT", "/v1/items/7", b"x" * 40, _JSON),
        signed_message(Signer(KEY_A, expires_in=None), "DELETE", "/v1/items/7"),
        signed_message(Signer(KEY_B), "GET", "/v1/items"),  # unknown key
        signed_message(a, "PATCH", "/a//b/../c?x", b"\x00\xff", [("Content-Type", "text/plain"), ("X-Tag", "1")]),
        b"GET /v1/items\nHost: api.example.com\n\n",
    ]


def _wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [body]


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"".join(chunks)})


def _sent_body(data: bytes) -> bytes:
    """The body a WSGI server hands over: ``Content-Length`` bytes when it is a number."""
    _, _, headers, body = decode_message(data)
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    text = ", ".join(lengths).strip()
    return body[: int(text)] if text.isascii() and text.isdigit() else body


def _check(status: int, headers: list[tuple[str, str]], content: bytes, body: bytes, where: str) -> None:
    if status == 200:
        if content != body:
            raise Finding(f"{where}: the app read {content[:80]!r}, not the body sent {body[:80]!r}")
    else:
        check_problem(status, headers, content)


def test_one_input(data: bytes) -> None:
    typed(verifier().verify, request_of(data), NOW)
    wsgi = DatafoldAuthMiddleware(_wsgi_app, verifier(), clock=lambda: NOW, max_body=4096)
    _check(*call_wsgi(wsgi, environ_of(data)), _sent_body(data), "WSGI")
    asgi = DatafoldAuthASGIMiddleware(_asgi_app, verifier(), clock=lambda: NOW, max_body=4096)
    scope, messages = scope_of(data)
    _check(*call_asgi(asgi, scope, messages), decode_message(data)[3], "ASGI")
