"""Encrypted key backups, version 1: one envelope, two encodings (JSON and binary).

The normative byte-by-byte specification is docs/formats.md ("JSON backup"
and "Binary backup"); this module is its reference implementation. In short:

* plaintext: the 32-byte RFC 8032 seed;
* key: 32 bytes from scrypt (default N=2^17, r=8, p=1) or PBKDF2-HMAC-SHA256
  (default 600,000 iterations) over the NFC-normalized UTF-8 passphrase and a
  16-byte random salt (:mod:`.kdf`);
* cipher: AES-256-GCM with a 12-byte random nonce and a 16-byte tag;
* associated data: the **binary header**: magic ``DFKB``, version, KDF id and
  parameters, salt, cipher id, nonce, keyid, created, label, client_id and the
  ciphertext length. The binary encoding is that header followed by the
  ciphertext; the JSON encoding carries the same fields as JSON members, and a
  reader rebuilds the header from them. Changing any header field, in either
  encoding, makes decryption fail.

KDFs and AES-GCM come from ``cryptography``; only the container is ours.
"""

from __future__ import annotations

import json
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import KeyFormatError
from ..jwk import KEYID_RE, b64url_decode, b64url_encode, jwk_thumbprint
from .errors import KeyStoreError, WrongPassphraseError
from .generate import self_test
from .kdf import MAX_SALT, MIN_SALT, SALT_SIZE, SCRYPT_DEFAULT, KdfParams, Pbkdf2Params, ScryptParams, derive_key
from .pkcs8 import normalize_passphrase
from .secret import wipe

FORMAT_NAME = "datafold-key-backup"
"""The JSON ``format`` member."""
VERSION = 1
MAGIC = b"DFKB"
"""The first 4 bytes of a binary backup (0x44 0x46 0x4B 0x42)."""
KDF_SCRYPT, KDF_PBKDF2 = 0x01, 0x02
CIPHER_AES_256_GCM = 0x01
NONCE_SIZE, TAG_SIZE, SEED_SIZE = 12, 16, 32
CIPHERTEXT_SIZE = SEED_SIZE + TAG_SIZE
MAX_LABEL_BYTES = 1024
MAX_CLIENT_ID_BYTES = 255
_MAX_CREATED = 2**63 - 1


@dataclass(frozen=True)
class BackupInfo:
    """The non-secret facts a backup carries in clear (and authenticates).

    Attributes:
        keyid: the RFC 7638 thumbprint of the key's public key (43 characters).
        label: free text, at most 1024 bytes of UTF-8.
        created: the key's creation time, seconds since the Unix epoch (0 to 2^63-1).
        client_id: the client id, at most 255 bytes of UTF-8, or None.
    """

    keyid: str
    label: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    client_id: str | None = None

    def check(self) -> BackupInfo:
        """Return self if every field is in range.

        Raises:
            KeyFormatError: a field is malformed or too long.
        """
        if not isinstance(self.keyid, str) or not KEYID_RE.fullmatch(self.keyid):
            raise KeyFormatError("backup keyid is not 43 characters of base64url")
        if b64url_encode(b64url_decode(self.keyid)) != self.keyid:  # the last character's 2 spare bits must be 0
            raise KeyFormatError("backup keyid is not canonical base64url")
        if type(self.created) is not int or not 0 <= self.created <= _MAX_CREATED:
            raise KeyFormatError("backup creation time is not a non-negative integer")
        if not isinstance(self.label, str) or len(_utf8(self.label, "label")) > MAX_LABEL_BYTES:
            raise KeyFormatError(f"backup label is not a string of at most {MAX_LABEL_BYTES} UTF-8 bytes")
        if self.client_id is not None and (
            not isinstance(self.client_id, str)
            or not 1 <= len(_utf8(self.client_id, "client_id")) <= MAX_CLIENT_ID_BYTES
        ):
            raise KeyFormatError(f"backup client_id is not a string of 1 to {MAX_CLIENT_ID_BYTES} UTF-8 bytes")
        return self


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise KeyFormatError(f"backup {what} is not valid Unicode") from exc


