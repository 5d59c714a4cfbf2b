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

import functools
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import DatafoldAuthError, KeyFormatError
from ..jwk import jwk_thumbprint
from . import paper as _paper
from . import shamir as _shamir
from .backup import MAGIC, BackupInfo, Envelope, unseal
from .errors import KeyStoreError
from .formats import identify
from .generate import self_test
from .kdf import KdfParams, is_weak
from .paper import DocumentInfo
from .pkcs8 import decode_private_key, is_encrypted, pbes2_info

BackupFormat = Literal["pem", "json", "binary", "paper", "shamir"]
BACKUP_FORMATS: tuple[BackupFormat, ...] = ("pem", "json", "binary", "paper", "shamir")
RECOGNIZED = (
    "recognized backups: encrypted PKCS#8 PEM, DataFold JSON or binary backup, paper backup (24 BIP39 words),"
    " Shamir shares (33 SLIP-39 words each)"
)
"""The formats :func:`detect_backup` recognizes, as said in its messages."""
_WORDLIKE_SHARE = 0.75
_MIN_WORDS = 12
_E = TypeVar("_E", bound=DatafoldAuthError)


@dataclass
class Restored:
    """A key read back from a backup.

    Attributes:
        private_key: the key (not shown in ``repr``).
        format: which backup format.
        description: e.g. ``JSON backup (scrypt N=2^17 r=8 p=1, AES-256-GCM)``.
        keyid: the keyid of ``private_key``.
        info: the clear, authenticated metadata (JSON and binary backups), else None.
        header: the ``label:``/``created:`` lines of a paper or Shamir document,
            validated but **not authenticated** (anyone can change them); None
            when the input has neither (typed words, PEM, JSON, binary).
        warnings: things worth telling the user (weak KDF cost, unencrypted PEM, ignored header line, ...).
    """

    private_key: Ed25519PrivateKey = field(repr=False)
    format: BackupFormat
    description: str
    keyid: str
    info: BackupInfo | None = None
    warnings: list[str] = field(default_factory=list)
    header: DocumentInfo | None = None


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
            if not _wordlike(words):
                raise KeyFormatError(f"{what} is not a backup: {len(words)} words of plain text; {RECOGNIZED}")
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
    if found.format in ("pkcs8-pem", "pkcs8-der"):  # a PKCS#8 key that does not parse: truncated or damaged
        raise KeyFormatError(f"{what}: {found.description}")
    raise KeyFormatError(f"{what} is not a backup: {found.description}; {RECOGNIZED}")


@functools.lru_cache(maxsize=1)
def _backup_words() -> tuple[frozenset[str], frozenset[str]]:
    """The BIP39 English and SLIP-39 words, and their 4-letter prefixes (unique in both lists)."""
    words = frozenset(_paper.wordlist()) | _shamir._WORD_SET
    return words, frozenset(w[:4] for w in words if len(w) >= 4)


def _wordlike(words: Sequence[str]) -> bool:
    """Whether the words look like a word backup, maybe mistyped or cut short: at least 12 words (half
    a paper backup), most of them BIP39 or SLIP-39 words or 4-letter prefixes of one."""
    if len(words) < _MIN_WORDS:
        return False
    full, prefixes = _backup_words()
    known = 0
    for word in words:
        typed = unicodedata.normalize("NFKD", word).lower()
        known += typed in full or (len(typed) >= 4 and typed[:4] in prefixes)
    return known >= _WORDLIKE_SHARE * len(words)


def needs_passphrase(fmt: BackupFormat, inputs: Sequence[bytes]) -> bool:
    """Whether restoring needs a passphrase: JSON, binary, encrypted PEM; Shamir shares whose document says so."""
    if fmt in ("json", "binary"):
        return True
    if fmt == "pem":
        return is_encrypted(inputs[0].strip() if inputs[0].lstrip().startswith(b"-----") else inputs[0])
    if fmt == "shamir":
        try:
            return any(
                doc.passphrase for data in inputs for doc in _shamir.parse_shares(data.decode("utf-8", "replace"))
            )
        except KeyFormatError:
            return False  # restore_backup reports the problem, naming the share
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


def _named(exc: _E, what: str) -> _E:
    """``exc`` with ``what`` (a file name) at the start of its message, unless the message names it already.

    Use as ``raise _named(exc, what) from exc.__cause__`` (same class and reason; the cause is kept).
    """
    if what in exc.detail:
        return exc
    return type(exc)(f"{what}: {exc.detail}", exc.reason)


