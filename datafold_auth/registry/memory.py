"""In-memory key registry (one process; tests and demos)."""

from __future__ import annotations

import threading
from typing import Any

from ..errors import Reason, RegistryError
from .hookspecs import hookimpl
from .records import KeyRecord, KeyStatus


class MemoryRegistry:
    """A thread-safe registry held in a dict. Contents vanish with the process."""

    blocking = False

    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()

    def get(self, keyid: str) -> KeyRecord | None:
        """See :meth:`datafold_auth.registry.KeyRegistry.get`."""
        return self._records.get(keyid)

    def register(self, record: KeyRecord) -> KeyRecord:
        """See :meth:`datafold_auth.registry.KeyRegistry.register`."""
        with self._lock:
            if record.keyid in self._records:
                raise RegistryError(f"key {record.keyid} is already registered", Reason.DUPLICATE_KEY)
            if any(r.client_id == record.client_id for r in self._records.values()):
                raise RegistryError(f"client_id {record.client_id!r} already has keys", Reason.CLIENT_ID_TAKEN)
            self._records[record.keyid] = record
            return record

    def set_status(self, keyid: str, status: KeyStatus, now: int) -> KeyRecord:
        """See :meth:`datafold_auth.registry.KeyRegistry.set_status`."""
        with self._lock:
            record = self._records.get(keyid)
            if record is None:
                raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
            updated = record.with_status(status, now)
            self._records[keyid] = updated
            return updated

    def list(self, *, client_id: str | None = None, status: KeyStatus | None = None) -> list[KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.list`."""
        return sorted(
            (
                r
                for r in list(self._records.values())
                if (client_id is None or r.client_id == client_id) and (status is None or r.status == status)
            ),
            key=lambda r: (r.created_at, r.keyid),
        )

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MemoryRegistry(keys={len(self._records)})"


class _Plugin:
    @hookimpl
    def datafold_auth_open_registry(self, url: str, options: dict[str, Any]) -> MemoryRegistry | None:
        if url.split(":", 1)[0] != "memory":
            return None
        return MemoryRegistry(**options)

    @hookimpl
    def datafold_auth_open_nonce_store(self, url: str, options: dict[str, Any]) -> Any:
        if url.split(":", 1)[0] != "memory":
            return None
        from ..nonce import MemoryNonceStore

        return MemoryNonceStore(**options)


plugin = _Plugin()
"""The built-in ``memory://`` plugin."""