@dataclass(frozen=True)
class Envelope:
    """An encrypted backup, independent of its encoding.

    Attributes:
        kdf: the KDF parameters.
        salt: the KDF salt (16 to 64 bytes; 16 when written here).
        nonce: the 12-byte AES-GCM nonce.
        info: the authenticated clear metadata.
        ciphertext: AES-256-GCM ciphertext of the seed followed by the 16-byte tag (48 bytes).
    """

    kdf: KdfParams
    salt: bytes
    nonce: bytes
    info: BackupInfo
    ciphertext: bytes

    def check(self) -> Envelope:
        """Return self if all fields are within the format's bounds.

        Raises:
            KeyFormatError: a field is out of bounds.
        """
        self.kdf.check()
        self.info.check()
        if not MIN_SALT <= len(self.salt) <= MAX_SALT:
            raise KeyFormatError("backup salt must be 16 to 64 bytes")
        if len(self.nonce) != NONCE_SIZE:
            raise KeyFormatError("backup nonce must be 12 bytes")
        if len(self.ciphertext) != CIPHERTEXT_SIZE:
            raise KeyFormatError(f"backup ciphertext must be {CIPHERTEXT_SIZE} bytes (32-byte seed + 16-byte tag)")
        return self

    def header(self) -> bytes:
        """The binary header: the AES-GCM associated data of both encodings (docs/formats.md)."""
        if isinstance(self.kdf, ScryptParams):
            kdf = struct.pack(">BBII", KDF_SCRYPT, self.kdf.log2_n, self.kdf.r, self.kdf.p)
        else:
            kdf = struct.pack(">BI", KDF_PBKDF2, self.kdf.iterations)
        label = self.info.label.encode("utf-8")
        client_id = (self.info.client_id or "").encode("utf-8")
        return b"".join(
            (
                MAGIC,
                bytes((VERSION,)),
                kdf,
                bytes((len(self.salt),)),
                self.salt,
                bytes((CIPHER_AES_256_GCM, len(self.nonce))),
                self.nonce,
                b64url_decode(self.info.keyid),
                struct.pack(">Q", self.info.created),
                struct.pack(">H", len(label)),
                label,
                struct.pack(">H", len(client_id)),
                client_id,
                struct.pack(">H", len(self.ciphertext)),
            )
        )

    def to_binary(self) -> bytes:
        """The binary encoding: header || ciphertext."""
        return self.header() + self.ciphertext

    def to_dict(self) -> dict[str, Any]:
        """The JSON encoding as a dict (member order as written)."""
        kdf: dict[str, Any]
        if isinstance(self.kdf, ScryptParams):
            kdf = {"name": "scrypt", "n": self.kdf.n, "r": self.kdf.r, "p": self.kdf.p}
        else:
            kdf = {"name": "pbkdf2-sha256", "iterations": self.kdf.iterations}
        kdf["salt"] = b64url_encode(self.salt)
        return {
            "format": FORMAT_NAME,
            "version": VERSION,
            "kdf": kdf,
            "cipher": {"name": "aes-256-gcm", "nonce": b64url_encode(self.nonce)},
            "key": {
                "keyid": self.info.keyid,
                "label": self.info.label,
                "created": self.info.created,
                "client_id": self.info.client_id,
            },
            "ciphertext": b64url_encode(self.ciphertext),
        }

    def to_json(self) -> bytes:
        """The JSON encoding: UTF-8, two-space indent, ASCII-only (``\\u`` escapes), final newline."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode("ascii")

    @classmethod
    def from_binary(cls, data: bytes) -> Envelope:
        """Parse a binary backup.

        Raises:
            KeyFormatError: not a binary backup, unsupported version, truncated, trailing bytes or out of bounds.
        """
        if not data.startswith(MAGIC):
            raise KeyFormatError("not a DataFold binary backup (no DFKB magic)")
        reader = _Reader(data, len(MAGIC))
        try:
            version = reader.u8()
            if version != VERSION:
                raise KeyFormatError(f"unsupported binary backup version {version} (this reader knows {VERSION})")
            kdf_id = reader.u8()
            kdf: KdfParams
            if kdf_id == KDF_SCRYPT:
                kdf = ScryptParams(reader.u8(), reader.u32(), reader.u32())
            elif kdf_id == KDF_PBKDF2:
                kdf = Pbkdf2Params(reader.u32())
            else:
                raise KeyFormatError(f"unknown KDF id {kdf_id} in binary backup")
            salt = reader.take(reader.u8())
            cipher_id = reader.u8()
            if cipher_id != CIPHER_AES_256_GCM:
                raise KeyFormatError(f"unknown cipher id {cipher_id} in binary backup")
            nonce = reader.take(reader.u8())
            keyid = b64url_encode(reader.take(32))
            created = reader.u64()
            label = reader.take(reader.u16()).decode("utf-8")
            client_id = reader.take(reader.u16()).decode("utf-8") or None
            ciphertext = reader.take(reader.u16())
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise KeyFormatError("the binary backup is truncated or malformed") from exc
        if reader.pos != len(data):
            raise KeyFormatError("the binary backup has trailing bytes after the ciphertext")
        return cls(kdf, salt, nonce, BackupInfo(keyid, label, created, client_id), ciphertext).check()

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        """Parse a JSON backup strictly: exact members, exact types, canonical base64url.

        Raises:
            KeyFormatError: not a JSON backup, unsupported version, or any deviation.
        """
        try:
            doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except KeyFormatError:
            raise
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
            raise KeyFormatError("not a valid JSON document (truncated or damaged?)") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise KeyFormatError(f'not a DataFold JSON backup (no "format": "{FORMAT_NAME}")')
        if doc.get("version") != VERSION or type(doc.get("version")) is not int:
            raise KeyFormatError(
                f"unsupported JSON backup version {doc.get('version')!r} (this reader knows {VERSION})"
            )
        _members(doc, {"format", "version", "kdf", "cipher", "key", "ciphertext"}, "the backup")
        kdf_doc, cipher_doc, key_doc = doc["kdf"], doc["cipher"], doc["key"]
        for name, value in (("kdf", kdf_doc), ("cipher", cipher_doc), ("key", key_doc)):
            if not isinstance(value, dict):
                raise KeyFormatError(f'backup member "{name}" is not an object')
        kdf: KdfParams
        if kdf_doc.get("name") == "scrypt":
            _members(kdf_doc, {"name", "n", "r", "p", "salt"}, '"kdf"')
            n = _int(kdf_doc["n"], "kdf.n")
            if n < 2 or n & (n - 1):
                raise KeyFormatError("backup scrypt n is not a power of two")
            kdf = ScryptParams(n.bit_length() - 1, _int(kdf_doc["r"], "kdf.r"), _int(kdf_doc["p"], "kdf.p"))
        elif kdf_doc.get("name") == "pbkdf2-sha256":
            _members(kdf_doc, {"name", "iterations", "salt"}, '"kdf"')
            kdf = Pbkdf2Params(_int(kdf_doc["iterations"], "kdf.iterations"))
        else:
            raise KeyFormatError(f"unknown KDF {kdf_doc.get('name')!r} in JSON backup")
        _members(cipher_doc, {"name", "nonce"}, '"cipher"')
        if cipher_doc["name"] != "aes-256-gcm":
            raise KeyFormatError(f"unknown cipher {cipher_doc['name']!r} in JSON backup")
        _members(key_doc, {"keyid", "label", "created", "client_id"}, '"key"')
        info = BackupInfo(key_doc["keyid"], key_doc["label"], key_doc["created"], key_doc["client_id"])
        return cls(
            kdf,
            _b64(kdf_doc["salt"], "kdf.salt"),
            _b64(cipher_doc["nonce"], "cipher.nonce"),
            info,
            _b64(doc["ciphertext"], "ciphertext"),
        ).check()


class _Reader:
    """Big-endian reads from bytes; IndexError past the end."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise IndexError("truncated")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self.take(8))[0])


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise KeyFormatError(f"duplicate member {key!r} in JSON backup")
        doc[key] = value
    return doc


