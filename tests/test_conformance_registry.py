"""Registry conformance: memory, SQLite and PostgreSQL behave the same under the KeyRegistry contract.

Every test runs against every backend (``registry`` fixture). PostgreSQL runs
in a fresh schema per test (dropped afterwards) on the machine's server; it is
skipped when unreachable, except in CI, where that fails (tests/backends.py).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.audit import GENESIS_HASH, AuditContext, AuditEvent, verify_chain
from datafold_auth.registry import KeyStatus
from datafold_auth.registry.base import register_with, set_status_with
from datafold_auth.testing import FakeClock, KeyFactory, RegistryFactory

from .backends import POSTGRES_URL, schema_url

BACKENDS = ["memory", "sqlite", "postgres"]
S = KeyStatus


def record(client_id: str = "c", **fields: Any) -> df.KeyRecord:
    fields.setdefault("created_at", 100)
    fields.setdefault("updated_at", fields["created_at"])
    return df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), client_id=client_id, **fields)


class Backend:
    """Opens registries of one kind on the same storage (a second instance sees the first one's writes)."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url
        self.opened: list[Any] = []
        self._memory: df.MemoryRegistry | None = None

    def open(self) -> Any:
        if self.kind == "memory":
            self._memory = self._memory or df.MemoryRegistry()
            return self._memory
        registry = df.open_registry(self.url)
        self.opened.append(registry)
        return registry

    def close(self) -> None:
        for registry in self.opened:
            registry.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgres":
        schema = request.getfixturevalue("pg_schema")
        found = Backend("postgres", schema_url(schema, pool_max="12"))
    elif request.param == "sqlite":
        found = Backend("sqlite", f"sqlite:///{tmp_path}/reg/keys.db")
    else:
        found = Backend("memory", "memory://")
    yield found
    found.close()


@pytest.fixture
def registry(backend: Backend) -> Any:
    return backend.open()


def codes(call: Callable[[], Any]) -> df.Reason:
    with pytest.raises(df.RegistryError) as info:
        call()
    return info.value.reason


# ---------------------------------------------------------------- records


def test_register_get_list_status(registry: Any) -> None:
    a = registry.register(record("alice", scopes=("read", "write"), label="laptop é", created_at=1))
    b = registry.register(record("bob", status=S.PENDING, created_at=2, expires_at=99))
    assert registry.get(a.keyid) == a and registry.get(b.keyid) == b
    assert registry.get("nope") is None
    assert [r.keyid for r in registry.list()] == [a.keyid, b.keyid]
    assert registry.list(client_id="bob") == [b]
    assert registry.list(status=S.PENDING) == [b]
    updated = registry.set_status(b.keyid, S.ACTIVE, 5, context=AuditContext(actor="admin:x", reason="ok"))
    assert (updated.status, updated.updated_at, updated.status_reason) == (S.ACTIVE, 5, "ok")
    assert registry.get(b.keyid) == updated
    assert updated.is_usable(98) and not updated.is_usable(99)


def test_every_field_round_trips(registry: Any) -> None:
    r = record(
        "carol",
        label="x" * 200,
        scopes=("a", "b:c", "~"),
        status=S.SUSPENDED,
        created_at=10,
        updated_at=11,
        expires_at=2_000_000_000,
        replaces="R" * 43,
        replaced_by="S" * 43,
        rotated_at=12,
        overlap_until=13,
        status_reason="why ☃",
    )
    registry.register(r)
    assert registry.get(r.keyid) == r
    assert registry.list(status=S.SUSPENDED) == [r]


def test_refusals(registry: Any) -> None:
    a = registry.register(record("alice"))
    assert codes(lambda: registry.register(a)) is df.Reason.DUPLICATE_KEY
    assert codes(lambda: registry.register(record("alice"))) is df.Reason.CLIENT_ID_TAKEN
    assert codes(lambda: registry.set_status("missing", S.REVOKED, 1)) is df.Reason.NOT_FOUND
    second = registry.register(record("alice"), allow_existing_client=True)
    assert {r.keyid for r in registry.list(client_id="alice")} == {a.keyid, second.keyid}
    assert codes(lambda: registry.set_status(a.keyid, S.ACTIVE, 2, expected={S.PENDING})) is (
        df.Reason.INVALID_TRANSITION
    )
    assert registry.get(a.keyid) == a  # a refused change changes nothing
    assert codes(lambda: registry.rotate("missing", record("alice"), 1, 10)) is df.Reason.NOT_FOUND


def test_paging_and_counts(registry: Any) -> None:
    made = [
        registry.register(record(f"c{i}", created_at=i, status=S.PENDING if i % 3 == 0 else S.ACTIVE))
        for i in range(10)
    ]
    assert [r.keyid for r in registry.list(limit=4)] == [r.keyid for r in made[:4]]
    assert [r.keyid for r in registry.list(limit=4, offset=8)] == [r.keyid for r in made[8:]]
    assert registry.list(limit=0) == []
    assert [r.keyid for r in registry.list(status=S.PENDING, offset=1)] == [made[3].keyid, made[6].keyid, made[9].keyid]
    counts = registry.counts()
    assert counts == {"pending": 4, "active": 6, "rotated": 0, "revoked": 0, "expired": 0, "suspended": 0}
    with pytest.raises(ValueError):
        registry.list(limit=-1)


# --------------------------------------------------------------- lifecycle


def test_rotation(registry: Any) -> None:
    old = registry.register(record("alice", scopes=("read",), label="laptop"))
    new = record("alice", scopes=("read",))
    rotated, successor = registry.rotate(
        old.keyid, new, 1000, 60, context=AuditContext(actor="self:x", request_id="r1")
    )
    assert (rotated.status, rotated.rotated_at, rotated.overlap_until, rotated.replaced_by) == (
        S.ROTATED,
        1000,
        1060,
        new.keyid,
    )
    assert successor.replaces == old.keyid and successor.status is S.ACTIVE
    assert registry.get(old.keyid) == rotated and registry.get(new.keyid) == successor
    assert rotated.is_usable(1059) and not rotated.is_usable(1060)  # the overlap, then key_not_active
    assert rotated.effective_status(2000) is S.ROTATED
    # only an active key rotates; the new key must be new and of the same client
    assert codes(lambda: registry.rotate(old.keyid, record("alice"), 1001, 60)) is df.Reason.INVALID_TRANSITION
    assert codes(lambda: registry.rotate(successor.keyid, successor, 1001, 60)) is df.Reason.DUPLICATE_KEY
    assert codes(lambda: registry.rotate(successor.keyid, record("bob"), 1001, 60)) is df.Reason.INVALID_REQUEST
    expired = registry.register(record("dave", expires_at=500))
    assert codes(lambda: registry.rotate(expired.keyid, record("dave"), 1000, 60)) is df.Reason.INVALID_TRANSITION
    events = [(e.event, e.keyid) for e in registry.audit_entries()]
    assert ("rotated", old.keyid) in events and ("registered", new.keyid) in events


def test_revoking_a_successor_ends_its_predecessors_overlap(registry: Any) -> None:
    # A -> B -> C (each rotation with a long overlap), then C is revoked: the stolen-key case
    # (the thief rotated to their own key) must not leave A or B verifying through the overlap.
    a = registry.register(record("alice"))
    b, c = record("alice"), record("alice")
    registry.rotate(a.keyid, b, 1000, 600)
    registry.rotate(b.keyid, c, 1010, 600)
    assert registry.get(a.keyid).is_usable(1020) and registry.get(b.keyid).is_usable(1020)
    context = AuditContext(actor="self:x", reason="device exposed", request_id="req-9")
    revoked = registry.set_status(c.keyid, S.REVOKED, 1020, context=context, expected={S.ACTIVE})
    assert revoked.status is S.REVOKED and revoked.keyid == c.keyid
    for earlier in (b, a):
        stored = registry.get(earlier.keyid)
        assert stored.status is S.REVOKED and not stored.is_usable(1021)
        assert (
            stored.updated_at == 1020 and c.keyid in stored.status_reason and "device exposed" in stored.status_reason
        )
        assert stored.overlap_until == (1610 if earlier is b else 1600)  # the rotation facts stay
    events = [e for e in registry.audit_entries() if e.event == "revoked"]
    assert [e.keyid for e in events] == [c.keyid, b.keyid, a.keyid]
    assert all((e.actor, e.request_id, e.time) == ("self:x", "req-9", 1020) for e in events)
    assert events[0].data == {"from": "active", "to": "revoked"}
    assert events[1].data == {"successor_revoked": c.keyid, "from": "rotated", "to": "revoked"}
    assert verify_chain(registry.audit_entries()).count == len(registry.audit_entries())


def test_revocation_leaves_keys_whose_overlap_is_over_and_other_transitions_alone(registry: Any) -> None:
    a = registry.register(record("alice"))
    b = record("alice")
    registry.rotate(a.keyid, b, 1000, 60)
    # suspending the successor does not touch the old key (an administrator may activate it again)
    registry.set_status(b.keyid, S.SUSPENDED, 1010)
    assert registry.get(a.keyid).status is S.ROTATED and registry.get(a.keyid).is_usable(1011)
    registry.set_status(b.keyid, S.ACTIVE, 1011)
    # once the overlap is over the old key stays "rotated": it verifies nothing already
    registry.set_status(b.keyid, S.REVOKED, 1060)
    assert registry.get(a.keyid).status is S.ROTATED
    assert [e.keyid for e in registry.audit_entries() if e.event == "revoked"] == [b.keyid]
    # revoking the rotated key itself leaves its (active) successor alone
    d = registry.register(record("dave"))
    e = record("dave")
    registry.rotate(d.keyid, e, 2000, 600)
    registry.set_status(d.keyid, S.REVOKED, 2001)
    assert registry.get(e.keyid).status is S.ACTIVE


def test_expire_due(registry: Any) -> None:
    due = [
        registry.register(record(f"c{i}", status=s, expires_at=50))
        for i, s in enumerate([S.ACTIVE, S.PENDING, S.SUSPENDED])
    ]
    revoked = registry.register(record("r", status=S.REVOKED, expires_at=50))
    later = registry.register(record("l", expires_at=500))
    forever = registry.register(record("f"))
    assert due[0].effective_status(50) is S.EXPIRED and not due[0].is_usable(50)
    changed = registry.expire_due(60)
    assert sorted(r.keyid for r in changed) == sorted(r.keyid for r in due)
    assert all(registry.get(r.keyid).status is S.EXPIRED for r in due)
    for untouched in (revoked, later, forever):
        assert registry.get(untouched.keyid) == untouched
    assert registry.expire_due(60) == []
    expired_events = [e for e in registry.audit_entries() if e.event == "expired"]
    assert len(expired_events) == 3 and all(e.actor == "system" for e in expired_events)


def test_concurrent_registrations_lose_none(registry: Any) -> None:
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
    report = verify_chain(registry.audit_entries())
    assert report.count == 200


def test_compare_and_set_lets_one_writer_win(registry: Any) -> None:
    pending = registry.register(record("p", status=S.PENDING))
    outcomes: list[str] = []
    lock = threading.Lock()

    def approve() -> None:
        try:
            registry.set_status(pending.keyid, S.ACTIVE, 7, expected={S.PENDING})
            result = "ok"
        except df.RegistryError as exc:
            result = exc.reason.value
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=approve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["invalid_transition"] * 7 + ["ok"]
    assert [e.event for e in registry.audit_entries()].count("approved") == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)  # memory: one process only
