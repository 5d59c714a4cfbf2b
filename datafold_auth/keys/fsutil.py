"""Private files written atomically: what the file store and the backup writers share.

Rules (POSIX; on Windows the mode bits are not enforced and only atomicity holds):

* A secret file is created with mode 0600 (``tempfile.mkstemp``) in the
  destination folder, written, flushed and ``fsync``-ed, then moved into place
  with one ``link`` (no overwrite: fails if the name exists) or ``rename``
  (overwrite), and the folder is ``fsync``-ed. A reader never sees a partial
  file, and a failure (full disk, read-only folder, ...) leaves no file behind.
* :func:`stage` and :func:`commit` split that in two, so that several files
  can be fully written before any is moved into place (the file store writes
  key and metadata that way), and so that a staged file can be read back from
  disk and verified before it gets its real name (backups).
* A temporary file left by a writer that was killed (``kill -9``, power loss)
  is never read; :func:`stage` removes those of the same destination before
  staging a new one.
* A folder that holds keys is kept at mode 0700 (:func:`ensure_private_dir`).
* :func:`read_private_file` refuses a file that group or others may access,
  with the ``chmod`` that fixes it in the message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shlex
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import KeyExistsError, KeyStoreError

POSIX = os.name == "posix"


def fsync_dir(folder: Path) -> None:
    """``fsync`` a folder so that a rename or link in it survives a crash (no-op off POSIX)."""
    if POSIX:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_private_dir(folder: Path) -> None:
    """Create ``folder`` (and its parents) if needed and set it to mode 0700.

    Raises:
        KeyStoreError: it cannot be created or its mode cannot be set (the OS reason is given).
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if POSIX and stat.S_IMODE(folder.stat().st_mode) != 0o700:
            os.chmod(folder, 0o700)
    except OSError as exc:
        raise KeyStoreError(f"cannot create private folder {folder}: {exc.strerror}") from exc


_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")
"""The random part of a :func:`tempfile.mkstemp` name."""


def remove_stale_temps(path: Path) -> None:
    """Remove the temporary files :func:`stage` left beside ``path`` in a process that died (best effort).

    Only names of the exact form ``.<name>.<8 random characters>.tmp`` are removed.
    Two processes writing the same destination at once are not supported anyway
    (the last rename wins); here the earlier one may then fail, never corrupt a file.
    """
    prefix = f".{path.name}."
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(".tmp") and _TEMP_RANDOM.fullmatch(name[len(prefix) : -4]):
            with contextlib.suppress(OSError):
                os.unlink(path.parent / name)


def stage(path: Path, data: bytes | bytearray) -> Path:
    """Write ``data`` to a new mode-0600 temporary file beside ``path``, fsync it, return its path.

    The temporary name is ``.<name>.<random>.tmp``; those a killed process left
    for the same ``path`` are removed first (:func:`remove_stale_temps`). On
    failure nothing is left.

    Raises:
        OSError: from the OS (``ENOSPC``, ``EROFS``, ``EACCES``, ...).
    """
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def commit(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Give the staged file ``tmp`` its final name ``path``, atomically; ``tmp`` is gone afterwards.

    Without ``overwrite`` this is a hard link (which fails if ``path`` exists)
    followed by removing ``tmp``; on file systems without hard links it falls
    back to check-then-rename, which has a small race window.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        OSError: from the OS.
    """
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
                    raise
                if os.path.lexists(path):
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)


def discard(tmp: Path) -> None:
    """Remove a staged file that will not be committed (missing is fine)."""
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def write_private_file(
    path: Path,
    data: bytes | bytearray,
    *,
    overwrite: bool = False,
    verify: Callable[[Path], None] | None = None,
) -> None:
    """Write a secret file atomically with mode 0600 (see the module docstring).

    Args:
        path: the destination; its folder must exist.
        data: the content.
        overwrite: replace an existing file; otherwise an existing file is an error.
        verify: called with the path of the fully written temporary file before
            it is moved into place; an exception from it aborts the write (the
            temporary file is removed and the exception propagates).

    Raises:
        KeyExistsError: ``path`` exists and ``overwrite`` is false.
        KeyStoreError: the OS refused (full disk, read-only folder, no such folder, ...).
    """
    if not overwrite and os.path.lexists(path):
        raise KeyExistsError(f"{path} already exists; refusing to overwrite it")
    try:
        tmp = stage(path, data)
    except OSError as exc:
        raise KeyStoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        if verify is not None:
            verify(tmp)
        commit(tmp, path, overwrite=overwrite)
    except FileExistsError:
        raise KeyExistsError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyStoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        discard(tmp)


def check_private_mode(mode: int, path: Path) -> None:
    """Refuse a key file that group or others may access (POSIX), naming the fix.

    Raises:
        KeyStoreError: ``mode & 0o077`` is not zero.
    """
    if POSIX and stat.S_IMODE(mode) & 0o077:
        raise KeyStoreError(
            f"key file {path} has mode {stat.S_IMODE(mode):04o}: group or others can access it; refusing to "
            f"use it. Fix: chmod 600 {shlex.quote(str(path))}"
        )


def read_private_file(path: Path) -> bytes:
    """Read a key file after checking that only its owner may access it.

    Raises:
        FileNotFoundError: no such file (left to the caller to word).
        KeyStoreError: loose mode (see :func:`check_private_mode`) or another OS error.
    """
    try:
        with open(path, "rb") as file:
            check_private_mode(os.fstat(file.fileno()).st_mode, path)
            return file.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyStoreError(f"cannot read {path}: {exc.strerror}") from exc


__all__ = [
    "check_private_mode",
    "commit",
    "discard",
    "ensure_private_dir",
    "fsync_dir",
    "read_private_file",
    "remove_stale_temps",
    "stage",
    "write_private_file",
]
