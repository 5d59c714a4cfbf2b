"""Nonce stores: remember each (keyid, nonce) until it can no longer pass the freshness check.

A nonce store gives replay protection (RFC 9421 section 7.2.2). The verifier
calls :meth:`NonceStore.add` once per verified request, with the time after
which the request would be refused as too old anyway; the store must say,
atomically, whether the nonce was new. Backends: :class:`MemoryNonceStore`
(one process), :class:`~datafold_auth.nonce.sqlite.SQLiteNonceStore` (the
processes of one machine) and :class:`~datafold_auth.nonce.redis.RedisNonceStore`
(any number of machines); :func:`datafold_auth.registry.open_nonce_store` opens
one by URL, and other backends plug in the same way.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .memory import MemoryNonceStore
from .sqlite import SQLiteNonceStore


@runtime_checkable
class NonceStore(Protocol):
    """The nonce store contract.

    Attributes:
        blocking: ``True`` if :meth:`add` does I/O (an ASGI server then calls it
            from a worker thread, or, when the store also has an ``add_async``
            coroutine with the arguments, result and errors of :meth:`add`,
            awaits that on the event loop: see ``RedisNonceStore.add_async``).
    """

    blocking: bool

    def add(self, key: str, expires_at: float, now: float) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds).

        Args:
            key: ``"<keyid> <nonce>"``.
            expires_at: epoch seconds after which the entry may be forgotten.
            now: the current time in epoch seconds.

        Returns:
            ``True`` if the key was not present (the request is fresh),
            ``False`` if it was (a replay).

        Raises:
            NonceStoreError: the store is full or unreachable; callers fail
                closed with ``nonce_store_unavailable`` (HTTP 503).
        """
        ...


__all__ = ["MemoryNonceStore", "NonceStore", "SQLiteNonceStore"]
