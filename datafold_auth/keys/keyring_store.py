"""Keys in the OS keychain through the ``keyring`` library.

Per key, two entries of the keyring service (default ``"datafold-auth"``):
``key:<name>`` holds the PKCS#8 PEM text (encrypted unless explicitly not) and
``meta:<name>`` the metadata JSON. Since keyring backends cannot enumerate
entries, the entry ``index`` holds a JSON list of the key names. There is no
locking: two processes saving or deleting keys at the same moment may race.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from typing import TypeVar

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail
from keyring.errors import KeyringError

from .errors import KeyExistsError, KeyNotFoundError, KeyStoreError
from .metadata import StoreKind, check_name
from .store import BaseKeyStore

DEFAULT_SERVICE = "datafold-auth"
_INDEX = "index"
_T = TypeVar("_T")


def keyring_status(backend: KeyringBackend | None = None) -> tuple[bool, str]:
    """Whether ``backend`` (default ``keyring.get_keyring()``) is a usable keychain, and a description.

    Usable means: a positive priority, and neither keyring's ``fail`` backend nor
    a ``chainer`` backend with nothing in its chain.
    """
    backend = backend if backend is not None else keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    try:
        priority = float(type(backend).priority)
    except Exception:  # keyring backends signal "not usable here" by raising anything from priority
        priority = 0.0
    if isinstance(backend, fail.Keyring) or (isinstance(backend, chainer.ChainerBackend) and not backend.backends):
        return False, f"keyring found no backend ({name})"
    if priority <= 0:
        return False, f"keyring backend {name} is not usable (priority {priority:g})"
    return True, f"keyring backend {name}"


class KeyringKeyStore(BaseKeyStore):
    """A :class:`~.store.KeyStore` in the OS keychain (see the module docstring).

    Args:
        service: the keyring service name under which all entries live.
        backend: the keyring backend; default ``keyring.get_keyring()``.
    """

    kind: StoreKind = "keyring"

    def __init__(self, service: str = DEFAULT_SERVICE, *, backend: KeyringBackend | None = None) -> None:
        self.service = service
        self.backend = backend if backend is not None else keyring.get_keyring()

    def __repr__(self) -> str:
        return f"KeyringKeyStore({self.service!r}, backend={type(self.backend).__name__})"

    def _call(self, action: str, func: Callable[..., _T], *args: str) -> _T:
        try:
            return func(self.service, *args)
        except KeyringError as exc:
            raise KeyStoreError(f"OS keychain error while {action}: {type(exc).__name__}: {exc}") from exc

    def _get(self, entry: str) -> str | None:
        return self._call(f"reading {entry!r}", self.backend.get_password, entry)

    def _set(self, entry: str, value: str) -> None:
        self._call(f"writing {entry!r}", self.backend.set_password, entry, value)

    def _unset(self, entry: str) -> None:
        if self._get(entry) is not None:
            self._call(f"deleting {entry!r}", self.backend.delete_password, entry)

    def location(self, name: str) -> str:
        """The keychain entry of the key."""
        return f"OS keychain, service {self.service!r}, entry 'key:{check_name(name)}'"

    def exists(self, name: str) -> bool:
        """Whether the entry ``key:<name>`` exists."""
        return self._get(f"key:{check_name(name)}") is not None

    def _names(self) -> builtins.list[str]:
        text = self._get(_INDEX)
        try:
            names = json.loads(text) if text else []
        except ValueError:
            names = None
        if not isinstance(names, builtins.list) or not all(isinstance(n, str) for n in names):
            raise KeyStoreError(f"the keychain entry {_INDEX!r} of service {self.service!r} is malformed")
        return names

    def _write(self, name: str, pem: bytes, meta_json: str, *, overwrite: bool) -> None:
        if not overwrite and self.exists(name):
            raise KeyExistsError(f"key {name!r} already exists ({self.location(name)}); refusing to overwrite it")
        self._set(f"key:{name}", pem.decode("ascii"))
        self._set(f"meta:{name}", meta_json)
        names = self._names()
        if name not in names:
            self._set(_INDEX, json.dumps(sorted([*names, name])))

    def _write_meta(self, name: str, meta_json: str) -> None:
        self._set(f"meta:{name}", meta_json)

    def _read_key(self, name: str) -> bytes:
        pem = self._get(f"key:{name}")
        if pem is None:
            raise KeyNotFoundError(f"no key named {name!r} in the OS keychain (service {self.service!r})")
        return pem.encode("utf-8")

    def _read_meta(self, name: str) -> tuple[str, str]:
        text = self._get(f"meta:{name}")
        if text is None:
            if self.exists(name):
                raise KeyStoreError(f"the metadata of key {name!r} is missing from the OS keychain")
            raise KeyNotFoundError(f"no key named {name!r} in the OS keychain (service {self.service!r})")
        return text, f"the OS keychain entry 'meta:{name}'"

    def _remove(self, name: str) -> bool:
        existed = self.exists(name)
        self._unset(f"key:{name}")
        self._unset(f"meta:{name}")
        names = self._names()
        if name in names:
            self._set(_INDEX, json.dumps([n for n in names if n != name]))
        return existed


__all__ = ["DEFAULT_SERVICE", "KeyringKeyStore", "keyring_status"]
