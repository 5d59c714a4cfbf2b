"""Scopes per route in Flask, Django and Starlette/FastAPI, and the authorization hook."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.test import Client

import datafold_auth as df
from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware, Identity
from datafold_auth.permissions import allowed, scopes_tuple
from datafold_auth.registry import hookspecs, plugin_manager


class Keys:
    def __init__(self) -> None:
        self.registry = df.MemoryRegistry()
        self.verifier = df.Verifier(self.registry, df.MemoryNonceStore(), cache_ttl=0)
        self.signers: dict[str, df.Signer] = {}
        for client_id, scopes in (("reader", ("read",)), ("writer", ("read", "write")), ("nobody", ())):
            key = Ed25519PrivateKey.generate()
            self.registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id=client_id, scopes=scopes))
            self.signers[client_id] = df.Signer(key)

    def headers(self, who: str, method: str, url: str, body: bytes = b"") -> dict[str, str]:
        extra = [("Content-Type", "application/json")] if body else []
        return {**dict(extra), **dict(self.signers[who].sign_parts(method, url, extra, body))}


@pytest.fixture
def keys() -> Keys:
    return Keys()


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The INFO lines the permission helpers logged on the ``datafold_auth`` logger."""
    return [r.getMessage() for r in caplog.records if r.name == "datafold_auth" and r.levelno == logging.INFO]


def problem(response: Any) -> tuple[int, str]:
    data = response.get_data() if hasattr(response, "get_data") else response.content
    return response.status_code, json.loads(data)["reason"]


# ------------------------------------------------------------------- Flask


def flask_app(keys: Keys) -> Any:
    from flask import Flask

    from datafold_auth.permissions.flask import require_scopes

    app = Flask(__name__)

    @app.get("/api/items")
    @require_scopes("read")
    def read() -> Any:
        return {"ok": "read"}

    @app.post("/api/items")
    @require_scopes("read write")
    def write() -> Any:
        return {"ok": "write"}

    @app.get("/open")
    @require_scopes("read")
    def misconfigured() -> Any:  # not behind the middleware
        return {"ok": "?"}

    app.wsgi_app = DatafoldAuthMiddleware(app.wsgi_app, keys.verifier, paths=["/api/"])  # type: ignore[method-assign]
    return app


def test_flask(keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="datafold_auth")
    client = flask_app(keys).test_client()
    url = "http://localhost/api/items"
    assert client.get("/api/items", headers=keys.headers("reader", "GET", url)).json == {"ok": "read"}
    body = b'{"a":1}'
    assert client.post("/api/items", data=body, headers=keys.headers("writer", "POST", url, body)).json == {
        "ok": "write"
    }
    refused = client.post("/api/items", data=body, headers=keys.headers("reader", "POST", url, body))
    assert problem(refused) == (403, "insufficient_scope")
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert problem(client.get("/open")) == (401, "missing_signature")
    reader = keys.signers["reader"].keyid
    assert refusals(caplog) == [
        f"datafold_auth rejected 'POST' '/api/items': reason=insufficient_scope client_id='reader' keyid={reader}"
        " required='read write'",
        "datafold_auth rejected 'GET' '/open': reason=missing_signature client_id=None keyid=None required='read'",
    ]


# ------------------------------------------------------------------ Django


def django_app(keys: Keys) -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="test", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], MIDDLEWARE=[], USE_TZ=True
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application

    return DatafoldAuthMiddleware(get_wsgi_application(), keys.verifier, paths=["/api/"])


def _django_views() -> list[Any]:
    from django.http import JsonResponse
    from django.urls import path

    from datafold_auth.permissions.django import identity, require_scopes

    @require_scopes("write")
    def write(request: Any) -> Any:
        return JsonResponse({"owner": identity(request).client_id})

    return [path("api/items", write)]


try:
    urlpatterns = _django_views()
except Exception:  # pragma: no cover - Django missing: the test below fails on import
    urlpatterns = []


def test_django(keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="datafold_auth")
    client = Client(django_app(keys))
    url = "http://localhost/api/items"
    ok = client.get("/api/items", headers=keys.headers("writer", "GET", url))
    assert ok.status_code == 200 and ok.json == {"owner": "writer"}
    assert problem(client.get("/api/items", headers=keys.headers("reader", "GET", url))) == (403, "insufficient_scope")
    reader = keys.signers["reader"].keyid
    assert refusals(caplog) == [
        f"datafold_auth rejected 'GET' '/api/items': reason=insufficient_scope client_id='reader' keyid={reader}"
        " required='write'"
    ]


