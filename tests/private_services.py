"""Private PostgreSQL and Redis servers for fault tests: started, stopped, killed and frozen at will.

The shared servers (127.0.0.1:5432 and :6379, see tests/backends.py) are used
by other tests and are never touched here. Each :class:`PrivatePostgres` is a
fresh cluster (``initdb``) in a temporary folder owned by the ``postgres``
user, listening on a free loopback port; each :class:`PrivateRedis` is a
``redis-server`` child process without persistence. Both are real servers:
stopping one is a real outage for the client libraries.

When the binaries are missing the tests are skipped with the reason
(scripts/start-services.sh and the Debian packages ``postgresql`` and
``redis-server`` provide them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STARTUP_SECONDS = 30.0
"""How long a server may take to accept connections (generous: CI machines are slow)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl``, or ``None``."""
    found = []
    for path in glob.glob("/usr/lib/postgresql/*/bin"):
        version = Path(path).parent.name
        if (
            version.isdigit()
            and os.access(Path(path) / "initdb", os.X_OK)
            and os.access(Path(path) / "pg_ctl", os.X_OK)
        ):
            found.append((int(version), Path(path)))
    return max(found)[1] if found else None


class PrivatePostgres:
    """A PostgreSQL cluster of our own on ``127.0.0.1:<port>`` (trust authentication, user ``postgres``).

    ``initdb`` refuses to run as root, so as root every command runs as the
    ``postgres`` user (``runuser``), in a temporary folder given to that user.
    """

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dft-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as_postgres, str(self.bindir / tool), *args], capture_output=True, timeout=120, check=False
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stderr.decode(errors='replace')}\n{log}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-k {self.folder} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _accepts(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on port {self.port} does not accept connections")
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>`` (``smart``, ``fast`` or ``immediate``) and wait until it is down."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """Whether the port accepts connections."""
        return _accepts(self.port)

    def close(self) -> None:
        """Stop the server if it runs and remove its folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A ``redis-server`` child process on ``127.0.0.1:<port>``, without persistence.

    :meth:`kill` is ``SIGKILL``; :meth:`freeze`/:meth:`thaw` are ``SIGSTOP``/``SIGCONT``
    (the port still accepts TCP connections, from the kernel's backlog, but nothing answers).
    """

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dft-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers PING."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._pong():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def _pong(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.settimeout(0.5)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def kill(self) -> None:
        """``SIGKILL`` the server and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)

    def freeze(self) -> None:
        """``SIGSTOP``: the server hangs (connections stay open, nothing is answered)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """``SIGCONT`` after :meth:`freeze`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Kill the server and remove its folder."""
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running :class:`PrivatePostgres`; skipped when the PostgreSQL server binaries are missing."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl in /usr/lib/postgresql/*/bin) are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running initdb as root needs runuser (util-linux) to switch to the postgres user")
    server = PrivatePostgres(bindir)
    try:
        server.start()
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A running :class:`PrivateRedis`; skipped when ``redis-server`` is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    server = PrivateRedis(binary)
    try:
        server.start()
        yield server
    finally:
        server.close()


__all__ = ["PrivatePostgres", "PrivateRedis", "free_port", "postgres_bindir", "private_postgres", "private_redis"]
