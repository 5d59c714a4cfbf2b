"""Ed25519 key formats in and out, with format detection that explains a wrong input in words.

Private key formats (:func:`read_private_key`, :func:`export_private_key`):

=====================  ======================================================
``seed-hex``           the 32-byte RFC 8032 seed as 64 hex digits
``seed-base64url``     the seed as 43 characters of unpadded base64url
``pkcs8-pem``          PKCS#8 ``PRIVATE KEY`` / ``ENCRYPTED PRIVATE KEY`` PEM (RFC 5958, RFC 8410)
``pkcs8-der``          the same in DER
``jwk``                a private JWK ``{"kty":"OKP","crv":"Ed25519","x":..,"d":..}`` (RFC 8037)
``openssh``            an ``OPENSSH PRIVATE KEY`` (read only; encrypted ones need ``bcrypt``)
=====================  ======================================================

Public key formats (:func:`read_public_key`, :func:`export_public_key`):

=====================  ======================================================
``spki-pem``           SubjectPublicKeyInfo ``PUBLIC KEY`` PEM (RFC 8410 section 4)
``spki-der``           the same in DER
``jwk``                the public JWK (RFC 8037 section 2)
``openssh``            an ``ssh-ed25519 AAAA... [comment]`` line (RFC 8709)
``raw-hex``            the 32-byte public key as hex
``raw-base64url``      the 32-byte public key as unpadded base64url (the JWK ``x``)
=====================  ======================================================

Detection (:func:`identify`) looks at the bytes, never at a file name, and
explains what it found when it is not what was asked for: "this is a public
key", "this PEM is RSA, not Ed25519", "this is a DataFold encrypted backup".
Two inputs are ambiguous by nature and are read as seeds: 32 raw bytes, and
64 hex digits or 43 base64url characters (a raw *public* key in those forms
would be misread; the keyid that is printed afterwards shows the mistake).
64 bytes are accepted as RFC 8032 ``seed || public key`` (the libsodium and
Go layout) only when the second half is the public key of the first.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.exceptions import InternalError, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import KeyFormatError
from ..jwk import b64url_decode, b64url_encode, check_public_key, public_jwk, public_key_bytes
from .errors import KeyStoreError, WrongPassphraseError
from .pkcs8 import decode_private_key, encode_private_key, is_encrypted, pbes2_info
from .secret import wipe

PrivateFormat = Literal["seed-hex", "seed-base64url", "pkcs8-pem", "pkcs8-der", "jwk"]
PublicFormat = Literal["spki-pem", "spki-der", "jwk", "openssh", "raw-hex", "raw-base64url"]
PRIVATE_FORMATS: tuple[PrivateFormat, ...] = ("seed-hex", "seed-base64url", "pkcs8-pem", "pkcs8-der", "jwk")
PUBLIC_FORMATS: tuple[PublicFormat, ...] = ("spki-pem", "spki-der", "jwk", "openssh", "raw-hex", "raw-base64url")

Kind = Literal["private", "public", "backup", "unknown"]

_HEX_RE = re.compile(rb"^[0-9a-fA-F]+$")
_B64_RE = re.compile(rb"^[A-Za-z0-9+/_-]+={0,2}$")
_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_BINARY_MAGIC = b"DFKB"


@dataclass(frozen=True)
class Identified:
    """What some key data appears to be.

    Attributes:
        kind: ``private``, ``public``, ``backup`` (a DataFold backup: use restore) or ``unknown``.
        format: a short format name (see the module docstring), or ``""``.
        description: a human phrase, e.g. ``"PKCS#8 PEM, encrypted (PBES2 / scrypt N=2^14 r=8 p=1 / aes-256-cbc)"``.
        encrypted: whether a passphrase is needed to read it.
    """

    kind: Kind
    format: str
    description: str
    encrypted: bool = False


@dataclass
class ImportedKey:
    """A private key read by :func:`read_private_key`, and how it was read.

    Attributes:
        private_key: the key (not shown in ``repr``).
        format: the format name.
        description: a human phrase for the format.
        notes: sentences worth telling the user (e.g. how a 64-byte input was read).
    """

    private_key: Ed25519PrivateKey = field(repr=False)
    format: str
    description: str
    notes: list[str] = field(default_factory=list)


def _algorithm_name(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"EC ({key.curve.name})"
    if isinstance(key, dsa.DSAPrivateKey | dsa.DSAPublicKey):
        return "DSA"
    if isinstance(key, ed448.Ed448PrivateKey | ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, x25519.X25519PrivateKey | x25519.X25519PublicKey):
        return "X25519"
    if isinstance(key, x448.X448PrivateKey | x448.X448PublicKey):
        return "X448"
    return type(key).__name__


def _text(data: bytes) -> bytes | None:
    """The stripped data if it is printable ASCII/UTF-8 text, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 0x20 and c not in "\t\r\n" for c in text):
        return None
    return data.strip()


