"""Hostile conditions for the file key store's crash recovery (pending metadata, stale temporary files).

The store writes ``.<name>.json.<sha256 of the new key file>.pending`` before moving the
key file, and a reader that finds the pending file of the key file in place completes the
change (datafold_auth/keys/file_store.py). Attacked here, on the real file system:

* key names are allowed dots, so names can be prefixes of each other's file names
  (``a`` and ``a.json.b``): the cleanup of one key must never touch another key's
  pending or temporary files;
* a pending file that is a symlink, open to group/others or owned by another user (a
  folder that others can write) is never promoted to the metadata;
* a pending file that matches the key file but lies (another keyid, unencrypted while the
  key is encrypted, not JSON) never makes ``load`` silently use another key or state;
* a ``delete`` by another process between the writer's two moves (driven at that exact
  moment by an audit hook, https://docs.python.org/3/library/audit_events.html) does not
  leave a key without metadata behind a successful ``save``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import FileKeyStore, KeyMetadata, KeyNotFoundError, KeyStoreError, generate_private_key, pkcs8

PASS = b"adversarial-passphrase"


@pytest.fixture(autouse=True)
def _fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pkcs8, "KDF_ITERATIONS", 1000)  # the real cost is tested in tests/test_keys_pkcs8.py


@pytest.fixture
def store(tmp_path: Path) -> FileKeyStore:
    return FileKeyStore(tmp_path / "keys")


def _save(
    store: FileKeyStore, name: str, key: Ed25519PrivateKey, *, passphrase: bytes | None = None, **kw: Any
) -> None:
    store.save(
        name, key, KeyMetadata.for_key(name, key), passphrase=passphrase, allow_unencrypted=passphrase is None, **kw
    )


def _cut_short(store: FileKeyStore, name: str, new: Ed25519PrivateKey, tmp_path: Path, **kw: Any) -> Path:
    """Leave ``name`` as a writer killed between its two moves does: new key file, old metadata, pending file.

    Returns the pending file (mode 0600, as the store writes it).
    """
    other = FileKeyStore(tmp_path / f"elsewhere-{os.urandom(4).hex()}")
    _save(other, name, new, **kw)
    pem = (other.root / f"{name}.pem").read_bytes()
    pending = store.root / f".{name}.json.{hashlib.sha256(pem).hexdigest()}.pending"
    os.replace(other.root / f"{name}.json", pending)
    os.replace(other.root / f"{name}.pem", store.root / f"{name}.pem")
    return pending


def _keyid(store: FileKeyStore, name: str) -> str:
    return jwk_thumbprint(store.load(name, passphrase=PASS))


def test_the_recovery_itself_completes_a_change_cut_short(store: FileKeyStore, tmp_path: Path) -> None:
    """The control for the attacks below: a genuine pending file is promoted on the next read."""
    _save(store, "k", generate_private_key())
    new = generate_private_key()
    pending = _cut_short(store, "k", new, tmp_path)
    assert store.metadata("k").keyid == jwk_thumbprint(new)
    assert _keyid(store, "k") == jwk_thumbprint(new)
    assert not pending.exists()


@pytest.mark.parametrize("other", ["a.json.b", "a.json.json", "a.json.x.y"])
@pytest.mark.parametrize("action", ["save", "overwrite", "delete"])
def test_a_key_whose_name_is_a_prefix_never_removes_another_keys_pending_file(
    store: FileKeyStore, tmp_path: Path, other: str, action: str
) -> None:
    """``.a.json.*.pending`` also matches ``.a.json.b.json.<hex>.pending``: writing or deleting
    key ``a`` removed the recovery of key ``a.json.b``, which then never loaded again."""
    _save(store, other, generate_private_key())
    new = generate_private_key()
    pending = _cut_short(store, other, new, tmp_path)
    if action != "save":
        _save(store, "a", generate_private_key())
    if action == "delete":
        store.delete("a")
    else:
        _save(store, "a", generate_private_key(), overwrite=action == "overwrite")
    assert pending.exists()
    assert _keyid(store, other) == jwk_thumbprint(new)


def test_stale_temporary_files_of_other_keys_are_left_alone(store: FileKeyStore) -> None:
    """stage() removes ``.<file>.<8 random>.tmp`` of the same destination only."""
    _save(store, "a", generate_private_key())
    mine = [".a.pem.abcd1234.tmp", ".a.json.zz_y9x8w.tmp"]
    others = [
        ".a.json.pem.abcd1234.tmp",  # key "a.json"
        ".a.json.b.json.abcd1234.tmp",  # key "a.json.b"
        ".a.pem.pem.abcd1234.tmp",  # key "a.pem"
        ".ab.pem.abcd1234.tmp",  # key "ab"
        ".a.pem.abcd123.tmp",  # not a mkstemp name (7 characters)
        ".a.pem.ABCD1234.tmp",  # not a mkstemp name (upper case)
        ".a.pem.abcd1234.tmp.keep",
        "a.pem.abcd1234.tmp",  # no leading dot
    ]
    for name in mine + others:
        (store.root / name).write_bytes(b"x")
    _save(store, "a", generate_private_key(), overwrite=True)
    left = {p.name for p in store.root.iterdir()}
    assert left == {"a.pem", "a.json", *others}


def _untrusted(kind: str, pending: Path, tmp_path: Path) -> None:
    if kind == "symlink":
        target = tmp_path / "planted.json"
        os.replace(pending, target)
        pending.symlink_to(target)
    elif kind == "group-writable":
        pending.chmod(0o660)
    elif kind == "other-user":
        if os.geteuid() != 0:
            pytest.skip("chown needs root")
        os.chown(pending, 65534, 65534)


@pytest.mark.parametrize("kind", ["symlink", "group-writable", "other-user"])
def test_a_pending_file_not_written_by_the_store_is_never_promoted(
    store: FileKeyStore, tmp_path: Path, kind: str
) -> None:
    """A pending file as a symlink, open to others or owned by someone else (a folder that others
    may write): not promoted, so the metadata stays a regular file of ours and the mismatch
    between key and metadata is reported, not resolved in the planter's favour."""
    old = generate_private_key()
    _save(store, "k", old)
    pending = _cut_short(store, "k", generate_private_key(), tmp_path)
    _untrusted(kind, pending, tmp_path)
    assert store.metadata("k").keyid == jwk_thumbprint(old)
    meta = store.root / "k.json"
    assert not meta.is_symlink() and os.lstat(meta).st_uid == os.geteuid()
    with pytest.raises(KeyStoreError, match="does not match its metadata"):
        store.load("k", passphrase=None)
    _save(store, "k", generate_private_key(), overwrite=True)  # the next write removes it
    assert not os.path.lexists(pending)
    assert (tmp_path / "planted.json").exists() or kind != "symlink"  # removing a link leaves its target


