"""Adversarial tests of the sans-I/O core: API misuse, bad registry data, costly inputs.

Each test is a finding of the adversarial review; the docstring says what used to happen.
"""

from __future__ import annotations

import importlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datafold_auth as df
from datafold_auth.registration import RegistrationApp, RegistrationASGIApp

sb = importlib.import_module("datafold_auth.signature_base")  # the package exports a function of that name

NOW = 1_800_000_000


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _signed(key: Ed25519PrivateKey, url: str = "http://api.test/x?a=1", **sign: Any) -> df.Request:
    req = df.Request.from_url("GET", url)
    df.Signer(key).sign(req, now=NOW, **sign)
    return req


def _registry(key: Ed25519PrivateKey, **fields: Any) -> df.MemoryRegistry:
    registry = df.MemoryRegistry()
    registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id="alice", **fields))
    return registry


# ------------------------------------------------------------------ replay protection cannot be switched off by accident


def test_verifier_needs_a_nonce_store(key: Ed25519PrivateKey) -> None:
    """``Verifier(registry, None)`` used to verify happily with replay protection off:
    the same signed request was accepted any number of times."""
    with pytest.raises(TypeError, match="nonce store"):
        df.Verifier(_registry(key), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nonce store"):
        df.Verifier(_registry(key), "memory://")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="registry"):
        df.Verifier(None, df.MemoryNonceStore())  # type: ignore[arg-type]


@pytest.mark.parametrize("app", [RegistrationApp, RegistrationASGIApp])
def test_registration_needs_a_nonce_store_and_a_registry(app: type[Any], key: Ed25519PrivateKey) -> None:
    """Same for the registration apps: ``nonce_store=None`` accepted replayed proofs."""
    with pytest.raises(TypeError, match="nonce store"):
        app(df.MemoryRegistry(), None)
    with pytest.raises(TypeError, match="registry"):
        app(object(), df.MemoryNonceStore())


# ------------------------------------------------------------------ registry data is checked


def test_a_record_for_another_keyid_is_not_trusted(key: Ed25519PrivateKey) -> None:
    """A registry (plugin bug, case-insensitive lookup, damaged data) that answers a keyid with
    the record of another keyid had its identity accepted: the request acted as ``bob``."""
    other = df.Signer(Ed25519PrivateKey.generate()).keyid
    record = df.KeyRecord(
        keyid=other, public_key=df.KeyRecord.for_public_key(key.public_key(), "x").public_key, client_id="bob"
    )

    class Confused:
        blocking = False

        def get(self, keyid: str) -> df.KeyRecord:
            return record

    with pytest.raises(df.SignatureError) as err:
        df.Verifier(Confused(), df.MemoryNonceStore()).verify(_signed(key), NOW)
    assert err.value.reason is df.Reason.UNKNOWN_KEY


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"scopes": "admin"}, TypeError),  # used to become ("a", "d", "m", "i", "n")
        ({"scopes": b"admin"}, TypeError),
        ({"scopes": ["read", 5]}, TypeError),
        ({"expires_at": "soon"}, TypeError),  # used to raise TypeError only when a request came in
        ({"expires_at": True}, TypeError),
        ({"created_at": "x"}, TypeError),
        ({"label": None}, TypeError),
        ({"client_id": 5}, TypeError),
    ],
)
def test_key_record_refuses_fields_of_the_wrong_type(
    key: Ed25519PrivateKey, fields: dict[str, Any], error: type
) -> None:
    with pytest.raises(error):
        df.KeyRecord.for_public_key(key.public_key(), **fields)


