"""Registries for tests: SQLite files in a temporary folder, or any registry URL."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import RegistryError
from ..registry import KeyRegistry, SQLiteRegistry, open_registry

MEMORY_URL = "memory://"
"""The registry URL the fixtures use unless told otherwise."""


class RegistryFactory:
    """Opens registries for one test and closes them after it.

    Args:
        make_dir: returns a new empty folder (e.g. ``tmp_path_factory.mktemp``)
            for SQLite files; called only when a SQLite file is asked for.

    Attributes:
        opened: every registry opened, oldest first.
    """

    def __init__(self, make_dir: Callable[[], Path]) -> None:
        self._make_dir = make_dir
        self.opened: list[KeyRegistry] = []

    def __call__(self, url: str | None = None, **options: Any) -> KeyRegistry:
        """Open a registry.

        Args:
            url: ``None`` for a new SQLite file in a temporary folder, else a
                registry URL: ``memory://``, ``sqlite:///abs/path.db``, or a
                scheme of an installed registry plugin.
            options: backend keyword options (e.g. ``timeout`` for SQLite).

        Raises:
            RegistryError: no installed plugin handles the URL, or it cannot be opened.
        """
        if url is None:
            registry: KeyRegistry = SQLiteRegistry(self._make_dir() / "keys.db", **options)
        else:
            registry = _open_with_retry(url, options)
        self.opened.append(registry)
        return registry

    def close(self) -> None:
        """Close every registry opened (latest first)."""
        while self.opened:
            self.opened.pop().close()


OPEN_ATTEMPTS = 6
"""How often a registry URL is tried when SQLite reports the file locked (see :func:`_open_with_retry`)."""


def _open_with_retry(url: str, options: dict[str, Any]) -> KeyRegistry:
    """``open_registry(url)``, tried again after a short wait while SQLite says "database is locked".

    Several pytest-xdist workers opening one new SQLite file at once race to
    switch it to WAL mode, and SQLite answers that switch with "database is
    locked" at once instead of waiting out its busy timeout.
    """
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return open_registry(url, **options)
        except RegistryError as exc:
            if "database is locked" not in str(exc) or attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["MEMORY_URL", "OPEN_ATTEMPTS", "RegistryFactory"]
