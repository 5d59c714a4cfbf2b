"""SQLite nonce store: replay protection shared by the processes of one machine."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import NonceStoreError
from ..registry.hookspecs import hookimpl

PURGE_EVERY = 1000
"""Expired nonces are deleted once every this many :meth:`SQLiteNonceStore.add` calls (per process)."""


class SQLiteNonceStore:
    """Nonces in one SQLite file (WAL mode), atomic across the threads and processes of one machine.

    :meth:`add` is a single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` statement:
    it inserts a new key, or takes over a key whose entry has expired, and
    changes nothing when a live entry exists (a replay). Expired rows are
    deleted now and then (every :data:`PURGE_EVERY` calls).

    Args:
        path: the database file (its folder is created with mode 0700).
        timeout: seconds a writer waits for the lock (default 5).

    Raises:
        NonceStoreError: the file cannot be opened.
    """

    blocking = True

    def __init__(self, path: str | os.PathLike[str], timeout: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        self._calls = 0
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        conn = self._conn()
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS nonces (key TEXT PRIMARY KEY, expires_at REAL NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS nonces_expires_at ON nonces(expires_at)")
        except sqlite3.Error as exc:
            raise NonceStoreError(f"cannot prepare nonce database {self.path}: {exc}") from None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
                deadline = time.monotonic() + self.timeout
                while True:  # a new file answers "locked" at once while another process switches it to WAL
                    try:
                        conn.execute("PRAGMA journal_mode=WAL")
                        break
                    except sqlite3.OperationalError as exc:
                        if "locked" not in str(exc) or time.monotonic() > deadline:
                            raise
                        time.sleep(0.01)
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise NonceStoreError(f"cannot open nonce database {self.path}: {exc}") from None
            self._local.conn = conn
        return conn

    def add(self, key: str, expires_at: float, now: float) -> bool:
        """See :meth:`datafold_auth.nonce.NonceStore.add`."""
        try:
            conn = self._conn()
            cur = conn.execute(
                "INSERT INTO nonces (key, expires_at) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at <= ?",
                (key, expires_at, now),
            )
            fresh = cur.rowcount == 1
            self._calls += 1
            if self._calls % PURGE_EVERY == 0:
                conn.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))
        except sqlite3.Error as exc:
            raise NonceStoreError(f"nonce store write failed: {exc}") from None
        return fresh

    def __len__(self) -> int:
        """Rows stored (live and not yet purged)."""
        return int(self._conn().execute("SELECT COUNT(*) FROM nonces").fetchone()[0])

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __repr__(self) -> str:
        return f"SQLiteNonceStore({str(self.path)!r})"


class _Plugin:
    @hookimpl
    def datafold_auth_open_nonce_store(self, url: str, options: dict[str, Any]) -> SQLiteNonceStore | None:
        if url.split(":", 1)[0] != "sqlite":
            return None
        from ..registry.sqlite import path_from_url

        return SQLiteNonceStore(path_from_url(url), **options)


plugin = _Plugin()
"""The built-in ``sqlite:`` nonce store plugin."""

__all__ = ["PURGE_EVERY", "SQLiteNonceStore"]
