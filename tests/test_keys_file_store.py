"""FileKeyStore on the real file system: modes, atomic writes, refusals, metadata."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import (
    FileKeyStore,
    KeyExistsError,
    KeyMetadata,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    WrongPassphraseError,
    default_root,
    generate_private_key,
)

PASS = "pässwörd-\u00e9".encode()
PASS_NFD = "pa\u0308sswo\u0308rd-e\u0301".encode()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> FileKeyStore:
    return FileKeyStore(tmp_path / "home" / "keys")


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Run with umask 000, so that only the store's own choices decide the modes."""
    old = os.umask(0)
    yield
    os.umask(old)


def _save(
    store: KeyStore,
    key: Ed25519PrivateKey,
    name: str = "default",
    *,
    passphrase: bytes | None = PASS,
    overwrite: bool = False,
    allow_unencrypted: bool = False,
) -> KeyMetadata:
    meta = KeyMetadata.for_key(name, key, label="laptop", client_id="c-1")
    return store.save(name, key, meta, passphrase=passphrase, overwrite=overwrite, allow_unencrypted=allow_unencrypted)


def test_save_writes_0600_files_in_a_0700_folder(store: FileKeyStore, key: Ed25519PrivateKey, open_umask: None) -> None:
    meta = _save(store, key)
    assert (meta.store, meta.encrypted, meta.keyid) == ("file", True, jwk_thumbprint(key))
    assert _mode(store.root) == 0o700
    assert sorted(p.name for p in store.root.iterdir()) == ["default.json", "default.pem"]  # no temporary files left
    assert {_mode(p) for p in store.root.iterdir()} == {0o600}
    assert store.location("default") == str(store.root / "default.pem")


def test_existing_loose_folder_is_tightened(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    store.root.mkdir(parents=True, mode=0o755)
    os.chmod(store.root, 0o755)  # noqa: S103 - loose on purpose: the store must tighten it
    _save(store, key)
    assert _mode(store.root) == 0o700


def test_load_round_trip_and_nfd_passphrase(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    _save(store, key)
    for passphrase in (PASS, PASS_NFD):
        assert store.load("default", passphrase=passphrase).private_bytes_raw() == key.private_bytes_raw()


def test_wrong_and_missing_passphrase(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    _save(store, key)
    with pytest.raises(WrongPassphraseError, match="wrong passphrase") as info:
        store.load("default", passphrase=b"not-it")
    assert "not-it" not in repr(info.value) and PASS.decode() not in repr(info.value)
    with pytest.raises(KeyStoreError, match="passphrase is needed"):
        store.load("default", passphrase=None)


def test_overwrite_refused_unless_asked(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    _save(store, key)
    other = generate_private_key()
    with pytest.raises(KeyExistsError, match="already exists"):
        _save(store, other)
    assert store.load("default", passphrase=PASS).private_bytes_raw() == key.private_bytes_raw()
    assert store.metadata("default").keyid == jwk_thumbprint(key)
    _save(store, other, overwrite=True)
    assert store.load("default", passphrase=PASS).private_bytes_raw() == other.private_bytes_raw()
    assert store.metadata("default").keyid == jwk_thumbprint(other)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_key_file_open_to_group_or_others_is_refused(store: FileKeyStore, key: Ed25519PrivateKey, mode: int) -> None:
    _save(store, key)
    path = store.root / "default.pem"
    os.chmod(path, mode)
    with pytest.raises(KeyStoreError, match=f"chmod 600 {path}"):
        store.load("default", passphrase=PASS)
    os.chmod(path, 0o600)
    store.load("default", passphrase=PASS)


def test_unencrypted_needs_explicit_consent(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    with pytest.raises(KeyStoreError, match="allow_unencrypted"):
        _save(store, key, passphrase=None)
    assert not store.exists("default")
    meta = _save(store, key, passphrase=None, allow_unencrypted=True)
    assert meta.encrypted is False
    assert (store.root / "default.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert store.load("default", passphrase=None).private_bytes_raw() == key.private_bytes_raw()


def test_metadata_file_holds_no_key_material(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    meta = _save(store, key)
    text = (store.root / "default.json").read_text()
    assert set(json.loads(text)) == {
        "name", "keyid", "public_key", "label", "created", "client_id", "servers", "encrypted", "backups",
        "server_status",
    }  # fmt: skip
    seed = key.private_bytes_raw()
    assert seed.hex() not in text.lower() and PASS.decode() not in text
    assert store.metadata("default") == meta
    assert meta.public_jwk() == {"kty": "OKP", "crv": "Ed25519", "x": meta.public_key}


def test_list_exists_delete(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    assert store.list() == [] and not store.exists("default")
    _save(store, key, name="b")
    _save(store, generate_private_key(), name="a")
    assert [m.name for m in store.list()] == ["a", "b"]
    store.delete("b")
    assert [m.name for m in store.list()] == ["a"] and not store.exists("b")
    assert not (store.root / "b.json").exists()
    for call in (lambda: store.delete("b"), lambda: store.load("b", passphrase=PASS), lambda: store.metadata("b")):
        with pytest.raises(KeyNotFoundError):
            call()


def test_update_metadata_persists_servers(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    meta = _save(store, key)
    assert meta.add_server("https://a.example/register") is True
    assert meta.add_server("https://a.example/register") is False
    meta.client_id = "c-2"
    store.update_metadata(meta)
    stored = store.metadata("default")
    assert (stored.servers, stored.client_id, stored.created) == (["https://a.example/register"], "c-2", meta.created)
    _save(store, generate_private_key(), overwrite=True)
    with pytest.raises(KeyStoreError, match="was replaced"):
        store.update_metadata(meta)


def test_swapped_key_file_is_detected(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    _save(store, key, name="a")
    _save(store, generate_private_key(), name="b")
    (store.root / "a.pem").write_bytes((store.root / "b.pem").read_bytes())
    with pytest.raises(KeyStoreError, match="does not match its metadata"):
        store.load("a", passphrase=PASS)


def test_malformed_metadata(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    _save(store, key)
    path = store.root / "default.json"
    data = json.loads(path.read_text())
    for broken in ("{", json.dumps({**data, "keyid": "A" * 43}), json.dumps({**data, "created": "now"})):
        path.write_text(broken)
        with pytest.raises(KeyStoreError, match="malformed"):
            store.metadata("default")
    path.unlink()
    with pytest.raises(KeyStoreError, match="missing"):
        store.metadata("default")


def test_mismatched_metadata_is_refused(store: FileKeyStore, key: Ed25519PrivateKey) -> None:
    meta = KeyMetadata.for_key("default", generate_private_key())
    with pytest.raises(KeyStoreError, match="does not describe"):
        store.save("default", key, meta, passphrase=PASS)
    with pytest.raises(KeyStoreError, match="does not describe"):
        store.save("other", key, KeyMetadata.for_key("default", key), passphrase=PASS)


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "-x", "x\n", "a" * 65, "ké"])
def test_invalid_names_are_refused(store: FileKeyStore, key: Ed25519PrivateKey, name: str) -> None:
    with pytest.raises(KeyStoreError, match="invalid key name"):
        store.save(name, key, KeyMetadata(name, jwk_thumbprint(key), "x"), passphrase=PASS)
    with pytest.raises(KeyStoreError, match="invalid key name"):
        store.load(name, passphrase=PASS)


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATAFOLD_AUTH_HOME", str(tmp_path))
    assert default_root() == tmp_path / "keys" == FileKeyStore().root
    monkeypatch.delenv("DATAFOLD_AUTH_HOME")
    assert default_root() == Path(platformdirs.user_data_dir("datafold-auth")) / "keys"
