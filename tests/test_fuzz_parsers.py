"""Property tests (hypothesis) of every parser of untrusted input, and the atheris targets' smoke run.

For arbitrary input, and for mutations of valid input (flipped bytes, cuts,
insertions, splices), each parser returns a value or raises the project's
typed exception (:class:`~datafold_auth.errors.DatafoldAuthError` with a
:class:`~datafold_auth.errors.Reason`), never anything else. Where a
serializer exists, what parses serializes and parses back unchanged.

Parsers: Signature-Input and Signature (``sf`` and the verifier's use of them),
Content-Digest, ``verify_request`` with random fields, registration and rotation
bodies, JWK and public/private key import, and backups of every format (PKCS#8
PEM/DER, JSON, binary, paper, Shamir). Each finding of the fuzzing work has a
regression test at the end (``test_regression_*``). The middleware and the
registration apps are in ``tests/test_fuzz_middleware.py``.

KDF costs are kept low: decryption is only attempted for the cheap settings
the seeds use (the readers' own bounds are tested by tests/test_backup_formats.py).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import shamir_mnemonic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from datafold_auth import KeyRecord, MemoryNonceStore, MemoryRegistry, Request, Signer, Verifier, sf
from datafold_auth.digest import check_content_digest, content_digest
from datafold_auth.errors import DatafoldAuthError, KeyFormatError, Reason
from datafold_auth.jwk import jwk_thumbprint, public_jwk, public_key_bytes, public_key_from_jwk
from datafold_auth.keys import (
    BackupInfo,
    Envelope,
    Pbkdf2Params,
    ScryptParams,
    ShamirPlan,
    detect_backup,
    paper_document,
    restore_backup,
    seal,
    seed_words,
    split_key,
)
from datafold_auth.keys import shamir as slip39
from datafold_auth.keys.formats import (
    PRIVATE_FORMATS,
    PUBLIC_FORMATS,
    export_private_key,
    export_public_key,
    identify,
    read_private_key,
    read_public_key,
)
from datafold_auth.keys.kdf import KdfParams
from datafold_auth.keys.paper import read_document_info
from datafold_auth.keys.pkcs8 import decode_private_key, encode_private_key, pbes2_info
from datafold_auth.registration.core import RegistrationBody, parse_registration_body, parse_rotation_body
from datafold_auth.signature_base import signature_base

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
"""Hypothesis settings of this file: bounded so that the whole fuzz test set runs in about a minute."""
SLOW = settings(FUZZ, max_examples=200)
"""For properties whose examples decrypt (scrypt N=2^10 or PBKDF2 1,000) or run the full verifier."""

NOW = 1_800_000_000
PASSPHRASE = b"correct horse battery staple"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
KEYID = jwk_thumbprint(KEY)
INFO = BackupInfo(KEYID, "laptop \u00e9", NOW, "alice")

T = TypeVar("T")


def typed(func: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``func(...)``, or ``None`` if it raised a typed error with a reason; any other exception fails the test."""
    try:
        return func(*args, **kwargs)
    except DatafoldAuthError as exc:
        assert isinstance(exc.reason, Reason) and exc.detail, repr(exc)
        return None


# ------------------------------------------------------------------ strategies


