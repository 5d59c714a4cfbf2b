"""PostgreSQL key registry: one registry for many app instances on many machines.

Needs the ``postgres`` extra (``pip install 'datafold-auth[postgres]'``:
psycopg 3 with its connection pool). URL::

    postgresql://user:password@host:5432/dbname?schema=datafold&pool_min=1&pool_max=10&pool_timeout=5

``schema`` (default ``public``) holds the tables; ``pool_*`` size the
connection pool (``pool_timeout``: seconds a request waits for a connection
before the registry counts as unavailable, answered 503). Every other query
parameter goes to libpq (``sslmode``, ``connect_timeout``, ...).

Schema versions are rows of ``datafold_schema`` (one per applied migration);
migrations run on open, inside one transaction holding an advisory lock, so
many instances starting at once apply each migration exactly once. A newer
schema than this software knows is refused.

Writes serialize on the one row of ``audit_head`` (``SELECT ... FOR UPDATE``):
that keeps the audit hash chain linear across instances and makes the
client_id check of a registration race-free. The audit table refuses
``UPDATE``, ``DELETE`` and ``TRUNCATE`` by trigger (the hash chain detects
what a superuser might still change).
"""

from __future__ import annotations

import builtins
import math
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

from ..audit import GENESIS_HASH, AuditContext, AuditEntry, AuditEvent, canonical_json, chain, publish
from ..errors import DatafoldAuthError, Reason, RegistryError
from ..urloptions import option_problem, split_query_url
from . import base
from .hookspecs import hookimpl
from .records import KeyRecord, KeyStatus

