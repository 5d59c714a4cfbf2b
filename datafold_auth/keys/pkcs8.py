"""PKCS#8 PEM encoding of Ed25519 private keys, optionally passphrase-encrypted.

Encrypted keys are ``ENCRYPTED PRIVATE KEY`` PEM (RFC 5958 section 3,
EncryptedPrivateKeyInfo) with PBES2 (RFC 8018 section 6.2): PBKDF2 with
HMAC-SHA256, :data:`KDF_ITERATIONS` iterations and a 16-byte random salt,
then AES-256-CBC with a random IV. ``openssl pkey`` reads them.

``cryptography`` cannot write this itself: its ``encryption_builder()`` only
serves OpenSSH and PKCS#12 formats, and ``BestAvailableEncryption`` uses PBES2
with only 2048 PBKDF2 iterations. So the EncryptedPrivateKeyInfo is built here
from ``cryptography`` primitives; reading uses ``cryptography``'s own loader.

Reading accepts PEM and DER, plain or encrypted, with any PBES2 scheme that
``cryptography`` reads, including PBES2 with scrypt (RFC 7914 section 7) as
written by ``openssl pkcs8 -topk8 -scrypt``. Before decrypting, the PBES2
parameters are parsed (:func:`pbes2_info`) so that a file asking for an
absurd cost (more than 10,000,000 PBKDF2 iterations, scrypt above 1 GiB) is
refused instead of hanging the reader.

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
from dataclasses import dataclass

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ..errors import KeyFormatError
from .errors import KeyStoreError, WrongPassphraseError
from .kdf import KdfParams, Pbkdf2Params, ScryptParams

KDF_ITERATIONS = 600_000
"""PBKDF2-HMAC-SHA256 iteration count for encrypted keys (OWASP 2023 guidance)."""

_ENCRYPTED_LABEL = b"ENCRYPTED PRIVATE KEY"
# DER encodings of the object identifiers used (tag, length, value).
_OID_PBES2 = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13
_OID_PBKDF2 = bytes.fromhex("06092a864886f70d01050c")  # 1.2.840.113549.1.5.12
_OID_HMAC_SHA256 = bytes.fromhex("06082a864886f70d0209")  # 1.2.840.113549.2.9
_OID_AES256_CBC = bytes.fromhex("060960864801650304012a")  # 2.16.840.1.101.3.4.1.42
_OID_SCRYPT = bytes.fromhex("06092b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11
_NULL = b"\x05\x00"
_OID_NAMES = {
    bytes.fromhex("2a864886f70d0209"): "hmacWithSHA256",
    bytes.fromhex("2a864886f70d0207"): "hmacWithSHA1",
    bytes.fromhex("2a864886f70d020a"): "hmacWithSHA384",
    bytes.fromhex("2a864886f70d020b"): "hmacWithSHA512",
    bytes.fromhex("608648016503040102"): "aes-128-cbc",
    bytes.fromhex("608648016503040116"): "aes-192-cbc",
    bytes.fromhex("60864801650304012a"): "aes-256-cbc",
    bytes.fromhex("2a864886f70d0307"): "des-ede3-cbc",
}


def check_passphrase_type(passphrase: object) -> None:
    """Refuse a passphrase that is not ``bytes``/``bytearray`` (or ``None``) with a clear message.

    Raises:
        TypeError: e.g. a ``str`` (``"text".encode()`` makes it bytes; a bytearray can be wiped after use).
    """
    if passphrase is not None and not isinstance(passphrase, bytes | bytearray):
        raise TypeError(
            f"a passphrase is bytes or bytearray, not {type(passphrase).__name__}: e.g. 'text'.encode() "
            "(a bytearray can be wiped after use)"
        )


def normalize_passphrase(passphrase: bytes | bytearray) -> bytes:
    """The NFC normalization of a UTF-8 passphrase; non-UTF-8 bytes are returned as is.

    Raises:
        TypeError: ``passphrase`` is not bytes or bytearray (:func:`check_passphrase_type`).
    """
    check_passphrase_type(passphrase)
    try:
        text = passphrase.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(passphrase)
    return unicodedata.normalize("NFC", text).encode("utf-8")


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def encode_private_key(
    key: Ed25519PrivateKey,
    passphrase: bytes | bytearray | None,
    *,
    iterations: int | None = None,
    salt: bytes | None = None,
    iv: bytes | None = None,
    der: bool = False,
) -> bytes:
    """PKCS#8 of ``key``: encrypted as described above, or plain if ``passphrase`` is None.

    Args:
        key: the private key.
        passphrase: NFC-normalized before use; None writes an unencrypted ``PRIVATE KEY``.
        iterations: PBKDF2 iteration count (default: :data:`KDF_ITERATIONS` as it is at call time; at least 1,000).
        salt: 16 bytes of PBKDF2 salt; random if None (fixed values are for test vectors only).
        iv: 16 bytes of AES-CBC IV; random if None (fixed values are for test vectors only).
        der: return DER instead of PEM.

    Raises:
        KeyStoreError: ``passphrase`` is empty (``b""``).
        KeyFormatError: iterations, salt or IV out of bounds.
        TypeError: ``passphrase`` is not bytes, bytearray or None (a ``str``: ``.encode()`` it).
    """
    check_passphrase_type(passphrase)
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if passphrase is None:
        label, data = b"PRIVATE KEY", plain
    else:
        if not passphrase:
            raise KeyStoreError("an empty passphrase is not allowed; use no encryption explicitly instead")
        iterations = KDF_ITERATIONS if iterations is None else iterations
        Pbkdf2Params(iterations).check()
        salt = os.urandom(16) if salt is None else salt
        iv = os.urandom(16) if iv is None else iv
        if len(salt) != 16 or len(iv) != 16:
            raise KeyFormatError("PKCS#8 salt and IV must be 16 bytes each")
        kdf = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations)
        padder = padding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(kdf.derive(normalize_passphrase(passphrase))), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
        count = iterations.to_bytes(iterations.bit_length() // 8 + 1, "big")
        pbkdf2 = _seq(
            _OID_PBKDF2,
            _seq(_der(0x04, salt), _der(0x02, count), _seq(_OID_HMAC_SHA256, _NULL)),
        )
        algorithm = _seq(_OID_PBES2, _seq(pbkdf2, _seq(_OID_AES256_CBC, _der(0x04, iv))))
        label, data = _ENCRYPTED_LABEL, _seq(algorithm, _der(0x04, ciphertext))
    if der:
        return data
    return pem_armor(label, data)


def pem_armor(label: bytes, der: bytes) -> bytes:
    """RFC 7468 PEM text: ``-----BEGIN <label>-----``, base64 in 64-character lines, ``-----END <label>-----``."""
    body = base64.b64encode(der)
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN " + label + b"-----\n" + lines + b"\n-----END " + label + b"-----\n"


# --- a minimal DER reader, enough to describe an EncryptedPrivateKeyInfo ---------------------


def _tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    """Read one DER element at ``pos``: (tag, content, position after it)."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or pos + count > len(data):
            raise ValueError("bad DER length")
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + size > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos : pos + size], pos + size


