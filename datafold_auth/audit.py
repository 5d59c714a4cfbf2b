"""The audit log: lifecycle events and rejected requests, append-only and hash-chained.

Every key lifecycle event (registered, approved, suspended, activated,
revoked, rotated, expired, imported) and every rejected request is an
:class:`AuditEvent`. A registry appends events to its log as
:class:`AuditEntry` objects, numbered ``seq = 1, 2, ...`` without gaps, each
chained to the one before:

    hash = SHA-256( canonical_json( {every member of the entry but "hash"} ) )

where the entry's ``prev_hash`` is the previous entry's ``hash`` (64 zeros
for the first entry, :data:`GENESIS_HASH`), and ``canonical_json`` is
RFC 8785 (JCS) JSON: members sorted by name, no white space, UTF-8. The
values used here (strings, integers, ``null``, lists of strings and objects
of those) serialize under JCS exactly as Python's
``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
writes them, which is what :func:`canonical_json` does. The hash is computed
with ``cryptography``'s SHA-256 and written as lowercase hex.

:func:`verify_chain` detects an edited entry (its hash no longer matches),
a removed or reordered one (a ``seq`` gap, or a ``prev_hash`` that is not the
previous hash) and, given the head hash recorded earlier (``expect_head``), a
truncated log. ``keytools admin audit verify`` runs it against a registry, an
admin API or an exported JSON-lines file (:func:`write_jsonl`/:func:`read_jsonl`).

Rejected requests are recorded off the request path by an :class:`AuditSink`
(a bounded queue and one writer thread), so refusing a request costs a queue
``put`` and accepting one costs nothing. Every appended entry is handed to
the ``datafold_auth_audit_event`` pluggy hook (:func:`publish`), where an app
can forward it to its own logging.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from cryptography.hazmat.primitives import hashes

from .errors import AuditChainError, DatafoldAuthError

log = logging.getLogger("datafold_auth.audit")

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry."""
MAX_TEXT = 500
"""Longest ``reason``/``actor`` text kept in an entry (characters; longer text is cut)."""

EVENTS = (
    "registered",
    "imported",
    "approved",
    "activated",
    "suspended",
    "revoked",
    "rotated",
    "expired",
    "rejected",
)
"""The event names this package writes (others may be appended by applications)."""

DataValue = str | int | None | list[str]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def clean_text(text: str | None, limit: int = MAX_TEXT) -> str:
    """``text`` made safe for the log: C0 and C1 control characters, DEL, line and paragraph
    separators (U+2028, U+2029: line breaks to ``str.splitlines``) and surrogates replaced by ``?``,
    cut to ``limit``."""
    if not text:
        return ""
    out = "".join("?" if _UNSAFE_TEXT.match(ch) else ch for ch in text)
    return out[:limit]


