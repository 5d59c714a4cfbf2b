"""Keys as files: ``<root>/<name>.pem`` (PKCS#8) beside ``<root>/<name>.json`` (metadata).

The root folder is kept at mode 0700 and every file is written with mode 0600,
atomically (temporary file in the same folder, flush, fsync, rename, fsync of
the folder; see :mod:`.fsutil`). Key and metadata are both fully written to
temporary files before either is moved into place, so a full disk or a
read-only folder changes nothing. A key file that group or others may access
is refused on read.

Key and metadata are two files, and no rename moves two files at once. So
the new metadata first gets a name that holds the SHA-256 of the new key
file, ``.<name>.json.<hex>.pending``; then the key file is moved into place,
then the metadata. A process killed between the two moves leaves the new key
beside the old metadata and the pending file: whoever reads the key next
finds the pending file whose digest matches the key file and completes the
change. A pending file whose digest does not match (killed before the key
was moved) is ignored, and removed by the next write of that key. So after a
``kill -9`` at any moment the key is the complete old one with its old
metadata or the complete new one with its new metadata.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import os
import re
import stat
from pathlib import Path

import platformdirs

from .errors import KeyExistsError, KeyNotFoundError, KeyStoreError
from .fsutil import POSIX, commit, discard, ensure_private_dir, fsync_dir, read_private_file, stage
from .metadata import NAME_RE, StoreKind, check_name
from .store import BaseKeyStore

HOME_ENV = "DATAFOLD_AUTH_HOME"
"""Environment variable naming the data folder; keys then live in ``$DATAFOLD_AUTH_HOME/keys``."""


def default_root() -> Path:
    """``$DATAFOLD_AUTH_HOME/keys`` if that variable is set, else ``<user data dir>/datafold-auth/keys``."""
    home = os.environ.get(HOME_ENV)
    return Path(home or platformdirs.user_data_dir("datafold-auth")) / "keys"


_PENDING_SUFFIX = ".pending"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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

    def _pending(self, name: str) -> list[Path]:
        """The metadata files waiting for their key file (see the module docstring).

        Only names of the exact form ``.<name>.json.<64 hex digits>.pending``: key names
        may hold dots, and ``.a.json.*.pending`` would also match the pending files of
        key ``a.json.b`` (``.a.json.b.json.<hex>.pending``), which a write or a delete
        of key ``a`` would then remove.
        """
        prefix = f".{check_name(name)}.json."
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyStoreError(f"cannot list {self.root}: {exc.strerror}") from exc
        return sorted(
            self.root / found
            for found in names
            if found.startswith(prefix)
            and found.endswith(_PENDING_SUFFIX)
            and _SHA256_HEX.fullmatch(found[len(prefix) : -len(_PENDING_SUFFIX)])
        )

    def _trusted_pending(self, path: Path) -> bool:
        """Whether ``path`` may be promoted to the metadata: a regular file (not a symlink),
        on POSIX owned by this user and closed to group and others, as :func:`stage` writes it.

        Anything else (planted in a folder others may write, or a symlink) is ignored.
        """
        try:
            info = os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode):
            return False
        return not POSIX or (info.st_uid == os.geteuid() and not stat.S_IMODE(info.st_mode) & 0o077)

    def _settle(self, name: str) -> Path:
        """Complete a change a killed writer left half done; return the metadata file to read.

        That is ``<name>.json``, or, if the pending metadata of the key file in
        place cannot be moved (a read-only folder), the pending file itself.
        """
        meta_path = self._meta_path(name)
        pending = self._pending(name)
        if not pending:
            return meta_path
        try:
            digest = hashlib.sha256(self._key_path(name).read_bytes()).hexdigest()
        except FileNotFoundError:
            return meta_path
        except OSError as exc:
            raise KeyStoreError(f"cannot read key file {self._key_path(name)}: {exc.strerror}") from exc
        match = self.root / f".{name}.json.{digest}.pending"
        if match not in pending or not self._trusted_pending(match):
            return meta_path
        try:
            os.replace(match, meta_path)
            fsync_dir(self.root)
        except FileNotFoundError:  # completed by another reader meanwhile
            pass
        except OSError:
            return match
        return meta_path

    def _write(self, name: str, pem: bytes, meta_json: str, *, overwrite: bool) -> None:
        """Stage key and metadata (both fsynced) before moving either into place.

        A full disk or a read-only folder thus fails before anything changes;
        an existing key is never replaced unless ``overwrite``; a kill at any
        moment leaves the old or the new key with its metadata (module docstring).
        """
        self._ensure_root()
        key_path, meta_path = self._key_path(name), self._meta_path(name)
        try:
            current = self._settle(name)
            for stale in self._pending(name):
                if stale != current:
                    os.unlink(stale)
        except OSError as exc:
            raise KeyStoreError(f"cannot write key {name!r} in {self.root}: {exc.strerror or exc}") from exc
        if not overwrite and os.path.lexists(key_path):
            raise KeyExistsError(f"key {name!r} already exists ({key_path}); refusing to overwrite it")
        staged: list[Path] = []
        pending: Path | None = None
        key_moved = False
        try:
            staged.append(stage(key_path, pem))
            staged.append(stage(meta_path, meta_json.encode("utf-8")))
            pending = self.root / f".{name}.json.{hashlib.sha256(pem).hexdigest()}.pending"
            os.replace(staged.pop(), pending)
            fsync_dir(self.root)
            try:
                commit(staged[0], key_path, overwrite=overwrite)
            except FileExistsError:
                raise KeyExistsError(f"key {name!r} already exists ({key_path}); refusing to overwrite it") from None
            key_moved = True
            try:
                os.replace(pending, meta_path)
            except FileNotFoundError:  # another process completed (reader) or undid (delete) the change meanwhile
                self._after_pending_vanished(name, pem, meta_json)
            except OSError:
                if not overwrite:
                    key_path.unlink(missing_ok=True)
                    key_moved = False
                raise
            pending = None
            fsync_dir(self.root)
        except OSError as exc:
            raise KeyStoreError(f"cannot write key {name!r} in {self.root}: {exc.strerror or exc}") from exc
        finally:
            for tmp in staged:
                discard(tmp)
            if pending is not None and not key_moved:  # else readers complete the change (_settle)
                discard(pending)

    def _after_pending_vanished(self, name: str, pem: bytes, meta_json: str) -> None:
        """Our key file is in place but our pending metadata is gone: make sure the key has metadata.

        A reader that completed the change (:meth:`_settle`) leaves our metadata in
        place: nothing to do. A ``delete`` (or a write of the same key by another
        process) that ran between our two moves may have removed it: if the key file
        is still ours, its metadata is written now; otherwise the other writer's
        key is in place and it owns the metadata.

        Raises:
            OSError: the metadata cannot be written.
        """
        meta_path = self._meta_path(name)
        try:
            if meta_path.read_bytes() == meta_json.encode("utf-8"):
                return
        except FileNotFoundError:
            pass
        try:
            ours = self._key_path(name).read_bytes() == pem
        except FileNotFoundError:
            ours = False
        if not ours:
            raise FileExistsError(errno.EEXIST, "key changed by another process meanwhile", str(meta_path))
        tmp = stage(meta_path, meta_json.encode("utf-8"))
        try:
            commit(tmp, meta_path, overwrite=True)
        finally:
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
            raise KeyStoreError(f"cannot write metadata of key {name!r} in {self.root}: {exc.strerror or exc}") from exc

    def _read_key(self, name: str) -> bytes:
        path = self._key_path(name)
        try:
            return read_private_file(path)
        except FileNotFoundError:
            raise KeyNotFoundError(f"no key named {name!r} in {self.root}") from None

    def _read_meta(self, name: str) -> tuple[str, str]:
        path = self._settle(name)
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
            for path in (self._key_path(name), self._meta_path(name), *self._pending(name)):
                path.unlink(missing_ok=True)
            if existed:
                fsync_dir(self.root)
        except OSError as exc:
            raise KeyStoreError(f"cannot delete key {name!r} in {self.root}: {exc.strerror}") from exc
        return existed


__all__ = ["HOME_ENV", "FileKeyStore", "default_root"]
