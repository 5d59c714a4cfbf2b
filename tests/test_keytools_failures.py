"""Failures: one-line error, non-zero exit, no partial file, no changed key.

Reading: wrong passphrase, truncated file, flipped byte, wrong format, missing file (restore --force over an
existing key, and backup verify). Writing: read-only folder and full disk (a 64 KiB tmpfs, mounted as root;
read-only means the tmpfs remounted ro, since root ignores mode bits), for backups and for the key store.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from datafold_auth.jwk import jwk_thumbprint
from tests.test_keytools_commands import Env
from tests.test_keytools_helpers import (
    BACKUP_PASSPHRASE,
    FAST_PBKDF2,
    FAST_SCRYPT,
    PASSPHRASE,
    can_mount,
    files_in,
    fill,
    remount_read_only,
    run_keytools,
    tmpfs,
    write_pass,
)


@pytest.fixture
def kt(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Env:
    return Env(tmp_path, capsys, monkeypatch)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content (hidden temporary files included)."""
    return {name: (folder / name).read_bytes() for name in files_in(folder) if (folder / name).is_file()}


def _backups(kt: Env) -> dict[str, Path]:
    """One backup of the 'source' key in each format, made through keytools."""
    kt.generate("source")
    out = {}
    for fmt, extra in (("json", FAST_SCRYPT), ("binary", FAST_SCRYPT), ("pem", FAST_PBKDF2)):
        out[fmt] = kt.tmp / f"backup.{fmt}"
        kt.ok("backup", fmt, "--name", "source", "--out", out[fmt], "--passphrase-file", kt.pass_file,
              "--backup-passphrase-file", kt.backup_pass, *extra)  # fmt: skip
    out["paper"] = kt.tmp / "paper.txt"
    kt.ok("backup", "paper", "--name", "source", "--out", out["paper"], "--passphrase-file", kt.pass_file)
    kt.ok("backup", "shamir", "--name", "source", "--out-dir", kt.tmp / "shares", "--threshold", "2", "--shares",
          "2", "--passphrase-file", kt.pass_file)  # fmt: skip
    out["shamir"] = kt.tmp / "shares" / "source-share-g1-m1.txt"
    return out