def test_two_instances_share_state(backend: Backend) -> None:
    first, second = backend.open(), backend.open()
    r = first.register(record("alice"))
    assert second.get(r.keyid) == r
    second.set_status(r.keyid, S.REVOKED, 9)
    assert first.get(r.keyid).status is S.REVOKED
    first.append_audit([AuditEvent(time=10, event="rejected", reason="bad_signature")])
    assert [e.seq for e in second.audit_entries()] == [1, 2, 3]
    verify_chain(second.audit_entries())


# -------------------------------------------------------------------- audit


def test_audit_log_records_every_change_and_chains(registry: Any) -> None:
    a = registry.register(record("alice", created_at=1), context=AuditContext(actor="self:a", request_id="req-1"))
    registry.set_status(a.keyid, S.SUSPENDED, 2, context=AuditContext(actor="admin:root", reason="check"))
    registry.set_status(a.keyid, S.ACTIVE, 3)
    p = registry.register(record("bob", status=S.PENDING, created_at=4), context=AuditContext(event="imported"))
    registry.set_status(p.keyid, S.ACTIVE, 5)
    registry.set_status(p.keyid, S.REVOKED, 6, context=AuditContext(reason="lost laptop"))
    appended = registry.append_audit(
        [
            AuditEvent(
                time=7, event="rejected", keyid=a.keyid, actor="127.0.0.1", reason="replayed_nonce", data={"path": "/x"}
            )
        ]
    )
    entries = registry.audit_entries()
    assert [(e.seq, e.event, e.time) for e in entries] == [
        (1, "registered", 1),
        (2, "suspended", 2),
        (3, "activated", 3),
        (4, "imported", 4),
        (5, "approved", 5),
        (6, "revoked", 6),
        (7, "rejected", 7),
    ]
    assert appended == entries[-1:]
    first = entries[0]
    assert (first.keyid, first.client_id, first.actor, first.request_id) == (a.keyid, "alice", "self:a", "req-1")
    assert entries[1].reason == "check" and entries[1].data == {"from": "active", "to": "suspended"}
    assert entries[5].reason == "lost laptop" and entries[5].actor == "system"
    assert entries[6].data == {"path": "/x"}
    assert entries[0].prev_hash == GENESIS_HASH
    report = verify_chain(entries)
    assert (report.count, report.head_seq, report.head_hash) == (7, 7, entries[-1].hash)
    assert registry.audit_entries(after=5) == entries[5:]
    assert registry.audit_entries(after=1, limit=2) == entries[1:3]
    assert registry.append_audit([]) == []


