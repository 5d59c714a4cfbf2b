"""Passphrase-based key derivation settings for backups: scrypt and PBKDF2-HMAC-SHA256.

The KDFs themselves come from ``cryptography`` (:class:`~cryptography.hazmat.primitives.kdf.scrypt.Scrypt`,
RFC 7914; :class:`~cryptography.hazmat.primitives.kdf.pbkdf2.PBKDF2HMAC`, RFC 8018
section 5.2); this module only holds their parameters, their defaults, the
bounds a reader accepts, and one :func:`derive_key` entry point.

Defaults:

* :data:`SCRYPT_DEFAULT`: scrypt N = 2**17, r = 8, p = 1 (128 MiB, about
  0.5 s on a 2020s laptop core). Not available in WebCrypto.
* :data:`PBKDF2_DEFAULT`: PBKDF2-HMAC-SHA256 with 600,000 iterations (the
  OWASP 2023 figure); the choice for backups that a browser must open
  (WebCrypto has PBKDF2).

Bounds (:meth:`ScryptParams.check`, :meth:`Pbkdf2Params.check`) are what a
reader accepts from a file, so that a hostile backup cannot make a reader
spend unbounded memory or time: scrypt 2**10 <= N <= 2**20 with 128·r·N at
most 1 GiB, 1 <= r <= 32, 1 <= p <= 16; PBKDF2 1,000 to 10,000,000 iterations.
Costs below the defaults are accepted (tests use them, and an old backup
must stay readable) but :func:`is_weak` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import KeyFormatError

KEY_SIZE = 32
"""Bytes of key derived for AES-256."""
SALT_SIZE = 16
"""Bytes of random salt written by this package (readers accept 16 to 64)."""
MIN_SALT, MAX_SALT = 16, 64
_MAX_SCRYPT_MEMORY = 1 << 30


@dataclass(frozen=True)
class ScryptParams:
    """scrypt (RFC 7914) parameters.

    Attributes:
        log2_n: the CPU/memory cost N as a power of two (N = 2**log2_n).
        r: block size.
        p: parallelization.
    """

    log2_n: int = 17
    r: int = 8
    p: int = 1
    name: Literal["scrypt"] = "scrypt"

    @property
    def n(self) -> int:
        """N = 2**log2_n."""
        return 1 << self.log2_n

    @property
    def memory(self) -> int:
        """Bytes of memory scrypt needs: 128·r·N."""
        return 128 * self.r * self.n

    def check(self) -> ScryptParams:
        """Return self if within the reader's bounds (module docstring).

        Raises:
            KeyFormatError: a parameter is out of bounds.
        """
        ints = all(type(v) is int for v in (self.log2_n, self.r, self.p))
        if not ints or not (10 <= self.log2_n <= 20 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise KeyFormatError("scrypt parameters out of bounds (2^10 <= N <= 2^20, 1 <= r <= 32, 1 <= p <= 16)")
        if self.memory > _MAX_SCRYPT_MEMORY:
            raise KeyFormatError("scrypt parameters need more than 1 GiB of memory")
        return self

    def describe(self) -> str:
        """E.g. ``scrypt N=2^17 r=8 p=1``."""
        return f"scrypt N=2^{self.log2_n} r={self.r} p={self.p}"


@dataclass(frozen=True)
class Pbkdf2Params:
    """PBKDF2-HMAC-SHA256 (RFC 8018 section 5.2) parameters.

    Attributes:
        iterations: the iteration count c.
    """

    iterations: int = 600_000
    name: Literal["pbkdf2-sha256"] = "pbkdf2-sha256"

    def check(self) -> Pbkdf2Params:
        """Return self if 1,000 <= iterations <= 10,000,000.

        Raises:
            KeyFormatError: out of bounds.
        """
        if type(self.iterations) is not int or not 1_000 <= self.iterations <= 10_000_000:
            raise KeyFormatError("PBKDF2 iteration count out of bounds (1,000 to 10,000,000)")
        return self

    def describe(self) -> str:
        """E.g. ``PBKDF2-HMAC-SHA256 600000 iterations``."""
        return f"PBKDF2-HMAC-SHA256 {self.iterations} iterations"


KdfParams = ScryptParams | Pbkdf2Params
"""Either KDF's parameters."""

SCRYPT_DEFAULT = ScryptParams()
PBKDF2_DEFAULT = Pbkdf2Params()


def is_weak(params: KdfParams) -> bool:
    """Whether ``params`` cost less than this package's default for that KDF."""
    if isinstance(params, ScryptParams):
        return params.log2_n < SCRYPT_DEFAULT.log2_n or params.r < SCRYPT_DEFAULT.r
    return params.iterations < PBKDF2_DEFAULT.iterations


def derive_key(params: KdfParams, passphrase: bytes | bytearray, salt: bytes, length: int = KEY_SIZE) -> bytes:
    """Derive ``length`` bytes from a passphrase with ``cryptography``'s scrypt or PBKDF2.

    Args:
        params: the KDF and its parameters (checked against the bounds).
        passphrase: the passphrase bytes, already NFC-normalized by the caller.
        salt: the salt, 16 to 64 bytes.
        length: output size in bytes.

    Returns:
        The derived key (immutable ``bytes``; see :mod:`.secret` on wiping).

    Raises:
        KeyFormatError: parameters or salt out of bounds.
    """
    params.check()
    if not MIN_SALT <= len(salt) <= MAX_SALT:
        raise KeyFormatError("the KDF salt must be 16 to 64 bytes")
    if isinstance(params, ScryptParams):
        return Scrypt(salt, length, params.n, params.r, params.p).derive(passphrase)
    return PBKDF2HMAC(hashes.SHA256(), length, salt, params.iterations).derive(passphrase)


__all__ = [
    "KEY_SIZE",
    "MAX_SALT",
    "MIN_SALT",
    "PBKDF2_DEFAULT",
    "SALT_SIZE",
    "SCRYPT_DEFAULT",
    "KdfParams",
    "Pbkdf2Params",
    "ScryptParams",
    "derive_key",
    "is_weak",
]
