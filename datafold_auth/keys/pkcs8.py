"""PKCS#8 PEM encoding of Ed25519 private keys, optionally passphrase-encrypted.

Encrypted keys are ``ENCRYPTED PRIVATE KEY`` PEM (RFC 5958 section 3,
EncryptedPrivateKeyInfo) with PBES2 (RFC 8018 section 6.2): PBKDF2 with
HMAC-SHA256, :data:`KDF_ITERATIONS` iterations and a 16-byte random salt,
then AES-256-CBC with a random IV. ``openssl pkey`` reads them.

``cryptography`` cannot write this itself: its ``encryption_builder()`` only
serves OpenSSH and PKCS#12 formats, and ``BestAvailableEncryption`` uses PBES2
with only 2048 PBKDF2 iterations. So the EncryptedPrivateKeyInfo is built here
from ``cryptography`` primitives; reading uses ``cryptography``'s own loader.

Passphrases are bytes. Before use they are NFC-normalized (Unicode
normalization form C, :func:`normalize_passphrase`) when they are valid UTF-8,
so "café" typed as precomposed or as combining characters opens the same key;
bytes that are not UTF-8 are used unchanged. Tools other than this package
(such as ``openssl``) see the NFC-normalized UTF-8 bytes.
"""

from __future__ import annotations

import base64
import os
import unicodedata

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ..errors import KeyFormatError
from .errors import KeyStoreError, WrongPassphraseError

KDF_ITERATIONS = 600_000
"""PBKDF2-HMAC-SHA256 iteration count for encrypted keys (OWASP 2023 guidance)."""

_ENCRYPTED_LABEL = b"ENCRYPTED PRIVATE KEY"
# DER encodings of the object identifiers used (tag, length, value).
_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
_OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_NULL = b"\x05\x00"


def normalize_passphrase(passphrase: bytes) -> bytes:
    """The NFC normalization of a UTF-8 passphrase; non-UTF-8 bytes are returned as is."""
    try:
        text = passphrase.decode("utf-8")
    except UnicodeDecodeError:
        return passphrase
    return unicodedata.normalize("NFC", text).encode("utf-8")


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def encode_private_key(key: Ed25519PrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM of ``key``: encrypted as described above, or plain if ``passphrase`` is None.

    Raises:
        KeyStoreError: if ``passphrase`` is empty (``b""``).
    """
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if passphrase is None:
        label, der = b"PRIVATE KEY", plain
    else:
        if not passphrase:
            raise KeyStoreError("an empty passphrase is not allowed; use no encryption explicitly instead")
        salt, iv = os.urandom(16), os.urandom(16)
        kdf = PBKDF2HMAC(hashes.SHA256(), 32, salt, KDF_ITERATIONS)
        padder = padding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(kdf.derive(normalize_passphrase(passphrase))), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
        iterations = KDF_ITERATIONS.to_bytes(KDF_ITERATIONS.bit_length() // 8 + 1, "big")
        pbkdf2 = _seq(
            _OID_PBKDF2,
            _seq(_der(0x04, salt), _der(0x02, iterations), _seq(_OID_HMAC_SHA256, _NULL)),
        )
        algorithm = _seq(_OID_PBES2, _seq(pbkdf2, _seq(_OID_AES256_CBC, _der(0x04, iv))))
        label, der = _ENCRYPTED_LABEL, _seq(algorithm, _der(0x04, ciphertext))
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN " + label + b"-----\n" + lines + b"\n-----END " + label + b"-----\n"


def is_encrypted(pem: bytes) -> bool:
    """Whether ``pem`` is an ``ENCRYPTED PRIVATE KEY`` PEM document."""
    return b"-----BEGIN " + _ENCRYPTED_LABEL + b"-----" in pem


def decode_private_key(pem: bytes, passphrase: bytes | None, *, what: str = "the key") -> Ed25519PrivateKey:
    """Load an Ed25519 private key from PKCS#8 PEM, decrypting it if it is encrypted.

    A passphrase given for an unencrypted key is ignored.

    Args:
        pem: the PEM document.
        passphrase: the passphrase (NFC-normalized before use), or None.
        what: how to name the key in error messages, e.g. ``"key 'default'"``.

    Raises:
        KeyStoreError: the key is encrypted and ``passphrase`` is None.
        WrongPassphraseError: the passphrase does not decrypt the key.
        KeyFormatError: the data is not a PKCS#8 PEM Ed25519 private key.
    """
    password: bytes | None = None
    if is_encrypted(pem):
        if passphrase is None:
            raise KeyStoreError(f"{what} is encrypted; a passphrase is needed")
        password = normalize_passphrase(passphrase)
    try:
        key = serialization.load_pem_private_key(pem, password)
    except ValueError as exc:
        if password is not None:
            raise WrongPassphraseError(f"wrong passphrase for {what}") from exc
        raise KeyFormatError(f"{what} is not a valid PKCS#8 PEM private key") from exc
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"{what} is not a supported PKCS#8 PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{what} is not an Ed25519 key")
    return key


__all__ = [
    "KDF_ITERATIONS",
    "decode_private_key",
    "encode_private_key",
    "is_encrypted",
    "normalize_passphrase",
]
