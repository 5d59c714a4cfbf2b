"""Every keytools command, in-process (fast): results, --json, exit codes, backup records, OpenSSL interop.

Low KDF costs via --scrypt-log-n 10 / --pbkdf2-iterations 1000 except where a default is the point.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import FileKeyStore, WrongPassphraseError, pkcs8
from tests.test_keytools_helpers import (
    BACKUP_PASSPHRASE,
    FAST_PBKDF2,
    FAST_SCRYPT,
    PASSPHRASE,
    SSH_KEYGEN,
    Result,
    cli,
    needs_openssl,
    needs_ssh_keygen,
    openssl,
    write_pass,
)

COMMANDS = [
    "generate", "list", "show", "import", "export", "backup", "restore", "change-passphrase", "delete",
    "keyid", "sign", "verify", "register", "request",
]  # fmt: skip
BACKUP_SUBCOMMANDS = ["pem", "json", "binary", "paper", "shamir", "verify"]


class Env:
    """A keytools home with passphrase files, and a runner bound to the test's fixtures."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp, self.home = tmp, tmp / "home"
        self.pass_file = write_pass(tmp / "pass.txt", PASSPHRASE)
        self.backup_pass = write_pass(tmp / "backup-pass.txt", BACKUP_PASSPHRASE)
        self._capsys, self._monkeypatch = capsys, monkeypatch
        # The key store's own PBKDF2 cost (600,000 by default) is lowered for speed in these in-process tests;
        # tests/test_keys_pkcs8.py and the default-cost backup tests check the real figure.
        monkeypatch.setattr(pkcs8, "KDF_ITERATIONS", 1000)

    def __call__(self, *args: str | Path) -> Result:
        return cli("--home", self.home, *args, capsys=self._capsys, monkeypatch=self._monkeypatch)

    def ok(self, *args: str | Path) -> Result:
        result = self(*args)
        assert result.code == 0, (args, result.err)
        return result

    @property
    def store(self) -> FileKeyStore:
        return FileKeyStore(self.home / "keys")

    def key(self, name: str = "default") -> Ed25519PrivateKey:
        return self.store.load(name, passphrase=PASSPHRASE.encode())

    def generate(self, name: str = "default", *extra: str) -> str:
        made = self.ok("generate", "--name", name, "--passphrase-file", self.pass_file, *extra)
        return made.out.splitlines()[0].removeprefix("keyid: ")