@st.composite
def mutated(draw: st.DrawFn, valid: list[bytes]) -> bytes:
    """One of ``valid`` with 1-4 edits: flip/replace a byte, cut, insert bytes, splice with another, repeat a slice."""
    data = bytearray(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "cut", "insert", "splice", "repeat", "delete"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and pos < len(data):
            data[pos] = draw(st.sampled_from([0, 0x20, 0x22, 0x2C, 0x3A, 0x3B, 0x3D, 0x5C, 0x7F, 0x80, 0xFF]))
        elif op == "cut":
            data = data[:pos] if draw(st.booleans()) else data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "splice":
            other = draw(st.sampled_from(valid))
            data = data[:pos] + other[draw(st.integers(0, len(other))) :]
        elif op == "repeat":
            end = draw(st.integers(pos, min(len(data), pos + 40)))
            data[pos:pos] = data[pos:end] * draw(st.integers(1, 3))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
    return bytes(data)


def latin1(strategy: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    return strategy.map(lambda b: b.decode("latin-1"))


_SF_ALPHABET = st.sampled_from([*list('abcdfz09*-_.;=,()"\\:?%@ \t+/='), "\x00", "\x7f", "é"])
sf_like = st.one_of(
    st.text(_SF_ALPHABET, max_size=80),
    latin1(st.binary(max_size=80)),
    st.text(max_size=40),  # non-latin-1 too
)


def signed(signer: Signer, method: str, url: str, body: bytes = b"", headers: Any = ()) -> Request:
    request = Request.from_url(method, url, [("Host", "api.example.com"), *headers], body)
    signer.sign(request, now=NOW, nonce=f"nonce-{method}-{len(body)}")
    return request


def field(request: Request, name: str) -> str:
    values = request.field_values(name.lower())
    assert values is not None
    return values[0]


SIGNED = [
    signed(Signer(KEY), "GET", "https://api.example.com/v1/items?page=2"),
    signed(Signer(KEY), "POST", "https://api.example.com/v1/items", b'{"a":1}', [("Content-Type", "application/json")]),
    signed(Signer(KEY, expires_in=None, label="sig-1", tag=None), "DELETE", "https://api.example.com/x"),
]
SIGNATURE_INPUTS = [field(r, "Signature-Input").encode() for r in SIGNED] + [
    b'df=("@method" "@authority");created=1;keyid="k\\"x";alg=ed25519, b=("a";sf;key="v";bs;tr);x=1.5',
    b'a=(), b=?0, c=:AAA=:;p=-12, d=%"caf%c3%a9", e=@1700000000, f=("x" ("y"))',
]
SIGNATURES = [field(r, "Signature").encode() for r in SIGNED] + [b'df=:AAAA:, t=?1, u=1.25, v=%"x", w=@1']


def verifier() -> Verifier:
    registry = MemoryRegistry()
    registry.register(KeyRecord.for_public_key(KEY.public_key(), "alice", scopes=("read",), created_at=NOW - 60))
    return Verifier(registry, MemoryNonceStore(), cache_ttl=0)


def replace_field(request: Request, name: str, value: str) -> Request:
    headers = [(k, value if k.lower() == name.lower() else v) for k, v in request.headers]
    return Request(request.method, request.authority, request.path, request.query, headers, request.body, "https")


# ------------------------------------------------------------------ the valid inputs verify (the tests can fail)


def test_the_valid_seeds_verify_and_round_trip() -> None:
    """The unmutated inputs of the properties below are valid: every signed request verifies."""
    for request in SIGNED[:2]:
        assert verifier().verify(request, NOW).keyid == KEYID
    with pytest.raises(DatafoldAuthError) as caught:  # no tag: refused by the DataFold policy
        verifier().verify(SIGNED[2], NOW)
    assert caught.value.reason is Reason.WRONG_TAG
    assert ("content-digest", {}) in verifier().verify(SIGNED[1], NOW).covered


# ------------------------------------------------------------------ Signature-Input / Signature (RFC 8941, RFC 9421)


def _check_dictionary(text: str) -> None:
    result = typed(sf.parse_dictionary_canonical, text)
    if result is not None:
        members, texts = result
        for key, member in members.items():
            assert sf.parse_dictionary(f"{key}={texts[key]}")[key] == member
        serialized = typed(sf.serialize_dictionary, members)
        if serialized is not None:
            assert sf.parse_dictionary(serialized) == members


@FUZZ
@given(st.one_of(sf_like, latin1(mutated(SIGNATURE_INPUTS)), latin1(mutated(SIGNATURES))))
def test_structured_dictionary_parses_or_raises_typed_and_round_trips(text: str) -> None:
    _check_dictionary(text)


@FUZZ
@given(st.one_of(latin1(mutated(SIGNATURE_INPUTS)), sf_like), st.sampled_from(SIGNED[:2]))
def test_verifier_with_a_mutated_signature_input_fails_typed(text: str, request: Request) -> None:
    result = typed(verifier().verify, replace_field(request, "Signature-Input", text), NOW)
    if result is not None:  # only a value equal to the original in meaning can still verify
        assert (
            sf.parse_dictionary(text)[result.label]
            == sf.parse_dictionary(field(request, "Signature-Input"))[result.label]
        )


@FUZZ
@given(st.one_of(latin1(mutated(SIGNATURES)), sf_like), st.sampled_from(SIGNED[:2]))
def test_verifier_with_a_mutated_signature_fails_typed(text: str, request: Request) -> None:
    result = typed(verifier().verify, replace_field(request, "Signature", text), NOW)
    if result is not None:
        assert sf.parse_dictionary(text)["df"][0] == sf.parse_dictionary(field(request, "Signature"))["df"][0]


_FIELD_NAMES = st.sampled_from(
    ["Signature-Input", "Signature", "Content-Digest", "Content-Length", "Content-Type", "Host", "X-Other", "signature"]
)
_headers = st.lists(st.tuples(_FIELD_NAMES, st.one_of(sf_like, latin1(mutated(SIGNATURE_INPUTS + SIGNATURES)))))


@FUZZ
@given(
    st.sampled_from(["GET", "POST", "get", "", "P\u00d6ST"]),
    st.text(max_size=20),
    st.one_of(st.none(), st.text(max_size=20)),
    _headers,
    st.binary(max_size=64),
)
def test_verify_request_with_random_fields_fails_typed(
    method: str, path: str, query: str | None, headers: list[tuple[str, str]], body: bytes
) -> None:
    request = Request(method, "api.example.com", "/" + path, query, headers, body, "https")
    assert typed(verifier().verify, request, NOW) is None


@SLOW
@given(st.sampled_from(SIGNED[:2]), st.data())
def test_verifier_with_extra_or_repeated_fields_fails_typed(request: Request, data: st.DataObject) -> None:
    headers = list(request.headers)
    for _ in range(data.draw(st.integers(1, 3))):
        name, value = data.draw(st.sampled_from(headers))
        value = data.draw(st.one_of(st.just(value), latin1(mutated([value.encode("latin-1")]))))
        headers.insert(data.draw(st.integers(0, len(headers))), (name, value))
    copy = Request(request.method, request.authority, request.path, request.query, headers, request.body, "https")
    typed(verifier().verify, copy, NOW)


_KNOWN_COMPONENTS = st.sampled_from(
    [
        "@method", "@authority", "@path", "@query", "@scheme", "@target-uri", "@request-target",
        "@query-param", "@status", "@signature-params", "@unknown", "content-digest", "content-type",
        "host", "x-dict", "x-list", "x-item", "priority", "cache-status", "signature", "absent", "X-Upper",
    ]
)  # fmt: skip
_COMPONENT_NAMES = st.one_of(
    _KNOWN_COMPONENTS,
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8),
)
_COMPONENT_PARAMS = st.dictionaries(
    st.sampled_from(["sf", "bs", "key", "name", "req", "tr", "x"]),
    st.one_of(st.just(True), st.sampled_from(["a", "b", "q", "page", "zz", ""]), st.integers(-2, 2)),
    max_size=2,
)
_EXOTIC_FIELDS = [
    ("X-Dict", 'a=1, b=(x "y");p, c=%"d%c3%a9", d=@1'),
    ("X-Dict", "e=:AAAA:"),
    ("X-List", "1, (a b), ?0, x;y=1.5"),
    ("X-Item", '  tok;p="v"  '),
    ("Priority", "u=1, i"),
    ("Cache-Status", 'a;hit, b;fwd=uri-miss;key="k"'),
    ("Content-Type", "application/json"),
    ("X-Latin", "caf\u00e9"),
]


@FUZZ
@given(st.lists(st.tuples(_COMPONENT_NAMES, _COMPONENT_PARAMS), max_size=5), st.sampled_from(SIGNED[:2]))
def test_verifier_with_arbitrary_covered_components_signed_validly(
    extra: list[tuple[str, dict[str, Any]]], template: Request
) -> None:
    """A correctly signed request covering arbitrary components: verification returns or fails typed, and
    succeeds only with the components as signed."""
    headers = [*template.headers[:-2], *_EXOTIC_FIELDS]  # without the template's signature fields
    request = Request("POST", "api.example.com", "/v1/items", "page=2&q=%C3%A9&q2=a+b", headers, template.body, "https")
    components = [(name, {}) for name in ("@method", "@authority", "@path", "@query")] + extra
    params = {"created": NOW, "expires": NOW + 60, "nonce": "n1", "keyid": KEYID, "alg": "ed25519", "tag": "datafold"}
    signature_params = typed(sf.serialize_inner_list, (components, params))
    if signature_params is None:
        return
    base = typed(signature_base, request, components, signature_params)
    signature = KEY.sign(base if base is not None else b"x")
    request.add_header("Signature-Input", "df=" + signature_params)
    request.add_header("Signature", "df=:" + base64.b64encode(signature).decode() + ":")
    verified = typed(verifier().verify, request, NOW)
    event("verified" if verified is not None else "refused")
    if verified is not None:
        assert base is not None and list(verified.covered) == components


# ------------------------------------------------------------------ Content-Digest (RFC 9530)

_ALGORITHM_SETS = [("sha-256",), ("sha-512",), ("sha-256", "sha-512"), ("sha-512", "sha-256")]
_DIGESTS = [content_digest(b'{"name": "widget"}', a).encode() for a in _ALGORITHM_SETS] + [
    b"sha-256=:AAAA:, md5=:AAAA:;p=1, unixsum=?1"
]


_digest_members = st.tuples(
    st.sampled_from(["sha-256", "sha-512", "md5", "SHA-256", "sha-256 "]),
    st.sampled_from([":AAAA:", '"text"', "1", "?1", "(a b)", "tok", "1.5", '%"x"', "@1", ":" + "A" * 43 + "=:"]),
    st.sampled_from(["", ";p=1", ";x"]),
)
_digest_fields = st.lists(_digest_members, min_size=1, max_size=3).map(
    lambda members: ", ".join(f"{name}={value}{params}" for name, value, params in members)
)


@FUZZ
@given(st.one_of(sf_like, latin1(mutated(_DIGESTS)), _digest_fields), st.binary(max_size=64))
def test_content_digest_check_fails_only_with_digest_reasons(text: str, body: bytes) -> None:
    try:
        matched = check_content_digest(text, body)
    except DatafoldAuthError as exc:
        assert exc.reason in (Reason.MALFORMED_DIGEST, Reason.DIGEST_MISMATCH), exc
        return
    members = sf.parse_dictionary(text)  # it passed: every sha-256/sha-512 member is the body's digest
    assert matched in members
    assert all(
        value == base64.b64decode(content_digest(body, (name,)).split(":")[1])
        for name, (value, _) in members.items()
        if name in ("sha-256", "sha-512")
    )


@FUZZ
@given(st.binary(max_size=300), st.sampled_from(_ALGORITHM_SETS))
def test_content_digest_round_trip(body: bytes, algorithms: tuple[str, ...]) -> None:
    assert check_content_digest(content_digest(body, algorithms), body) in algorithms
    with pytest.raises(DatafoldAuthError) as caught:
        check_content_digest(content_digest(body + b".", algorithms), body)
    assert caught.value.reason is Reason.DIGEST_MISMATCH


# ------------------------------------------------------------------ registration and rotation bodies

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_MEMBER_NAMES = st.sampled_from(["jwk", "client_id", "label", "scopes", "expires_at", "reason", "x"])
_documents = st.dictionaries(_MEMBER_NAMES, st.one_of(_json_values, st.just(public_jwk(KEY))), max_size=5)
_BODIES = [
    json.dumps({"jwk": public_jwk(KEY), "label": "laptop", "scopes": ["read"], "client_id": "alice"}).encode(),
    json.dumps({"jwk": public_jwk(KEY), "label": "new", "expires_at": NOW + 60}).encode(),
    b'{"jwk":{"kty":"OKP","crv":"Ed25519","x":"' + public_jwk(KEY)["x"].encode() + b'"}}',
]


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=80),
        mutated(_BODIES),
        _documents.map(lambda d: json.dumps(d).encode()),
        _json_values.map(lambda d: json.dumps(d).encode()),
        st.integers(1, 5000).map(lambda n: b'{"jwk":' + b"[" * n + b"]" * n + b"}"),
    )
)
def test_registration_and_rotation_bodies_parse_or_raise_typed(body: bytes) -> None:
    for parse in (parse_registration_body, parse_rotation_body):
        parsed = typed(parse, body)
        if parsed is not None:
            typed(public_key_from_jwk, parsed.jwk)