def _tamper(backend: Backend, registry: Any, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Change the stored log behind the registry's back (as an attacker with database access would)."""
    if backend.kind == "memory":
        raise AssertionError("use the list directly")
    if backend.kind == "sqlite":
        conn = sqlite3.connect(registry.path)
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        conn.execute(sql.replace("%s", "?"), params)
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True, options=f"-c search_path={registry.schema}") as conn:
        conn.execute("ALTER TABLE audit DISABLE TRIGGER USER")
        conn.execute(sql, params)
        conn.execute("ALTER TABLE audit ENABLE TRIGGER USER")


@pytest.mark.parametrize("attack", ["edit", "remove", "reorder", "truncate"])
def test_audit_chain_detects_tampering(backend: Backend, attack: str) -> None:
    registry = backend.open()
    a = registry.register(record("alice"))
    for when in range(5):
        registry.set_status(
            a.keyid, S.SUSPENDED if when % 2 == 0 else S.ACTIVE, 10 + when, context=AuditContext(reason="r")
        )
    entries = registry.audit_entries()
    head = verify_chain(entries).head_hash
    if backend.kind == "memory":
        log = registry._audit
        if attack == "edit":
            log[2] = dataclasses.replace(log[2], reason="nothing to see")
        elif attack == "remove":
            del log[2]
        elif attack == "reorder":
            log[2], log[3] = log[3], log[2]
        else:
            del log[-1]
    elif attack == "edit":
        _tamper(backend, registry, "UPDATE audit SET reason = %s WHERE seq = 3", ("nothing to see",))
    elif attack == "remove":
        _tamper(backend, registry, "DELETE FROM audit WHERE seq = 3")
    elif attack == "reorder":  # swap the contents of entries 3 and 4, keeping their seq numbers
        _tamper(backend, registry, "UPDATE audit SET seq = -seq WHERE seq IN (3, 4)")
        _tamper(backend, registry, "UPDATE audit SET seq = 7 + seq WHERE seq IN (-3, -4)")
    else:
        _tamper(backend, registry, "DELETE FROM audit WHERE seq = 6")
    with pytest.raises(df.AuditChainError) as info:
        verify_chain(registry.audit_entries(), expect_head=head)
    expected_seq = {"edit": 3, "remove": 3, "reorder": 3, "truncate": None}[attack]
    assert info.value.seq == expected_seq, info.value.detail


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)  # memory: a list; the chain protects it
def test_audit_table_is_append_only(backend: Backend) -> None:
    registry = backend.open()
    registry.register(record("alice"))
    if backend.kind == "sqlite":
        conn = sqlite3.connect(registry.path)
        for statement in ("UPDATE audit SET reason = 'x'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(statement)
        conn.close()
        return
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True, options=f"-c search_path={registry.schema}") as conn:
        for statement in ("UPDATE audit SET reason = 'x'", "DELETE FROM audit", "TRUNCATE audit"):
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statement)