def test_key_record_refuses_an_empty_keyid_or_client_id(key: Ed25519PrivateKey) -> None:
    raw = df.KeyRecord.for_public_key(key.public_key()).public_key
    with pytest.raises(ValueError, match="keyid"):
        df.KeyRecord(keyid="", public_key=raw, client_id="c")
    with pytest.raises(ValueError, match="client_id"):
        df.KeyRecord(keyid="k", public_key=raw, client_id="")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("scopes", "not json"),
        ("scopes", '"admin"'),
        ("scopes", '{"a": 1}'),
        ("scopes", "[1]"),
        ("status", "bogus"),
        ("public_key", b"short"),
        ("expires_at", "soon"),
        ("created_at", "yesterday"),
    ],
)
def test_damaged_sqlite_rows_are_registry_errors(
    tmp_path: Path, key: Ed25519PrivateKey, column: str, value: Any
) -> None:
    """Damaged rows raised JSONDecodeError/ValueError/TypeError (HTTP 500), KeyFormatError
    (HTTP 400 ``invalid_key_format``), or loaded ``"admin"`` as five one-letter scopes."""
    path = tmp_path / "keys.db"
    registry = df.SQLiteRegistry(path)
    record = registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id="alice"))
    with sqlite3.connect(path) as db:
        db.execute(f"UPDATE keys SET {column} = ?", (value,))  # noqa: S608 - test constant
    with pytest.raises(df.RegistryError) as err:
        registry.get(record.keyid)
    assert err.value.reason is df.Reason.REGISTRY_UNAVAILABLE
    with pytest.raises(df.RegistryError):
        registry.list()


# ------------------------------------------------------------------ costly inputs


def _with_components(
    key: Ed25519PrivateKey, comps: str, query: str, extra: list[tuple[str, str]] | None = None
) -> df.Request:
    signer = df.Signer(key)
    si = (
        f'df=("@method" "@authority" "@path" "@query" {comps});created={NOW};nonce="n0nce";'
        f'keyid="{signer.keyid}";alg="ed25519";tag="datafold"'
    )
    return df.Request(
        "GET",
        "api.test",
        "/x",
        query,
        [*(extra or []), ("Signature-Input", si), ("Signature", "df=:" + "A" * 86 + "==:")],
    )


def test_covered_components_are_bounded(key: Ed25519PrivateKey) -> None:
    """1,500 covered ``@query-param`` components cost about 5 s of CPU before the signature was checked."""
    n = 1500
    query = "&".join(f"a{i}=v" for i in range(n))
    comps = " ".join(f'"@query-param";name="a{i}"' for i in range(n))
    start = time.perf_counter()
    with pytest.raises(df.SignatureError) as err:
        df.Verifier(_registry(key), df.MemoryNonceStore()).verify(_with_components(key, comps, query), NOW)
    assert err.value.reason is df.Reason.MALFORMED_SIGNATURE_INPUT
    assert time.perf_counter() - start < 0.5
    assert df.DEFAULT_POLICY.max_components == 32


