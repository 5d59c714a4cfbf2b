"""Registration with proof of possession, sans I/O: body parsing, check order, the client builder."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth import Reason, wire
from datafold_auth.jwk import b64url_encode, jwk_thumbprint, public_jwk
from datafold_auth.registration import (
    ScopeNotAllowed,
    handle_registration,
    parse_registration_body,
    registration_request,
)
from datafold_auth.registration.core import RegistrationService
from datafold_auth.signer import new_nonce, sign_message

NOW = 1_800_000_000
URL = "https://api.example.com/register/keys"


def signed(doc: Any, key: Ed25519PrivateKey | None, *, keyid: str | None = None, now: float = NOW) -> df.Request:
    """A registration POST with ``doc`` as JSON (or raw bytes), signed by ``key`` (``None``: unsigned)."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    req = df.Request.from_url("POST", URL, [("Content-Type", "application/json")], body)
    if key is not None and keyid is None:
        df.Signer(key).sign(req, now=now)
    elif key is not None:  # a signature by ``key`` that claims to be by ``keyid``
        req.add_header("Content-Digest", df.content_digest(body))
        components: list[tuple[str, dict[str, object]]] = [
            (n, {}) for n in ("@method", "@authority", "@path", "@query", "content-digest", "content-type")
        ]
        params: dict[str, object] = {"created": int(now), "nonce": new_nonce(), "keyid": keyid, "tag": "datafold"}
        for name, value in zip(
            ("Signature-Input", "Signature"),
            sign_message(req, key, label="df", components=components, params=params),
            strict=True,
        ):
            req.add_header(name, value)
    return req


def register(req: df.Request, registry: df.MemoryRegistry | None = None, **kwargs: Any) -> df.KeyRecord:
    kwargs.setdefault("nonce_store", df.MemoryNonceStore())
    return handle_registration(req, now=NOW + 0.7, registry=registry or df.MemoryRegistry(), **kwargs)


def reason_of(req: df.Request, registry: df.MemoryRegistry | None = None, **kwargs: Any) -> Reason:
    with pytest.raises(df.DatafoldAuthError) as info:
        register(req, registry, **kwargs)
    return info.value.reason


# ------------------------------------------------------------------ parsing

GOOD_JWK = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}


def test_parse_full_and_minimal_bodies() -> None:
    doc = {"jwk": GOOD_JWK, "client_id": "svc.a@b:c-1_x", "label": "laptop é", "scopes": ["read", "write", "read"]}
    body = parse_registration_body(json.dumps(doc).encode())
    assert (body.jwk, body.client_id, body.label, body.scopes) == (
        GOOD_JWK,
        "svc.a@b:c-1_x",
        "laptop é",
        ("read", "write"),
    )
    minimal = parse_registration_body(b'{"jwk": {}, "client_id": null, "label": null, "scopes": null}')
    assert (minimal.client_id, minimal.label, minimal.scopes) == (None, "", None)
    assert parse_registration_body(b'{"jwk": {}, "scopes": []}').scopes == ()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"jwk"',
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",  # UTF-8 BOM
        b"[" * 10_000 + b"]" * 10_000,  # too deep for the parser
        b'{"jwk": {}, "jwk": {}}',
        b'{"jwk": {"x": "a", "x": "b"}}',
        b'{"jwk": {}, "label": NaN}',
        b'{"client_id": "a"}',
        b'{"jwk": "abc"}',
        b'{"jwk": {}, "extra": 1}',
        b'{"jwk": {}, "client_id": ""}',
        b'{"jwk": {}, "client_id": "' + b"a" * 129 + b'"}',
        b'{"jwk": {}, "client_id": "a b"}',
        b'{"jwk": {}, "client_id": "a\\n"}',
        b'{"jwk": {}, "client_id": 7}',
        b'{"jwk": {}, "label": "' + b"a" * 201 + b'"}',
        b'{"jwk": {}, "label": "a\\u0000b"}',
        b'{"jwk": {}, "label": "\\ud800"}',
        b'{"jwk": {}, "label": 1}',
        b'{"jwk": {}, "scopes": "read"}',
        b'{"jwk": {}, "scopes": [1]}',
        b'{"jwk": {}, "scopes": [""]}',
        b'{"jwk": {}, "scopes": ["a b"]}',
        b'{"jwk": {}, "scopes": ["a\\"b"]}',
        b'{"jwk": {}, "scopes": ' + json.dumps([f"s{i}" for i in range(65)]).encode() + b"}",
        b'{"jwk": {}, "n": ' + b"1" * 5000 + b"}",
    ],
)
def test_parse_refuses_bad_bodies(body: bytes) -> None:
    with pytest.raises(df.RegistrationError) as info:
        parse_registration_body(body)
    assert info.value.reason is Reason.INVALID_REQUEST


