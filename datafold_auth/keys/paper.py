"""Paper backups: the 32-byte seed as 24 BIP39 English words (through the ``mnemonic`` library).

This is the BIP39 *encoding* of 256 bits of entropy (the Ed25519 seed itself)
into 24 words with an 8-bit SHA-256 checksum; it is **not** BIP39 seed
derivation (``to_seed``/PBKDF2) nor BIP32/SLIP-10: a cryptocurrency wallet fed
these words derives other keys. The words *are* the private key: a paper
backup is not encrypted.

The document (docs/formats.md, "Paper backup") is plain text: a first line
:data:`HEADER`, ``keyid:``/``label:``/``created:`` lines, a warning, then the
24 words numbered ``1`` to ``24``. :func:`parse_words` reads that document, or
just the words typed in order (one unique prefix of at least 4 letters per
word is enough, since BIP39 English words differ in their first 4 letters).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mnemonic import Mnemonic

from ..errors import KeyFormatError
from ..jwk import KEYID_RE, jwk_thumbprint
from .backup import BackupInfo
from .generate import self_test
from .secret import wipe

HEADER = "DataFold key paper backup, format 1 (BIP39 English, 24 words)"
WORD_COUNT = 24
_NUMBERED = re.compile(r"(?<![\w])(\d{1,2})[.)]?\s+([^\W\d_]+)")


@functools.lru_cache(maxsize=1)
def _mnemonic() -> Mnemonic:
    return Mnemonic("english")


def wordlist() -> list[str]:
    """The 2048 BIP39 English words, in order (index = 11-bit value)."""
    return list(_mnemonic().wordlist)


def seed_words(key: Ed25519PrivateKey) -> list[str]:
    """The 24 BIP39 words of ``key``'s 32-byte seed (entropy) and its checksum."""
    return str(_mnemonic().to_mnemonic(key.private_bytes_raw())).split(" ")


def _canonical_word(word: str, position: int) -> str:
    """The BIP39 word for a typed word or unique prefix (at least 4 letters); never echoes the word."""
    words = _mnemonic().wordlist
    typed = unicodedata.normalize("NFKD", word).lower()
    if typed in words:
        return typed
    matches = [w for w in words if w.startswith(typed)] if len(typed) >= 4 else []
    if len(matches) == 1:
        return str(matches[0])
    raise KeyFormatError(f"word {position} is not a BIP39 English word (nor a unique 4-letter prefix of one)")


def words_to_key(words: Sequence[str]) -> Ed25519PrivateKey:
    """The key whose seed the 24 words encode.

    Raises:
        KeyFormatError: not 24 words, a word not in the list, or a failed
            checksum (a wrong word or words out of order). Messages give word
            positions, never the words.
    """
    if len(words) != WORD_COUNT:
        raise KeyFormatError(f"a paper backup has {WORD_COUNT} words; got {len(words)}")
    canonical = [_canonical_word(word, i) for i, word in enumerate(words, 1)]
    try:
        seed = _mnemonic().to_entropy(canonical)
    except ValueError as exc:
        raise KeyFormatError(
            "the checksum of the 24 words does not match: a word is wrong or two words are swapped"
        ) from exc
    try:
        key = Ed25519PrivateKey.from_private_bytes(seed)
    finally:
        wipe(seed)
    return key


@dataclass
class PaperBackup:
    """What :func:`parse_words` read.

    Attributes:
        words: the words in order (not shown in ``repr``).
        keyid: the ``keyid:`` line of the document, if it had one.
    """

    words: list[str] = field(repr=False)
    keyid: str | None = None


def numbered_pairs(text: str) -> list[tuple[str, str]]:
    """The ``(number, word)`` pairs of a document's word lines.

    Lines holding a ``:`` (``keyid:``, ``label:``, ...) and lines starting with
    ``DataFold`` (the title) are not word lines.
    """
    body = "\n".join(line for line in text.splitlines() if ":" not in line and not line.startswith("DataFold"))
    return _NUMBERED.findall(body)


def parse_words(text: str) -> PaperBackup:
    """Read a paper document, or bare words separated by white space.

    In a document, the words are the ``<number> <word>`` pairs (numbers 1 to
    24, any layout, any order on the page); other lines are ignored, except
    ``keyid:``. Bare input (no numbered pairs) is taken word by word.

    Raises:
        KeyFormatError: numbers missing or repeated.
    """
    keyid = None
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "keyid" and KEYID_RE.fullmatch(value.strip()):
            keyid = value.strip()
    pairs = numbered_pairs(text)
    if not pairs:
        return PaperBackup(text.split(), keyid)
    numbered: dict[int, str] = {}
    for number, word in pairs:
        index = int(number)
        if not 1 <= index <= WORD_COUNT or index in numbered:
            raise KeyFormatError(f"word number {index} is out of range or repeated in the paper backup")
        numbered[index] = word
    missing = [i for i in range(1, WORD_COUNT + 1) if i not in numbered]
    if missing:
        raise KeyFormatError(f"the paper backup lacks word number(s) {', '.join(map(str, missing))}")
    return PaperBackup([numbered[i] for i in range(1, WORD_COUNT + 1)], keyid)


def read_paper(text: str) -> tuple[Ed25519PrivateKey, str | None]:
    """The key of a paper document or typed words, checked against its ``keyid:`` line if present.

    Returns:
        ``(key, keyid line or None)``.

    Raises:
        KeyFormatError: see :func:`words_to_key`; or the words give another keyid than the document's.
    """
    paper = parse_words(text)
    key = words_to_key(paper.words)
    if paper.keyid is not None and jwk_thumbprint(key) != paper.keyid:
        raise KeyFormatError("the words give a key whose keyid differs from the document's keyid line")
    self_test(key)
    return key, paper.keyid


def format_columns(words: Sequence[str], columns: int = 4) -> str:
    """Numbered words in ``columns`` columns, numbered down each column (``" 1 abandon   7 ..."``)."""
    rows = -(-len(words) // columns)
    width = max(len(w) for w in words) + 2
    lines = []
    for row in range(rows):
        cells = []
        for col in range(columns):
            i = col * rows + row
            if i < len(words):
                cells.append(f"{i + 1:>2} {words[i]:<{width}}")
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines)


def paper_document(key: Ed25519PrivateKey, info: BackupInfo) -> str:
    """The printable paper backup of ``key`` (see the module docstring)."""
    created = datetime.fromtimestamp(info.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{HEADER}\n"
        f"keyid: {info.keyid}\n"
        f"label: {info.label or '-'}\n"
        f"created: {created}\n"
        "\n"
        "These words ARE the private key (not encrypted). Anyone who reads them can sign as you.\n"
        "Keep this sheet offline, in a safe place. Restore with: keytools restore --paper FILE\n"
        "\n"
        f"{format_columns(seed_words(key))}\n"
    )


__all__ = [
    "HEADER",
    "WORD_COUNT",
    "PaperBackup",
    "format_columns",
    "numbered_pairs",
    "paper_document",
    "parse_words",
    "read_paper",
    "seed_words",
    "wordlist",
    "words_to_key",
]
