"""PKCS#8 PEM encoding: PBES2/PBKDF2-HMAC-SHA256/600000/AES-256-CBC, checked with real openssl."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.errors import KeyFormatError
from datafold_auth.keys import (
    KDF_ITERATIONS,
    KeyStoreError,
    WrongPassphraseError,
    decode_private_key,
    encode_private_key,
    normalize_passphrase,
)

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command (apt-get install -y openssl)")
NFC = "caf\u00e9-\u00c5ngstr\u00f6m".encode()
NFD = "cafe\u0301-A\u030angstro\u0308m".encode()


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, check=False)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@needs_openssl
def test_encrypted_pem_is_pbes2_pbkdf2_sha256_600000_aes256cbc(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    pem = tmp_path / "key.pem"
    pem.write_bytes(encode_private_key(key, b"secret"))
    assert pem.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    parsed = _openssl("asn1parse", "-in", str(pem))
    assert parsed.returncode == 0, parsed.stderr
    fields = re.findall(r"prim: (OBJECT|INTEGER|OCTET STRING) +:?(?:\[HEX DUMP\]:)?(\S+)", parsed.stdout.decode())
    objects = [value for kind, value in fields if kind == "OBJECT"]
    assert objects == ["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"]
    integers = [int(value, 16) for kind, value in fields if kind == "INTEGER"]
    assert integers == [KDF_ITERATIONS] == [600_000]
    octets = [value for kind, value in fields if kind == "OCTET STRING"]
    assert [len(o) // 2 for o in octets[:2]] == [16, 16]  # salt, IV


@needs_openssl
def test_openssl_decrypts_with_the_nfc_passphrase(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    pem = tmp_path / "key.pem"
    pem.write_bytes(encode_private_key(key, NFD))  # normalized to NFC before use
    (tmp_path / "nfc").write_bytes(NFC + b"\n")
    (tmp_path / "wrong").write_bytes(b"wrong\n")
    out = _openssl("pkey", "-in", str(pem), "-passin", f"file:{tmp_path / 'nfc'}")
    assert out.returncode == 0, out.stderr
    plain = serialization.load_pem_private_key(out.stdout, None)
    assert isinstance(plain, Ed25519PrivateKey)
    assert plain.private_bytes_raw() == key.private_bytes_raw()
    assert _openssl("pkey", "-in", str(pem), "-passin", f"file:{tmp_path / 'wrong'}").returncode != 0


@needs_openssl
def test_reads_a_key_openssl_encrypted(tmp_path: Path) -> None:
    (tmp_path / "pass").write_bytes(b"from-openssl\n")
    pem = tmp_path / "key.pem"
    out = _openssl(
        "genpkey", "-algorithm", "ed25519", "-aes-256-cbc", "-pass", f"file:{tmp_path / 'pass'}", "-out", str(pem)
    )
    assert out.returncode == 0, out.stderr
    assert isinstance(decode_private_key(pem.read_bytes(), b"from-openssl"), Ed25519PrivateKey)


def test_nfc_and_nfd_passphrases_open_the_same_key(key: Ed25519PrivateKey) -> None:
    assert NFC != NFD and normalize_passphrase(NFD) == NFC
    for written, read in ((NFC, NFD), (NFD, NFC)):
        loaded = decode_private_key(encode_private_key(key, written), read)
        assert loaded.private_bytes_raw() == key.private_bytes_raw()


def test_non_utf8_passphrase_is_used_unchanged(key: Ed25519PrivateKey) -> None:
    raw = b"\xff\xfe latin-1 \xe9"
    assert normalize_passphrase(raw) == raw
    assert decode_private_key(encode_private_key(key, raw), raw).private_bytes_raw() == key.private_bytes_raw()


def test_wrong_or_missing_passphrase(key: Ed25519PrivateKey) -> None:
    pem = encode_private_key(key, b"s3cret-Q")
    with pytest.raises(WrongPassphraseError, match="wrong passphrase for key 'k'") as info:
        decode_private_key(pem, b"guess-Z", what="key 'k'")
    assert "s3cret-Q" not in repr(info.value) and "guess-Z" not in repr(info.value)
    with pytest.raises(KeyStoreError, match="passphrase is needed"):
        decode_private_key(pem, None)


def test_empty_passphrase_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(KeyStoreError, match="empty passphrase"):
        encode_private_key(key, b"")


def test_unencrypted_pem_ignores_a_passphrase(key: Ed25519PrivateKey) -> None:
    pem = encode_private_key(key, None)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert pem == key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert decode_private_key(pem, b"ignored").private_bytes_raw() == key.private_bytes_raw()


def test_other_keys_and_garbage_are_key_format_errors() -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError, match="not an Ed25519 key"):
        decode_private_key(ec_pem, None)
    with pytest.raises(KeyFormatError):
        decode_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None)


def test_a_str_passphrase_or_key_is_a_clear_type_error() -> None:
    """A ``str`` used to fail deep inside with ``string argument without an encoding``."""
    key = Ed25519PrivateKey.generate()
    pem = encode_private_key(key, b"a long passphrase", iterations=1000)
    with pytest.raises(TypeError, match=r"^a passphrase is bytes or bytearray, not str: e\.g\. 'text'\.encode\(\)"):
        decode_private_key(pem, "a long passphrase")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^a passphrase is bytes or bytearray, not str"):
        encode_private_key(key, "a long passphrase")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^the key is bytes \(e\.g\. Path\(\.\.\.\)\.read_bytes\(\)\), not str$"):
        decode_private_key(pem.decode(), b"a long passphrase")  # type: ignore[arg-type]
    assert decode_private_key(pem, bytearray(b"a long passphrase")).public_key() == key.public_key()