def _pem_label(data: bytes) -> str | None:
    match = _PEM_RE.search(data)
    return match.group(1).decode("ascii") if match else None


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: arrays or objects nested too deep
        return None


def _identify_jwk(doc: dict[str, Any]) -> Identified:
    if doc.get("format") == "datafold-key-backup":
        return Identified(
            "backup", "json", "this is a DataFold encrypted key backup (JSON); restore it with 'keytools restore'"
        )
    kty, crv = doc.get("kty"), doc.get("crv")
    if kty is None:
        return Identified("unknown", "", "a JSON document that is neither a JWK nor a DataFold backup")
    if kty != "OKP" or crv != "Ed25519":
        what = {"RSA": "RSA", "EC": f"EC ({crv})", "oct": "a symmetric key"}.get(str(kty), f"{kty}/{crv}")
        return Identified("unknown", "jwk", f"this JWK is {what}, not Ed25519")
    if "d" in doc:
        return Identified("private", "jwk", "a private JWK (RFC 8037)")
    return Identified("public", "jwk", 'this is a public key (JWK without "d"), not a private key')


def _identify_der(data: bytes) -> Identified:
    try:
        loaded: object = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        loaded = None
    if loaded is not None:
        if isinstance(loaded, Ed25519PublicKey):
            return Identified(
                "public", "spki-der", "this is a public key (SubjectPublicKeyInfo DER), not a private key"
            )
        return Identified("unknown", "spki-der", f"this DER is an {_algorithm_name(loaded)} public key, not Ed25519")
    if is_encrypted(data):
        try:
            info = pbes2_info(data).description
        except KeyFormatError as exc:
            return Identified("unknown", "pkcs8-der", exc.detail)
        return Identified("private", "pkcs8-der", f"PKCS#8 DER, encrypted ({info})", encrypted=True)
    try:
        key = serialization.load_der_private_key(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm, InternalError):  # InternalError: Ed448/X448 of 32 bytes
        return Identified("unknown", "", f"{len(data)} bytes of DER that are not a PKCS#8 or SPKI key")
    if not isinstance(key, Ed25519PrivateKey):
        return Identified("unknown", "pkcs8-der", f"this DER is an {_algorithm_name(key)} private key, not Ed25519")
    return Identified("private", "pkcs8-der", "PKCS#8 DER, unencrypted")


