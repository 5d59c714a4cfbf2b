"""Keys as files: ``<root>/<name>.pem`` (PKCS#8) beside ``<root>/<name>.json`` (metadata).

The root folder is kept at mode 0700 and every file is written with mode 0600,
atomically (temporary file in the same folder, flush, fsync, rename, fsync of
the folder; see :mod:`.fsutil`). Key and metadata are both fully written to
temporary files before either is moved into place, so a full disk or a
read-only folder changes nothing. A key file that group or others may access
is refused on read.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import platformdirs

from .errors import KeyExistsError, KeyNotFoundError, KeyStoreError
from .fsutil import commit, discard, ensure_private_dir, fsync_dir, read_private_file, stage
from .metadata import NAME_RE, StoreKind, check_name
from .store import BaseKeyStore

HOME_ENV = "DATAFOLD_AUTH_HOME"
"""Environment variable naming the data folder; keys then live in ``$DATAFOLD_AUTH_HOME/keys``."""


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
        ensure_private_dir(self.root)

    def _write(self, name: str, pem: bytes, meta_json: str, *, overwrite: bool) -> None:
        """Stage key and metadata (both fsynced) before moving either into place.

        A full disk or a read-only folder thus fails before anything changes;
        an existing key is never replaced unless ``overwrite``.
        """
        self._ensure_root()
        key_path, meta_path = self._key_path(name), self._meta_path(name)
        if not overwrite and os.path.lexists(key_path):
            raise KeyExistsError(f"key {name!r} already exists ({key_path}); refusing to overwrite it")
        staged: list[Path] = []
        try:
            staged.append(stage(key_path, pem))
            staged.append(stage(meta_path, meta_json.encode("utf-8")))
            try:
                commit(staged[0], key_path, overwrite=overwrite)
            except FileExistsError:
                raise KeyExistsError(f"key {name!r} already exists ({key_path}); refusing to overwrite it") from None
            try:
                commit(staged[1], meta_path, overwrite=True)
            except OSError:
                if not overwrite:
                    key_path.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise KeyStoreError(f"cannot write key {name!r} in {self.root}: {exc.strerror or exc}") from exc
        finally:
            for tmp in staged:
                discard(tmp)

    def _write_meta(self, name: str, meta_json: str) -> None:
        meta_path = self._meta_path(name)
        try:
            tmp = stage(meta_path, meta_json.encode("utf-8"))
            try:
                commit(tmp, meta_path, overwrite=True)
            finally:
                discard(tmp)
        except OSError as exc:
            raise KeyStoreError(f"cannot write metadata of key {name!r}: {exc.strerror or exc}") from exc

    def _read_key(self, name: str) -> bytes:
        path = self._key_path(name)
        try:
            return read_private_file(path)
        except FileNotFoundError:
            raise KeyNotFoundError(f"no key named {name!r} in {self.root}") from None

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
                fsync_dir(self.root)
        except OSError as exc:
            raise KeyStoreError(f"cannot delete key {name!r}: {exc.strerror}") from exc
        return existed


__all__ = ["HOME_ENV", "FileKeyStore", "default_root"]
