"""End to end: real clients against Flask (WSGI), Starlette and FastAPI (ASGI) servers on loopback.

Every rejection reason the middleware can answer is produced by a real
request and asserted by the ``reason`` of the problem+json body.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import KeyStatus, Reason, Request, Signer
from datafold_auth.client.httpx import DatafoldHttpxAuth
from datafold_auth.client.requests import DatafoldAuth
from datafold_auth.profile import BASE_COMPONENTS
from datafold_auth.signer import new_nonce, sign_message

from .servers import DOWN_NONCE, KINDS, MAX_BODY, Live, live_server

PATH = "/api/echo?x=1&y=two"
PAYLOAD: dict[str, Any] = {"name": "gadget", "note": "h\u00e9llo", "n": [1, 2, 3]}


@pytest.fixture(scope="module", params=KINDS)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    with live_server(request.param) as server:
        yield server


# ------------------------------------------------------------------ acceptance


def _send_with(client: str, live: Live, method: str, url: str) -> tuple[int, dict[str, Any], bytes]:
    """Send a signed request through a client adapter; return status, JSON answer and the body sent."""
    payload = PAYLOAD if method == "POST" else None
    if client == "requests":
        r = requests.request(method, url, json=payload, auth=DatafoldAuth(live.harness.signer), timeout=10)
        return r.status_code, r.json(), r.request.body or b""  # type: ignore[return-value]
    auth = DatafoldHttpxAuth(live.harness.signer)
    if client == "httpx":
        with httpx.Client(auth=auth, timeout=10) as c:
            h = c.request(method, url, json=payload)
    else:

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(auth=auth, timeout=10) as c:
                return await c.request(method, url, json=payload)

        h = asyncio.run(go())
    return h.status_code, h.json(), h.request.content


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async"])
def test_signed_request_is_accepted_and_app_sees_identity_and_body(live: Live, client: str, method: str) -> None:
    status, seen, sent = _send_with(client, live, method, live.url + PATH)
    assert status == 200, seen
    h = live.harness
    assert seen["client_id"] == "alice" and seen["user"] == "alice"
    assert seen["keyid"] == h.signer.keyid
    assert seen["scopes"] == ["read", "write"]
    assert abs(seen["created"] - time.time()) < 60
    assert base64.b64decode(seen["body_b64"]) == sent
    assert (len(sent) > 0) == (method == "POST")
    if live.kind != "flask":
        assert seen["auth"] == ["read", "write"]
        assert seen["lifespan_ran"] is True  # lifespan scope passed through to the app


def test_exempt_path_passes_unsigned(live: Live) -> None:
    r = requests.post(live.url + "/health", data=b"ping", timeout=10)
    assert r.status_code == 200
    assert r.json()["client_id"] is None
    assert base64.b64decode(r.json()["body_b64"]) == b"ping"


# ------------------------------------------------------------------ rejections

Headers = dict[str, str]


def _signed(
    live: Live,
    method: str = "GET",
    body: bytes = b"",
    *,
    signer: Signer | None = None,
    now: float | None = None,
    nonce: str | None = None,
) -> Headers:
    """Headers of a request to ``PATH`` signed with ``signer`` (default: alice's)."""
    headers = [("Content-Type", "application/json")] if body else []
    req = Request.from_url(method, live.url + PATH, headers, body)
    (signer or live.harness.signer).sign(req, now=now, nonce=nonce)
    return dict(req.headers)


def _edit(name: str, pattern: str, replacement: str) -> Callable[[Headers], None]:
    def edit(headers: Headers) -> None:
        new = re.sub(pattern, replacement, headers[name], count=1)
        assert new != headers[name], f"{pattern!r} not in {headers[name]!r}"
        headers[name] = new

    return edit


def _apply(headers: Headers, edit: Callable[[Headers], None]) -> Headers:
    edit(headers)
    return headers


def _send(live: Live, method: str, headers: Headers, body: bytes = b"") -> requests.Response:
    return requests.request(method, live.url + PATH, headers=headers, data=body, timeout=10)


def _malformed_digest(live: Live) -> Headers:
    """A correctly signed request whose (covered) Content-Digest is not a digest dictionary."""
    body = b'{"a":1}'
    req = Request.from_url("POST", live.url + PATH, [("Content-Digest", "sha-256=not-bytes")], body)
    params: dict[str, object] = {
        "created": int(time.time()),
        "nonce": new_nonce(),
        "keyid": live.harness.signer.keyid,
        "alg": "ed25519",
        "tag": "datafold",
    }
    components: list[tuple[str, dict[str, object]]] = [(c, {}) for c in (*BASE_COMPONENTS, "content-digest")]
    signature_input, signature = sign_message(req, live.harness.key, label="df", components=components, params=params)
    return {"Content-Digest": "sha-256=not-bytes", "Signature-Input": signature_input, "Signature": signature}


ZERO_SIGNATURE = "df=:" + base64.b64encode(bytes(64)).decode() + ":"

CASES: dict[str, Callable[[Live], tuple[str, Headers, bytes]]] = {
    "missing_signature": lambda lv: ("GET", {}, b""),
    "malformed_signature_input": lambda lv: ("GET", {**_signed(lv), "Signature-Input": 'df=("@method"'}, b""),
    "malformed_signature": lambda lv: ("GET", {**_signed(lv), "Signature": "df=:AAAA:"}, b""),
    "malformed_signature_not_bytes": lambda lv: ("GET", {**_signed(lv), "Signature": 'df="text"'}, b""),
    "missing_parameter": lambda lv: ("GET", _apply(_signed(lv), _edit("Signature-Input", r';nonce="[^"]*"', "")), b""),
    "missing_parameter_created": lambda lv: (
        "GET",
        _apply(_signed(lv), _edit("Signature-Input", r";created=\d+", "")),
        b"",
    ),
    "unsupported_algorithm": lambda lv: (
        "GET",
        _apply(_signed(lv), _edit("Signature-Input", 'alg="ed25519"', 'alg="rsa-pss-sha512"')),
        b"",
    ),
    "wrong_tag": lambda lv: (
        "GET",
        _apply(_signed(lv), _edit("Signature-Input", 'tag="datafold"', 'tag="other"')),
        b"",
    ),
    "missing_component": lambda lv: ("GET", _apply(_signed(lv), _edit("Signature-Input", ' "@query"', "")), b""),
    "missing_component_body": lambda lv: (
        "POST",
        _apply(_signed(lv, "POST", b"{}"), _edit("Signature-Input", ' "content-digest"', "")),
        b"{}",
    ),
    "unsupported_component": lambda lv: (
        "GET",
        _apply(_signed(lv), _edit("Signature-Input", r'\("@method"', '("@status" "@method"')),
        b"",
    ),
    "unknown_key": lambda lv: ("GET", _signed(lv, signer=Signer(Ed25519PrivateKey.generate())), b""),
    "key_not_active_revoked": lambda lv: ("GET", _signed(lv, signer=lv.harness.add_key(KeyStatus.REVOKED)), b""),
    "key_not_active_pending": lambda lv: ("GET", _signed(lv, signer=lv.harness.add_key(KeyStatus.PENDING)), b""),
    "bad_signature": lambda lv: ("GET", {**_signed(lv), "Signature": ZERO_SIGNATURE}, b""),
    "bad_signature_other_method": lambda lv: ("DELETE", _signed(lv, "GET"), b""),
    "malformed_digest": lambda lv: ("POST", _malformed_digest(lv), b'{"a":1}'),
    "digest_mismatch": lambda lv: ("POST", _signed(lv, "POST", b'{"a":1}'), b'{"a":2}'),
    "expired": lambda lv: ("GET", _signed(lv, now=time.time() - 1000), b""),
    "created_in_future": lambda lv: ("GET", _signed(lv, now=time.time() + 1000), b""),
    "body_too_large": lambda lv: ("POST", _signed(lv, "POST", b"x" * (MAX_BODY + 1)), b"x" * (MAX_BODY + 1)),
    "nonce_store_unavailable": lambda lv: ("GET", _signed(lv, nonce=DOWN_NONCE), b""),
}


def _reason_of(case: str) -> Reason:
    for reason in Reason:
        if case.startswith(reason.value):
            return reason
    raise AssertionError(case)


def _assert_problem(r: requests.Response | httpx.Response, reason: Reason) -> None:
    assert r.status_code == reason.status, r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.headers["Cache-Control"] == "no-store"
    doc = r.json()
    assert doc["reason"] == reason.value
    assert doc["status"] == reason.status
    assert doc["type"].endswith("/" + reason.value)
    if reason.status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Signature ")
        assert '"@method"' in r.headers["Accept-Signature"]
    if reason.status == 503:
        assert r.headers["Retry-After"]


@pytest.mark.parametrize("case", list(CASES))
def test_rejection_reason(live: Live, case: str) -> None:
    method, headers, body = CASES[case](live)
    _assert_problem(_send(live, method, headers, body), _reason_of(case))


def test_registry_unavailable_is_503(live: Live) -> None:
    signer = live.harness.add_key()
    live.harness.registry.down.add(signer.keyid)
    _assert_problem(_send(live, "GET", _signed(live, signer=signer)), Reason.REGISTRY_UNAVAILABLE)
    live.harness.registry.down.clear()
    assert _send(live, "GET", _signed(live, signer=signer)).status_code == 200


def test_replayed_nonce(live: Live) -> None:
    headers = _signed(live, "POST", b'{"pay":1}')
    assert _send(live, "POST", headers, b'{"pay":1}').status_code == 200
    _assert_problem(_send(live, "POST", headers, b'{"pay":1}'), Reason.REPLAYED_NONCE)


def test_rejected_request_does_not_use_up_its_nonce(live: Live) -> None:
    nonce = new_nonce()
    _assert_problem(_send(live, "DELETE", _signed(live, "GET", nonce=nonce)), Reason.BAD_SIGNATURE)
    assert _send(live, "GET", _signed(live, nonce=nonce)).status_code == 200


def test_revocation_takes_effect_on_next_request(live: Live) -> None:
    signer = live.harness.add_key()
    assert _send(live, "GET", _signed(live, signer=signer)).status_code == 200
    live.harness.registry.set_status(signer.keyid, KeyStatus.REVOKED, int(time.time()))
    _assert_problem(_send(live, "GET", _signed(live, signer=signer)), Reason.KEY_NOT_ACTIVE)


def test_chunked_body_over_limit_is_413(live: Live) -> None:
    chunks = [b"y" * 4096] * (MAX_BODY // 4096 + 1)
    with httpx.Client(timeout=10) as c:
        r = c.post(live.url + PATH, content=iter(chunks))
    _assert_problem(r, Reason.BODY_TOO_LARGE)


def test_rejection_is_logged_without_secrets(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="datafold_auth")
    headers = _signed(live, "POST", b'{"secret":"body"}')
    _assert_problem(_send(live, "POST", headers, b'{"secret":"tampered"}'), Reason.DIGEST_MISMATCH)
    records = [r for r in caplog.records if r.name == "datafold_auth"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    text = records[0].getMessage()
    assert "reason=digest_mismatch" in text and live.harness.signer.keyid in text
    assert "POST" in text and "/api/echo" in text
    signature = headers["Signature"].split(":")[1]
    assert signature not in text and "secret" not in text and "Signature-Input" not in text