@pytest.fixture
def kt(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Env:
    return Env(tmp_path, capsys, monkeypatch)


def test_every_command_and_subcommand_has_help(kt: Env) -> None:
    top = kt("--help")
    assert top.code == 0 and all(name in top.out for name in COMMANDS)
    for name in COMMANDS:
        result = kt(name, "--help")
        assert result.code == 0 and result.out.startswith("usage: keytools"), name
    for name in BACKUP_SUBCOMMANDS:
        result = kt("backup", name, "--help")
        assert result.code == 0 and f"backup {name}" in result.out, name


def test_generate_show_list_status(kt: Env) -> None:
    made = kt.ok("generate", "--label", "laptop", "--passphrase-file", kt.pass_file, "--json")
    info = json.loads(made.out)
    assert info["security"] == "at-risk" and info["backups"] == [] and info["encrypted"] is True
    assert "has no backup yet" in made.err
    shown = kt.ok("show")
    assert "security:    at-risk (file store, encrypted, NOT backed up)" in shown.out
    assert "backups:     NONE verified" in shown.out
    assert "gone for good: no server can recover it" in shown.err
    listed = kt.ok("list")
    assert "NONE" in listed.out and "at-risk" in listed.out and "no verified backup for: default" in listed.err


@pytest.mark.parametrize(
    ("fmt", "extra"),
    [
        ("pem", FAST_PBKDF2),
        ("json", FAST_SCRYPT),
        ("json", ("--kdf", "pbkdf2", *FAST_PBKDF2)),
        ("binary", FAST_SCRYPT),
        ("binary", ("--kdf", "pbkdf2", *FAST_PBKDF2)),
    ],
    ids=["pem", "json-scrypt", "json-pbkdf2", "binary-scrypt", "binary-pbkdf2"],
)
def test_encrypted_backup_verify_restore_round_trip(kt: Env, fmt: str, extra: tuple[str, ...]) -> None:
    keyid = kt.generate()
    out = kt.tmp / f"backup.{fmt}"
    made = kt.ok("backup", fmt, "--out", out, "--passphrase-file", kt.pass_file,
                 "--backup-passphrase-file", kt.backup_pass, *extra, "--json")  # fmt: skip
    result = json.loads(made.out)
    assert result["verified"] is True and result["keyid"] == keyid and "below the default cost" in made.err
    assert out.stat().st_mode & 0o777 == 0o600
    meta = kt.store.metadata("default")
    assert [(b.format, b.location) for b in meta.backups] == [(fmt, str(out.resolve()))]
    assert json.loads(kt.ok("show", "--json").out)["security"] == "good"
    checked = kt.ok("backup", "verify", out, "--backup-passphrase-file", kt.backup_pass, "--json")
    assert json.loads(checked.out)["keyid"] == keyid and json.loads(checked.out)["stored_key"] == "default"
    restored = kt.ok("restore", out, "--name", "copy", "--backup-passphrase-file", kt.backup_pass,
                     "--passphrase-file", kt.pass_file, "--json")  # fmt: skip
    assert json.loads(restored.out)["keyid"] == keyid
    assert kt.key("copy").private_bytes_raw() == kt.key().private_bytes_raw()
    assert kt.store.metadata("copy").backups[0].format == fmt  # restored from a verified backup


def test_paper_and_shamir_round_trip(kt: Env) -> None:
    keyid = kt.generate()
    kt.ok("backup", "paper", "--out", kt.tmp / "paper.txt", "--passphrase-file", kt.pass_file)
    assert "UNENCRYPTED as words" in kt("backup", "paper", "--out", kt.tmp / "p2.txt", "--passphrase-file",
                                         kt.pass_file).err  # fmt: skip
    made = kt.ok("backup", "shamir", "--out-dir", kt.tmp / "shares", "--group", "1/1", "--group", "2/3",
                 "--group-threshold", "2", "--passphrase-file", kt.pass_file, "--json")  # fmt: skip
    files = json.loads(made.out)["files"]
    assert len(files) == 4 and all(Path(f).stat().st_mode & 0o777 == 0o600 for f in files)
    assert (kt.tmp / "shares").stat().st_mode & 0o777 == 0o700
    assert {b.format for b in kt.store.metadata("default").backups} == {"paper", "shamir"}
    kt.ok("restore", kt.tmp / "paper.txt", "--name", "from-paper", "--passphrase-file", kt.pass_file)
    kt.ok("restore", files[0], files[2], files[3], "--name", "from-shares", "--passphrase-file", kt.pass_file)
    for name in ("from-paper", "from-shares"):
        assert jwk_thumbprint(kt.key(name)) == keyid
    too_few = kt("restore", files[0], files[1], "--name", "nope", "--passphrase-file", kt.pass_file)
    assert too_few.code == 1 and "do not restore" in too_few.error_line()
    checked = kt.ok("backup", "verify", files[1], files[2], files[0])
    assert "Shamir backup (SLIP-39, 3 shares)" in checked.out


def test_shamir_with_slip39_passphrase_and_usage_errors(kt: Env) -> None:
    kt.generate()
    ascii_pass = write_pass(kt.tmp / "ascii.txt", "plain ascii pass")
    kt.ok("backup", "shamir", "--out-dir", kt.tmp / "s", "--threshold", "2", "--shares", "3", "--slip39-passphrase",
          "--backup-passphrase-file", ascii_pass, "--passphrase-file", kt.pass_file)  # fmt: skip
    shares = sorted((kt.tmp / "s").iterdir())
    assert "passphrase: required" in shares[0].read_text()
    no_pass = kt("backup", "verify", shares[0], shares[1])
    assert no_pass.code == 2 and "is encrypted" in no_pass.error_line()
    wrong = write_pass(kt.tmp / "wrong.txt", "another pass")
    bad = kt("backup", "verify", shares[0], shares[1], "--backup-passphrase-file", wrong)
    assert bad.code == 4 and "wrong SLIP-39 passphrase" in bad.error_line()
    kt.ok("backup", "verify", shares[0], shares[2], "--backup-passphrase-file", ascii_pass)
    non_ascii = kt("backup", "shamir", "--out-dir", kt.tmp / "t", "--threshold", "2", "--shares", "3",
                   "--slip39-passphrase", "--backup-passphrase-file", kt.backup_pass, "--passphrase-file", kt.pass_file)  # fmt: skip
    assert non_ascii.code == 1 and "printable ASCII" in non_ascii.error_line()
    for args, message in [
        (("--threshold", "1", "--shares", "3"), "1-of-3"),
        (("--threshold", "2"), "either --threshold"),
        (("--group", "2-3"), "T/N"),
        ((), "give --threshold"),
    ]:
        result = kt("backup", "shamir", "--out-dir", kt.tmp / "u", *args, "--passphrase-file", kt.pass_file)
        assert result.code == 2 and message in result.error_line(), args
    assert not (kt.tmp / "t").exists() or list((kt.tmp / "t").iterdir()) == []


def test_same_passphrase_and_existing_output(kt: Env) -> None:
    kt.generate()
    out = kt.tmp / "b.json"
    kt.ok("backup", "json", "--out", out, "--passphrase-file", kt.pass_file, "--same-passphrase", *FAST_SCRYPT)
    before = out.read_bytes()
    again = kt("backup", "json", "--out", out, "--passphrase-file", kt.pass_file, "--same-passphrase", *FAST_SCRYPT)
    assert again.code == 1 and "use --force" in again.error_line() and out.read_bytes() == before
    kt.ok(
        "backup", "json", "--out", out, "--passphrase-file", kt.pass_file, "--same-passphrase", *FAST_SCRYPT, "--force"
    )
    assert out.read_bytes() != before
    kt.ok("backup", "verify", out, "--backup-passphrase-file", kt.pass_file, "--name", "default")


def test_restore_same_passphrase_keeps_the_backups_passphrase(kt: Env) -> None:
    kt.generate()
    out = kt.tmp / "b.json"
    kt.ok("backup", "json", "--out", out, "--passphrase-file", kt.pass_file,
          "--backup-passphrase-file", kt.backup_pass, *FAST_SCRYPT)  # fmt: skip
    kt.ok("restore", out, "--name", "copy", "--backup-passphrase-file", kt.backup_pass, "--same-passphrase")
    # stored under the backup's passphrase, not the original key's
    restored = kt.store.load("copy", passphrase=BACKUP_PASSPHRASE.encode())
    assert restored.private_bytes_raw() == kt.key().private_bytes_raw()
    with pytest.raises(WrongPassphraseError):
        kt.store.load("copy", passphrase=PASSPHRASE.encode())
    both = kt("restore", out, "--name", "x", "--backup-passphrase-file", kt.backup_pass, "--same-passphrase",
              "--passphrase-file", kt.pass_file)  # fmt: skip
    assert both.code == 2 and "--same-passphrase cannot be combined" in both.error_line()
    kt.ok("backup", "paper", "--out", kt.tmp / "paper.txt", "--passphrase-file", kt.pass_file)
    paper = kt("restore", kt.tmp / "paper.txt", "--name", "y", "--same-passphrase")
    assert paper.code == 2 and "this backup has no passphrase" in paper.error_line()
    assert not kt.store.exists("x") and not kt.store.exists("y")


def test_backup_verify_against_another_key_exits_3(kt: Env) -> None:
    kt.generate("a")
    kt.generate("b")
    out = kt.tmp / "a.bin"
    kt.ok("backup", "binary", "--name", "a", "--out", out, "--passphrase-file", kt.pass_file,
          "--backup-passphrase-file", kt.backup_pass, *FAST_SCRYPT)  # fmt: skip
    result = kt("backup", "verify", out, "--backup-passphrase-file", kt.backup_pass, "--name", "b")
    assert result.code == 3 and "not the expected key" in result.error_line()
    recorded = kt.ok("backup", "verify", out, "--backup-passphrase-file", kt.backup_pass, "--record", "--json")
    assert json.loads(recorded.out)["recorded"] is True


def test_delete_needs_a_verified_backup_or_force(kt: Env) -> None:
    kt.generate("a")
    refused = kt("delete", "--name", "a")
    assert refused.code == 1 and "has no verified backup" in refused.error_line() and kt.store.exists("a")
    forced = kt.ok("delete", "--name", "a", "--force")
    assert "deleted without any verified backup" in forced.err and not kt.store.exists("a")
    kt.generate("b")
    kt.ok("backup", "paper", "--name", "b", "--out", kt.tmp / "b.txt", "--passphrase-file", kt.pass_file)
    assert json.loads(kt.ok("delete", "--name", "b", "--json").out)["backups"] == 1
    assert kt("delete", "--name", "b").code == 1


def test_change_passphrase(kt: Env) -> None:
    keyid = kt.generate()
    new = write_pass(kt.tmp / "new.txt", "A whole new passphrase \u00e9")
    kt.ok("change-passphrase", "--passphrase-file", kt.pass_file, "--new-passphrase-file", new)
    assert jwk_thumbprint(kt.store.load("default", passphrase="A whole new passphrase \u00e9".encode())) == keyid
    old = kt("show")  # the metadata is unchanged
    assert keyid in old.out
    wrong = kt("change-passphrase", "--passphrase-file", kt.pass_file, "--new-passphrase-file", new)
    assert wrong.code == 4
    kt.ok("change-passphrase", "--passphrase-file", new, "--no-encryption")
    assert kt.store.metadata("default").encrypted is False
    kt.ok("change-passphrase", "--new-passphrase-file", kt.pass_file)
    assert kt.store.metadata("default").encrypted is True and jwk_thumbprint(kt.key()) == keyid
    empty = write_pass(kt.tmp / "empty.txt", "")
    refused = kt("change-passphrase", "--passphrase-file", kt.pass_file, "--new-passphrase-file", empty)
    assert refused.code == 2 and "empty passphrase refused" in refused.error_line()


def test_import_formats_and_refusals(kt: Env) -> None:
    key = Ed25519PrivateKey.generate()
    keyid = jwk_thumbprint(key)
    pair = kt.tmp / "pair.hex"
    pair.write_text((key.private_bytes_raw() + key.public_key().public_bytes_raw()).hex())
    made = kt.ok("import", pair, "--passphrase-file", kt.pass_file)
    assert "using the first 32 bytes as the seed" in made.err and f"keyid: {keyid}" in made.out
    public = kt.tmp / "pub.pem"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    refused = kt("import", public, "--name", "x", "--passphrase-file", kt.pass_file)
    assert refused.code == 1 and "this is a public key" in refused.error_line()
    missing = kt("import", kt.tmp / "nope.pem", "--name", "x", "--passphrase-file", kt.pass_file)
    assert missing.code == 1 and "no such file" in missing.error_line()
    exists = kt("import", pair, "--passphrase-file", kt.pass_file)
    assert exists.code == 1 and "use --force" in exists.error_line()
    encrypted = kt.tmp / "enc.pem"
    from datafold_auth.keys import encode_private_key

    encrypted.write_bytes(encode_private_key(key, BACKUP_PASSPHRASE.encode(), iterations=1000))
    no_pass = kt("import", encrypted, "--name", "enc", "--passphrase-file", kt.pass_file)
    assert no_pass.code == 1 and "is encrypted" in no_pass.error_line()
    kt.ok("import", encrypted, "--name", "enc", "--backup-passphrase-file", kt.backup_pass, "--no-encryption")
    assert kt.store.metadata("enc").encrypted is False


def test_export_and_keyid(kt: Env) -> None:
    keyid = kt.generate()
    assert kt.ok("keyid").out.strip() == keyid
    for fmt in ("spki-pem", "jwk", "openssh", "raw-hex", "raw-base64url"):
        out = kt.tmp / f"pub.{fmt}"
        kt.ok("export", "--format", fmt, "--out", out)
        assert kt.ok("keyid", out).out.strip() == keyid, fmt
        printed = kt.ok("export", "--format", fmt)
        assert printed.out.encode() == out.read_bytes()
    der = json.loads(kt.ok("export", "--format", "spki-der", "--json").out)
    assert der["encoding"] == "base64" and base64.b64decode(der["data"])[-32:].hex() == kt.ok(
        "export", "--format", "raw-hex").out.strip()  # fmt: skip
    backup = kt.tmp / "b.json"
    kt.ok("backup", "json", "--out", backup, "--passphrase-file", kt.pass_file, "--same-passphrase", *FAST_SCRYPT)
    assert json.loads(kt.ok("keyid", backup, "--json").out) == {"keyid": keyid, "source": "json backup header"}


@needs_ssh_keygen
def test_exported_openssh_line_is_checked_by_ssh_keygen(kt: Env) -> None:
    assert SSH_KEYGEN is not None
    kt.generate()
    line = kt.tmp / "id.pub"
    kt.ok("export", "--format", "openssh", "--comment", "kt@test", "--out", line)
    out = subprocess.run([SSH_KEYGEN, "-l", "-f", str(line)], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.rstrip().endswith("kt@test (ED25519)"), out.stderr


@needs_openssl
def test_sign_and_verify_interoperate_with_openssl(kt: Env) -> None:
    keyid = kt.generate()
    message = kt.tmp / "message.bin"
    message.write_bytes(b"detached \x00 signature test\n" * 100)
    kt.ok("sign", message, "--passphrase-file", kt.pass_file)
    sig = kt.tmp / "message.bin.sig"
    assert len(base64.b64decode(sig.read_text())) == 64
    assert f"signed by {keyid}" in kt.ok("verify", message, sig).out
    raw = kt.tmp / "message.raw.sig"
    kt.ok("sign", message, "--raw", "--out", raw, "--passphrase-file", kt.pass_file)
    kt.ok("export", "--out", kt.tmp / "pub.pem")
    checked = openssl("pkeyutl", "-verify", "-pubin", "-inkey", kt.tmp / "pub.pem", "-rawin", "-in", message,
                      "-sigfile", raw)  # fmt: skip
    assert checked.returncode == 0 and b"Signature Verified Successfully" in checked.stdout
    # and a signature made by openssl verifies with keytools --key
    pem = kt.tmp / "openssl.pem"
    assert openssl("genpkey", "-algorithm", "ed25519", "-out", pem).returncode == 0
    assert (
        openssl("pkeyutl", "-sign", "-inkey", pem, "-rawin", "-in", message, "-out", kt.tmp / "o.sig").returncode == 0
    )
    assert openssl("pkey", "-in", pem, "-pubout", "-out", kt.tmp / "o.pub").returncode == 0
    kt.ok("verify", message, kt.tmp / "o.sig", "--key", kt.tmp / "o.pub")
    message.write_bytes(message.read_bytes() + b"tampered")
    bad = kt("verify", message, sig)
    assert bad.code == 3 and "BAD signature" in bad.error_line() and bad.out == ""
    garbage = kt.tmp / "garbage.sig"
    garbage.write_text("not a signature")
    assert kt("verify", message, garbage).code == 1


@needs_openssl
def test_openssl_reads_keytools_pem_backup_at_default_cost(kt: Env) -> None:
    """The PEM backup at the default 600,000 iterations opens in openssl with the same passphrase file."""
    kt.generate()
    out = kt.tmp / "backup.pem"
    kt.ok("backup", "pem", "--out", out, "--passphrase-file", kt.pass_file, "--backup-passphrase-file", kt.backup_pass)
    parsed = openssl("asn1parse", "-in", out).stdout.decode()
    assert "hmacWithSHA256" in parsed and "INTEGER           :0927C0" in parsed and "aes-256-cbc" in parsed
    plain = openssl("pkey", "-in", out, "-passin", f"file:{kt.backup_pass}")
    assert plain.returncode == 0, plain.stderr
    loaded = serialization.load_pem_private_key(plain.stdout, None)
    assert isinstance(loaded, Ed25519PrivateKey) and loaded.private_bytes_raw() == kt.key().private_bytes_raw()


@needs_openssl
@pytest.mark.parametrize("kind", ["pbkdf2", "scrypt"])
def test_keytools_restores_keys_openssl_encrypted(kt: Env, kind: str) -> None:
    plain = kt.tmp / "plain.pem"
    assert openssl("genpkey", "-algorithm", "ed25519", "-out", plain).returncode == 0
    args = ["-v2", "aes-256-cbc", "-iter", "1000"] if kind == "pbkdf2" else ["-scrypt", "-scrypt_N", "1024"]
    enc = kt.tmp / "enc.pem"
    made = openssl("pkcs8", "-topk8", *args, "-in", plain, "-passout", f"file:{kt.backup_pass}", "-out", enc)
    assert made.returncode == 0, made.stderr
    restored = kt.ok("restore", enc, "--backup-passphrase-file", kt.backup_pass, "--passphrase-file", kt.pass_file)
    assert "weak or old encryption" in restored.err
    expected = serialization.load_pem_private_key(plain.read_bytes(), None)
    assert isinstance(expected, Ed25519PrivateKey)
    assert kt.key().private_bytes_raw() == expected.private_bytes_raw()
    kt.ok("import", enc, "--name", "imported", "--backup-passphrase-file", kt.backup_pass,
          "--passphrase-file", kt.pass_file)  # fmt: skip


def test_nfd_and_nfc_passphrases_open_the_same_backup(kt: Env) -> None:
    import unicodedata

    kt.generate()
    nfd = write_pass(kt.tmp / "nfd.txt", unicodedata.normalize("NFD", BACKUP_PASSPHRASE))
    assert nfd.read_bytes() != kt.backup_pass.read_bytes()
    for fmt, extra in (("json", FAST_SCRYPT), ("binary", ("--kdf", "pbkdf2", *FAST_PBKDF2)), ("pem", FAST_PBKDF2)):
        out = kt.tmp / f"b.{fmt}"
        kt.ok("backup", fmt, "--out", out, "--passphrase-file", kt.pass_file, "--backup-passphrase-file", nfd, *extra)
        kt.ok("backup", "verify", out, "--backup-passphrase-file", kt.backup_pass)


def test_typed_paper_restore(kt: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--paper on a terminal: the words are typed at a hidden prompt."""
    import io
    import sys

    from datafold_auth.keys import seed_words
    from keytools.cli import main

    keyid = kt.generate()
    words = " ".join(w[:4] for w in seed_words(kt.key()))

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([words, PASSPHRASE, PASSPHRASE])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", Terminal())
    assert main(["--home", str(kt.home), "restore", "--paper", "--name", "typed"]) == 0
    assert jwk_thumbprint(kt.key("typed")) == keyid
    assert words not in capsys.readouterr().out