_labels = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"),
        blacklist_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    ),
    max_size=30,
)


@FUZZ
@given(
    st.one_of(st.none(), st.from_regex(r"\A[A-Za-z0-9._@:-]{1,20}\Z")),
    _labels,
    st.one_of(st.none(), st.lists(st.from_regex(r"\A[a-z:]{1,10}\Z"), max_size=5)),
    st.one_of(st.none(), st.integers(0, 253_402_300_799)),  # up to 9999-12-31T23:59:59Z
)
def test_registration_body_round_trip(
    client_id: str | None, label: str, scopes: list[str] | None, expires_at: int | None
) -> None:
    doc: dict[str, Any] = {"jwk": public_jwk(KEY), "label": label}
    for name, value in (("client_id", client_id), ("scopes", scopes), ("expires_at", expires_at)):
        if value is not None:
            doc[name] = value
    parsed = parse_registration_body(json.dumps(doc).encode())
    expected_scopes = None if scopes is None else tuple(dict.fromkeys(scopes))
    assert parsed == RegistrationBody(public_jwk(KEY), client_id, label, expected_scopes, expires_at)


# ------------------------------------------------------------------ JWK and key import


_PUBLIC = [export_public_key(KEY.public_key(), fmt) for fmt in PUBLIC_FORMATS]
_PRIVATE = [export_private_key(KEY, fmt) for fmt in PRIVATE_FORMATS] + [
    KEY.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()),
    KEY.private_bytes_raw(),
]


