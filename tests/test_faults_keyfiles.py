"""Faults while writing keys: ``kill -9`` at every critical moment, full and read-only key folders.

kill -9: ``keytools generate``, ``change-passphrase``, ``backup`` and ``restore``
run in a child process through tests/kill_at_event.py, which SIGKILLs it just
before its N-th file-system change (every N of the run, in turn), and a few
more runs are killed from outside by a real ``kill -9`` after a random delay.
After every kill, with the project's own loaders (and ``openssl pkey``):

* the key is the complete old one or the complete new one, loadable with the
  matching passphrase, its metadata describing it (keyid, encrypted or not);
* a backup file at its final name is complete and restores the key;
* leftovers (temporary files) are ignored, and the next run of the command
  succeeds and leaves none behind.

Full and read-only folders (real tmpfs mounts, root only; root ignores mode
bits): the library's file store raises :class:`KeyStoreError` with the folder
and the OS reason and changes nothing, also when only part of the write fits.
The same for keytools (tests/test_keytools_failures.py covers each command).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datafold_auth.errors import Reason
from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import FileKeyStore, KeyMetadata, KeyStoreError, generate_private_key, pkcs8, restore_backup
from datafold_auth.keys.errors import WrongPassphraseError

from .test_keytools_helpers import OPENSSL, ROOT, Result, cli, files_in, fill, remount_read_only, tmpfs, write_pass

KILLER = Path(__file__).with_name("kill_at_event.py")
PASS = "fault-old-passphrase-1"
NEW = "fault-new-passphrase-2"
BACKUP = "fault-backup-passphrase-3"
FAST = {"json": ("--scrypt-log-n", "10"), "pem": ("--pbkdf2-iterations", "1000")}
"""Low KDF costs for test backups (the default costs are tested elsewhere)."""


# ------------------------------------------------------------------ running keytools


@dataclass
class Folder:
    """A keytools home (``home/keys``), passphrase files and a backup folder, inside ``root``."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    def pass_file(self, text: str) -> Path:
        return self.root / {PASS: "old.txt", NEW: "new.txt", BACKUP: "backup.txt"}[text]

    @property
    def store(self) -> FileKeyStore:
        return FileKeyStore(self.keys)


def make_folder(root: Path) -> Folder:
    folder = Folder(root)
    root.mkdir(parents=True, exist_ok=True)
    folder.backups.mkdir(mode=0o700)
    for text in (PASS, NEW, BACKUP):
        write_pass(folder.pass_file(text), text)
    return folder


