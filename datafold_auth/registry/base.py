"""Lifecycle rules every registry backend applies the same way (used by memory, SQLite and PostgreSQL).

Backends do the storage and the atomicity; the decisions (which event a
status change writes, what a rotation does to both records, which keys the
expiry sweep touches) are made here, so that the backends cannot drift apart.
The conformance suite (tests/test_conformance_registry.py) checks them all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

from ..audit import AuditContext, AuditEvent
from ..errors import Reason, RegistryError
from .records import EXPIRABLE, KeyRecord, KeyStatus


def status_event(old: KeyStatus, new: KeyStatus) -> str:
    """The audit event name of a status change: ``approved`` (pending -> active), ``activated``
    (any other -> active), else the new status (``suspended``, ``revoked``, ``expired``, ...)."""
    if new is KeyStatus.ACTIVE:
        return "approved" if old is KeyStatus.PENDING else "activated"
    return new.value


def register_event(record: KeyRecord, context: AuditContext | None) -> AuditEvent:
    """The audit event of storing ``record`` (``registered``, or ``context.event``)."""
    return AuditEvent.of(
        "registered",
        record.updated_at,
        context,
        keyid=record.keyid,
        client_id=record.client_id,
        status=record.status.value,
        scopes=list(record.scopes),
        replaces=record.replaces,
    )


def check_expected(record: KeyRecord, expected: Collection[KeyStatus] | None, target: KeyStatus) -> None:
    """Raise ``invalid_transition`` unless ``record.status`` is in ``expected`` (``None``: anything goes)."""
    if expected is not None and record.status not in expected:
        raise RegistryError(
            f"key {record.keyid} is {record.status.value}; cannot become {target.value}", Reason.INVALID_TRANSITION
        )


def change_status(
    record: KeyRecord, status: KeyStatus, now: int, context: AuditContext | None
) -> tuple[KeyRecord, AuditEvent]:
    """The new record and its audit event for a status change at ``now``."""
    status = KeyStatus(status)
    reason = (context.reason if context else "")[:500]
    updated = record.with_status(status, now, reason)
    event = AuditEvent.of(
        status_event(record.status, status),
        now,
        context,
        keyid=record.keyid,
        client_id=record.client_id,
        **{"from": record.status.value, "to": status.value},
    )
    return updated, event


def revoked_predecessors(
    revoked: KeyRecord, now: int, context: AuditContext | None, get: Callable[[str], KeyRecord | None]
) -> list[tuple[KeyRecord, AuditEvent]]:
    """The keys that revoking ``revoked`` at ``now`` revokes as well, with their audit events.

    A rotation leaves the old key ``rotated`` and verifying until its
    ``overlap_until`` (docs/protocol.md section 7.1). Once its successor is
    revoked (the device was exposed; a thief rotated a stolen key to their own)
    the overlap must not keep the old key, and backups of it, working: every key
    up the ``replaces`` chain of ``revoked`` that is still ``rotated`` and usable
    at ``now`` becomes ``revoked`` too (docs/protocol.md section 7.2). Keys
    whose overlap is over stay ``rotated`` (they verify nothing already).

    Each such key gets a ``revoked`` event (``from: rotated``) by the same actor and
    request, with ``successor_revoked`` naming the key whose revocation caused it;
    its ``status_reason`` says so too.

    Args:
        revoked: the key being revoked (its record before or after the change).
        now: epoch seconds.
        context: who revokes it (the actor, reason and request of the revocation).
        get: reads a record within the backend's transaction (``None``: unknown keyid).

    Returns:
        ``(new record, event)`` for each predecessor to store, nearest first.
    """
    changes: list[tuple[KeyRecord, AuditEvent]] = []
    reason = (context.reason if context else "")[:400]
    seen = {revoked.keyid}
    current = revoked
    while current.replaces and current.replaces not in seen:
        seen.add(current.replaces)
        previous = get(current.replaces)
        if previous is None or previous.replaced_by != current.keyid:
            break
        if previous.status is KeyStatus.ROTATED and previous.is_usable(now):
            note = f"its successor {revoked.keyid} was revoked" + (f": {reason}" if reason else "")
            event_context = AuditContext(
                actor=context.actor if context else "system",
                reason=note,
                request_id=context.request_id if context else None,
            )
            changes.append(
                (
                    previous.with_status(KeyStatus.REVOKED, now, note[:500]),
                    AuditEvent.of(
                        "revoked",
                        now,
                        event_context,
                        keyid=previous.keyid,
                        client_id=previous.client_id,
                        successor_revoked=revoked.keyid,
                        **{"from": previous.status.value, "to": KeyStatus.REVOKED.value},
                    ),
                )
            )
        current = previous
    return changes


def rotation(
    old: KeyRecord, new: KeyRecord, now: int, overlap: int, context: AuditContext | None
) -> tuple[KeyRecord, KeyRecord, list[AuditEvent]]:
    """What rotating ``old`` to ``new`` at ``now`` stores, and its two audit events.

    The old key becomes ``rotated`` with ``overlap_until = now + overlap`` (it
    keeps verifying until then) and ``replaced_by``; the new key is stored with
    ``replaces``, the old key's client_id and the given status.

    Raises:
        RegistryError: ``invalid_transition`` if ``old`` is not usable at ``now``
            (only an ``active`` key that has not expired can be rotated);
            ``invalid_request`` if ``new`` is for another client or ``overlap`` is negative.
    """
    if old.status is not KeyStatus.ACTIVE or not old.is_usable(now):
        raise RegistryError(
            f"key {old.keyid} is {old.effective_status(now).value}; only an active key can be rotated",
            Reason.INVALID_TRANSITION,
        )
    if new.client_id != old.client_id:
        raise RegistryError("the new key must belong to the same client", Reason.INVALID_REQUEST)
    if overlap < 0:
        raise RegistryError("the overlap must not be negative", Reason.INVALID_REQUEST)
    reason = (context.reason if context else "")[:500]
    until = now + int(overlap)
    rotated = replace(
        old,
        status=KeyStatus.ROTATED,
        updated_at=now,
        rotated_at=now,
        overlap_until=until,
        replaced_by=new.keyid,
        status_reason=reason,
    )
    successor = replace(new, replaces=old.keyid)
    events = [
        AuditEvent.of(
            "rotated",
            now,
            context,
            keyid=old.keyid,
            client_id=old.client_id,
            replaced_by=new.keyid,
            overlap_until=until,
        ),
        AuditEvent.of(
            "registered",
            now,
            AuditContext(
                actor=context.actor if context else "system",
                reason=reason,
                request_id=context.request_id if context else None,
            ),
            keyid=new.keyid,
            client_id=new.client_id,
            status=new.status.value,
            scopes=list(new.scopes),
            replaces=old.keyid,
        ),
    ]
    return rotated, successor, events


def is_due(record: KeyRecord, now: int) -> bool:
    """``True`` if the expiry sweep moves ``record`` to ``expired`` at ``now``."""
    return record.expires_at is not None and record.expires_at <= now and record.status in EXPIRABLE


def all_counts(found: dict[str, int]) -> dict[str, int]:
    """Counts for every status (zeros included), in :class:`KeyStatus` order."""
    return {status.value: int(found.get(status.value, 0)) for status in KeyStatus}


def check_page(limit: int | None, offset: int) -> None:
    """Raise ``ValueError`` for a negative ``limit``/``offset``."""
    if (limit is not None and limit < 0) or offset < 0:
        raise ValueError("limit and offset must not be negative")


def list_query(
    select: str,
    placeholder: str,
    *,
    client_id: str | None,
    status: KeyStatus | None,
    limit: int | None,
    offset: int,
    no_limit: int | None,
) -> tuple[str, list[Any]]:
    """The SQL and arguments of ``KeyRegistry.list`` for the SQL backends.

    Args:
        select: ``SELECT <columns> FROM keys``.
        placeholder: the driver's parameter marker (``?`` or ``%s``).
        no_limit: the ``LIMIT`` value that means "all" for this database.

    Raises:
        ValueError: a negative ``limit``/``offset``.
    """
    check_page(limit, offset)
    conditions, args = [], list[Any]()
    if client_id is not None:
        conditions.append(f"client_id = {placeholder}")
        args.append(client_id)
    if status is not None:
        conditions.append(f"status = {placeholder}")
        args.append(KeyStatus(status).value)
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    args += [no_limit if limit is None else limit, offset]
    return f"{select}{where} ORDER BY created_at, keyid LIMIT {placeholder} OFFSET {placeholder}", args


# ------------------------------------------------ registries of the first contract


def _accepts(method: Any, name: str) -> bool:
    key = (type(getattr(method, "__self__", None)), getattr(method, "__name__", ""), name)
    found = _ACCEPTS.get(key)
    if found is None:
        try:
            params = inspect.signature(method).parameters
        except (TypeError, ValueError):
            found = False
        else:
            found = name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if len(_ACCEPTS) < 1024:
            _ACCEPTS[key] = found
    return found


_ACCEPTS: dict[tuple[Any, str, str], bool] = {}


def register_with(
    registry: Any, record: KeyRecord, context: AuditContext | None, *, allow_existing_client: bool = False
) -> KeyRecord:
    """``registry.register(record, context=..., allow_existing_client=...)``, also for a registry written
    against the first contract (``register(record)``: no audit context; adding a key to an existing
    client is then refused with ``client_id_taken``)."""
    if _accepts(registry.register, "context"):
        result: KeyRecord = registry.register(record, context=context, allow_existing_client=allow_existing_client)
        return result
    if allow_existing_client:
        raise RegistryError("this registry holds one key per client_id", Reason.CLIENT_ID_TAKEN)
    result = registry.register(record)
    return result


def set_status_with(
    registry: Any,
    keyid: str,
    status: KeyStatus,
    now: int,
    context: AuditContext | None,
    expected: Collection[KeyStatus] | None,
) -> KeyRecord:
    """``registry.set_status(...)`` with ``context``/``expected``, also for a first-contract registry
    (``set_status(keyid, status, now)``: ``expected`` is then checked by a read first, and a revocation's
    predecessors (:func:`revoked_predecessors`) revoked after it, not atomically)."""
    if _accepts(registry.set_status, "expected"):
        result: KeyRecord = registry.set_status(keyid, status, now, context=context, expected=expected)
        return result
    current = registry.get(keyid)
    if current is None:
        raise RegistryError(f"no key {keyid}", Reason.NOT_FOUND)
    check_expected(current, expected, status)
    result = registry.set_status(keyid, status, now)
    if KeyStatus(status) is KeyStatus.REVOKED:  # the contract's cascade, by reads here (not atomic)
        for previous, _ in revoked_predecessors(result, now, context, registry.get):
            registry.set_status(previous.keyid, KeyStatus.REVOKED, now)
    return result


def require(registry: Any, method: str) -> Any:
    """``getattr(registry, method)``, or a :class:`RegistryError` naming the missing part of the contract."""
    found = getattr(registry, method, None)
    if not callable(found):
        raise RegistryError(
            f"{type(registry).__name__} does not implement KeyRegistry.{method} (docs/registry.md)",
            Reason.REGISTRY_UNAVAILABLE,
        )
    return found


__all__ = [
    "all_counts",
    "change_status",
    "check_expected",
    "check_page",
    "is_due",
    "register_event",
    "register_with",
    "require",
    "revoked_predecessors",
    "rotation",
    "set_status_with",
    "status_event",
]
