"""Reading any backup back: format detection, restore, and the checks that prove a backup restores.

Formats (docs/formats.md): ``pem`` (encrypted PKCS#8), ``json`` and ``binary``
(:mod:`.backup`), ``paper`` (:mod:`.paper`), ``shamir`` (:mod:`.shamir`).

:func:`restore_backup` reads one (or, for Shamir, several) backup inputs and
returns the key with what is known about it; it runs the same checks that a
backup writer runs on what it has just written (:func:`verify_restored`):
the decrypted key's keyid must be the expected one and a fresh signature made
with it must verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import KeyFormatError
from ..jwk import jwk_thumbprint
from . import paper as _paper
from . import shamir as _shamir
from .backup import MAGIC, BackupInfo, Envelope, unseal
from .errors import KeyStoreError
from .formats import identify
from .generate import self_test
from .kdf import KdfParams, is_weak
from .pkcs8 import decode_private_key, is_encrypted, pbes2_info

BackupFormat = Literal["pem", "json", "binary", "paper", "shamir"]
BACKUP_FORMATS: tuple[BackupFormat, ...] = ("pem", "json", "binary", "paper", "shamir")


@dataclass
class Restored:
    """A key read back from a backup.

    Attributes:
        private_key: the key (not shown in ``repr``).
        format: which backup format.
        description: e.g. ``JSON backup (scrypt N=2^17 r=8 p=1, AES-256-GCM)``.
        keyid: the keyid of ``private_key``.
        info: the clear metadata (JSON and binary backups), else None.
        warnings: things worth telling the user (weak KDF cost, unencrypted PEM, ...).
    """

    private_key: Ed25519PrivateKey = field(repr=False)
    format: BackupFormat
    description: str
    keyid: str
    info: BackupInfo | None = None
    warnings: list[str] = field(default_factory=list)


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def detect_backup(data: bytes, *, what: str = "the input") -> BackupFormat:
    """Which backup format ``data`` is in.

    Raises:
        KeyFormatError: none; the message says what the data is instead
            (a public key, an RSA key, truncated JSON, ...).
    """
    if data.startswith(MAGIC):
        return "binary"
    text = _text(data)
    if text is not None:
        stripped = text.lstrip()
        if stripped.startswith(_paper.HEADER.split(",")[0]):
            return "paper"
        if stripped.startswith(_shamir.HEADER.split(",")[0]):
            return "shamir"
        if stripped.startswith("{"):
            if '"datafold-key-backup"' in text:
                return "json"
        words = text.split()
        if words and all(w.isalpha() for w in words):
            if len(words) == _paper.WORD_COUNT:
                return "paper"
            if len(words) % _shamir.SHARE_WORDS == 0:
                return "shamir"
            raise KeyFormatError(f"{what}: {len(words)} words; a paper backup has 24 and a Shamir share 33")
    found = identify(data)
    if found.kind == "private" and found.format in ("pkcs8-pem", "pkcs8-der"):
        return "pem"
    if found.kind == "private":
        raise KeyFormatError(f"{what} is a private key ({found.description}), not a backup; use 'keytools import'")
    raise KeyFormatError(f"{what} is not a backup: {found.description}")


def needs_passphrase(fmt: BackupFormat, inputs: Sequence[bytes]) -> bool:
    """Whether restoring needs a passphrase: JSON, binary, encrypted PEM; Shamir shares whose document says so."""
    if fmt in ("json", "binary"):
        return True
    if fmt == "pem":
        return is_encrypted(inputs[0].strip() if inputs[0].lstrip().startswith(b"-----") else inputs[0])
    if fmt == "shamir":
        return any(doc.passphrase for data in inputs for doc in _shamir.parse_shares(data.decode("utf-8", "replace")))
    return False


def verify_restored(key: Ed25519PrivateKey, keyid: str | None) -> str:
    """Check a restored key: its keyid equals ``keyid`` (if given) and a signature verifies.

    Returns:
        The key's keyid.

    Raises:
        KeyStoreError: another key than expected.
        DatafoldAuthError: reason ``self_test_failed``.
    """
    actual = jwk_thumbprint(key)
    if keyid is not None and actual != keyid:
        raise KeyStoreError(f"the backup holds key {actual}, not the expected key {keyid}")
    self_test(key)
    return actual


def restore_backup(
    inputs: Sequence[bytes],
    passphrase: bytes | bytearray | None = None,
    *,
    fmt: BackupFormat | None = None,
    what: str = "the backup",
) -> Restored:
    """Read a key back from a backup (several inputs only for Shamir shares).

    Args:
        inputs: the file contents (or typed text, UTF-8).
        passphrase: the backup's passphrase (NFC-normalized before use); the
            SLIP-39 passphrase for Shamir shares.
        fmt: the format; detected from the first input if None.
        what: how to name the input in messages.

    Raises:
        KeyFormatError: not a backup, malformed, truncated, wrong number of words, bad checksum, ...
        KeyStoreError: the backup is encrypted and ``passphrase`` is None; inconsistent content.
        WrongPassphraseError: wrong passphrase, or an authenticated field was changed.
    """
    if not inputs:
        raise KeyFormatError("no backup given")
    fmt = fmt or detect_backup(inputs[0], what=what)
    if fmt != "shamir" and len(inputs) != 1:
        raise KeyFormatError(f"a {fmt} backup is one file; several were given")
    data = inputs[0]
    if fmt in ("json", "binary"):
        envelope = Envelope.from_json(data) if fmt == "json" else Envelope.from_binary(data)
        if passphrase is None:
            raise KeyStoreError(f"{what} is encrypted; a passphrase is needed")
        key = unseal(envelope, passphrase)
        warnings = [f"weak KDF cost ({envelope.kdf.describe()}); make a new backup"] if is_weak(envelope.kdf) else []
        description = f"{fmt.upper() if fmt == 'json' else 'binary'} backup ({envelope.kdf.describe()}, AES-256-GCM)"
        return Restored(key, fmt, description, envelope.info.keyid, envelope.info, warnings)
    if fmt == "pem":
        warnings = []
        if is_encrypted(data.strip() if data.lstrip().startswith(b"-----") else data):
            info = pbes2_info(data)
            description = f"encrypted PKCS#8 ({info.description})"
            kdf: KdfParams | None = info.kdf
            if kdf is None or is_weak(kdf):
                warnings.append(f"weak or old encryption ({info.description}); make a new backup")
        else:
            description = "PKCS#8, UNENCRYPTED"
            warnings.append("this PEM is not encrypted: anyone who reads it has the key")
        key = decode_private_key(data, passphrase, what=what)
        return Restored(key, "pem", description, verify_restored(key, None), None, warnings)
    if fmt == "paper":
        text = _text(data)
        if text is None:
            raise KeyFormatError(f"{what} is not text")
        key, _keyid = _paper.read_paper(text)
        return Restored(key, "paper", "paper backup (BIP39, 24 words)", jwk_thumbprint(key))
    documents = []
    for index, item in enumerate(inputs, 1):
        text = _text(item)
        if text is None:
            raise KeyFormatError(f"share input {index} is not text")
        documents += _shamir.parse_shares(text)
    key = _shamir.restore_shares(documents, passphrase)
    return Restored(key, "shamir", f"Shamir backup (SLIP-39, {len(documents)} shares)", jwk_thumbprint(key))


__all__ = [
    "BACKUP_FORMATS",
    "BackupFormat",
    "Restored",
    "detect_backup",
    "needs_passphrase",
    "restore_backup",
    "verify_restored",
]
