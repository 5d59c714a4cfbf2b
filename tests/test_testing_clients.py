"""The plugin's signed test clients against real middleware: werkzeug/Flask, Starlette, httpx, requests.

These tests use the plugin's fixtures directly: the plugin is loaded in this
run through its ``pytest11`` entry point, as in any project that installs datafold-auth.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest
from flask import Flask, redirect, request
from flask.testing import FlaskClient
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route
from werkzeug.test import Client

from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.testing import (
    ClockedVerifier,
    EphemeralKey,
    FakeClock,
    KeyFactory,
    RecordingNonceStore,
    assert_accepted,
    assert_rejected,
)
from datafold_auth.testing.clients import (
    ASGIClientFactory,
    HttpxAsyncClientFactory,
    HttpxClientFactory,
    RequestsSessionFactory,
    SignedClient,
    WSGIClientFactory,
    is_asgi,
    signed_client_class,
)

from .servers import serve_wsgi

PATH = "/api/a%20b/c"
QUERY = "x=1&y=%2F"


def raw_wsgi_echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """A bare WSGI app answering the identity, method, query and body it got."""
    identity = environ.get(IDENTITY_KEY)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    doc = {
        "client_id": identity and identity.client_id,
        "method": environ["REQUEST_METHOD"],
        "query": environ.get("QUERY_STRING", ""),
        "body": environ["wsgi.input"].read(length).decode(),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(doc).encode()]


def flask_echo(verifier: ClockedVerifier) -> Flask:
    app = Flask("echo")

    @app.route("/api/<path:rest>", methods=["GET", "POST", "PUT"])
    def echo(rest: str) -> Any:
        identity = request.environ[IDENTITY_KEY]
        return {
            "client_id": identity.client_id,
            "method": request.method,
            "query": request.query_string.decode(),
            "body": request.get_data(as_text=True),
        }

    @app.route("/api/moved", methods=["GET", "POST"])
    def moved() -> Any:
        return redirect("/api/target?z=9", code=int(request.args.get("code", "307")))

    app.wsgi_app = DatafoldAuthMiddleware(app.wsgi_app, verifier)  # type: ignore[method-assign]
    return app


async def starlette_echo_view(request: StarletteRequest) -> JSONResponse:
    return JSONResponse(
        {
            "client_id": request.user.client_id,
            "method": request.method,
            "query": request.url.query,
            "body": (await request.body()).decode(),
        }
    )


async def starlette_moved(request: StarletteRequest) -> RedirectResponse:
    return RedirectResponse("/api/target?z=9", status_code=int(request.query_params.get("code", "307")))


def starlette_echo(verifier: ClockedVerifier) -> Any:
    routes = [
        Route("/api/moved", starlette_moved, methods=["GET", "POST"]),
        Route("/api/{rest:path}", starlette_echo_view, methods=["GET", "POST", "PUT"]),
    ]
    return DatafoldAuthASGIMiddleware(Starlette(routes=routes), verifier)


def check_echo(response: Any, key: EphemeralKey, method: str, body: str) -> None:
    assert_accepted(response)
    doc = response.json() if callable(response.json) else response.json
    assert doc == {"client_id": key.client_id, "method": method, "query": QUERY, "body": body}


@pytest.mark.parametrize(("method", "body"), [("GET", ""), ("POST", '{"a": 1}'), ("PUT", "plain text")])
def test_wsgi_client_for_flask_and_bare_wsgi(
    datafold_wsgi_client: WSGIClientFactory,
    datafold_verifier: ClockedVerifier,
    datafold_key: EphemeralKey,
    method: str,
    body: str,
) -> None:
    flask_client = datafold_wsgi_client(flask_echo(datafold_verifier))
    bare_client = datafold_wsgi_client(DatafoldAuthMiddleware(raw_wsgi_echo, datafold_verifier))
    assert isinstance(flask_client, FlaskClient) and isinstance(flask_client, SignedClient)
    assert type(bare_client) is SignedClient
    for client in (flask_client, bare_client):
        response = client.open(f"{PATH}?{QUERY}", method=method, data=body, content_type="text/plain")
        check_echo(response, datafold_key, method, body)


def test_wsgi_client_keeps_the_apps_test_client_class(
    datafold_wsgi_client: WSGIClientFactory, datafold_verifier: ClockedVerifier
) -> None:
    class MyClient(FlaskClient):
        pass

    app = flask_echo(datafold_verifier)
    app.test_client_class = MyClient
    client = datafold_wsgi_client(app, use_cookies=False)
    assert isinstance(client, MyClient) and type(client).__name__ == "SignedMyClient"
    assert signed_client_class(MyClient) is type(client) and signed_client_class(type(client)) is type(client)
    assert_accepted(client.get("/api/x"))


@pytest.mark.parametrize(("code", "method", "body"), [(307, "POST", "again"), (302, "GET", "")])
def test_every_client_signs_each_redirect_hop(
    datafold_wsgi_client: WSGIClientFactory,
    datafold_asgi_client: ASGIClientFactory,
    datafold_httpx_client: HttpxClientFactory,
    datafold_httpx_async_client: HttpxAsyncClientFactory,
    datafold_requests_session: RequestsSessionFactory,
    datafold_verifier: ClockedVerifier,
    code: int,
    method: str,
    body: str,
) -> None:
    wsgi, asgi = flask_echo(datafold_verifier), starlette_echo(datafold_verifier)
    url = f"/api/moved?code={code}"

    async def via_async_httpx() -> Any:
        async with datafold_httpx_async_client(asgi, follow_redirects=True) as client:
            return await client.post(url, content=b"again")

    responses = [
        datafold_wsgi_client(wsgi).post(url, data=b"again", follow_redirects=True),
        datafold_asgi_client(asgi, follow_redirects=True).post(url, content=b"again"),
        datafold_httpx_client(wsgi, follow_redirects=True).post(url, content=b"again"),
        asyncio.run(via_async_httpx()),
        datafold_requests_session(wsgi).post(url, data=b"again"),
        datafold_requests_session(asgi).post(url, data=b"again"),
    ]
    for i, response in enumerate(responses):
        assert_accepted(response)
        doc = response.json() if callable(response.json) else response.json
        assert (i, doc["method"], doc["query"], doc["body"]) == (i, method, "z=9", body)
    assert [v.target for v in datafold_verifier.log] == [url, "/api/target?z=9"] * len(responses)
    assert not datafold_verifier.rejections


def test_wsgi_client_json_and_unsigned_mode(
    datafold_wsgi_client: WSGIClientFactory, datafold_verifier: ClockedVerifier
) -> None:
    client = datafold_wsgi_client(flask_echo(datafold_verifier))
    assert client.post("/api/x", json={"k": "v"}).json["body"] == '{"k": "v"}'
    client.datafold_signing = None  # type: ignore[attr-defined]
    assert_rejected(client.get("/api/x"), "missing_signature")


@pytest.mark.parametrize(("method", "body"), [("GET", ""), ("POST", '{"a": 1}')])
def test_asgi_client(
    datafold_asgi_client: ASGIClientFactory,
    datafold_verifier: ClockedVerifier,
    datafold_key: EphemeralKey,
    method: str,
    body: str,
) -> None:
    client = datafold_asgi_client(starlette_echo(datafold_verifier))
    response = client.request(method, f"{PATH}?{QUERY}", content=body.encode(), headers={"Content-Type": "text/plain"})
    check_echo(response, datafold_key, method, body)


def test_asgi_client_runs_lifespan_in_with(
    datafold_asgi_client: ASGIClientFactory, datafold_verifier: ClockedVerifier
) -> None:
    with datafold_asgi_client(starlette_echo(datafold_verifier)) as client:
        assert_accepted(client.get("/api/x"))


def test_httpx_clients(
    datafold_httpx_client: HttpxClientFactory,
    datafold_httpx_async_client: HttpxAsyncClientFactory,
    datafold_verifier: ClockedVerifier,
    datafold_key: EphemeralKey,
) -> None:
    sync = datafold_httpx_client(flask_echo(datafold_verifier))
    assert isinstance(sync, httpx.Client) and str(sync.base_url) == "http://testserver"
    check_echo(sync.post(f"{PATH}?{QUERY}", content=b"hi"), datafold_key, "POST", "hi")

    def chunks() -> Iterable[bytes]:
        yield b"stre"
        yield b"amed"

    check_echo(sync.put(f"{PATH}?{QUERY}", content=chunks()), datafold_key, "PUT", "streamed")

    async def go() -> None:
        async with datafold_httpx_async_client(starlette_echo(datafold_verifier)) as client:
            check_echo(await client.post(f"{PATH}?{QUERY}", content=b"hi"), datafold_key, "POST", "hi")

    asyncio.run(go())


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_requests_session_in_process(
    datafold_requests_session: RequestsSessionFactory,
    datafold_verifier: ClockedVerifier,
    datafold_key: EphemeralKey,
    kind: str,
) -> None:
    app = flask_echo(datafold_verifier) if kind == "wsgi" else starlette_echo(datafold_verifier)
    session = datafold_requests_session(app)
    assert session.base_url == "http://testserver"
    check_echo(session.get(f"{PATH}?{QUERY}"), datafold_key, "GET", "")
    response = session.post(f"http://testserver{PATH}?{QUERY}", data="text body")
    check_echo(response, datafold_key, "POST", "text body")
    assert response.reason == "OK" and response.headers["content-type"] == "application/json"


def test_requests_session_in_process_from_a_running_loop(
    datafold_requests_session: RequestsSessionFactory, datafold_verifier: ClockedVerifier
) -> None:
    session = datafold_requests_session(starlette_echo(datafold_verifier))

    async def go() -> int:
        return session.get("/api/x").status_code

    assert asyncio.run(go()) == 200


def test_requests_session_against_a_live_server(
    datafold_requests_session: RequestsSessionFactory,
    datafold_verifier: ClockedVerifier,
    datafold_key: EphemeralKey,
) -> None:
    with serve_wsgi(flask_echo(datafold_verifier)) as url:
        session = datafold_requests_session(url)
        check_echo(session.post(f"{PATH}?{QUERY}", data=b"live"), datafold_key, "POST", "live")
        with pytest.raises(TypeError):
            session.post("/api/x", data=iter([b"a"]))


def test_presigned_requests_pass_through_every_client(
    datafold_wsgi_client: WSGIClientFactory,
    datafold_asgi_client: ASGIClientFactory,
    datafold_httpx_client: HttpxClientFactory,
    datafold_requests_session: RequestsSessionFactory,
    datafold_verifier: ClockedVerifier,
    datafold_key: EphemeralKey,
    datafold_nonce_store: RecordingNonceStore,
) -> None:
    wsgi, asgi = flask_echo(datafold_verifier), starlette_echo(datafold_verifier)
    sends = [
        ("localhost", lambda h: datafold_wsgi_client(wsgi).get("/api/x", headers=h)),
        ("testserver", lambda h: datafold_asgi_client(asgi).get("/api/x", headers=h)),
        ("testserver", lambda h: datafold_httpx_client(wsgi).get("/api/x", headers=h)),
        ("testserver", lambda h: datafold_requests_session(wsgi).get("/api/x", headers=h)),
    ]
    for host, send in sends:
        headers = datafold_key.signed_headers("GET", f"http://{host}/api/x")
        assert_accepted(send(headers))
        assert_rejected(send(headers), "replayed_nonce")
    assert len(datafold_nonce_store.replays) == 4


def test_factory_options_key_clock_nonce(
    datafold_wsgi_client: WSGIClientFactory,
    datafold_verifier: ClockedVerifier,
    datafold_key_factory: KeyFactory,
    datafold_clock: FakeClock,
) -> None:
    app = flask_echo(datafold_verifier)
    bob = datafold_key_factory("bob")
    assert datafold_wsgi_client(app, key=bob).get("/api/x").json["client_id"] == "bob"
    assert_rejected(datafold_wsgi_client(app, clock=datafold_clock.shifted(-331)).get("/api/x"), "expired")
    pinned = datafold_wsgi_client(app, nonce="fixed")
    assert_accepted(pinned.get("/api/x"))
    assert_rejected(pinned.get("/api/y"), "replayed_nonce")


def test_client_factories_close_their_clients(datafold_verifier: ClockedVerifier) -> None:
    key = KeyFactory(datafold_verifier.registry)()  # type: ignore[arg-type]
    factory = HttpxClientFactory(lambda: key, FakeClock())
    client = factory(flask_echo(datafold_verifier))
    sessions = RequestsSessionFactory(lambda: key, FakeClock())
    session = sessions("http://127.0.0.1:9")
    factory.close()
    sessions.close()
    assert client.is_closed
    assert session.auth is not None and sessions._closers == []


def test_is_asgi() -> None:
    async def asgi(scope: Any, receive: Any, send: Any) -> None: ...

    assert is_asgi(asgi) and is_asgi(Starlette()) and is_asgi(DatafoldAuthASGIMiddleware(asgi, None))  # type: ignore[arg-type]
    assert not is_asgi(raw_wsgi_echo) and not is_asgi(Flask("x")) and not is_asgi(Client)