SCHEMA_VERSION = 2
"""Newest migration this software applies (rows of ``datafold_schema``)."""
SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""Accepted schema names (unquoted lowercase identifiers)."""

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE keys (
            keyid       TEXT PRIMARY KEY,
            public_key  BYTEA NOT NULL UNIQUE,
            client_id   TEXT NOT NULL,
            label       TEXT NOT NULL DEFAULT '',
            scopes      TEXT[] NOT NULL DEFAULT '{}',
            status      TEXT NOT NULL,
            created_at  BIGINT NOT NULL,
            updated_at  BIGINT NOT NULL,
            expires_at  BIGINT
        )""",
        "CREATE INDEX keys_client_id ON keys(client_id)",
        "CREATE INDEX keys_status ON keys(status)",
    ],
    2: [
        "ALTER TABLE keys ADD COLUMN replaces TEXT",
        "ALTER TABLE keys ADD COLUMN replaced_by TEXT",
        "ALTER TABLE keys ADD COLUMN rotated_at BIGINT",
        "ALTER TABLE keys ADD COLUMN overlap_until BIGINT",
        "ALTER TABLE keys ADD COLUMN status_reason TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX keys_expires_at ON keys(expires_at) WHERE expires_at IS NOT NULL",
        """CREATE TABLE audit (
            seq         BIGINT PRIMARY KEY,
            time        BIGINT NOT NULL,
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
        """CREATE TABLE audit_head (
            id    INTEGER PRIMARY KEY CHECK (id = 1),
            seq   BIGINT NOT NULL,
            hash  TEXT NOT NULL
        )""",
        f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')",  # noqa: S608  # nosec B608  # constants only
        """CREATE FUNCTION datafold_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$""",
        """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
           FOR EACH ROW EXECUTE FUNCTION datafold_audit_append_only()""",
        """CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
           FOR EACH STATEMENT EXECUTE FUNCTION datafold_audit_append_only()""",
    ],
}
"""The schema, one list of statements per version (applied in order, each version once)."""

_COLUMNS = (
    "keyid, public_key, client_id, label, scopes, status, created_at, updated_at, expires_at,"
    " replaces, replaced_by, rotated_at, overlap_until, status_reason"
)
_SELECT = f"SELECT {_COLUMNS} FROM keys"  # noqa: S608  # nosec B608  # constant text; values are bound parameters
_INSERT = f"INSERT INTO keys ({_COLUMNS}) VALUES ({', '.join(['%s'] * 14)})"  # noqa: S608  # nosec B608  # constants only
_UPDATE = (
    "UPDATE keys SET status = %s, updated_at = %s, replaced_by = %s, rotated_at = %s, overlap_until = %s,"
    " status_reason = %s WHERE keyid = %s"
)
_AUDIT_COLUMNS = "seq, time, event, keyid, client_id, actor, reason, request_id, data, prev_hash, hash"
_POOL_OPTIONS = {"schema", "pool_min", "pool_max", "pool_timeout"}


def _record(row: Sequence[Any]) -> KeyRecord:
    try:
        return KeyRecord(
            keyid=row[0],
            public_key=bytes(row[1]),
            client_id=row[2],
            label=row[3],
            scopes=tuple(row[4]),
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
    except (TypeError, ValueError, DatafoldAuthError) as exc:
        raise RegistryError(f"registry row for key {str(row[0])[:64]!r} is damaged: {type(exc).__name__}") from None


def _values(record: KeyRecord) -> tuple[Any, ...]:
    return (
        record.keyid,
        record.public_key,
        record.client_id,
        record.label,
        list(record.scopes),
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


def _update_values(record: KeyRecord) -> tuple[Any, ...]:
    return (
        record.status.value,
        record.updated_at,
        record.replaced_by,
        record.rotated_at,
        record.overlap_until,
        record.status_reason,
        record.keyid,
    )


def _entry(row: Sequence[Any]) -> AuditEntry:
    import json

    try:
        data = json.loads(row[8])
    except ValueError:
        raise RegistryError(f"audit entry {row[0]} is damaged") from None
    return AuditEntry(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], data, row[9], row[10])


def _libpq_parameters() -> frozenset[str]:
    """The connection parameters the installed libpq knows (``sslmode``, ``connect_timeout``, ...)."""
    import psycopg.pq

    return frozenset(option.keyword.decode("ascii") for option in psycopg.pq.Conninfo.get_defaults())


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``(libpq conninfo URL, {schema, pool_min, pool_max, pool_timeout})`` from a registry URL.

    ``postgres://`` is accepted as ``postgresql://``. The other query options go to libpq as they
    were written (libpq decodes ``%XX`` but reads ``+`` as itself), and ``postgresql:///db`` (no host:
    the local socket) keeps its ``//``.
    """
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    rest: list[str] = []
    for raw in parts.query.split("&"):
        name, _, value = raw.partition("=")
        if unquote(name) in _POOL_OPTIONS:
            ours[unquote(name)] = unquote(value)
        elif raw:
            rest.append(raw)
    query = "&".join(rest)
    conninfo = f"postgresql://{parts.netloc}{parts.path}" + (f"?{query}" if query else "")
    return conninfo, ours


class PostgresRegistry:
    """A key registry in PostgreSQL, shared by any number of app instances.

    Args:
        conninfo: a libpq connection string or ``postgresql://`` URL (without the pool options).
        schema: the schema holding the tables (created if missing; default ``public``).
        pool_min, pool_max: connection pool size (defaults 1 and 10).
        pool_timeout: seconds to wait for a pooled connection (default 5).
        connect_timeout: seconds to wait for a new connection (default: the connection string's
            ``connect_timeout``, else 5).

    Raises:
        RegistryError: psycopg is not installed, the database cannot be reached, or the schema is
            newer than this software; with reason ``invalid_configuration`` (before any connection
            is tried): the schema name is invalid, a pool option is out of range, or libpq cannot
            parse ``conninfo`` (an unknown parameter, say).
    """

    blocking = True

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        pool_min: int = 1,
        pool_max: int = 10,
        pool_timeout: float = 5.0,
        connect_timeout: int | None = None,
    ) -> None:
        try:
            import psycopg
            import psycopg.conninfo
            from psycopg_pool import ConnectionPool
        except ImportError:  # pragma: no cover - depends on the installation
            raise RegistryError("the PostgreSQL registry needs: pip install 'datafold-auth[postgres]'") from None
        bad = Reason.INVALID_CONFIGURATION
        if not SCHEMA_RE.fullmatch(schema):
            raise RegistryError(f"invalid schema name {schema!r} (lowercase letters, digits, _)", bad)
        if not 0 <= pool_min <= pool_max or pool_max < 1:
            raise RegistryError(
                f"pool sizes must satisfy 0 <= pool_min <= pool_max, pool_max >= 1 (not {pool_min}, {pool_max})", bad
            )
        try:  # libpq refuses an unknown parameter only when it connects: after the pool timeout
            params = psycopg.conninfo.conninfo_to_dict(conninfo)
        except (psycopg.ProgrammingError, UnicodeError):
            # not libpq's text: it may quote part of the string, password included
            raise RegistryError("invalid PostgreSQL connection string (libpq cannot parse it)", bad) from None
        if connect_timeout is None:  # the connection string's, else 5 (the pool's keywords would override it)
            try:
                connect_timeout = int(str(params.get("connect_timeout", 5)))
            except ValueError:
                raise RegistryError("connect_timeout must be a whole number of seconds", bad) from None
        if not (math.isfinite(pool_timeout) and pool_timeout > 0) or connect_timeout < 1:
            raise RegistryError("pool_timeout must be a positive number of seconds and connect_timeout at least 1", bad)
        self._psycopg = psycopg
        self.schema = schema
        self.conninfo = conninfo
        # the connection string's own options (e.g. "-c statement_timeout=2000") are kept: the
        # pool's keywords would replace them
        options = f"-c search_path={schema}"
        if params.get("options"):
            options = f"{params['options']} {options}"
        self._pool = ConnectionPool(
            conninfo,
            min_size=pool_min,
            max_size=pool_max,
            timeout=pool_timeout,
            kwargs={"autocommit": True, "options": options, "connect_timeout": connect_timeout},
            # a connection is checked (one empty round trip) before use, so that a database
            # restart that left dead connections in the pool costs no 503 once it is back
            check=ConnectionPool.check_connection,
            open=False,
            name=f"datafold-{schema}",
        )
        try:
            self._pool.open(wait=True, timeout=max(pool_timeout, connect_timeout))
            self._migrate()
        except RegistryError:
            self._pool.close()
            raise
        except Exception as exc:
            self._pool.close()
            raise RegistryError(f"cannot open the PostgreSQL registry: {type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------ plumbing

    @contextmanager
    def _connection(self, what: str) -> Iterator[Any]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except self._psycopg.errors.UniqueViolation:
            raise RegistryError("the key is already registered", Reason.DUPLICATE_KEY) from None
        except self._psycopg.Error as exc:  # includes the pool's PoolTimeout: the backend is unavailable
            raise RegistryError(f"{what} failed: {type(exc).__name__}: {exc}") from None

    @contextmanager
    def _write(self, what: str) -> Iterator[tuple[Any, tuple[int, str]]]:
        """A transaction holding the ``audit_head`` row lock; yields ``(conn, (last_seq, last_hash))``."""
        with self._connection(what) as conn, conn.transaction():
            head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE").fetchone()
            yield conn, (head[0], head[1])

    def _migrate(self) -> None:
        from psycopg import sql

        with self._connection("schema migration") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"datafold_auth migrate {self.schema}",))
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS datafold_schema ("
                " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM datafold_schema").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RegistryError(f"registry schema {version} is newer than this software ({SCHEMA_VERSION})")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute("INSERT INTO datafold_schema (version) VALUES (%s)", (target,))

    def schema_version(self) -> int:
        """The newest applied migration."""
        with self._connection("schema read") as conn:
            return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM datafold_schema").fetchone()[0])

    @staticmethod
    def _append(conn: Any, head: tuple[int, str], events: Sequence[AuditEvent]) -> builtins.list[AuditEntry]:
        if not events:
            return []
        entries = chain(events, head[0], head[1])
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES ({', '.join(['%s'] * 11)})",  # noqa: S608  # nosec B608  # constants only
                [
                    (
                        e.seq,
                        e.time,
                        e.event,
                        e.keyid,
                        e.client_id,
                        e.actor,
                        e.reason,
                        e.request_id,
                        canonical_json(dict(e.data)).decode("utf-8"),
                        e.prev_hash,
                        e.hash,
                    )
                    for e in entries
                ],
            )
        conn.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (entries[-1].seq, entries[-1].hash))
        return entries

    @staticmethod
    def _locked(conn: Any, keyid: str) -> KeyRecord | None:
        row = conn.execute(_SELECT + " WHERE keyid = %s FOR UPDATE", (keyid,)).fetchone()
        return None if row is None else _record(row)

    # ---------------------------------------------------------- contract

    def get(self, keyid: str) -> KeyRecord | None:
        """See :meth:`datafold_auth.registry.KeyRegistry.get`."""
        with self._connection("registry lookup") as conn:
            row = conn.execute(_SELECT + " WHERE keyid = %s", (keyid,)).fetchone()
        return None if row is None else _record(row)

    def register(
        self, record: KeyRecord, *, context: AuditContext | None = None, allow_existing_client: bool = False
    ) -> KeyRecord:
        """See :meth:`datafold_auth.registry.KeyRegistry.register`."""
        with self._write("registration write") as (conn, head):
            if conn.execute("SELECT 1 FROM keys WHERE keyid = %s", (record.keyid,)).fetchone():
                raise RegistryError(f"key {record.keyid} is already registered", Reason.DUPLICATE_KEY)
            if (
                not allow_existing_client
                and conn.execute("SELECT 1 FROM keys WHERE client_id = %s LIMIT 1", (record.client_id,)).fetchone()
            ):
                raise RegistryError(f"client_id {record.client_id!r} already has keys", Reason.CLIENT_ID_TAKEN)
            conn.execute(_INSERT, _values(record))
            entries = self._append(conn, head, [base.register_event(record, context)])
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
        with self._write("status update") as (conn, head):
            record = self._locked(conn, keyid)
            if record is None:
                raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
            base.check_expected(record, expected, status)
            updated, event = base.change_status(record, status, now, context)
            conn.execute(_UPDATE, _update_values(updated))
            events = [event]
            if status is KeyStatus.REVOKED:
                for previous, cascade in base.revoked_predecessors(updated, now, context, partial(self._locked, conn)):
                    conn.execute(_UPDATE, _update_values(previous))
                    events.append(cascade)
            entries = self._append(conn, head, events)
        publish(entries)
        return updated

    def rotate(
        self, keyid: str, new: KeyRecord, now: int, overlap: int, *, context: AuditContext | None = None
    ) -> tuple[KeyRecord, KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.rotate`."""
        with self._write("rotation") as (conn, head):
            old = self._locked(conn, keyid)
            if old is None:
                raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
            if conn.execute("SELECT 1 FROM keys WHERE keyid = %s", (new.keyid,)).fetchone():
                raise RegistryError(f"key {new.keyid} is already registered", Reason.DUPLICATE_KEY)
            rotated, successor, events = base.rotation(old, new, now, overlap, context)
            conn.execute(_UPDATE, _update_values(rotated))
            conn.execute(_INSERT, _values(successor))
            entries = self._append(conn, head, events)
        publish(entries)
        return rotated, successor

    def _read(
        self, what: str, sql: str, args: Sequence[Any], convert: Callable[[Sequence[Any]], Any]
    ) -> builtins.list[Any]:
        with self._connection(what) as conn:
            rows = conn.execute(sql, args).fetchall()
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
            _SELECT, "%s", client_id=client_id, status=status, limit=limit, offset=offset, no_limit=None
        )
        return self._read("registry listing", sql, args, _record)

    def counts(self) -> dict[str, int]:
        """See :meth:`datafold_auth.registry.KeyRegistry.counts`."""
        rows = self._read("count", "SELECT status, COUNT(*) FROM keys GROUP BY status", (), tuple)
        return base.all_counts({status: count for status, count in rows})

    def expire_due(self, now: int, *, context: AuditContext | None = None) -> builtins.list[KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.expire_due`."""
        with self._write("expiry sweep") as (conn, head):
            rows = conn.execute(
                _SELECT + " WHERE expires_at IS NOT NULL AND expires_at <= %s ORDER BY created_at, keyid FOR UPDATE",
                (now,),
            ).fetchall()
            changed: builtins.list[KeyRecord] = []
            events: builtins.list[AuditEvent] = []
            for record in map(_record, rows):
                if base.is_due(record, now):
                    updated, event = base.change_status(record, KeyStatus.EXPIRED, now, context)
                    conn.execute(_UPDATE, _update_values(updated))
                    changed.append(updated)
                    events.append(event)
            entries = self._append(conn, head, events)
        publish(entries)
        return changed

    def append_audit(self, events: Sequence[AuditEvent]) -> builtins.list[AuditEntry]:
        """See :meth:`datafold_auth.registry.KeyRegistry.append_audit`."""
        if not events:
            return []
        with self._write("audit append") as (conn, head):
            entries = self._append(conn, head, events)
        publish(entries)
        return entries

    def audit_entries(self, *, after: int = 0, limit: int | None = None) -> builtins.list[AuditEntry]:
        """See :meth:`datafold_auth.registry.KeyRegistry.audit_entries`."""
        base.check_page(limit, after)
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE seq > %s ORDER BY seq LIMIT %s"  # noqa: S608  # nosec B608  # constants only
        return self._read("audit read", sql, (after, limit), _entry)

    def close(self) -> None:
        """Close the connection pool."""
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresRegistry(schema={self.schema!r})"


def open_postgres(url: str, **options: Any) -> PostgresRegistry:
    """A :class:`PostgresRegistry` for a ``postgresql://`` URL (see the module docstring); ``options`` win.

    Raises:
        RegistryError: as :class:`PostgresRegistry`; with reason ``invalid_configuration``: a query
            option that is neither ours nor libpq's, or given twice (named, with the closest known
            name: :func:`datafold_auth.urloptions.option_problem`), or a pool option that is not a number.
    """
    try:
        parts, pairs = split_query_url(url, what="PostgreSQL URL")
    except ValueError as exc:
        raise RegistryError(str(exc), Reason.INVALID_CONFIGURATION) from None
    if parts.netloc.count("@") > 1:  # an '@' in the password: libpq would take the rest for the host
        raise RegistryError(
            "invalid PostgreSQL URL: percent-encode '@' in the user name or password (%40); not shown, "
            "it may hold a password",
            Reason.INVALID_CONFIGURATION,
        )
    names = [name for name, _ in pairs]
    # "ssl=true" is libpq's URI alias of sslmode=require (not among its connection parameters)
    problem = option_problem(names, _POOL_OPTIONS | _libpq_parameters() | {"ssl"}, what="PostgreSQL URL")
    if problem is not None:
        if problem.startswith("unknown"):
            problem += (
                f"; postgresql:// URLs take {', '.join(sorted(_POOL_OPTIONS))} and libpq's connection "
                "parameters (sslmode, connect_timeout, application_name, ...)"
            )
        raise RegistryError(problem, Reason.INVALID_CONFIGURATION)
    conninfo, ours = split_url(url)
    merged: dict[str, Any] = {}
    try:
        for name, value in ours.items():
            merged[name] = value if name == "schema" else (float(value) if name == "pool_timeout" else int(value))
    except ValueError:
        raise RegistryError(
            "pool_min, pool_max and pool_timeout must be numbers", Reason.INVALID_CONFIGURATION
        ) from None
    merged.update(options)
    return PostgresRegistry(conninfo, **merged)


class _Plugin:
    @hookimpl
    def datafold_auth_open_registry(self, url: str, options: dict[str, Any]) -> PostgresRegistry | None:
        if url.split(":", 1)[0] not in ("postgresql", "postgres"):
            return None
        return open_postgres(url, **options)


plugin = _Plugin()
"""The built-in ``postgresql://`` plugin."""

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresRegistry", "open_postgres", "split_url"]