def test_label_limit_is_200_characters() -> None:
    assert parse_registration_body(json.dumps({"jwk": {}, "label": "é" * 200}).encode()).label == "é" * 200


# ------------------------------------------------------------- check order


def test_valid_proof_returns_stored_record() -> None:
    key, registry = Ed25519PrivateKey.generate(), df.MemoryRegistry()
    record = register(registration_request(df.Signer(key), URL, label="laptop", now=NOW), registry)
    assert record.keyid == jwk_thumbprint(key) == record.client_id
    assert (record.label, record.scopes, record.status) == ("laptop", (), df.KeyStatus.ACTIVE)
    assert record.created_at == record.updated_at == NOW
    assert registry.get(record.keyid) == record


def test_registration_request_builds_a_signed_json_post() -> None:
    key = Ed25519PrivateKey.generate()
    req = registration_request(df.Signer(key), URL, client_id="alice", label="l", scopes=("read",), now=NOW)
    assert (req.method, req.path, req.authority) == ("POST", "/register/keys", "api.example.com")
    assert json.loads(req.body) == {"jwk": public_jwk(key), "client_id": "alice", "label": "l", "scopes": ["read"]}
    names = {name.lower() for name, _ in req.headers}
    assert names == {"content-type", "content-digest", "signature-input", "signature"}
    assert json.loads(registration_request(df.Signer(key), URL).body) == {"jwk": public_jwk(key)}


def test_content_type_must_be_json() -> None:
    key = Ed25519PrivateKey.generate()
    req = df.Request.from_url(
        "POST", URL, [("Content-Type", "text/plain")], json.dumps({"jwk": public_jwk(key)}).encode()
    )
    df.Signer(key).sign(req, now=NOW)
    assert reason_of(req) is Reason.INVALID_REQUEST
    ok = df.Request.from_url("POST", URL, [("content-type", "Application/JSON; charset=utf-8")], req.body)
    df.Signer(key).sign(ok, now=NOW)
    assert register(ok).keyid == jwk_thumbprint(key)


def test_body_shape_is_checked_before_the_key_and_the_key_before_the_signature() -> None:
    assert reason_of(signed(b"{", None)) is Reason.INVALID_REQUEST
    assert reason_of(signed({"jwk": {"kty": "RSA"}}, None)) is Reason.INVALID_KEY
    assert reason_of(signed({"jwk": GOOD_JWK}, None)) is Reason.MISSING_SIGNATURE


def test_authentication_comes_before_scope_authorization() -> None:
    key = Ed25519PrivateKey.generate()
    assert reason_of(signed({"jwk": public_jwk(key), "scopes": ["admin"]}, None)) is Reason.MISSING_SIGNATURE
    assert reason_of(signed({"jwk": public_jwk(key), "scopes": ["admin"]}, key)) is Reason.SCOPE_NOT_ALLOWED


