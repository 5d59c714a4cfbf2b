"""Fuzz target: registration, rotation, revocation and approval requests (docs/protocol.md).

Input: an HTTP message (``_harness.decode_message``). Checks:

* :func:`parse_registration_body` and :func:`parse_rotation_body` of its body
  return or raise ``RegistrationError``;
* the WSGI :class:`RegistrationApp` and the ASGI :class:`RegistrationASGIApp`
  (each over a fresh registry holding one key of client ``alice``) answer
  2xx JSON or a refusal (wire status, ``application/problem+json``, known
  ``reason``), never raise.

Seeds are valid signed requests of every kind, made at the harness clock.
"""

from __future__ import annotations

import json

from _harness import (
    HOST,
    KEY_A,
    KEY_B,
    KEY_C,
    KEY_D,
    NOW,
    Finding,
    MemoryNonceStore,
    Request,
    Signer,
    call_asgi,
    call_wsgi,
    check_problem,
    decode_message,
    encode_message,
    environ_of,
    registry,
    scope_of,
    typed,
)

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.registration import RegistrationApp, RegistrationASGIApp
from datafold_auth.registration.core import (
    approval_request,
    client_keys_url,
    lifecycle_request,
    parse_registration_body,
    parse_rotation_body,
    registration_request,
    revocation_request,
    rotation_request,
)

KEYS = f"https://{HOST}/keys"


def _message(request: Request) -> bytes:
    target = request.path + ("" if request.query is None else "?" + request.query)
    return encode_message(request.method, target, request.headers, request.body)


def seeds() -> list[bytes]:
    a, b, c = Signer(KEY_A), Signer(KEY_B), Signer(KEY_C)
    requests = [
        registration_request(c, KEYS, label="laptop", scopes=["read"], now=NOW),
        registration_request(c, KEYS, client_id="alice", expires_at=NOW + 3600, now=NOW),
        rotation_request(a, b, KEYS, label="new laptop", now=NOW),
        revocation_request(a, KEYS, reason="lost", now=NOW),
        approval_request(a, KEYS, jwk_thumbprint(KEY_D), now=NOW),
        lifecycle_request(a, "GET", client_keys_url(KEYS, "alice"), now=NOW),
    ]
    return [_message(r) for r in requests] + [f"GET /keys/{jwk_thumbprint(KEY_A)}\n\n".encode()]


def _check(status: int, headers: list[tuple[str, str]], content: bytes, method: str) -> None:
    if status >= 400:
        if method != "HEAD":
            check_problem(status, headers, content)
        elif status not in (400, 401, 403, 404, 405, 409, 413, 429, 503):
            raise Finding(f"HEAD refused with {status}")
    elif status in (200, 201):
        if method != "HEAD":
            json.loads(content)
    else:
        raise Finding(f"unexpected status {status}")


def test_one_input(data: bytes) -> None:
    method, _, _, body = decode_message(data)
    typed(parse_registration_body, body)
    typed(parse_rotation_body, body)
    options = {"allowed_scopes": {"read"}, "clock": lambda: NOW, "allow_join": True}
    wsgi = RegistrationApp(registry(), MemoryNonceStore(), **options)  # type: ignore[arg-type]
    _check(*call_wsgi(wsgi, environ_of(data)), method)
    asgi = RegistrationASGIApp(registry(), MemoryNonceStore(), **options)  # type: ignore[arg-type]
    scope, messages = scope_of(data)
    _check(*call_asgi(asgi, scope, messages), method)
