"""Ed25519 public keys as raw bytes and JWK, and key ids as JWK thumbprints.

Rules:

* A public key is the 32-byte encoding of RFC 8032 section 5.1.2.
* A JWK for it is ``{"kty": "OKP", "crv": "Ed25519", "x": <base64url>}``
  (RFC 8037 section 2).
* The ``keyid`` of a key is its RFC 7638 JWK thumbprint with SHA-256,
  base64url without padding (RFC 7638 section 3, RFC 8037 appendix A.3):
  43 ASCII characters.
* Public keys offered to a server are checked (:func:`check_public_key`):
  exactly 32 bytes, canonical (y < p, RFC 8032 section 5.1.3) and not a point
  of small order (libsodium's blocklist), since such a key could "verify"
  signatures that anyone can forge.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .errors import KeyFormatError, Reason

PUBLIC_KEY_SIZE = 32
"""Size of an Ed25519 public key, and of a seed, in bytes (RFC 8032)."""

_P = 2**255 - 19
# y coordinates (sign bit cleared) of the points of small order: 0 (order 4),
# 1 (order 1), p-1 (order 2) and the two y values of the order-8 points.
_SMALL_ORDER_Y = frozenset(
    int.from_bytes(bytes.fromhex(h), "little")
    for h in (
        "00" * 32,
        "01" + "00" * 31,
        "ec" + "ff" * 30 + "7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    )
)
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")
KEYID_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
"""Shape of a keyid: an unpadded base64url SHA-256 digest (43 characters)."""


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded (or padded) base64url; raise :class:`KeyFormatError` on bad input."""
    if not isinstance(text, str) or not _B64URL_RE.match(text.rstrip("=")):
        raise KeyFormatError("not base64url text")
    stripped = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError("not base64url text") from exc


def public_key_bytes(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """The 32-byte RFC 8032 encoding of a public key (or of a private key's public key)."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_public_key(raw: bytes) -> Ed25519PublicKey:
    """Validate 32 raw bytes as an acceptable Ed25519 public key and load it.

    Raises:
        KeyFormatError: reason ``invalid_key`` if the length is not 32 bytes, the
            encoding is not canonical (y >= p) or the point has small order.
    """
    if not isinstance(raw, bytes | bytearray) or len(raw) != PUBLIC_KEY_SIZE:
        raise KeyFormatError("an Ed25519 public key is exactly 32 bytes", Reason.INVALID_KEY)
    y = int.from_bytes(raw, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise KeyFormatError("public key encoding is not canonical (y >= p)", Reason.INVALID_KEY)
    if y in _SMALL_ORDER_Y:
        raise KeyFormatError("public key is a point of small order", Reason.INVALID_KEY)
    try:
        return Ed25519PublicKey.from_public_bytes(bytes(raw))
    except ValueError as exc:
        raise KeyFormatError("not an Ed25519 public key", Reason.INVALID_KEY) from exc


def public_jwk(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> dict[str, str]:
    """The public JWK of a key (RFC 8037 section 2): ``{"kty", "crv", "x"}``."""
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def public_key_from_jwk(jwk: Any) -> Ed25519PublicKey:
    """Load and check the public key of an Ed25519 JWK (RFC 8037 section 2).

    Members other than ``kty``, ``crv``, ``x`` are ignored; a ``d`` member is
    refused, so that a private key is never accepted where a public one is meant.

    Raises:
        KeyFormatError: reason ``invalid_key`` with the rule broken.
    """
    if not isinstance(jwk, dict):
        raise KeyFormatError("a JWK is a JSON object", Reason.INVALID_KEY)
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise KeyFormatError('the JWK must have "kty": "OKP" and "crv": "Ed25519"', Reason.INVALID_KEY)
    if "d" in jwk:
        raise KeyFormatError("this JWK holds a private key; send only the public key", Reason.INVALID_KEY)
    x = jwk.get("x")
    if not isinstance(x, str):
        raise KeyFormatError('the JWK has no "x" member', Reason.INVALID_KEY)
    try:
        raw = b64url_decode(x)
    except KeyFormatError as exc:
        raise KeyFormatError('the JWK "x" member is not base64url', Reason.INVALID_KEY) from exc
    if b64url_encode(raw) != x:
        raise KeyFormatError('the JWK "x" member is not canonical unpadded base64url', Reason.INVALID_KEY)
    return check_public_key(raw)


def jwk_thumbprint(key: Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    """The RFC 7638 SHA-256 JWK thumbprint of an Ed25519 public key: the DataFold ``keyid``.

    The input to the hash is the JSON object with the required members in
    lexicographic order and no white space (RFC 7638 section 3.2, RFC 8037
    appendix A.3): ``{"crv":"Ed25519","kty":"OKP","x":"<base64url>"}``.

    Args:
        key: a public key, a private key (its public key is used) or 32 raw bytes.

    Returns:
        43 characters of unpadded base64url.
    """
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + b64url_encode(raw) + '"}'
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode("ascii"))
    return b64url_encode(digest.finalize())


def key_fingerprint(key: str | Ed25519PublicKey | Ed25519PrivateKey | bytes) -> str:
    """A fingerprint of a key for people to compare out of band (read aloud, or side by side on two screens).

    The first 20 bytes (160 bits) of the key's RFC 7638 SHA-256 thumbprint, in
    RFC 4648 base32 (``A-Z``, ``2-7``), as 8 groups of 4 characters separated by
    spaces, e.g. ``"JBSW Y3DP EHPK 3PXP ..."``. It is derived from the keyid
    alone, so any client computes it from the keyid (docs/protocol.md section 7.6).

    Args:
        key: a keyid (43 characters of base64url), a public or private key, or 32 raw public key bytes.

    Raises:
        KeyFormatError: ``key`` is a string that is not a keyid.
    """
    keyid = key if isinstance(key, str) else jwk_thumbprint(key)
    if not KEYID_RE.fullmatch(keyid):
        raise KeyFormatError("not a keyid (43 characters of base64url)")
    text = base64.b32encode(b64url_decode(keyid)[:20]).decode("ascii")
    return " ".join(text[i : i + 4] for i in range(0, 32, 4))


__all__ = [
    "KEYID_RE",
    "PUBLIC_KEY_SIZE",
    "b64url_decode",
    "b64url_encode",
    "check_public_key",
    "jwk_thumbprint",
    "key_fingerprint",
    "public_jwk",
    "public_key_bytes",
    "public_key_from_jwk",
]
