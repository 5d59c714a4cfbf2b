"""Registry conformance: every built-in backend behaves the same."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.registry import hookspecs, open_nonce_store, plugin_manager
from datafold_auth.registry.sqlite import SCHEMA_VERSION


def record(client_id: str = "c", **fields: Any) -> df.KeyRecord:
    return df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), client_id=client_id, **fields)


@pytest.fixture(params=["memory", "sqlite"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[df.KeyRegistry]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/reg/keys.db"
    reg = df.open_registry(url)
    yield reg
    reg.close()


def test_register_get_list_status(registry: df.KeyRegistry) -> None:
    a = registry.register(record("alice", scopes=("read", "write"), label="laptop", created_at=1, updated_at=1))
    b = registry.register(record("bob", status=df.KeyStatus.PENDING, created_at=2, updated_at=2, expires_at=99))
    assert registry.get(a.keyid) == a and registry.get(b.keyid) == b
    assert registry.get("nope") is None
    assert [r.keyid for r in registry.list()] == [a.keyid, b.keyid]
    assert registry.list(client_id="bob") == [b]
    assert registry.list(status=df.KeyStatus.PENDING) == [b]
    updated = registry.set_status(b.keyid, df.KeyStatus.ACTIVE, 5)
    assert updated.status is df.KeyStatus.ACTIVE and updated.updated_at == 5
    assert registry.get(b.keyid) == updated
    assert updated.is_usable(98) and not updated.is_usable(99)


def test_refusals(registry: df.KeyRegistry) -> None:
    a = registry.register(record("alice"))
    with pytest.raises(df.RegistryError) as info:
        registry.register(a)
    assert info.value.reason is df.Reason.DUPLICATE_KEY
    with pytest.raises(df.RegistryError) as info:
        registry.register(record("alice"))
    assert info.value.reason is df.Reason.CLIENT_ID_TAKEN
    with pytest.raises(df.RegistryError) as info:
        registry.set_status("missing", df.KeyStatus.REVOKED, 1)
    assert info.value.reason is df.Reason.NOT_FOUND


def test_concurrent_registrations_lose_none(registry: df.KeyRegistry) -> None:
    records = [record(f"client-{i}") for i in range(200)]
    errors: list[BaseException] = []

    def work(chunk: list[df.KeyRecord]) -> None:
        try:
            for r in chunk:
                registry.register(r)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(records[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert {r.keyid for r in registry.list()} == {r.keyid for r in records}


def test_sqlite_is_wal_versioned_and_persistent(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    reg = df.SQLiteRegistry(path)
    r = reg.register(record("alice"))
    reg.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # 2 since the lifecycle/audit migration
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(df.RegistryError, match="newer"):
        df.SQLiteRegistry(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    conn.commit()
    conn.close()
    assert df.SQLiteRegistry(path).get(r.keyid) == r


def test_third_party_plugin_serves_its_scheme(tmp_path: Path) -> None:
    class Plugin:
        @hookspecs.hookimpl
        def datafold_auth_open_registry(self, url: str, options: dict[str, Any]) -> Any:
            return df.MemoryRegistry() if url.startswith("custom:") else None

    pm = plugin_manager()
    plugin = Plugin()
    pm.register(plugin, name="custom-test")
    try:
        assert isinstance(df.open_registry("custom://x"), df.MemoryRegistry)
        assert isinstance(df.open_registry(f"sqlite:///{tmp_path}/plugin.db"), df.SQLiteRegistry)
    finally:
        pm.unregister(plugin)
    with pytest.raises(df.RegistryError, match="no registry plugin"):
        df.open_registry("custom://x")
    assert isinstance(open_nonce_store("memory://", capacity=5), df.MemoryNonceStore)


def test_cached_registry_bounds_staleness() -> None:
    backend = df.MemoryRegistry()
    r = backend.register(record("alice"))
    cache = df.CachedRegistry(backend, ttl=5)
    assert cache.get(r.keyid, 100) == r
    backend.set_status(r.keyid, df.KeyStatus.REVOKED, 101)
    assert cache.get(r.keyid, 104.9).status is df.KeyStatus.ACTIVE  # type: ignore[union-attr]
    assert cache.get(r.keyid, 105).status is df.KeyStatus.REVOKED  # type: ignore[union-attr]


def test_record_rejects_bad_keys() -> None:
    with pytest.raises(df.KeyFormatError):
        df.KeyRecord(keyid="x", public_key=b"\x01" + b"\x00" * 31, client_id="c")
    with pytest.raises(df.KeyFormatError):
        df.KeyRecord(keyid="x", public_key=b"\x00" * 31, client_id="c")


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, float("nan"), float("inf")])
def test_a_record_time_outside_64_bits_is_refused(value: float) -> None:
    # The SQL registries store times in 64-bit columns: SQLite raised OverflowError, PostgreSQL "out of range".
    with pytest.raises(ValueError, match="64-bit"):
        record(expires_at=value)
