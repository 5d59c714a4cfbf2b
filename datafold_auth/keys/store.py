"""The key store interface (:class:`KeyStore`) and the logic its backends share.

A store keeps, per key name, the private key as PKCS#8 PEM (encrypted unless
the caller explicitly asks otherwise, see :mod:`.pkcs8`) and its
:class:`~.metadata.KeyMetadata` as JSON. Backends (:class:`~.file_store.FileKeyStore`,
:class:`~.keyring_store.KeyringKeyStore`) derive from :class:`BaseKeyStore` and
implement only raw reads and writes.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..jwk import b64url_encode, jwk_thumbprint, public_key_bytes
from .errors import KeyNotFoundError, KeyStoreError
from .metadata import KeyMetadata, StoreKind, check_name
from .pkcs8 import decode_private_key, encode_private_key


class KeyStore(Protocol):
    """Where private keys and their metadata live. All methods raise :class:`KeyStoreError`
    (or a subclass) on failure, and an invalid key name is a :class:`KeyStoreError`.
    """

    kind: StoreKind

    def save(
        self,
        name: str,
        private_key: Ed25519PrivateKey,
        metadata: KeyMetadata,
        *,
        passphrase: bytes | bytearray | None,
        overwrite: bool = False,
        allow_unencrypted: bool = False,
    ) -> KeyMetadata:
        """Store a key and its metadata; return the metadata as stored.

        Args:
            name: the key name; must equal ``metadata.name``.
            private_key: the key; must match ``metadata.keyid`` and ``metadata.public_key``.
            metadata: its metadata (``store`` and ``encrypted`` are set by the store).
            passphrase: encrypts the key (NFC-normalized first); None stores it
                unencrypted, which also requires ``allow_unencrypted=True``.
            overwrite: replace an existing key of that name.
            allow_unencrypted: the explicit consent to store the key unencrypted.

        Raises:
            KeyExistsError: the name is taken and ``overwrite`` is false.
            KeyStoreError: mismatched metadata, missing consent, empty passphrase, I/O error.
        """
        ...

    def load(self, name: str, *, passphrase: bytes | bytearray | None) -> Ed25519PrivateKey:
        """Load and decrypt a private key; a passphrase given for an unencrypted key is ignored.

        Raises:
            KeyNotFoundError: no such key.
            WrongPassphraseError: the passphrase does not decrypt the key.
            KeyStoreError: the key is encrypted and no passphrase was given; the
                key does not match its metadata; unsafe file permissions; I/O error.
            KeyFormatError: the stored key is not a PKCS#8 Ed25519 key.
        """
        ...

    def metadata(self, name: str) -> KeyMetadata:
        """The metadata of a key; needs no passphrase.

        Raises:
            KeyNotFoundError: no such key.
            KeyStoreError: the metadata is missing or malformed.
        """
        ...

    def update_metadata(self, metadata: KeyMetadata) -> KeyMetadata:
        """Persist changed ``label``, ``client_id``, ``servers`` and ``backups`` of a stored key; return it as stored.

        Raises:
            KeyNotFoundError: no key named ``metadata.name``.
            KeyStoreError: ``keyid`` differs from the stored key's (it was replaced meanwhile).
        """
        ...

    def delete(self, name: str) -> None:
        """Remove a key and its metadata.

        Raises:
            KeyNotFoundError: no such key.
        """
        ...

    def exists(self, name: str) -> bool:
        """Whether a key of that name is stored."""
        ...

    def location(self, name: str) -> str:
        """Where the key of that name is (or would be) stored, for humans."""
        ...

    def list(self) -> builtins.list[KeyMetadata]:
        """Metadata of every stored key, sorted by name."""
        ...


class BaseKeyStore(ABC):
    """The :class:`KeyStore` logic over raw per-name key and metadata entries."""

    kind: StoreKind

    @abstractmethod
    def _write(self, name: str, pem: bytes, meta_json: str, *, overwrite: bool) -> None:
        """Write key and metadata; raise KeyExistsError if the key exists and not ``overwrite``."""

    @abstractmethod
    def _write_meta(self, name: str, meta_json: str) -> None:
        """Replace the metadata of an existing key."""

    @abstractmethod
    def _read_key(self, name: str) -> bytes:
        """The stored PEM; raise KeyNotFoundError if absent."""

    @abstractmethod
    def _read_meta(self, name: str) -> tuple[str, str]:
        """The stored metadata JSON and where it is; raise KeyNotFoundError if absent."""

    @abstractmethod
    def _remove(self, name: str) -> bool:
        """Remove key and metadata; return whether the key existed."""

    @abstractmethod
    def _names(self) -> builtins.list[str]:
        """The names of all stored keys."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether a key of that name is stored."""

    @abstractmethod
    def location(self, name: str) -> str:
        """Where the key of that name is (or would be) stored, for humans."""

    def save(
        self,
        name: str,
        private_key: Ed25519PrivateKey,
        metadata: KeyMetadata,
        *,
        passphrase: bytes | bytearray | None,
        overwrite: bool = False,
        allow_unencrypted: bool = False,
    ) -> KeyMetadata:
        """See :meth:`KeyStore.save`."""
        raw = public_key_bytes(private_key)
        if (metadata.name, metadata.keyid, metadata.public_key) != (
            check_name(name),
            jwk_thumbprint(raw),
            b64url_encode(raw),
        ):
            raise KeyStoreError(f"the metadata given does not describe key {name!r} (name or keyid differ)")
        if passphrase is None and not allow_unencrypted:
            raise KeyStoreError("no passphrase given; storing a key unencrypted needs allow_unencrypted=True")
        stored = replace(
            metadata,
            store=self.kind,
            encrypted=passphrase is not None,
            servers=list(metadata.servers),
            backups=list(metadata.backups),
            server_status=dict(metadata.server_status),
        )
        self._write(
            name,
            encode_private_key(private_key, passphrase),
            stored.to_json(),
            overwrite=overwrite,
        )
        return stored

    def load(self, name: str, *, passphrase: bytes | bytearray | None) -> Ed25519PrivateKey:
        """See :meth:`KeyStore.load`."""
        for _ in range(2):  # a second read only when a rewrite overtook the first
            meta = self.metadata(name)
            key = decode_private_key(self._read_key(name), passphrase, what=f"key {name!r}")
            keyid = jwk_thumbprint(key)
            for _ in range(3):
                if keyid == meta.keyid:
                    return key
                # Read between a rewrite's two moves (key file first, then its metadata): the
                # metadata of the key just read follows it, so read that again.
                meta = self.metadata(name)
        raise KeyStoreError(f"key {name!r} does not match its metadata (keyid {meta.keyid})")

    def metadata(self, name: str) -> KeyMetadata:
        """See :meth:`KeyStore.metadata`."""
        text, where = self._read_meta(check_name(name))
        return KeyMetadata.from_json(text, store=self.kind, where=where)

    def update_metadata(self, metadata: KeyMetadata) -> KeyMetadata:
        """See :meth:`KeyStore.update_metadata`."""
        current = self.metadata(metadata.name)
        if metadata.keyid != current.keyid:
            raise KeyStoreError(f"key {metadata.name!r} was replaced (keyid is now {current.keyid}); not updating")
        updated = replace(
            current,
            label=metadata.label,
            client_id=metadata.client_id,
            servers=list(metadata.servers),
            backups=list(metadata.backups),
            server_status=dict(metadata.server_status),
        )
        self._write_meta(metadata.name, updated.to_json())
        return updated

    def delete(self, name: str) -> None:
        """See :meth:`KeyStore.delete`."""
        if not self._remove(check_name(name)):
            raise KeyNotFoundError(f"no key named {name!r} in {self.location(name)}")

    def list(self) -> builtins.list[KeyMetadata]:
        """See :meth:`KeyStore.list`."""
        return [self.metadata(name) for name in sorted(self._names())]


__all__ = ["BaseKeyStore", "KeyStore"]
