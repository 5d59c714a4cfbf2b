"""Key formats in and out, detection in words, and interop with real openssl and ssh-keygen."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.errors import KeyFormatError
from datafold_auth.jwk import b64url_encode, jwk_thumbprint
from datafold_auth.keys import (
    PRIVATE_FORMATS,
    PUBLIC_FORMATS,
    KeyStoreError,
    WrongPassphraseError,
    encode_private_key,
    export_private_key,
    export_public_key,
    identify,
    pbes2_info,
    read_private_key,
    read_public_key,
)
from tests.test_keytools_helpers import SSH_KEYGEN, needs_openssl, needs_ssh_keygen, openssl


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.mark.parametrize("fmt", PRIVATE_FORMATS)
def test_private_formats_round_trip(key: Ed25519PrivateKey, fmt: str) -> None:
    data = export_private_key(key, fmt)  # type: ignore[arg-type]
    found = identify(data)
    assert found.kind == "private", found
    imported = read_private_key(data)
    assert imported.private_key.private_bytes_raw() == key.private_bytes_raw()
    assert "private_key" not in repr(imported) or "Ed25519PrivateKey" not in repr(imported)


@pytest.mark.parametrize("der", [False, True])
def test_encrypted_pkcs8_pem_and_der(key: Ed25519PrivateKey, der: bool) -> None:
    data = encode_private_key(key, b"pw-1", iterations=1000, der=der)
    found = identify(data)
    assert found.encrypted and "PBKDF2-HMAC-SHA256 1000 iterations" in found.description
    with pytest.raises(KeyStoreError, match="passphrase is needed"):
        read_private_key(data)
    with pytest.raises(WrongPassphraseError):
        read_private_key(data, b"pw-2")
    assert read_private_key(data, b"pw-1").private_key.private_bytes_raw() == key.private_bytes_raw()


@pytest.mark.parametrize("fmt", PUBLIC_FORMATS)
def test_public_formats_round_trip(key: Ed25519PrivateKey, fmt: str) -> None:
    data = export_public_key(key, fmt, comment="me@host" if fmt == "openssh" else "")  # type: ignore[arg-type]
    public, _ = read_public_key(data)
    assert jwk_thumbprint(public) == jwk_thumbprint(key)
    if fmt not in ("raw-hex", "raw-base64url"):  # raw 32 bytes read as a *seed* by identify (documented)
        assert identify(data).kind == "public"


def test_64_byte_seed_and_public_key(key: Ed25519PrivateKey) -> None:
    pair = key.private_bytes_raw() + key.public_key().public_bytes_raw()
    for data in (pair, pair.hex().encode(), b64url_encode(pair).encode()):
        imported = read_private_key(data)
        assert imported.private_key.private_bytes_raw() == key.private_bytes_raw()
        assert imported.notes == ["a 64-byte seed||public key; using the first 32 bytes as the seed"]
    mismatched = key.private_bytes_raw() + Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(KeyFormatError, match="not the public key of the first 32"):
        read_private_key(mismatched.hex().encode())


def _pem(private: object) -> bytes:
    return private.private_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_wrong_inputs_are_explained_in_words(key: Ed25519PrivateKey) -> None:
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    traditional_rsa = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    cases = {
        export_public_key(key, "spki-pem"): "this is a public key",
        export_public_key(key, "openssh"): "a public key (OpenSSH ssh-ed25519 line)",
        export_public_key(key, "jwk"): 'a public key (JWK without "d")',
        _pem(rsa_key): "this PEM is RSA, not Ed25519",
        traditional_rsa: "this PEM is RSA, not Ed25519",
        _pem(ec_key): "this PEM is EC (secp256r1), not Ed25519",
        _pem(x25519.X25519PrivateKey.generate()): "this PEM is X25519, not Ed25519",
        rsa_key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH):
            "OpenSSH ssh-rsa public key",
        json.dumps({"kty": "RSA", "n": "x", "e": "AQAB"}).encode(): "this JWK is RSA, not Ed25519",
        json.dumps({"kty": "OKP", "crv": "X25519", "x": "x"}).encode(): "this JWK is OKP/X25519",
        b"hello world, not a key": "text in no supported key format",
        b"abcd" * 5: "10 bytes of hex; an Ed25519 seed is 32 bytes",
        b"\x01\x02" * 20: "40 bytes of binary data",
        b"00" * 20: "20 bytes of hex",
        b"": "empty input",
    }  # fmt: skip
    for data, message in cases.items():
        with pytest.raises(KeyFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_private_key(data, what="the file")


def test_private_jwk_checks_x(key: Ed25519PrivateKey) -> None:
    jwk = json.loads(export_private_key(key, "jwk"))
    jwk["x"] = b64url_encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw())
    with pytest.raises(KeyFormatError, match='"x" member is not the public key'):
        read_private_key(json.dumps(jwk).encode())


def test_read_public_key_refuses_private_and_small_order(key: Ed25519PrivateKey) -> None:
    with pytest.raises(KeyFormatError, match="is a private key"):
        read_public_key(export_private_key(key, "pkcs8-pem"))
    with pytest.raises(KeyFormatError, match="small order"):
        read_public_key(bytes(32).hex().encode())


@needs_openssl
@pytest.mark.parametrize(
    ("args", "description"),
    [
        (("-v2", "aes-256-cbc", "-iter", "600000"), "PBKDF2-HMAC-SHA256 600000 iterations"),
        (("-scrypt", "-scrypt_N", "16384"), "scrypt N=2^14 r=8 p=1"),
    ],
    ids=["pbkdf2", "scrypt"],
)
def test_reads_keys_openssl_encrypted(tmp_path: Path, args: tuple[str, ...], description: str) -> None:
    (tmp_path / "pass").write_text("openssl pass \u00e9\n")
    plain = tmp_path / "plain.pem"
    assert openssl("genpkey", "-algorithm", "ed25519", "-out", plain).returncode == 0
    out = tmp_path / "enc.pem"
    made = openssl("pkcs8", "-topk8", *args, "-in", plain, "-passout", f"file:{tmp_path / 'pass'}", "-out", out)
    assert made.returncode == 0, made.stderr
    data = out.read_bytes()
    assert description in pbes2_info(data).description
    expected = serialization.load_pem_private_key(plain.read_bytes(), None)
    assert isinstance(expected, Ed25519PrivateKey)
    imported = read_private_key(data, "openssl pass \u00e9".encode())
    assert imported.private_key.private_bytes_raw() == expected.private_bytes_raw()


def _pbes2_der(iterations: int) -> bytes:
    """An EncryptedPrivateKeyInfo (PBES2, PBKDF2-HMAC-SHA256) with a chosen count and dummy ciphertext."""
    from datafold_auth.keys.pkcs8 import _OID_AES256_CBC, _OID_HMAC_SHA256, _OID_PBES2, _OID_PBKDF2, _der, _seq

    count = iterations.to_bytes(iterations.bit_length() // 8 + 1, "big")
    pbkdf2 = _seq(_OID_PBKDF2, _seq(_der(0x04, bytes(16)), _der(0x02, count), _seq(_OID_HMAC_SHA256, b"\x05\x00")))
    algorithm = _seq(_OID_PBES2, _seq(pbkdf2, _seq(_OID_AES256_CBC, _der(0x04, bytes(16)))))
    return _seq(algorithm, _der(0x04, bytes(48)))


def test_absurd_kdf_costs_are_refused_before_work() -> None:
    assert "10000000 iterations" in pbes2_info(_pbes2_der(10_000_000)).description
    for data in (_pbes2_der(10_000_001), _pbes2_der(2**40)):
        with pytest.raises(KeyFormatError, match="out of bounds"):
            read_private_key(data, b"pw")
    with pytest.raises(KeyFormatError, match="out of bounds"):
        from datafold_auth.keys import decode_private_key

        decode_private_key(_pbes2_der(2**31), b"pw")


@needs_openssl
def test_openssl_reads_exported_public_keys(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    for fmt, inform in (("spki-pem", "PEM"), ("spki-der", "DER")):
        path = tmp_path / f"pub.{fmt}"
        path.write_bytes(export_public_key(key, fmt))  # type: ignore[arg-type]
        out = openssl("pkey", "-pubin", "-inform", inform, "-in", path, "-outform", "DER", "-pubout")
        assert out.returncode == 0, out.stderr
        assert out.stdout[-32:] == key.public_key().public_bytes_raw()


@needs_ssh_keygen
def test_ssh_keygen_reads_the_openssh_line(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    assert SSH_KEYGEN is not None
    path = tmp_path / "id.pub"
    path.write_bytes(export_public_key(key, "openssh", comment="alice@laptop"))
    out = subprocess.run([SSH_KEYGEN, "-l", "-f", str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("256 SHA256:") and out.stdout.rstrip().endswith("alice@laptop (ED25519)")
    with pytest.raises(ValueError, match="line break"):
        export_public_key(key, "openssh", comment="a\nb")


@needs_ssh_keygen
@pytest.mark.parametrize("passphrase", ["", "ssh pass"], ids=["plain", "encrypted"])
def test_imports_openssh_private_keys_made_by_ssh_keygen(tmp_path: Path, passphrase: str) -> None:
    assert SSH_KEYGEN is not None
    path = tmp_path / "id_ed25519"
    made = subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f", str(path)],
        capture_output=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    data = path.read_bytes()
    found = identify(data)
    assert found.kind == "private" and found.format == "openssh" and found.encrypted == bool(passphrase)
    imported = read_private_key(data, passphrase.encode() if passphrase else None)
    public, _ = read_public_key(Path(f"{path}.pub").read_bytes())
    assert jwk_thumbprint(imported.private_key) == jwk_thumbprint(public)
    if passphrase:
        with pytest.raises(WrongPassphraseError):
            read_private_key(data, b"wrong")
        with pytest.raises(KeyStoreError, match="passphrase is needed"):
            read_private_key(data)


@needs_ssh_keygen
def test_openssh_rsa_private_key_is_refused(tmp_path: Path) -> None:
    assert SSH_KEYGEN is not None
    path = tmp_path / "id_rsa"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(path)], check=True)
    with pytest.raises(KeyFormatError, match="OpenSSH key is RSA, not Ed25519"):
        read_private_key(path.read_bytes())


def test_backups_are_pointed_to_restore(key: Ed25519PrivateKey) -> None:
    from datafold_auth.keys import Pbkdf2Params, paper_document, seal
    from datafold_auth.keys.backup import BackupInfo

    envelope = seal(key, b"pw", kdf=Pbkdf2Params(1000))
    for data in (
        envelope.to_json(),
        envelope.to_binary(),
        paper_document(key, BackupInfo(jwk_thumbprint(key))).encode(),
    ):
        with pytest.raises(KeyFormatError, match="keytools restore"):
            read_private_key(data)


def _with_bcrypt_rounds(data: bytes, rounds: int) -> bytes:
    """An encrypted OpenSSH key whose container claims ``rounds`` bcrypt rounds (the ciphertext unchanged)."""
    lines = data.decode().splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))
    pos = len(b"openssh-key-v1\x00")
    for _ in range(2):  # ciphername, kdfname
        pos += 4 + int.from_bytes(blob[pos : pos + 4], "big")
    salt = int.from_bytes(blob[pos + 4 : pos + 8], "big")
    at = pos + 8 + salt
    blob[at : at + 4] = rounds.to_bytes(4, "big")
    body = base64.b64encode(bytes(blob)).decode()
    return "\n".join([lines[0], *(body[i : i + 70] for i in range(0, len(body), 70)), lines[-1], ""]).encode()


def test_openssh_key_asking_for_too_many_bcrypt_rounds_is_refused_before_any_work(key: Ed25519PrivateKey) -> None:
    """The rounds are in the file: a hostile key asking for 2**32 - 1 would run bcrypt for days."""
    from datafold_auth.keys.formats import MAX_OPENSSH_BCRYPT_ROUNDS, _openssh_bcrypt_rounds

    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.BestAvailableEncryption(b"pw")
    )
    assert _openssh_bcrypt_rounds(data) == 16
    assert read_private_key(data, b"pw").private_key.private_bytes_raw() == key.private_bytes_raw()
    for rounds in (MAX_OPENSSH_BCRYPT_ROUNDS + 1, 2**32 - 1):
        hostile = _with_bcrypt_rounds(data, rounds)
        assert _openssh_bcrypt_rounds(hostile) == rounds
        started = time.monotonic()
        with pytest.raises(KeyFormatError, match=f"asks for {rounds} bcrypt rounds"):
            read_private_key(hostile, b"pw")
        assert time.monotonic() - started < 1.0
    # The container is read as cryptography's loader reads it (lenient base64, text around the
    # armour): a file it would run bcrypt on cannot hide its rounds from the check.
    hostile = _with_bcrypt_rounds(data, 2**32 - 1)
    lines = hostile.decode().splitlines()
    disguised = "junk before\n" + "\n".join([lines[0], *("!" + line + " *" for line in lines[1:-1]), lines[-1]])
    assert _openssh_bcrypt_rounds(disguised.encode()) == 2**32 - 1
    with pytest.raises(KeyFormatError, match="bcrypt rounds"):
        read_private_key(disguised.encode(), b"pw")
    plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    assert _openssh_bcrypt_rounds(plain) is None and _openssh_bcrypt_rounds(b"garbage") is None


def _key_whose(first_byte_of: Callable[[Ed25519PrivateKey], bytes]) -> Ed25519PrivateKey:
    """A key whose seed (or public key) starts with 0x30, the DER SEQUENCE tag (one key in 256)."""
    while True:
        key = Ed25519PrivateKey.generate()
        if first_byte_of(key)[:1] == b"\x30":
            return key


def test_raw_keys_that_start_like_der_are_read_as_raw() -> None:
    """Once in 256 a raw seed or public key starts with 0x30; it was reported as broken DER (a CI flake)."""
    key = _key_whose(lambda k: k.private_bytes_raw())
    pair = key.private_bytes_raw() + key.public_key().public_bytes_raw()
    for data in (key.private_bytes_raw(), pair):
        assert read_private_key(data).private_key.private_bytes_raw() == key.private_bytes_raw()
    public_key = _key_whose(lambda k: k.public_key().public_bytes_raw()).public_key()
    raw = public_key.public_bytes_raw()
    assert read_public_key(raw)[0].public_bytes_raw() == raw
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert identify(der).format == "spki-der"  # real DER is still DER