def _bad_inputs(kt: Env, backups: dict[str, Path]) -> list[tuple[str, list[Path], Path, int, str]]:
    """(case, files, passphrase file, expected exit code, expected message) for every broken input."""
    wrong = write_pass(kt.tmp / "wrong.txt", "not-the-passphrase-5521")
    cases: list[tuple[str, list[Path], Path, int, str]] = []
    for fmt in ("json", "binary", "pem"):
        cases.append((f"wrong passphrase {fmt}", [backups[fmt]], wrong, 4, "wrong passphrase"))
    for fmt in ("json", "binary", "pem", "paper", "shamir"):
        data = backups[fmt].read_bytes()
        cut = kt.tmp / f"truncated.{fmt}"
        cut.write_bytes(data[: len(data) * 2 // 3])
        cases.append((f"truncated {fmt}", [cut], kt.backup_pass, 1, ""))
    for fmt, index in (("json", -20), ("binary", -5), ("binary", 60), ("pem", 100)):
        flipped_data = bytearray(backups[fmt].read_bytes())
        flipped_data[index] ^= 0x04
        flipped = kt.tmp / f"flipped{index}.{fmt}"
        flipped.write_bytes(bytes(flipped_data))
        cases.append((f"flipped byte {fmt} {index}", [flipped], kt.backup_pass, 0, ""))
    public = kt.tmp / "public.pem"
    kt.ok("export", "--name", "source", "--out", public)
    rsa_pem = kt.tmp / "rsa.pem"
    rsa_pem.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    text = kt.tmp / "notes.txt"
    text.write_text("shopping list: eggs, milk\n")
    cases += [
        ("wrong format: public key", [public], kt.backup_pass, 1, "this is a public key"),
        ("wrong format: RSA", [rsa_pem], kt.backup_pass, 1, "this PEM is RSA, not Ed25519"),
        ("wrong format: text", [text], kt.backup_pass, 1, "is not a backup"),
        ("missing file", [kt.tmp / "does-not-exist.json"], kt.backup_pass, 1, "no such file"),
    ]
    return cases


def test_broken_backups_fail_cleanly_and_change_nothing(kt: Env) -> None:
    backups = _backups(kt)
    keyid = kt.generate("default")
    home_before = snapshot(kt.home)
    tmp_before = set(files_in(kt.tmp))
    for case, files, passphrase, code, message in _bad_inputs(kt, backups):
        commands: list[list[str | Path]] = [
            ["restore", *files, "--force", "--backup-passphrase-file", passphrase, "--passphrase-file", kt.pass_file],
            ["backup", "verify", *files, "--backup-passphrase-file", passphrase],
        ]
        for command in commands:
            result = kt(*command)
            line = result.error_line()  # exactly one line
            assert result.code != 0 and result.out == "", (case, command[0], result)
            assert code == 0 or result.code == code, (case, command[0], result)
            assert message in line, (case, command[0], line)
        assert snapshot(kt.home) == home_before, case  # no partial file, no changed key or metadata
    assert jwk_thumbprint(kt.key()) == keyid
    assert {f for f in files_in(kt.tmp) if f.startswith(".") or "/." in f} == set()  # no temporary files anywhere
    assert tmp_before <= set(files_in(kt.tmp))


def test_other_commands_report_missing_files_in_one_line(kt: Env) -> None:
    kt.generate()
    missing = kt.tmp / "missing"
    commands: list[list[str | Path]] = [
        ["import", missing, "--name", "x", "--passphrase-file", kt.pass_file],
        ["sign", missing, "--passphrase-file", kt.pass_file],
        ["verify", missing, missing],
        ["keyid", missing],
        ["verify", kt.pass_file, kt.pass_file, "--key", missing],
    ]
    for command in commands:
        result = kt(*command)
        assert result.code == 1 and "no such file" in result.error_line(), command


# --- read-only folder and full disk ------------------------------------------------------------------


def _read_only(path: Path) -> None:
    if os.geteuid() == 0:
        remount_read_only(path)
    else:  # without root, mode bits are honoured
        os.chmod(path, 0o500)


def test_backup_into_a_read_only_folder(kt: Env) -> None:
    kt.generate()
    with tmpfs(kt.tmp / "ro") as folder:
        _read_only(folder)
        for fmt, extra in (("json", FAST_SCRYPT), ("pem", FAST_PBKDF2), ("paper", ())):
            args: list[str | Path] = ["--backup-passphrase-file", kt.backup_pass] if fmt != "paper" else []
            result = kt("backup", fmt, "--out", folder / f"b.{fmt}", "--passphrase-file", kt.pass_file, *args, *extra)
            assert result.code == 1 and "Read-only file system" in result.error_line(), fmt
        shamir = kt("backup", "shamir", "--out-dir", folder / "shares", "--threshold", "2", "--shares", "3",
                    "--passphrase-file", kt.pass_file)  # fmt: skip
        assert shamir.code == 1 and "Read-only file system" in shamir.error_line()
        assert files_in(folder) == []
    assert kt.store.metadata("default").backups == []


def test_key_store_on_a_read_only_folder(kt: Env, tmp_path: Path) -> None:
    if not can_mount():
        pytest.skip("needs root to mount a tmpfs (root ignores chmod 0500, so the tmpfs is remounted read-only)")
    with tmpfs(tmp_path / "mnt") as folder:
        kt.home = folder / "home"
        keyid = kt.generate()
        backup = kt.tmp / "b.json"
        kt.ok("backup", "json", "--out", backup, "--passphrase-file", kt.pass_file, "--same-passphrase", *FAST_SCRYPT)
        before = snapshot(folder)
        _read_only(folder)
        new = write_pass(kt.tmp / "new.txt", "new passphrase 1")
        store_commands: list[list[str | Path]] = [
            ["change-passphrase", "--passphrase-file", kt.pass_file, "--new-passphrase-file", new],
            ["generate", "--name", "second", "--passphrase-file", kt.pass_file],
            ["restore", backup, "--force", "--backup-passphrase-file", kt.pass_file, "--passphrase-file", new],
            ["delete", "--force"],
        ]
        for command in store_commands:
            result = kt(*command)
            assert result.code == 1 and "Read-only file system" in result.error_line(), command
        assert snapshot(folder) == before
        assert jwk_thumbprint(kt.key()) == keyid  # still opens with the old passphrase


def test_backup_onto_a_full_disk(kt: Env) -> None:
    kt.generate()
    with tmpfs(kt.tmp / "full") as folder:
        fill(folder)
        before = snapshot(folder)
        for fmt, extra in (("json", FAST_SCRYPT), ("binary", FAST_SCRYPT), ("pem", FAST_PBKDF2), ("paper", ())):
            args: list[str | Path] = ["--backup-passphrase-file", kt.backup_pass] if fmt != "paper" else []
            result = kt("backup", fmt, "--out", folder / f"b.{fmt}", "--passphrase-file", kt.pass_file, *args, *extra)
            assert result.code == 1 and "No space left on device" in result.error_line(), fmt
        (folder / "shares").mkdir()
        shamir = kt("backup", "shamir", "--out-dir", folder / "shares", "--threshold", "2", "--shares", "3",
                    "--passphrase-file", kt.pass_file)  # fmt: skip
        assert shamir.code == 1 and "No space left on device" in shamir.error_line()
        assert snapshot(folder) == before  # no partial or temporary file
    assert kt.store.metadata("default").backups == []


def test_key_store_on_a_full_disk(kt: Env, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt") as folder:
        kt.home = folder / "home"
        keyid = kt.generate()
        backup = kt.tmp / "b.json"
        kt.ok("backup", "json", "--out", backup, "--passphrase-file", kt.pass_file, "--same-passphrase", *FAST_SCRYPT)
        seed = kt.tmp / "seed.hex"
        seed.write_text(os.urandom(32).hex())
        fill(folder)
        before = snapshot(folder)
        new = write_pass(kt.tmp / "new.txt", "new passphrase 2")
        store_commands: list[list[str | Path]] = [
            ["change-passphrase", "--passphrase-file", kt.pass_file, "--new-passphrase-file", new],
            ["generate", "--name", "second", "--passphrase-file", kt.pass_file],
            ["restore", backup, "--force", "--backup-passphrase-file", kt.pass_file, "--passphrase-file", new],
            ["import", seed, "--name", "x", "--passphrase-file", kt.pass_file],
        ]
        for command in store_commands:
            result = kt(*command)
            assert result.code == 1 and "No space left on device" in result.error_line(), (command, result)
        assert snapshot(folder) == before
        assert jwk_thumbprint(kt.key()) == keyid


def test_full_disk_as_a_real_process(tmp_path: Path) -> None:
    """The same as a user sees it: one stderr line, exit 1, nothing on stdout, nothing left behind."""
    home = tmp_path / "home"
    pass_file = write_pass(tmp_path / "p", PASSPHRASE)
    backup_pass = write_pass(tmp_path / "b", BACKUP_PASSPHRASE)
    assert run_keytools("--home", home, "generate", "--passphrase-file", pass_file).code == 0
    with tmpfs(tmp_path / "full") as folder:
        fill(folder)
        before = snapshot(folder)
        result = run_keytools("--home", home, "backup", "json", "--out", folder / "b.json", "--passphrase-file",
                              pass_file, "--backup-passphrase-file", backup_pass, *FAST_SCRYPT)  # fmt: skip
        assert result.code == 1 and result.out == ""
        assert result.error_line() == f"keytools: error: cannot write {folder / 'b.json'}: No space left on device"
        assert snapshot(folder) == before