@FUZZ
@given(st.one_of(st.binary(max_size=120), mutated(_PUBLIC + _PRIVATE)))
def test_key_import_identifies_anything_and_reads_or_raises_typed(data: bytes) -> None:
    found = identify(data)
    assert found.kind in ("private", "public", "backup", "unknown")
    public = typed(read_public_key, data)
    if public is not None:
        assert len(public_key_bytes(public[0])) == 32
    if not (found.encrypted and found.format == "openssh"):  # bcrypt rounds of OpenSSH keys are not bounded
        typed(read_private_key, data, None)


@FUZZ
@given(st.one_of(_json_values, _documents, st.dictionaries(st.sampled_from(["kty", "crv", "x", "d"]), _json_values)))
def test_public_key_from_jwk_returns_or_raises_invalid_key(doc: Any) -> None:
    try:
        public_key_from_jwk(doc)
    except KeyFormatError as exc:
        assert exc.reason is Reason.INVALID_KEY


def test_key_export_import_round_trip() -> None:
    raw = public_key_bytes(KEY)
    for data in _PUBLIC:
        assert public_key_bytes(read_public_key(data)[0]) == raw
    for data in _PRIVATE:
        assert read_private_key(data).private_key.private_bytes_raw() == KEY.private_bytes_raw()
    assert public_key_bytes(public_key_from_jwk(public_jwk(KEY))) == raw