def request_id(offered: str | None = None) -> str:
    """A request id: ``offered`` (an ``X-Request-Id`` value) when it is 1-64 of ``A-Za-z0-9._:-``, else a new one."""
    if offered and _REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who asks for a lifecycle change, and why (what a registry writes into the audit entry).

    Attributes:
        actor: who acted, e.g. ``"self:<keyid>"`` (the key holder), ``"admin:<client_id>"``,
            ``"local:<user>"`` (keytools on the registry), ``"system"`` (default).
        reason: free text given with the change (at most :data:`MAX_TEXT` characters kept).
        request_id: the request that caused it, if any.
        event: the event name to write instead of the operation's own (e.g. ``"imported"``
            for a registration made by a bulk import).
    """

    actor: str = "system"
    reason: str = ""
    request_id: str | None = None
    event: str | None = None


SYSTEM = AuditContext()
"""The context of changes made by the software itself (e.g. the expiry sweep)."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something that happened, before it is numbered and chained.

    Attributes:
        time: epoch seconds (integer).
        event: e.g. ``"revoked"`` (see :data:`EVENTS`).
        keyid: the key concerned, if any.
        client_id: its client, if known.
        actor: who acted (see :class:`AuditContext`).
        reason: a reason code (``"replayed_nonce"``) or free text.
        request_id: the request that caused it, if any.
        data: extra members (strings, integers, ``None`` or lists of strings),
            e.g. ``{"from": "active", "to": "revoked"}``.
    """

    time: int
    event: str
    keyid: str | None = None
    client_id: str | None = None
    actor: str = "system"
    reason: str = ""
    request_id: str | None = None
    data: Mapping[str, DataValue] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        event: str,
        now: float,
        context: AuditContext | None,
        *,
        keyid: str | None = None,
        client_id: str | None = None,
        **data: DataValue,
    ) -> AuditEvent:
        """An event for an operation named ``event`` (``context.event`` wins) at ``now`` by ``context``."""
        ctx = context or SYSTEM
        return cls(
            time=int(now),
            event=ctx.event or event,
            keyid=keyid,
            client_id=client_id,
            actor=clean_text(ctx.actor) or "system",
            reason=clean_text(ctx.reason),
            request_id=ctx.request_id,
            data=data,
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the chained log.

    Attributes:
        seq: position in the log, from 1, without gaps.
        time, event, keyid, client_id, actor, reason, request_id, data: see :class:`AuditEvent`.
        prev_hash: the previous entry's ``hash`` (:data:`GENESIS_HASH` for ``seq`` 1).
        hash: SHA-256 (hex) of the canonical JSON of every other member (see the module docstring).
    """

    seq: int
    time: int
    event: str
    keyid: str | None
    client_id: str | None
    actor: str
    reason: str
    request_id: str | None
    data: Mapping[str, DataValue]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """The members the hash covers (all but ``hash``)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "event": self.event,
            "keyid": self.keyid,
            "client_id": self.client_id,
            "actor": self.actor,
            "reason": self.reason,
            "request_id": self.request_id,
            "data": dict(self.data),
            "prev_hash": self.prev_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON object (one line of an export)."""
        doc = self.body()
        doc["hash"] = self.hash
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> AuditEntry:
        """Read an entry written by :meth:`to_dict` (the hash is not checked here).

        Raises:
            ValueError: a member is missing or has the wrong type.
        """
        if not isinstance(doc, dict):
            raise ValueError("an audit entry is a JSON object")
        try:
            entry = cls(
                seq=doc["seq"],
                time=doc["time"],
                event=doc["event"],
                keyid=doc["keyid"],
                client_id=doc["client_id"],
                actor=doc["actor"],
                reason=doc["reason"],
                request_id=doc["request_id"],
                data=doc["data"],
                prev_hash=doc["prev_hash"],
                hash=doc["hash"],
            )
        except KeyError as exc:
            raise ValueError(f"an audit entry lacks {exc.args[0]!r}") from None
        ints = type(entry.seq) is int and type(entry.time) is int
        texts = all(isinstance(v, str) for v in (entry.event, entry.actor, entry.reason, entry.prev_hash, entry.hash))
        optional = all(v is None or isinstance(v, str) for v in (entry.keyid, entry.client_id, entry.request_id))
        if not (ints and texts and optional and isinstance(entry.data, dict)):
            raise ValueError(f"audit entry {doc.get('seq')!r} has a member of the wrong type")
        return entry


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) serialization for the value types of audit entries, as UTF-8 bytes.

    Raises:
        TypeError: a float or another type JCS would serialize differently.
    """
    _check_types(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _check_types(value: Any) -> None:
    if value is None or isinstance(value, str | int):  # bool is an int: true/false are the same in JCS
        return
    if isinstance(value, list):
        for item in value:
            _check_types(item)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise TypeError("audit data member names must be ASCII strings")
            _check_types(item)
        return
    raise TypeError(f"{type(value).__name__} values are not allowed in audit entries")


def entry_hash(body: Mapping[str, Any]) -> str:
    """SHA-256 (lowercase hex) of the canonical JSON of ``body`` (an entry without its ``hash``)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical_json(dict(body)))
    return digest.finalize().hex()