def _env(extra: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_AUTH_", "DBUS_", "DFT_"))}
    return {**base, "PYTHONPATH": str(ROOT), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", **extra}


def killed_run(folder: Folder, argv: list[str], kill_at: int, log: Path) -> int:
    """Run keytools ``argv`` on ``folder`` under tests/kill_at_event.py; return its exit status."""
    env = _env({"DFT_WATCH": str(folder.root), "DFT_KILL_AT": str(kill_at), "DFT_EVENT_LOG": str(log)})
    done = subprocess.run(
        [sys.executable, str(KILLER), "--home", str(folder.home), *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )
    if kill_at == 0:
        assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.returncode


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """keytools in this process (fast key-store KDF, as in tests/test_keytools_commands.py)."""
    monkeypatch.setattr(pkcs8, "KDF_ITERATIONS", 1000)

    def go(folder: Folder, *args: str | Path) -> Result:
        return cli("--home", folder.home, *args, capsys=capsys, monkeypatch=monkeypatch)

    return go


def ok(run: Callable[..., Result], folder: Folder, *args: str | Path) -> Result:
    result: Result = run(folder, *args)
    assert result.code == 0, (args, result.err)
    return result


# ------------------------------------------------------------------ invariants


def loads(folder: Folder, name: str, passphrase: str | None) -> str | None:
    """The keyid if key ``name`` loads with ``passphrase`` (metadata consistent), ``None`` if the passphrase is wrong."""
    store = folder.store
    try:
        key = store.load(name, passphrase=None if passphrase is None else passphrase.encode())
    except WrongPassphraseError:
        return None
    meta = store.metadata(name)
    pem = (folder.keys / f"{name}.pem").read_bytes()
    assert meta.encrypted == pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), (meta, pem[:40])
    if meta.encrypted and passphrase is None:
        raise AssertionError("an encrypted key loaded without a passphrase")
    if meta.encrypted and OPENSSL is not None:
        done = subprocess.run(
            [
                OPENSSL,
                "pkey",
                "-in",
                str(folder.keys / f"{name}.pem"),
                "-passin",
                f"file:{folder.pass_file(passphrase or PASS)}",
                "-noout",
            ],
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    keyid = jwk_thumbprint(key)
    assert keyid == meta.keyid
    return keyid


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def hidden(folder: Folder) -> list[str]:
    """Leftover hidden (temporary) files anywhere in the folder."""
    return [f for f in files_in(folder.root) if any(part.startswith(".") for part in Path(f).parts)]


@dataclass
class Case:
    """A command to kill, the state before it, and what must hold after a kill."""

    name: str
    prepare: Callable[[Callable[..., Result], Folder], dict[str, str]]
    argv: Callable[[Folder], list[str]]
    check: Callable[[Folder, dict[str, str]], None]
    finish: Callable[[Callable[..., Result], Folder], None]
    """Run the command to completion afterwards (it must succeed whatever the kill left)."""


def _generate(run: Callable[..., Result], folder: Folder, name: str = "k") -> str:
    out = ok(run, folder, "generate", "--name", name, "--passphrase-file", folder.pass_file(PASS)).out
    return out.splitlines()[0].removeprefix("keyid: ")


def _backup_args(folder: Folder, fmt: str, name: str = "k") -> list[str]:
    """``backup FMT`` of key ``name`` into ``backups/NAME.FMT`` (passphrases PASS and BACKUP, fast KDF)."""
    return [
        "backup",
        fmt,
        "--name",
        name,
        "--out",
        str(folder.backups / f"{name}.{fmt}"),
        "--passphrase-file",
        str(folder.pass_file(PASS)),
        "--backup-passphrase-file",
        str(folder.pass_file(BACKUP)),
        *FAST[fmt],
    ]


def _prepare_nothing(run: Callable[..., Result], folder: Folder) -> dict[str, str]:
    return {}


def _prepare_key(run: Callable[..., Result], folder: Folder) -> dict[str, str]:
    return {"keyid": _generate(run, folder)}


def _prepare_key_and_backup(run: Callable[..., Result], folder: Folder) -> dict[str, str]:
    keyid = _generate(run, folder)
    ok(run, folder, *_backup_args(folder, "pem"))
    return {"keyid": keyid}


def _prepare_key_and_other_backup(run: Callable[..., Result], folder: Folder) -> dict[str, str]:
    other = _generate(run, folder, "other")
    ok(run, folder, *_backup_args(folder, "json", "other"))
    ok(run, folder, "delete", "--name", "other", "--force")
    return {"keyid": _generate(run, folder), "other": other}


def _check_generated(folder: Folder, before: dict[str, str]) -> None:
    names = [m.name for m in folder.store.list()] if folder.keys.is_dir() else []
    if "keyid" not in before:
        assert visible(folder.keys) in ([], ["k.json", "k.pem"]), visible(folder.keys)
        assert names in ([], ["k"])
    else:
        assert names == ["k"]
    if names:
        keyid = loads(folder, "k", PASS)
        assert keyid is not None


def _check_passphrase_changed(new: str | None) -> Callable[[Folder, dict[str, str]], None]:
    def check(folder: Folder, before: dict[str, str]) -> None:
        assert visible(folder.keys) == ["k.json", "k.pem"]
        if new is None:  # to unencrypted: a passphrase given for a plain key is ignored, so look at the file
            plain = not folder.store.metadata("k").encrypted
            assert loads(folder, "k", None if plain else PASS) == before["keyid"]
            return
        with_old, with_new = loads(folder, "k", PASS), loads(folder, "k", new)
        assert [with_old, with_new].count(before["keyid"]) == 1 and None in (with_old, with_new)

    return check


def _check_backup(fmt: str, fresh: bool) -> Callable[[Folder, dict[str, str]], None]:
    def check(folder: Folder, before: dict[str, str]) -> None:
        assert loads(folder, "k", PASS) == before["keyid"]  # the stored key is untouched
        out = folder.backups / f"k.{fmt}"
        assert visible(folder.backups) == ([] if fresh and not out.exists() else [out.name])
        if out.exists():
            restored = restore_backup([out.read_bytes()], BACKUP.encode(), fmt=fmt)  # type: ignore[arg-type]
            assert restored.keyid == before["keyid"]
            if fmt == "pem" and OPENSSL is not None:
                done = subprocess.run(
                    [OPENSSL, "pkey", "-in", str(out), "-passin", f"file:{folder.pass_file(BACKUP)}", "-noout"],
                    capture_output=True,
                    check=False,
                )
                assert done.returncode == 0, done.stderr

    return check


def _check_restored(folder: Folder, before: dict[str, str]) -> None:
    assert [m.name for m in folder.store.list()] == ["k"]
    assert loads(folder, "k", PASS) in (before["keyid"], before["other"])


def _generate_argv(force: bool) -> Callable[[Folder], list[str]]:
    return lambda f: ["generate", "--name", "k", "--passphrase-file", str(f.pass_file(PASS)), *(["--force"] * force)]


def _change_argv(new: str | None) -> Callable[[Folder], list[str]]:
    def argv(f: Folder) -> list[str]:
        target = ["--no-encryption"] if new is None else ["--new-passphrase-file", str(f.pass_file(new))]
        return ["change-passphrase", "--name", "k", "--passphrase-file", str(f.pass_file(PASS)), *target]

    return argv


def _backup_argv(fmt: str, force: bool) -> Callable[[Folder], list[str]]:
    return lambda f: [*_backup_args(f, fmt), *(["--force"] * force)]


def _restore_argv(f: Folder) -> list[str]:
    return [
        "restore",
        str(f.backups / "other.json"),
        "--name",
        "k",
        "--force",
        "--backup-passphrase-file",
        str(f.pass_file(BACKUP)),
        "--passphrase-file",
        str(f.pass_file(PASS)),
    ]


def _finish_with(argv: Callable[[Folder], list[str]]) -> Callable[[Callable[..., Result], Folder], None]:
    def finish(run: Callable[..., Result], folder: Folder) -> None:
        ok(run, folder, *argv(folder))

    return finish


def _finish_change(run: Callable[..., Result], folder: Folder) -> None:
    """Change to NEW from whichever passphrase opens the key now."""
    current = PASS if loads(folder, "k", NEW) is None else NEW
    ok(
        run,
        folder,
        "change-passphrase",
        "--name",
        "k",
        "--passphrase-file",
        folder.pass_file(current),
        "--new-passphrase-file",
        folder.pass_file(NEW),
    )


def _finish_plain(run: Callable[..., Result], folder: Folder) -> None:
    ok(run, folder, *_change_argv(None)(folder))


CASES = [
    Case("generate", _prepare_nothing, _generate_argv(False), _check_generated, _finish_with(_generate_argv(True))),
    Case("generate --force", _prepare_key, _generate_argv(True), _check_generated, _finish_with(_generate_argv(True))),
    Case("change-passphrase", _prepare_key, _change_argv(NEW), _check_passphrase_changed(NEW), _finish_change),
    Case(
        "change-passphrase --no-encryption",
        _prepare_key,
        _change_argv(None),
        _check_passphrase_changed(None),
        _finish_plain,
    ),
    Case(
        "backup json",
        _prepare_key,
        _backup_argv("json", False),
        _check_backup("json", True),
        _finish_with(_backup_argv("json", True)),
    ),
    Case(
        "backup pem --force",
        _prepare_key_and_backup,
        _backup_argv("pem", True),
        _check_backup("pem", False),
        _finish_with(_backup_argv("pem", True)),
    ),
    Case("restore --force", _prepare_key_and_other_backup, _restore_argv, _check_restored, _finish_with(_restore_argv)),
]


def copy(template: Folder, root: Path) -> Folder:
    """A copy of ``template`` (modes included) at ``root``."""
    shutil.copytree(template.root, root, symlinks=True)
    return Folder(root)


def check_after_kill(case: Case, run: Callable[..., Result], folder: Folder, before: dict[str, str], when: str) -> None:
    """The invariants after a kill; then the command again, to completion, leaving no temporary file."""
    try:
        case.check(folder, before)
        case.finish(run, folder)
        case.check(folder, before)
        assert hidden(folder) == [], hidden(folder)
    except AssertionError as exc:
        raise AssertionError(f"{case.name}: killed {when}: {exc}") from exc
    except Exception as exc:
        raise AssertionError(f"{case.name}: killed {when}: {type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kill_9_before_every_file_system_change(case: Case, run: Callable[..., Result], tmp_path: Path) -> None:
    template = make_folder(tmp_path / "template")
    before = case.prepare(run, template)
    complete = copy(template, tmp_path / "complete")
    killed_run(complete, case.argv(complete), 0, tmp_path / "complete.log")
    events = (tmp_path / "complete.log").read_text().splitlines()
    assert len(events) >= 3, events  # staging, moving into place, ...: the moments worth killing at
    case.check(complete, before)
    assert hidden(complete) == []
    for n, event in enumerate(events, 1):
        folder = copy(template, tmp_path / f"kill-{n}")
        status = killed_run(folder, case.argv(folder), n, tmp_path / f"kill-{n}.log")
        assert status == -signal.SIGKILL, (event, status)
        check_after_kill(case, run, folder, before, f"before event {n}: {event.split(' ', 2)[2]}")
        shutil.rmtree(folder.root)


RANDOM_CASES = [c for c in CASES if c.name in ("generate --force", "change-passphrase", "backup pem --force")]
RANDOM_KILLS = 5


@pytest.mark.parametrize("case", RANDOM_CASES, ids=[c.name for c in RANDOM_CASES])
def test_kill_9_from_outside_at_random_moments(case: Case, run: Callable[..., Result], tmp_path: Path) -> None:
    """A real ``kill -9`` from this process at a random moment of the command's writing: after its first
    file-system change, within the time a complete run takes from its first change to its last (so that it
    lands while the command writes, not while Python starts or exits). Seed: $DFT_KILL_SEED."""
    seed = int(os.environ.get("DFT_KILL_SEED", str(random.SystemRandom().randrange(2**32))))
    rng = random.Random(seed)  # noqa: S311 - kill timing, not cryptography
    template = make_folder(tmp_path / "template")
    before = case.prepare(run, template)
    complete = copy(template, tmp_path / "complete")
    killed_run(complete, case.argv(complete), 0, tmp_path / "complete.log")
    times = [float(line.split()[1]) for line in (tmp_path / "complete.log").read_text().splitlines()]
    window = times[-1] - times[0]
    for i in range(RANDOM_KILLS):
        folder = copy(template, tmp_path / f"kill-{i}")
        log = tmp_path / f"kill-{i}.log"
        env = _env({"DFT_WATCH": str(folder.root), "DFT_KILL_AT": "0", "DFT_EVENT_LOG": str(log)})
        delay = rng.uniform(0, window)
        with subprocess.Popen(
            [sys.executable, str(KILLER), "--home", str(folder.home), *case.argv(folder)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as proc:
            deadline = time.monotonic() + 60
            while not (log.exists() and log.stat().st_size) and proc.poll() is None:
                assert time.monotonic() < deadline, "the command made no file-system change"
                time.sleep(0.001)
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)  # a no-op if it has already exited
            proc.wait(60)
        events = log.read_text().count("\n")
        check_after_kill(case, run, folder, before, f"after {delay * 1000:.0f} ms ({events} events; seed {seed})")
        shutil.rmtree(folder.root)


# ------------------------------------------------------------------ full and read-only folders


@pytest.fixture
def mounted(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of at most 64 files (root only; skipped otherwise)."""
    with tmpfs(tmp_path / "mnt", "256k", inodes=64) as folder:
        yield folder


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder`` (hidden ones too) with its mode and content."""
    out = {}
    for name in files_in(folder):
        path = folder / name
        if path.is_file():
            out[name] = (path.stat().st_mode, path.read_bytes())
    return out


def _save(store: FileKeyStore, name: str, *, overwrite: bool = False) -> None:
    key = generate_private_key()
    store.save(name, key, KeyMetadata.for_key(name, key), passphrase=PASS.encode(), overwrite=overwrite)


def _refusals(store: FileKeyStore, keyid: str) -> list[tuple[str, Callable[[], object]]]:
    meta = store.metadata("k")
    meta.label = "changed"
    key = store.load("k", passphrase=PASS.encode())
    return [
        ("save a new key", lambda: _save(store, "second")),
        ("replace the key", lambda: _save(store, "k", overwrite=True)),
        ("re-encrypt the key", lambda: store.save("k", key, meta, passphrase=NEW.encode(), overwrite=True)),
        ("update its metadata", lambda: store.update_metadata(meta)),
    ]


def _assert_refused(action: Callable[[], object], what: str, folder: Path, problem: str) -> None:
    with pytest.raises(KeyStoreError) as caught:
        action()
    error = caught.value
    assert error.reason is Reason.KEY_STORE_ERROR, (what, error.reason)
    assert problem in error.detail and str(folder) in error.detail, (what, error.detail)
    assert "\n" not in error.detail and PASS not in error.detail and NEW not in error.detail, (what, error.detail)


def _assert_all_refused(
    mounted: Path, store: FileKeyStore, keyid: str, refusals: list[tuple[str, Callable[[], object]]], problem: str
) -> None:
    """Each of ``refusals`` is refused (:func:`_assert_refused`) and leaves ``mounted`` as it was (no partial
    or temporary file, nothing replaced); afterwards key ``k`` of ``store`` still loads as ``keyid``."""
    before = snapshot(mounted)
    for what, action in refusals:
        _assert_refused(action, what, store.root, problem)
        assert snapshot(mounted) == before, what
    assert jwk_thumbprint(store.load("k", passphrase=PASS.encode())) == keyid


def test_file_store_on_a_full_disk(mounted: Path) -> None:
    store = FileKeyStore(mounted / "keys")
    _save(store, "k")
    keyid = store.metadata("k").keyid
    fill(mounted)
    _assert_all_refused(mounted, store, keyid, _refusals(store, keyid), "No space left on device")


def _leave_free_inodes(folder: Path, count: int) -> None:
    """Create empty files until only ``count`` more can be created on this file system."""
    i = 0
    assert os.statvfs(folder).f_ffree < 100, "mount the tmpfs with nr_inodes"
    while os.statvfs(folder).f_ffree > count:
        (folder / f"inode-{i}").touch()
        i += 1


def test_file_store_when_only_part_of_the_write_fits(mounted: Path) -> None:
    """One free inode: the new key file is staged, its metadata cannot be. The staged key must go,
    and the key in place must stay the old one."""
    store = FileKeyStore(mounted / "keys")
    _save(store, "k")
    keyid = store.metadata("k").keyid
    _leave_free_inodes(mounted, 1)
    _assert_all_refused(mounted, store, keyid, _refusals(store, keyid)[:3], "No space left on device")


def test_file_store_on_a_read_only_folder(mounted: Path) -> None:
    store = FileKeyStore(mounted / "keys")
    _save(store, "k")
    keyid = store.metadata("k").keyid
    remount_read_only(mounted)
    refusals = [*_refusals(store, keyid), ("delete the key", lambda: store.delete("k"))]
    _assert_all_refused(mounted, store, keyid, refusals, "Read-only file system")
    assert [m.name for m in store.list()] == ["k"]


def test_keytools_when_only_part_of_the_write_fits(mounted: Path, run: Callable[..., Result]) -> None:
    """The CLI over the same half-full folder: one line naming the folder and the problem, exit 1."""
    folder = make_folder(mounted / "f")
    keyid = _generate(run, folder)
    ok(run, folder, *_backup_args(folder, "json"))
    _leave_free_inodes(mounted, 1)
    before = snapshot(mounted)
    commands: list[list[str | Path]] = [
        ["generate", "--name", "k", "--force", "--passphrase-file", folder.pass_file(PASS)],
        [
            "change-passphrase",
            "--name",
            "k",
            "--passphrase-file",
            folder.pass_file(PASS),
            "--new-passphrase-file",
            folder.pass_file(NEW),
        ],
        [
            "restore",
            folder.backups / "k.json",
            "--name",
            "k",
            "--force",
            "--backup-passphrase-file",
            folder.pass_file(BACKUP),
            "--passphrase-file",
            folder.pass_file(NEW),
        ],
    ]
    for command in commands:
        result = run(folder, *command)
        line = result.error_line()  # exactly one line, no traceback
        assert result.code == 1 and result.out == "", (command, result)
        assert f"in {folder.keys}: No space left on device" in line, (command, line)
        assert snapshot(mounted) == before, command
    assert loads(folder, "k", PASS) == keyid


def test_a_change_cut_short_reads_right_from_a_read_only_folder(tmp_path: Path, run: Callable[..., Result]) -> None:
    """Killed between moving the new key file and its metadata, then the folder becomes read-only:
    the pending metadata cannot be moved into place, and is read from where it is."""
    with tmpfs(tmp_path / "mnt", "256k") as mnt:
        template = make_folder(mnt / "template")
        keyid = _generate(run, template)
        complete = copy(template, mnt / "complete")
        log = tmp_path / "complete.log"
        killed_run(complete, _change_argv(None)(complete), 0, log)
        events = log.read_text().splitlines()
        last_move = max(n for n, e in enumerate(events, 1) if ".pending -> " in e)  # pending -> k.json
        folder = copy(template, mnt / "cut")
        assert killed_run(folder, _change_argv(None)(folder), last_move, tmp_path / "cut.log") == -signal.SIGKILL
        remount_read_only(mnt)
        assert [p.name.endswith(".pending") for p in folder.keys.iterdir() if p.name.startswith(".")] == [True]
        assert loads(folder, "k", None) == keyid  # the new, unencrypted key with its new metadata
        assert folder.store.metadata("k").encrypted is False