# ------------------------------------------------------------- compatibility


def test_testing_plugin_helpers_work_on_every_backend(backend: Backend, tmp_path: Path) -> None:
    factory = RegistryFactory(lambda: tmp_path)
    registry = backend.open() if backend.kind == "memory" else factory(backend.url)
    try:
        clock = FakeClock(1_800_000_000)
        keys = KeyFactory(registry, clock, unique_client_ids=True)
        key = keys("alice", scopes="read write", expires_in=60)
        assert key.record.expires_at == 1_800_000_060 and key.scopes == ("read", "write")
        key.set_status("suspended")
        assert key.status is S.SUSPENDED
        keys.revoke_all()
        assert key.status is S.REVOKED
    finally:
        factory.close()


class FirstContractRegistry:
    """A registry written against the first contract: register(record), set_status(keyid, status, now)."""

    blocking = False

    def __init__(self) -> None:
        self.inner = df.MemoryRegistry()

    def get(self, keyid: str) -> df.KeyRecord | None:
        return self.inner.get(keyid)

    def register(self, record: df.KeyRecord) -> df.KeyRecord:
        return self.inner.register(record)

    def set_status(self, keyid: str, status: KeyStatus, now: int) -> df.KeyRecord:
        return self.inner.set_status(keyid, status, now)

    def list(self, *, client_id: str | None = None, status: KeyStatus | None = None) -> list[df.KeyRecord]:
        return self.inner.list(client_id=client_id, status=status)

    def close(self) -> None:
        pass


