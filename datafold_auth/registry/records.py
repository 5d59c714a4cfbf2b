"""Key records and statuses kept by a key registry."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..jwk import check_public_key, jwk_thumbprint, public_jwk, public_key_bytes


class KeyStatus(StrEnum):
    """Lifecycle status of a registered key. Only ``active`` keys verify requests."""

    PENDING = "pending"
    ACTIVE = "active"
    ROTATED = "rotated"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class KeyRecord:
    """One registered public key.

    Attributes:
        keyid: RFC 7638 JWK thumbprint of ``public_key`` (43 characters).
        public_key: the 32-byte RFC 8032 public key.
        client_id: the identity requests signed by this key act as.
        label: free text chosen by the client (at most 200 characters).
        scopes: permissions granted to the key, e.g. ``("read", "write")``.
        status: see :class:`KeyStatus`.
        created_at, updated_at: epoch seconds.
        expires_at: epoch seconds after which the key no longer verifies, or ``None``.

    Raises:
        TypeError, ValueError: a field has the wrong type or is empty.
        KeyFormatError: ``public_key`` is not an acceptable Ed25519 public key.
    """

    keyid: str
    public_key: bytes
    client_id: str
    label: str = ""
    scopes: tuple[str, ...] = ()
    status: KeyStatus = KeyStatus.ACTIVE
    created_at: int = 0
    updated_at: int = 0
    expires_at: int | None = None
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("keyid", "client_id"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string")
            if not value:
                raise ValueError(f"{name} must not be empty")
        if not isinstance(self.label, str):
            raise TypeError("label must be a string")
        # A string is iterable too: "admin" must not become the scopes a, d, m, i, n.
        if isinstance(self.scopes, str | bytes | bytearray) or not all(isinstance(s, str) for s in self.scopes):
            raise TypeError("scopes must be a sequence of strings")
        for name in ("created_at", "updated_at", "expires_at"):
            value = getattr(self, name)
            if not (value is None and name == "expires_at") and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise TypeError(f"{name} must be epoch seconds" + (" or None" if name == "expires_at" else ""))
        object.__setattr__(self, "_key", check_public_key(self.public_key))
        object.__setattr__(self, "status", KeyStatus(self.status))
        object.__setattr__(self, "scopes", tuple(self.scopes))

    @classmethod
    def for_public_key(cls, key: Ed25519PublicKey | bytes, client_id: str | None = None, **fields: Any) -> KeyRecord:
        """Make a record for a key; ``keyid`` is computed and ``client_id`` defaults to it."""
        raw = key if isinstance(key, bytes) else public_key_bytes(key)
        keyid = jwk_thumbprint(raw)
        return cls(keyid=keyid, public_key=raw, client_id=client_id or keyid, **fields)

    @property
    def verifier_key(self) -> Ed25519PublicKey:
        """The loaded public key, ready for ``verify``."""
        return self._key

    @property
    def jwk(self) -> dict[str, str]:
        """The public JWK (RFC 8037)."""
        return public_jwk(self.public_key)

    def is_usable(self, now: float) -> bool:
        """``True`` if the key is ``active`` and not past ``expires_at`` at ``now`` (epoch seconds)."""
        return self.status is KeyStatus.ACTIVE and (self.expires_at is None or now < self.expires_at)

    def with_status(self, status: KeyStatus, now: int) -> KeyRecord:
        """A copy with a new status and ``updated_at``."""
        return replace(self, status=status, updated_at=now)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready public view (the key as a JWK; nothing secret is ever in a record)."""
        return {
            "keyid": self.keyid,
            "jwk": self.jwk,
            "client_id": self.client_id,
            "label": self.label,
            "scopes": list(self.scopes),
            "status": self.status.value,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
        }


__all__ = ["KeyRecord", "KeyStatus"]
