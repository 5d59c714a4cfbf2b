"""Key lifecycle through the registration app (WSGI and ASGI, real servers): rotation, revocation by the
holder, devices joining a client and their approval, client key listing, expiry and the registration rate limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response as WerkzeugResponse

import datafold_auth as df
from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.ratelimit import MemoryRateLimiter, Rate
from datafold_auth.registration import (
    NEW_KEY_LABEL,
    RegistrationApp,
    RegistrationASGIApp,
    approval_request,
    client_keys_url,
    lifecycle_request,
    registration_request,
    revocation_request,
    rotation_request,
)
from datafold_auth.testing import FakeClock

from .test_registration_http import asgi_server, wsgi_server

NOW = 1_800_000_000


@dataclass
class Stack:
    """A registration app at /register and a protected /api/hello, on one registry, at one fake clock."""

    base: str
    registry: df.MemoryRegistry
    clock: FakeClock

    @property
    def keys_url(self) -> str:
        return self.base + "/register/keys"

    def send(self, request: df.Request) -> requests.Response:
        return requests.request(
            request.method, request.target_uri, data=request.body or None, headers=dict(request.headers), timeout=10
        )

    def register(self, signer: df.Signer, **fields: Any) -> requests.Response:
        return self.send(registration_request(signer, self.keys_url, now=self.clock(), **fields))

    def hello(self, signer: df.Signer) -> requests.Response:
        return self.send(lifecycle_request(signer, "GET", self.base + "/api/hello", now=self.clock()))


def new_signer() -> df.Signer:
    return df.Signer(Ed25519PrivateKey.generate())


def reason(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("reason", "")


def _wsgi_api(environ: dict[str, Any], start_response: Any) -> Any:
    identity = environ[IDENTITY_KEY]
    body = json.dumps({"client_id": identity.client_id, "keyid": identity.keyid})
    return WerkzeugResponse(body, content_type="application/json")(environ, start_response)


async def _asgi_api(request: StarletteRequest) -> JSONResponse:
    identity = request.scope[IDENTITY_KEY]
    return JSONResponse({"client_id": identity.client_id, "keyid": identity.keyid})


@pytest.fixture(params=["wsgi", "asgi"])
def make_stack(request: pytest.FixtureRequest) -> Iterator[Any]:
    with ExitStack() as exits:

        def make(**options: Any) -> Stack:
            registry, nonces, clock = df.MemoryRegistry(), df.MemoryNonceStore(), FakeClock(NOW)
            verifier = df.Verifier(registry, nonces, cache_ttl=0)
            options.setdefault("allowed_scopes", {"read", "write"})
            if request.param == "wsgi":
                api = DatafoldAuthMiddleware(_wsgi_api, verifier, paths=["/api"], clock=clock)
                app = DispatcherMiddleware(
                    api, {"/register": RegistrationApp(registry, nonces, clock=clock, **options)}
                )
                base = exits.enter_context(wsgi_server(app))
            else:
                inner = Starlette(
                    routes=[
                        Mount("/register", RegistrationASGIApp(registry, nonces, clock=clock, **options)),
                        Route("/api/hello", _asgi_api),
                    ]
                )
                app = DatafoldAuthASGIMiddleware(inner, verifier, paths=["/api"], clock=clock)
                base = exits.enter_context(asgi_server(app))
            return Stack(base, registry, clock)

        yield make


# ------------------------------------------------------------------ rotation


def test_rotation_keeps_both_keys_working_through_the_overlap(make_stack: Any) -> None:
    stack = make_stack(rotation_overlap=120)
    old, new = new_signer(), new_signer()
    assert stack.register(old, client_id="alice", label="laptop", scopes=["read"]).status_code == 201
    assert stack.hello(old).status_code == 200
    request = rotation_request(old, new, stack.keys_url, now=stack.clock())
    (line,) = [v for k, v in request.headers if k == "Signature-Input"]  # one field line, two members
    assert line.startswith("df=(") and f", {NEW_KEY_LABEL}=(" in line and 'tag="datafold-new-key"' in line
    response = stack.send(request)
    assert response.status_code == 201, response.text
    doc = response.json()
    assert response.headers["Location"] == f"/register/keys/{new.keyid}"
    assert doc["key"]["keyid"] == new.keyid and doc["key"]["replaces"] == old.keyid
    assert (doc["key"]["client_id"], doc["key"]["label"], doc["key"]["scopes"]) == ("alice", "laptop", ["read"])
    assert doc["previous"]["status"] == "rotated" and doc["previous"]["overlap_until"] == NOW + 120
    assert doc["previous"]["replaced_by"] == new.keyid
    stack.clock.advance(119)
    assert stack.hello(old).status_code == 200 and stack.hello(new).json()["client_id"] == "alice"
    stack.clock.advance(1)
    assert reason(stack.hello(old)) == (401, "key_not_active")
    assert stack.hello(new).status_code == 200
    events = [(e.event, e.keyid, e.actor) for e in stack.registry.audit_entries()]
    assert ("rotated", old.keyid, f"self:{old.keyid}") in events and (
        "registered",
        new.keyid,
        f"self:{old.keyid}",
    ) in events
    assert reason(stack.send(rotation_request(old, new_signer(), stack.keys_url, now=stack.clock()))) == (
        401,
        "key_not_active",
    )


def test_rotation_refusals(make_stack: Any) -> None:
    stack = make_stack()
    old, other = new_signer(), new_signer()
    stack.register(old, client_id="alice")
    stack.register(other, client_id="bob")
    now = stack.clock()

    no_proof = lifecycle_request(
        old, "POST", f"{stack.keys_url}/{old.keyid}/rotate", {"jwk": df.public_jwk(new_signer().public_key)}, now=now
    )
    assert reason(stack.send(no_proof)) == (400, "bad_proof")

    wrong_proof = rotation_request(old, new_signer(), stack.keys_url, now=now)  # proof by a key other than the body's
    body = json.loads(wrong_proof.body)
    body["jwk"] = df.public_jwk(new_signer().public_key)
    tampered = df.Request.from_url(
        "POST", wrong_proof.target_uri, [(k, v) for k, v in wrong_proof.headers], json.dumps(body).encode()
    )
    assert reason(stack.send(tampered))[0] == 401  # the digest no longer matches: digest_mismatch

    by_other = rotation_request(other, new_signer(), stack.keys_url, now=now)
    by_other_to_alice = df.Request.from_url(
        "POST", by_other.target_uri.replace(other.keyid, old.keyid), by_other.headers, by_other.body
    )
    assert reason(stack.send(by_other_to_alice))[0] == 401  # @path is covered: bad_signature

    forged = rotation_request(old, new_signer(), stack.keys_url, now=now)  # the proof's bytes changed
    current, proof = dict(forged.headers)["Signature"].split(", ")
    label, value = proof.split("=:", 1)
    flipped = ("B" if value[0] == "A" else "A") + value[1:]
    forged.headers = [(k, f"{current}, {label}=:{flipped}" if k == "Signature" else v) for k, v in forged.headers]
    assert reason(stack.send(forged)) == (400, "bad_proof")

    same = rotation_request(old, old, stack.keys_url, now=now)
    assert reason(stack.send(same)) == (400, "invalid_request")
    taken = rotation_request(old, other, stack.keys_url, now=now)  # the new key is already registered
    assert reason(stack.send(taken)) == (409, "duplicate_key")
    good = rotation_request(old, new_signer(), stack.keys_url, now=now)
    assert stack.send(good).status_code == 201
    assert reason(stack.send(good)) == (401, "replayed_nonce")
    assert stack.registry.get(old.keyid).status is df.KeyStatus.ROTATED  # type: ignore[union-attr]


# ---------------------------------------------------------------- revocation


def test_holder_revokes_its_own_key_and_a_lost_device(make_stack: Any) -> None:
    stack = make_stack(allow_join=True)
    laptop, phone, stranger = new_signer(), new_signer(), new_signer()
    stack.register(laptop, client_id="alice")
    assert stack.register(phone, client_id="alice").json()["status"] == "pending"  # joins as pending
    stack.register(stranger, client_id="eve")
    assert reason(stack.send(revocation_request(stranger, stack.keys_url, laptop.keyid, now=stack.clock()))) == (
        403,
        "client_mismatch",
    )
    lost = stack.send(revocation_request(laptop, stack.keys_url, phone.keyid, reason="lost phone", now=stack.clock()))
    assert lost.status_code == 200 and lost.json()["status"] == "revoked"
    assert reason(stack.send(revocation_request(laptop, stack.keys_url, phone.keyid, now=stack.clock()))) == (
        409,
        "invalid_transition",
    )
    own = stack.send(revocation_request(laptop, stack.keys_url, now=stack.clock()))
    assert own.json()["status"] == "revoked"
    assert reason(stack.hello(laptop)) == (401, "key_not_active")
    assert reason(stack.send(revocation_request(stranger, stack.keys_url, "A" * 43, now=stack.clock()))) == (
        404,
        "not_found",
    )
    revoked = [e for e in stack.registry.audit_entries() if e.event == "revoked"]
    assert [(e.keyid, e.reason, e.actor) for e in revoked] == [
        (phone.keyid, "lost phone", f"self:{laptop.keyid}"),
        (laptop.keyid, "", f"self:{laptop.keyid}"),
    ]
    assert all(e.request_id for e in revoked)


def test_a_device_joins_and_is_approved_by_another_key_of_the_client(make_stack: Any) -> None:
    stack = make_stack(allow_join=True)
    laptop, phone, reader, stranger = new_signer(), new_signer(), new_signer(), new_signer()
    stack.register(laptop, client_id="alice", scopes=["read"])
    stack.clock.advance(1)  # listings are oldest first
    joined = stack.register(phone, client_id="alice", scopes=["read"])
    assert (joined.status_code, joined.json()["status"]) == (201, "pending")
    assert reason(stack.hello(phone)) == (401, "key_not_active")
    stack.register(stranger, client_id="eve")
    listing = stack.send(lifecycle_request(laptop, "GET", client_keys_url(stack.keys_url, "alice"), now=stack.clock()))
    assert [(k["keyid"], k["status"]) for k in listing.json()["keys"]] == [
        (laptop.keyid, "active"),
        (phone.keyid, "pending"),
    ]
    assert listing.json()["keys"][1]["fingerprint"] == df.key_fingerprint(phone.keyid)
    peek = stack.send(lifecycle_request(stranger, "GET", client_keys_url(stack.keys_url, "alice"), now=stack.clock()))
    assert reason(peek) == (403, "client_mismatch")
    assert reason(stack.send(approval_request(stranger, stack.keys_url, phone.keyid, now=stack.clock()))) == (
        403,
        "client_mismatch",
    )
    assert reason(stack.send(approval_request(phone, stack.keys_url, phone.keyid, now=stack.clock()))) == (
        401,
        "key_not_active",
    )
    approved = stack.send(approval_request(laptop, stack.keys_url, phone.keyid, now=stack.clock()))
    assert (approved.status_code, approved.json()["status"]) == (200, "active")
    assert stack.hello(phone).json()["client_id"] == "alice"
    assert reason(stack.send(approval_request(laptop, stack.keys_url, phone.keyid, now=stack.clock()))) == (
        409,
        "invalid_transition",
    )
    # a device asking for more than the approver holds needs an administrator
    stack.register(reader, client_id="alice", scopes=["read", "write"])
    assert reason(stack.send(approval_request(laptop, stack.keys_url, reader.keyid, now=stack.clock()))) == (
        403,
        "insufficient_scope",
    )
    assert [e.event for e in stack.registry.audit_entries()].count("approved") == 1


def test_without_allow_join_a_taken_client_id_is_still_refused(make_stack: Any) -> None:
    stack = make_stack()
    stack.register(new_signer(), client_id="alice")
    assert reason(stack.register(new_signer(), client_id="alice")) == (409, "client_id_taken")


def test_lifecycle_routes(make_stack: Any) -> None:
    stack = make_stack()
    key = "A" * 43
    assert reason(requests.get(f"{stack.keys_url}/{key}/rotate", timeout=10)) == (405, "method_not_allowed")
    assert requests.get(f"{stack.keys_url}/{key}/rotate", timeout=10).headers["Allow"] == "POST"
    assert reason(requests.post(f"{stack.keys_url}/{key}/explode", timeout=10)) == (404, "not_found")
    assert reason(requests.post(stack.base + "/register/clients/alice/keys", timeout=10)) == (405, "method_not_allowed")
    assert reason(requests.get(stack.base + "/register/clients/a%20b/keys", timeout=10)) == (404, "not_found")
    assert reason(requests.get(stack.base + "/register/clients/alice/keys", timeout=10)) == (401, "missing_signature")


# -------------------------------------------------------------------- expiry


def test_keys_expire(make_stack: Any) -> None:
    stack = make_stack(key_lifetime=3600)
    short, default, greedy = new_signer(), new_signer(), new_signer()
    assert stack.register(short, client_id="s", expires_at=NOW + 60).json()["expires_at"] == NOW + 60
    assert stack.register(default, client_id="d").json()["expires_at"] == NOW + 3600
    assert reason(stack.register(greedy, client_id="g", expires_at=NOW + 7200)) == (400, "invalid_request")
    assert reason(stack.register(greedy, client_id="g", expires_at=NOW - 1)) == (400, "invalid_request")
    assert stack.hello(short).status_code == 200
    stack.clock.advance(60)
    assert reason(stack.hello(short)) == (401, "key_not_active")
    record = stack.registry.get(short.keyid)
    assert record is not None and record.effective_status(stack.clock()) is df.KeyStatus.EXPIRED
    assert [r.keyid for r in stack.registry.expire_due(int(stack.clock()))] == [short.keyid]
    assert requests.get(f"{stack.keys_url}/{short.keyid}", timeout=10).json()["status"] == "expired"


# ---------------------------------------------------------------- rate limit


def test_registrations_are_rate_limited(make_stack: Any) -> None:
    limiter = MemoryRateLimiter(per_client=Rate(2, 60), total=Rate(3, 60))
    stack = make_stack(rate_limit=limiter)
    assert stack.register(new_signer()).status_code == 201
    assert stack.register(new_signer()).status_code == 201
    refused = stack.register(new_signer())
    assert reason(refused) == (429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.headers["Content-Type"] == "application/problem+json"
    # lookups are not limited
    assert requests.get(f"{stack.keys_url}/{'A' * 43}", timeout=10).status_code == 404


def test_rate_limit_behind_a_proxy(make_stack: Any) -> None:
    limiter = MemoryRateLimiter(per_client=Rate(1, 60), total=None)
    stack = make_stack(rate_limit=limiter, trusted_proxies=1)

    def register_from(address: str) -> int:
        request = registration_request(new_signer(), stack.keys_url, now=stack.clock())
        request.headers.append(("X-Forwarded-For", f"203.0.113.9, {address}"))
        return stack.send(request).status_code

    assert register_from("198.51.100.1") == 201
    assert register_from("198.51.100.2") == 201  # another client behind the same proxy
    assert register_from("198.51.100.1") == 429


def test_memory_rate_limiter_refills() -> None:
    limiter = MemoryRateLimiter(per_client=Rate(2, 10), total=Rate(100, 1), max_clients=2)
    assert limiter.hit("a", 0) is None and limiter.hit("a", 0) is None
    assert limiter.hit("a", 0) == pytest.approx(5.0)
    assert limiter.hit("a", 5) is None  # one token back after 5 s
    assert limiter.hit("b", 5) is None and limiter.hit("c", 5) is None  # "a" forgotten (max_clients)
    assert Rate.parse("10/m") == Rate(10, 60.0) and Rate.parse("5/30") == Rate(5, 30.0)
    with pytest.raises(ValueError):
        Rate(0, 1)


def test_redis_rate_limiter(redis_key_prefix: str) -> None:
    import redis

    from datafold_auth.ratelimit import RedisRateLimiter

    from .backends import REDIS_URL

    client = redis.Redis.from_url(REDIS_URL)
    first = RedisRateLimiter(client, Rate(2, 60), Rate(4, 60), prefix=redis_key_prefix)
    second = RedisRateLimiter(client, Rate(2, 60), Rate(4, 60), prefix=redis_key_prefix)  # another instance
    now = 1_800_000_010.0
    assert first.hit("a", now) is None and second.hit("a", now) is None
    assert second.hit("a", now) == pytest.approx(50.0)  # the window of 60 s started at ...000
    assert first.hit("b", now) is None
    assert first.hit("c", now) is not None  # the total (4, refused requests count too) is shared
    down = RedisRateLimiter(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
    assert down.hit("a", now) is None  # an abuse brake fails open
    client.close()


def test_rotation_never_extends_an_expiry_and_a_rotated_key_cannot_revoke_its_successor(make_stack: Any) -> None:
    stack = make_stack(rotation_overlap=600)
    old, new = new_signer(), new_signer()
    stack.register(old, client_id="temp", expires_at=NOW + 1000)
    doc = stack.send(rotation_request(old, new, stack.keys_url, now=stack.clock())).json()
    assert doc["key"]["expires_at"] == NOW + 1000
    stolen = stack.send(revocation_request(old, stack.keys_url, new.keyid, now=stack.clock()))
    assert reason(stolen) == (409, "invalid_transition")
    assert stack.send(revocation_request(old, stack.keys_url, now=stack.clock())).json()["status"] == "revoked"
    assert stack.hello(new).status_code == 200


def test_revoking_the_successor_ends_the_old_keys_overlap(make_stack: Any) -> None:
    # the device holding the new key was exposed (or a thief rotated a stolen key to their own):
    # revoking the new key must not leave the old one, and its old backups, verifying for the overlap
    stack = make_stack(rotation_overlap=600)
    old, new = new_signer(), new_signer()
    stack.register(old, client_id="alice")
    assert stack.send(rotation_request(old, new, stack.keys_url, now=stack.clock())).status_code == 201
    stack.clock.advance(5)
    assert stack.hello(old).status_code == 200  # inside the overlap
    revoked = stack.send(revocation_request(new, stack.keys_url, reason="device exposed", now=stack.clock()))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert reason(stack.hello(new)) == (401, "key_not_active")
    assert reason(stack.hello(old)) == (401, "key_not_active")  # 595 s before its overlap_until
    previous = stack.registry.get(old.keyid)
    assert previous is not None and previous.status is df.KeyStatus.REVOKED
    assert previous.overlap_until == NOW + 600
    assert reason(stack.send(rotation_request(old, new_signer(), stack.keys_url, now=stack.clock()))) == (
        401,
        "key_not_active",
    )
    events = [(e.event, e.keyid, e.actor, e.data.get("successor_revoked")) for e in stack.registry.audit_entries()]
    assert events[-2:] == [
        ("revoked", new.keyid, f"self:{new.keyid}", None),
        ("revoked", old.keyid, f"self:{new.keyid}", new.keyid),
    ]
