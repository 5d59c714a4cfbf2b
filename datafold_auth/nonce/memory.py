"""In-memory nonce store for a single process."""

from __future__ import annotations

import heapq
import threading

from ..errors import NonceStoreError


class MemoryNonceStore:
    """A bounded, thread-safe, in-process nonce store with expiry.

    Entries are forgotten once their ``expires_at`` has passed. When the store
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
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def _purge(self, now: float) -> None:
        heap, entries = self._heap, self._entries
        while heap and heap[0][0] <= now:
            expires_at, key = heapq.heappop(heap)
            if entries.get(key) == expires_at:
                del entries[key]

    def add(self, key: str, expires_at: float, now: float) -> bool:
        """See :meth:`datafold_auth.nonce.NonceStore.add`."""
        with self._lock:
            if self._heap and self._heap[0][0] <= now:
                self._purge(now)
            if key in self._entries:
                return False
            if len(self._entries) >= self.capacity:
                raise NonceStoreError("the in-memory nonce store is full")
            self._entries[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True

    def __repr__(self) -> str:
        return f"MemoryNonceStore(capacity={self.capacity}, live={len(self._entries)})"
