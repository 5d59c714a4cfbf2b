"""keytools leaks no private key byte and no passphrase: stdout, stderr, logs, exception text, network traffic.

Every keytools command (and backup subcommand) runs in-process with every logger at DEBUG collected, and every
exception a command raises is recorded with its whole chain; successful and failing runs are both included
(wrong passphrases, broken files). The same commands run again as real processes with a temporary ``HOME``
(passphrases from a file, an inherited descriptor and the environment), registering with and sending signed
requests to the example server through a recording TCP proxy. The harness (tests/secrets_harness.py) searches
every encoding of every key involved (seed raw/hex/base64/base64url, PKCS#8 DER and PEM body, 12-character
windows of them, BIP39 words, SLIP-39 share words) and of every passphrase used, right and wrong.
(This module replaces tests/test_keytools_leaks.py; all its checks are kept.)
"""

from __future__ import annotations

import os
import sys
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from datafold_auth import MemoryNonceStore, MemoryRegistry
from datafold_auth.keys import FileKeyStore, WrongPassphraseError
from datafold_auth.registration import RegistrationApp
from keytools import cli
from tests.test_keytools_commands import COMMANDS, Env
from tests.test_keytools_helpers import (
    BACKUP_PASSPHRASE,
    FAST_PBKDF2,
    FAST_SCRYPT,
    PASSPHRASE,
    run_keytools,
    write_pass,
)

from .conftest import ROOT
from .secrets_harness import (
    Canary,
    Evidence,
    SecretScanner,
    clean_env,
    collect_logs,
    recording_proxy,
    run_command,
    signature_values,
)
from .test_shell_scripts import example_server

NEW_PASSPHRASE = "Brand-new-\u00f8-passphrase-6620"
WRONG = "Wrong-Guess-4410-\u00e9"


