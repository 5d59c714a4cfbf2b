"""Helpers shared by the keytools and backup tests (no tests here).

* :func:`cli` runs ``keytools`` in-process (fast) and returns exit code, stdout, stderr;
* :func:`run_keytools` runs ``python -m keytools`` as a real process;
* :func:`tmpfs` mounts a small tmpfs (root only) for full-disk and read-only tests;
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from keytools.cli import main

ROOT = Path(__file__).resolve().parent.parent
OPENSSL = shutil.which("openssl")
SSH_KEYGEN = shutil.which("ssh-keygen")
MOUNT = shutil.which("mount")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command (apt-get install -y openssl)")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="needs ssh-keygen (apt-get install -y openssh-client)")
FAST_SCRYPT = ("--scrypt-log-n", "10")
FAST_PBKDF2 = ("--pbkdf2-iterations", "1000")
PASSPHRASE = "Zebra-\u00c5ngstr\u00f6m-7731-secret"
"""The stored keys' passphrase in these tests (NFC)."""
BACKUP_PASSPHRASE = "Backup-caf\u00e9-9902-phrase"
"""The backups' passphrase in these tests (NFC)."""


@dataclass
class Result:
    """What a keytools run produced."""

    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The single ``keytools: error:`` line of stderr (asserts there is exactly one stderr line)."""
        lines = self.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("keytools: error: "), self.err
        return lines[0]


class _NoTerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


def cli(*args: str | Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Result:
    """Run ``keytools ARGS`` in this process with no terminal and no passphrase variables."""
    for name in list(os.environ):
        if name.startswith("DATAFOLD_AUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "stdin", _NoTerminal())
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse: --help (0) or usage errors (2)
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def run_keytools(
    *args: str | Path, env: dict[str, str] | None = None, pass_fds: Sequence[int] = (), stdin: bytes | None = None
) -> Result:
    """Run ``python -m keytools ARGS`` as a process with a clean environment (no keychain, no passphrase)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_AUTH_", "DBUS_"))}
    full = {**base, "PYTHONPATH": str(ROOT), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    proc = subprocess.run(
        [sys.executable, "-m", "keytools", *map(str, args)],
        env={**full, **(env or {})},
        capture_output=True,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        pass_fds=tuple(pass_fds),
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def write_pass(path: Path, text: str) -> Path:
    """A passphrase file (first line counts), as a user would write it."""
    path.write_bytes(text.encode("utf-8") + b"\n")
    return path


def openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    """Run the real openssl command."""
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *map(str, args)], capture_output=True, check=False, timeout=120)


def files_in(folder: Path) -> list[str]:
    """Every file name under ``folder`` (recursively, sorted), including hidden temporary files."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def can_mount() -> bool:
    """Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN)."""
    return MOUNT is not None and os.geteuid() == 0


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k", inodes: int | None = None) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (at most ``inodes`` files) on ``path`` for the duration; skip the test if
    mounting is not permitted."""
    if not can_mount():
        pytest.skip("needs root to mount a small tmpfs (full-disk and read-only tests: root ignores mode bits)")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0700" + (f",nr_inodes={inodes}" if inodes else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def remount_read_only(path: Path) -> None:
    """Make a tmpfs mounted by :func:`tmpfs` read-only (root bypasses mode bits, so chmod would not do)."""
    subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, check=True)


def fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` until it has no free block left (unbuffered writes)."""
    for i, chunk in enumerate((65536, 4096, 512, 1)):
        fd = os.open(folder / f"filler-{i}", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
        finally:
            os.close(fd)
