"""The published backup vectors (tests/vectors/): reproducible byte for byte, and readable by us and OpenSSL.

The JSON-scrypt vector is the one test at the default scrypt cost (N=2^17);
the PBKDF2 vectors use the default 600,000 iterations.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import (
    Envelope,
    Pbkdf2Params,
    ScryptParams,
    WrongPassphraseError,
    read_private_key,
    restore_backup,
    seed_words,
)
from tests.test_keytools_helpers import needs_openssl, openssl
from tests.vectors import make_vectors

VECTORS = Path(__file__).resolve().parent / "vectors"
MANIFEST: dict[str, Any] = json.loads((VECTORS / "vectors.json").read_text(encoding="utf-8"))
NFC = unicodedata.normalize("NFC", MANIFEST["passphrase"]).encode()
NFD = MANIFEST["passphrase_nfd"].encode()


def _vector(name: str) -> dict[str, Any]:
    return next(v for v in MANIFEST["vectors"] if v.get("file") == name)


def test_the_generator_reproduces_every_file_byte_for_byte() -> None:
    files, manifest = make_vectors.build()
    assert manifest == MANIFEST
    for name, data in files.items():
        assert (VECTORS / name).read_bytes() == data, name
    assert NFC != NFD  # the vectors exercise normalization


def test_manifest_facts() -> None:
    key = make_vectors.vector_key()
    assert MANIFEST["keyid"] == jwk_thumbprint(key) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"  # RFC 8037 A.3
    assert MANIFEST["passphrase_nfc_utf8_hex"] == NFC.hex()
    assert MANIFEST["bip39_words"] == seed_words(key)


@pytest.mark.parametrize("name", ["json-scrypt.json", "json-pbkdf2.json", "binary-scrypt.bin", "binary-pbkdf2.bin"])
def test_envelope_vectors(name: str) -> None:
    data = (VECTORS / name).read_bytes()
    vector = _vector(name)
    envelope = Envelope.from_json(data) if vector["format"] == "json" else Envelope.from_binary(data)
    assert envelope.header().hex() == vector["associated_data_hex"]
    assert envelope.ciphertext.hex() == vector["ciphertext_hex"]
    assert (envelope.salt.hex(), envelope.nonce.hex()) == (vector["salt_hex"], vector["nonce_hex"])
    kdf = vector["kdf"]
    expected = (
        ScryptParams(kdf["n"].bit_length() - 1, kdf["r"], kdf["p"])
        if kdf["name"] == "scrypt"
        else Pbkdf2Params(kdf["iterations"])
    )
    assert envelope.kdf == expected
    restored = restore_backup([data], NFD)  # the NFD form opens what was sealed with NFC
    assert restored.private_key.private_bytes_raw().hex() == MANIFEST["seed_hex"]
    assert restored.info is not None
    assert (restored.info.label, restored.info.created, restored.info.client_id) == (
        MANIFEST["label"], MANIFEST["created"], MANIFEST["client_id"]
    )  # fmt: skip


def test_json_and_binary_share_the_associated_data() -> None:
    json_env = Envelope.from_json((VECTORS / "json-pbkdf2.json").read_bytes())
    binary = (VECTORS / "binary-pbkdf2.bin").read_bytes()
    assert json_env.to_binary() == binary
    assert Envelope.from_binary(binary).to_json() == (VECTORS / "json-pbkdf2.json").read_bytes()


def test_wrong_passphrase_on_a_vector() -> None:
    with pytest.raises(WrongPassphraseError):
        restore_backup([(VECTORS / "binary-scrypt.bin").read_bytes()], b"not the passphrase")


@needs_openssl
def test_openssl_reads_the_pem_vector(tmp_path: Path) -> None:
    (tmp_path / "pass").write_bytes(NFC + b"\n")
    out = openssl("pkey", "-in", VECTORS / "pem-pbkdf2.pem", "-passin", f"file:{tmp_path / 'pass'}", "-noout", "-text")
    assert out.returncode == 0, out.stderr
    assert MANIFEST["seed_hex"] in out.stdout.decode().replace(":", "").replace("\n", "").replace(" ", "")
    parsed = openssl("asn1parse", "-in", VECTORS / "pem-pbkdf2.pem").stdout.decode()
    assert "PBES2" in parsed and "hmacWithSHA256" in parsed and "aes-256-cbc" in parsed and ":093E" not in parsed
    assert "INTEGER           :0927C0" in parsed  # 600000 iterations


def test_pem_vectors_import() -> None:
    ours = read_private_key((VECTORS / "pem-pbkdf2.pem").read_bytes(), NFD)
    assert ours.private_key.private_bytes_raw().hex() == MANIFEST["seed_hex"]
    vector = _vector(make_vectors.OPENSSL_SCRYPT_PEM)
    theirs = restore_backup([(VECTORS / vector["file"]).read_bytes()], vector["passphrase"].encode())
    assert theirs.private_key.private_bytes_raw().hex() == MANIFEST["seed_hex"]
    assert "scrypt N=2^14 r=8 p=1" in theirs.description


def test_paper_vector() -> None:
    restored = restore_backup([(VECTORS / "paper.txt").read_bytes()])
    assert restored.private_key.private_bytes_raw().hex() == MANIFEST["seed_hex"]
    typed = " ".join(MANIFEST["bip39_words"]).encode()
    assert restore_backup([typed]).keyid == MANIFEST["keyid"]


@pytest.mark.parametrize("pair", [(1, 2), (1, 3), (2, 3)])
def test_shamir_vector_any_two_of_three(pair: tuple[int, int]) -> None:
    shares = [(VECTORS / f"shamir-g1-m{m}.txt").read_bytes() for m in pair]
    assert restore_backup(shares).private_key.private_bytes_raw().hex() == MANIFEST["seed_hex"]


def test_shamir_vector_one_share_is_not_enough() -> None:
    from datafold_auth.errors import KeyFormatError

    with pytest.raises(KeyFormatError, match="do not restore"):
        restore_backup([(VECTORS / "shamir-g1-m1.txt").read_bytes()])
