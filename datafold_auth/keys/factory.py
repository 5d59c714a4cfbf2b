"""Choosing a key store: :func:`open_store`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from keyring.backend import KeyringBackend

from .errors import KeyStoreError
from .file_store import FileKeyStore
from .keyring_store import DEFAULT_SERVICE, KeyringKeyStore, keyring_status
from .store import KeyStore

StoreChoice = Literal["auto", "file", "keyring"]
"""What :func:`open_store` is asked for."""


def open_store(
    kind: StoreChoice = "auto",
    *,
    root: Path | None = None,
    service: str = DEFAULT_SERVICE,
    keyring_backend: KeyringBackend | None = None,
) -> tuple[KeyStore, str]:
    """Open a key store and say, in a human sentence, which one and why.

    Args:
        kind: ``"file"``, ``"keyring"``, or ``"auto"``: the OS keychain if
            :func:`~.keyring_store.keyring_status` finds it usable, else files.
        root: the file store's folder (default :func:`~.file_store.default_root`).
        service: the keyring service name.
        keyring_backend: the keyring backend (default ``keyring.get_keyring()``).

    Returns:
        ``(store, message)``.

    Raises:
        KeyStoreError: ``kind`` is unknown, or ``"keyring"`` with no usable keychain.
    """
    if kind not in ("auto", "file", "keyring"):
        raise KeyStoreError(f"unknown key store kind {kind!r}: use auto, file or keyring")
    if kind == "file":
        store = FileKeyStore(root)
        return store, f"storing key files in {store.root} (file store requested)"
    usable, why = keyring_status(keyring_backend)
    if usable:
        chosen = "requested" if kind == "keyring" else "auto-detected"
        return KeyringKeyStore(service, backend=keyring_backend), f"using the OS keychain ({why}, {chosen})"
    if kind == "keyring":
        raise KeyStoreError(f"no usable OS keychain: {why}")
    store = FileKeyStore(root)
    return (
        store,
        f"no OS keychain available (headless Linux? {why}); storing encrypted files in {store.root}",
    )


__all__ = ["StoreChoice", "open_store"]
