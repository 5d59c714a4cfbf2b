"""DatafoldAuth for requests: what it signs is what is sent, and a live server accepts it."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest
import requests

from datafold_auth import Request, VerifiedSignature
from datafold_auth.client import DatafoldAuth

from .servers import Harness, live_server

URL = "https://api.example.com/v1/items?limit=10"


def prepare(h: Harness, method: str, *, clock: float | None = None, **kwargs: object) -> requests.PreparedRequest:
    auth = DatafoldAuth(h.signer) if clock is None else DatafoldAuth(h.signer, clock=lambda: clock)
    return requests.Request(method, URL, auth=auth, **kwargs).prepare()  # type: ignore[arg-type]


def verify(h: Harness, p: requests.PreparedRequest, now: float | None = None) -> VerifiedSignature:
    """Verify the prepared request as a server receiving exactly these headers and body would."""
    body = p.body if isinstance(p.body, bytes) else b""
    received = Request.from_url(
        p.method or "", p.url or "", [(k, v if isinstance(v, str) else v.decode()) for k, v in p.headers.items()], body
    )
    return h.verifier.verify(received, time.time() if now is None else now)


def test_get_is_signed_without_content_digest() -> None:
    h = Harness()
    p = prepare(h, "GET")
    assert {"Signature-Input", "Signature"} <= set(p.headers) and "Content-Digest" not in p.headers
    assert verify(h, p).client_id == "alice"


def test_json_body_is_digested_and_signed() -> None:
    h = Harness()
    p = prepare(h, "POST", json={"a": [1, 2]})
    assert str(p.headers["Content-Digest"]).startswith("sha-256=:")
    assert '"content-digest" "content-type"' in str(p.headers["Signature-Input"])
    assert verify(h, p).covered[-2:] == (("content-digest", {}), ("content-type", {}))


def test_str_body_is_sent_as_the_utf8_bytes_that_were_signed() -> None:
    h = Harness()
    p = prepare(h, "PUT", data="na\u00efve caf\u00e9", headers={"Content-Type": "text/plain; charset=utf-8"})
    assert p.body == "na\u00efve caf\u00e9".encode()
    assert p.headers["Content-Length"] == str(len(p.body))
    verify(h, p)


def test_form_body_is_signed() -> None:
    h = Harness()
    p = prepare(h, "POST", data={"q": "a b", "n": "1"})
    assert p.body == b"q=a+b&n=1"
    verify(h, p)


def test_stream_body_is_refused() -> None:
    with pytest.raises(TypeError, match="bytes or str"):
        prepare(Harness(), "POST", data=io.BytesIO(b"stream"))


def test_created_comes_from_clock() -> None:
    h = Harness()
    then = time.time() - 5_000
    assert verify(h, prepare(h, "GET", clock=then), now=then).created == int(then)


@pytest.mark.parametrize("kind", ["flask", "starlette"])
def test_session_with_auth_against_live_server(kind: str) -> None:
    with live_server(kind) as live, requests.Session() as session:
        session.auth = DatafoldAuth(live.harness.signer)
        for _ in range(3):  # fresh nonce per request
            r = session.post(live.url + "/api/echo", data={"field": "value"})
            assert r.status_code == 200 and r.json()["client_id"] == "alice"
        assert session.get(live.url + "/api/echo?page=2").status_code == 200


def test_core_and_middleware_import_no_http_client() -> None:
    code = (
        "import sys, datafold_auth, datafold_auth.middleware, datafold_auth.client;"
        "bad = {'requests', 'httpx'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
