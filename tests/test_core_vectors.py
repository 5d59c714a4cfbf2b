"""Published RFC vectors reproduced through the public API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

import datafold_auth as df
from datafold_auth.jwk import public_key_bytes


def _b26_request(vec: dict[str, Any]) -> df.Request:
    r = vec["request"]
    return df.Request.from_url(r["method"], r["target_uri"], [tuple(h) for h in r["headers"]], r["body"].encode())


def _b26_parts(rfc_vectors: dict[str, Any]) -> tuple[Any, dict[str, Any], list[Any], dict[str, object]]:
    key = load_pem_private_key(rfc_vectors["rfc9421_b14_test_key_ed25519"]["private_key_pem"].encode(), None)
    vec = rfc_vectors["rfc9421_b26_ed25519_signature"]
    components = [(n, {}) for n in ("date", "@method", "@path", "@authority", "content-type", "content-length")]
    return key, vec, components, {"created": 1618884473, "keyid": "test-key-ed25519"}


def test_b26_signature_base_and_signature(rfc_vectors: dict[str, Any]) -> None:
    key, vec, components, params = _b26_parts(rfc_vectors)
    request = _b26_request(vec)
    signature_params = vec["signature_input"].split("=", 1)[1]
    assert df.signature_base(request, components, signature_params).decode() == vec["signature_base"]
    signature_input, signature = df.sign_message(request, key, label=vec["label"], components=components, params=params)
    assert signature_input == vec["signature_input"]
    assert signature == vec["signature"]


def test_b26_verifies_and_tampering_fails(rfc_vectors: dict[str, Any]) -> None:
    _, vec, _, _ = _b26_parts(rfc_vectors)
    public = load_pem_public_key(rfc_vectors["rfc9421_b14_test_key_ed25519"]["public_key_pem"].encode())
    record = df.KeyRecord(keyid="test-key-ed25519", public_key=public_key_bytes(public), client_id="rfc")  # type: ignore[arg-type]
    policy = df.VerificationPolicy(required_components=(), body_components=(), tag=None, nonce_required=False)

    def verify(request: df.Request) -> df.VerifiedSignature:
        return df.verify_request(request, now=1618884473, resolve_key=lambda k: record, nonce_store=None, policy=policy)

    request = _b26_request(vec)
    request.add_header("Signature-Input", vec["signature_input"])
    request.add_header("Signature", vec["signature"])
    result = verify(request)
    assert (result.keyid, result.created, result.label) == ("test-key-ed25519", 1618884473, "sig-b26")

    tampered = _b26_request(vec)
    tampered.headers = [(k, "Tue, 20 Apr 2021 02:07:56 GMT" if k == "Date" else v) for k, v in tampered.headers]
    tampered.add_header("Signature-Input", vec["signature_input"])
    tampered.add_header("Signature", vec["signature"])
    with pytest.raises(df.SignatureError) as info:
        verify(tampered)
    assert info.value.reason is df.Reason.BAD_SIGNATURE


def test_content_digest_vectors(rfc_vectors: dict[str, Any]) -> None:
    vec = rfc_vectors["rfc9530_content_digest"]
    body = vec["body"].encode()
    assert df.content_digest(body) == vec["sha-256"]
    assert df.content_digest(body, ("sha-512",)) == vec["sha-512"]
    assert df.check_content_digest(vec["sha-512"], body) == "sha-512"
    with pytest.raises(df.SignatureError) as info:
        df.check_content_digest(vec["sha-256"], body + b" ")
    assert info.value.reason is df.Reason.DIGEST_MISMATCH


@pytest.mark.parametrize("name", ["rfc9421_b14_test_key_ed25519", "rfc8037_a1_a3_jwk_thumbprint"])
def test_jwk_thumbprints(rfc_vectors: dict[str, Any], name: str) -> None:
    vec = rfc_vectors[name]
    public = df.public_key_from_jwk({k: v for k, v in vec["jwk"].items() if k != "d"})
    assert df.jwk_thumbprint(public) == vec["jwk_thumbprint_sha256"]


def test_rfc8037_thumbprint_input(rfc_vectors: dict[str, Any]) -> None:
    vec = rfc_vectors["rfc8037_a1_a3_jwk_thumbprint"]
    public = df.public_key_from_jwk({k: v for k, v in vec["jwk"].items() if k != "d"})
    jwk = df.public_jwk(public)
    assert json.dumps(dict(sorted(jwk.items())), separators=(",", ":")) == vec["thumbprint_input"]