def test_refused_scopes_are_carried_by_the_error_and_the_problem() -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(ScopeNotAllowed) as info:
        register(signed({"jwk": public_jwk(key), "scopes": ["read", "read:itme", "x"]}, key), allowed_scopes={"read"})
    assert info.value.refused == ("read:itme", "x") and info.value.reason is Reason.SCOPE_NOT_ALLOWED
    assert info.value.detail == "scopes not allowed: read:itme, x"
    service = RegistrationService(df.MemoryRegistry(), df.MemoryNonceStore())
    status, headers, body = service.refuse(info.value)
    assert status == 403 and ("Content-Type", "application/problem+json") in headers
    assert json.loads(body) == {
        "type": "https://datafold.dev/problems/scope_not_allowed",
        "title": Reason.SCOPE_NOT_ALLOWED.description,
        "status": 403,
        "reason": "scope_not_allowed",
        "refused_scopes": ["read:itme", "x"],
    }
    # the same reason raised without the scopes (an app's own RegistrationError) has no such member
    _, _, plain = service.refuse(df.RegistrationError("no", Reason.SCOPE_NOT_ALLOWED))
    assert "refused_scopes" not in json.loads(plain)


def test_problem_extensions_cannot_replace_standard_members() -> None:
    assert wire.problem(Reason.EXPIRED) == wire.problem(Reason.EXPIRED, extensions={})
    status, _, body = wire.problem(Reason.SCOPE_NOT_ALLOWED, request_id="r1", extensions={"refused_scopes": ["a"]})
    assert (status, list(json.loads(body))) == (
        403,
        ["type", "title", "status", "reason", "request_id", "refused_scopes"],
    )
    for member in ("type", "title", "status", "reason", "request_id", "detail", "instance"):
        with pytest.raises(ValueError, match=member):
            wire.problem(Reason.SCOPE_NOT_ALLOWED, extensions={member: "x"})


