"""Client-side Ed25519 key management: generation, storage, formats, encrypted backups and recovery.

* :func:`generate_private_key` makes a self-tested key.
* :class:`KeyStore` is the storage interface, with two backends:
  :class:`FileKeyStore` (encrypted PKCS#8 files, mode 0600 in a 0700 folder) and
  :class:`KeyringKeyStore` (the OS keychain via ``keyring``);
  :func:`open_store` picks one.
* :class:`KeyMetadata` is what is known about a key besides the private key,
  including its verified backups (:class:`BackupRecord`); :func:`key_status`
  sums up its security level.
* :mod:`.formats` reads and writes key formats (seed hex/base64url, PKCS#8,
  SPKI, JWK, OpenSSH) and explains a wrong one (:func:`identify`).
* Backups (docs/formats.md): encrypted PKCS#8 PEM (:mod:`.pkcs8`), JSON and
  binary envelopes (:mod:`.backup`: :func:`seal`/:func:`unseal`), BIP39 paper
  (:mod:`.paper`) and SLIP-39 Shamir shares (:mod:`.shamir`);
  :func:`restore_backup` reads any of them back.

Passphrases are bytes, NFC-normalized before use (:func:`normalize_passphrase`).
What can and cannot be wiped from memory is explained in :mod:`.secret`.
"""

from .backup import BackupInfo, Envelope, seal, unseal
from .errors import (
    KeyExistsError,
    KeyNotFoundError,
    KeyStoreError,
    WrongPassphraseError,
)
from .factory import StoreChoice, open_store
from .file_store import HOME_ENV, FileKeyStore, default_root
from .formats import (
    PRIVATE_FORMATS,
    PUBLIC_FORMATS,
    Identified,
    ImportedKey,
    export_private_key,
    export_public_key,
    identify,
    read_private_key,
    read_public_key,
)
from .fsutil import write_private_file
from .generate import generate_private_key, self_test
from .kdf import PBKDF2_DEFAULT, SCRYPT_DEFAULT, KdfParams, Pbkdf2Params, ScryptParams
from .keyring_store import DEFAULT_SERVICE, KeyringKeyStore, keyring_status
from .metadata import BackupRecord, KeyMetadata, StoreKind, check_name
from .paper import paper_document, read_paper, seed_words, words_to_key
from .pkcs8 import (
    KDF_ITERATIONS,
    decode_private_key,
    encode_private_key,
    normalize_passphrase,
    pbes2_info,
)
from .recovery import BACKUP_FORMATS, BackupFormat, Restored, detect_backup, restore_backup, verify_restored
from .secret import SecretBytes, wipe
from .shamir import ShamirPlan, combine, split_key
from .status import LOSS_WARNING, KeyStatus, backup_file_missing, key_status
from .store import BaseKeyStore, KeyStore

__all__ = [
    "BACKUP_FORMATS",
    "DEFAULT_SERVICE",
    "HOME_ENV",
    "KDF_ITERATIONS",
    "LOSS_WARNING",
    "PBKDF2_DEFAULT",
    "PRIVATE_FORMATS",
    "PUBLIC_FORMATS",
    "SCRYPT_DEFAULT",
    "BackupFormat",
    "BackupInfo",
    "BackupRecord",
    "BaseKeyStore",
    "Envelope",
    "FileKeyStore",
    "Identified",
    "ImportedKey",
    "KdfParams",
    "KeyExistsError",
    "KeyMetadata",
    "KeyNotFoundError",
    "KeyStatus",
    "KeyStore",
    "KeyStoreError",
    "KeyringKeyStore",
    "Pbkdf2Params",
    "Restored",
    "ScryptParams",
    "SecretBytes",
    "ShamirPlan",
    "StoreChoice",
    "StoreKind",
    "WrongPassphraseError",
    "backup_file_missing",
    "check_name",
    "combine",
    "decode_private_key",
    "default_root",
    "detect_backup",
    "encode_private_key",
    "export_private_key",
    "export_public_key",
    "generate_private_key",
    "identify",
    "key_status",
    "keyring_status",
    "normalize_passphrase",
    "open_store",
    "paper_document",
    "pbes2_info",
    "read_paper",
    "read_private_key",
    "read_public_key",
    "restore_backup",
    "seal",
    "seed_words",
    "self_test",
    "split_key",
    "unseal",
    "verify_restored",
    "wipe",
    "words_to_key",
    "write_private_file",
]