def _no_constants(name: str) -> Any:
    raise KeyFormatError(f"{name} is not allowed in a JSON backup")


def _members(doc: dict[str, Any], expected: set[str], where: str) -> None:
    if set(doc) != expected:
        extra, missing = sorted(set(doc) - expected), sorted(expected - set(doc))
        raise KeyFormatError(f"{where} has unexpected members {extra} or lacks {missing}")


def _int(value: Any, what: str) -> int:
    if type(value) is not int:
        raise KeyFormatError(f"backup {what} is not an integer")
    return value


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise KeyFormatError(f"backup {what} is not a string")
    raw = b64url_decode(value)
    if b64url_encode(raw) != value:
        raise KeyFormatError(f"backup {what} is not canonical unpadded base64url")
    return raw


def seal(
    key: Ed25519PrivateKey,
    passphrase: bytes | bytearray,
    info: BackupInfo | None = None,
    *,
    kdf: KdfParams = SCRYPT_DEFAULT,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> Envelope:
    """Encrypt ``key`` into an :class:`Envelope` (encode it with ``to_json`` or ``to_binary``).

    Args:
        key: the private key.
        passphrase: NFC-normalized before use; must not be empty.
        info: clear metadata; default: the key's keyid, created now, no label or client id.
        kdf: the KDF and its cost (default scrypt N=2^17, r=8, p=1).
        salt: 16 bytes; random if None (fixed values are for test vectors only).
        nonce: 12 bytes; random if None (fixed values are for test vectors only).

    Raises:
        KeyStoreError: empty passphrase, or ``info.keyid`` is not the key's.
        KeyFormatError: parameters out of bounds.
    """
    if not passphrase:
        raise KeyStoreError("an empty passphrase is not allowed for a backup")
    keyid = jwk_thumbprint(key)
    info = info if info is not None else BackupInfo(keyid)
    if info.keyid != keyid:
        raise KeyStoreError("the backup metadata's keyid is not the key's")
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    draft = Envelope(kdf, salt, nonce, info, bytes(CIPHERTEXT_SIZE)).check()
    aes_key = derive_key(kdf, normalize_passphrase(passphrase), salt)
    ciphertext = AESGCM(aes_key).encrypt(nonce, key.private_bytes_raw(), draft.header())
    return Envelope(kdf, salt, nonce, info, ciphertext)


def unseal(envelope: Envelope, passphrase: bytes | bytearray) -> Ed25519PrivateKey:
    """Decrypt an envelope and check the result: keyid equal to the header's, sign/verify self-test.

    The seed is decrypted into a ``bytearray`` and wiped once the key object exists.

    Raises:
        WrongPassphraseError: authentication failed: a wrong passphrase, or a
            backup whose header or ciphertext was changed.
        KeyStoreError: the decrypted key's keyid differs from the header's.
        DatafoldAuthError: reason ``self_test_failed``.
    """
    envelope.check()
    aes_key = derive_key(envelope.kdf, normalize_passphrase(passphrase), envelope.salt)
    body, tag = envelope.ciphertext[:-TAG_SIZE], envelope.ciphertext[-TAG_SIZE:]
    decryptor = Cipher(algorithms.AES(aes_key), modes.GCM(envelope.nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(envelope.header())
    seed = bytearray(len(body) + 15)
    try:
        size = decryptor.update_into(body, seed)
        decryptor.finalize()
        key = Ed25519PrivateKey.from_private_bytes(memoryview(seed)[:size])
    except InvalidTag:
        raise WrongPassphraseError("wrong passphrase, or the backup was modified or damaged") from None
    finally:
        wipe(seed)
    if jwk_thumbprint(key) != envelope.info.keyid:
        raise KeyStoreError("the backup is inconsistent: the decrypted key does not have the keyid in its header")
    self_test(key)
    return key


__all__ = [
    "CIPHERTEXT_SIZE",
    "CIPHER_AES_256_GCM",
    "FORMAT_NAME",
    "KDF_PBKDF2",
    "KDF_SCRYPT",
    "MAGIC",
    "VERSION",
    "BackupInfo",
    "Envelope",
    "seal",
    "unseal",
]
