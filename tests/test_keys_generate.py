"""Key generation and the sign/verify self-test."""

from __future__ import annotations

from typing import cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from datafold_auth.errors import DatafoldAuthError, Reason
from datafold_auth.keys import generate_private_key, self_test


def test_generates_distinct_working_keys() -> None:
    first, second = generate_private_key(), generate_private_key()
    assert isinstance(first, Ed25519PrivateKey)
    assert first.private_bytes_raw() != second.private_bytes_raw()
    first.public_key().verify(first.sign(b"message"), b"message")


_generate = Ed25519PrivateKey.generate


class _BrokenKey:
    """A key whose signatures do not verify under its public key."""

    def __init__(self) -> None:
        self._key = _generate()

    def sign(self, data: bytes) -> bytes:
        return bytes(64)

    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()


def test_self_test_failure_raises_self_test_failed() -> None:
    with pytest.raises(DatafoldAuthError) as info:
        self_test(cast(Ed25519PrivateKey, _BrokenKey()))
    assert info.value.reason is Reason.SELF_TEST_FAILED


def test_generate_runs_the_self_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Ed25519PrivateKey, "generate", _BrokenKey)
    with pytest.raises(DatafoldAuthError) as info:
        generate_private_key()
    assert info.value.reason is Reason.SELF_TEST_FAILED
