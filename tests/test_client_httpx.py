"""DatafoldHttpxAuth: sync and async clients, streamed bodies, and a live server accepting them."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from datafold_auth import Request, VerifiedSignature
from datafold_auth.client import DatafoldHttpxAuth

from .servers import Harness, live_server

URL = "https://api.example.com/v1/items?limit=10"


def verify(h: Harness, request: httpx.Request, now: float | None = None) -> VerifiedSignature:
    """Verify the request as a server receiving exactly these headers and body would."""
    received = Request.from_url(request.method, str(request.url), request.headers.multi_items(), request.content)
    return h.verifier.verify(received, time.time() if now is None else now)


def capture(sent: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    return httpx.MockTransport(handler)


def test_reads_the_body_before_signing() -> None:
    assert DatafoldHttpxAuth.requires_request_body is True


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sync_client_signs_what_it_sends(method: str) -> None:
    h = Harness()
    sent: list[httpx.Request] = []
    with httpx.Client(auth=DatafoldHttpxAuth(h.signer), transport=capture(sent)) as client:
        client.request(method, URL, json={"a": 1} if method == "POST" else None)
    (request,) = sent
    assert ("content-digest" in request.headers) == (method == "POST")
    assert verify(h, request).client_id == "alice"


def test_async_client_signs_a_streamed_body() -> None:
    h = Harness()
    sent: list[httpx.Request] = []

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b'{"big":', b'"upload"}'):
            yield part

    async def go() -> None:
        async with httpx.AsyncClient(auth=DatafoldHttpxAuth(h.signer), transport=capture(sent)) as client:
            await client.post(URL, content=chunks(), headers={"Content-Type": "application/json"})

    asyncio.run(go())
    (request,) = sent
    assert request.content == b'{"big":"upload"}'
    assert '"content-type"' in request.headers["signature-input"]
    verify(h, request)


def test_created_comes_from_clock() -> None:
    h = Harness()
    then = time.time() - 5_000
    sent: list[httpx.Request] = []
    with httpx.Client(auth=DatafoldHttpxAuth(h.signer, clock=lambda: then), transport=capture(sent)) as client:
        client.get(URL)
    assert verify(h, sent[0], now=then).created == int(then)


@pytest.mark.parametrize("kind", ["flask", "starlette"])
def test_chunked_upload_against_live_server(kind: str) -> None:
    body = json.dumps({"rows": list(range(2000))}).encode()

    async def async_chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    async def go(url: str, auth: DatafoldHttpxAuth) -> httpx.Response:
        async with httpx.AsyncClient(auth=auth, timeout=10) as client:
            return await client.put(url, content=async_chunks())

    with live_server(kind) as live:
        url, auth = live.url + "/api/echo", DatafoldHttpxAuth(live.harness.signer)
        with httpx.Client(auth=auth, timeout=10) as client:
            r = client.put(url, content=iter([body[:500], body[500:]]))
        assert r.request.headers["transfer-encoding"] == "chunked"
        for response in (r, asyncio.run(go(url, auth))):
            assert response.status_code == 200, response.text
            assert response.json()["client_id"] == "alice"
            assert response.json()["body_b64"] == base64.b64encode(body).decode()
