"""A nonce store that can be inspected, to test replay protection."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..nonce import MemoryNonceStore, NonceStore


@dataclass(frozen=True, slots=True)
class NonceUse:
    """One call of :meth:`RecordingNonceStore.add`, i.e. one request that passed every other check.

    Attributes:
        keyid: the key that signed.
        nonce: the nonce it carried.
        expires_at: epoch seconds until which the store remembers it.
        at: the verifier's ``now`` (epoch seconds).
        fresh: ``True`` if the nonce was new (the request was accepted),
            ``False`` if it was a replay (answered ``replayed_nonce``).
    """

    keyid: str
    nonce: str
    expires_at: float
    at: float
    fresh: bool


class RecordingNonceStore:
    """A :class:`~datafold_auth.nonce.NonceStore` that records every nonce it is asked about.

    It delegates to ``inner`` (default: a fresh
    :class:`~datafold_auth.nonce.MemoryNonceStore`) and keeps the history in
    :attr:`uses`. ``(keyid, nonce) in store`` tells whether a nonce is
    remembered.

    Args:
        inner: the store that decides; its errors (``NonceStoreError``) propagate.
    """

    def __init__(self, inner: NonceStore | None = None) -> None:
        self.inner: NonceStore = MemoryNonceStore() if inner is None else inner
        self.blocking: bool = bool(getattr(self.inner, "blocking", True))
        """Whether :meth:`add` does I/O (that of the inner store)."""
        self.uses: list[NonceUse] = []
        self._lock = threading.Lock()

    def add(self, key: str, expires_at: float, now: float) -> bool:
        """See :meth:`datafold_auth.nonce.NonceStore.add`; also records the call in :attr:`uses`."""
        keyid, _, nonce = key.partition(" ")
        with self._lock:
            fresh = self.inner.add(key, expires_at, now)
            self.uses.append(NonceUse(keyid=keyid, nonce=nonce, expires_at=expires_at, at=now, fresh=fresh))
        return fresh

    @property
    def accepted(self) -> list[NonceUse]:
        """The uses whose nonce was new, oldest first."""
        return [u for u in self.uses if u.fresh]

    @property
    def replays(self) -> list[NonceUse]:
        """The uses refused as replays, oldest first."""
        return [u for u in self.uses if not u.fresh]

    def nonces(self, keyid: str | None = None) -> list[str]:
        """The nonces accepted (for ``keyid``, or for every key), oldest first."""
        return [u.nonce for u in self.uses if u.fresh and (keyid is None or u.keyid == keyid)]

    def __contains__(self, item: object) -> bool:
        """``(keyid, nonce) in store`` or ``"<keyid> <nonce>" in store``: was this nonce accepted?"""
        if isinstance(item, tuple) and len(item) == 2:
            item = f"{item[0]} {item[1]}"
        if not isinstance(item, str):
            return False
        keyid, _, nonce = item.partition(" ")
        return any(u.fresh and u.keyid == keyid and u.nonce == nonce for u in self.uses)

    def __len__(self) -> int:
        """How many nonces were accepted."""
        return len(self.accepted)

    def clear(self) -> None:
        """Forget every nonce and the history, as a restarted server would.

        Raises:
            TypeError: the inner store is not a :class:`~datafold_auth.nonce.MemoryNonceStore`
                (other stores cannot be emptied from here).
        """
        with self._lock:
            if not isinstance(self.inner, MemoryNonceStore):
                raise TypeError(f"{type(self.inner).__name__} cannot be cleared from here")
            self.inner = MemoryNonceStore(self.inner.capacity)
            self.uses.clear()

    def __repr__(self) -> str:
        return f"RecordingNonceStore(accepted={len(self.accepted)}, replays={len(self.replays)})"


__all__ = ["NonceUse", "RecordingNonceStore"]
