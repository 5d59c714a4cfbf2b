"""No private key byte and no passphrase appears in stdout, stderr, logs or exception text, for every command.

Every keytools command (and backup subcommand) runs in-process with all loggers at DEBUG captured, and every
exception raised by a command is recorded with its whole chain (``traceback.format_exception``). Successful
and failing runs are both included (wrong passphrases, broken files). The searched forms: the seeds of every
key involved in hex, base64 and base64url, their unencrypted PKCS#8 PEM lines, runs of their BIP39 words and
of their SLIP-39 share words, and every passphrase used (right and wrong, NFC and NFD). A few commands also
run as real processes.
"""

from __future__ import annotations

import logging
import threading
import traceback
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from datafold_auth import MemoryNonceStore, MemoryRegistry
from datafold_auth.registration import RegistrationApp
from keytools import cli
from tests.test_keytools_commands import COMMANDS, Env
from tests.test_keytools_helpers import (
    BACKUP_PASSPHRASE,
    FAST_PBKDF2,
    FAST_SCRYPT,
    PASSPHRASE,
    run_keytools,
    secret_forms,
    write_pass,
)

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
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The full text (with causes) of every exception a command raises."""
    seen: list[str] = []
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
                    seen.append("".join(traceback.format_exception(exc)))
                    raise

            parsed.run = wrapped
            return parsed

        parser.parse_args = parse_args  # type: ignore[method-assign]
        return parser

    monkeypatch.setattr(cli, "build_parser", recording_parser)
    return seen


def test_no_secret_in_any_output_log_or_exception(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    recorded: list[str],
    server: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    kt = Env(tmp_path, capsys, monkeypatch)
    new = write_pass(tmp_path / "new.txt", NEW_PASSPHRASE)
    wrong = write_pass(tmp_path / "wrong.txt", WRONG)
    p, b = ("--passphrase-file", kt.pass_file), ("--backup-passphrase-file", kt.backup_pass)
    outputs: list[str] = []
    ran: set[str] = set()

    def run(*args: str | Path, expect: int | None = 0) -> None:
        result = kt(*args)
        assert expect is None or result.code == expect, (args, result)
        outputs.extend([result.out, result.err])
        ran.add(str(args[0]) if args[0] != "backup" else f"backup {args[1]}")

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
    run("register", f"{server}/keys", "--passphrase-file", new, "--client-id", "leak-client")
    run("request", "GET", f"{server}/keys/unknown", "--passphrase-file", new, expect=None)
    run("request", "GET", f"{server}/keys/unknown", "--passphrase-file", wrong, expect=4)
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
        outputs.extend([result.out, result.err])

    passphrases = [PASSPHRASE, BACKUP_PASSPHRASE, NEW_PASSPHRASE, WRONG]
    forms = passphrases + [unicodedata.normalize("NFD", s) for s in passphrases]
    for home in (kt.home, proc_home):
        env_store = Env(tmp_path, capsys, monkeypatch)
        env_store.home = home
        for meta in env_store.store.list():
            secret = NEW_PASSPHRASE if meta.name == "default" and home == kt.home else PASSPHRASE
            forms += secret_forms(env_store.store.load(meta.name, passphrase=secret.encode()))
    for share in shares:
        words = [line.split()[1::2] for line in share.read_text().splitlines()[-11:]]
        flat = [w for row in words for w in row]
        forms.append(" ".join(flat[12:15]))
    texts = outputs + recorded + [record.getMessage() for record in caplog.records]
    assert recorded, "the failing runs raised exceptions that were recorded"
    leaks = [(form, text[:200]) for form in forms for text in texts if form and form in text]
    assert leaks == []
