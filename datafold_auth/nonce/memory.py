"""In-memory nonce store for a single process."""

from __future__ import annotations

import heapq
import math
import threading

from ..errors import NonceStoreError

_NEVER = 2**63
"""The expiry second of an entry whose ``expires_at`` is ``inf`` or NaN: past any ``now`` (``-inf``: ``-_NEVER``)."""


class MemoryNonceStore:
    """A bounded, thread-safe, in-process nonce store with expiry.

    Entries are forgotten once their ``expires_at`` has passed (within the next whole second). When the store
    holds ``capacity`` live entries, :meth:`add` fails closed with
    :class:`~datafold_auth.errors.NonceStoreError` rather than forget a live
    nonce (forgetting one would re-open a replay window).

    Args:
        capacity: maximum live entries (default 1,000,000; about 200 bytes each).
    """

    blocking = False

    def __init__(self, capacity: int = 1_000_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._entries: dict[str, float] = {}
        # Expiry by whole second: the keys due in second s (those with ceil(expires_at) == s)
        # and a heap of those seconds -- one heap push per second rather than per entry.
        self._due: dict[int, list[str]] = {}
        self._seconds: list[int] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def _purge(self, now: float) -> None:
        seconds, due, entries = self._seconds, self._due, self._entries
        while seconds and seconds[0] <= now:
            for key in due.pop(heapq.heappop(seconds)):
                expires_at = entries.get(key)
                if expires_at is not None and expires_at <= now:
                    del entries[key]

    def add(self, key: str, expires_at: float, now: float) -> bool:
        """See :meth:`datafold_auth.nonce.NonceStore.add`."""
        with self._lock:
            if self._seconds and self._seconds[0] <= now:
                self._purge(now)
            entries = self._entries
            if key in entries:
                return False
            if len(entries) >= self.capacity:
                raise NonceStoreError("the in-memory nonce store is full")
            try:
                second = math.ceil(expires_at)
            except (OverflowError, ValueError):  # -inf: due at once; inf or NaN: kept for good, as before
                second = -_NEVER if expires_at < 0 else _NEVER
            entries[key] = expires_at
            keys = self._due.get(second)
            if keys is None:
                self._due[second] = [key]
                heapq.heappush(self._seconds, second)
            else:
                keys.append(key)
            return True

    def __repr__(self) -> str:
        return f"MemoryNonceStore(capacity={self.capacity}, live={len(self._entries)})"
