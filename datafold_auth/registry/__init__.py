"""Key registries: where a server looks up the public key for a ``keyid``.

A registry implements :class:`KeyRegistry`. Built in: :class:`MemoryRegistry`
(``memory://``) and :class:`SQLiteRegistry` (``sqlite:///path.db``, the
embedded default). Other backends are plugins (see :mod:`.hookspecs`) found
through the ``datafold_auth.registry`` entry-point group; :func:`open_registry`
asks every plugin in turn.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import pluggy

from ..errors import RegistryError
from . import hookspecs
from .memory import MemoryRegistry
from .records import KeyRecord, KeyStatus
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
    """The full registry contract (what registration and admin need)."""

    def register(self, record: KeyRecord) -> KeyRecord:
        """Store a new record atomically.

        Raises:
            RegistryError: reason ``duplicate_key`` if the keyid exists,
                ``client_id_taken`` if the client_id already has keys.
        """
        ...

    def set_status(self, keyid: str, status: KeyStatus, now: int) -> KeyRecord:
        """Change a key's status at ``now`` (epoch seconds); return the new record.

        Raises:
            RegistryError: reason ``not_found`` for an unknown keyid.
        """
        ...

    def list(self, *, client_id: str | None = None, status: KeyStatus | None = None) -> list[KeyRecord]:
        """Records matching the filters, oldest first."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The plugin manager with the built-in plugins and every installed entry point."""
    from . import memory, sqlite

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(memory.plugin, name="memory")
    pm.register(sqlite.plugin, name="sqlite")
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def open_registry(url: str, **options: Any) -> KeyRegistry:
    """Open the registry named by ``url`` through the first plugin that handles it.

    Examples: ``memory://``, ``sqlite:///var/lib/datafold/keys.db``.

    Raises:
        RegistryError: no installed plugin handles the URL's scheme.
    """
    registry = plugin_manager().hook.datafold_auth_open_registry(url=url, options=options)
    if registry is None:
        raise RegistryError(f"no registry plugin handles {url.split(':', 1)[0]!r} URLs")
    return registry  # type: ignore[no-any-return]


def open_nonce_store(url: str, **options: Any) -> Any:
    """Open the nonce store named by ``url`` (``memory://`` built in) through the plugins.

    Raises:
        RegistryError: no installed plugin handles the URL's scheme.
    """
    store = plugin_manager().hook.datafold_auth_open_nonce_store(url=url, options=options)
    if store is None:
        raise RegistryError(f"no nonce store plugin handles {url.split(':', 1)[0]!r} URLs")
    return store


class CachedRegistry:
    """A read-through cache in front of a registry for the verify path.

    Records are kept for ``ttl`` seconds, so a status change made elsewhere
    (revocation, suspension) takes effect on this instance within ``ttl``
    seconds: that is the revocation bound. Unknown keyids are cached too, for
    ``negative_ttl`` seconds, so that a flood of made-up keyids does not reach
    the backend. Writes pass through and drop the cached entry.

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
    "CachedRegistry",
    "KeyLookup",
    "KeyRecord",
    "KeyRegistry",
    "KeyStatus",
    "MemoryRegistry",
    "RegistryError",
    "SQLiteRegistry",
    "open_nonce_store",
    "open_registry",
    "plugin_manager",
]