# ------------------------------------------------------------------ backups of every format

_ENVELOPES = [
    seal(KEY, PASSPHRASE, INFO, kdf=Pbkdf2Params(1000)),
    seal(KEY, PASSPHRASE, BackupInfo(KEYID, "", 0, None), kdf=ScryptParams(10, 8, 1)),
]
_JSON_BACKUPS = [e.to_json() for e in _ENVELOPES]
_BINARY_BACKUPS = [e.to_binary() for e in _ENVELOPES]
_PEM_BACKUPS = [
    encode_private_key(KEY, PASSPHRASE, iterations=1000),
    encode_private_key(KEY, PASSPHRASE, iterations=1000, der=True),
    encode_private_key(KEY, None),
]
_PAPER = [paper_document(KEY, INFO).encode(), " ".join(seed_words(KEY)).encode()]
_PLAN = ShamirPlan.simple(2, 3)
_SHARES = split_key(OTHER, _PLAN, iteration_exponent=0)[0]
_SHARE_DOCS = [
    t.encode()
    for _, _, t in slip39.share_documents(OTHER, BackupInfo(jwk_thumbprint(OTHER)), _PLAN, [_SHARES], passphrase=False)
]


def _cheap(kdf: KdfParams | None) -> bool:
    if isinstance(kdf, Pbkdf2Params):
        return kdf.iterations <= 20_000
    return isinstance(kdf, ScryptParams) and kdf.log2_n <= 12 and kdf.r <= 8 and kdf.p <= 2