def _header(texts: Sequence[tuple[str, str]]) -> tuple[DocumentInfo | None, list[str]]:
    """The ``label:``/``created:`` lines of one or more documents ``(name, text)``; lines that
    differ between documents are ignored, with a warning."""
    warnings: list[str] = []
    labels: set[str] = set()
    created: set[int] = set()
    for name, text in texts:
        info, problems = _paper.read_document_info(text)
        warnings += [f"{name}: {problem}" for problem in problems]
        if info.label is not None:
            labels.add(info.label)
        if info.created is not None:
            created.add(info.created)
    if len(labels) > 1:
        warnings.append("the shares' label lines differ; label ignored")
    if len(created) > 1:
        warnings.append("the shares' created lines differ; creation date ignored")
    label = next(iter(labels)) if len(labels) == 1 else None
    when = next(iter(created)) if len(created) == 1 else None
    if label is None and when is None:
        return None, warnings
    return DocumentInfo(label, when), warnings


def restore_backup(
    inputs: Sequence[bytes],
    passphrase: bytes | bytearray | None = None,
    *,
    fmt: BackupFormat | None = None,
    what: str = "the backup",
    names: Sequence[str] | None = None,
) -> Restored:
    """Read a key back from a backup (several inputs only for Shamir shares).

    Error messages name the input: ``what`` for the backup as a whole, and for
    a problem with one Shamir share, that share's entry of ``names``.

    A paper or Shamir document's ``label:`` and ``created:`` lines are returned
    as :attr:`Restored.header`, validated but not authenticated.

    Args:
        inputs: the file contents (or typed text, UTF-8).
        passphrase: the backup's passphrase (NFC-normalized before use); the
            SLIP-39 passphrase for Shamir shares.
        fmt: the format; detected from the first input if None.
        what: how to name the backup in messages (e.g. its file name, or
            ``"a.txt and b.txt"`` for shares).
        names: how to name each input (default: ``what`` for one input,
            ``share input 1``, ``share input 2``, ... for several).

    Raises:
        KeyFormatError: not a backup, malformed, truncated, wrong number of words, bad checksum, ...
        KeyStoreError: the backup is encrypted and ``passphrase`` is None; inconsistent content.
        WrongPassphraseError: wrong passphrase, or an authenticated field was changed.
    """
    if not inputs:
        raise KeyFormatError("no backup given")
    if names is None:
        names = [what] if len(inputs) == 1 else [f"share input {i}" for i in range(1, len(inputs) + 1)]
    if len(names) != len(inputs):
        raise ValueError("restore_backup: one name per input")
    fmt = fmt or detect_backup(inputs[0], what=names[0])
    if fmt != "shamir" and len(inputs) != 1:
        raise KeyFormatError(f"a {fmt} backup is one file; several were given")
    if fmt == "shamir":
        return _restore_shares(inputs, passphrase, what, names)
    try:
        return _restore_one(inputs[0], passphrase, fmt, what)
    except (KeyFormatError, KeyStoreError) as exc:
        raise _named(exc, what) from exc.__cause__


def _restore_one(data: bytes, passphrase: bytes | bytearray | None, fmt: BackupFormat, what: str) -> Restored:
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
    text = _text(data)
    if text is None:
        raise KeyFormatError(f"{what} is not text")
    key, _keyid = _paper.read_paper(text)
    header, warnings = _header([(what, text)])
    return Restored(key, "paper", "paper backup (BIP39, 24 words)", jwk_thumbprint(key), None, warnings, header)


def _restore_shares(
    inputs: Sequence[bytes], passphrase: bytes | bytearray | None, what: str, names: Sequence[str]
) -> Restored:
    documents: list[_shamir.ShareDocument] = []
    texts: list[tuple[str, str]] = []
    for name, item in zip(names, inputs, strict=True):
        text = _text(item)
        if text is None:
            raise KeyFormatError(f"{name} is not text")
        try:
            found = _shamir.parse_shares(text)
            for index, document in enumerate(found, 1):  # word and checksum errors name the file
                _shamir.share_info(document.mnemonic, name if len(found) == 1 else f"{name} (share {index})")
        except KeyFormatError as exc:
            raise _named(exc, name) from exc.__cause__
        documents += found
        texts.append((name, text))
    try:
        key = _shamir.restore_shares(documents, passphrase)
    except (KeyFormatError, KeyStoreError) as exc:
        raise _named(exc, what) from exc.__cause__
    header, warnings = _header(texts)
    description = f"Shamir backup (SLIP-39, {len(documents)} shares)"
    return Restored(key, "shamir", description, jwk_thumbprint(key), None, warnings, header)


__all__ = [
    "BACKUP_FORMATS",
    "RECOGNIZED",
    "BackupFormat",
    "Restored",
    "detect_backup",
    "needs_passphrase",
    "restore_backup",
    "verify_restored",
]