def test_first_contract_registries_still_work_for_registration() -> None:
    registry = FirstContractRegistry()
    a = register_with(registry, record("alice"), AuditContext(actor="self"))
    assert registry.get(a.keyid) == a
    with pytest.raises(df.RegistryError) as info:
        register_with(registry, record("alice"), None, allow_existing_client=True)
    assert info.value.reason is df.Reason.CLIENT_ID_TAKEN
    revoked = set_status_with(registry, a.keyid, S.REVOKED, 5, None, {S.ACTIVE})
    assert revoked.status is S.REVOKED
    with pytest.raises(df.RegistryError) as info:
        set_status_with(registry, a.keyid, S.ACTIVE, 6, None, {S.SUSPENDED})
    assert info.value.reason is df.Reason.INVALID_TRANSITION


class PlainDictRegistry:
    """A first-contract registry that knows nothing of the revocation cascade: one dict, one record per key."""

    blocking = False

    def __init__(self, *records: df.KeyRecord) -> None:
        self.records = {r.keyid: r for r in records}

    def get(self, keyid: str) -> df.KeyRecord | None:
        return self.records.get(keyid)

    def set_status(self, keyid: str, status: KeyStatus, now: int) -> df.KeyRecord:
        self.records[keyid] = self.records[keyid].with_status(status, now)
        return self.records[keyid]


def test_first_contract_registries_get_the_revocation_cascade_from_set_status_with() -> None:
    new = record("carol", replaces=None)
    old = record("carol", status=S.ROTATED, rotated_at=10, overlap_until=610, replaced_by=new.keyid)
    new = dataclasses.replace(new, replaces=old.keyid)
    registry = PlainDictRegistry(old, new)
    set_status_with(registry, new.keyid, S.REVOKED, 11, None, {S.ACTIVE})
    assert registry.get(new.keyid).status is S.REVOKED and registry.get(old.keyid).status is S.REVOKED


# ---------------------------------------------------------------- migrations

V1_SQLITE = """
CREATE TABLE keys (keyid TEXT PRIMARY KEY, public_key BLOB NOT NULL UNIQUE, client_id TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '', scopes TEXT NOT NULL DEFAULT '[]', status TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER);
CREATE INDEX keys_client_id ON keys(client_id);
CREATE INDEX keys_status ON keys(status);
PRAGMA user_version = 1;
"""