def chain(events: Iterable[AuditEvent], last_seq: int, last_hash: str) -> list[AuditEntry]:
    """Number and chain ``events`` after the entry ``(last_seq, last_hash)`` (``(0, GENESIS_HASH)``: an empty log).

    Registries call this inside the transaction that appends the entries.

    Raises:
        TypeError: an event's ``data`` holds a value JSON cannot carry canonically.
    """
    entries: list[AuditEntry] = []
    seq, prev = last_seq, last_hash
    for event in events:
        seq += 1
        partial = AuditEntry(
            seq=seq,
            time=int(event.time),
            event=event.event,
            keyid=event.keyid,
            client_id=event.client_id,
            actor=event.actor,
            reason=event.reason,
            request_id=event.request_id,
            data=dict(event.data),
            prev_hash=prev,
            hash="",
        )
        digest = entry_hash(partial.body())
        entries.append(
            AuditEntry(
                partial.seq,
                partial.time,
                partial.event,
                partial.keyid,
                partial.client_id,
                partial.actor,
                partial.reason,
                partial.request_id,
                partial.data,
                partial.prev_hash,
                digest,
            )
        )
        prev = digest
    return entries


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of a successful :func:`verify_chain`.

    Attributes:
        count: entries checked.
        head_seq: ``seq`` of the last entry (0 for an empty log).
        head_hash: ``hash`` of the last entry (:data:`GENESIS_HASH` for an empty log); record it
            somewhere else to detect a later truncation (``expect_head``).
    """

    count: int
    head_seq: int
    head_hash: str


def verify_chain(
    entries: Iterable[AuditEntry],
    *,
    start_seq: int = 1,
    start_prev: str = GENESIS_HASH,
    expect_head: str | None = None,
) -> ChainReport:
    """Check a log (or a contiguous part of it) entry by entry.

    Args:
        entries: the entries in log order.
        start_seq: the ``seq`` the first entry must have (1 for a whole log).
        start_prev: the ``prev_hash`` the first entry must have.
        expect_head: if given, the hash the last entry must have, or a hash
            some entry must have (then entries after it are fine too);
            ``None`` skips this check.

    Returns:
        a :class:`ChainReport`.

    Raises:
        AuditChainError: with the ``seq`` of the first entry that does not verify
            and what is wrong (edited, removed or reordered).
    """
    expected_seq, prev = start_seq, start_prev
    count = 0
    seen_head = expect_head is None or expect_head == start_prev
    for entry in entries:
        if entry.seq != expected_seq:
            what = "removed" if entry.seq > expected_seq else "reordered or duplicated"
            raise AuditChainError(
                f"entry {expected_seq} is missing: found seq {entry.seq} (entries {what})", seq=expected_seq
            )
        if entry.prev_hash != prev:
            raise AuditChainError(
                f"entry {entry.seq}: prev_hash does not match the hash of entry {entry.seq - 1}"
                " (an entry before it was edited, removed or reordered)",
                seq=entry.seq,
            )
        try:
            actual = entry_hash(entry.body())
        except TypeError as exc:
            raise AuditChainError(f"entry {entry.seq}: {exc}", seq=entry.seq) from None
        if actual != entry.hash:
            raise AuditChainError(f"entry {entry.seq}: its hash does not match its content (edited)", seq=entry.seq)
        if entry.hash == expect_head:
            seen_head = True
        prev = entry.hash
        expected_seq += 1
        count += 1
    if not seen_head:
        raise AuditChainError(
            f"the log does not reach the expected head {expect_head} (entries removed from the end)", seq=None
        )
    return ChainReport(count=count, head_seq=expected_seq - 1, head_hash=prev)


def write_jsonl(entries: Iterable[AuditEntry], stream: IO[str]) -> int:
    """Write entries as JSON lines (one :meth:`AuditEntry.to_dict` object per line); return how many."""
    count = 0
    for entry in entries:
        stream.write(json.dumps(entry.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")
        count += 1
    return count


def read_jsonl(lines: Iterable[str]) -> Iterator[AuditEntry]:
    """Read entries from JSON lines (blank lines skipped).

    Raises:
        ValueError: a line is not an audit entry (its line number is in the message).
    """
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield AuditEntry.from_dict(json.loads(line))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None


# ------------------------------------------------------------------ publishing


def publish(entries: Sequence[AuditEntry]) -> None:
    """Hand appended entries to the ``datafold_auth_audit_event`` hook implementations.

    Registries call this after the entries are committed. A failing hook is
    logged (logger ``datafold_auth.audit``) and never fails the operation.
    """
    if not entries:
        return
    from .registry import plugin_manager

    impls = plugin_manager().hook.datafold_auth_audit_event.get_hookimpls()
    if not impls:
        return
    for entry in entries:
        for impl in reversed(impls):  # pluggy's order (last registered first); one failure stops no other
            try:
                impl.function(*[entry for _ in impl.argnames])
            except Exception:
                log.exception("an audit hook (%s) failed on entry %d", impl.plugin_name, entry.seq)


class AuditLog(Protocol):
    """What an :class:`AuditSink` writes to: a registry's ``append_audit``."""

    def append_audit(self, events: Sequence[AuditEvent]) -> list[AuditEntry]:
        """Append and chain ``events`` atomically; return the entries (and publish them)."""
        ...


