"""Testing a Flask app's signed endpoints with the datafold-auth pytest plugin.

Copy this file next to your app and adapt ``app`` below: every fixture whose
name starts with ``datafold_`` comes from the plugin (docs/testing.md).
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask_shop import create_app

from datafold_auth import Request, SQLiteRegistry, VerificationPolicy
from datafold_auth.testing import assert_accepted, assert_rejected


@pytest.fixture
def app(datafold_verifier) -> Flask:
    """The app under test, verifying against the plugin's registry, nonce store and clock."""
    return create_app(verifier=datafold_verifier)


# --- who may call what -------------------------------------------------------


def test_open_route_needs_no_signature(app):
    assert app.test_client().get("/health").status_code == 200


def test_unsigned_request_is_refused(app):
    assert_rejected(app.test_client().get("/api/hello"), "missing_signature")


def test_signed_request_reaches_the_app(app, datafold_wsgi_client, datafold_key):
    response = datafold_wsgi_client(app).get("/api/hello")
    assert_accepted(response)
    assert response.json == {"hello": datafold_key.client_id, "scopes": []}


@pytest.mark.datafold_identity(client_id="alice", scopes=["read"])
def test_identity_declared_with_the_marker(app, datafold_wsgi_client):
    response = datafold_wsgi_client(app).get("/api/items")
    assert_accepted(response)
    assert response.json["reader"] == "alice"


@pytest.mark.datafold_identity(scopes=["read"])
def test_write_needs_the_write_scope(app, datafold_wsgi_client):
    response = datafold_wsgi_client(app).post("/api/items", json={"name": "widget"})
    assert_rejected(response, "insufficient_scope", status=403)


@pytest.mark.parametrize("datafold_key", [{"scopes": ["write"]}, {"scopes": "read write"}], indirect=True)
def test_writers_can_create_items(app, datafold_wsgi_client, datafold_key):
    response = datafold_wsgi_client(app).post("/api/items", json={"name": "widget"})
    assert_accepted(response, status=201)
    assert response.json == {"name": "widget", "owner": datafold_key.client_id}


def test_many_identities_in_one_test(app, datafold_wsgi_client, datafold_key_factory):
    reader = datafold_key_factory("reader", scopes=["read"])
    writer = datafold_key_factory("writer", scopes=["read", "write"])
    assert_rejected(datafold_wsgi_client(app, key=reader).post("/api/items", json={"name": "x"}), "insufficient_scope")
    assert_accepted(datafold_wsgi_client(app, key=writer).post("/api/items", json={"name": "x"}))
    assert datafold_wsgi_client(app, key=reader).get("/api/items").json["items"] == [{"name": "x", "owner": "writer"}]


def test_unknown_revoked_and_pending_keys(app, datafold_wsgi_client, datafold_key_factory):
    stranger = datafold_key_factory(register=False)
    revoked = datafold_key_factory(status="revoked")
    pending = datafold_key_factory(status="pending")
    assert_rejected(datafold_wsgi_client(app, key=stranger).get("/api/hello"), "unknown_key")
    assert_rejected(datafold_wsgi_client(app, key=revoked).get("/api/hello"), "key_not_active")
    assert_rejected(datafold_wsgi_client(app, key=pending).get("/api/hello"), "key_not_active")


def test_revocation_takes_effect_at_once(app, datafold_wsgi_client, datafold_key):
    client = datafold_wsgi_client(app)
    assert_accepted(client.get("/api/hello"))
    datafold_key.revoke()
    assert_rejected(client.get("/api/hello"), "key_not_active")


# --- time: no sleeping, no patching ----------------------------------------------


def test_signature_expires(app, datafold_key, datafold_clock, datafold_verifier):
    headers = datafold_key.signed_headers("GET", "http://localhost/api/hello")
    datafold_clock.advance(331)  # max_age 300 s + clock_skew 30 s
    assert_rejected(app.test_client().get("/api/hello", headers=headers), "expired")
    assert "s old" in datafold_verifier.log[-1].error.detail  # the server-side detail


