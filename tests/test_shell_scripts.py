"""The OpenSSL shell scripts (keytools/openssl/): shared helpers, packaging, help and shellcheck.

The other ``test_shell_*`` modules import the helpers below. Every script is
run for real under both ``dash`` and ``bash`` (the ``shell`` parameter), with
the real ``openssl`` and ``curl``, against the example apps started as
subprocesses on loopback (:class:`ExampleServer`).
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from keytools.commands.scripts import scripts_dir

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "keytools" / "openssl"
NAMES = ["generate", "public", "sign-request", "register", "request", "setup"]
LIB = SCRIPTS / "datafold-lib.sh"
PASSPHRASE = "Zebra-\u00c5ngstr\u00f6m-7731-secret"
"""An NFC passphrase with non-ASCII characters: keytools and openssl see the same UTF-8 bytes."""

SHELLS = ["dash", "bash"]
OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
SHELLCHECK = shutil.which("shellcheck")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

needs_tools = pytest.mark.skipif(
    OPENSSL is None or CURL is None or any(shutil.which(s) is None for s in SHELLS),
    reason="needs openssl, curl, dash and bash (sh scripts/install-system-deps.sh)",
)


def script(name: str) -> Path:
    """The path of ``datafold-<name>``."""
    return SCRIPTS / f"datafold-{name}"


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process environment without DATAFOLD_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_", "DBUS_"))}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env.update(extra or {})
    return env


def run(
    shell: str,
    name: str,
    *args: str | Path,
    env: dict[str, str] | None = None,
    stdin: bytes | None = None,
    pass_fds: Sequence[int] = (),
    timeout: float = 90,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``<shell> datafold-<name> args...`` and return the finished process (text output)."""
    shell_path = shutil.which(shell)
    assert shell_path is not None, f"{shell} is not installed"
    proc = subprocess.run(
        [shell_path, str(script(name)), *map(str, args)],
        env=clean_env(env),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        pass_fds=tuple(pass_fds),
        timeout=timeout,
        cwd=cwd,
        check=False,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """Assert success; return stdout."""
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def error_line(proc: subprocess.CompletedProcess[str], name: str, status: int) -> str:
    """Assert exit ``status`` and exactly one ``datafold-<name>: error: ...`` line on stderr; return it."""
    assert proc.returncode == status, (
        f"exit {proc.returncode} != {status}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"datafold-{name}: error: "), proc.stderr
    return lines[0]


def write_pass_file(path: Path, passphrase: str = PASSPHRASE) -> Path:
    path.write_bytes(passphrase.encode("utf-8") + b"\n")
    path.chmod(0o600)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExampleServer:
    """``examples/<app>_app.py`` run as a subprocess on a free loopback port (SQLite registry in ``work``)."""

    def __init__(self, app: str, work: Path) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.register_url = f"{self.url}/register/keys"
        self.log = work / f"{app}-server.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "examples" / f"{app}_app.py"), "--port", str(self.port), "--db",
                 str(work / f"{app}-keys.db")],
                stdout=log, stderr=subprocess.STDOUT, env=clean_env(),
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{app} example exited: {self.log.read_text()}")
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{app} example did not start: {self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextmanager
def example_server(app: str, work: Path) -> Iterator[ExampleServer]:
    server = ExampleServer(app, work)
    try:
        yield server
    finally:
        server.stop()


def tool_dir(where: Path, *, without: Sequence[str]) -> Path:
    """A folder of symbolic links to every command in the usual PATH except ``without``."""
    where.mkdir(parents=True, exist_ok=True)
    for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
        if not os.path.isdir(folder):
            continue
        for entry in os.listdir(folder):
            link = where / entry
            if entry in without or link.exists() or link.is_symlink():
                continue
            link.symlink_to(os.path.join(folder, entry))
    return where


# --- tests: packaging, help, lint ------------------------------------------------


def test_keytools_scripts_prints_the_installed_folder() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "keytools", "scripts"], capture_output=True, text=True, env=clean_env(), check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == SCRIPTS == scripts_dir()
    listed = subprocess.run(
        [sys.executable, "-m", "keytools", "scripts", "--list"], capture_output=True, text=True, env=clean_env(),
        check=False,
    )  # fmt: skip
    assert listed.stdout.split() == sorted(str(script(n)) for n in NAMES)
    one = subprocess.run(
        [sys.executable, "-m", "keytools", "scripts", "sign-request"], capture_output=True, text=True,
        env=clean_env(), check=False,
    )  # fmt: skip
    assert one.stdout.strip() == str(script("sign-request"))
    bad = subprocess.run(
        [sys.executable, "-m", "keytools", "scripts", "nope"], capture_output=True, text=True, env=clean_env(),
        check=False,
    )  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith("keytools: error: no script named 'nope'")


def test_scripts_are_executable_posix_sh_and_the_library_is_not() -> None:
    for name in NAMES:
        path = script(name)
        assert path.read_text().startswith("#!/bin/sh\n"), path
        assert stat.S_IMODE(path.stat().st_mode) & 0o111 == 0o111, f"{path} is not executable"
    assert stat.S_IMODE(LIB.stat().st_mode) & 0o111 == 0
    assert sorted(p.name for p in SCRIPTS.iterdir()) == sorted([LIB.name, *(script(n).name for n in NAMES)])


def test_setup_cfg_ships_the_scripts_as_package_data() -> None:
    text = (ROOT / "setup.cfg").read_text()
    # keytools/openssl/ has no __init__.py: it is found as a namespace package
    # (find_namespace:) and all of its files are its package data.
    assert "packages = find_namespace:" in text
    assert "keytools.openssl = *" in text


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("name", NAMES)
def test_help(shell: str, name: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    for flag in ("-h", "--help"):
        proc = run(shell, name, flag)
        assert proc.returncode == 0 and proc.stderr == ""
        assert proc.stdout.startswith(f"usage: datafold-{name} "), proc.stdout
        assert "Example" in proc.stdout


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("name", NAMES)
def test_unknown_option_is_a_usage_error(shell: str, name: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    line = error_line(run(shell, name, "--bogus"), name, 2)
    assert "unknown option --bogus" in line or "unexpected argument" in line


@pytest.mark.parametrize("shell", SHELLS)
def test_syntax(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    for path in [LIB, *(script(n) for n in NAMES)]:
        proc = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and proc.stderr == "", f"{shell} -n {path}: {proc.stderr}"


def test_shellcheck_reports_nothing() -> None:
    if SHELLCHECK is None:
        if IN_CI:
            pytest.fail("shellcheck is not installed in CI (scripts/install-system-deps.sh installs it)")
        pytest.skip("needs shellcheck (apt-get install shellcheck)")
    files = [LIB.name, *(script(n).name for n in NAMES)]
    proc = subprocess.run(
        [SHELLCHECK, "--shell=sh", "--external-sources", "--severity=style", *files],
        cwd=SCRIPTS, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr
    deps = subprocess.run(  # every setup script: install-system-deps.sh, start-services.sh, ...
        [SHELLCHECK, "--severity=style", *sorted(str(p) for p in (ROOT / "scripts").glob("*.sh"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert deps.returncode == 0 and deps.stdout == "", deps.stdout + deps.stderr
