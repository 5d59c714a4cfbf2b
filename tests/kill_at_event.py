"""Run keytools and SIGKILL it at its N-th file-system change: ``python tests/kill_at_event.py ARGS``.

Used by tests/test_faults_keyfiles.py to stop a command deterministically at
every critical moment, not at random ones. A ``sys.addaudithook`` hook sees
the audit events (https://docs.python.org/3/library/audit_events.html) raised
*before* each operation and counts those that change files under the folders
named in ``$DFT_WATCH`` (``os.pathsep``-separated):

* ``open`` for writing (a mode with ``w``, ``a``, ``x`` or ``+``; for
  ``os.open`` the flags ``O_WRONLY``, ``O_RDWR``, ``O_CREAT``, ``O_TRUNC``,
  ``O_APPEND``), which includes ``tempfile.mkstemp``;
* ``os.rename`` (raised by ``os.rename`` and ``os.replace``), ``os.link``,
  ``os.remove`` (``os.remove``, ``os.unlink``), ``os.chmod``, ``os.mkdir``,
  ``os.truncate``.

(``os.fsync`` and ``os.write`` raise no audit event: data written to an open
file is not an event, so the moments enumerated are the ones between two
changes of the folder's names and modes.)

With ``$DFT_KILL_AT=N`` (1-based) the process sends itself ``SIGKILL`` when
event N is about to happen, so the operation never runs and nothing of
Python's (no ``finally``, no ``atexit``) runs either: exactly what ``kill -9``
does at that instant. Each counted event is logged, one line each (``N monotonic-time event
paths``), to ``$DFT_EVENT_LOG`` (with ``N=0`` nothing is killed: the log then lists every
event of a complete run).

The key store's PBKDF2 cost is lowered to 1,000 iterations for speed, as in
the in-process keytools tests (tests/test_keys_pkcs8.py checks the real cost).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
CHANGES = {"os.rename", "os.link", "os.remove", "os.chmod", "os.mkdir", "os.truncate"}


def _path(value: Any) -> str | None:
    if isinstance(value, int):  # an already open descriptor (os.fdopen, os.fchmod): not a new change
        return None
    try:
        return os.path.abspath(os.fsdecode(os.fspath(value)))
    except TypeError:
        return None


def _describe(event: str, args: tuple[Any, ...]) -> tuple[str, list[str]] | None:
    """``(what, paths)`` if ``event`` changes the file system, else ``None``."""
    if event == "open":
        path, mode, flags = args
        if mode is not None:
            writes = any(c in str(mode) for c in "wax+")
        else:
            writes = bool(flags & WRITE_FLAGS)
        found = _path(path)
        return (f"open({mode or flags})", [found]) if writes and found else None
    if event in CHANGES:
        count = 2 if event in ("os.rename", "os.link") else 1
        paths = [p for p in map(_path, args[:count]) if p]
        return (event, paths) if paths else None
    return None


def main() -> None:
    watch = [os.path.abspath(p) + os.sep for p in os.environ["DFT_WATCH"].split(os.pathsep) if p]
    kill_at = int(os.environ.get("DFT_KILL_AT", "0"))
    log_fd = os.open(os.environ["DFT_EVENT_LOG"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    seen = 0

    from datafold_auth.keys import pkcs8
    from keytools.cli import main as keytools_main

    pkcs8.KDF_ITERATIONS = 1000

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal seen
        found = _describe(event, args)
        if found is None or not any((p + os.sep).startswith(w) or p.startswith(w) for p in found[1] for w in watch):
            return
        seen += 1
        line = f"{seen} {time.monotonic():.6f} {found[0]} {' -> '.join(found[1])}\n"
        os.write(log_fd, line.encode())  # os.write raises no audit event
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    sys.exit(keytools_main(sys.argv[1:]))


if __name__ == "__main__":
    main()