@pytest.mark.parametrize(
    "x",
    [
        b64url_encode(bytes(32)),  # y = 0, order 4
        b64url_encode(b"\x01" + bytes(31)),  # the identity point
        b64url_encode(bytes.fromhex("ec" + "ff" * 30 + "7f")),  # y = p - 1, order 2
        b64url_encode(bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")),  # order 8
        b64url_encode(bytes.fromhex("ed" + "ff" * 30 + "7f")),  # y = p: not canonical
        b64url_encode(bytes(31)),  # 31 bytes
        b64url_encode(bytes(33)),
        "!!not-base64!!",
        b64url_encode(bytes(range(1, 33))) + "=",  # padded
        "",
    ],
)
def test_invalid_keys_are_refused(x: str) -> None:
    assert (
        reason_of(signed({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": x}}, Ed25519PrivateKey.generate()))
        is Reason.INVALID_KEY
    )


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": "sXch", "e": "AQAB"},
        {"kty": "OKP", "crv": "X25519", "x": GOOD_JWK["x"]},
        {"kty": "OKP", "crv": "Ed25519"},
        {"kty": "OKP", "crv": "Ed25519", "x": 5},
        {**GOOD_JWK, "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"},
    ],
)
def test_non_ed25519_and_private_jwks_are_refused(jwk: dict[str, Any]) -> None:
    assert reason_of(signed({"jwk": jwk}, Ed25519PrivateKey.generate())) is Reason.INVALID_KEY


def test_keyid_mismatch_and_forged_keyid() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    store = df.MemoryNonceStore()
    assert reason_of(signed({"jwk": public_jwk(key)}, other), nonce_store=store) is Reason.KEYID_MISMATCH
    forged = signed({"jwk": public_jwk(key)}, other, keyid=jwk_thumbprint(key))
    with pytest.raises(df.RegistrationError) as info:
        register(forged, nonce_store=store)
    assert (info.value.reason, info.value.reason.status) == (Reason.BAD_PROOF, 400)
    assert len(store) == 0  # refused proofs use up no nonce


def test_replay_is_reported_before_duplicate_key() -> None:
    key, registry, store = Ed25519PrivateKey.generate(), df.MemoryRegistry(), df.MemoryNonceStore()
    req = registration_request(df.Signer(key), URL, now=NOW)
    register(req, registry, nonce_store=store)
    assert reason_of(req, registry, nonce_store=store) is Reason.REPLAYED_NONCE
    assert (
        reason_of(registration_request(df.Signer(key), URL, now=NOW), registry, nonce_store=store)
        is Reason.DUPLICATE_KEY
    )


def test_verification_reasons_keep_their_own_codes() -> None:
    key = Ed25519PrivateKey.generate()
    assert reason_of(registration_request(df.Signer(key), URL, now=NOW - 1000)) is Reason.EXPIRED
    swapped = registration_request(df.Signer(key), URL, label="a", now=NOW)
    swapped.body = swapped.body.replace(b'"a"', b'"b"')
    assert reason_of(swapped) is Reason.DIGEST_MISMATCH


def test_scopes_defaults_and_approval() -> None:
    key = Ed25519PrivateKey.generate()
    options: dict[str, Any] = {"allowed_scopes": {"read", "write"}, "default_scopes": ("read",)}
    assert register(registration_request(df.Signer(key), URL, now=NOW), **options).scopes == ("read",)
    requested = registration_request(df.Signer(key), URL, scopes=["write"], now=NOW)
    assert register(requested, **options).scopes == ("write",)
    none = registration_request(df.Signer(key), URL, scopes=[], now=NOW)
    assert register(none, **options).scopes == ()
    pending = register(registration_request(df.Signer(key), URL, now=NOW), require_approval=True)
    assert pending.status is df.KeyStatus.PENDING


def test_client_id_taken() -> None:
    registry = df.MemoryRegistry()
    register(registration_request(df.Signer(Ed25519PrivateKey.generate()), URL, client_id="alice", now=NOW), registry)
    again = registration_request(df.Signer(Ed25519PrivateKey.generate()), URL, client_id="alice", now=NOW)
    assert reason_of(again, registry) is Reason.CLIENT_ID_TAKEN


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/keys", None),
        ("GET", "/keys/" + "A" * 43, "A" * 43),
        ("HEAD", "/keys/" + "A" * 43, "A" * 43),
        ("GET", "/keys", Reason.METHOD_NOT_ALLOWED),
        ("DELETE", "/keys/" + "A" * 43, Reason.METHOD_NOT_ALLOWED),
        ("POST", "/keys/", Reason.NOT_FOUND),
        ("GET", "/keys/" + "A" * 42, Reason.NOT_FOUND),
        ("GET", "/keys/" + "A" * 43 + "/x", Reason.NOT_FOUND),
        ("POST", "/", Reason.NOT_FOUND),
        ("POST", "", Reason.NOT_FOUND),
    ],
)
def test_routes(method: str, path: str, expected: str | Reason | None) -> None:
    service = RegistrationService(df.MemoryRegistry(), df.MemoryNonceStore())
    if isinstance(expected, Reason):
        with pytest.raises(df.RegistrationError) as info:
            service.route(method, path)
        assert info.value.reason is expected
    else:
        assert service.route(method, path) == expected


def test_the_proof_must_cover_the_body_whatever_the_policy() -> None:
    key = Ed25519PrivateKey.generate()
    req = signed({"jwk": public_jwk(key)}, None)
    req.add_header("Content-Digest", df.content_digest(req.body))
    components: list[tuple[str, dict[str, object]]] = [(n, {}) for n in ("@method", "@authority", "@path", "@query")]
    params: dict[str, object] = {"created": NOW, "nonce": new_nonce(), "keyid": jwk_thumbprint(key), "tag": "datafold"}
    for name, value in zip(
        ("Signature-Input", "Signature"),
        sign_message(req, key, label="df", components=components, params=params),
        strict=True,
    ):
        req.add_header(name, value)
    lax = df.VerificationPolicy(body_components=())
    assert reason_of(req, policy=lax) is Reason.MISSING_COMPONENT
