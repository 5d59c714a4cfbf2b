"""Key records and statuses kept by a key registry."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..jwk import check_public_key, jwk_thumbprint, key_fingerprint, public_jwk, public_key_bytes


class KeyStatus(StrEnum):
    """Lifecycle status of a registered key (docs/operations.md, Key lifecycle).

    ``active`` keys verify requests; so does a ``rotated`` key until its
    ``overlap_until``. ``pending`` keys wait for approval; ``suspended`` keys
    are blocked until an administrator activates them again; ``revoked`` is final;
    ``expired`` is set once ``expires_at`` has passed.
    """

    PENDING = "pending"
    ACTIVE = "active"
    ROTATED = "rotated"
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUSPENDED = "suspended"


TRANSITIONS: dict[KeyStatus, frozenset[KeyStatus]] = {
    KeyStatus.PENDING: frozenset({KeyStatus.ACTIVE, KeyStatus.SUSPENDED, KeyStatus.REVOKED, KeyStatus.EXPIRED}),
    KeyStatus.ACTIVE: frozenset({KeyStatus.SUSPENDED, KeyStatus.REVOKED, KeyStatus.ROTATED, KeyStatus.EXPIRED}),
    KeyStatus.SUSPENDED: frozenset({KeyStatus.ACTIVE, KeyStatus.REVOKED, KeyStatus.EXPIRED}),
    KeyStatus.ROTATED: frozenset({KeyStatus.REVOKED, KeyStatus.EXPIRED}),
    KeyStatus.EXPIRED: frozenset({KeyStatus.REVOKED}),
    KeyStatus.REVOKED: frozenset(),
}
"""The lifecycle changes the registration service and the admin API make (``from -> {to, ...}``).
``revoked`` is final. Registries themselves enforce only what a caller passes as ``expected``."""


def allowed_from(target: KeyStatus) -> frozenset[KeyStatus]:
    """The statuses from which a key may move to ``target`` (see :data:`TRANSITIONS`)."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


EXPIRABLE = frozenset({KeyStatus.PENDING, KeyStatus.ACTIVE, KeyStatus.SUSPENDED, KeyStatus.ROTATED})
"""Statuses the expiry sweep moves to ``expired`` once ``expires_at`` has passed."""


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
        replaces: for a key made by rotation, the keyid of the key it replaced.
        replaced_by: for a ``rotated`` key, the keyid of its successor.
        rotated_at: for a ``rotated`` key, when it was rotated (epoch seconds).
        overlap_until: for a ``rotated`` key, epoch seconds until which it still verifies.
        status_reason: the reason given with the last status change (admin views only).

    Raises:
        TypeError, ValueError: a field has the wrong type, is empty, or is a time outside a signed
            64-bit integer (or NaN).
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
    replaces: str | None = None
    replaced_by: str | None = None
    rotated_at: int | None = None
    overlap_until: int | None = None
    status_reason: str = ""
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
        for name in ("created_at", "updated_at", "expires_at", "rotated_at", "overlap_until"):
            value = getattr(self, name)
            optional = name not in ("created_at", "updated_at")
            if not (value is None and optional) and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise TypeError(f"{name} must be epoch seconds" + (" or None" if optional else ""))
            if value is not None and not -(2**63) <= value < 2**63:  # NaN fails the comparison too
                raise ValueError(f"{name} must fit a signed 64-bit integer (the SQL registries' columns)")
        for name in ("replaces", "replaced_by"):
            if not isinstance(getattr(self, name), str | None):
                raise TypeError(f"{name} must be a keyid or None")
        if not isinstance(self.status_reason, str):
            raise TypeError("status_reason must be a string")
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

    @property
    def fingerprint(self) -> str:
        """The key's fingerprint for people to compare (:func:`datafold_auth.jwk.key_fingerprint`)."""
        return key_fingerprint(self.keyid)

    def is_usable(self, now: float) -> bool:
        """``True`` if the key verifies requests at ``now`` (epoch seconds): ``active``, or ``rotated``
        before its ``overlap_until``, and in either case not past ``expires_at``."""
        status = self.status
        if status is KeyStatus.ACTIVE:
            return self.expires_at is None or now < self.expires_at
        if status is KeyStatus.ROTATED:
            until = self.overlap_until
            return until is not None and now < until and (self.expires_at is None or now < self.expires_at)
        return False

    def effective_status(self, now: float) -> KeyStatus:
        """The status at ``now``: ``expired`` once ``expires_at`` has passed (for any status in
        :data:`EXPIRABLE`), even before the expiry sweep has stored it; else :attr:`status`."""
        if self.expires_at is not None and now >= self.expires_at and self.status in EXPIRABLE:
            return KeyStatus.EXPIRED
        return self.status

    def with_status(self, status: KeyStatus, now: int, reason: str = "") -> KeyRecord:
        """A copy with a new status, ``updated_at`` and ``status_reason``."""
        return replace(self, status=status, updated_at=now, status_reason=reason)

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
            "fingerprint": self.fingerprint,
            "replaces": self.replaces,
            "replaced_by": self.replaced_by,
            "rotated_at": self.rotated_at,
            "overlap_until": self.overlap_until,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> KeyRecord:
        """The record of a :meth:`to_dict` (or :meth:`to_admin_dict`) document, e.g. from another
        instance's ``GET {mount}/keys/{keyid}``.

        The keyid must be the RFC 7638 thumbprint of the JWK, so a record cannot
        pair one keyid with another key.

        Raises:
            ValueError: a member is missing, has the wrong type, or the keyid does not match the JWK.
            KeyFormatError: the JWK is not an acceptable Ed25519 public key.
        """
        from ..jwk import public_key_from_jwk

        if not isinstance(doc, dict):
            raise ValueError("a key record is a JSON object")
        raw = public_key_bytes(public_key_from_jwk(doc.get("jwk")))
        keyid = doc.get("keyid")
        if keyid != jwk_thumbprint(raw):
            raise ValueError("the keyid is not the thumbprint of the record's JWK")
        scopes = doc.get("scopes", [])
        if not isinstance(scopes, list):
            raise ValueError("scopes must be a list")
        try:
            return cls(
                keyid=keyid,
                public_key=raw,
                client_id=doc["client_id"],
                label=doc.get("label", ""),
                scopes=tuple(scopes),
                status=KeyStatus(doc["status"]),
                created_at=doc.get("created_at", 0),
                updated_at=doc.get("updated_at", 0),
                expires_at=doc.get("expires_at"),
                replaces=doc.get("replaces"),
                replaced_by=doc.get("replaced_by"),
                rotated_at=doc.get("rotated_at"),
                overlap_until=doc.get("overlap_until"),
                status_reason=doc.get("status_reason", ""),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed key record: {exc}") from None

    def to_admin_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` plus what only administrators see (``status_reason``)."""
        doc = self.to_dict()
        doc["status_reason"] = self.status_reason
        return doc


__all__ = ["EXPIRABLE", "TRANSITIONS", "KeyRecord", "KeyStatus", "allowed_from"]