class AuditSink:
    """Records events (rejected requests) off the request path.

    :meth:`record` puts the event on a bounded queue and returns at once; one
    daemon thread appends queued events to ``target`` in batches. When the
    queue is full the event is dropped and counted in :attr:`dropped` (a flood
    of bad requests must not slow the server down or grow memory without bound);
    a failed write is logged and counted in :attr:`failed`.

    Args:
        target: where entries go (a registry: anything with ``append_audit``).
        capacity: most queued events (default 10,000).
        batch: most events per write (default 200).
        clock: current time in epoch seconds.

    Attributes:
        dropped, failed: events lost to a full queue / a failed write.
    """

    def __init__(
        self,
        target: AuditLog,
        *,
        capacity: int = 10_000,
        batch: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.target = target
        self.clock = clock
        self.batch = batch
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[AuditEvent | None] = queue.Queue(capacity)
        self._idle = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def record(self, event: AuditEvent) -> None:
        """Queue ``event``; never blocks, never raises."""
        if self._closed:
            return
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()
            self.dropped += 1
            return
        if self._thread is None:
            self._start()

    def rejected(
        self,
        error: DatafoldAuthError,
        *,
        keyid: str | None,
        method: str,
        path: str,
        remote: str | None,
        request_id: str | None,
        client_id: str | None = None,
    ) -> None:
        """Record a rejected request (event ``rejected``, reason = the reason code)."""
        self.record(
            AuditEvent(
                time=int(self.clock()),
                event="rejected",
                keyid=keyid,
                client_id=client_id,
                actor=clean_text(remote, 64) or "unknown",
                reason=error.reason.value,
                request_id=request_id,
                data={"method": clean_text(method, 16), "path": clean_text(path, 200)},
            )
        )

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="datafold-audit-sink", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._write(batch)
                    return
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[AuditEvent]) -> None:
        try:
            self.target.append_audit(batch)
        except Exception:
            self.failed += len(batch)
            log.exception("could not append %d audit events", len(batch))
        with self._idle:
            self._pending -= len(batch)
            self._idle.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is written (or dropped); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the writer thread."""
        self.flush(timeout)
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)


__all__ = [
    "EVENTS",
    "GENESIS_HASH",
    "MAX_TEXT",
    "SYSTEM",
    "AuditContext",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "AuditSink",
    "ChainReport",
    "canonical_json",
    "chain",
    "clean_text",
    "entry_hash",
    "publish",
    "read_jsonl",
    "request_id",
    "verify_chain",
    "write_jsonl",
]
