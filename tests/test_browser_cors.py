"""docs/browser.md, "Cross-origin APIs (CORS)": its two CORS layers, run against Chromium on another origin.

The page's ```python blocks (the WSGI ``CORS`` class with ``protect``, and
Starlette's ``CORSMiddleware`` through ``add_cors``) are executed as written
and wrapped around a real Flask / FastAPI app with the DataFold middleware and
a rate-limited registration app, served on ``127.0.0.1``. The page is on
``http://localhost:<other port>`` (a different origin, served by a second
loopback server: the page and the module). From there, through ``fetch``:

* a key registers (a signed POST: preflight first), then signed GET and POST
  are accepted;
* an unsigned request's ``401`` and its ``reason`` are readable;
* the 11th registration within a minute gets ``429 rate_limited`` with
  ``error.retryAfter`` read from ``Retry-After``; with the WSGI layer's
  ``EXPOSE_HEADERS`` changed, ``retryAfter`` is ``undefined`` (why the page
  says to expose it);
* a preflight from an origin that is not allowed gets no CORS answer.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from fastapi import FastAPI, Request

from datafold_auth import MemoryNonceStore, MemoryRegistry, Verifier
from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.ratelimit import MemoryRateLimiter
from datafold_auth.registration import RegistrationASGIApp

from . import test_browser_page as browser_page
from .conftest import ROOT
from .servers import serve_asgi, serve_wsgi
from .test_browser_page import TIMEOUT_MS

chromium = browser_page.chromium  # Debian's Chromium, launched once for the module

DOC = ROOT / "docs" / "browser.md"
MODULE = ROOT / "browser" / "datafold-auth.js"


def cors_code() -> list[str]:
    """The ```python blocks of the page's CORS section."""
    section = DOC.read_text().split("### Cross-origin APIs (CORS)", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def doc_namespace() -> dict[str, Any]:
    """The CORS section's code, executed as written, in a fresh namespace."""
    namespace: dict[str, Any] = {"__name__": "cors_doc"}
    for code in cors_code():
        exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (the documented code)
    return namespace


def flask_api(page_origin: str, *, expose: str | None = None) -> Any:
    """A Flask API wrapped by the page's ``protect`` (``expose``: another ``EXPOSE_HEADERS``, for the control)."""
    from flask import Flask, jsonify, request

    namespace = doc_namespace()
    if expose is not None:
        namespace["CORS"].EXPOSE_HEADERS = expose
    app = Flask("cors_api")

    @app.get("/api/hello")
    def hello() -> Any:
        return {"hello": request.environ[IDENTITY_KEY].client_id}

    @app.post("/api/items")
    def items() -> Any:
        return jsonify(created=request.get_json(), owner=request.environ[IDENTITY_KEY].client_id)

    wrapped = namespace["protect"](app, MemoryRegistry(), MemoryNonceStore(), {page_origin})
    assert isinstance(wrapped.wsgi_app, namespace["CORS"])
    assert isinstance(wrapped.wsgi_app.app.app, DatafoldAuthMiddleware)  # CORS outside dispatcher and middleware
    return wrapped


def fastapi_api(page_origin: str) -> Any:
    """A FastAPI API: DataFold middleware and a rate-limited registration, then the page's ``add_cors``."""
    registry, nonces = MemoryRegistry(), MemoryNonceStore()
    app = FastAPI()

    @app.get("/api/hello")
    async def hello(request: Request) -> dict[str, Any]:
        return {"hello": request.scope[IDENTITY_KEY].client_id}

    @app.post("/api/items")
    async def items(request: Request) -> dict[str, Any]:
        return {"created": await request.json(), "owner": request.scope[IDENTITY_KEY].client_id}

    app.mount("/register", RegistrationASGIApp(registry, nonces, rate_limit=MemoryRateLimiter()))
    app.add_middleware(DatafoldAuthASGIMiddleware, verifier=Verifier(registry, nonces), paths=["/api/"])
    doc_namespace()["add_cors"](app, {page_origin})
    return app


SERVERS: dict[str, Callable[[str], AbstractContextManager[str]]] = {
    "wsgi": lambda origin: serve_wsgi(flask_api(origin)),
    "asgi": lambda origin: serve_asgi(fastapi_api(origin)),
}

CROSS_ORIGIN = """
async (api) => {
  const df = await import('/datafold-auth.js');
  const out = { origin: location.origin };
  const pair = await df.generateKeyPair();
  const signer = await df.Signer.create(pair.privateKey, pair.publicKey);
  const record = await df.register(signer, `${api}/register/keys`, { clientId: 'alice' });
  out.registered = record.status;
  const hello = await signer.fetch(`${api}/api/hello`);
  out.hello = { status: hello.status, body: await hello.json() };
  const item = await signer.fetch(`${api}/api/items`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'widget' }) });
  out.item = { status: item.status, body: await item.json() };
  const unsigned = await fetch(`${api}/api/hello`);
  out.unsigned = { status: unsigned.status, reason: (await df.readProblem(unsigned)).reason };
  out.limited = null;
  for (let i = 0; i < 12 && out.limited === null; i++) {    // 10 registrations a minute per address
    const extra = await df.generateKeyPair();
    try {
      await df.register(await df.Signer.create(extra.privateKey, extra.publicKey), `${api}/register/keys`);
    } catch (e) {
      out.limited = { reason: e.reason, status: e.status, retryAfter: e.retryAfter === undefined ? 'undefined' : e.retryAfter,
                      problemReason: e.problem && e.problem.reason };
    }
  }
  return out;
}
"""


@pytest.mark.parametrize("layer", sorted(SERVERS))
def test_a_page_on_another_origin_signs_reads_refusals_and_retry_after(chromium: Any, layer: str) -> None:
    with page_origin() as origin, SERVERS[layer](origin) as api:
        got = run_page_at(chromium, api, origin)
    assert got["registered"] == "active"
    assert got["hello"] == {"status": 200, "body": {"hello": "alice"}}
    assert got["item"] == {"status": 200, "body": {"created": {"name": "widget"}, "owner": "alice"}}
    assert got["unsigned"] == {"status": 401, "reason": "missing_signature"}
    limited = got["limited"]
    assert limited is not None and limited["reason"] == "rate_limited" and limited["status"] == 429
    assert isinstance(limited["retryAfter"], int) and limited["retryAfter"] >= 1
    assert limited["problemReason"] == "rate_limited"


def test_without_the_expose_header_retry_after_is_unreadable(chromium: Any) -> None:
    """The control: the same WSGI layer exposing another field leaves the page without retryAfter."""
    with page_origin() as origin, serve_wsgi(flask_api(origin, expose="X-Request-Id")) as api:
        got = run_page_at(chromium, api, origin)
    assert got["hello"]["status"] == 200 and got["unsigned"] == {"status": 401, "reason": "missing_signature"}
    assert got["limited"]["reason"] == "rate_limited" and got["limited"]["retryAfter"] == "undefined"


@pytest.mark.parametrize("layer", sorted(SERVERS))
def test_preflights_are_answered_before_the_middleware_for_allowed_origins_only(layer: str) -> None:
    allowed = "http://localhost:5173"
    with SERVERS[layer](allowed) as api:

        def preflight(origin: str) -> tuple[int, dict[str, str]]:
            request = urllib.request.Request(  # noqa: S310 (loopback)
                api + "/api/items",
                method="OPTIONS",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-digest,content-type,signature,signature-input",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
                    return answer.status, {k.lower(): v for k, v in answer.headers.items()}
            except urllib.error.HTTPError as refused:
                return refused.code, {k.lower(): v for k, v in refused.headers.items()}

        status, headers = preflight(allowed)
        assert status in {200, 204} and headers["access-control-allow-origin"] == allowed
        assert {"signature", "signature-input", "content-digest", "content-type"} <= {
            h.strip().lower() for h in headers["access-control-allow-headers"].split(",")
        }
        status, headers = preflight("https://evil.example")
        assert "access-control-allow-origin" not in headers
        assert status in {400, 401}  # not answered for that origin: the middleware (or Starlette) refuses it


def page_site(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The page's own origin: an empty page and the module (a real server: Chromium then sees a loopback page)."""
    if environ["PATH_INFO"] == "/datafold-auth.js":
        start_response("200 OK", [("Content-Type", "text/javascript")])
        return [MODULE.read_bytes()]
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<!doctype html><title>app</title>"]


@contextmanager
def page_origin() -> Iterator[str]:
    """The page's origin: ``http://localhost:<port>``, while the API is on ``http://127.0.0.1:<port>``."""
    with serve_wsgi(page_site) as url:
        yield url.replace("127.0.0.1", "localhost")


def run_page_at(chromium: Any, api: str, origin: str) -> dict[str, Any]:
    """The page on ``origin``, calling ``api`` cross-origin."""
    context = chromium.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(origin + "/")
        got: dict[str, Any] = page.evaluate(CROSS_ORIGIN, api)
    finally:
        context.close()
    assert errors == []
    assert got["origin"] == origin and not api.startswith(origin)
    return got
