"""A :class:`~datafold_auth.verifier.Verifier` on a test clock that keeps a log of what it decided."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DatafoldAuthError
from ..message import Request
from ..nonce import NonceStore
from ..profile import DEFAULT_POLICY, VerificationPolicy
from ..registry import KeyLookup
from ..verifier import VerifiedSignature, Verifier

_KEYID = re.compile(r'[;\s]keyid="([A-Za-z0-9_-]{1,128})"')


@dataclass(frozen=True, slots=True)
class Verification:
    """One request the verifier decided on.

    Attributes:
        at: the clock's time (epoch seconds).
        method: the request method.
        target: the path and query as signed, e.g. ``/api/items?page=2``.
        keyid: the keyid the signature named, or ``None``.
        verified: the result when accepted, else ``None``.
        error: the refusal when refused (its ``reason`` and server-side ``detail``), else ``None``.
    """

    at: float
    method: str
    target: str
    keyid: str | None
    verified: VerifiedSignature | None
    error: DatafoldAuthError | None

    @property
    def accepted(self) -> bool:
        """``True`` if the request verified."""
        return self.verified is not None

    def describe(self) -> str:
        """One line for a test report, e.g. ``GET /api/hello -> rejected replayed_nonce: ...``."""
        head = f"t={self.at:.0f} {self.method} {self.target}"
        if self.verified is not None:
            v = self.verified
            return f"{head} -> accepted as {v.client_id!r} scopes={list(v.scopes)} (keyid {v.keyid})"
        who = f" (keyid {self.keyid})" if self.keyid else ""
        error = self.error
        what = f"{error.reason.value}: {error.detail}" if error is not None else "?"
        return f"{head} -> rejected {what}{who}"


class ClockedVerifier(Verifier):
    """A verifier that reads the time from ``clock`` and logs every decision.

    It verifies at ``clock()`` whatever ``now`` its caller passes, so an app
    only has to accept a verifier for a test to control time: the middleware's
    own ``clock=`` argument can stay at its default. The registry is read
    without caching (``cache_ttl=0``), so a status change in a test takes
    effect on the next request.

    Args:
        registry: the key lookup.
        nonce_store: the nonce store.
        policy: the verification policy (default: the DataFold profile).
        clock: current time in epoch seconds.

    Attributes:
        clock: as given.
        log: every :class:`Verification`, oldest first.
    """

    def __init__(
        self,
        registry: KeyLookup,
        nonce_store: NonceStore,
        policy: VerificationPolicy = DEFAULT_POLICY,
        *,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(registry, nonce_store, policy, cache_ttl=0)
        self.clock = clock
        self.log: list[Verification] = []
        self._lock = threading.Lock()

    def verify(self, request: Request, now: float | None = None) -> VerifiedSignature:
        """Verify ``request`` at ``clock()``; ``now`` is ignored (see the class docstring).

        Raises:
            SignatureError, RegistryError, NonceStoreError: as :meth:`Verifier.verify`.
        """
        at = self.clock()
        target = request.path + ("" if request.query is None else "?" + request.query)
        keyid = None
        for value in request.field_values("signature-input") or ():
            match = _KEYID.search(value)
            if match:
                keyid = match.group(1)
                break
        try:
            verified = super().verify(request, at)
        except DatafoldAuthError as error:
            self._record(Verification(at, request.method, target, keyid, None, error))
            raise
        self._record(Verification(at, request.method, target, verified.keyid, verified, None))
        return verified

    def _record(self, entry: Verification) -> None:
        with self._lock:
            self.log.append(entry)

    @property
    def rejections(self) -> list[Verification]:
        """The refused requests, oldest first."""
        return [v for v in self.log if not v.accepted]

    def report(self) -> str:
        """The log as numbered lines (empty if nothing was verified)."""
        return "\n".join(f"{i}. {v.describe()}" for i, v in enumerate(self.log, 1))


__all__ = ["ClockedVerifier", "Verification"]
