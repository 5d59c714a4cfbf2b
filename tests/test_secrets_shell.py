"""The OpenSSL shell scripts (keytools/openssl/) leak no private key or passphrase.

Under dash and bash, with a temporary ``HOME``: generate, public, sign-request, register, request and setup run
with the passphrase from a descriptor, a file and the environment, plus error paths (wrong passphrase, existing
key). Collected: stdout and stderr, the setup log, the argument list of every external command the scripts
start (a logging ``PATH`` wrapper that also reports the internal passphrase variable reaching anything but
openssl), and every byte the example server receives and sends (a recording TCP proxy in front of it, so curl's
traffic is seen). The harness (tests/secrets_harness.py) searches all of it.
(This module took over ``test_no_secret_on_any_command_line`` from tests/test_shell_interop.py.)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from datafold_auth.keys import decode_private_key

from .secrets_harness import FAILS, Canary, Evidence, SecretScanner, recording_proxy, run_command, signature_values
from .test_shell_scripts import SHELLS, clean_env, example_server, needs_tools, script, write_pass_file

pytestmark = needs_tools

LOGGED_COMMANDS = [
    "openssl", "curl", "mktemp", "rm", "ln", "mv", "mkdir", "chmod", "ls", "od", "tr", "sed", "date", "cat", "wc",
    "tail", "dirname", "basename", "grep", "cut", "readlink", "cmp", "dd",
]  # fmt: skip
WRONG = "Wrong-Guess-4410-\u00e9"


def _logging_path(tmp_path: Path, log: Path) -> str:
    """A PATH whose first folder wraps the scripts' external commands: each call's argv is
    logged, and so is the internal passphrase variable if anything but openssl receives it."""
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    for name in LOGGED_COMMANDS:
        real = shutil.which(name)
        assert real is not None, name
        leak = (
            "" if name == "openssl" else f'[ -z "${{DATAFOLD_OPENSSL_PASS+x}}" ] || echo "LEAK to {name}" >>"{log}"\n'
        )
        (wrap / name).write_text(
            f'#!/bin/sh\nprintf "%s " {name} "$@" >>"{log}"\necho >>"{log}"\n{leak}exec {real} "$@"\n'
        )
        (wrap / name).chmod(0o755)
    return f"{wrap}:{os.environ.get('PATH', '/usr/bin:/bin')}"


@pytest.mark.parametrize("shell", SHELLS)
def test_no_secret_in_output_command_lines_logs_or_traffic(shell: str, tmp_path: Path) -> None:
    canary = Canary.generate()
    evidence = Evidence()
    log = tmp_path / "argv.log"
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env({"PATH": _logging_path(tmp_path, log), "HOME": str(home)})
    pass_file = write_pass_file(tmp_path / "pass", canary.passphrase)
    wrong_file = write_pass_file(tmp_path / "wrong", WRONG)
    key_file = tmp_path / "k" / "key.pem"
    shell_path = shutil.which(shell)
    assert shell_path is not None

    def run(name: str, *args: str | Path, expect: int | None = 0, extra: dict[str, str] | None = None,
            pass_fds: tuple[int, ...] = ()) -> str:  # fmt: skip
        proc = run_command(evidence, [shell_path, script(name), *args], env={**env, **(extra or {})}, expect=expect,
                           pass_fds=pass_fds, timeout=90)  # fmt: skip
        return proc.stdout.decode()

    read_fd, write_fd = os.pipe()
    os.write(write_fd, canary.secret + b"\n")
    os.close(write_fd)
    try:
        run("generate", "--passphrase-fd", str(read_fd), key_file, pass_fds=(read_fd,))
    finally:
        os.close(read_fd)
    run("generate", "--passphrase-file", pass_file, key_file, expect=FAILS)  # exists: refused
    run("generate", tmp_path / "k" / "env.pem", extra={"DATAFOLD_AUTH_PASSPHRASE": canary.passphrase})
    keyid = run("public", "-f", "keyid", "--passphrase-file", pass_file, key_file).strip()
    run("public", "-f", "jwk", "--passphrase-file", pass_file, key_file)
    run("public", "-f", "keyid", "--passphrase-file", wrong_file, key_file, expect=FAILS)
    with example_server("flask", tmp_path) as server, recording_proxy(server.url, evidence, "example app") as proxy:
        register_url = proxy.url + "/register/keys"
        run("sign-request", "-k", key_file, "--passphrase-file", pass_file, "-d", '{"n":0}', "POST",
            proxy.url + "/api/items")  # fmt: skip
        run("sign-request", "-k", key_file, "--passphrase-file", wrong_file, "GET", proxy.url + "/api/hello",
            expect=FAILS)  # fmt: skip
        run("register", "-k", key_file, "--passphrase-file", pass_file, register_url)
        run("request", "-k", key_file, "-d", '{"n":1}', "POST", proxy.url + "/api/items",
            extra={"DATAFOLD_AUTH_PASSPHRASE": canary.passphrase})  # fmt: skip
        run("request", "-k", key_file, "--passphrase-file", pass_file, "GET", proxy.url + "/api/hello")
        run("request", "-k", key_file, "--passphrase-file", wrong_file, "GET", proxy.url + "/api/hello",
            expect=FAILS)  # fmt: skip
        for _ in range(2):  # the second run finds everything done
            run("setup", "--state", tmp_path / "state", "--passphrase-file", pass_file, "--register-url",
                register_url, "--verify-url", proxy.url + "/api/hello")  # fmt: skip
        run("setup", "--state", tmp_path / "state", "--passphrase-file", wrong_file, "--register-url", register_url,
            "--verify-url", proxy.url + "/api/hello", expect=FAILS)  # fmt: skip
    evidence.add("argv", "argv.log", log.read_bytes())
    evidence.add("log", "setup.log", (tmp_path / "state" / "setup.log").read_bytes())

    scanner = SecretScanner().add_passphrase(canary.passphrase).add_text(WRONG, "wrong guess")
    for name in (key_file, tmp_path / "k" / "env.pem", tmp_path / "state" / "key.pem"):
        scanner.add_key(decode_private_key(name.read_bytes(), canary.secret), name.name)
    text = log.read_text()
    assert "openssl pkeyutl -sign" in text and "curl " in text and "openssl genpkey" in text
    assert "LEAK" not in text
    assert "env:DATAFOLD_OPENSSL_PASS" in text
    evidence.assert_saw("output", keyid, "error: ")
    evidence.assert_saw("log", "register")
    evidence.assert_saw("traffic", f'keyid="{keyid}"', b"POST /register/keys", b"GET /api/hello", b'{"n":1}')
    assert len(signature_values(proxy.received)) >= 5
    scanner.assert_clean(evidence)