def _lying(store: FileKeyStore, tmp_path: Path, edit: Callable[[Path], None], **kw: Any) -> None:
    _save(store, "k", generate_private_key(), **kw)
    pending = _cut_short(store, "k", generate_private_key(), tmp_path, **kw)
    edit(pending)


def test_a_pending_file_naming_another_key_never_makes_load_use_it(store: FileKeyStore, tmp_path: Path) -> None:
    stranger = generate_private_key()

    def other_keyid(pending: Path) -> None:
        pending.write_text(KeyMetadata.for_key("k", stranger).to_json(), encoding="utf-8")

    _lying(store, tmp_path, other_keyid)
    assert store.metadata("k").keyid == jwk_thumbprint(stranger)  # the metadata says so ...
    with pytest.raises(KeyStoreError, match="does not match its metadata"):
        store.load("k", passphrase=None)  # ... but no key is ever used under it


def test_a_pending_file_claiming_no_encryption_never_skips_the_passphrase(store: FileKeyStore, tmp_path: Path) -> None:
    def unencrypted(pending: Path) -> None:
        pending.write_text(pending.read_text(encoding="utf-8").replace('"encrypted": true', '"encrypted": false'))

    _lying(store, tmp_path, unencrypted, passphrase=PASS)
    assert store.metadata("k").encrypted is False
    with pytest.raises(KeyStoreError, match="encrypted; a passphrase is needed"):
        store.load("k", passphrase=None)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[]", b'{"name": "k"}', b"{}" + b" " * 2_000_000])
def test_a_corrupt_pending_file_gives_a_typed_error(store: FileKeyStore, tmp_path: Path, content: bytes) -> None:
    _lying(store, tmp_path, lambda pending: pending.write_bytes(content))
    with pytest.raises(KeyStoreError):
        store.metadata("k")
    with pytest.raises(KeyStoreError):
        store.load("k", passphrase=None)


def test_a_stale_pending_file_never_changes_the_key(store: FileKeyStore, tmp_path: Path) -> None:
    """A pending file that does not match the key file (killed before the key moved) is ignored."""
    old = generate_private_key()
    _save(store, "k", old)
    other = FileKeyStore(tmp_path / "elsewhere")
    _save(other, "k", generate_private_key())
    stale = store.root / f".k.json.{'0' * 64}.pending"
    os.replace(other.root / "k.json", stale)
    assert _keyid(store, "k") == jwk_thumbprint(old)
    assert stale.exists()


