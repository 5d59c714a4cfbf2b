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

The ``label:`` and ``created:`` lines (also on Shamir share documents) are
read by :func:`read_document_info`. They are **not authenticated**: the words
restore the seed and the ``keyid:`` line is checked against it, but anyone
can change the label or the date unnoticed. They are validated, and an
invalid one is ignored with a warning.
"""

from __future__ import annotations

import functools
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mnemonic import Mnemonic

from ..errors import KeyFormatError
from ..jwk import KEYID_RE, jwk_thumbprint
from .backup import MAX_LABEL_BYTES, BackupInfo
from .generate import self_test
from .secret import wipe

HEADER = "DataFold key paper backup, format 1 (BIP39 English, 24 words)"
WORD_COUNT = 24
_NUMBERED = re.compile(r"(?<![\w])(\d{1,2})[.)]?\s+([^\W\d_]+)")
_CREATED_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_CREATED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# line and paragraph separators (str.splitlines breaks on them) and bidirectional formatting characters
_UNSAFE_LABEL_CHARS = frozenset("\u2028\u2029\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
CREATED_SKEW = 86_400
"""How far (seconds) a ``created:`` line may lie after the reading time before it is ignored as invalid."""


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
        if text.lstrip().startswith(HEADER.split(",")[0]):
            raise KeyFormatError("the paper backup document has no numbered words (truncated?)")
        return PaperBackup(text.split(), keyid)
    numbered: dict[int, str] = {}
    for number, word in pairs:
        index = int(number)
        if not 1 <= index <= WORD_COUNT or index in numbered:
            raise KeyFormatError(f"word number {index} is out of range or repeated in the paper backup")
        numbered[index] = word
    missing = [i for i in range(1, WORD_COUNT + 1) if i not in numbered]
    if missing:
        raise KeyFormatError(f"the paper backup lacks word number(s) {_ranges(missing)} (truncated or damaged?)")
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


def _ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1-3, 7``."""
    parts: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], -1]:
        if number != previous + 1:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
            start = number
        previous = number
    return ", ".join(parts)


@dataclass(frozen=True)
class DocumentInfo:
    """The ``label:`` and ``created:`` header lines of a paper or Shamir document, as read and validated.

    **Not authenticated**: the words restore the seed (and the ``keyid:`` line
    is checked against it), but anyone can change these lines unnoticed. Treat
    them as a hint for humans, never as proof.

    Attributes:
        label: the label (``""`` for the ``-`` that stands for none); None if
            the line is absent or was ignored as invalid.
        created: epoch seconds; None if the line is absent or was ignored as invalid.
    """

    label: str | None = None
    created: int | None = None


def label_line(label: str) -> str:
    """``label``'s value as written on a ``label:`` line: ``-`` for none; control characters and line
    breaks become spaces, so that a label cannot add lines to the document."""
    text = "".join(" " if _bad_label_char(c) else c for c in label).strip()
    return text or "-"


def created_line(epoch: int) -> str:
    """Epoch seconds as written on a ``created:`` line (``YYYY-MM-DDTHH:MM:SSZ``)."""
    return datetime.fromtimestamp(epoch, UTC).strftime(_CREATED_FORMAT)


def _bad_label_char(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in _UNSAFE_LABEL_CHARS


def _check_label(value: str) -> str | None:
    label = "" if value == "-" else value
    if any(_bad_label_char(c) for c in label) or len(label.encode("utf-8", "replace")) > MAX_LABEL_BYTES:
        return None
    return label


def _check_created(value: str, now: float) -> int | None:
    if not _CREATED_RE.fullmatch(value):
        return None
    try:
        epoch = int(datetime.strptime(value, _CREATED_FORMAT).replace(tzinfo=UTC).timestamp())
    except ValueError:  # e.g. month 13
        return None
    return epoch if 0 <= epoch <= now + CREATED_SKEW else None


def read_document_info(text: str, *, now: float | None = None) -> tuple[DocumentInfo, list[str]]:
    """The validated ``label:`` and ``created:`` lines of a paper or Shamir document (see :class:`DocumentInfo`).

    A label must be at most 1024 UTF-8 bytes without control or bidirectional
    formatting characters (``-`` stands for none); a creation time must be
    ``YYYY-MM-DDTHH:MM:SSZ``, not before 1970 and not after ``now`` (default:
    the current time) plus a day. An invalid line, or a line given twice with
    different values, is ignored.

    Returns:
        ``(info, warnings)``: one warning per ignored line (never quoting it).
    """
    now = time.time() if now is None else now
    found: dict[str, set[str]] = {"label": set(), "created": set()}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if sep and name in found:
            found[name].add(value.strip())
    warnings: list[str] = []
    label: str | None = None
    created: int | None = None
    if len(found["label"]) > 1:
        warnings.append("the document has several different label lines; label ignored")
    elif found["label"]:
        label = _check_label(found["label"].pop())
        if label is None:
            warnings.append(
                f"the document's label line is longer than {MAX_LABEL_BYTES} bytes or holds control characters;"
                " label ignored"
            )
    if len(found["created"]) > 1:
        warnings.append("the document has several different created lines; creation date ignored")
    elif found["created"]:
        created = _check_created(found["created"].pop(), now)
        if created is None:
            warnings.append(
                "the document's created line is not a date YYYY-MM-DDTHH:MM:SSZ between 1970 and now;"
                " creation date ignored"
            )
    return DocumentInfo(label, created), warnings


def paper_document(key: Ed25519PrivateKey, info: BackupInfo) -> str:
    """The printable paper backup of ``key`` (see the module docstring)."""
    return (
        f"{HEADER}\n"
        f"keyid: {info.keyid}\n"
        f"label: {label_line(info.label)}\n"
        f"created: {created_line(info.created)}\n"
        "\n"
        "These words ARE the private key (not encrypted). Anyone who reads them can sign as you.\n"
        "Keep this sheet offline, in a safe place. Restore with: keytools restore --paper FILE\n"
        "\n"
        f"{format_columns(seed_words(key))}\n"
    )


__all__ = [
    "CREATED_SKEW",
    "HEADER",
    "WORD_COUNT",
    "DocumentInfo",
    "PaperBackup",
    "created_line",
    "format_columns",
    "label_line",
    "numbered_pairs",
    "paper_document",
    "parse_words",
    "read_document_info",
    "read_paper",
    "seed_words",
    "wordlist",
    "words_to_key",
]
