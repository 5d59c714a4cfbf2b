"""``datafold-setup``: idempotent deployment against the Flask example, under dash and bash.

Runs from scratch, again, and from each half-finished state: key only, a
leftover temporary file, registered on the server without a marker, a
marker the server contradicts; and the failures (unreachable server,
verification refused, unsafe folder).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from datafold_auth import KeyStatus, MemoryNonceStore, MemoryRegistry, Verifier
from datafold_auth.middleware import DatafoldAuthMiddleware
from datafold_auth.registration import RegistrationApp

from .servers import serve_wsgi
from .test_shell_scripts import (
    SHELLS,
    ExampleServer,
    error_line,
    example_server,
    free_port,
    needs_tools,
    ok,
    run,
    write_pass_file,
)

pytestmark = needs_tools


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    with example_server("flask", tmp_path_factory.mktemp("shell-setup")) as running:
        yield running


@pytest.fixture
def pass_file(tmp_path: Path) -> Path:
    return write_pass_file(tmp_path / "pass")


def setup(
    shell: str, server: ExampleServer, state: Path, pass_file: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return run(shell, "setup", "--state", state, "--passphrase-file", pass_file, "--register-url",
               server.register_url, "--verify-url", server.url + "/api/hello", *extra)  # fmt: skip


def steps(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """The logged steps without their timestamps, e.g. ``"[key] generated ..."``."""
    return [line.split(" datafold-setup: ", 1)[1] for line in proc.stderr.splitlines() if " datafold-setup: [" in line]


@pytest.mark.parametrize("shell", SHELLS)
def test_from_scratch_then_again(shell: str, tmp_path: Path, server: ExampleServer, pass_file: Path) -> None:
    state = tmp_path / "srv" / "datafold"
    first = setup(shell, server, state, pass_file, "--client-id", f"svc-{shell}-{os.getpid()}", "--label", "web 1")
    keyid = ok(first).strip()
    logged = steps(first)
    assert logged[0].startswith("[start] state ")
    assert logged[1] == f"[key] generated {state}/key.pem (keyid {keyid})"
    assert logged[2] == f"[key] wrote the public key to {state}/key.pub.pem"
    assert logged[3] == f"[register] registered keyid {keyid} at {server.register_url}: status active"
    assert logged[4] == f"[verify] signed GET {server.url}/api/hello: HTTP 200"
    assert logged[5] == f"[done] keyid {keyid} is set up"
    assert sorted(p.name for p in state.iterdir()) == ["key.pem", "key.pub.pem", "registered", "setup.log"]
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    assert oct((state / "key.pem").stat().st_mode & 0o777) == "0o600"
    marker = (state / "registered").read_text().splitlines()
    assert marker[:2] == [f"url={server.register_url}", f"keyid={keyid}"]
    record = requests.get(f"{server.register_url}/{keyid}", timeout=10).json()
    assert (record["client_id"], record["label"]) == (f"svc-{shell}-{os.getpid()}", "web 1")

    key_bytes = (state / "key.pem").read_bytes()
    second = setup(shell, server, state, pass_file)
    assert ok(second).strip() == keyid
    assert steps(second)[1:] == [
        f"[key] using existing key {state}/key.pem (keyid {keyid})",
        "[register] already registered (marker and server agree): status active",
        f"[verify] signed GET {server.url}/api/hello: HTTP 200",
        f"[done] keyid {keyid} is set up",
    ]
    assert (state / "key.pem").read_bytes() == key_bytes
    log = (state / "setup.log").read_text()
    assert log.count("[start]") == 2 and log.count("[done]") == 2


@pytest.mark.parametrize("shell", SHELLS)
def test_half_finished_states(shell: str, tmp_path: Path, server: ExampleServer, pass_file: Path) -> None:
    state = tmp_path / "state"
    # 1. Only the key exists (generated earlier), plus a temporary file from an interrupted run.
    keyid = ok(run(shell, "generate", "-q", "--passphrase-file", pass_file, state / "key.pem")).strip()
    (state / ".key.pem.Ab12Cd").write_bytes(b"partial")
    proc = setup(shell, server, state, pass_file)
    assert ok(proc).strip() == keyid
    logged = steps(proc)
    assert f"[key] removed {state}/.key.pem.Ab12Cd, left by an interrupted run" in logged
    assert f"[key] using existing key {state}/key.pem (keyid {keyid})" in logged
    assert f"[register] registered keyid {keyid} at {server.register_url}: status active" in logged
    assert not (state / ".key.pem.Ab12Cd").exists()

    # 2. Registered on the server but the marker is gone: the server is asked, not the marker.
    (state / "registered").unlink()
    proc = setup(shell, server, state, pass_file)
    ok(proc)
    assert (f"[register] the server already knows keyid {keyid} (status active); writing the marker"
            in steps(proc))  # fmt: skip
    assert (state / "registered").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_marker_contradicted_by_the_server(shell: str, tmp_path: Path, pass_file: Path) -> None:
    """The marker says registered, but this server (a fresh database) does not know the key: register again."""
    state = tmp_path / "state"
    with example_server("flask", tmp_path) as first_server:
        keyid = ok(setup(shell, first_server, state, pass_file)).strip()
    (tmp_path / "fresh").mkdir()
    with example_server("flask", tmp_path / "fresh") as fresh:
        (state / "registered").write_text(f"url={fresh.register_url}\nkeyid={keyid}\n")
        proc = setup(shell, fresh, state, pass_file)
        assert ok(proc).strip() == keyid
        assert (f"[register] the marker says registered but the server does not know keyid {keyid}: registering"
                " again" in steps(proc))  # fmt: skip
        assert requests.get(f"{fresh.register_url}/{keyid}", timeout=10).status_code == 200


@pytest.mark.parametrize("shell", SHELLS)
def test_unreachable_server(shell: str, tmp_path: Path, pass_file: Path) -> None:
    state = tmp_path / "state"
    url = f"http://127.0.0.1:{free_port()}"
    proc = run(shell, "setup", "--state", state, "--passphrase-file", pass_file, "--register-url",
               url + "/register/keys", "--verify-url", url + "/api/hello")  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert last.startswith(f"datafold-setup: error: cannot reach {url}/register/keys/"), last
    # The key was made (step 1 is done); the error is in the log too; a rerun resumes.
    assert (state / "key.pem").exists()
    assert "datafold-setup: error: cannot reach" in (state / "setup.log").read_text()


@pytest.mark.parametrize("shell", SHELLS)
def test_verification_refused(shell: str, tmp_path: Path, server: ExampleServer, pass_file: Path) -> None:
    proc = run(shell, "setup", "--state", tmp_path / "state", "--passphrase-file", pass_file, "--register-url",
               server.register_url, "--verify-url", server.url + "/api/items")  # fmt: skip
    assert proc.returncode == 4
    assert proc.stderr.splitlines()[-1] == (
        f"datafold-setup: error: verification failed: signed GET {server.url}/api/items: HTTP 405"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_unsafe_state_folder_and_usage(shell: str, tmp_path: Path, server: ExampleServer, pass_file: Path) -> None:
    state = tmp_path / "open"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    line = error_line(setup(shell, server, state, pass_file), "setup", 1)
    assert f"folder {state} has mode drwxr-xr-x" in line and "chmod 700" in line
    assert list(state.iterdir()) == []
    assert "--register-url URL is required" in error_line(
        run(shell, "setup", "--state", tmp_path / "s", "--passphrase-file", pass_file), "setup", 2
    )
    assert "no passphrase given" in error_line(
        run(shell, "setup", "--state", tmp_path / "s", "--register-url", server.register_url, "--no-verify"),
        "setup", 2,
    )  # fmt: skip
    assert not (tmp_path / "s").exists()


def _approval_app(registry: MemoryRegistry) -> Any:
    """Registration requiring operator approval at /register, the signed API at /api/ (like the examples)."""
    nonces = MemoryNonceStore()
    verifier = Verifier(registry, nonces, cache_ttl=0)

    def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello " + environ["datafold_auth.identity"].client_id.encode()]

    api = DatafoldAuthMiddleware(hello, verifier, paths=["/api/"])
    return DispatcherMiddleware(api, {"/register": RegistrationApp(registry, nonces, require_approval=True)})


@pytest.mark.parametrize("shell", SHELLS)
def test_pending_approval_then_resumed(shell: str, tmp_path: Path, pass_file: Path) -> None:
    registry = MemoryRegistry()
    state = tmp_path / "state"
    with serve_wsgi(_approval_app(registry)) as base:
        args: list[str | Path] = ["--state", state, "--passphrase-file", pass_file, "--register-url", base + "/register/keys",
                "--verify-url", base + "/api/hello", "--client-id", "needs-approval"]  # fmt: skip
        first = run(shell, "setup", *args)
        assert first.returncode == 4, first.stderr
        keyid = registry.list()[0].keyid
        assert first.stderr.splitlines()[-1] == (
            f"datafold-setup: error: keyid {keyid} is registered but pending: an operator must approve it; then run"
            " datafold-setup again"
        )
        assert f"[register] registered keyid {keyid} at {base}/register/keys: status pending" in steps(first)
        again = run(shell, "setup", *args)  # still pending: no new registration, same answer
        assert again.returncode == 4 and len(registry.list()) == 1
        registry.set_status(keyid, KeyStatus.ACTIVE, now=int(time.time()))
        done = run(shell, "setup", *args)
        assert ok(done).strip() == keyid
        assert steps(done)[-2:] == [
            f"[verify] signed GET {base}/api/hello: HTTP 200",
            f"[done] keyid {keyid} is set up",
        ]
        registry.set_status(keyid, KeyStatus.REVOKED, now=int(time.time()))
        revoked = run(shell, "setup", *args)
        assert revoked.returncode == 4
        assert "is registered with status 'revoked', not active" in revoked.stderr.splitlines()[-1]
