"""Client-side Ed25519 key management: generation, and storage in files or the OS keychain.

* :func:`generate_private_key` makes a self-tested key.
* :class:`KeyStore` is the storage interface, with two backends:
  :class:`FileKeyStore` (encrypted PKCS#8 files, mode 0600) and
  :class:`KeyringKeyStore` (the OS keychain via ``keyring``);
  :func:`open_store` picks one.
* :class:`KeyMetadata` is what is known about a key besides the private key.

Passphrases are bytes, NFC-normalized before use (see :mod:`.pkcs8`).
"""

from .errors import (
    KeyExistsError,
    KeyNotFoundError,
    KeyStoreError,
    WrongPassphraseError,
)
from .factory import StoreChoice, open_store
from .file_store import HOME_ENV, FileKeyStore, default_root
from .generate import generate_private_key, self_test
from .keyring_store import DEFAULT_SERVICE, KeyringKeyStore, keyring_status
from .metadata import KeyMetadata, StoreKind, check_name
from .pkcs8 import (
    KDF_ITERATIONS,
    decode_private_key,
    encode_private_key,
    normalize_passphrase,
)
from .store import BaseKeyStore, KeyStore

__all__ = [
    "DEFAULT_SERVICE",
    "HOME_ENV",
    "KDF_ITERATIONS",
    "BaseKeyStore",
    "FileKeyStore",
    "KeyExistsError",
    "KeyMetadata",
    "KeyNotFoundError",
    "KeyStore",
    "KeyStoreError",
    "KeyringKeyStore",
    "StoreChoice",
    "StoreKind",
    "WrongPassphraseError",
    "check_name",
    "decode_private_key",
    "default_root",
    "encode_private_key",
    "generate_private_key",
    "keyring_status",
    "normalize_passphrase",
    "open_store",
    "self_test",
]