def test_client_clock_behind_or_ahead(app, datafold_wsgi_client, datafold_clock):
    assert_rejected(datafold_wsgi_client(app, clock=datafold_clock.shifted(-400)).get("/api/hello"), "expired")
    assert_rejected(datafold_wsgi_client(app, clock=datafold_clock.shifted(60)).get("/api/hello"), "created_in_future")
    assert_accepted(datafold_wsgi_client(app, clock=datafold_clock.shifted(25)).get("/api/hello"))


def test_key_expiry(app, datafold_wsgi_client, datafold_key_factory, datafold_clock):
    key = datafold_key_factory("short-lived", expires_in=60)
    client = datafold_wsgi_client(app, key=key)
    assert_accepted(client.get("/api/hello"))
    datafold_clock.advance(61)
    assert_rejected(client.get("/api/hello"), "key_not_active")


class TestStricterPolicy:
    @pytest.fixture
    def datafold_policy(self):
        """Override the plugin's policy for the tests of this class."""
        return VerificationPolicy(max_age=60)

    def test_a_minute_and_the_skew_is_the_limit(self, app, datafold_key, datafold_clock):
        headers = datafold_key.signed_headers("GET", "http://localhost/api/hello")
        datafold_clock.advance(91)
        assert_rejected(app.test_client().get("/api/hello", headers=headers), "expired")


# --- replays ----------------------------------------------------------------------


def test_replayed_request_is_refused(app, datafold_key, datafold_nonce_store):
    headers = datafold_key.signed_headers("GET", "http://localhost/api/hello")
    client = app.test_client()
    assert_accepted(client.get("/api/hello", headers=headers))
    assert_rejected(client.get("/api/hello", headers=headers), "replayed_nonce")
    (replay,) = datafold_nonce_store.replays
    assert replay.keyid == datafold_key.keyid
    assert (datafold_key.keyid, replay.nonce) in datafold_nonce_store


def test_pinned_nonce_makes_the_second_request_a_replay(app, datafold_wsgi_client, datafold_nonce_store):
    client = datafold_wsgi_client(app, nonce="the-same-nonce")
    assert_accepted(client.get("/api/hello"))
    assert_rejected(client.get("/api/hello"), "replayed_nonce")
    assert datafold_nonce_store.nonces() == ["the-same-nonce"]


def test_every_signed_request_uses_a_new_nonce(app, datafold_wsgi_client, datafold_nonce_store):
    client = datafold_wsgi_client(app)
    for _ in range(3):
        assert_accepted(client.get("/api/hello"))
    assert len(set(datafold_nonce_store.nonces())) == 3


# --- signing by hand, other clients, other registries ----------------------------------


@pytest.mark.datafold_identity(scopes=["write"])
def test_signing_by_hand(app, datafold_signer, datafold_clock):
    request = Request.from_url(
        "POST", "http://localhost/api/items", [("Content-Type", "application/json")], b'{"name": "by hand"}'
    )
    datafold_signer.sign(request, now=datafold_clock())
    response = app.test_client().post("/api/items", data=request.body, headers=request.headers)
    assert_accepted(response, status=201)


def test_tampered_body_is_refused(app, datafold_key):
    headers = datafold_key.signed_headers("POST", "http://localhost/api/items", body=b'{"name": "a"}')
    response = app.test_client().post("/api/items", data=b'{"name": "b"}', headers=headers)
    assert_rejected(response, "digest_mismatch")


@pytest.mark.datafold_identity(scopes="read write")
def test_httpx_client_on_the_wsgi_transport(app, datafold_httpx_client):
    client = datafold_httpx_client(app)
    assert_accepted(client.post("/api/items", json={"name": "via httpx"}), status=201)
    assert client.get("/api/items").json()["items"][0]["name"] == "via httpx"


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

    def test_signed_request(self, app, datafold_wsgi_client, datafold_registry):
        assert isinstance(datafold_registry, SQLiteRegistry)
        assert_accepted(datafold_wsgi_client(app).get("/api/hello"))