def identify(data: bytes) -> Identified:
    """Say what ``data`` appears to be, without needing a passphrase.

    Never raises for bad input: an unrecognized input is ``kind="unknown"``
    with a description of what it looks like.
    """
    if data.startswith(_BINARY_MAGIC):
        return Identified(
            "backup", "binary", "this is a DataFold encrypted key backup (binary); restore it with 'keytools restore'"
        )
    text = _text(data)
    if text is None:
        if data[:1] == b"\x30":
            found = _identify_der(data)
            # A raw seed (or seed || public key) starts with 0x30 once in 256: no Ed25519 DER key is
            # 32 or 64 bytes long, so what is not a DER key of those sizes is read as raw bytes.
            if found.kind != "unknown" or len(data) not in (32, 64):
                return found
        if len(data) == 32:
            return Identified("private", "seed-raw", "32 raw bytes, read as an Ed25519 seed")
        if len(data) == 64:
            return Identified("private", "seed-raw", "64 raw bytes, read as seed || public key")
        return Identified("unknown", "", f"{len(data)} bytes of binary data in no supported key format")
    if not text:
        return Identified("unknown", "", "empty input")
    label = _pem_label(text)
    if label is not None:
        return _identify_pem(text, label)
    if text.startswith(b"{"):
        doc = _json(text)
        if isinstance(doc, dict):
            return _identify_jwk(doc)
        return Identified("unknown", "", "text starting with '{' that is not a valid JSON object")
    first = text.split(None, 1)[0]
    if first.startswith((b"ssh-", b"ecdsa-sha2-", b"sk-")):
        if first == b"ssh-ed25519":
            return Identified("public", "openssh", "this is a public key (OpenSSH ssh-ed25519 line), not a private key")
        algo = first.decode("ascii", "replace")
        return Identified("unknown", "openssh", f"this is an OpenSSH {algo} public key, not an Ed25519 private key")
    if text.startswith(b"DataFold key paper backup"):
        return Identified(
            "backup", "paper", "this is a DataFold paper backup (BIP39 words); restore it with 'keytools restore'"
        )
    if text.startswith(b"DataFold key Shamir share"):
        return Identified(
            "backup", "shamir", "this is a DataFold Shamir share (SLIP-39); restore it with 'keytools restore'"
        )
    words = text.split()
    if len(words) in (12, 15, 18, 20, 21, 24, 33) and all(w.isalpha() for w in words):
        return Identified("backup", "words", f"{len(words)} words (a BIP39 or SLIP-39 phrase); use 'keytools restore'")
    if _HEX_RE.match(text):
        if len(text) == 64:
            return Identified("private", "seed-hex", "a 32-byte seed in hex")
        if len(text) == 128:
            return Identified("private", "seed-hex", "64 bytes in hex, read as seed || public key")
        return Identified("unknown", "", f"{len(text) / 2:g} bytes of hex; an Ed25519 seed is 32 bytes (64 hex digits)")
    if _B64_RE.match(text):
        raw = _b64_any(text)
        if raw is not None:
            if len(raw) == 32:
                return Identified("private", "seed-base64url", "a 32-byte seed in base64url")
            if len(raw) == 64:
                return Identified("private", "seed-base64url", "64 bytes in base64, read as seed || public key")
            if raw[:1] == b"\x30":
                found = _identify_der(raw)
                return Identified(found.kind, found.format, found.description + " (base64 without PEM lines)")
            return Identified("unknown", "", f"{len(raw)} bytes in base64; an Ed25519 seed is 32 bytes")
    return Identified("unknown", "", "text in no supported key format")


_PEM_FORMATS = {"ENCRYPTED PRIVATE KEY": "pkcs8-pem", "PRIVATE KEY": "pkcs8-pem", "OPENSSH PRIVATE KEY": "openssh",
                "PUBLIC KEY": "spki-pem"}  # fmt: skip


