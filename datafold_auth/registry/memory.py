"""In-memory key registry (one process; tests and demos)."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Collection, Sequence
from typing import Any

from ..audit import GENESIS_HASH, AuditContext, AuditEntry, AuditEvent, chain, publish
from ..errors import Reason, RegistryError
from . import base
from .hookspecs import hookimpl
from .records import KeyRecord, KeyStatus


class MemoryRegistry:
    """A thread-safe registry held in a dict, with its audit log in a list. Contents vanish with the process."""

    blocking = False

    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}
        self._audit: list[AuditEntry] = []
        self._lock = threading.Lock()

    def get(self, keyid: str) -> KeyRecord | None:
        """See :meth:`datafold_auth.registry.KeyRegistry.get`."""
        return self._records.get(keyid)

    def _append(self, events: Sequence[AuditEvent]) -> builtins.list[AuditEntry]:
        last = self._audit[-1] if self._audit else None
        entries = chain(events, last.seq if last else 0, last.hash if last else GENESIS_HASH)
        self._audit.extend(entries)
        return entries

    def register(
        self, record: KeyRecord, *, context: AuditContext | None = None, allow_existing_client: bool = False
    ) -> KeyRecord:
        """See :meth:`datafold_auth.registry.KeyRegistry.register`."""
        with self._lock:
            if record.keyid in self._records:
                raise RegistryError(f"key {record.keyid} is already registered", Reason.DUPLICATE_KEY)
            if not allow_existing_client and any(r.client_id == record.client_id for r in self._records.values()):
                raise RegistryError(f"client_id {record.client_id!r} already has keys", Reason.CLIENT_ID_TAKEN)
            self._records[record.keyid] = record
            entries = self._append([base.register_event(record, context)])
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
        with self._lock:
            record = self._records.get(keyid)
            if record is None:
                raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
            base.check_expected(record, expected, status)
            updated, event = base.change_status(record, status, now, context)
            self._records[keyid] = updated
            events = [event]
            if status is KeyStatus.REVOKED:
                for previous, cascade in base.revoked_predecessors(updated, now, context, self._records.get):
                    self._records[previous.keyid] = previous
                    events.append(cascade)
            entries = self._append(events)
        publish(entries)
        return updated

    def rotate(
        self, keyid: str, new: KeyRecord, now: int, overlap: int, *, context: AuditContext | None = None
    ) -> tuple[KeyRecord, KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.rotate`."""
        with self._lock:
            old = self._records.get(keyid)
            if old is None:
                raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
            if new.keyid in self._records:
                raise RegistryError(f"key {new.keyid} is already registered", Reason.DUPLICATE_KEY)
            rotated, successor, events = base.rotation(old, new, now, overlap, context)
            self._records[keyid] = rotated
            self._records[successor.keyid] = successor
            entries = self._append(events)
        publish(entries)
        return rotated, successor

    def list(
        self,
        *,
        client_id: str | None = None,
        status: KeyStatus | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.list`."""
        base.check_page(limit, offset)
        found = sorted(
            (
                r
                for r in list(self._records.values())
                if (client_id is None or r.client_id == client_id) and (status is None or r.status == status)
            ),
            key=lambda r: (r.created_at, r.keyid),
        )
        return found[offset : None if limit is None else offset + limit]

    def counts(self) -> dict[str, int]:
        """See :meth:`datafold_auth.registry.KeyRegistry.counts`."""
        found: dict[str, int] = {}
        for record in list(self._records.values()):
            found[record.status.value] = found.get(record.status.value, 0) + 1
        return base.all_counts(found)

    def expire_due(self, now: int, *, context: AuditContext | None = None) -> builtins.list[KeyRecord]:
        """See :meth:`datafold_auth.registry.KeyRegistry.expire_due`."""
        changed: builtins.list[KeyRecord] = []
        events: builtins.list[AuditEvent] = []
        with self._lock:
            for record in sorted(self._records.values(), key=lambda r: (r.created_at, r.keyid)):
                if base.is_due(record, now):
                    updated, event = base.change_status(record, KeyStatus.EXPIRED, now, context)
                    self._records[record.keyid] = updated
                    changed.append(updated)
                    events.append(event)
            entries = self._append(events)
        publish(entries)
        return changed

    def append_audit(self, events: Sequence[AuditEvent]) -> builtins.list[AuditEntry]:
        """See :meth:`datafold_auth.registry.KeyRegistry.append_audit`."""
        with self._lock:
            entries = self._append(events)
        publish(entries)
        return entries

    def audit_entries(self, *, after: int = 0, limit: int | None = None) -> builtins.list[AuditEntry]:
        """See :meth:`datafold_auth.registry.KeyRegistry.audit_entries`."""
        base.check_page(limit, after)
        with self._lock:
            found = self._audit[after:]  # seq n is at index n - 1
        return found if limit is None else found[:limit]

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
