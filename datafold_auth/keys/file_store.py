"""Keys as files: ``<root>/<name>.pem`` (PKCS#8) beside ``<root>/<name>.json`` (metadata).

The root folder is kept at mode 0700 and every file is written with mode 0600,
atomically (temporary file in the same folder, flush, fsync, rename, fsync of
the folder). A key file that group or others may access is refused on read.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shlex
import stat
import tempfile
from pathlib import Path

import platformdirs

from .errors import KeyExistsError, KeyNotFoundError, KeyStoreError
from .metadata import NAME_RE, StoreKind, check_name
from .store import BaseKeyStore

HOME_ENV = "DATAFOLD_AUTH_HOME"
"""Environment variable naming the data folder; keys then live in ``$DATAFOLD_AUTH_HOME/keys``."""

_POSIX = os.name == "posix"


def default_root() -> Path:
    """``$DATAFOLD_AUTH_HOME/keys`` if that variable is set, else ``<user data dir>/datafold-auth/keys``."""
    home = os.environ.get(HOME_ENV)
    return Path(home or platformdirs.user_data_dir("datafold-auth")) / "keys"


class FileKeyStore(BaseKeyStore):
    """A :class:`~.store.KeyStore` in a folder of files (see the module docstring).

    Args:
        root: the folder holding the key files, created on first save and set to
            mode 0700 on every save; default :func:`default_root`.

    Errors: :class:`KeyStoreError` for I/O failures, with the path and the OS reason.
    """

    kind: StoreKind = "file"

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self.root)!r})"

    def _key_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.pem"

    def _meta_path(self, name: str) -> Path:
        return self.root / f"{check_name(name)}.json"

    def location(self, name: str) -> str:
        """The path of the key file."""
        return str(self._key_path(name))

    def exists(self, name: str) -> bool:
        """Whether ``<root>/<name>.pem`` exists."""
        return os.path.lexists(self._key_path(name))

    def _names(self) -> builtins.list[str]:
        if not self.root.is_dir():
            return []
        return [p.stem for p in self.root.glob("*.pem") if NAME_RE.fullmatch(p.stem)]

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            if _POSIX and stat.S_IMODE(self.root.stat().st_mode) != 0o700:
                os.chmod(self.root, 0o700)
        except OSError as exc:
            raise KeyStoreError(f"cannot create key folder {self.root}: {exc.strerror}") from exc

    def _sync_root(self) -> None:
        if _POSIX:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _atomic_write(self, path: Path, data: bytes, *, overwrite: bool) -> None:
        """Write ``data`` to ``path`` (mode 0600) atomically; without ``overwrite``, fail if it exists."""
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                os.link(tmp, path)  # atomic and fails if ``path`` exists
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._sync_root()

    def _write(self, name: str, pem: bytes, meta_json: str, *, overwrite: bool) -> None:
        self._ensure_root()
        key_path = self._key_path(name)
        try:
            try:
                self._atomic_write(key_path, pem, overwrite=overwrite)
            except FileExistsError:
                raise KeyExistsError(f"key {name!r} already exists ({key_path}); refusing to overwrite it") from None
            try:
                self._atomic_write(self._meta_path(name), meta_json.encode("utf-8"), overwrite=True)
            except OSError:
                if not overwrite:
                    key_path.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise KeyStoreError(f"cannot write key {name!r} in {self.root}: {exc.strerror}") from exc

    def _write_meta(self, name: str, meta_json: str) -> None:
        try:
            self._atomic_write(self._meta_path(name), meta_json.encode("utf-8"), overwrite=True)
        except OSError as exc:
            raise KeyStoreError(f"cannot write metadata of key {name!r}: {exc.strerror}") from exc

    def _read_key(self, name: str) -> bytes:
        path = self._key_path(name)
        try:
            with open(path, "rb") as file:
                mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
                if _POSIX and mode & 0o077:
                    raise KeyStoreError(
                        f"key file {path} has mode {mode:04o}: group or others can access it; refusing to "
                        f"use it. Fix: chmod 600 {shlex.quote(str(path))}"
                    )
                return file.read()
        except FileNotFoundError:
            raise KeyNotFoundError(f"no key named {name!r} in {self.root}") from None
        except OSError as exc:
            raise KeyStoreError(f"cannot read key file {path}: {exc.strerror}") from exc

    def _read_meta(self, name: str) -> tuple[str, str]:
        path = self._meta_path(name)
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except FileNotFoundError:
            if self.exists(name):
                raise KeyStoreError(f"metadata file {path} of key {name!r} is missing") from None
            raise KeyNotFoundError(f"no key named {name!r} in {self.root}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyStoreError(f"cannot read metadata file {path}") from exc

    def _remove(self, name: str) -> bool:
        existed = self.exists(name)
        try:
            for path in (self._key_path(name), self._meta_path(name)):
                path.unlink(missing_ok=True)
            if existed:
                self._sync_root()
        except OSError as exc:
            raise KeyStoreError(f"cannot delete key {name!r}: {exc.strerror}") from exc
        return existed


__all__ = ["HOME_ENV", "FileKeyStore", "default_root"]