def _identify_pem(text: bytes, label: str) -> Identified:
    if f"-----END {label}-----".encode("ascii") not in text:
        return Identified(
            "unknown",
            _PEM_FORMATS.get(label, "pem"),
            f"this {label} PEM stops before its -----END {label}----- line: the file is truncated",
        )
    if label == "ENCRYPTED PRIVATE KEY":
        try:
            info = pbes2_info(text).description
        except KeyFormatError as exc:
            return Identified("unknown", "pkcs8-pem", exc.detail)
        return Identified("private", "pkcs8-pem", f"PKCS#8 PEM, encrypted ({info})", encrypted=True)
    if label == "PRIVATE KEY":
        try:
            key = serialization.load_pem_private_key(text, None)
        except (ValueError, TypeError, UnsupportedAlgorithm, InternalError):
            return Identified("unknown", "pkcs8-pem", "a PRIVATE KEY PEM whose content is not valid PKCS#8")
        if not isinstance(key, Ed25519PrivateKey):
            return Identified("unknown", "pkcs8-pem", f"this PEM is {_algorithm_name(key)}, not Ed25519")
        return Identified("private", "pkcs8-pem", "PKCS#8 PEM, unencrypted")
    if label == "OPENSSH PRIVATE KEY":
        return _identify_openssh(text)
    if label in ("RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY"):
        return Identified("unknown", "pem", f"this PEM is {label.split()[0]}, not Ed25519")
    if label == "PUBLIC KEY":
        try:
            public = serialization.load_pem_public_key(text)
        except (ValueError, UnsupportedAlgorithm):
            return Identified("unknown", "spki-pem", "a PUBLIC KEY PEM whose content is not valid")
        if not isinstance(public, Ed25519PublicKey):
            return Identified(
                "unknown", "spki-pem", f"this PEM is an {_algorithm_name(public)} public key, not Ed25519"
            )
        return Identified("public", "spki-pem", "this is a public key (SubjectPublicKeyInfo PEM), not a private key")
    if label == "RSA PUBLIC KEY":
        return Identified("unknown", "pem", "this PEM is an RSA public key, not an Ed25519 private key")
    if label == "CERTIFICATE":
        return Identified("unknown", "pem", "this PEM is an X.509 certificate, not a private key")
    return Identified("unknown", "pem", f"a PEM of type {label!r}, which is not a supported key format")


def _identify_openssh(text: bytes) -> Identified:
    try:
        key = serialization.load_ssh_private_key(text, None)
    except TypeError:
        return Identified("private", "openssh", "an OpenSSH private key, encrypted", encrypted=True)
    except (ValueError, UnsupportedAlgorithm):
        return Identified("unknown", "openssh", "an OPENSSH PRIVATE KEY block that cannot be read")
    if not isinstance(key, Ed25519PrivateKey):
        return Identified("unknown", "openssh", f"this OpenSSH key is {_algorithm_name(key)}, not Ed25519")
    return Identified("private", "openssh", "an OpenSSH private key, unencrypted")


def _b64_any(text: bytes) -> bytes | None:
    """Decode standard or url-safe base64, padded or not; None if it is neither."""
    stripped = text.rstrip(b"=")
    padded = stripped + b"=" * (-len(stripped) % 4)
    try:
        if b"-" in text or b"_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _from_seed(raw: bytes | bytearray, what: str) -> tuple[Ed25519PrivateKey, list[str]]:
    """A key from 32 bytes, or from 64 bytes of seed || public key when the halves match."""
    if len(raw) == 32:
        return Ed25519PrivateKey.from_private_bytes(raw), []
    if len(raw) == 64:
        key = Ed25519PrivateKey.from_private_bytes(raw[:32])
        if public_key_bytes(key) != bytes(raw[32:]):
            raise KeyFormatError(
                f"{what}: 64 bytes, but the last 32 are not the public key of the first 32, so this is not an"
                " Ed25519 seed || public key pair (a signature? a hash?)"
            )
        return key, ["a 64-byte seed||public key; using the first 32 bytes as the seed"]
    raise KeyFormatError(f"{what}: {len(raw)} bytes; an Ed25519 seed is 32 bytes")


