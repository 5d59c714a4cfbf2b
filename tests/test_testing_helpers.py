"""datafold_auth.testing helpers on their own: clock, nonce store, keys, verifier log, assertions, registries."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from requests.structures import CaseInsensitiveDict
from werkzeug.test import TestResponse
from werkzeug.wrappers import Response as WerkzeugResponse

from datafold_auth import (
    KeyStatus,
    MemoryNonceStore,
    MemoryRegistry,
    Reason,
    RegistryError,
    Request,
    SignatureError,
    SQLiteRegistry,
    VerificationPolicy,
)
from datafold_auth.testing import (
    ClockedVerifier,
    EphemeralKey,
    FakeClock,
    KeyFactory,
    PinnedNonceSigner,
    RecordingNonceStore,
    RegistryFactory,
    assert_accepted,
    assert_rejected,
    problem_details,
    rejection_reason,
)
from datafold_auth.wire import problem

URL = "https://api.example.com/v1/items?page=2"


# ------------------------------------------------------------------ FakeClock


def test_clock_starts_at_the_real_time_and_stands_still() -> None:
    before = math.floor(time.time())
    clock = FakeClock()
    assert before <= clock.now <= time.time()
    assert clock.now == int(clock.now)
    assert clock() == clock.now


def test_clock_moves_only_when_told() -> None:
    clock = FakeClock(1_800_000_000)
    assert clock.advance(30) == 1_800_000_030
    assert clock.advance(-10.5) == 1_800_000_019.5
    clock.set(5)
    assert clock() == 5.0
    ahead = clock.shifted(60)
    assert ahead() == 65.0
    clock.advance(1)
    assert ahead() == 66.0
    assert repr(clock) == "FakeClock(now=6.0)"


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_clock_refuses_non_finite_times(bad: float) -> None:
    clock = FakeClock(0)
    with pytest.raises(ValueError):
        clock.set(bad)
    with pytest.raises(ValueError):
        clock.advance(bad)
    with pytest.raises(ValueError):
        clock.shifted(bad)
    with pytest.raises(ValueError):
        FakeClock(bad)


# ------------------------------------------------------- RecordingNonceStore


def test_nonce_store_records_fresh_nonces_and_replays() -> None:
    store = RecordingNonceStore()
    assert store.blocking is False
    assert store.add("k1 n1", 100, 10) is True
    assert store.add("k1 n1", 100, 11) is False
    assert store.add("k2 n1", 100, 12) is True
    assert len(store) == 2
    assert [u.fresh for u in store.uses] == [True, False, True]
    (replay,) = store.replays
    assert (replay.keyid, replay.nonce, replay.at, replay.expires_at) == ("k1", "n1", 11, 100)
    assert store.nonces() == ["n1", "n1"]
    assert store.nonces("k2") == ["n1"]
    assert ("k1", "n1") in store and "k2 n1" in store
    assert ("k3", "n1") not in store and 42 not in store
    assert repr(store) == "RecordingNonceStore(accepted=2, replays=1)"


def test_nonce_store_clear_forgets_everything() -> None:
    store = RecordingNonceStore(MemoryNonceStore(capacity=7))
    store.add("k n", 100, 10)
    store.clear()
    assert store.uses == [] and ("k", "n") not in store
    assert store.add("k n", 100, 10) is True
    assert isinstance(store.inner, MemoryNonceStore) and store.inner.capacity == 7


def test_nonce_store_wraps_any_store() -> None:
    class Shared:
        blocking = True

        def add(self, key: str, expires_at: float, now: float) -> bool:
            return False

    store = RecordingNonceStore(Shared())
    assert store.blocking is True
    assert store.add("k n", 1, 0) is False
    with pytest.raises(TypeError):
        store.clear()


# ------------------------------------------------------ KeyFactory / EphemeralKey


def test_factory_registers_keys_with_the_asked_attributes() -> None:
    registry = MemoryRegistry()
    clock = FakeClock(1_800_000_000)
    make = KeyFactory(registry, clock)
    key = make("alice", scopes=["read", "write"], label="laptop", expires_in=60)
    record = registry.get(key.keyid)
    assert record is not None and record == key.record
    assert (record.client_id, record.scopes, record.label, record.status) == (
        "alice",
        ("read", "write"),
        "laptop",
        KeyStatus.ACTIVE,
    )
    assert (record.created_at, record.expires_at) == (1_800_000_000, 1_800_000_060)
    assert key.keyid == key.signer.keyid and key.client_id == "alice" and key.registered
    assert key.jwk["kty"] == "OKP" and key.public_key == key.private_key.public_key()
    assert make.keys == [key]


def test_factory_defaults_and_options() -> None:
    registry = MemoryRegistry()
    make = KeyFactory(registry, FakeClock(0))
    first, second = make(), make(scopes="read  write")
    assert (first.client_id, second.client_id) == ("client-1", "client-2")
    assert second.scopes == ("read", "write")
    pending = make(status="pending", expires_at=99)
    assert pending.status is KeyStatus.PENDING and pending.record.expires_at == 99
    loose = make(register=False)
    assert not loose.registered and registry.get(loose.keyid) is None
    unique = KeyFactory(registry, unique_client_ids=True)
    assert unique().client_id.startswith("client-1-") and len(unique.client_id_for("x")) == len("x-") + 8


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"expires_in": 1, "expires_at": 2}, ValueError),
        ({"status": "sleeping"}, ValueError),
        ({"scopes": ["read", ""]}, TypeError),
        ({"scopes": [3]}, TypeError),
    ],
)
def test_factory_refuses_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        KeyFactory(MemoryRegistry())(**kwargs)


def test_factory_explains_a_taken_client_id() -> None:
    make = KeyFactory(MemoryRegistry())
    make("alice")
    with pytest.raises(RegistryError, match="one key per client_id") as info:
        make("alice")
    assert info.value.reason is Reason.CLIENT_ID_TAKEN


def test_key_status_changes_and_revoke_all() -> None:
    registry = MemoryRegistry()
    clock = FakeClock(1000)
    make = KeyFactory(registry, clock)
    key, other, loose = make(), make(status="rotated"), make(register=False)
    clock.advance(5)
    assert key.revoke().status is KeyStatus.REVOKED
    assert key.record.updated_at == 1005
    key.set_status("active")
    make.revoke_all()
    assert [registry.get(k.keyid).status for k in (key, other)] == [KeyStatus.REVOKED, KeyStatus.ROTATED]  # type: ignore[union-attr]
    with pytest.raises(RuntimeError):
        loose.revoke()


def test_key_repr_shows_no_secret() -> None:
    key = KeyFactory(MemoryRegistry())("alice", scopes=["read"])
    text = repr(key)
    assert "alice" in text and key.keyid in text and "read" in text
    assert "private" not in text.lower()


def test_key_refuses_a_record_of_another_key() -> None:
    a, b = KeyFactory(None)(), KeyFactory(None)()
    with pytest.raises(ValueError):
        EphemeralKey(a.private_key, b.record)


def test_signed_headers_verify_at_the_key_clock() -> None:
    registry = MemoryRegistry()
    clock = FakeClock(1_800_000_000)
    key = KeyFactory(registry, clock)("alice")
    headers = key.signed_headers("POST", URL, body=b"{}", headers={"Content-Type": "application/json"}, nonce="n1")
    assert set(headers) == {"Content-Digest", "Signature-Input", "Signature"}
    assert 'nonce="n1"' in headers["Signature-Input"] and "created=1800000000" in headers["Signature-Input"]
    verifier = ClockedVerifier(registry, RecordingNonceStore(), clock=clock)
    received = Request.from_url("POST", URL, [("Content-Type", "application/json"), *headers.items()], b"{}")
    assert verifier.verify(received).client_id == "alice"
    assert "Content-Digest" not in key.signed_headers("GET", URL)


def test_pinned_nonce_signer_repeats_its_nonce() -> None:
    key = KeyFactory(None)()
    signer = key.signer_with(nonce="same")
    assert isinstance(signer, PinnedNonceSigner) and key.signer_with() is key.signer
    for _ in range(2):
        fields = dict(signer.sign(Request.from_url("GET", URL), now=0))
        assert 'nonce="same"' in fields["Signature-Input"]
    assert 'nonce="other"' in dict(signer.sign(Request.from_url("GET", URL), now=0, nonce="other"))["Signature-Input"]


# ----------------------------------------------------------------- ClockedVerifier


def test_verifier_uses_its_clock_not_the_callers_now_and_logs() -> None:
    registry = MemoryRegistry()
    clock = FakeClock(1_800_000_000)
    key = KeyFactory(registry, clock)("alice", scopes=["read"])
    verifier = ClockedVerifier(registry, RecordingNonceStore(), clock=clock)
    request = Request.from_url("GET", URL, list(key.signed_headers("GET", URL).items()))
    verifier.verify(request, now=0)  # a middleware on the real clock passes another time: ignored
    clock.advance(400)
    late = Request.from_url("GET", URL, list(key.signed_headers("GET", URL, now=clock() - 400).items()))
    with pytest.raises(SignatureError) as info:
        verifier.verify(late, time.time())
    assert info.value.reason is Reason.EXPIRED
    first, second = verifier.log
    assert first.accepted and first.verified is not None and first.verified.client_id == "alice"
    assert (second.error, second.keyid, second.target) == (info.value, key.keyid, "/v1/items?page=2")
    assert verifier.rejections == [second]
    lines = verifier.report().splitlines()
    assert (
        lines[0] == f"1. t=1800000000 GET /v1/items?page=2 -> accepted as 'alice' scopes=['read'] (keyid {key.keyid})"
    )
    assert lines[1].startswith("2. t=1800000400 GET /v1/items?page=2 -> rejected expired: created is 400 s old")


def test_verifier_does_not_cache_records() -> None:
    registry = MemoryRegistry()
    key = KeyFactory(registry)("alice")
    verifier = ClockedVerifier(registry, RecordingNonceStore(), VerificationPolicy(), clock=time.time)
    verifier.verify(Request.from_url("GET", URL, list(key.signed_headers("GET", URL).items())))
    key.revoke()
    with pytest.raises(SignatureError) as info:
        verifier.verify(Request.from_url("GET", URL, list(key.signed_headers("GET", URL).items())))
    assert info.value.reason is Reason.KEY_NOT_ACTIVE
    assert verifier.log[-1].describe().endswith(f"(keyid {key.keyid})")


# ------------------------------------------------------------------ assertions


def werkzeug_response(status: int, headers: list[tuple[str, str]], body: bytes) -> Any:
    return TestResponse(body, status, headers, request=None)  # type: ignore[arg-type]


def httpx_response(status: int, headers: list[tuple[str, str]], body: bytes) -> Any:
    return httpx.Response(status, headers=headers, content=body)


def requests_response(status: int, headers: list[tuple[str, str]], body: bytes) -> Any:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(dict(headers))
    response._content = body
    return response


MAKERS = [werkzeug_response, httpx_response, requests_response]


@pytest.mark.parametrize("make", MAKERS)
def test_assert_rejected_passes_on_the_right_reason(make: Any) -> None:
    response = make(*problem(Reason.REPLAYED_NONCE))
    assert assert_rejected(response, "replayed_nonce") == "replayed_nonce"
    assert assert_rejected(response, Reason.REPLAYED_NONCE, status=401) == "replayed_nonce"
    assert rejection_reason(response) == "replayed_nonce"
    assert problem_details(response) == json.loads(problem(Reason.REPLAYED_NONCE)[2])


@pytest.mark.parametrize("make", MAKERS)
def test_assert_rejected_explains_a_wrong_reason(make: Any) -> None:
    response = make(*problem(Reason.EXPIRED))
    with pytest.raises(AssertionError) as info:
        assert_rejected(response, "replayed_nonce")
    assert str(info.value).splitlines() == [
        "expected a rejection with reason 'replayed_nonce', but it was rejected with reason 'expired'",
        "    status: 401 Unauthorized",
        "    content-type: application/problem+json",
        f"    reason: expired ({Reason.EXPIRED.description})",
        "    body: " + problem(Reason.EXPIRED)[2].decode(),
    ]


@pytest.mark.parametrize("make", MAKERS)
def test_assert_rejected_explains_an_acceptance(make: Any) -> None:
    response = make(200, [("Content-Type", "application/json")], b'{"hello": "alice"}')
    with pytest.raises(AssertionError) as info:
        assert_rejected(response, "insufficient_scope")
    assert str(info.value).splitlines() == [
        "expected a rejection with reason 'insufficient_scope', but the request was accepted",
        "    status: 200 OK",
        "    content-type: application/json",
        '    body: {"hello": "alice"}',
    ]


def test_assert_rejected_checks_the_status() -> None:
    body = b'{"reason": "insufficient_scope"}'
    response = httpx_response(401, [("Content-Type", "application/problem+json")], body)
    assert_rejected(response, "insufficient_scope")  # not a datafold reason: no default status
    with pytest.raises(AssertionError, match=r"with status 403 Forbidden, but the status is 401 Unauthorized"):
        assert_rejected(response, "insufficient_scope", status=403)
    odd = httpx_response(403, [], json.dumps({"reason": "expired"}).encode())
    with pytest.raises(AssertionError, match="with status 401 Unauthorized, but the status is 403 Forbidden"):
        assert_rejected(odd, "expired")


def test_reason_from_error_member_and_www_authenticate() -> None:
    assert rejection_reason(httpx_response(400, [], b'{"error": "invalid_token"}')) == "invalid_token"
    challenge = [("WWW-Authenticate", 'Bearer realm="x", error="insufficient_scope", scope="write"')]
    assert rejection_reason(httpx_response(403, challenge, b"nope")) == "insufficient_scope"
    assert rejection_reason(httpx_response(403, [], b"[1]")) is None
    assert rejection_reason(httpx_response(403, [], b"\xff")) is None
    with pytest.raises(AssertionError, match="but the answer names no reason"):
        assert_rejected(httpx_response(500, [], b""), "expired")


def test_long_bodies_are_cut() -> None:
    response = httpx_response(500, [], b"x" * 2000)
    with pytest.raises(AssertionError) as info:
        assert_accepted(response)
    assert "x" * 500 + "... (2000 characters)" in str(info.value)
    with pytest.raises(AssertionError, match=r"body: \(empty\)"):
        assert_accepted(httpx_response(500, [], b""))


@pytest.mark.parametrize("make", MAKERS)
def test_assert_accepted(make: Any) -> None:
    assert_accepted(make(204, [], b""))
    assert_accepted(make(201, [], b""), status=201)
    with pytest.raises(AssertionError) as info:
        assert_accepted(make(*problem(Reason.KEY_NOT_ACTIVE)))
    assert str(info.value).splitlines()[0] == (
        "expected the request to be accepted (a 2xx status), but it was rejected with reason 'key_not_active'"
    )
    with pytest.raises(AssertionError, match=r"\(201 Created\), but it was answered 200 OK"):
        assert_accepted(make(200, [], b"{}"), status=201)


def test_unread_httpx_stream_has_no_body() -> None:
    response = httpx.Response(401, stream=httpx.ByteStream(b'{"reason": "expired"}'))
    assert rejection_reason(response) is None


def test_werkzeug_plain_response_works_too() -> None:
    response = WerkzeugResponse(b'{"reason": "expired"}', 401, content_type="application/problem+json")
    assert_rejected(response, "expired")


# ------------------------------------------------------------------ registries


def test_registry_factory_opens_and_closes(tmp_path: Path) -> None:
    made: list[Path] = []

    def make_dir() -> Path:
        path = tmp_path / f"d{len(made)}"
        path.mkdir()
        made.append(path)
        return path

    factory = RegistryFactory(make_dir)
    memory = factory("memory://")
    assert isinstance(memory, MemoryRegistry) and made == []
    sqlite = factory()
    assert isinstance(sqlite, SQLiteRegistry) and sqlite.path == made[0] / "keys.db"
    named = factory(f"sqlite://{tmp_path}/named.db", timeout=1.0)
    assert isinstance(named, SQLiteRegistry) and named.timeout == 1.0
    assert factory.opened == [memory, sqlite, named]
    factory.close()
    assert factory.opened == []
    with pytest.raises(RegistryError):
        factory("nosuch://x")


def test_the_plugin_imports_no_optional_library() -> None:
    """The plugin loads in every pytest run where datafold-auth is installed: it must not need the extras."""
    import subprocess
    import sys

    code = (
        "import sys, datafold_auth.testing.plugin\n"
        "loaded = {'flask', 'starlette', 'httpx', 'requests', 'fastapi'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_registry_factory_retries_a_locked_sqlite_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Workers opening one new SQLite file at once can get "database is locked" from the WAL switch."""
    from datafold_auth.testing import registries

    calls: list[str] = []
    real = registries.open_registry
    outcomes: list[str] = []

    def flaky(url: str, **options: Any) -> Any:
        calls.append(url)
        outcome = outcomes.pop(0) if outcomes else "open"
        if outcome != "open":
            raise RegistryError(f"cannot open registry database {url}: {outcome}")
        return real(url, **options)

    monkeypatch.setattr(registries, "open_registry", flaky)
    monkeypatch.setattr(registries.time, "sleep", lambda seconds: None)
    factory = RegistryFactory(lambda: tmp_path)
    outcomes[:] = ["database is locked", "database is locked"]
    assert isinstance(factory(f"sqlite://{tmp_path}/k.db"), SQLiteRegistry) and len(calls) == 3
    calls.clear()
    outcomes[:] = ["database is locked"] * 10
    with pytest.raises(RegistryError, match="locked"):
        factory("memory://")
    assert len(calls) == registries.OPEN_ATTEMPTS
    calls.clear()
    outcomes[:] = ["disk I/O error"]
    with pytest.raises(RegistryError, match="disk I/O error"):
        factory("memory://")
    assert len(calls) == 1
    factory.close()
