"""Shamir backups: the seed split into SLIP-39 shares (through the ``shamir-mnemonic`` library).

SLIP-39 splits the 32-byte seed into mnemonic shares of 33 words each, in
one or more groups: ``group_threshold`` of the groups are needed, and in each
of those, that group's member threshold of its shares. The library does the
splitting (GF(256) Shamir, RS1024 checksums) and the optional passphrase
encryption (its own 4-round Feistel cipher over PBKDF2-HMAC-SHA256, SLIP-39
section "Passphrase"); none of it is written here.

A SLIP-39 passphrase may only use printable ASCII (SLIP-39's rule). A wrong
passphrase is **not** detected by SLIP-39 itself: it yields another seed.
The share documents carry the keyid, so a restore from them detects it.

Each share is written as its own text document (docs/formats.md, "Shamir
shares"): a first line :data:`HEADER`, ``keyid:``/``label:``/``created:``/
``share:``/``needed:``/``passphrase:`` lines, a warning, then the 33 words
numbered. The ``label:`` and ``created:`` lines are not authenticated (see
:func:`datafold_auth.keys.paper.read_document_info`).
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import shamir_mnemonic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from shamir_mnemonic import shamir as _shamir_impl
from shamir_mnemonic.wordlist import WORDLIST as _WORDLIST

from ..errors import KeyFormatError
from ..jwk import KEYID_RE, jwk_thumbprint
from .backup import BackupInfo
from .errors import KeyStoreError, WrongPassphraseError
from .generate import self_test
from .paper import created_line, format_columns, label_line, numbered_pairs
from .secret import wipe

HEADER = "DataFold key Shamir share (SLIP-39), format 1"
SHARE_WORDS = 33
"""Words in a SLIP-39 share of a 256-bit secret."""
MAX_ITERATION_EXPONENT = 9
"""Largest SLIP-39 iteration exponent e read or written: 10000 * 2^9 = 5.12 million PBKDF2 iterations, within
the 10,000,000 bound of :mod:`.kdf`, so that a hostile share cannot make a restore run for minutes (e = 15: two)."""
_WORDS: list[str] = list(_WORDLIST)
_WORD_SET = frozenset(_WORDS)


@dataclass(frozen=True)
class ShamirPlan:
    """How to split: ``group_threshold`` of ``groups``, each group ``(member_threshold, member_count)``.

    Examples: ``ShamirPlan(1, ((3, 5),))`` is 3 of 5 shares; ``ShamirPlan(2,
    ((1, 1), (2, 3), (3, 5)))`` needs 2 of 3 groups (the owner's single share,
    2 of 3 family members, 3 of 5 friends).
    """

    group_threshold: int
    groups: tuple[tuple[int, int], ...]

    @classmethod
    def simple(cls, threshold: int, count: int) -> ShamirPlan:
        """``threshold`` of ``count`` shares in one group."""
        return cls(1, ((threshold, count),))

    def check(self) -> ShamirPlan:
        """Return self if SLIP-39 allows it.

        Raises:
            KeyFormatError: 1 <= group_threshold <= len(groups) <= 16; each
                1 <= threshold <= count <= 16; threshold 1 only with count 1.
        """
        if not 1 <= len(self.groups) <= 16 or not 1 <= self.group_threshold <= len(self.groups):
            raise KeyFormatError("Shamir plan: need 1 to 16 groups and 1 <= group threshold <= number of groups")
        for threshold, count in self.groups:
            if not 1 <= threshold <= count <= 16:
                raise KeyFormatError(f"Shamir plan: group {threshold}-of-{count} is not 1 <= T <= N <= 16")
            if threshold == 1 and count > 1:
                raise KeyFormatError(f"Shamir plan: 1-of-{count} makes {count} copies of one secret; use 1-of-1")
        return self

    def minimal_sets(self) -> int:
        """How many minimal sets of shares restore the secret: ``group_threshold`` groups,
        each with exactly its threshold of members (e.g. 3 for 2 of 3 shares, 10 for 3 of 5)."""
        return sum(
            math.prod(math.comb(count, threshold) for threshold, count in chosen)
            for chosen in itertools.combinations(self.groups, self.group_threshold)
        )

    def describe(self) -> str:
        """E.g. ``3 of 5 shares`` or ``2 of 3 groups (1 of 1, 2 of 3, 3 of 5)``."""
        if len(self.groups) == 1:
            threshold, count = self.groups[0]
            return f"{threshold} of {count} shares"
        inner = ", ".join(f"{t} of {n}" for t, n in self.groups)
        return f"{self.group_threshold} of {len(self.groups)} groups ({inner})"


@dataclass(frozen=True)
class ShareInfo:
    """Where one share sits in its plan (from the share itself, 1-based)."""

    group: int
    group_count: int
    group_threshold: int
    member: int
    member_count: int | None
    member_threshold: int


def slip39_passphrase(passphrase: bytes | bytearray | None) -> bytes:
    """The passphrase as SLIP-39 wants it: NFC-normalized, printable ASCII only; ``b""`` for none.

    Raises:
        KeyFormatError: characters outside printable ASCII (32 to 126).
    """
    if not passphrase:
        return b""
    try:
        text = unicodedata.normalize("NFC", bytes(passphrase).decode("utf-8"))
    except UnicodeDecodeError:
        text = "\ufffd"
    if not all(32 <= ord(c) <= 126 for c in text):
        raise KeyFormatError("a SLIP-39 passphrase may only use printable ASCII characters (SLIP-39 rule)")
    return text.encode("ascii")


def split_key(
    key: Ed25519PrivateKey,
    plan: ShamirPlan,
    *,
    passphrase: bytes | bytearray | None = None,
    iteration_exponent: int = 1,
    random_bytes: Callable[[int], bytes] | None = None,
) -> list[list[str]]:
    """Split ``key``'s seed into SLIP-39 mnemonics: one list of 33-word strings per group.

    Args:
        key: the private key.
        plan: thresholds and counts.
        passphrase: optional SLIP-39 passphrase (see :func:`slip39_passphrase`).
        iteration_exponent: SLIP-39 cost e (10000 * 2^e PBKDF2 iterations in all).
        random_bytes: replaces the library's randomness; **for test vectors only**
            (it patches a module global of ``shamir_mnemonic`` while splitting).

    Raises:
        KeyFormatError: the plan or passphrase is not allowed by SLIP-39, or the exponent is out of bounds.
    """
    plan.check()
    if type(iteration_exponent) is not int or not 0 <= iteration_exponent <= MAX_ITERATION_EXPONENT:
        raise KeyFormatError(f"the SLIP-39 iteration exponent must be 0 to {MAX_ITERATION_EXPONENT}")
    secret = slip39_passphrase(passphrase)
    original = _shamir_impl.RANDOM_BYTES
    if random_bytes is not None:
        _shamir_impl.RANDOM_BYTES = random_bytes
    try:
        groups = shamir_mnemonic.generate_mnemonics(
            plan.group_threshold,
            list(plan.groups),
            key.private_bytes_raw(),
            secret,
            True,
            iteration_exponent,
        )
    except ValueError as exc:
        raise KeyFormatError(f"SLIP-39 refused the split: {exc}") from exc
    finally:
        _shamir_impl.RANDOM_BYTES = original
    return [[str(m) for m in group] for group in cast(list[list[Any]], groups)]


def _canonical(words: Sequence[str], where: str) -> str:
    out = []
    for position, word in enumerate(words, 1):
        typed = word.lower()
        if typed not in _WORD_SET:
            matches = [w for w in _WORDS if w.startswith(typed)] if len(typed) >= 4 else []
            if len(matches) != 1:
                raise KeyFormatError(f"{where}: word {position} is not a SLIP-39 word (nor a unique 4-letter prefix)")
            typed = matches[0]
        out.append(typed)
    return " ".join(out)


def share_info(mnemonic: str, where: str = "a share") -> ShareInfo:
    """Decode a share's position and thresholds.

    Raises:
        KeyFormatError: not a valid SLIP-39 share (bad word, length or checksum).
    """
    canonical = _canonical(mnemonic.split(), where)
    try:
        share = shamir_mnemonic.Share.from_mnemonic(canonical)
    except shamir_mnemonic.MnemonicError as exc:
        raise KeyFormatError(f"{where} is not a valid SLIP-39 share ({_safe(exc)})") from None
    return ShareInfo(
        share.group_index + 1,
        share.group_count,
        share.group_threshold,
        share.index + 1,
        None,
        share.member_threshold,
    )


def _safe(exc: Exception) -> str:
    """A library message with any quoted part (which would be share words) blanked out."""
    return re.sub(r"\"[^\"]*\"|'[^']*'", '"..."', str(exc)).rstrip(".")


def combine(mnemonics: Iterable[str], passphrase: bytes | bytearray | None = None) -> Ed25519PrivateKey:
    """The key from enough SLIP-39 shares (and the SLIP-39 passphrase, if one was used).

    Raises:
        KeyFormatError: a share is malformed, shares do not belong together, or too few.
    """
    canonical = [_canonical(m.split(), f"share {i}") for i, m in enumerate(mnemonics, 1)]
    for i, mnemonic in enumerate(canonical, 1):
        try:
            exponent = shamir_mnemonic.Share.from_mnemonic(mnemonic).iteration_exponent
        except shamir_mnemonic.MnemonicError:
            continue  # combine_mnemonics below reports it
        if exponent > MAX_ITERATION_EXPONENT:
            raise KeyFormatError(
                f"share {i} asks for SLIP-39 iteration exponent {exponent}; this reader accepts at most"
                f" {MAX_ITERATION_EXPONENT} (a damaged or hostile share?)"
            )
    try:
        secret = bytearray(shamir_mnemonic.combine_mnemonics(canonical, slip39_passphrase(passphrase)))
    except shamir_mnemonic.MnemonicError as exc:
        raise KeyFormatError(f"the shares do not restore a secret: {_safe(exc)}") from None
    try:
        if len(secret) != 32:
            raise KeyFormatError(f"the shares hold a {len(secret)}-byte secret, not a 32-byte Ed25519 seed")
        return Ed25519PrivateKey.from_private_bytes(secret)
    finally:
        wipe(secret)


@dataclass
class ShareDocument:
    """One share as read from its document.

    Attributes:
        mnemonic: the share's words (not shown in ``repr``).
        keyid: the document's ``keyid:`` line, if any.
        passphrase: whether the document says a SLIP-39 passphrase is required (None: not said).
    """

    mnemonic: str = field(repr=False)
    keyid: str | None = None
    passphrase: bool | None = None


def parse_shares(text: str) -> list[ShareDocument]:
    """Read a share document (numbered words), or bare shares of 33 words each (one per line or run together).

    Raises:
        KeyFormatError: numbering errors, or a bare word count that is not a multiple of 33.
    """
    keyid: str | None = None
    passphrase: bool | None = None
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if sep and name == "keyid" and KEYID_RE.fullmatch(value):
            keyid = value
        elif sep and name == "passphrase":
            passphrase = value.lower().startswith("required")
    pairs = numbered_pairs(text)
    if pairs:
        numbered: dict[int, str] = {}
        for number, word in pairs:
            index = int(number)
            if not 1 <= index <= SHARE_WORDS or index in numbered:
                raise KeyFormatError(f"word number {index} is out of range or repeated in the share document")
            numbered[index] = word
        if len(numbered) != SHARE_WORDS:
            raise KeyFormatError(
                f"a share document has {SHARE_WORDS} numbered words; found {len(numbered)} (truncated or damaged?)"
            )
        return [ShareDocument(" ".join(numbered[i] for i in range(1, SHARE_WORDS + 1)), keyid, passphrase)]
    if text.lstrip().startswith(HEADER.split(",")[0]):
        raise KeyFormatError("the share document has no numbered words (truncated?)")
    words = text.split()
    if not words or len(words) % SHARE_WORDS:
        raise KeyFormatError(f"SLIP-39 shares of a 32-byte key have {SHARE_WORDS} words each; got {len(words)} words")
    return [
        ShareDocument(" ".join(words[i : i + SHARE_WORDS]), keyid, passphrase)
        for i in range(0, len(words), SHARE_WORDS)
    ]


def restore_shares(
    documents: Sequence[ShareDocument], passphrase: bytes | bytearray | None = None
) -> Ed25519PrivateKey:
    """Combine share documents, check the keyid they state (if any), self-test.

    Raises:
        KeyFormatError: see :func:`combine`; documents stating different keyids.
        WrongPassphraseError: the result's keyid differs from the documents' (wrong
            SLIP-39 passphrase, or shares of different splits of one key).
    """
    keyids = {doc.keyid for doc in documents if doc.keyid is not None}
    if len(keyids) > 1:
        raise KeyFormatError("these shares state different keyids: they belong to different keys")
    key = combine([doc.mnemonic for doc in documents], passphrase)
    if keyids and jwk_thumbprint(key) not in keyids:
        raise WrongPassphraseError(
            "the shares restore another key than their keyid line says: wrong SLIP-39 passphrase?"
        )
    self_test(key)
    return key


def share_documents(
    key: Ed25519PrivateKey, info: BackupInfo, plan: ShamirPlan, mnemonics: list[list[str]], *, passphrase: bool
) -> list[tuple[int, int, str]]:
    """The printable document of every share: ``(group, member, text)``, 1-based."""
    docs = []
    for g, (group, (threshold, count)) in enumerate(zip(mnemonics, plan.groups, strict=True), 1):
        for m, mnemonic in enumerate(group, 1):
            words = mnemonic.split()
            needed = f"{threshold} of the {count} shares of group {g}"
            if len(plan.groups) > 1:
                needed += f", in {plan.group_threshold} of the {len(plan.groups)} groups"
            text = (
                f"{HEADER}\n"
                f"keyid: {info.keyid}\n"
                f"label: {label_line(info.label)}\n"
                f"created: {created_line(info.created)}\n"
                f"share: group {g} of {len(plan.groups)}, member {m} of {count}\n"
                f"needed: {needed}\n"
                f"passphrase: {'required (SLIP-39 passphrase)' if passphrase else 'none'}\n"
                "\n"
                "Keep this share apart from the others: whoever gathers enough shares can sign as you.\n"
                "Restore with: keytools restore --shamir SHARE-FILE SHARE-FILE ...\n"
                "\n"
                f"{format_columns(words, 3)}\n"
            )
            docs.append((g, m, text))
    return docs


EXHAUSTIVE_LIMIT = 100
""":func:`check_split` tries every minimal set of shares when there are at most this many (about 6 ms each)."""


def check_split(
    mnemonics: list[list[str]],
    plan: ShamirPlan,
    keyid: str,
    passphrase: bytes | bytearray | None = None,
    *,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
) -> int:
    """Check that minimal sets of shares restore the key with ``keyid``; return how many sets were tried.

    When the plan has at most ``exhaustive_limit`` minimal sets
    (:meth:`ShamirPlan.minimal_sets`), every one is tried, so the result equals
    ``plan.minimal_sets()``. Otherwise a sample in which every share takes part:
    the first ``group_threshold`` groups with each group's first members; then,
    for every group, that group's *last* members with the first members of
    enough other groups.

    Raises:
        KeyStoreError: a set does not restore the key.
    """
    needed = plan.group_threshold
    tried = 0

    def attempt(shares: list[str]) -> None:
        nonlocal tried
        if jwk_thumbprint(combine(shares, passphrase)) != keyid:
            raise KeyStoreError("a set of Shamir shares does not restore the key")
        tried += 1

    if plan.minimal_sets() <= exhaustive_limit:
        for groups in itertools.combinations(range(len(plan.groups)), needed):
            per_group = [itertools.combinations(mnemonics[g], plan.groups[g][0]) for g in groups]
            for members in itertools.product(*per_group):
                attempt([share for chosen in members for share in chosen])
        return tried

    def first_or_last(g: int, last: bool) -> list[str]:
        threshold = plan.groups[g][0]
        return mnemonics[g][-threshold:] if last else mnemonics[g][:threshold]

    attempt([share for g in range(needed) for share in first_or_last(g, False)])
    for g in range(len(plan.groups)):
        others = [o for o in range(len(plan.groups)) if o != g]
        chosen = [(g, True), *((o, False) for o in itertools.islice(others, needed - 1))]
        attempt([share for group, last in chosen for share in first_or_last(group, last)])
    return tried


__all__ = [
    "EXHAUSTIVE_LIMIT",
    "HEADER",
    "MAX_ITERATION_EXPONENT",
    "SHARE_WORDS",
    "ShamirPlan",
    "ShareDocument",
    "ShareInfo",
    "check_split",
    "combine",
    "parse_shares",
    "restore_shares",
    "share_documents",
    "share_info",
    "slip39_passphrase",
    "split_key",
]