def _private_jwk(doc: dict[str, Any]) -> Ed25519PrivateKey:
    d = doc.get("d")
    if not isinstance(d, str):
        raise KeyFormatError('the JWK "d" member is not a string')
    seed = bytearray(b64url_decode(d))
    try:
        if len(seed) != 32 or b64url_encode(bytes(seed)) != d:
            raise KeyFormatError('the JWK "d" member is not 32 bytes of canonical unpadded base64url')
        key = Ed25519PrivateKey.from_private_bytes(seed)
    finally:
        wipe(seed)
    if "x" in doc and doc["x"] != b64url_encode(public_key_bytes(key)):
        raise KeyFormatError('the JWK "x" member is not the public key of its "d" member')
    return key


PassphraseArg = bytes | bytearray | None


def read_private_key(data: bytes, passphrase: PassphraseArg = None, *, what: str = "the input") -> ImportedKey:
    """Read an Ed25519 private key in any supported format (see the module docstring).

    Args:
        data: the file content.
        passphrase: for encrypted PKCS#8 or OpenSSH keys (NFC-normalized for PKCS#8).
        what: how to name the input in messages, e.g. a file name.

    Raises:
        KeyFormatError: not a private Ed25519 key; the message says what it is instead.
        KeyStoreError: the key is encrypted and no passphrase was given.
        WrongPassphraseError: the passphrase does not open it.
    """
    found = identify(data)
    if found.kind != "private":
        hint = " (export public keys with 'keytools export')" if found.kind == "public" else ""
        raise KeyFormatError(f"{what}: {found.description}{hint}")
    text = _text(data)
    notes: list[str] = []
    if found.format in ("pkcs8-pem", "pkcs8-der"):
        key = decode_private_key(data if text is None else text, passphrase, what=what)
    elif found.format == "openssh":
        key = _read_openssh(data, passphrase, what)
    elif found.format == "jwk":
        key = _private_jwk(json.loads(data))
    elif found.format == "seed-raw":
        key, notes = _from_seed(data, what)
    elif found.format == "seed-hex" and text is not None:
        raw = bytearray(bytes.fromhex(text.decode("ascii")))
        try:
            key, notes = _from_seed(raw, what)
        finally:
            wipe(raw)
    else:  # seed-base64url, or DER in bare base64
        decoded = _b64_any(text or b"")
        if decoded is None:
            raise KeyFormatError(f"{what}: not valid base64")
        if decoded[:1] == b"\x30" and len(decoded) not in (32, 64):
            return read_private_key(decoded, passphrase, what=what)
        key, notes = _from_seed(decoded, what)
    return ImportedKey(key, found.format, found.description, notes)


MAX_OPENSSH_BCRYPT_ROUNDS = 1000
"""Most bcrypt rounds an encrypted OpenSSH key may ask for (``ssh-keygen -a``; its default is 16).
The count is in the file, so a hostile file could otherwise make an import run for hours."""

_OPENSSH_MAGIC = b"openssh-key-v1\x00"
_OPENSSH_LABEL = b"OPENSSH PRIVATE KEY"
_OPENSSH_PEM = re.compile(
    b"-----BEGIN " + _OPENSSH_LABEL + b"-----(.*?)-----END " + _OPENSSH_LABEL + b"-----", re.DOTALL
)


def _openssh_bcrypt_rounds(data: bytes) -> int | None:
    """The bcrypt rounds an ``OPENSSH PRIVATE KEY`` block asks for, or ``None`` when it asks for none.

    Reads the container as ``cryptography``'s loader does (the first armoured block, lenient
    base64), so that any file the loader would run bcrypt on has its rounds seen here first:
    ``openssh-key-v1\\0``, then the strings ciphername, kdfname and kdfoptions; bcrypt's
    options are the string salt and the uint32 rounds (OpenSSH ``PROTOCOL.key``). Where this
    cannot read the container, the loader refuses it before any key derivation too.
    """
    found = _OPENSSH_PEM.search(data)
    if found is None:
        return None
    try:
        blob = binascii.a2b_base64(found.group(1))
    except (binascii.Error, ValueError):
        return None
    if not blob.startswith(_OPENSSH_MAGIC):
        return None
    pos = len(_OPENSSH_MAGIC)
    fields: list[bytes] = []
    for _ in range(3):  # ciphername, kdfname, kdfoptions
        if pos + 4 > len(blob):
            return None
        size = int.from_bytes(blob[pos : pos + 4], "big")
        pos += 4
        if pos + size > len(blob):
            return None
        fields.append(blob[pos : pos + size])
        pos += size
    kdfname, options = fields[1], fields[2]
    if kdfname != b"bcrypt" or len(options) < 4:
        return None
    salt_size = int.from_bytes(options[:4], "big")
    if 4 + salt_size + 4 != len(options):
        return None
    return int.from_bytes(options[4 + salt_size :], "big")


