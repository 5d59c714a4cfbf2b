"""Ephemeral test keys: a fresh Ed25519 key pair plus the registry record that makes it an identity."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import Reason, RegistryError
from ..message import Request
from ..registry import KeyRecord, KeyRegistry, KeyStatus
from ..signer import Signer

DEFAULT_CLIENT_ID = "test-client"
"""The ``client_id`` of the ``datafold_key`` fixture when no identity is declared."""


class PinnedNonceSigner(Signer):
    """A :class:`~datafold_auth.signer.Signer` that signs every request with the same nonce.

    Only for tests: the second request it signs is a replay, which a verifying
    server refuses with ``replayed_nonce``.

    Args:
        private_key: the Ed25519 private key.
        nonce: the nonce to put in every signature (an RFC 8941 String; at most 128 characters).
    """

    __slots__ = ("pinned_nonce",)

    def __init__(self, private_key: Ed25519PrivateKey, nonce: str, **options: Any) -> None:
        super().__init__(private_key, **options)
        self.pinned_nonce = nonce

    def sign(self, request: Request, *, now: float | None = None, nonce: str | None = None) -> list[tuple[str, str]]:
        """Sign with ``nonce`` if given, else with the pinned nonce (see :meth:`Signer.sign`)."""
        return super().sign(request, now=now, nonce=self.pinned_nonce if nonce is None else nonce)


def _scopes(scopes: Iterable[str] | str) -> tuple[str, ...]:
    values = tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes)
    for scope in values:
        if not isinstance(scope, str) or not scope:
            raise TypeError(f"scopes must be non-empty strings, got {scope!r}")
    return values


class EphemeralKey:
    """A fresh Ed25519 key pair, its :class:`~datafold_auth.signer.Signer` and its registry record.

    The private key lives only in this object (and dies with the test); no
    key file or keychain is touched. ``repr`` never shows it.

    Args:
        private_key: the key pair's private half.
        record: the :class:`~datafold_auth.registry.KeyRecord` describing the identity.
        registry: where ``record`` was registered (``None``: not registered,
            so requests signed with this key are refused as ``unknown_key``).
        clock: epoch seconds used as ``created`` when no ``now`` is given
            (default: the real clock).

    Attributes:
        private_key, signer, registry, clock: as given (``signer`` is made here).
    """

    def __init__(
        self,
        private_key: Ed25519PrivateKey,
        record: KeyRecord,
        *,
        registry: KeyRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.private_key = private_key
        self.signer = Signer(private_key)
        if record.keyid != self.signer.keyid:
            raise ValueError("the record does not describe this key pair")
        self._record = record
        self.registry = registry
        self.clock = clock

    @property
    def record(self) -> KeyRecord:
        """The current registry record (re-read from the registry when registered)."""
        if self.registry is not None:
            current = self.registry.get(self._record.keyid)
            if current is not None:
                self._record = current
        return self._record

    @property
    def keyid(self) -> str:
        """The RFC 7638 thumbprint of the public key (43 characters)."""
        return self._record.keyid

    @property
    def client_id(self) -> str:
        """The identity requests signed with this key act as."""
        return self._record.client_id

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes granted to the key."""
        return self.record.scopes

    @property
    def status(self) -> KeyStatus:
        """The key's current status in the registry."""
        return self.record.status

    @property
    def registered(self) -> bool:
        """``True`` if the key is in a registry."""
        return self.registry is not None

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half of the key pair."""
        return self.private_key.public_key()

    @property
    def jwk(self) -> dict[str, str]:
        """The public JWK (RFC 8037), as a registration body carries it."""
        return self._record.jwk

    def signer_with(self, *, nonce: str | None = None) -> Signer:
        """A signer for this key; with ``nonce``, one that pins it (:class:`PinnedNonceSigner`)."""
        return self.signer if nonce is None else PinnedNonceSigner(self.private_key, nonce)

    def sign(self, request: Request, *, now: float | None = None, nonce: str | None = None) -> list[tuple[str, str]]:
        """Sign ``request`` in place (see :meth:`Signer.sign`); ``now`` defaults to :attr:`clock`.

        Returns:
            the added ``(name, value)`` field lines.
        """
        return self.signer.sign(request, now=self.clock() if now is None else now, nonce=nonce)

    def signed_headers(
        self,
        method: str,
        url: str,
        *,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] | dict[str, str] = (),
        now: float | None = None,
        nonce: str | None = None,
    ) -> dict[str, str]:
        """The signature fields for a request, to send with any client (and to send twice for a replay).

        Args:
            method: e.g. ``"GET"``.
            url: the absolute URL the client will send to, e.g.
                ``"http://localhost/api/hello"`` (werkzeug's default host) or
                ``"http://testserver/api/hello"`` (Starlette's and httpx's); the
                host and path must be exactly what the server sees.
            body: the exact body bytes the client will send.
            headers: other fields the client will send; ``Content-Type``, if
                present, is covered and must then be sent unchanged.
            now: ``created`` in epoch seconds (default: :attr:`clock`).
            nonce: the nonce (default: a fresh random one).

        Returns:
            ``{"Content-Digest": ..., "Signature-Input": ..., "Signature": ...}``
            (``Content-Digest`` only with a body).

        Raises:
            ValueError: ``url`` is not an absolute http(s) URL.
        """
        items = list(headers.items()) if isinstance(headers, dict) else list(headers)
        request = Request.from_url(method, url, items, body)
        return dict(self.sign(request, now=now, nonce=nonce))

    def set_status(self, status: KeyStatus | str, *, now: float | None = None) -> KeyRecord:
        """Change the key's status in its registry (e.g. ``"revoked"``) and return the new record.

        Raises:
            ValueError: ``status`` is not a :class:`KeyStatus` value.
            RuntimeError: the key is not registered.
        """
        if self.registry is None:
            raise RuntimeError("the key is not registered")
        when = int(self.clock() if now is None else now)
        self._record = self.registry.set_status(self.keyid, KeyStatus(status), when)
        return self._record

    def revoke(self) -> KeyRecord:
        """Set the status to ``revoked`` (requests are then refused as ``key_not_active``)."""
        return self.set_status(KeyStatus.REVOKED)

    def __repr__(self) -> str:
        r = self._record
        return (
            f"EphemeralKey(client_id={r.client_id!r}, scopes={list(r.scopes)!r}, "
            f"status={r.status.value!r}, keyid={r.keyid!r}, registered={self.registered})"
        )


class KeyFactory:
    """Makes :class:`EphemeralKey` objects and registers them, one line each.

    Args:
        registry: where keys are registered (``None``: never registered).
        clock: epoch seconds for ``created_at`` and ``expires_in`` (default: the real clock).
        unique_client_ids: append ``-<8 random hex>`` to every client_id this
            factory chooses itself (set for registries shared between runs or
            workers, where a registry allows one key per client_id).

    Attributes:
        keys: every key made, oldest first.
    """

    def __init__(
        self,
        registry: KeyRegistry | None,
        clock: Callable[[], float] = time.time,
        *,
        unique_client_ids: bool = False,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.unique_client_ids = unique_client_ids
        self.keys: list[EphemeralKey] = []
        self._named = 0

    def client_id_for(self, base: str) -> str:
        """The client_id this factory uses for a key named ``base`` (``base`` plus a random suffix if unique)."""
        return f"{base}-{secrets.token_hex(4)}" if self.unique_client_ids else base

    def __call__(
        self,
        client_id: str | None = None,
        *,
        scopes: Iterable[str] | str = (),
        status: KeyStatus | str = KeyStatus.ACTIVE,
        expires_in: float | None = None,
        expires_at: int | None = None,
        label: str = "",
        register: bool = True,
    ) -> EphemeralKey:
        """Make a key pair and register it.

        Args:
            client_id: the identity (default ``client-<n>``, n = 1, 2, ... for the keys
                this factory names itself).
            scopes: a list of scopes, or one space-separated string (``"read write"``).
            status: ``active`` (default), ``pending``, ``rotated``, ``revoked``, ``expired`` or ``suspended``.
            expires_in: seconds from the factory's clock until the key stops verifying.
            expires_at: the same as an absolute epoch-seconds time.
            label: free text stored with the key.
            register: ``False`` makes a key the registry does not know (``unknown_key``).

        Raises:
            ValueError: a bad ``status``, or both ``expires_in`` and ``expires_at``.
            TypeError: a scope is not a non-empty string.
            RegistryError: the registry refused the key (``client_id_taken``: a
                registry holds one key per client_id, so pick another one).
        """
        if expires_in is not None and expires_at is not None:
            raise ValueError("give expires_in or expires_at, not both")
        now = self.clock()
        if expires_in is not None:
            expires_at = int(now + expires_in)
        if client_id is None:
            self._named += 1
            client_id = self.client_id_for(f"client-{self._named}")
        private_key = Ed25519PrivateKey.generate()
        record = KeyRecord.for_public_key(
            private_key.public_key(),
            client_id,
            label=label,
            scopes=_scopes(scopes),
            status=KeyStatus(status),
            created_at=int(now),
            updated_at=int(now),
            expires_at=expires_at,
        )
        registry = self.registry if register else None
        if registry is not None:
            try:
                record = registry.register(record)
            except RegistryError as exc:
                if exc.reason is Reason.CLIENT_ID_TAKEN:
                    raise RegistryError(
                        f"client_id {client_id!r} already has a key in this registry; a registry holds one key "
                        "per client_id, so give each test key its own client_id (or leave it out to get one)",
                        exc.reason,
                    ) from exc
                raise
        key = EphemeralKey(private_key, record, registry=registry, clock=self.clock)
        self.keys.append(key)
        return key

    def revoke_all(self) -> None:
        """Revoke every registered key this factory made that is still ``active``, ``pending`` or
        ``suspended`` (best effort)."""
        for key in self.keys:
            if key.registry is None:
                continue
            try:
                if key.status in (KeyStatus.ACTIVE, KeyStatus.PENDING, KeyStatus.SUSPENDED):
                    key.revoke()
            except RegistryError:
                pass


__all__ = ["DEFAULT_CLIENT_ID", "EphemeralKey", "KeyFactory", "PinnedNonceSigner"]
