"""Exceptions of the local key store.

All derive from :class:`KeyStoreError` (reason ``key_store_error``), itself a
:class:`~datafold_auth.errors.DatafoldAuthError`. Messages name keys, paths and
stores, never passphrases or key bytes.
"""

from __future__ import annotations

from ..errors import DatafoldAuthError, Reason


class KeyStoreError(DatafoldAuthError):
    """A key could not be saved, found, read or decrypted."""

    default_reason = Reason.KEY_STORE_ERROR


class KeyNotFoundError(KeyStoreError):
    """No key of that name is in the store (reason ``not_found``)."""

    default_reason = Reason.NOT_FOUND


class KeyExistsError(KeyStoreError):
    """A key of that name already exists and overwriting was not asked for."""


class WrongPassphraseError(KeyStoreError):
    """The passphrase does not decrypt the key (or the encrypted key is corrupt)."""


__all__ = [
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyStoreError",
    "WrongPassphraseError",
]
