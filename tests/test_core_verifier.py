"""The verifier's decisions, sans I/O: time is passed in, nothing is patched."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth import Reason

NOW = 1_800_000_000


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def registry(key: Ed25519PrivateKey) -> df.MemoryRegistry:
    reg = df.MemoryRegistry()
    reg.register(df.KeyRecord.for_public_key(key.public_key(), client_id="alice", scopes=("read",)))
    return reg


@pytest.fixture
def verifier(registry: df.MemoryRegistry) -> df.Verifier:
    return df.Verifier(registry, df.MemoryNonceStore(), cache_ttl=0)


def signed(key: Ed25519PrivateKey, body: bytes = b"", now: float = NOW, edit: Callable[[df.Request], None] | None = None, **signer_args: object) -> df.Request:
    req = df.Request.from_url("POST" if body else "GET", "https://api.example.com/v1/items?x=1", [("Content-Type", "application/json")] if body else [], body)
    df.Signer(key, **signer_args).sign(req, now=now)  # type: ignore[arg-type]
    if edit:
        edit(req)
        req._index = None
    return req


def reason_of(verifier: df.Verifier, req: df.Request, now: float = NOW) -> Reason:
    with pytest.raises(df.SignatureError) as info:
        verifier.verify(req, now)
    return info.value.reason


def replace_header(name: str, fn: Callable[[str], str]) -> Callable[[df.Request], None]:
    def edit(req: df.Request) -> None:
        req.headers = [(k, fn(v) if k.lower() == name else v) for k, v in req.headers]

    return edit


def test_accepts_get_and_post(verifier: df.Verifier, key: Ed25519PrivateKey) -> None:
    result = verifier.verify(signed(key), NOW)
    assert result.client_id == "alice" and result.scopes == ("read",)
    result = verifier.verify(signed(key, b'{"a": 1}'), NOW + 10)
    assert ("content-digest", {}) in result.covered and result.expires == NOW + 300


def test_time_window(verifier: df.Verifier, key: Ed25519PrivateKey) -> None:
    assert reason_of(verifier, signed(key, now=NOW + 31)) is Reason.CREATED_IN_FUTURE
    verifier.verify(signed(key, now=NOW + 30), NOW)  # within skew
    assert reason_of(verifier, signed(key, now=NOW - 331)) is Reason.EXPIRED
    assert reason_of(verifier, signed(key, now=NOW - 100, expires_in=10)) is Reason.EXPIRED
    verifier.verify(signed(key, now=NOW - 329, expires_in=None), NOW)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda r: setattr(r, "headers", [h for h in r.headers if h[0] != "Signature"]), Reason.MISSING_SIGNATURE),
        (replace_header("signature-input", lambda v: v + ",,"), Reason.MALFORMED_SIGNATURE_INPUT),
        (replace_header("signature-input", lambda v: "df=1"), Reason.MALFORMED_SIGNATURE_INPUT),
        (replace_header("signature", lambda v: "df=:AAAA:"), Reason.MALFORMED_SIGNATURE),
        (replace_header("signature", lambda v: "other=" + v.split("=", 1)[1]), Reason.MALFORMED_SIGNATURE),
        (replace_header("signature-input", lambda v: v.replace('tag="datafold"', 'tag="other"')), Reason.WRONG_TAG),
        (replace_header("signature-input", lambda v: v.replace('alg="ed25519"', 'alg="rsa-pss-sha512"')), Reason.UNSUPPORTED_ALGORITHM),
        (replace_header("signature-input", lambda v: v.replace(';created=', ';c=')), Reason.MISSING_PARAMETER),
        (replace_header("signature-input", lambda v: v.replace(';nonce=', ';n=')), Reason.MISSING_PARAMETER),
        (replace_header("signature-input", lambda v: v.replace(';keyid=', ';k=')), Reason.MISSING_PARAMETER),
        (replace_header("signature-input", lambda v: v.replace(' "@query"', "")), Reason.MISSING_COMPONENT),
        (replace_header("signature-input", lambda v: v.replace('keyid="', 'keyid="x')), Reason.UNKNOWN_KEY),
        (replace_header("signature-input", lambda v: v.replace("expires=", "expires=1")), Reason.BAD_SIGNATURE),
        (lambda r: setattr(r, "path", "/v1/other"), Reason.BAD_SIGNATURE),
    ],
)
def test_rejections(verifier: df.Verifier, key: Ed25519PrivateKey, edit: Callable[[df.Request], None], reason: Reason) -> None:
    assert reason_of(verifier, signed(key, edit=edit)) is reason


def test_body_rules(verifier: df.Verifier, key: Ed25519PrivateKey) -> None:
    def tamper(r: df.Request) -> None:
        r.body = b'{"a": 2}'

    assert reason_of(verifier, signed(key, b'{"a": 1}', edit=tamper)) is Reason.DIGEST_MISMATCH
    # A body added to a request signed without one: content-digest not covered.
    def add_body(r: df.Request) -> None:
        r.body = b"x"

    assert reason_of(verifier, signed(key, edit=add_body)) is Reason.MISSING_COMPONENT
    bad = replace_header("content-digest", lambda v: "sha-256=:notbase64:")
    assert reason_of(verifier, signed(key, b"{}", edit=bad)) is Reason.BAD_SIGNATURE


def test_replay_and_key_status(verifier: df.Verifier, registry: df.MemoryRegistry, key: Ed25519PrivateKey) -> None:
    req = signed(key)
    verifier.verify(req, NOW)
    assert reason_of(verifier, req, NOW + 1) is Reason.REPLAYED_NONCE
    keyid = df.jwk_thumbprint(key)
    for status in (df.KeyStatus.REVOKED, df.KeyStatus.PENDING, df.KeyStatus.ROTATED):
        registry.set_status(keyid, status, NOW)
        assert reason_of(verifier, signed(key)) is Reason.KEY_NOT_ACTIVE


def test_failed_verification_does_not_burn_the_nonce(verifier: df.Verifier, key: Ed25519PrivateKey) -> None:
    req = signed(key)
    good_path = req.path
    req.path = "/elsewhere"
    assert reason_of(verifier, req) is Reason.BAD_SIGNATURE
    req.path = good_path
    verifier.verify(req, NOW)


def test_nonce_store_expiry_and_capacity() -> None:
    store = df.MemoryNonceStore(capacity=2)
    assert store.add("a", 10, 0) and not store.add("a", 10, 5)
    assert store.add("b", 20, 5)
    with pytest.raises(df.NonceStoreError):
        store.add("c", 30, 5)
    assert store.add("c", 30, 11)  # "a" expired and was purged
    assert "a" not in store and len(store) == 2


def test_nonce_store_expiry_by_whole_seconds() -> None:
    """Entries are bucketed by ceil(expires_at): never forgotten early, forgotten within the next second."""
    store = df.MemoryNonceStore()
    assert store.add("a", 10.5, 0) and store.add("b", 10, 0) and store.add("c", 11, 0) and store.add("d", 12.25, 0)
    assert store.add("x", 100, 10.4) and "a" in store and "b" not in store  # "b"'s second (10) has come
    assert not store.add("a", 100, 10.7)  # past 10.5 but its second (11) has not come: still a replay
    assert store.add("y", 100, 11) and {"a", "c"}.isdisjoint(store._entries) and "d" in store
    assert store.add("z", 100, 12.5) and "d" in store  # 12.25 has passed, its second (13) has not
    assert store.add("w", 100, 13) and "d" not in store and len(store) == 4  # x, y, z, w
    assert store.add("a", 100, 13)  # forgotten, so accepted again
    for odd in (float("inf"), float("nan")):
        assert store.add(f"odd {odd}", odd, 13)
    assert store.add("later", 200, 10**12) and {"odd inf", "odd nan"} <= set(store._entries)


def test_signer_repr_hides_key(key: Ed25519PrivateKey) -> None:
    signer = df.Signer(key)
    from cryptography.hazmat.primitives import serialization

    from datafold_auth.jwk import b64url_encode

    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    for text in (repr(signer), str(signer)):
        assert seed.hex() not in text and b64url_encode(seed) not in text
        assert signer.keyid in text
