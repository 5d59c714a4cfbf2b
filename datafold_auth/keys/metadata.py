"""Public, non-secret facts about a stored key: :class:`KeyMetadata`."""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import KeyFormatError
from ..jwk import (
    b64url_decode,
    b64url_encode,
    check_public_key,
    jwk_thumbprint,
    public_jwk,
    public_key_bytes,
)
from .errors import KeyStoreError

StoreKind = Literal["file", "keyring"]
"""Which backend holds a key."""

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Shape of a key name, for ``fullmatch`` (see :func:`check_name`)."""


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid key name, else raise :class:`KeyStoreError`.

    A key name is 1 to 64 characters of ``A-Z a-z 0-9 . _ -``, not starting with
    ``.``, ``_`` or ``-`` (it becomes part of file names and keychain entries).
    """
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise KeyStoreError(f"invalid key name {name!r}: use 1-64 of A-Z a-z 0-9 . _ - (starting alphanumeric)")
    return name


BACKUP_RECORD_FORMATS = ("pem", "json", "binary", "paper", "shamir")


@dataclass
class BackupRecord:
    """A backup of a key that was read back and verified.

    Attributes:
        format: ``pem``, ``json``, ``binary``, ``paper`` or ``shamir``.
        location: where it was written (a path, or a folder for Shamir shares), for humans.
        created: when it was written or first recorded, epoch seconds.
        verified: when it was last verified to restore this key, epoch seconds.
        detail: a short description (KDF, Shamir plan, ...); never secret.
    """

    format: str
    location: str
    created: int
    verified: int
    detail: str = ""

    @classmethod
    def from_dict(cls, data: Any) -> BackupRecord:
        """Parse one entry of the metadata ``backups`` list.

        Raises:
            ValueError: malformed.
        """
        if not isinstance(data, dict) or set(data) - {"format", "location", "created", "verified", "detail"}:
            raise ValueError("malformed backup record")
        record = cls(data["format"], data["location"], data["created"], data["verified"], data.get("detail", ""))
        ok = (
            record.format in BACKUP_RECORD_FORMATS
            and isinstance(record.location, str)
            and type(record.created) is int
            and type(record.verified) is int
            and isinstance(record.detail, str)
        )
        if not ok:
            raise ValueError("malformed backup record")
        return record


@dataclass
class KeyMetadata:
    """What is known about a stored key, apart from the private key itself.

    Attributes:
        name: the key's name in its store (see :func:`check_name`).
        keyid: the RFC 7638 SHA-256 JWK thumbprint of the public key (43 characters).
        public_key: the 32-byte public key, unpadded base64url (the JWK ``x`` member).
        label: free text for humans.
        created: creation time, integer seconds since the Unix epoch.
        client_id: the client id the key is registered under, if known.
        servers: registration URLs this key is registered with, in order of registration.
        server_status: the key's last status seen at each of those URLs (``active``, ``pending``,
            ``revoked``, ...), as answered by the server to keytools; a hint, not the server's truth.
        store: the backend holding the key; set by the store.
        encrypted: whether the private key is stored passphrase-encrypted; set by the store.
        backups: the verified backups of this key (:class:`BackupRecord`), oldest first.
    """

    name: str
    keyid: str
    public_key: str
    label: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    client_id: str | None = None
    servers: list[str] = field(default_factory=list)
    store: StoreKind = "file"
    encrypted: bool = True
    backups: list[BackupRecord] = field(default_factory=list)
    server_status: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_key(
        cls,
        name: str,
        key: Ed25519PrivateKey,
        *,
        label: str = "",
        client_id: str | None = None,
    ) -> KeyMetadata:
        """Metadata for a new key, created now.

        Raises:
            KeyStoreError: the name is invalid.
        """
        raw = public_key_bytes(key)
        return cls(
            check_name(name),
            jwk_thumbprint(raw),
            b64url_encode(raw),
            label,
            client_id=client_id,
        )

    def public_jwk(self) -> dict[str, str]:
        """The public JWK ``{"kty": "OKP", "crv": "Ed25519", "x": ...}`` (RFC 8037)."""
        return public_jwk(b64url_decode(self.public_key))

    def add_server(self, url: str) -> bool:
        """Record that the key is registered with ``url``; False if it was already listed.

        Persist the change with ``KeyStore.update_metadata``.
        """
        if not isinstance(url, str) or not url:
            raise KeyStoreError("a server URL must be a non-empty string")
        if url in self.servers:
            return False
        self.servers.append(url)
        return True

    def add_backup(self, record: BackupRecord) -> None:
        """Record a verified backup; an earlier record of the same format and location is replaced.

        Persist the change with ``KeyStore.update_metadata``.
        """
        self.backups = [b for b in self.backups if (b.format, b.location) != (record.format, record.location)]
        self.backups.append(record)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of all fields."""
        return asdict(self)

    def to_json(self) -> str:
        """The JSON document stored beside a key (all fields except ``store``)."""
        data = self.to_dict()
        del data["store"]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, store: StoreKind, where: str) -> KeyMetadata:
        """Parse and check a document written by :meth:`to_json`.

        Args:
            text: the JSON document.
            store: the backend it was read from.
            where: how to name its origin in error messages (a path or entry).

        Raises:
            KeyStoreError: the document is malformed or its keyid does not match its public key.
        """
        try:
            data = json.loads(text)
            meta = cls(
                name=check_name(data["name"]),
                keyid=data["keyid"],
                public_key=data["public_key"],
                label=data.get("label", ""),
                created=data["created"],
                client_id=data.get("client_id"),
                servers=list(data.get("servers", [])),
                store=store,
                encrypted=data["encrypted"],
                backups=[BackupRecord.from_dict(b) for b in data.get("backups", [])],
                server_status=dict(data.get("server_status", {})),
            )
            raw = b64url_decode(meta.public_key)
            check_public_key(raw)
        except (ValueError, KeyError, TypeError, KeyFormatError) as exc:
            raise KeyStoreError(f"key metadata in {where} is malformed") from exc
        types_ok = (
            isinstance(meta.label, str)
            and type(meta.created) is int
            and isinstance(meta.client_id, str | None)
            and all(isinstance(s, str) for s in meta.servers)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.server_status.items())
            and isinstance(meta.encrypted, bool)
        )
        if not types_ok or meta.keyid != jwk_thumbprint(raw):
            raise KeyStoreError(f"key metadata in {where} is malformed or inconsistent")
        return meta


__all__ = ["BACKUP_RECORD_FORMATS", "NAME_RE", "BackupRecord", "KeyMetadata", "StoreKind", "check_name"]