def test_the_valid_backups_restore() -> None:
    for data in _JSON_BACKUPS + _BINARY_BACKUPS + _PEM_BACKUPS + _PAPER:
        assert restore_backup([data], PASSPHRASE).keyid == KEYID
    assert restore_backup(_SHARE_DOCS[:2]).keyid == jwk_thumbprint(OTHER)


@SLOW
@given(st.one_of(mutated(_JSON_BACKUPS), mutated(_BINARY_BACKUPS), st.binary(max_size=64)))
def test_envelopes_parse_or_raise_typed_and_round_trip(data: bytes) -> None:
    typed(detect_backup, data)
    for parse, fmt in ((Envelope.from_json, "json"), (Envelope.from_binary, "binary")):
        envelope = typed(parse, data)
        if envelope is None:
            continue
        assert Envelope.from_json(envelope.to_json()) == envelope
        assert Envelope.from_binary(envelope.to_binary()) == envelope
        if _cheap(envelope.kdf):
            restored = typed(restore_backup, [data], PASSPHRASE, fmt=fmt)  # type: ignore[arg-type]
            if restored is not None:  # AES-GCM authenticates the header: only the original restores
                assert restored.private_key.private_bytes_raw() == KEY.private_bytes_raw()
                assert restored.info == envelope.info


@SLOW
@given(st.one_of(mutated(_PEM_BACKUPS), st.binary(max_size=64)))
def test_pkcs8_backups_restore_or_raise_typed(data: bytes) -> None:
    identify(data)
    typed(detect_backup, data)
    typed(restore_backup, [data], None, fmt="pem")
    info = typed(pbes2_info, data)
    if info is None or _cheap(info.kdf):
        typed(restore_backup, [data], PASSPHRASE, fmt="pem")


@FUZZ
@given(
    st.one_of(
        mutated(_PAPER),
        st.lists(st.sampled_from([*seed_words(KEY), "abandon", "zoo", "ab", "x"]), max_size=26).map(
            lambda w: " ".join(w).encode()
        ),
        st.binary(max_size=64),
    )
)
def test_paper_backups_restore_or_raise_typed(data: bytes) -> None:
    typed(detect_backup, data)
    restored = typed(restore_backup, [data], None, fmt="paper")
    if restored is not None:
        assert restored.keyid == jwk_thumbprint(restored.private_key)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    typed(read_document_info, text, now=NOW)


@SLOW
@given(st.lists(st.one_of(mutated(_SHARE_DOCS), mutated([s.encode() for s in _SHARES])), min_size=1, max_size=3))
def test_shamir_shares_restore_or_raise_typed(inputs: list[bytes]) -> None:
    typed(detect_backup, inputs[0])
    restored = typed(restore_backup, inputs, None, fmt="shamir")
    if restored is not None:
        assert restored.keyid == jwk_thumbprint(OTHER)  # RS1024 checksums: a damaged share does not combine


# ------------------------------------------------------------------ regressions: what the fuzzing found


def _ed448_pkcs8_with_32_bytes() -> bytes:
    """PKCS#8 naming Ed448 (OID 1.3.101.113) with a 32-byte key: found by atheris (target backup_pem) from the
    PKCS#8 seed by one changed bit; OpenSSL refuses it with an error that ``cryptography`` raises as InternalError."""
    return bytes.fromhex("302e020100300506032b657104220420") + bytes(range(32))