def _items(content: bytes) -> list[tuple[int, bytes]]:
    """The elements of a constructed value's content."""
    items, pos = [], 0
    while pos < len(content):
        tag, value, pos = _tlv(content, pos)
        items.append((tag, value))
    return items


def _int(item: tuple[int, bytes]) -> int:
    tag, value = item
    if tag != 0x02 or not value:
        raise ValueError("expected INTEGER")
    return int.from_bytes(value, "big", signed=True)


@dataclass(frozen=True)
class Pbes2Info:
    """How an ``ENCRYPTED PRIVATE KEY`` is protected (RFC 8018 section 6.2 / RFC 7914 section 7).

    Attributes:
        kdf: the KDF parameters, if the KDF is PBKDF2-HMAC-SHA256 or scrypt; None for other PRFs.
        description: e.g. ``PBES2 / PBKDF2-HMAC-SHA256 600000 iterations / aes-256-cbc``.
    """

    kdf: KdfParams | None
    description: str


def _unwrap(data: bytes) -> bytes:
    """DER from PEM or DER input (first PEM block only)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        lines = data.strip().splitlines()
        body = b"".join(line.strip() for line in lines if not line.startswith(b"-----"))
        return base64.b64decode(body, validate=True)
    return data


def pbes2_info(data: bytes) -> Pbes2Info:
    """Describe the encryption of an encrypted PKCS#8 key (PEM or DER) without decrypting it.

    Raises:
        KeyFormatError: not an EncryptedPrivateKeyInfo with PBES2, or the KDF cost is out
            of the reader's bounds (see :mod:`.kdf`).
    """
    try:
        der = _unwrap(data)
        tag, outer, end = _tlv(der, 0)
        top = _items(outer)
        if tag != 0x30 or end != len(der) or len(top) != 2 or top[0][0] != 0x30 or top[1][0] != 0x04:
            raise ValueError("not an EncryptedPrivateKeyInfo")
        algorithm = _items(top[0][1])
        if len(algorithm) != 2 or bytes((0x06, len(algorithm[0][1]))) + algorithm[0][1] != _OID_PBES2:
            raise KeyFormatError("this encrypted private key does not use PBES2 (an old PBES1 scheme?)")
        kdf_item, enc_item = _items(algorithm[1][1])
        kdf_oid, kdf_params = _items(kdf_item[1])
        enc_oid = _items(enc_item[1])[0]
        cipher = _OID_NAMES.get(enc_oid[1], "unknown cipher")
        params = _items(kdf_params[1])
        kdf_der = bytes((0x06, len(kdf_oid[1]))) + kdf_oid[1]
        kdf: KdfParams | None
        if kdf_der == _OID_PBKDF2:
            iterations = _int(params[1])
            prf = "hmacWithSHA1"
            for item in params[2:]:
                if item[0] == 0x30:
                    prf = _OID_NAMES.get(_items(item[1])[0][1], "unknown PRF")
            if not 1 <= iterations <= 10_000_000:
                raise KeyFormatError(f"PBKDF2 iteration count {iterations} is out of bounds (1 to 10,000,000)")
            kdf = Pbkdf2Params(iterations) if prf == "hmacWithSHA256" else None
            text = f"PBKDF2-{prf.removeprefix('hmacWith')} {iterations} iterations"
            if prf == "hmacWithSHA256":
                text = f"PBKDF2-HMAC-SHA256 {iterations} iterations"
        elif kdf_der == _OID_SCRYPT:
            n, r, p = _int(params[1]), _int(params[2]), _int(params[3])
            if n < 2 or n & (n - 1):
                raise KeyFormatError("scrypt N is not a power of two")
            scrypt = ScryptParams(n.bit_length() - 1, r, p)
            if scrypt.memory > 1 << 30 or not (1 <= r <= 32 and 1 <= p <= 16):
                raise KeyFormatError("scrypt parameters out of bounds (at most 1 GiB, r <= 32, p <= 16)")
            kdf, text = scrypt, scrypt.describe()
        else:
            raise KeyFormatError("this encrypted private key uses an unknown PBES2 key derivation")
    except (ValueError, IndexError, TypeError) as exc:
        if isinstance(exc, KeyFormatError):
            raise
        raise KeyFormatError(
            "not a valid encrypted PKCS#8 private key (EncryptedPrivateKeyInfo; truncated or damaged?)"
        ) from exc
    return Pbes2Info(kdf, f"PBES2 / {text} / {cipher}")


def is_encrypted(data: bytes) -> bool:
    """Whether ``data`` is an encrypted PKCS#8 key: ``ENCRYPTED PRIVATE KEY`` PEM, or DER whose
    first element is an AlgorithmIdentifier (EncryptedPrivateKeyInfo) rather than a version INTEGER.
    """
    if data.lstrip().startswith(b"-----BEGIN"):
        return b"-----BEGIN " + _ENCRYPTED_LABEL + b"-----" in data
    try:
        _, outer, _ = _tlv(data, 0)
        return _tlv(outer, 0)[0] == 0x30
    except ValueError:
        return False


def decode_private_key(pem: bytes, passphrase: bytes | bytearray | None, *, what: str = "the key") -> Ed25519PrivateKey:
    """Load an Ed25519 private key from PKCS#8 (PEM or DER), decrypting it if it is encrypted.

    A passphrase given for an unencrypted key is ignored.

    Args:
        pem: the PEM document, or DER bytes.
        passphrase: the passphrase (NFC-normalized before use), or None.
        what: how to name the key in error messages, e.g. ``"key 'default'"``.

    Raises:
        KeyStoreError: the key is encrypted and ``passphrase`` is None.
        WrongPassphraseError: the passphrase does not decrypt the key.
        KeyFormatError: the data is not a PKCS#8 Ed25519 private key, or its
            encryption asks for an out-of-bounds cost.
        TypeError: ``pem`` is not bytes, or ``passphrase`` not bytes, bytearray or None (a ``str``:
            ``.encode()`` it).
    """
    check_passphrase_type(passphrase)
    if not isinstance(pem, bytes | bytearray):
        raise TypeError(f"the key is bytes (e.g. Path(...).read_bytes()), not {type(pem).__name__}")
    password: bytes | None = None
    der = not pem.lstrip().startswith(b"-----BEGIN")
    if is_encrypted(pem):
        if passphrase is None:
            raise KeyStoreError(f"{what} is encrypted; a passphrase is needed")
        pbes2_info(pem)  # refuses absurd KDF costs before any work is done
        password = normalize_passphrase(bytes(passphrase))
    loader = serialization.load_der_private_key if der else serialization.load_pem_private_key
    try:
        key = loader(pem, password)
    except ValueError as exc:
        if password is not None:
            raise WrongPassphraseError(f"wrong passphrase for {what} (or the encrypted key is damaged)") from exc
        raise KeyFormatError(f"{what} is not a valid PKCS#8 {'DER' if der else 'PEM'} private key") from exc
    except (TypeError, UnsupportedAlgorithm, InternalError) as exc:  # InternalError: e.g. Ed448 with 32 bytes
        raise KeyFormatError(f"{what} is not a supported PKCS#8 private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{what} is not an Ed25519 key")
    return key


__all__ = [
    "KDF_ITERATIONS",
    "Pbes2Info",
    "decode_private_key",
    "encode_private_key",
    "is_encrypted",
    "normalize_passphrase",
    "pbes2_info",
    "pem_armor",
]
