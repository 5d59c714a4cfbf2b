"""open_store: which backend "auto" picks, and keyring_status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from datafold_auth.keys import FileKeyStore, KeyStoreError, keyring_status, open_store

# keyring's backend classes are untyped; typed aliases keep mypy --strict quiet.
FAIL: Callable[[], KeyringBackend] = fail.Keyring
NULL: Callable[[], KeyringBackend] = null.Keyring
CHAINER: Callable[[], KeyringBackend] = chainer.ChainerBackend


def test_file_store_when_asked(tmp_path: Path) -> None:
    store, message = open_store("file", root=tmp_path)
    assert isinstance(store, FileKeyStore) and store.root == tmp_path
    assert str(tmp_path) in message


def test_auto_falls_back_to_files_without_a_keychain(tmp_path: Path) -> None:
    store, message = open_store("auto", root=tmp_path, keyring_backend=FAIL())
    assert isinstance(store, FileKeyStore)
    assert message.startswith("no OS keychain available (headless Linux?")
    assert message.endswith(f"storing encrypted files in {tmp_path}")


def test_keyring_without_a_keychain_is_an_error() -> None:
    with pytest.raises(KeyStoreError, match="no usable OS keychain"):
        open_store("keyring", keyring_backend=FAIL())


def test_unknown_kind() -> None:
    with pytest.raises(KeyStoreError, match="unknown key store kind"):
        open_store("cloud")  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", [FAIL(), NULL()])
def test_unusable_backends(backend: KeyringBackend) -> None:
    usable, why = keyring_status(backend)
    assert not usable and type(backend).__module__ in why


def test_empty_chainer_is_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    assert keyring_status(CHAINER())[0] is False