# --------------------------------------------------------- Starlette/FastAPI


def asgi_apps(keys: Keys) -> tuple[Any, Any]:
    from fastapi import Depends, FastAPI
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from datafold_auth.permissions.starlette import install, require_scopes, requires_scopes

    fast = FastAPI()
    install(fast)

    @fast.post("/api/items")
    async def create(who: Identity = Depends(require_scopes("write"))) -> dict[str, str]:  # noqa: B008
        return {"owner": who.client_id}

    @requires_scopes("read")
    async def listing(request: Request) -> JSONResponse:
        return JSONResponse({"reader": request.user.client_id})

    star = Starlette(routes=[Route("/api/items", listing)])
    return (
        DatafoldAuthASGIMiddleware(fast, keys.verifier, paths=["/api/"]),
        DatafoldAuthASGIMiddleware(star, keys.verifier, paths=["/api/"]),
    )


def test_fastapi_and_starlette(keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="datafold_auth")
    from starlette.testclient import TestClient

    fast, star = asgi_apps(keys)
    url = "http://testserver/api/items"
    body = b'{"a":1}'
    with TestClient(fast) as client:
        ok = client.post("/api/items", content=body, headers=keys.headers("writer", "POST", url, body))
        assert ok.json() == {"owner": "writer"}
        refused = client.post("/api/items", content=body, headers=keys.headers("reader", "POST", url, body))
        assert problem(refused) == (403, "insufficient_scope")
        assert refused.headers["content-type"] == "application/problem+json"
    with TestClient(star) as client:
        assert client.get("/api/items", headers=keys.headers("reader", "GET", url)).json() == {"reader": "reader"}
        assert problem(client.get("/api/items", headers=keys.headers("nobody", "GET", url))) == (
            403,
            "insufficient_scope",
        )
    reader, nobody = keys.signers["reader"].keyid, keys.signers["nobody"].keyid
    assert [line.split(" required=")[0] for line in refusals(caplog)] == [
        f"datafold_auth rejected 'POST' '/api/items': reason=insufficient_scope client_id='reader' keyid={reader}",
        f"datafold_auth rejected 'GET' '/api/items': reason=insufficient_scope client_id='nobody' keyid={nobody}",
    ]


def test_fastapi_without_install_still_answers_403(keys: Keys) -> None:
    from fastapi import Depends, FastAPI
    from starlette.testclient import TestClient

    from datafold_auth.permissions.starlette import require_scopes

    app = FastAPI()

    @app.get("/api/x")
    async def x(who: Identity = Depends(require_scopes("admin"))) -> dict[str, str]:  # noqa: B008
        return {}

    with TestClient(DatafoldAuthASGIMiddleware(app, keys.verifier)) as client:
        response = client.get("/api/x", headers=keys.headers("writer", "GET", "http://testserver/api/x"))
        assert response.status_code == 403 and response.json() == {"detail": "insufficient_scope"}


# ------------------------------------------------------------------- the hook


class Policy:
    """An app's own permission system: 'auditors' may read anything; 'banned' may do nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    @hookspecs.hookimpl
    def datafold_auth_authorize(self, identity: Identity, scopes: tuple[str, ...], request: Any) -> bool | None:
        self.calls.append((identity.client_id, scopes))
        if identity.client_id == "banned":
            return False
        if identity.client_id == "auditor" and scopes == ("read",):
            return True
        return None


@pytest.fixture
def policy() -> Iterator[Policy]:
    found = Policy()
    plugin_manager().register(found, name="test-policy")
    yield found
    plugin_manager().unregister(found)


def test_the_hook_decides_before_the_scopes(policy: Policy, keys: Keys) -> None:
    auditor = Identity("auditor", "k", ())
    banned = Identity("banned", "k", ("read", "write"))
    plain = Identity("plain", "k", ("read",))
    assert allowed(auditor, ("read",)) and not allowed(auditor, ("write",))
    assert not allowed(banned, ("read",))
    assert allowed(plain, ("read",)) and not allowed(plain, ("read", "write"))
    assert not allowed(None, ("read",))
    assert ("auditor", ("read",)) in policy.calls
    client = flask_app(keys).test_client()  # the helpers ask the hook too
    assert ("writer", ("read",)) not in policy.calls
    client.get("/api/items", headers=keys.headers("writer", "GET", "http://localhost/api/items"))
    assert ("writer", ("read",)) in policy.calls


def test_scopes_tuple() -> None:
    assert scopes_tuple(["read write", "admin"]) == ("read", "write", "admin")
    with pytest.raises(ValueError):
        scopes_tuple([])


class SlowPolicy:
    """A hook that blocks (as a database query would) and notes the thread it ran in."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    @hookspecs.hookimpl
    def datafold_auth_authorize(self, identity: Identity, scopes: tuple[str, ...], request: Any) -> bool | None:
        self.threads.append(threading.get_ident())
        time.sleep(0.5)
        return None


