"""JSON/binary envelopes, paper (BIP39) and Shamir (SLIP-39) backups: round trips, tampering, strict parsing.

Low KDF costs throughout (scrypt N=2^10, PBKDF2 1,000); the default costs are
exercised by tests/test_backup_vectors.py.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.errors import KeyFormatError
from datafold_auth.jwk import b64url_decode, jwk_thumbprint
from datafold_auth.keys import (
    BackupInfo,
    Envelope,
    KdfParams,
    KeyStoreError,
    Pbkdf2Params,
    ScryptParams,
    ShamirPlan,
    WrongPassphraseError,
    detect_backup,
    paper_document,
    pkcs8,
    read_paper,
    restore_backup,
    seal,
    seed_words,
    split_key,
    unseal,
    words_to_key,
)
from datafold_auth.keys import shamir as slip39
from datafold_auth.keys.kdf import derive_key, is_weak
from datafold_auth.keys.paper import DocumentInfo, label_line
from datafold_auth.keys.secret import SecretBytes, wipe

NFC = "Gr\u00fc\u00dfe-\u00c5ngstr\u00f6m".encode()
NFD = "Gru\u0308\u00dfe-A\u030angstro\u0308m".encode()
FAST: list[KdfParams] = [ScryptParams(10), Pbkdf2Params(1000)]


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def info(key: Ed25519PrivateKey) -> BackupInfo:
    return BackupInfo(jwk_thumbprint(key), "laptop \u00e9", 1_700_000_000, "client-7")


@pytest.mark.parametrize("kdf", FAST, ids=["scrypt", "pbkdf2"])
@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_round_trip_and_nfd_passphrase(key: Ed25519PrivateKey, info: BackupInfo, kdf: Any, encoding: str) -> None:
    envelope = seal(key, NFC, info, kdf=kdf)
    data = envelope.to_json() if encoding == "json" else envelope.to_binary()
    assert detect_backup(data) == encoding
    for passphrase in (NFC, NFD):
        restored = restore_backup([data], passphrase)
        assert restored.private_key.private_bytes_raw() == key.private_bytes_raw()
        assert restored.info == info and restored.format == encoding
    assert restored.warnings and "weak KDF cost" in restored.warnings[0]


def test_random_salt_and_nonce_each_time(key: Ed25519PrivateKey) -> None:
    a, b = seal(key, NFC, kdf=FAST[1]), seal(key, NFC, kdf=FAST[1])
    assert len(a.salt) == 16 and len(a.nonce) == 12 and a.salt != b.salt and a.nonce != b.nonce
    assert a.ciphertext != b.ciphertext


def _json_doc(key: Ed25519PrivateKey, info: BackupInfo) -> dict[str, Any]:
    return json.loads(seal(key, NFC, info, kdf=FAST[1]).to_json())  # type: ignore[no-any-return]


TAMPER_JSON = [
    ("kdf", "iterations", 1001),
    ("kdf", "salt", "AAAAAAAAAAAAAAAAAAAAAA"),
    ("cipher", "nonce", "AAAAAAAAAAAAAAAA"),
    ("key", "keyid", "A" * 43),
    ("key", "label", "other label"),
    ("key", "created", 1_700_000_001),
    ("key", "client_id", "client-8"),
    ("key", "client_id", None),
]


@pytest.mark.parametrize(("section", "member", "value"), TAMPER_JSON)
def test_changing_any_json_header_field_makes_decryption_fail(
    key: Ed25519PrivateKey, info: BackupInfo, section: str, member: str, value: Any
) -> None:
    doc = _json_doc(key, info)
    doc[section][member] = value
    with pytest.raises(WrongPassphraseError, match="modified or damaged"):
        restore_backup([json.dumps(doc).encode()], NFC)


def test_changing_the_ciphertext_or_the_kdf_makes_decryption_fail(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    doc = _json_doc(key, info)
    doc["kdf"] = {"name": "scrypt", "n": 1024, "r": 8, "p": 1, "salt": doc["kdf"]["salt"]}
    with pytest.raises(WrongPassphraseError):
        restore_backup([json.dumps(doc).encode()], NFC)
    doc = _json_doc(key, info)
    raw = bytearray(Envelope.from_json(json.dumps(doc).encode()).ciphertext)
    raw[0] ^= 1
    from datafold_auth.jwk import b64url_encode

    doc["ciphertext"] = b64url_encode(bytes(raw))
    with pytest.raises(WrongPassphraseError):
        restore_backup([json.dumps(doc).encode()], NFC)


def test_every_binary_byte_is_protected(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    """Flip each byte of a binary backup in turn: never a wrong key, always a clean error."""
    data = seal(key, NFC, info, kdf=FAST[1]).to_binary()
    for index in range(len(data)):
        flipped = bytearray(data)
        flipped[index] ^= 0x01
        with pytest.raises((WrongPassphraseError, KeyFormatError)):
            restore_backup([bytes(flipped)], NFC)


@pytest.mark.parametrize("cut", [1, 10, 48, 60])
def test_truncated_backups(key: Ed25519PrivateKey, info: BackupInfo, cut: int) -> None:
    envelope = seal(key, NFC, info, kdf=FAST[1])
    with pytest.raises(KeyFormatError, match=r"truncated|malformed|ciphertext must be"):
        restore_backup([envelope.to_binary()[:-cut]], NFC)
    with pytest.raises(KeyFormatError, match="not a valid JSON"):
        restore_backup([envelope.to_json()[: -cut - 1]], NFC, fmt="json")  # -1: the final newline


def test_strict_json(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    doc = _json_doc(key, info)
    cases: list[tuple[dict[str, Any] | str, str]] = [
        ({**doc, "extra": 1}, "unexpected members"),
        ({**doc, "version": 2}, "unsupported JSON backup version 2"),
        ({**doc, "version": True}, "unsupported JSON backup version"),
        ({**doc, "key": {**doc["key"], "created": 1.5}}, "creation time"),
        ({**doc, "key": {**doc["key"], "created": True}}, "creation time"),
        ({**doc, "kdf": {**doc["kdf"], "iterations": 10}}, "out of bounds"),
        ({**doc, "kdf": {**doc["kdf"], "salt": doc["kdf"]["salt"] + "="}}, "base64url"),
        ({**doc, "cipher": {**doc["cipher"], "name": "aes-128-gcm"}}, "unknown cipher"),
        ({**doc, "kdf": {**doc["kdf"], "name": "argon2id"}}, "unknown KDF"),
        ({**doc, "key": {**doc["key"], "label": "x" * 1025}}, "label"),
        ({**doc, "key": {**doc["key"], "client_id": ""}}, "client_id"),
        ({**doc, "format": "something-else"}, "not a DataFold JSON backup"),
        (json.dumps(doc)[:-1] + ', "kdf": {}}', "duplicate member"),
        (json.dumps(doc).replace("1000", "NaN"), "NaN"),
    ]
    for broken, message in cases:
        text = broken if isinstance(broken, str) else json.dumps(broken)
        with pytest.raises(KeyFormatError, match=message):
            Envelope.from_json(text.encode())


def test_strict_binary(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    data = seal(key, NFC, info, kdf=FAST[0]).to_binary()
    with pytest.raises(KeyFormatError, match="trailing bytes"):
        Envelope.from_binary(data + b"\0")
    with pytest.raises(KeyFormatError, match="version 2"):
        Envelope.from_binary(data[:4] + b"\x02" + data[5:])
    with pytest.raises(KeyFormatError, match="unknown KDF id 9"):
        Envelope.from_binary(data[:5] + b"\x09" + data[6:])
    with pytest.raises(KeyFormatError, match="no DFKB magic"):
        Envelope.from_binary(b"DFKX" + data[4:])
    huge = data[:6] + bytes((30,)) + data[7:]  # scrypt N = 2^30
    with pytest.raises(KeyFormatError, match="out of bounds"):
        Envelope.from_binary(huge)


def test_binary_layout_is_as_documented(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    envelope = seal(key, NFC, info, kdf=ScryptParams(10, 8, 1), salt=bytes(16), nonce=bytes(12))
    data = envelope.to_binary()
    label, client = info.label.encode(), (info.client_id or "").encode()
    expected_header = (
        b"DFKB\x01" + b"\x01" + bytes((10,)) + struct.pack(">II", 8, 1) + b"\x10" + bytes(16) + b"\x01\x0c" + bytes(12)
        + b64url_decode(info.keyid) + struct.pack(">Q", info.created) + struct.pack(">H", len(label)) + label
        + struct.pack(">H", len(client)) + client + struct.pack(">H", 48)
    )  # fmt: skip
    assert data == expected_header + envelope.ciphertext
    assert envelope.header() == expected_header and len(data) == len(expected_header) + 48


def test_seal_refuses_bad_input(key: Ed25519PrivateKey) -> None:
    with pytest.raises(KeyStoreError, match="empty passphrase"):
        seal(key, b"", kdf=FAST[1])
    with pytest.raises(KeyStoreError, match="keyid"):
        seal(key, NFC, BackupInfo("A" * 43), kdf=FAST[1])
    with pytest.raises(KeyFormatError, match="out of bounds"):
        seal(key, NFC, kdf=ScryptParams(9))
    with pytest.raises(KeyFormatError, match="12 bytes"):
        seal(key, NFC, kdf=FAST[1], nonce=bytes(8))


def test_unseal_detects_a_lying_header(key: Ed25519PrivateKey) -> None:
    """A backup made by someone who knows the passphrase but claims another keyid is refused."""
    other = Ed25519PrivateKey.generate()
    forged = seal(other, NFC, BackupInfo(jwk_thumbprint(other)), kdf=FAST[1])
    honest_header = Envelope(forged.kdf, forged.salt, forged.nonce, BackupInfo(jwk_thumbprint(key)), forged.ciphertext)
    with pytest.raises(WrongPassphraseError):  # the keyid is authenticated, so this fails already
        unseal(honest_header, NFC)


def test_kdf_helpers() -> None:
    assert ScryptParams().n == 2**17 and ScryptParams().memory == 128 * 8 * 2**17
    assert is_weak(ScryptParams(16)) and not is_weak(ScryptParams()) and is_weak(Pbkdf2Params(2048))
    assert derive_key(Pbkdf2Params(1000), NFC, bytes(16)) == derive_key(Pbkdf2Params(1000), bytearray(NFC), bytes(16))
    with pytest.raises(KeyFormatError, match="salt"):
        derive_key(Pbkdf2Params(1000), NFC, bytes(8))
    with pytest.raises(KeyFormatError, match="1 GiB"):
        ScryptParams(20, 16, 1).check()


def test_secret_bytes_hide_and_wipe() -> None:
    secret = SecretBytes(b"top secret")
    assert repr(secret) == str(secret) == "<SecretBytes: 10 bytes>" and "top" not in f"{secret!r}"
    view = secret.buffer
    with secret:
        assert bytes(view) == b"top secret"
    assert len(secret) == 0 and not secret
    buffer = bytearray(b"abc")
    wipe(buffer)
    assert buffer == bytearray(3)
    with pytest.raises(TypeError):
        wipe(memoryview(b"immutable"))


# --- paper -------------------------------------------------------------------------------------------


def test_paper_round_trip_and_typed_forms(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    document = paper_document(key, info)
    assert document.startswith("DataFold key paper backup, format 1") and f"keyid: {info.keyid}" in document
    restored, keyid = read_paper(document)
    assert restored.private_bytes_raw() == key.private_bytes_raw() and keyid == info.keyid
    words = seed_words(key)
    assert len(words) == 24
    for typed in (" ".join(words), "\n".join(w.upper() for w in words), " ".join(w[:4] for w in words)):
        assert words_to_key(typed.split()).private_bytes_raw() == key.private_bytes_raw()
    assert restore_backup([" ".join(words).encode()]).format == "paper"


def test_paper_errors_name_positions_not_words(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    words = seed_words(key)
    wrong = [*words[:6], "zzzz", *words[7:]]
    with pytest.raises(KeyFormatError, match="word 7 is not a BIP39") as caught:
        words_to_key(wrong)
    assert not any(w in str(caught.value) for w in words)
    swapped = [words[1], words[0], *words[2:]]
    if swapped != words:
        with pytest.raises(KeyFormatError, match="checksum"):
            words_to_key(swapped)
    with pytest.raises(KeyFormatError, match="24 words; got 23"):
        words_to_key(words[:-1])
    document = paper_document(key, info)
    other = paper_document(Ed25519PrivateKey.generate(), info)
    with pytest.raises(KeyFormatError, match="keyid differs"):
        read_paper(other)  # the other key's words under this key's keyid line
    lines = document.splitlines()
    missing = "\n".join(line.replace(" 5 ", " ") if line.lstrip().startswith("5 ") else line for line in lines)
    with pytest.raises(KeyFormatError, match="lacks word number"):
        read_paper(missing.replace("\n 5 ", "\n "))


# --- shamir ------------------------------------------------------------------------------------------


def test_shamir_single_group(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    plan = ShamirPlan.simple(3, 5)
    shares = split_key(key, plan)[0]
    assert len(shares) == 5 and all(len(s.split()) == 33 for s in shares)
    assert slip39.check_split([shares], plan, info.keyid) == plan.minimal_sets() == 10  # every set of 3
    assert slip39.combine(shares[2:]).private_bytes_raw() == key.private_bytes_raw()
    with pytest.raises(KeyFormatError, match="do not restore"):
        slip39.combine(shares[:2])
    assert slip39.share_info(shares[4]).member == 5


def test_shamir_groups_and_documents(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    plan = ShamirPlan(2, ((1, 1), (2, 3), (3, 5)))
    mnemonics = split_key(key, plan)
    assert slip39.check_split(mnemonics, plan, info.keyid) == plan.minimal_sets() == 3 + 10 + 30
    docs = slip39.share_documents(key, info, plan, mnemonics, passphrase=False)
    assert [(g, m) for g, m, _ in docs][:4] == [(1, 1), (2, 1), (2, 2), (2, 3)]
    chosen = [docs[0][2], docs[2][2], docs[3][2]]  # the owner's share + 2 family members
    assert restore_backup([t.encode() for t in chosen]).keyid == info.keyid
    with pytest.raises(KeyFormatError):
        restore_backup([docs[0][2].encode(), docs[1][2].encode()])  # one group short


def test_shamir_passphrase(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    plan = ShamirPlan.simple(2, 3)
    mnemonics = split_key(key, plan, passphrase=b"ascii pass")
    docs = [d[2].encode() for d in slip39.share_documents(key, info, plan, mnemonics, passphrase=True)]
    assert restore_backup(docs[:2], b"ascii pass").keyid == info.keyid
    with pytest.raises(WrongPassphraseError, match="wrong SLIP-39 passphrase"):
        restore_backup(docs[:2], b"wrong pass")
    with pytest.raises(KeyFormatError, match="printable ASCII"):
        split_key(key, plan, passphrase="caf\u00e9".encode())


def test_shamir_plans_refused() -> None:
    for plan, message in [
        (ShamirPlan(1, ((1, 3),)), "1-of-3"),
        (ShamirPlan(2, ((2, 3),)), "group threshold"),
        (ShamirPlan(1, ((4, 3),)), "1 <= T <= N"),
        (ShamirPlan(1, ((2, 17),)), "1 <= T <= N <= 16"),
    ]:
        with pytest.raises(KeyFormatError, match=message):
            plan.check()
    assert ShamirPlan(2, ((1, 1), (2, 3))).describe() == "2 of 2 groups (1 of 1, 2 of 3)"


def test_shamir_bad_words_and_mixed_sets(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    shares = split_key(key, ShamirPlan.simple(2, 3))[0]
    words = shares[0].split()
    with pytest.raises(KeyFormatError, match="word 5 is not a SLIP-39 word") as caught:
        slip39.combine([" ".join([*words[:4], "qqqq", *words[5:]]), shares[1]])
    assert "qqqq" not in str(caught.value)
    other = split_key(Ed25519PrivateKey.generate(), ShamirPlan.simple(2, 3))[0]
    with pytest.raises(KeyFormatError, match="do not restore"):
        slip39.combine([shares[0], other[1]])
    prefixes = [" ".join(w[:4] for w in s.split()) for s in shares[:2]]
    assert jwk_thumbprint(slip39.combine(prefixes)) == info.keyid


# --- minimal sets, header lines, messages (third new-user trial) ---------------------------------------


def test_check_split_tries_every_minimal_set_or_says_how_many(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    """Trial finding 11: a 2-of-3 split has 3 minimal sets, and all 3 are tried (not "2 minimal sets")."""
    assert [ShamirPlan.simple(t, n).minimal_sets() for t, n in ((1, 1), (2, 3), (3, 5), (8, 16))] == [1, 3, 10, 12870]
    plan = ShamirPlan.simple(2, 3)
    shares = split_key(key, plan)
    assert slip39.check_split(shares, plan, info.keyid) == 3
    # above the limit, a sample in which every share takes part (first 2, last 2)
    assert slip39.check_split(shares, plan, info.keyid, exhaustive_limit=2) == 2
    groups = ShamirPlan(2, ((1, 1), (2, 3), (3, 5)))
    assert slip39.check_split(split_key(key, groups), groups, info.keyid, exhaustive_limit=0) == 4
    other = split_key(Ed25519PrivateKey.generate(), plan)
    with pytest.raises(KeyStoreError, match="does not restore the key"):
        slip39.check_split(other, plan, info.keyid)


def test_paper_and_shamir_header_lines_come_back_validated(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    """Trial finding 8: label and created of a paper or Shamir document are restored, as unauthenticated header."""
    paper = paper_document(key, info)
    restored = restore_backup([paper.encode()])
    assert restored.info is None  # nothing authenticated
    assert restored.header == DocumentInfo(info.label, info.created) and restored.warnings == []
    plan = ShamirPlan.simple(2, 3)
    docs = [t for _, _, t in slip39.share_documents(key, info, plan, split_key(key, plan), passphrase=False)]
    assert "\ncreated: 2023-11-14T22:13:20Z\n" in docs[0]
    assert restore_backup([docs[0].encode(), docs[2].encode()]).header == DocumentInfo(info.label, info.created)
    # typed words have no header; a share without a created line (written before it existed) has a label only
    assert restore_backup([" ".join(seed_words(key)).encode()]).header is None
    old = [d.replace("\ncreated: 2023-11-14T22:13:20Z", "") for d in docs[:2]]
    assert restore_backup([d.encode() for d in old]).header == DocumentInfo(info.label, None)
    assert restore_backup([paper.replace(f"label: {info.label}", "label: -").encode()]).header == DocumentInfo(
        "", info.created
    )


@pytest.mark.parametrize(
    ("label_line", "created_line", "expected", "warning"),
    [
        ("label: evil\x1b[2Jlabel", "created: 2023-11-14T22:13:20Z", (None, 1_700_000_000), "label ignored"),
        ("label: \u202eevil", "created: 2023-11-14T22:13:20Z", (None, 1_700_000_000), "label ignored"),
        ("label: " + "x" * 1025, "created: 2023-11-14T22:13:20Z", (None, 1_700_000_000), "label ignored"),
        ("label: fine", "created: 2999-01-01T00:00:00Z", ("fine", None), "creation date ignored"),
        ("label: fine", "created: 2023-13-01T00:00:00Z", ("fine", None), "creation date ignored"),
        ("label: fine", "created: 1700000000", ("fine", None), "creation date ignored"),
        ("label: fine\nlabel: other", "created: 2023-11-14T22:13:20Z", (None, 1_700_000_000), "several"),
    ],
    ids=["escape", "bidi", "too-long", "future", "month-13", "epoch-number", "two-labels"],
)
def test_invalid_header_lines_are_ignored_with_a_warning(
    key: Ed25519PrivateKey, info: BackupInfo, label_line: str, created_line: str, expected: Any, warning: str
) -> None:
    lines = paper_document(key, info).splitlines()
    lines[2:4] = [label_line, created_line]
    restored = restore_backup(["\n".join(lines).encode()], what="sheet.txt")
    assert restored.private_key.private_bytes_raw() == key.private_bytes_raw()  # the words still restore
    header = restored.header or DocumentInfo()
    assert (header.label, header.created) == expected
    (message,) = restored.warnings
    assert message.startswith("sheet.txt: ") and warning in message and "evil" not in message


def test_shares_that_disagree_on_a_header_line_drop_it(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    plan = ShamirPlan.simple(2, 3)
    docs = [t for _, _, t in slip39.share_documents(key, info, plan, split_key(key, plan), passphrase=False)]
    changed = docs[1].replace(f"label: {info.label}", "label: someone else's")
    restored = restore_backup([docs[0].encode(), changed.encode()])
    assert restored.header == DocumentInfo(None, info.created)
    assert restored.warnings == ["the shares' label lines differ; label ignored"]


def test_a_label_cannot_add_lines_to_a_document(key: Ed25519PrivateKey) -> None:
    sneaky = BackupInfo(jwk_thumbprint(key), "laptop\nkeyid: AAAA\r\u2028created: 1999", 1_700_000_000)
    document = paper_document(key, sneaky)
    assert document.splitlines()[1:4] == [
        f"keyid: {sneaky.keyid}",
        "label: laptop keyid: AAAA  created: 1999",
        "created: 2023-11-14T22:13:20Z",
    ]
    assert restore_backup([document.encode()]).header == DocumentInfo(
        "laptop keyid: AAAA  created: 1999", 1_700_000_000
    )
    assert label_line("") == "-" and label_line(" \x00 ") == "-"


def test_restore_errors_name_the_input(key: Ed25519PrivateKey, info: BackupInfo) -> None:
    """Trial finding 9: wrong passphrase, truncation and damage are reported with the file's name."""
    envelope = seal(key, NFC, info, kdf=ScryptParams(10))
    for data, what in ((envelope.to_json(), "b.json"), (envelope.to_binary(), "b.bin")):
        with pytest.raises(WrongPassphraseError, match=rf": {what}: wrong passphrase, or the backup was modified"):
            restore_backup([data], b"not it", what=what)
    with pytest.raises(KeyFormatError, match=r": t\.json: not a valid JSON document \(truncated or damaged\?\)"):
        restore_backup([envelope.to_json()[:200]], NFC, what="t.json")
    with pytest.raises(KeyFormatError, match=r": t\.bin: the binary backup is truncated"):
        restore_backup([envelope.to_binary()[:100]], NFC, what="t.bin")
    pem = pkcs8.encode_private_key(key, NFC, iterations=1000)
    with pytest.raises(KeyFormatError, match=r": t\.pem: this ENCRYPTED PRIVATE KEY PEM stops before its -----END"):
        restore_backup([pem[:150]], NFC, what="t.pem")
    with pytest.raises(KeyFormatError, match=r": p\.txt: the paper backup document has no numbered words \(truncated"):
        restore_backup(["\n".join(paper_document(key, info).splitlines()[:8]).encode()], what="p.txt")
    plan = ShamirPlan.simple(2, 3)
    docs = [t for _, _, t in slip39.share_documents(key, info, plan, split_key(key, plan), passphrase=False)]
    cut = "\n".join(docs[2].splitlines()[:17]).encode()
    with pytest.raises(KeyFormatError, match=r": m3\.txt: a share document has 33 numbered words; found 18 \(trunc"):
        restore_backup([docs[0].encode(), cut], what="m1.txt and m3.txt", names=["m1.txt", "m3.txt"])
    bad_word = docs[1].replace("\n 2 ", "\n 2 zzzz ", 1).encode()  # word 2 becomes "zzzz"
    with pytest.raises(KeyFormatError, match=r": m2\.txt: word 2 is not a SLIP-39 word"):
        restore_backup([docs[0].encode(), bad_word], names=["m1.txt", "m2.txt"])
    with pytest.raises(KeyFormatError, match=r": m1\.txt: the shares do not restore a secret"):
        restore_backup([docs[0].encode()], what="m1.txt")


def test_plain_text_is_not_a_backup_but_short_word_lists_are_counted(key: Ed25519PrivateKey) -> None:
    """Trial finding 13: "doc.txt: 2 words; a paper backup has 24 ..." for any text was misleading."""
    for text in ("hello world\n", "Dear Ann thank you for the lovely flowers " * 3):
        with pytest.raises(KeyFormatError, match=r": doc\.txt is not a backup: \d+ words of plain text; recognized"):
            detect_backup(text.encode(), what="doc.txt")
    words = seed_words(key)
    with pytest.raises(KeyFormatError, match=r": w\.txt: 18 words; a paper backup has 24 and a Shamir share 33"):
        detect_backup(" ".join(words[:18]).encode(), what="w.txt")
    typos = [*words[:20], "zzzz", "qqqq", *words[22:]]  # two typos: still a (bad) paper backup, not "plain text"
    assert detect_backup(" ".join(typos).encode()) == "paper"
