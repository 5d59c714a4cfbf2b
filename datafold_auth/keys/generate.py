"""Generation and self-test of Ed25519 private keys."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import DatafoldAuthError, Reason


def self_test(key: Ed25519PrivateKey) -> None:
    """Sign 32 random bytes with ``key`` and verify with its derived public key.

    Raises:
        DatafoldAuthError: reason ``self_test_failed`` if the signature does not verify.
    """
    message = os.urandom(32)
    try:
        key.public_key().verify(key.sign(message), message)
    except InvalidSignature as exc:
        raise DatafoldAuthError(reason=Reason.SELF_TEST_FAILED) from exc


def generate_private_key() -> Ed25519PrivateKey:
    """A new Ed25519 private key from the OS CSPRNG (via ``cryptography``), self-tested.

    Raises:
        DatafoldAuthError: reason ``self_test_failed`` (see :func:`self_test`).
    """
    key = Ed25519PrivateKey.generate()
    self_test(key)
    return key


__all__ = ["generate_private_key", "self_test"]