class _AtEvent:
    """Run ``action`` once, just before this process renames something onto ``target`` (an audit hook)."""

    hooked = False
    current: _AtEvent | None = None

    def __init__(self, target: Path, action: Callable[[], None]) -> None:
        self.target, self.action = str(target), action
        if not _AtEvent.hooked:
            sys.addaudithook(_AtEvent._hook)  # hooks cannot be removed: one for the whole run, armed per test
            _AtEvent.hooked = True

    @staticmethod
    def _hook(event: str, args: tuple[Any, ...]) -> None:
        armed = _AtEvent.current
        if armed is not None and event in ("os.rename", "os.link") and os.fsdecode(args[1]) == armed.target:
            _AtEvent.current = None
            armed.action()

    def __enter__(self) -> _AtEvent:
        _AtEvent.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        _AtEvent.current = None


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_delete_between_the_two_moves_leaves_no_key_without_metadata(store: FileKeyStore, overwrite: bool) -> None:
    """Another process deletes the key just as the writer moves the new key file in: the
    writer's pending metadata is gone with it. The save used to report success and leave a
    key file without metadata (``metadata`` and ``list`` then failed)."""
    if overwrite:
        _save(store, "k", generate_private_key())
    new = generate_private_key()

    def delete() -> None:
        with contextlib.suppress(KeyNotFoundError):  # a new key: not there yet, but its pending file is
            FileKeyStore(store.root).delete("k")

    with _AtEvent(store.root / "k.pem", delete):
        _save(store, "k", new, overwrite=overwrite)
    assert _keyid(store, "k") == jwk_thumbprint(new)
    assert [m.keyid for m in store.list()] == [jwk_thumbprint(new)]
    assert sorted(p.name for p in store.root.iterdir()) == ["k.json", "k.pem"]


def test_a_reader_completing_the_change_meanwhile_is_fine(store: FileKeyStore) -> None:
    """A reader between the writer's two moves promotes the pending file itself; the writer succeeds."""
    _save(store, "k", generate_private_key())
    new = generate_private_key()
    seen: list[str] = []
    with _AtEvent(store.root / "k.json", lambda: seen.append(FileKeyStore(store.root).metadata("k").keyid)):
        _save(store, "k", new, overwrite=True)
    assert seen == [jwk_thumbprint(new)]
    assert _keyid(store, "k") == jwk_thumbprint(new)
    assert sorted(p.name for p in store.root.iterdir()) == ["k.json", "k.pem"]


def test_a_writer_overtaken_by_another_fails_and_leaves_a_consistent_key(store: FileKeyStore) -> None:
    """Two writers of one key at once are not supported; the one overtaken must fail, never
    succeed with the other's metadata beside its key."""
    _save(store, "k", generate_private_key())
    mine, theirs = generate_private_key(), generate_private_key()
    with _AtEvent(store.root / "k.pem", lambda: _save(FileKeyStore(store.root), "k", theirs, overwrite=True)):
        with pytest.raises(KeyStoreError, match="cannot write key 'k'"):
            _save(store, "k", mine, overwrite=True)
    assert _keyid(store, "k") == jwk_thumbprint(theirs) == store.metadata("k").keyid


def _rewrite(root: str, count: int) -> None:
    store = FileKeyStore(Path(root))
    pkcs8.KDF_ITERATIONS = 1000
    for _ in range(count):
        key = generate_private_key()
        store.save("k", key, KeyMetadata.for_key("k", key), passphrase=PASS, overwrite=True)


def _read_until(root: str, ready: Any, stop: Any, out: Any) -> None:
    store = FileKeyStore(Path(root))
    loaded = mismatched = 0
    others: list[str] = []
    ready.set()
    while not stop.is_set():
        try:
            store.load("k", passphrase=PASS)  # checks the key against the metadata it read
            loaded += 1
        except KeyStoreError as exc:
            if "does not match its metadata" in str(exc):  # read between the writer's two moves
                mismatched += 1
            else:
                others.append(str(exc))
        except Exception as exc:  # anything untyped is the finding
            others.append(repr(exc))
    out.put((loaded, mismatched, others))


def test_readers_in_other_processes_during_rewrites_never_get_an_untyped_error(store: FileKeyStore) -> None:
    """Real processes: one rewrites the key 300 times while another loads it in a loop and completes
    changes it finds half done. Reads see the old key, the new key or, rarely, a typed mismatch (never a
    wrong key: load checks the keyid); afterwards the key matches its metadata and nothing is left over."""
    import multiprocessing

    _save(store, "k", generate_private_key(), passphrase=PASS)
    ctx = multiprocessing.get_context("spawn")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=_read_until, args=(str(store.root), ready, stop, out))
    reader.start()
    try:
        assert ready.wait(60)
        _rewrite(str(store.root), 300)
    finally:
        stop.set()
        loaded, mismatched, others = out.get(timeout=60)
        reader.join(60)
    assert others == []
    assert loaded > 0
    # load() reads the metadata again (and then the key) when a rewrite overtook it: a mismatch
    # is left only when several rewrites land inside one load (it was 3.5-4 % of loads before).
    assert mismatched <= loaded // 100, (loaded, mismatched)
    assert store.metadata("k").keyid == jwk_thumbprint(store.load("k", passphrase=PASS))
    assert sorted(p.name for p in store.root.iterdir()) == ["k.json", "k.pem"]
