"""SQLite key registry: the embedded default (WAL mode, versioned schema)."""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..audit import GENESIS_HASH, AuditContext, AuditEntry, AuditEvent, canonical_json, chain, publish
from ..errors import DatafoldAuthError, Reason, RegistryError
from . import base
from .hookspecs import hookimpl
from .records import KeyRecord, KeyStatus

SCHEMA_VERSION = 2
"""Current schema version, kept in ``PRAGMA user_version``."""

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE keys (
            keyid       TEXT PRIMARY KEY,
            public_key  BLOB NOT NULL UNIQUE,
            client_id   TEXT NOT NULL,
            label       TEXT NOT NULL DEFAULT '',
            scopes      TEXT NOT NULL DEFAULT '[]',
            status      TEXT NOT NULL,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL,
            expires_at  INTEGER
        )""",
        "CREATE INDEX keys_client_id ON keys(client_id)",
        "CREATE INDEX keys_status ON keys(status)",
    ],
    # v2: rotation fields, status reasons, the hash-chained audit log (append-only by triggers).
    2: [
        "ALTER TABLE keys ADD COLUMN replaces TEXT",
        "ALTER TABLE keys ADD COLUMN replaced_by TEXT",
        "ALTER TABLE keys ADD COLUMN rotated_at INTEGER",
        "ALTER TABLE keys ADD COLUMN overlap_until INTEGER",
        "ALTER TABLE keys ADD COLUMN status_reason TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX keys_expires_at ON keys(expires_at) WHERE expires_at IS NOT NULL",
        """CREATE TABLE audit (
            seq         INTEGER PRIMARY KEY,
            time        INTEGER NOT NULL,
            event       TEXT NOT NULL,
            keyid       TEXT,
            client_id   TEXT,
            actor       TEXT NOT NULL,
            reason      TEXT NOT NULL,
            request_id  TEXT,
            data        TEXT NOT NULL,
            prev_hash   TEXT NOT NULL,
            hash        TEXT NOT NULL
        )""",
        "CREATE INDEX audit_keyid ON audit(keyid)",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
           BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    ],
}
_COLUMNS = (
    "keyid, public_key, client_id, label, scopes, status, created_at, updated_at, expires_at,"
    " replaces, replaced_by, rotated_at, overlap_until, status_reason"
)
_AUDIT_COLUMNS = "seq, time, event, keyid, client_id, actor, reason, request_id, data, prev_hash, hash"
_SELECT = f"SELECT {_COLUMNS} FROM keys"  # noqa: S608  # nosec B608  # constant text; values are bound parameters


def _row_to_record(row: tuple[Any, ...]) -> KeyRecord:
    """The record of a row; a damaged row is a :class:`RegistryError` (fail closed, 503), never a
    500 or a record with made-up fields."""
    try:
        scopes = json.loads(row[4])
        if not isinstance(scopes, list):
            raise TypeError("scopes is not a JSON array")
        return KeyRecord(
            keyid=row[0],
            public_key=bytes(row[1]),
            client_id=row[2],
            label=row[3],
            scopes=tuple(scopes),
            status=KeyStatus(row[5]),
            created_at=row[6],
            updated_at=row[7],
            expires_at=row[8],
            replaces=row[9],
            replaced_by=row[10],
            rotated_at=row[11],
            overlap_until=row[12],
            status_reason=row[13],
        )
    except (TypeError, ValueError, DatafoldAuthError) as exc:  # JSONDecodeError and KeyFormatError are ValueErrors
        raise RegistryError(f"registry row for key {str(row[0])[:64]!r} is damaged: {type(exc).__name__}") from None


def _record_values(record: KeyRecord) -> tuple[Any, ...]:
    return (
        record.keyid,
        record.public_key,
        record.client_id,
        record.label,
        json.dumps(list(record.scopes)),
        record.status.value,
        record.created_at,
        record.updated_at,
        record.expires_at,
        record.replaces,
        record.replaced_by,
        record.rotated_at,
        record.overlap_until,
        record.status_reason,
    )


def _row_to_entry(row: tuple[Any, ...]) -> AuditEntry:
    """An audit entry from its row (the hash is not checked here: :func:`datafold_auth.audit.verify_chain` does)."""
    try:
        data = json.loads(row[8])
        return AuditEntry(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], data, row[9], row[10])
    except ValueError:
        raise RegistryError(f"audit entry {row[0]} is damaged") from None


def _entry_values(entry: AuditEntry) -> tuple[Any, ...]:
    data = canonical_json(dict(entry.data)).decode("utf-8")
    return (
        entry.seq,
        entry.time,
        entry.event,
        entry.keyid,
        entry.client_id,
        entry.actor,
        entry.reason,
        entry.request_id,
        data,
        entry.prev_hash,
        entry.hash,
    )


class SQLiteRegistry:
    """A key registry in one SQLite file, safe for many threads and processes.

    The database runs in WAL mode with a busy timeout so that concurrent
    writers wait instead of failing. Each thread gets its own connection.
    The schema is created or migrated on open (``PRAGMA user_version``).

    Args:
        path: the database file (its folder is created with mode 0700).
        timeout: seconds a writer waits for the lock (default 30).

    Raises:
        RegistryError: the file cannot be opened or is from a newer schema.
    """

    blocking = True

    def __init__(self, path: str | os.PathLike[str], timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._migrate()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
                self._enable_wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise RegistryError(f"cannot open registry database {self.path}: {exc}") from None
            self._local.conn = conn
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # Switching a new file to WAL answers SQLITE_BUSY at once (the busy
        # timeout does not apply) while another process does the same: retry
        # within the configured timeout.
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _migrate(self) -> None:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                raise RegistryError(f"registry schema {version} is newer than this software ({SCHEMA_VERSION})")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise RegistryError(f"cannot prepare registry database {self.path}: {exc}") from None

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: writers queue on the busy timeout); rolled back on any error."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise RegistryError(f"{what} failed: {exc}") from None

    @staticmethod
    def _append(conn: sqlite3.Connection, events: Sequence[AuditEvent]) -> builtins.list[AuditEntry]:
        if not events:
            return []
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        entries = chain(events, last[0] if last else 0, last[1] if last else GENESIS_HASH)
        conn.executemany(
            f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608  # nosec B608  # constants only
            [_entry_values(e) for e in entries],
        )
        return entries

    @staticmethod
    def _insert(conn: sqlite3.Connection, record: KeyRecord) -> None:
        conn.execute(
            f"INSERT INTO keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608  # nosec B608  # constants only
            _record_values(record),
        )

    @staticmethod
    def _update(conn: sqlite3.Connection, record: KeyRecord) -> None:
        conn.execute(
            "UPDATE keys SET status = ?, updated_at = ?, replaced_by = ?, rotated_at = ?, overlap_until = ?,"
            " status_reason = ? WHERE keyid = ?",
            (
                record.status.value,
                record.updated_at,
                record.replaced_by,
                record.rotated_at,
                record.overlap_until,
                record.status_reason,
                record.keyid,
            ),
        )

    @staticmethod
    def _get(conn: sqlite3.Connection, keyid: str) -> KeyRecord | None:
        row = conn.execute(_SELECT + " WHERE keyid = ?", (keyid,)).fetchone()
        return None if row is None else _row_to_record(row)

    def get(self, keyid: str) -> KeyRecord | None:
        """See :meth:`datafold_auth.registry.KeyRegistry.get`."""
        try:
            row = self._conn().execute(_SELECT + " WHERE keyid = ?", (keyid,)).fetchone()
        except sqlite3.Error as exc:
            raise RegistryError(f"registry lookup failed: {exc}") from None
        return None if row is None else _row_to_record(row)

    def register(
        self, record: KeyRecord, *, context: AuditContext | None = None, allow_existing_client: bool = False
    ) -> KeyRecord:
        """See :meth:`datafold_auth.registry.KeyRegistry.register`."""
        with self._write("registration write") as conn:
            if conn.execute("SELECT 1 FROM keys WHERE keyid = ?", (record.keyid,)).fetchone():
                raise RegistryError(f"key {record.keyid} is already registered", Reason.DUPLICATE_KEY)
            if (
                not allow_existing_client
                and conn.execute("SELECT 1 FROM keys WHERE client_id = ? LIMIT 1", (record.client_id,)).fetchone()
            ):
                raise RegistryError(f"client_id {record.client_id!r} already has keys", Reason.CLIENT_ID_TAKEN)
            self._insert(conn, record)
            entries = self._append(conn, [base.register_event(record, context)])
        publish(entries)
        return record

    def set_status(
        self,
        keyid: str,
        status: KeyStatus,
        now: int,
        *,
        context: AuditContext | None = None,
        expected: Collection[KeyStatus] | None = None,
    ) -> KeyRecord:
        """See :meth:`datafold_auth.registry.KeyRegistry.set_status`."""
        status = KeyStatus(status)
        with self._write("status update") as conn:
            record = self._get(conn, keyid)
            if record is None:
                raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
            base.check_expected(record, expected, status)
            updated, event = base.change_status(record, status, now, context)
            self._update(conn, updated)
            events = [event]
            if status is KeyStatus.REVOKED:
                for previous, cascade in base.revoked_predecessors(updated, now, context, partial(self._get, conn)):
                    self._update(conn, previous)
                    events.append(cascade)
            entries = self._append(conn, events)
        publish(entries)
        return updated

    def rotate(
        self, keyid: str, new: KeyRecord, now: int, overlap: int, *, context: AuditContext | None = None
    ) -> tuple[KeyRecord, KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.rotate`."""
        with self._write("rotation") as conn:
            old = self._get(conn, keyid)
            if old is None:
                raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
            if conn.execute("SELECT 1 FROM keys WHERE keyid = ?", (new.keyid,)).fetchone():
                raise RegistryError(f"key {new.keyid} is already registered", Reason.DUPLICATE_KEY)
            rotated, successor, events = base.rotation(old, new, now, overlap, context)
            self._update(conn, rotated)
            self._insert(conn, successor)
            entries = self._append(conn, events)
        publish(entries)
        return rotated, successor

    def _read(
        self, what: str, sql: str, args: Sequence[Any], convert: Callable[[tuple[Any, ...]], Any]
    ) -> builtins.list[Any]:
        try:
            rows = self._conn().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise RegistryError(f"{what} failed: {exc}") from None
        return [convert(r) for r in rows]

    def list(
        self,
        *,
        client_id: str | None = None,
        status: KeyStatus | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.list`."""
        sql, args = base.list_query(
            _SELECT, "?", client_id=client_id, status=status, limit=limit, offset=offset, no_limit=-1
        )
        return self._read("registry listing", sql, args, _row_to_record)

    def counts(self) -> dict[str, int]:
        """See :meth:`datafold_auth.registry.KeyRegistry.counts`."""
        rows = self._read("count", "SELECT status, COUNT(*) FROM keys GROUP BY status", (), tuple)
        return base.all_counts({status: count for status, count in rows})

    def expire_due(self, now: int, *, context: AuditContext | None = None) -> builtins.list[KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.expire_due`."""
        with self._write("expiry sweep") as conn:
            rows = conn.execute(
                _SELECT + " WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY created_at, keyid", (now,)
            ).fetchall()
            changed: builtins.list[KeyRecord] = []
            events: builtins.list[AuditEvent] = []
            for record in map(_row_to_record, rows):
                if base.is_due(record, now):
                    updated, event = base.change_status(record, KeyStatus.EXPIRED, now, context)
                    self._update(conn, updated)
                    changed.append(updated)
                    events.append(event)
            entries = self._append(conn, events)
        publish(entries)
        return changed

    def append_audit(self, events: Sequence[AuditEvent]) -> builtins.list[AuditEntry]:
        """See :meth:`datafold_auth.registry.KeyRegistry.append_audit`."""
        with self._write("audit append") as conn:
            entries = self._append(conn, events)
        publish(entries)
        return entries

    def audit_entries(self, *, after: int = 0, limit: int | None = None) -> builtins.list[AuditEntry]:
        """See :meth:`datafold_auth.registry.KeyRegistry.audit_entries`."""
        base.check_page(limit, after)
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?"  # noqa: S608  # nosec B608  # constants only
        return self._read("audit read", sql, (after, -1 if limit is None else limit), _row_to_entry)

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __repr__(self) -> str:
        return f"SQLiteRegistry({str(self.path)!r})"


def path_from_url(url: str) -> Path:
    """``sqlite:///abs/path.db`` -> ``/abs/path.db``; ``sqlite:relative.db`` -> ``relative.db``."""
    parts = urlsplit(url)
    path = unquote(parts.netloc + parts.path) if parts.netloc else unquote(parts.path)
    if not path:
        raise RegistryError("a sqlite URL needs a path, e.g. sqlite:///var/lib/datafold/keys.db")
    return Path(path)


class _Plugin:
    @hookimpl
    def datafold_auth_open_registry(self, url: str, options: dict[str, Any]) -> SQLiteRegistry | None:
        if url.split(":", 1)[0] != "sqlite":
            return None
        return SQLiteRegistry(path_from_url(url), **options)


plugin = _Plugin()
"""The built-in ``sqlite:`` plugin."""