def _read_openssh(data: bytes, passphrase: PassphraseArg, what: str) -> Ed25519PrivateKey:
    rounds = _openssh_bcrypt_rounds(data) if passphrase is not None else None
    if rounds is not None and rounds > MAX_OPENSSH_BCRYPT_ROUNDS:
        raise KeyFormatError(
            f"{what} asks for {rounds} bcrypt rounds, more than the {MAX_OPENSSH_BCRYPT_ROUNDS} accepted "
            "(re-encrypt it with 'ssh-keygen -p -a 100', or export it unencrypted)"
        )
    try:
        key = serialization.load_ssh_private_key(data, bytes(passphrase) if passphrase is not None else None)
    except TypeError as exc:
        raise KeyStoreError(f"{what} is an encrypted OpenSSH key; a passphrase is needed") from exc
    except UnsupportedAlgorithm as exc:
        raise KeyFormatError(f"{what}: encrypted OpenSSH keys need the 'bcrypt' package") from exc
    except ValueError as exc:
        if passphrase is not None:
            raise WrongPassphraseError(f"wrong passphrase for {what} (or the OpenSSH key is damaged)") from exc
        raise KeyFormatError(f"{what} is not a readable OpenSSH private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError(f"{what} is an OpenSSH {_algorithm_name(key)} key, not Ed25519")
    return key


def read_public_key(data: bytes, *, what: str = "the input") -> tuple[Ed25519PublicKey, str]:
    """Read an Ed25519 public key (SPKI PEM/DER, JWK, OpenSSH line, raw hex or base64url).

    32 bytes given as hex or base64url are read as a *public* key here. The key
    is checked with :func:`datafold_auth.jwk.check_public_key` (canonical, not
    of small order).

    Returns:
        ``(public_key, description)``.

    Raises:
        KeyFormatError: not an Ed25519 public key; the message says what it is instead.
    """
    text = _text(data)
    if text is not None and text.startswith(b"ssh-ed25519 "):
        try:
            loaded: object = serialization.load_ssh_public_key(text)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(f"{what}: an ssh-ed25519 line that cannot be read") from exc
        description = "OpenSSH ssh-ed25519 line"
    elif text is not None and _pem_label(text) == "PUBLIC KEY":
        try:
            loaded = serialization.load_pem_public_key(text)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError(f"{what}: a PUBLIC KEY PEM whose content is not valid") from exc
        description = "SubjectPublicKeyInfo PEM"
    elif text is not None and text.startswith(b"{"):
        doc = _json(text)
        if not isinstance(doc, dict) or doc.get("kty") != "OKP" or doc.get("crv") != "Ed25519":
            raise KeyFormatError(f"{what}: {identify(data).description}")
        x = doc.get("x")
        if not isinstance(x, str):
            raise KeyFormatError(f'{what}: the JWK has no "x" member')
        loaded, description = check_public_key(b64url_decode(x)), "JWK"
    elif text is not None and _HEX_RE.match(text) and len(text) == 64:
        loaded, description = check_public_key(bytes.fromhex(text.decode("ascii"))), "raw hex"
    elif text is not None and _B64_RE.match(text) and len(_b64_any(text) or b"") == 32:
        loaded, description = check_public_key(_b64_any(text) or b""), "raw base64url"
    elif text is None and len(data) == 32:  # before DER: a raw public key starts with 0x30 once in 256
        loaded, description = check_public_key(data), "32 raw bytes"
    elif text is None and data[:1] == b"\x30":
        try:
            loaded = serialization.load_der_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyFormatError(f"{what}: {identify(data).description}") from None
        description = "SubjectPublicKeyInfo DER"
    else:
        found = identify(data)
        if found.kind == "private":
            raise KeyFormatError(f"{what} is a private key ({found.description}); give the public key instead")
        raise KeyFormatError(f"{what}: {found.description}")
    if not isinstance(loaded, Ed25519PublicKey):
        raise KeyFormatError(f"{what} is an {_algorithm_name(loaded)} public key, not Ed25519")
    check_public_key(public_key_bytes(loaded))
    return loaded, description


def export_public_key(key: Ed25519PublicKey | Ed25519PrivateKey, fmt: PublicFormat, *, comment: str = "") -> bytes:
    """The public key in ``fmt`` (see the module docstring); text formats end with a newline.

    Args:
        key: a public key, or a private key whose public key is exported.
        fmt: one of :data:`PUBLIC_FORMATS`.
        comment: for ``openssh`` only, appended after a space (no newlines allowed).

    Raises:
        ValueError: unknown format, or a comment with a line break.
    """
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public_key_bytes(public)
    if fmt == "spki-pem":
        return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if fmt == "spki-der":
        return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if fmt == "jwk":
        return (json.dumps(public_jwk(raw)) + "\n").encode("ascii")
    if fmt == "openssh":
        if "\n" in comment or "\r" in comment:
            raise ValueError("an OpenSSH comment cannot contain a line break")
        line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        return line + (b" " + comment.encode("utf-8") if comment else b"") + b"\n"
    if fmt == "raw-hex":
        return raw.hex().encode("ascii") + b"\n"
    if fmt == "raw-base64url":
        return b64url_encode(raw).encode("ascii") + b"\n"
    raise ValueError(f"unknown public key format {fmt!r}")


def export_private_key(key: Ed25519PrivateKey, fmt: PrivateFormat, *, passphrase: PassphraseArg = None) -> bytes:
    """The private key in ``fmt`` (see the module docstring); text formats end with a newline.

    Only ``pkcs8-pem`` and ``pkcs8-der`` can be encrypted (PBES2, see :mod:`.pkcs8`);
    for the other formats ``passphrase`` must be None. The result holds the
    secret: write it only to a private file (:func:`.fsutil.write_private_file`).

    Raises:
        ValueError: unknown format, or a passphrase for a format that cannot be encrypted.
    """
    if fmt in ("pkcs8-pem", "pkcs8-der"):
        return encode_private_key(key, passphrase, der=fmt == "pkcs8-der")
    if passphrase is not None:
        raise ValueError(f"the {fmt} format cannot be encrypted; use pkcs8-pem or a backup")
    seed = key.private_bytes_raw()
    if fmt == "seed-hex":
        return seed.hex().encode("ascii") + b"\n"
    if fmt == "seed-base64url":
        return b64url_encode(seed).encode("ascii") + b"\n"
    if fmt == "jwk":
        jwk = {**public_jwk(key), "d": b64url_encode(seed)}
        return (json.dumps(jwk) + "\n").encode("ascii")
    raise ValueError(f"unknown private key format {fmt!r}")


__all__ = [
    "PRIVATE_FORMATS",
    "PUBLIC_FORMATS",
    "Identified",
    "ImportedKey",
    "PrivateFormat",
    "PublicFormat",
    "export_private_key",
    "export_public_key",
    "identify",
    "read_private_key",
    "read_public_key",
]
