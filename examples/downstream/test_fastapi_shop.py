"""Testing a FastAPI app's signed endpoints with the datafold-auth pytest plugin.

Copy this file next to your app and adapt ``app`` below: every fixture whose
name starts with ``datafold_`` comes from the plugin (docs/testing.md).
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi_shop import create_app

from datafold_auth import Request, SQLiteRegistry, VerificationPolicy
from datafold_auth.testing import assert_accepted, assert_rejected


@pytest.fixture
def app(datafold_verifier) -> FastAPI:
    """The app under test, verifying against the plugin's registry, nonce store and clock."""
    return create_app(verifier=datafold_verifier)


# --- who may call what -------------------------------------------------------


def test_open_route_needs_no_signature(app, datafold_asgi_client):
    assert datafold_asgi_client(app).get("/health").json() == {"status": "ok"}


def test_unsigned_request_is_refused(app):
    from starlette.testclient import TestClient

    with TestClient(app) as client:
        assert_rejected(client.get("/api/hello"), "missing_signature")


def test_signed_request_reaches_the_app(app, datafold_asgi_client, datafold_key):
    response = datafold_asgi_client(app).get("/api/hello")
    assert_accepted(response)
    assert response.json() == {"hello": datafold_key.client_id, "scopes": []}


@pytest.mark.datafold_identity(client_id="alice", scopes=["read"])
def test_identity_declared_with_the_marker(app, datafold_asgi_client):
    response = datafold_asgi_client(app).get("/api/items")
    assert_accepted(response)
    assert response.json()["reader"] == "alice"


@pytest.mark.datafold_identity(scopes=["read"])
def test_write_needs_the_write_scope(app, datafold_asgi_client):
    response = datafold_asgi_client(app).post("/api/items", json={"name": "widget"})
    assert_rejected(response, "insufficient_scope", status=403)


WRITERS = [{"scopes": ["write"]}, {"client_id": "bob", "scopes": "write"}]


@pytest.mark.parametrize("datafold_key", WRITERS, indirect=True)
def test_writers_can_create_items(app, datafold_asgi_client, datafold_key):
    response = datafold_asgi_client(app).post("/api/items", json={"name": "widget"})
    assert_accepted(response, status=201)
    assert response.json() == {"name": "widget", "owner": datafold_key.client_id}


def test_many_identities_in_one_test(app, datafold_asgi_client, datafold_key_factory):
    reader = datafold_key_factory("reader", scopes=["read"])
    writer = datafold_key_factory("writer", scopes=["read", "write"])
    assert_rejected(datafold_asgi_client(app, key=reader).post("/api/items", json={"name": "x"}), "insufficient_scope")
    assert_accepted(datafold_asgi_client(app, key=writer).post("/api/items", json={"name": "x"}))
    assert datafold_asgi_client(app, key=reader).get("/api/items").json()["items"] == [{"name": "x", "owner": "writer"}]


def test_unknown_revoked_and_pending_keys(app, datafold_asgi_client, datafold_key_factory):
    stranger = datafold_key_factory(register=False)
    revoked = datafold_key_factory(status="revoked")
    pending = datafold_key_factory(status="pending")
    assert_rejected(datafold_asgi_client(app, key=stranger).get("/api/hello"), "unknown_key")
    assert_rejected(datafold_asgi_client(app, key=revoked).get("/api/hello"), "key_not_active")
    assert_rejected(datafold_asgi_client(app, key=pending).get("/api/hello"), "key_not_active")


def test_revocation_takes_effect_at_once(app, datafold_asgi_client, datafold_key):
    client = datafold_asgi_client(app)
    assert_accepted(client.get("/api/hello"))
    datafold_key.revoke()
    assert_rejected(client.get("/api/hello"), "key_not_active")


# --- time: no sleeping, no patching ----------------------------------------------


def test_signature_expires(app, datafold_asgi_client, datafold_key, datafold_clock, datafold_verifier):
    headers = datafold_key.signed_headers("GET", "http://testserver/api/hello")
    datafold_clock.advance(331)  # max_age 300 s + clock_skew 30 s
    assert_rejected(datafold_asgi_client(app).get("/api/hello", headers=headers), "expired")
    assert datafold_verifier.log[-1].error.reason == "expired"