def test_query_and_structured_fields_are_parsed_once_per_signature_base(
    key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ``@query-param`` re-parsed the whole query and each ``;key=`` component re-parsed
    its whole field: quadratic work an attacker chooses."""
    calls = {"qs": 0, "sf": 0}
    parse_qsl, parse = sb.parse_qsl, sb.sf.parse

    def counting_qsl(*args: Any, **kwargs: Any) -> Any:
        calls["qs"] += 1
        return parse_qsl(*args, **kwargs)

    def counting_parse(*args: Any, **kwargs: Any) -> Any:
        calls["sf"] += 1
        return parse(*args, **kwargs)

    monkeypatch.setattr(sb, "parse_qsl", counting_qsl)
    monkeypatch.setattr(sb.sf, "parse", counting_parse)
    query = "&".join(f"a{i}=v" for i in range(10))
    comps = " ".join(f'"@query-param";name="a{i}"' for i in range(10))
    comps += " " + " ".join(f'"priority";key="k{i}"' for i in range(10))
    priority = ", ".join(f"k{i}={i}" for i in range(10))
    req = _with_components(key, comps, query, [("Priority", priority)])
    with pytest.raises(df.SignatureError) as err:
        df.Verifier(_registry(key), df.MemoryNonceStore()).verify(req, NOW)
    assert err.value.reason is df.Reason.BAD_SIGNATURE  # the base was built in full
    assert calls == {"qs": 1, "sf": 1}


def test_keyid_length_is_bounded_before_the_registry(key: Ed25519PrivateKey) -> None:
    """Keyids of any length were looked up and kept in the negative cache (memory exhaustion)."""
    looked_up: list[str] = []
    signed = _signed(key)
    headers = [(k, v.replace(df.Signer(key).keyid, "k" * 129)) for k, v in signed.headers]
    req = df.Request(signed.method, signed.authority, signed.path, signed.query, headers)
    with pytest.raises(df.SignatureError) as err:
        df.verify_request(req, now=NOW, resolve_key=lambda k: looked_up.append(k), nonce_store=df.MemoryNonceStore())
    assert err.value.reason is df.Reason.MISSING_PARAMETER
    assert looked_up == []
    assert df.DEFAULT_POLICY.max_keyid_length == 128


# ------------------------------------------------------------------ signer misuse fails early and clearly


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"expires_in": "300"}, TypeError),  # used to fail at sign time: int + str
        ({"expires_in": 0}, ValueError),
        ({"expires_in": -1000}, ValueError),  # used to sign already-expired requests
        ({"expires_in": True}, TypeError),
        ({"digest_algorithms": "sha-256"}, TypeError),  # used to fail at sign time: "unsupported digest algorithm 's'"
        ({"digest_algorithms": ("md5",)}, ValueError),
        ({"digest_algorithms": ()}, ValueError),
        ({"tag": 5}, TypeError),  # used to send tag=5, which no verifier selects
    ],
)
def test_signer_refuses_bad_options(key: Ed25519PrivateKey, options: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        df.Signer(key, **options)


def test_byte_sequence_component_of_a_non_latin1_value_is_a_signature_error(key: Ed25519PrivateKey) -> None:
    """``;bs`` over a str value outside latin-1 raised UnicodeEncodeError."""
    req = df.Request.from_url("GET", "http://api.test/x", [("X-Name", "\u20ac")])
    with pytest.raises(df.SignatureError) as err:
        df.signature_base(req, [("x-name", {"bs": True})], '("x-name";bs)')
    assert err.value.reason is df.Reason.UNSUPPORTED_COMPONENT


# ------------------------------------------------------------------ invariant: only DatafoldAuthError, whatever the fields


_ATOMS = [
    "df", "=", "(", ")", '"@method"', '"@authority"', '"@path"', '"@query"', '"content-digest"', '"content-type"',
    '"@query-param"', '"@status"', '"@target-uri"', '"@request-target"', '"@scheme"', '"priority"', ";", "created=",
    "expires=", "nonce=", "keyid=", "alg=", "tag=", "name=", "key=", "sf", "bs", "req", '"datafold"', '"ed25519"',
    str(NOW), "-1", "999999999999999", "9999999999999999", "1.5", "?1", "?0", "tok", ":AAAA:", ":" + "A" * 86 + "==:",
    ", ", " ", "\\", '"', '%"x"', "@123", "\t", "*", "\xe9", "\x7f", "\x01", "\u20ac",
]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(["Signature-Input", "Signature", "Content-Digest", "Priority"]),
    replace=st.booleans(),
    atoms=st.lists(st.sampled_from(_ATOMS), min_size=1, max_size=30),
    at=st.integers(min_value=0, max_value=400),
    cut=st.integers(min_value=0, max_value=12),
)
def test_any_field_text_gives_a_reason_never_another_exception(
    field: str, replace: bool, atoms: list[str], at: int, cut: int
) -> None:
    key = _FUZZ_KEY
    req = df.Request.from_url("POST", "http://api.test/x?a=1&b=2", [("Content-Type", "application/json")], b'{"a":1}')
    req.add_header("Priority", "u=1, i")
    df.Signer(key).sign(req, now=NOW)
    headers = dict(req.headers)
    noise = "".join(atoms)
    old = headers.get(field, "")
    headers[field] = noise if replace else old[:at] + noise + old[at + cut :]
    mutated = df.Request("POST", "api.test", "/x", "a=1&b=2", list(headers.items()), req.body, "http")
    try:
        df.Verifier(_FUZZ_REGISTRY, df.MemoryNonceStore()).verify(mutated, NOW)
    except df.DatafoldAuthError as exc:
        assert exc.reason.status in (400, 401)


_FUZZ_KEY = Ed25519PrivateKey.generate()
_FUZZ_REGISTRY = _registry(_FUZZ_KEY)
