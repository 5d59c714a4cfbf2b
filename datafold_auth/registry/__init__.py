"""Key registries: where a server looks up the public key for a ``keyid``.

A registry implements :class:`KeyRegistry`. Built in: :class:`MemoryRegistry`
(``memory://``), :class:`SQLiteRegistry` (``sqlite:///path.db``, the embedded
default), :class:`~datafold_auth.registry.postgres.PostgresRegistry`
(``postgresql://...``, many machines; needs the ``postgres`` extra) and the
read-only :class:`~datafold_auth.registry.remote.RemoteRegistry`
(``remote+https://host/register``: another instance's registration endpoint).
Other backends are plugins (see :mod:`.hookspecs`) found through the
``datafold_auth.registry`` entry-point group; :func:`open_registry` asks
every plugin in turn.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import pluggy

from ..audit import AuditContext, AuditEntry, AuditEvent
from ..errors import Reason, RegistryError
from . import hookspecs
from .memory import MemoryRegistry
from .records import TRANSITIONS, KeyRecord, KeyStatus, allowed_from
from .sqlite import SQLiteRegistry

ENTRY_POINT_GROUP = "datafold_auth.registry"


@runtime_checkable
class KeyLookup(Protocol):
    """The read side a verifier needs."""

    blocking: bool

    def get(self, keyid: str) -> KeyRecord | None:
        """The record for ``keyid``, or ``None`` if unknown.

        Raises:
            RegistryError: the backend is unavailable (answered as 503).
        """
        ...


@runtime_checkable
class KeyRegistry(KeyLookup, Protocol):
    """The full registry contract (what registration, rotation, the admin API and the audit log need).

    Every write is atomic together with the audit entries it appends, and the
    entries are handed to :func:`datafold_auth.audit.publish` after the commit.
    tests/test_conformance_registry.py checks a backend against this contract.
    """

    def register(
        self, record: KeyRecord, *, context: AuditContext | None = None, allow_existing_client: bool = False
    ) -> KeyRecord:
        """Store a new record atomically and append a ``registered`` audit entry (or ``context.event``).

        Args:
            record: the new key.
            context: who registers it and why (default: ``system``).
            allow_existing_client: add a key to a client_id that already has keys
                (another device of the same identity); otherwise that is refused.

        Raises:
            RegistryError: reason ``duplicate_key`` if the keyid exists,
                ``client_id_taken`` if the client_id already has keys (and not allowed).
        """
        ...

    def set_status(
        self,
        keyid: str,
        status: KeyStatus,
        now: int,
        *,
        context: AuditContext | None = None,
        expected: Collection[KeyStatus] | None = None,
    ) -> KeyRecord:
        """Change a key's status at ``now`` (epoch seconds) and append its audit entry; return the new record.

        The record's ``status_reason`` becomes ``context.reason``. Revoking a key also
        revokes, in the same transaction, the keys it replaced that are still ``rotated``
        inside their overlap, each with its own ``revoked`` audit entry
        (:func:`datafold_auth.registry.base.revoked_predecessors`).

        Args:
            expected: the statuses the key may have now (compare-and-set); ``None``: any.

        Raises:
            RegistryError: reason ``not_found`` for an unknown keyid,
                ``invalid_transition`` if the current status is not in ``expected``.
        """
        ...

    def rotate(
        self, keyid: str, new: KeyRecord, now: int, overlap: int, *, context: AuditContext | None = None
    ) -> tuple[KeyRecord, KeyRecord]:
        """Replace key ``keyid`` by ``new`` atomically (see :func:`datafold_auth.registry.base.rotation`).

        The old key becomes ``rotated`` and keeps verifying until ``now + overlap``;
        ``new`` is stored with ``replaces=keyid``. Appends ``rotated`` and ``registered``.

        Returns:
            ``(old, new)`` as stored.

        Raises:
            RegistryError: ``not_found``, ``duplicate_key`` (the new key exists),
                ``invalid_transition`` (the old key is not active), ``invalid_request``.
        """
        ...

    def list(
        self,
        *,
        client_id: str | None = None,
        status: KeyStatus | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[KeyRecord]:
        """Records matching the filters, oldest first (``created_at``, then keyid), paged by ``limit``/``offset``."""
        ...

    def counts(self) -> dict[str, int]:
        """How many keys have each stored status: every :class:`KeyStatus` value, zeros included."""
        ...

    def expire_due(self, now: int, *, context: AuditContext | None = None) -> builtins.list[KeyRecord]:
        """Move every key past its ``expires_at`` (status ``pending``, ``active``, ``suspended`` or
        ``rotated``) to ``expired``, with an ``expired`` audit entry each; return them."""
        ...

    def append_audit(self, events: Sequence[AuditEvent]) -> builtins.list[AuditEntry]:
        """Append ``events`` to the audit log atomically, numbered and chained; return the entries."""
        ...

    def audit_entries(self, *, after: int = 0, limit: int | None = None) -> builtins.list[AuditEntry]:
        """Audit entries with ``seq > after``, in order, at most ``limit``."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class _StrictPluginManager(pluggy.PluginManager):
    """pluggy's manager, refusing what pluggy would ignore without a word: a plugin attribute named
    ``datafold_auth_...`` that is not one of the hooks (a typo such as ``datafold_auth_authorise``),
    or a hook method not decorated with ``@hookimpl``. Either would leave, say, a permission hook
    silently unused."""

    def register(self, plugin: object, name: str | None = None) -> str | None:
        known = sorted(n for n in vars(hookspecs) if n.startswith(hookspecs.PROJECT + "_"))
        for attribute in dir(plugin):
            if not attribute.startswith(hookspecs.PROJECT + "_"):
                continue
            if attribute not in known:
                raise pluggy.PluginValidationError(
                    plugin,
                    f"{attribute!r} is not a datafold-auth hook (check its spelling; the hooks are {', '.join(known)})",
                )
            if self.parse_hookimpl_opts(plugin, attribute) is None:
                raise pluggy.PluginValidationError(
                    plugin, f"{attribute!r} is not decorated with datafold_auth.registry.hookspecs.hookimpl"
                )
        return super().register(plugin, name)


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The plugin manager with the built-in plugins and every installed entry point.

    Its ``register(plugin)`` raises ``pluggy.PluginValidationError`` for a ``datafold_auth_...``
    attribute that is not a hook (a misspelling) or not decorated with ``hookimpl``, and for a hook
    with a parameter the hook does not have (pluggy's own check).
    """
    from ..nonce import redis as redis_nonces
    from ..nonce import sqlite as sqlite_nonces
    from . import memory, postgres, remote, sqlite

    pm = _StrictPluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(memory.plugin, name="memory")
    pm.register(sqlite.plugin, name="sqlite")
    pm.register(postgres.plugin, name="postgresql")
    pm.register(remote.plugin, name="remote")
    pm.register(sqlite_nonces.plugin, name="sqlite-nonces")
    pm.register(redis_nonces.plugin, name="redis-nonces")
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def open_registry(url: str, **options: Any) -> KeyRegistry:
    """Open the registry named by ``url`` through the first plugin that handles it.

    Examples: ``memory://``, ``sqlite:///var/lib/datafold/keys.db``,
    ``postgresql://app@db.internal/datafold?schema=auth&pool_max=20``,
    ``remote+https://auth.example/register`` (read-only).

    Raises:
        RegistryError: no installed plugin handles the URL's scheme (reason
            ``invalid_configuration``), or the plugin's own errors (for ``postgresql://``: an
            unknown or repeated query option, ``invalid_configuration``; the database cannot be
            reached, ``registry_unavailable``).
    """
    registry = plugin_manager().hook.datafold_auth_open_registry(url=url, options=options)
    if registry is None:
        raise RegistryError(
            f"no registry plugin handles {url.split(':', 1)[0]!r} URLs "
            "(built in: memory://, sqlite:///path, postgresql://, remote+https://)",
            Reason.INVALID_CONFIGURATION,
        )
    return registry  # type: ignore[no-any-return]


def open_nonce_store(url: str, **options: Any) -> Any:
    """Open the nonce store named by ``url`` through the plugins.

    Built in: ``memory://``, ``sqlite:///path/nonces.db`` and ``redis://host:6379/0?prefix=app:``
    (needs the ``redis`` extra).

    Raises:
        RegistryError: no installed plugin handles the URL's scheme (reason ``invalid_configuration``).
        NonceStoreError: the plugin's own errors (for ``redis://``: an unknown or repeated query
            option or a bad timeout, reason ``invalid_configuration``).
    """
    store = plugin_manager().hook.datafold_auth_open_nonce_store(url=url, options=options)
    if store is None:
        raise RegistryError(
            f"no nonce store plugin handles {url.split(':', 1)[0]!r} URLs "
            "(built in: memory://, sqlite:///path, redis://, rediss://, unix:///path)",
            Reason.INVALID_CONFIGURATION,
        )
    return store


class CachedRegistry:
    """A read-through cache in front of a registry for the verify path.

    Records are kept for ``ttl`` seconds, so a status change made elsewhere
    (revocation, suspension) takes effect on this instance within ``ttl``
    seconds: that is the revocation bound (on the instance that made the
    change too: writes go to the backend, not through this cache). Unknown
    keyids are cached too, for ``negative_ttl`` seconds, so that a flood of
    made-up keyids does not reach the backend.

    Args:
        registry: the backend.
        ttl: seconds a found record is trusted (default 5; 0 turns caching off).
        negative_ttl: seconds an unknown keyid is remembered (default 1).
        max_entries: size bound (default 100,000; the oldest half is dropped when full).
    """

    def __init__(self, registry: KeyLookup, ttl: float = 5.0, negative_ttl: float = 1.0, max_entries: int = 100_000):
        self.registry = registry
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}
        self._lock = threading.Lock()

    @property
    def blocking(self) -> bool:
        """Whether a cache miss does I/O."""
        return bool(getattr(self.registry, "blocking", True))

    def get(self, keyid: str, now: float | None = None) -> KeyRecord | None:
        """The record for ``keyid`` (cached); ``now`` is epoch seconds (default: the clock)."""
        if now is None:
            import time

            now = time.time()
        if self.ttl <= 0:
            return self.registry.get(keyid)
        entry = self._cache.get(keyid)
        if entry is not None and entry[0] > now:
            return entry[1]
        record = self.registry.get(keyid)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                for key in list(self._cache)[: self.max_entries // 2]:
                    del self._cache[key]
            self._cache[keyid] = (now + (self.ttl if record is not None else self.negative_ttl), record)
        return record

    def peek(self, keyid: str, now: float) -> tuple[bool, KeyRecord | None]:
        """What the cache alone knows about ``keyid`` at ``now`` (epoch seconds), without any I/O.

        Returns:
            ``(True, record)`` when a fresh entry answers (``record`` is ``None`` for a
            keyid cached as unknown), ``(False, None)`` when only the backend can
            (:meth:`get` would ask it).
        """
        if self.ttl > 0:
            entry = self._cache.get(keyid)
            if entry is not None and entry[0] > now:
                return True, entry[1]
        return False, None

    def invalidate(self, keyid: str | None = None) -> None:
        """Forget one keyid, or everything."""
        with self._lock:
            if keyid is None:
                self._cache.clear()
            else:
                self._cache.pop(keyid, None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.registry, name)


__all__ = [
    "ENTRY_POINT_GROUP",
    "TRANSITIONS",
    "CachedRegistry",
    "KeyLookup",
    "KeyRecord",
    "KeyRegistry",
    "KeyStatus",
    "MemoryRegistry",
    "RegistryError",
    "SQLiteRegistry",
    "allowed_from",
    "open_nonce_store",
    "open_registry",
    "plugin_manager",
]