@pytest.fixture
def slow_policy() -> Iterator[SlowPolicy]:
    found = SlowPolicy()
    plugin_manager().register(found, name="test-slow-policy")
    yield found
    plugin_manager().unregister(found)


@pytest.mark.parametrize("kind", ["fastapi", "starlette"])
def test_a_blocking_hook_does_not_hold_up_the_event_loop(slow_policy: SlowPolicy, kind: str) -> None:
    """While the hook of one request blocks for 0.5 s, the loop answers another request at once."""
    import httpx
    from fastapi import Depends, FastAPI
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from datafold_auth.permissions.starlette import require_scopes, requires_scopes

    if kind == "fastapi":
        app: Any = FastAPI()

        @app.get("/api/slow")
        async def slow(who: Identity = Depends(require_scopes("read"))) -> dict[str, str]:  # noqa: B008
            return {"who": who.client_id}

        @app.get("/ping")
        async def ping() -> dict[str, str]:
            return {"who": "ping"}

    else:

        @requires_scopes("read")
        async def slow_endpoint(request: Request) -> JSONResponse:
            return JSONResponse({"who": request.user.client_id})

        async def ping_endpoint(request: Request) -> JSONResponse:
            return JSONResponse({"who": "ping"})

        app = Starlette(routes=[Route("/api/slow", slow_endpoint), Route("/ping", ping_endpoint)])

    reader = Identity("reader", "k", ("read",))

    async def verified(scope: Any, receive: Any, send: Any) -> None:  # stands in for the middleware
        if scope["type"] == "http":
            scope[IDENTITY_KEY], scope["user"] = reader, reader
        await app(scope, receive, send)

    async def run() -> tuple[float, float, int]:
        loop_thread = threading.get_ident()
        transport = httpx.ASGITransport(app=verified)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            started = time.monotonic()

            async def timed(path: str) -> float:
                response = await client.get(path)
                assert response.status_code == 200, response.text
                return time.monotonic() - started

            slow_task = asyncio.ensure_future(timed("/api/slow"))
            await asyncio.sleep(0.05)  # the slow request is inside its hook now
            ping_took = await timed("/ping")
            return await slow_task, ping_took, loop_thread

    slow_took, ping_took, loop_thread = asyncio.run(run())
    assert slow_took >= 0.5
    assert ping_took < 0.4, f"the loop was blocked: /ping took {ping_took:.2f} s"
    assert slow_policy.threads and loop_thread not in slow_policy.threads


def test_a_misspelt_or_undecorated_hook_is_refused_at_register() -> None:
    """pluggy alone would register both and never call them: a deny-list silently off."""

    class Misspelt:
        @hookspecs.hookimpl
        def datafold_auth_authorise(self, identity: Identity, scopes: tuple[str, ...], request: Any) -> bool:
            return False

    class Undecorated:
        def datafold_auth_authorize(self, identity: Identity, scopes: tuple[str, ...], request: Any) -> bool:
            return False

    import pluggy

    with pytest.raises(pluggy.PluginValidationError, match="'datafold_auth_authorise' is not a datafold-auth hook"):
        plugin_manager().register(Misspelt())
    with pytest.raises(pluggy.PluginValidationError, match="not decorated with"):
        plugin_manager().register(Undecorated())
    assert allowed(Identity("x", "k", ("read",)), ("read",))  # neither was registered


def test_a_refusal_by_the_hook_is_logged_as_such(policy: Policy, caplog: pytest.LogCaptureFixture) -> None:
    from datafold_auth.errors import PermissionDenied
    from datafold_auth.permissions import authorize

    caplog.set_level(logging.INFO, logger="datafold_auth")
    with pytest.raises(PermissionDenied):
        authorize(Identity("banned", "k", ("read",)), ("read",))
    with pytest.raises(PermissionDenied):
        authorize(Identity("plain", "k", ("read",)), ("write",))
    lines = refusals(caplog)
    assert lines[0].endswith("required='read' decided_by=hook")
    assert lines[1].endswith("required='write'")
