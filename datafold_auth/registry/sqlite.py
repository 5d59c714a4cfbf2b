"""SQLite key registry: the embedded default (WAL mode, versioned schema)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import DatafoldAuthError, Reason, RegistryError
from .hookspecs import hookimpl
from .records import KeyRecord, KeyStatus

SCHEMA_VERSION = 1
"""Current schema version, kept in ``PRAGMA user_version``."""

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE keys (
        keyid       TEXT PRIMARY KEY,
        public_key  BLOB NOT NULL UNIQUE,
        client_id   TEXT NOT NULL,
        label       TEXT NOT NULL DEFAULT '',
        scopes      TEXT NOT NULL DEFAULT '[]',
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        expires_at  INTEGER
    );
    CREATE INDEX keys_client_id ON keys(client_id);
    CREATE INDEX keys_status ON keys(status);
    """,
}
_COLUMNS = "keyid, public_key, client_id, label, scopes, status, created_at, updated_at, expires_at"


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
        )
    except (TypeError, ValueError, DatafoldAuthError) as exc:  # JSONDecodeError and KeyFormatError are ValueErrors
        raise RegistryError(f"registry row for key {str(row[0])[:64]!r} is damaged: {type(exc).__name__}") from None


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
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise RegistryError(f"cannot prepare registry database {self.path}: {exc}") from None

    def get(self, keyid: str) -> KeyRecord | None:
        """See :meth:`datafold_auth.registry.KeyRegistry.get`."""
        try:
            sql = f"SELECT {_COLUMNS} FROM keys WHERE keyid = ?"  # noqa: S608 (constant columns)
            row = self._conn().execute(sql, (keyid,)).fetchone()
        except sqlite3.Error as exc:
            raise RegistryError(f"registry lookup failed: {exc}") from None
        return None if row is None else _row_to_record(row)

    def register(self, record: KeyRecord) -> KeyRecord:
        """See :meth:`datafold_auth.registry.KeyRegistry.register`."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT 1 FROM keys WHERE keyid = ?", (record.keyid,)).fetchone():
                    raise RegistryError(f"key {record.keyid} is already registered", Reason.DUPLICATE_KEY)
                if conn.execute("SELECT 1 FROM keys WHERE client_id = ? LIMIT 1", (record.client_id,)).fetchone():
                    raise RegistryError(f"client_id {record.client_id!r} already has keys", Reason.CLIENT_ID_TAKEN)
                conn.execute(
                    f"INSERT INTO keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        record.keyid,
                        record.public_key,
                        record.client_id,
                        record.label,
                        json.dumps(list(record.scopes)),
                        record.status.value,
                        record.created_at,
                        record.updated_at,
                        record.expires_at,
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise RegistryError(f"registration write failed: {exc}") from None
        return record

    def set_status(self, keyid: str, status: KeyStatus, now: int) -> KeyRecord:
        """See :meth:`datafold_auth.registry.KeyRegistry.set_status`."""
        try:
            cur = self._conn().execute(
                "UPDATE keys SET status = ?, updated_at = ? WHERE keyid = ?", (KeyStatus(status).value, now, keyid)
            )
        except sqlite3.Error as exc:
            raise RegistryError(f"status update failed: {exc}") from None
        if cur.rowcount == 0:
            raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
        record = self.get(keyid)
        if record is None:  # deleted concurrently
            raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
        return record

    def list(self, *, client_id: str | None = None, status: KeyStatus | None = None) -> list[KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.list`."""
        sql, args = f"SELECT {_COLUMNS} FROM keys WHERE 1=1", []  # noqa: S608
        if client_id is not None:
            sql += " AND client_id = ?"
            args.append(client_id)
        if status is not None:
            sql += " AND status = ?"
            args.append(KeyStatus(status).value)
        try:
            rows = self._conn().execute(sql + " ORDER BY created_at, keyid", args).fetchall()
        except sqlite3.Error as exc:
            raise RegistryError(f"registry listing failed: {exc}") from None
        return [_row_to_record(r) for r in rows]

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
