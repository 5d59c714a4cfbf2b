"""keytools run as ``python -m keytools`` (subprocess) with ``--home``, plus load_signing_key in-process."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from datafold_auth.jwk import jwk_thumbprint, public_jwk
from datafold_auth.keys import FileKeyStore, KeyNotFoundError, KeyStoreError
from keytools.cli import main
from keytools.common import KeytoolsError, add_key_arguments, add_store_arguments, load_signing_key

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "Zebra-\u00c5ngström-7731-secret"
OPENSSL = shutil.which("openssl")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def pass_file(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_bytes(PASSPHRASE.encode() + b"\n")
    return path


def keytools(
    *args: str, env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m keytools`` with a clean environment (no passphrase, no keychain, a dummy home)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_AUTH_", "DBUS_"))}
    full = {**base, "PYTHONPATH": str(ROOT), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return subprocess.run(
        [sys.executable, "-m", "keytools", *args],
        env={**full, **(env or {})},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        pass_fds=pass_fds,
        timeout=60,
    )


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("keytools: error: "), result.stderr
    return lines[0]


def test_generate_show_list(home: Path, pass_file: Path) -> None:
    made = keytools(
        "--home", str(home), "generate", "--label", "ci box", "--client-id", "c-9", "--passphrase-file", str(pass_file)
    )
    assert made.returncode == 0, made.stderr
    keyid = made.stdout.splitlines()[0].removeprefix("keyid: ")
    assert f"stored: {home / 'keys' / 'default.pem'} (file store, encrypted)" in made.stdout
    key = FileKeyStore(home / "keys").load("default", passphrase=PASSPHRASE.encode())
    assert keyid == jwk_thumbprint(key)
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in (home / "keys").iterdir()} == {0o600}

    shown = keytools("show", "--home", str(home), "--json")  # options after the command work too
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["keyid"] == keyid and info["public_jwk"] == public_jwk(key)
    assert (info["label"], info["client_id"], info["store"], info["encrypted"], info["servers"]) == (
        "ci box", "c-9", "file", True, []
    )  # fmt: skip
    text = keytools("--home", str(home), "show")
    assert f"keyid:       {keyid}" in text.stdout and "encrypted:   yes" in text.stdout
    # every value starts in the same column (the longest field name, "fingerprint:", plus one space)
    assert {len(line) - len(line.split(":", 1)[1].lstrip()) for line in text.stdout.splitlines()} == {13}
    assert keytools("--home", str(home), "show", "default").stdout == text.stdout  # the name as an argument
    both = keytools("--home", str(home), "show", "default", "--name", "other")
    assert both.returncode == 2 and "two key names given" in both.stderr
    listed = keytools("--home", str(home), "list", "--json")
    assert [k["keyid"] for k in json.loads(listed.stdout)] == [keyid]
    assert keyid in keytools("--home", str(home), "list").stdout


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
def test_openssl_reads_the_generated_key_with_the_same_passphrase_file(home: Path, pass_file: Path) -> None:
    assert OPENSSL is not None
    assert keytools("--home", str(home), "generate", "--passphrase-file", str(pass_file)).returncode == 0
    pem = home / "keys" / "default.pem"
    out = subprocess.run(
        [OPENSSL, "pkey", "-in", str(pem), "-passin", f"file:{pass_file}", "-pubout"], capture_output=True
    )
    assert out.returncode == 0, out.stderr
    meta = FileKeyStore(home / "keys").metadata("default")
    public = serialization.load_pem_public_key(out.stdout)
    assert jwk_thumbprint(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)) == meta.keyid


def test_passphrase_from_fd(home: Path) -> None:
    read, write = os.pipe()
    os.write(write, PASSPHRASE.encode() + b"\r\nsecond line ignored\n")
    os.close(write)
    try:
        result = keytools("--home", str(home), "generate", "--passphrase-fd", str(read), pass_fds=(read,))
    finally:
        os.close(read)
    assert result.returncode == 0, result.stderr
    FileKeyStore(home / "keys").load("default", passphrase=PASSPHRASE.encode())


def test_no_encryption(home: Path) -> None:
    result = keytools("--home", str(home), "generate", "--no-encryption")
    assert result.returncode == 0, result.stderr
    assert "UNENCRYPTED" in result.stdout and "warning: the private key is stored unencrypted" in result.stderr
    assert (home / "keys" / "default.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert json.loads(keytools("--home", str(home), "show", "--json").stdout)["encrypted"] is False


def test_usage_errors_exit_2_with_one_line(home: Path, pass_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    cases = {
        ("generate",): "no passphrase given",
        ("generate", "--passphrase-file", str(empty)): "empty passphrase refused",
        ("generate", "--no-encryption", "--passphrase-file", str(pass_file)): "cannot be combined",
        ("generate", "--passphrase-file", str(pass_file), "--passphrase-fd", "0"): "not allowed with",
        ("generate", "--name", "../etc"): "invalid key name",
        ("frobnicate",): "invalid choice",
        (): "required: COMMAND",
    }
    for args, message in cases.items():
        result = keytools("--home", str(home), *args)
        assert result.returncode == 2 and message in _error_line(result), (args, result.stderr)
    assert not (home / "keys").exists()


def test_other_errors_exit_1_with_one_line(home: Path, pass_file: Path) -> None:
    missing = keytools("--home", str(home), "show", "--name", "nothere")
    assert missing.returncode == 1 and "no key named 'nothere'" in _error_line(missing)
    assert keytools("--home", str(home), "generate", "--passphrase-file", str(pass_file)).returncode == 0
    again = keytools("--home", str(home), "generate", "--passphrase-file", str(pass_file))
    assert again.returncode == 1 and "use --force" in _error_line(again)
    forced = keytools("--home", str(home), "generate", "--force", "--passphrase-file", str(pass_file))
    assert forced.returncode == 0 and forced.stdout != again.stdout
    # no passphrase available (an unreadable passphrase file, none for an encrypted key): exit 2, as docs/keys.md says
    no_file = keytools("--home", str(home), "generate", "--force", "--passphrase-file", str(home / "nope"))
    assert no_file.returncode == 2 and "cannot read the passphrase" in _error_line(no_file)
    no_file = keytools("--home", str(home), "sign", str(pass_file), "--passphrase-file", str(home / "nope"))
    assert no_file.returncode == 2 and "cannot read the passphrase" in _error_line(no_file)
    none = keytools("--home", str(home), "sign", str(pass_file))
    assert none.returncode == 2 and "is encrypted: give its passphrase" in _error_line(none)


def test_every_command_has_help() -> None:
    for args in ((), ("generate",), ("show",), ("list",)):
        result = keytools(*args, "--help")
        assert result.returncode == 0 and result.stdout.startswith("usage: keytools")


def test_auto_without_keychain_uses_datafold_auth_home(tmp_path: Path) -> None:
    result = keytools("generate", "--no-encryption", env={"DATAFOLD_AUTH_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "no OS keychain available (headless Linux?" in result.stderr
    assert (tmp_path / "keys" / "default.pem").exists()


# --- in-process: load_signing_key and the terminal prompt ---------------------------------


def test_load_signing_key(home: Path, pass_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a command such as ``register`` would use it: its own parser with the shared options."""
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal
    monkeypatch.delenv("DATAFOLD_AUTH_PASSPHRASE", raising=False)
    assert main(["--home", str(home), "generate", "--passphrase-file", str(pass_file)]) == 0
    parser = argparse.ArgumentParser()
    add_store_arguments(parser, suppress=False)
    add_key_arguments(parser)
    with_file = ["--home", str(home), "--passphrase-file", str(pass_file)]
    key, meta, store = load_signing_key(parser.parse_args(with_file))
    assert jwk_thumbprint(key) == meta.keyid and store.kind == "file" and meta.name == "default"
    monkeypatch.setenv("DATAFOLD_AUTH_PASSPHRASE", PASSPHRASE)
    assert load_signing_key(parser.parse_args(["--home", str(home)]))[1] == meta
    monkeypatch.delenv("DATAFOLD_AUTH_PASSPHRASE")
    with pytest.raises(KeytoolsError, match="is encrypted: give its passphrase"):
        load_signing_key(parser.parse_args(["--home", str(home)]))
    with pytest.raises(KeyNotFoundError, match="no key named 'other'"):
        load_signing_key(parser.parse_args([*with_file, "--name", "other"]))
    os.chmod(home / "keys" / "default.pem", 0o644)
    with pytest.raises(KeyStoreError, match=f"chmod 600 {home / 'keys' / 'default.pem'}"):
        load_signing_key(parser.parse_args(with_file))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_prompts_twice_on_a_terminal(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATAFOLD_AUTH_PASSPHRASE", raising=False)
    monkeypatch.setattr(sys, "stdin", _Terminal())
    answers = iter(["typed-one", "typed-two", "same \u00e9", "same e\u0301"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert main(["--home", str(home), "generate"]) == 1
    assert "keytools: error: the passphrases do not match" in capsys.readouterr().err
    assert len(prompts) == 2 and "new key 'default'" in prompts[0]
    assert main(["--home", str(home), "generate"]) == 0  # NFC and NFD forms of one passphrase agree
    assert FileKeyStore(home / "keys").load("default", passphrase="same e\u0301".encode())


@pytest.mark.parametrize(
    "argv",
    [
        ["approve", "http://127.0.0.1:1/register/keys", "{k}", "--json"],
        ["revoke", "http://127.0.0.1:1/register/keys", "--keyid", "{k}"],
        ["admin", "approve", "{k}", "--reason", "ok"],
        ["admin", "show", "{k}"],
        ["admin", "bulk-revoke", "{k}", "{k2}"],
    ],
)
def test_a_keyid_starting_with_a_dash_is_a_value_not_an_option(argv: list[str]) -> None:
    # About one keyid in 64 starts with "-" (base64url); argparse alone reads it as an unknown option.
    from keytools.cli import build_parser

    k, k2 = "-" + "A" * 42, "-" + "b" * 41 + "_"
    args = build_parser().parse_args([a.format(k=k, k2=k2) for a in argv])
    values = getattr(args, "keyids", None) or [args.keyid]
    assert values[0] == k