def test_sqlite_migrates_a_version_1_database(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    old = record("alice", scopes=("read",), label="v1")
    conn = sqlite3.connect(path)
    conn.executescript(V1_SQLITE)
    conn.execute(
        "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (old.keyid, old.public_key, "alice", "v1", '["read"]', "active", 100, 100, None),
    )
    conn.commit()
    conn.close()
    registry = df.SQLiteRegistry(path)
    assert registry.get(old.keyid) == old
    registry.set_status(old.keyid, S.REVOKED, 200, context=AuditContext(reason="migrated"))
    assert registry.get(old.keyid).status_reason == "migrated"
    assert [e.event for e in registry.audit_entries()] == ["revoked"]
    registry.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()


def test_postgres_migrations_are_versioned(pg_schema: str) -> None:
    import psycopg

    from datafold_auth.registry.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresRegistry

    old = record("alice", scopes=("read",))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:  # a database at version 1
        conn.execute(f"CREATE SCHEMA {pg_schema}")
        conn.execute(f"SET search_path TO {pg_schema}")
        conn.execute("CREATE TABLE datafold_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ DEFAULT now())")
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO datafold_schema (version) VALUES (1)")
        conn.execute(
            "INSERT INTO keys (keyid, public_key, client_id, scopes, status, created_at, updated_at)"
            " VALUES (%s, %s, 'alice', %s, 'active', 100, 100)",
            (old.keyid, old.public_key, ["read"]),
        )
    registries = []
    errors: list[BaseException] = []

    def open_one() -> None:  # many instances start at once: each migration runs exactly once
        try:
            registries.append(df.open_registry(schema_url(pg_schema)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(registries) == 4
    registry = registries[0]
    assert isinstance(registry, PostgresRegistry) and registry.schema_version() == SCHEMA_VERSION
    assert registry.get(old.keyid) == old
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        versions = conn.execute(f"SELECT version FROM {pg_schema}.datafold_schema ORDER BY version").fetchall()  # noqa: S608
        assert versions == [(1,), (2,)]
        conn.execute(f"INSERT INTO {pg_schema}.datafold_schema (version) VALUES (99)")  # noqa: S608
    for r in registries:
        r.close()
    with pytest.raises(df.RegistryError, match="newer"):
        df.open_registry(schema_url(pg_schema))


def test_postgres_url_options_and_outage(pg_schema: str) -> None:
    from datafold_auth.registry.postgres import split_url

    conninfo, ours = split_url(f"postgres://u:p@h:5/db?sslmode=disable&schema={pg_schema}&pool_max=3")
    assert conninfo == "postgresql://u:p@h:5/db?sslmode=disable"
    assert ours == {"schema": pg_schema, "pool_max": "3"}
    with pytest.raises(df.RegistryError, match="invalid schema"):
        df.open_registry(POSTGRES_URL + "?schema=Bad-Name")
    with pytest.raises(df.RegistryError, match="pool_min"):
        df.open_registry(POSTGRES_URL + "?pool_max=many")
    with pytest.raises(df.RegistryError):  # nothing listens there: unavailable, never a crash
        df.open_registry("postgresql://postgres@127.0.0.1:1/test?pool_timeout=1")
    registry = df.open_registry(schema_url(pg_schema, pool_timeout="1"))
    registry.close()
    with pytest.raises(df.RegistryError) as info:  # a closed pool is an unavailable registry (503)
        registry.get("x" * 43)
    assert info.value.reason is df.Reason.REGISTRY_UNAVAILABLE


def test_sqlite_urls_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/operations.md: sqlite:relative.db is relative to the working directory, sqlite:/// starts an absolute path
    monkeypatch.chdir(tmp_path)
    relative = df.open_registry("sqlite:keys.db")
    absolute = df.open_registry(f"sqlite://{tmp_path}/abs.db")  # sqlite:///tmp/.../abs.db
    try:
        assert relative.path == Path("keys.db") and (tmp_path / "keys.db").exists()
        assert absolute.path == tmp_path / "abs.db" and absolute.path.is_absolute()
    finally:
        relative.close()
        absolute.close()
    from datafold_auth.registry.sqlite import path_from_url

    assert path_from_url("sqlite:///keys.db") == Path("/keys.db")