@pytest.fixture
def server() -> Iterator[str]:
    """A registration endpoint on loopback: ``{base}/keys``."""
    httpd = make_server("127.0.0.1", 0, RegistrationApp(MemoryRegistry(), MemoryNonceStore()), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Every exception a command raises (its full text is added to the evidence)."""
    seen: list[BaseException] = []
    build = cli.build_parser

    def recording_parser() -> Any:
        parser = build()
        parse = parser.parse_args

        def parse_args(args: Any = None, namespace: Any = None) -> Any:
            parsed = parse(args, namespace)
            run = parsed.run

            def wrapped(ns: Any) -> int:
                try:
                    return int(run(ns))
                except BaseException as exc:
                    seen.append(exc)
                    raise

            parsed.run = wrapped
            return parsed

        parser.parse_args = parse_args  # type: ignore[method-assign]
        return parser

    monkeypatch.setattr(cli, "build_parser", recording_parser)
    return seen


def _scanner(*passphrases: str) -> SecretScanner:
    scanner = SecretScanner()
    for passphrase in passphrases:
        scanner.add_passphrase(passphrase, f"passphrase {passphrase[:6]}...")
    return scanner


def test_no_secret_in_any_output_log_or_exception(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    recorded: list[BaseException],
    server: str,
) -> None:
    evidence = Evidence()
    kt = Env(tmp_path, capsys, monkeypatch)
    new = write_pass(tmp_path / "new.txt", NEW_PASSPHRASE)
    wrong = write_pass(tmp_path / "wrong.txt", WRONG)
    p, b = ("--passphrase-file", kt.pass_file), ("--backup-passphrase-file", kt.backup_pass)
    ran: set[str] = set()

    def run(*args: str | Path, expect: int | None = 0) -> None:
        result = kt(*args)
        assert expect is None or result.code == expect, (args, result)
        evidence.add("output", f"{args[:2]} (stdout)", result.out)
        evidence.add("output", f"{args[:2]} (stderr)", result.err)
        ran.add(str(args[0]) if args[0] != "backup" else f"backup {args[1]}")

    with collect_logs(evidence), recording_proxy(server, evidence, "registration") as proxy:
        run("generate", "--label", "leak test", *p)
        run("generate", *p, expect=1)  # exists
        run("generate", "--name", "plain", "--no-encryption")
        run("list")
        run("list", "--json")
        run("show")
        run("show", "--json")
        run("keyid")
        run("export", "--format", "jwk")
        run("export", "--format", "openssh", "--out", tmp_path / "id.pub")
        run("backup", "pem", "--out", tmp_path / "b.pem", *p, *b, *FAST_PBKDF2)
        run("backup", "json", "--out", tmp_path / "b.json", *p, *b, *FAST_SCRYPT, "--json")
        run("backup", "binary", "--out", tmp_path / "b.bin", *p, "--same-passphrase", *FAST_SCRYPT)
        run("backup", "paper", "--out", tmp_path / "paper.txt", *p)
        run("backup", "paper", "--out", "-", *p, expect=2)  # not a terminal: refused
        run("backup", "shamir", "--out-dir", tmp_path / "shares", "--threshold", "2", "--shares", "3", *p, "--json")
        run("backup", "json", "--out", tmp_path / "x.json", "--passphrase-file", wrong, *b, *FAST_SCRYPT, expect=4)
        run("backup", "verify", tmp_path / "b.json", *b)
        run("backup", "verify", tmp_path / "b.json", "--backup-passphrase-file", wrong, expect=4)
        run("backup", "verify", tmp_path / "paper.txt", "--json")
        run("restore", tmp_path / "b.json", "--name", "restored", *b, *p)
        run("restore", tmp_path / "b.bin", "--name", "r2", "--backup-passphrase-file", wrong, *p, expect=4)
        shares = sorted((tmp_path / "shares").iterdir())
        run("restore", shares[0], shares[2], "--name", "from-shares", "--no-encryption", "--json")
        run("import", tmp_path / "b.pem", "--name", "imported", *b, *p)
        run("import", tmp_path / "b.pem", "--name", "imported2", "--backup-passphrase-file", wrong, *p, expect=4)
        (tmp_path / "doc.txt").write_text("sign me\n")
        run("sign", tmp_path / "doc.txt", *p)
        run("verify", tmp_path / "doc.txt", tmp_path / "doc.txt.sig")
        run("sign", tmp_path / "doc.txt", "--out", tmp_path / "w.sig", "--passphrase-file", wrong, expect=4)
        run("keyid", tmp_path / "b.bin")
        run("change-passphrase", *p, "--new-passphrase-file", new)
        run("change-passphrase", *p, "--new-passphrase-file", new, expect=4)  # the old one no longer works
        run("register", f"{proxy.url}/keys", "--passphrase-file", new, "--client-id", "leak-client")
        run("request", "GET", f"{proxy.url}/keys/unknown", "--passphrase-file", new, expect=None)
        run("request", "GET", f"{proxy.url}/keys/unknown", "--passphrase-file", wrong, expect=4)
        run("delete", "--name", "restored")
        run("delete", "--name", "plain", "--force")
    assert ran >= {*COMMANDS, "backup pem", "backup json", "backup binary", "backup paper", "backup shamir",
                   "backup verify"} - {"backup"}  # fmt: skip

    proc_home = tmp_path / "proc"
    for args in (
        ("generate", *p),
        ("backup", "json", "--out", tmp_path / "p.json", *p, *b, *FAST_SCRYPT),
        ("restore", tmp_path / "p.json", "--name", "again", "--backup-passphrase-file", wrong, *p),
        ("show",),
    ):
        result = run_keytools("--home", proc_home, *args)
        evidence.add("output", f"process {args[0]} (stdout)", result.out)
        evidence.add("output", f"process {args[0]} (stderr)", result.err)

    scanner = _scanner(PASSPHRASE, BACKUP_PASSPHRASE, NEW_PASSPHRASE, WRONG)
    keyids = []
    for home in (kt.home, proc_home):
        store = FileKeyStore(home / "keys")
        for meta in store.list():
            secret = NEW_PASSPHRASE if meta.name == "default" and home == kt.home else PASSPHRASE
            scanner.add_key(store.load(meta.name, passphrase=secret.encode()), f"stored key {meta.name}")
            keyids.append(meta.keyid)
    for share in shares:
        words = [line.split()[1::2] for line in share.read_text().splitlines()[-11:]]
        flat = [w for row in words for w in row]
        scanner.add_words(flat[4:], f"share {share.name}", "SLIP-39 words")  # past the prefix shares have in common
    assert recorded, "the failing runs raised exceptions that were recorded"
    for exc in recorded:
        evidence.exception(exc, "command")
    evidence.assert_saw("output", keyids[0], "keytools: error: ")
    evidence.assert_saw("exception", "Traceback")
    evidence.assert_saw("log", "registered key")
    evidence.assert_saw("traffic", f'keyid="{keyids[0]}"', b"POST /keys HTTP/1.1", b"GET /keys/unknown HTTP/1.1")
    assert len(signature_values(proxy.received)) == 2  # register and the good request; the wrong one sent nothing
    scanner.assert_clean(evidence)


def test_processes_with_a_temporary_home_leak_nothing(tmp_path: Path) -> None:
    """Real ``python -m keytools`` processes, keys under ``$HOME``, talking to the example app via a proxy."""
    canary, backup = Canary.generate(), Canary.generate()
    new_passphrase = Canary.generate().passphrase
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home, {"PYTHONPATH": str(ROOT)})
    pass_file = write_pass(tmp_path / "pass.txt", canary.passphrase)
    backup_file = write_pass(tmp_path / "backup.txt", backup.passphrase)
    new_file = write_pass(tmp_path / "new.txt", new_passphrase)
    wrong_file = write_pass(tmp_path / "wrong.txt", WRONG)
    evidence = Evidence()
    p = ("--passphrase-file", pass_file)
    kt = (sys.executable, "-m", "keytools")

    def run(*args: str | Path, expect: int | None = 0, extra: dict[str, str] | None = None, **kw: Any) -> str:
        proc = run_command(evidence, [*kt, *args], env={**env, **(extra or {})}, expect=expect, **kw)
        return proc.stdout.decode()

    with example_server("flask", tmp_path) as app, recording_proxy(app.url, evidence, "example app") as proxy:
        keyid = run("generate", "--label", "canary", "--client-id", "leak-proc", *p).splitlines()[0].split()[-1]
        run("generate", "--name", "env", extra={"DATAFOLD_AUTH_PASSPHRASE": canary.passphrase})
        read_fd, write_fd = os.pipe()
        os.write(write_fd, canary.secret + b"\n")
        os.close(write_fd)
        try:
            run("sign", "--out", tmp_path / "fd.sig", "--passphrase-fd", str(read_fd), tmp_path / "pass.txt",
                pass_fds=[read_fd])  # fmt: skip
        finally:
            os.close(read_fd)
        run("generate", *p, expect=1)  # exists
        run("show")
        run("show", "--json")
        run("list")
        run("list", "--json")
        run("export", "--format", "jwk")
        run("backup", "json", "--out", tmp_path / "b.json", *p, "--backup-passphrase-file", backup_file,
            "--scrypt-log-n", "10")  # fmt: skip
        run("backup", "pem", "--out", tmp_path / "b.pem", *p, "--backup-passphrase-file", backup_file,
            "--pbkdf2-iterations", "1000")  # fmt: skip
        run("backup", "json", "--out", tmp_path / "x.json", "--passphrase-file", wrong_file,
            "--backup-passphrase-file", backup_file, expect=4)  # fmt: skip
        run("restore", tmp_path / "b.json", "--name", "restored", "--backup-passphrase-file", backup_file, *p)
        run("restore", tmp_path / "b.pem", "--name", "r2", "--backup-passphrase-file", wrong_file, *p, expect=4)
        (tmp_path / "doc.txt").write_text("sign me\n")
        run("sign", tmp_path / "doc.txt", *p)
        run("sign", tmp_path / "doc.txt", "--out", tmp_path / "w.sig", "--passphrase-file", wrong_file, expect=4)
        run("change-passphrase", *p, "--new-passphrase-file", new_file)
        run("change-passphrase", *p, "--new-passphrase-file", new_file, expect=4)
        q = ("--passphrase-file", new_file)
        run("register", proxy.url + "/register/keys", *q)
        run("request", "GET", proxy.url + "/api/hello", *q)
        run("request", "POST", proxy.url + "/api/items", "-d", '{"name": "canary"}', *q)
        run("request", "GET", proxy.url + "/api/hello", "--passphrase-file", wrong_file, expect=4)
        run("request", "GET", proxy.url + "/api/hello", extra={"DATAFOLD_AUTH_PASSPHRASE": WRONG}, expect=4)
        run("client-keys", proxy.url + "/register/keys", *q)

    store = FileKeyStore(home / ".local" / "share" / "datafold-auth" / "keys")
    assert {m.name for m in store.list()} == {"default", "env", "restored"}
    scanner = SecretScanner().add_passphrase(canary.passphrase, "stored passphrase")
    scanner.add_passphrase(backup.passphrase, "backup passphrase").add_passphrase(new_passphrase, "new passphrase")
    scanner.add_text(WRONG, "wrong guess")
    scanner.add_key(store.load("default", passphrase=new_passphrase.encode()), "default key")
    scanner.add_key(store.load("env", passphrase=canary.secret), "env key")
    with pytest.raises(WrongPassphraseError) as info:  # what a command using the store would show
        store.load("default", passphrase=WRONG.encode())
    evidence.exception(info.value, "load with a wrong passphrase")
    evidence.assert_saw("output", keyid, "keytools: error: ")
    evidence.assert_saw("traffic", f'keyid="{keyid}"', b"POST /register/keys", b"GET /api/hello", b'"canary"')
    assert len(signature_values(proxy.received)) >= 3
    scanner.assert_clean(evidence)


def test_traceback_text_is_what_is_searched(recorded: list[BaseException]) -> None:
    """The recorded exceptions are searched with their chained traceback text (as the old test did)."""
    exc = ValueError("outer")
    exc.__cause__ = KeyError(PASSPHRASE)
    evidence = Evidence()
    evidence.exception(exc)
    assert "".join(traceback.format_exception(exc)) in evidence.channel("exception").decode()
    assert _scanner(PASSPHRASE).leaks(evidence)