def test_regression_ed448_pkcs8_of_32_bytes_is_a_typed_error() -> None:
    der = _ed448_pkcs8_with_32_bytes()
    pem = b"-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(der) + b"\n-----END PRIVATE KEY-----\n"
    for data in (der, pem):
        assert identify(data).kind == "unknown"  # used to raise cryptography's InternalError
        with pytest.raises(KeyFormatError):
            read_private_key(data)
        with pytest.raises(KeyFormatError):
            decode_private_key(data, None)
        with pytest.raises(KeyFormatError):
            detect_backup(data)
        with pytest.raises(KeyFormatError):
            restore_backup([data], PASSPHRASE, fmt="pem")
    x448 = bytes.fromhex("302e020100300506032b656f04220420") + bytes(32)  # X448: same OpenSSL error
    assert identify(x448).kind == "unknown"


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_regression_deeply_nested_json_is_a_typed_error(depth: int) -> None:
    """Found by review while writing the targets: ``json.loads`` raises RecursionError (not a ValueError) on deep
    nesting; key import and JSON backups let it escape."""
    nested = b"[" * depth + b"]" * depth
    doc = b'{"format":"datafold-key-backup","kty":"OKP","crv":"Ed25519","d":"x","a":' + nested + b"}"
    assert identify(doc).kind == "unknown"
    for read in (read_public_key, read_private_key, Envelope.from_json):
        with pytest.raises(KeyFormatError):
            read(doc)
    with pytest.raises(KeyFormatError):
        restore_backup([doc], PASSPHRASE)
    for parse in (parse_registration_body, parse_rotation_body):
        with pytest.raises(DatafoldAuthError):
            parse(b'{"jwk":' + nested + b"}")


def test_regression_hostile_slip39_iteration_exponent_is_refused_quickly() -> None:
    """Found by review of the Shamir target's cost gate: a share's 4-bit iteration exponent sets the PBKDF2 cost
    (10000 * 2^e); e = 15 made a restore run for about two minutes. Exponents above 9 are now refused."""
    share = shamir_mnemonic.Share.from_mnemonic(_SHARES[0])
    hostile = [
        dataclasses.replace(shamir_mnemonic.Share.from_mnemonic(s), iteration_exponent=15).mnemonic()
        for s in _SHARES[:2]
    ]
    assert share.iteration_exponent == 0
    started = time.monotonic()
    with pytest.raises(KeyFormatError, match="iteration exponent 15"):
        slip39.combine(hostile)
    with pytest.raises(KeyFormatError, match="iteration exponent"):
        restore_backup([h.encode() for h in hostile], fmt="shamir")
    assert time.monotonic() - started < 30  # not a timing assertion of speed: e = 15 takes minutes
    with pytest.raises(KeyFormatError):
        split_key(KEY, _PLAN, iteration_exponent=slip39.MAX_ITERATION_EXPONENT + 1)
    cheap = [
        dataclasses.replace(shamir_mnemonic.Share.from_mnemonic(s), iteration_exponent=2).mnemonic()
        for s in _SHARES[:2]
    ]
    with pytest.raises(DatafoldAuthError):  # allowed, but the exponent is part of the encryption: the key differs
        slip39.restore_shares([slip39.ShareDocument(m, jwk_thumbprint(OTHER)) for m in cheap])


def test_regression_json_backup_keyid_must_be_canonical() -> None:
    """Found by atheris (target backup_json, after 10 s): a keyid whose last character differs only in the two bits
    base64url leaves spare decodes to the same 32 bytes, so the AES-GCM header (which holds the bytes) still
    authenticates; the JSON reader accepted it, and the envelope changed in a round trip through the binary form."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    odd = KEYID[:-1] + alphabet[alphabet.index(KEYID[-1]) ^ 1]
    data = _JSON_BACKUPS[0].replace(KEYID.encode(), odd.encode())
    assert data != _JSON_BACKUPS[0]
    with pytest.raises(KeyFormatError, match="canonical"):
        Envelope.from_json(data)
    with pytest.raises(KeyFormatError):
        restore_backup([data], PASSPHRASE)
    with pytest.raises(KeyFormatError):
        BackupInfo(odd).check()


# ------------------------------------------------------------------ the atheris targets run (so they cannot rot)


def test_atheris_targets_run(tmp_path: Path) -> None:
    """Every target of bench/fuzz runs for 2 s under atheris from its seed corpus, with no finding."""
    pytest.importorskip("atheris")
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "fuzz" / "run.py"),
            "--seconds",
            "2",
            "--jobs",
            "2",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    targets = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz" / "run.py"), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(targets) >= 11 and len(lines) == len(targets), run.stdout
    for line in lines:
        assert " findings 0 " in line and int(line.split(" execs")[0].split()[-1]) > 0, line