def test_client_clock_behind_or_ahead(app, datafold_asgi_client, datafold_clock):
    assert_rejected(datafold_asgi_client(app, clock=datafold_clock.shifted(-400)).get("/api/hello"), "expired")
    assert_rejected(datafold_asgi_client(app, clock=datafold_clock.shifted(60)).get("/api/hello"), "created_in_future")
    assert_accepted(datafold_asgi_client(app, clock=datafold_clock.shifted(25)).get("/api/hello"))


def test_key_expiry(app, datafold_asgi_client, datafold_key_factory, datafold_clock):
    key = datafold_key_factory("short-lived", expires_in=60)
    client = datafold_asgi_client(app, key=key)
    assert_accepted(client.get("/api/hello"))
    datafold_clock.advance(61)
    assert_rejected(client.get("/api/hello"), "key_not_active")


class TestStricterPolicy:
    @pytest.fixture
    def datafold_policy(self):
        """Override the plugin's policy for the tests of this class."""
        return VerificationPolicy(max_age=60)

    def test_a_minute_and_the_skew_is_the_limit(self, app, datafold_asgi_client, datafold_clock):
        client = datafold_asgi_client(app, clock=datafold_clock.shifted(-91))
        assert_rejected(client.get("/api/hello"), "expired")


# --- replays ----------------------------------------------------------------------


def test_replayed_request_is_refused(app, datafold_asgi_client, datafold_key, datafold_nonce_store):
    headers = datafold_key.signed_headers("GET", "http://testserver/api/hello")
    client = datafold_asgi_client(app)  # sends requests that already carry a signature as they are
    assert_accepted(client.get("/api/hello", headers=headers))
    assert_rejected(client.get("/api/hello", headers=headers), "replayed_nonce")
    (replay,) = datafold_nonce_store.replays
    assert (datafold_key.keyid, replay.nonce) in datafold_nonce_store


def test_pinned_nonce_makes_the_second_request_a_replay(app, datafold_asgi_client, datafold_nonce_store):
    client = datafold_asgi_client(app, nonce="the-same-nonce")
    assert_accepted(client.get("/api/hello"))
    assert_rejected(client.get("/api/hello"), "replayed_nonce")
    assert datafold_nonce_store.nonces() == ["the-same-nonce"]


# --- signing by hand, other clients, other registries ----------------------------------


@pytest.mark.datafold_identity(scopes=["write"])
def test_signing_by_hand(app, datafold_signer, datafold_clock):
    from starlette.testclient import TestClient

    request = Request.from_url(
        "POST", "http://testserver/api/items", [("Content-Type", "application/json")], b'{"name": "by hand"}'
    )
    datafold_signer.sign(request, now=datafold_clock())
    with TestClient(app) as client:
        response = client.post("/api/items", content=request.body, headers=request.headers)
    assert_accepted(response, status=201)


@pytest.mark.anyio
@pytest.mark.datafold_identity(scopes="read write")
async def test_httpx_async_client_on_the_asgi_transport(app, datafold_httpx_async_client):
    async with datafold_httpx_async_client(app) as client:
        assert_accepted(await client.post("/api/items", json={"name": "via httpx"}), status=201)
        assert (await client.get("/api/items")).json()["items"][0]["name"] == "via httpx"


@pytest.mark.anyio
async def test_async_replay(app, datafold_httpx_async_client):
    async with datafold_httpx_async_client(app, nonce="n-1") as client:
        assert_accepted(await client.get("/api/hello"))
        assert_rejected(await client.get("/api/hello"), "replayed_nonce")


@pytest.mark.datafold_identity(scopes=["read"])
def test_requests_session_in_process(app, datafold_requests_session):
    session = datafold_requests_session(app)
    assert_accepted(session.get("/api/items"))
    assert_rejected(session.post("/api/items", json={"name": "x"}), "insufficient_scope", status=403)


def test_keys_land_in_the_configured_registry(datafold_registry_url, datafold_registry, datafold_key):
    assert datafold_registry.get(datafold_key.keyid).client_id == datafold_key.client_id
    if datafold_registry_url == "memory://":
        assert [record.keyid for record in datafold_registry.list()] == [datafold_key.keyid]


class TestOnSQLite:
    @pytest.fixture
    def datafold_registry(self, datafold_registry_factory):
        """Run this class against a fresh SQLite registry file instead of the in-memory one."""
        return datafold_registry_factory()

    def test_signed_request(self, app, datafold_asgi_client, datafold_registry):
        assert isinstance(datafold_registry, SQLiteRegistry)
        assert_accepted(datafold_asgi_client(app).get("/api/hello"))
