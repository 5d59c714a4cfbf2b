"""Rough edges found by the third new-user trial of keytools, one test (or more) per finding.

8 label and created restored from paper and Shamir documents; 9 error messages name the file; 11 Shamir
"minimal sets" reported correctly and every share file named; 12 `import -` warning; 13 plain text is "not a
backup"; 15 an empty passphrase at the prompt is refused at once; 17 a recorded backup file that is gone;
4 a closed stdout pipe (BrokenPipeError) ends quietly.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datafold_auth.keys import FileKeyStore
from keytools.cli import main
from tests.test_keytools_commands import Env
from tests.test_keytools_helpers import FAST_PBKDF2, FAST_SCRYPT, ROOT, run_keytools, write_pass


@pytest.fixture
def kt(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Env:
    return Env(tmp_path, capsys, monkeypatch)


# --- 8: label and created from paper and Shamir documents ------------------------------------------


def test_restore_from_paper_and_shamir_keeps_label_and_created(kt: Env) -> None:
    kt.generate("default", "--label", "work laptop \u00e9")
    original = kt.store.metadata("default")
    kt.ok("backup", "paper", "--out", kt.tmp / "paper.txt", "--passphrase-file", kt.pass_file)
    kt.ok("backup", "shamir", "--out-dir", kt.tmp / "s", "--threshold", "2", "--shares", "3",
          "--passphrase-file", kt.pass_file)  # fmt: skip
    shares = sorted((kt.tmp / "s").iterdir())
    for name, files in (("from-paper", [kt.tmp / "paper.txt"]), ("from-shares", [shares[0], shares[2]])):
        restored = kt.ok("restore", *files, "--name", name, "--passphrase-file", kt.pass_file, "--json")
        result = json.loads(restored.out)
        assert (result["label"], result["created"]) == ("work laptop \u00e9", original.created), name
        assert result["from_unauthenticated_header"] == ["label", "created"]
        assert "label and creation date taken from the header lines of" in restored.err
        assert "which the words do not protect" in restored.err
    verified = kt.ok("backup", "verify", kt.tmp / "paper.txt", "--json")
    assert json.loads(verified.out)["metadata_authenticated"] is False
    assert json.loads(verified.out)["label"] == "work laptop \u00e9"
    # --label wins; a tampered created line is ignored with a warning, and the words still restore
    text = (kt.tmp / "paper.txt").read_text().replace("created: ", "created: 2999")
    (kt.tmp / "edited.txt").write_text(text)
    edited = kt.ok("restore", kt.tmp / "edited.txt", "--name", "edited", "--label", "mine",
                   "--passphrase-file", kt.pass_file, "--json")  # fmt: skip
    assert json.loads(edited.out)["label"] == "mine" and json.loads(edited.out)["from_unauthenticated_header"] == []
    assert "creation date ignored" in edited.err and "header lines" not in edited.err.split("ignored")[-1]


# --- 9 and 11: messages name the file(s); Shamir sets ------------------------------------------------


def test_backup_errors_name_the_file(kt: Env) -> None:
    kt.generate()
    files = {}
    for fmt, extra in (("json", FAST_SCRYPT), ("binary", FAST_SCRYPT), ("pem", FAST_PBKDF2)):
        files[fmt] = kt.tmp / f"b.{fmt}"
        kt.ok("backup", fmt, "--out", files[fmt], "--passphrase-file", kt.pass_file,
              "--backup-passphrase-file", kt.backup_pass, *extra)  # fmt: skip
    kt.ok("backup", "shamir", "--out-dir", kt.tmp / "s", "--threshold", "2", "--shares", "3",
          "--passphrase-file", kt.pass_file)  # fmt: skip
    wrong = write_pass(kt.tmp / "wrong.txt", "not-the-passphrase")
    for path in files.values():
        result = kt("backup", "verify", path, "--backup-passphrase-file", wrong)
        assert result.code == 4 and str(path) in result.error_line() and "wrong passphrase" in result.error_line()
    cuts = {"json": 200, "binary": 100, "pem": 150}
    expected = {
        "json": "not a valid JSON document (truncated or damaged?)",
        "binary": "the binary backup is truncated or malformed",
        "pem": "PEM stops before its -----END ENCRYPTED PRIVATE KEY----- line: the file is truncated",
    }
    for fmt, size in cuts.items():
        cut = kt.tmp / f"cut.{fmt}"
        cut.write_bytes(files[fmt].read_bytes()[:size])
        commands: list[list[str | Path]] = [
            ["restore", cut, "--name", "x", "--passphrase-file", kt.pass_file],
            ["backup", "verify", cut],
        ]
        for command in commands:
            line = (result := kt(*command, "--backup-passphrase-file", kt.backup_pass)).error_line()
            assert result.code == 1 and f"error: {cut}: " in line and expected[fmt] in line, (command, line)
    shares = sorted((kt.tmp / "s").iterdir())
    cut_share = kt.tmp / "cut-share.txt"
    cut_share.write_text("\n".join(shares[2].read_text().splitlines()[:17]))  # the header and 6 rows of 3 words
    result = kt("backup", "verify", shares[0], cut_share)
    assert result.code == 1
    assert f"error: {cut_share}: a share document has 33 numbered words; found 18 (truncated" in result.error_line()


def test_shamir_reports_minimal_sets_correctly_and_names_every_share(kt: Env) -> None:
    keyid = kt.generate()
    made = kt.ok("backup", "shamir", "--out-dir", kt.tmp / "s", "--threshold", "2", "--shares", "3",
                 "--passphrase-file", kt.pass_file)  # fmt: skip
    assert f"verified: all 3 minimal sets of shares restore key {keyid}, and the files read back" in made.out
    as_json = kt.ok("backup", "shamir", "--out-dir", kt.tmp / "t", "--group", "1/1", "--group", "2/3",
                    "--group-threshold", "2", "--passphrase-file", kt.pass_file, "--json")  # fmt: skip
    assert (json.loads(as_json.out)["sets_tried"], json.loads(as_json.out)["sets_total"]) == (3, 3)
    m1, _, m3 = sorted((kt.tmp / "s").iterdir())
    checked = kt.ok("backup", "verify", m1, m3)
    assert checked.out.splitlines()[0] == f"OK: {m1} and {m3} together are a Shamir backup (SLIP-39, 2 shares)"
    assert json.loads(kt.ok("backup", "verify", m1, m3, "--json").out)["files"] == [str(m1), str(m3)]
    single = kt.ok("backup", "verify", kt.tmp / "t" / "default-share-g1-m1.txt", kt.tmp / "t" / "default-share-g2-m1.txt",
                   kt.tmp / "t" / "default-share-g2-m3.txt")  # fmt: skip
    assert single.out.startswith(f"OK: {kt.tmp / 't' / 'default-share-g1-m1.txt'}, ")


# --- 12: import from standard input ----------------------------------------------------------------


def test_import_from_stdin_does_not_speak_of_an_original_file(tmp_path: Path) -> None:
    seed = os.urandom(32).hex().encode()
    result = run_keytools("--home", tmp_path, "import", "-", "--no-encryption", stdin=seed)
    assert result.code == 0, result.err
    assert "the original file" not in result.err
    assert "the key was read from standard input: if it came from a file, delete that file" in result.err
    from_file = tmp_path / "seed.hex"
    from_file.write_bytes(seed)
    again = run_keytools("--home", tmp_path, "import", from_file, "--name", "b", "--no-encryption")
    assert f"the original file {from_file} still holds the key" in again.err


# --- 13: a text that is not a backup ------------------------------------------------------------------


def test_backup_verify_on_plain_text_says_it_is_not_a_backup(kt: Env) -> None:
    doc = kt.tmp / "doc.txt"
    doc.write_text("hello world\n")
    result = kt("backup", "verify", doc)
    line = result.error_line()
    assert result.code == 1 and f"{doc} is not a backup: 2 words of plain text; recognized backups:" in line
    assert "paper backup (24 BIP39 words)" in line and "a paper backup has 24" not in line


# --- 15: an empty passphrase at the prompt ----------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("generate", "empty passphrase refused; use --no-encryption to store the key unencrypted"),
        ("backup", "empty passphrase refused (the passphrase of the backup or imported file)"),
    ],
)
def test_empty_passphrase_at_the_prompt_is_refused_at_once(
    kt: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, message: str
) -> None:
    args = ["generate"]
    if command == "backup":
        kt.generate()
        args = ["backup", "json", "--out", str(kt.tmp / "b.json"), "--passphrase-file", str(kt.pass_file)]
    for name in list(os.environ):
        if name.startswith("DATAFOLD_AUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(sys, "stdin", _Terminal())
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return ""

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    capsys.readouterr()
    assert main(["--home", str(kt.home), *args]) == 2
    assert len(prompts) == 1, prompts  # an empty answer is not asked for again
    assert capsys.readouterr().err == f"keytools: error: {message}\n"
    assert not (kt.tmp / "b.json").exists()


# --- 17: a recorded backup file that is gone --------------------------------------------------------


def test_a_missing_backup_file_is_shown_and_blocks_delete(kt: Env) -> None:
    kt.generate()
    backup = kt.tmp / "b.json"
    kt.ok("backup", "json", "--out", backup, "--passphrase-file", kt.pass_file, "--backup-passphrase-file",
          kt.backup_pass, *FAST_SCRYPT)  # fmt: skip
    assert json.loads(kt.ok("show", "--json").out)["security"] == "good"
    moved = kt.tmp / "moved.json"
    backup.rename(moved)
    shown = kt.ok("show")
    assert f"json {backup.resolve()} (backup file missing; verified " in shown.out
    assert "security:    at-risk (file store, encrypted, NOT backed up)" in shown.out
    assert f"backup file missing: {backup.resolve()}" in shown.err
    info = json.loads(kt.ok("show", "--json").out)
    assert info["security"] == "at-risk" and info["backups"][0]["missing"] is True
    assert "MISSING" in kt.ok("list").out and json.loads(kt.ok("list", "--json").out)[0]["backups"][0]["missing"]
    refused = kt("delete")
    assert refused.code == 1 and f"(recorded backup file missing: {backup.resolve()})" in refused.error_line()
    assert kt.store.exists("default")
    backup.write_bytes(b"")  # an empty file is no backup either
    assert json.loads(kt.ok("show", "--json").out)["backups"][0]["missing"] is True
    backup.unlink()
    # the moved file, verified and recorded, makes the key good again (nothing is decrypted for `show`)
    kt.ok("backup", "verify", moved, "--backup-passphrase-file", kt.backup_pass, "--record")
    info = json.loads(kt.ok("show", "--json").out)
    assert info["security"] == "good" and [b["missing"] for b in info["backups"]] == [True, False]
    deleted = json.loads(kt.ok("delete", "--json").out)
    assert (deleted["backups"], deleted["missing_backups"]) == (1, [str(backup.resolve())])


def test_paper_and_shamir_files_may_be_deleted(kt: Env) -> None:
    """Their files are meant to go once printed or handed out: not reported missing."""
    kt.generate()
    kt.ok("backup", "paper", "--out", kt.tmp / "paper.txt", "--passphrase-file", kt.pass_file)
    (kt.tmp / "paper.txt").unlink()
    info = json.loads(kt.ok("show", "--json").out)
    assert info["security"] == "good" and info["backups"][0]["missing"] is False
    assert FileKeyStore(kt.home / "keys").exists("default")


# --- 4: a reader that goes away -------------------------------------------------------------------


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
def test_closed_stdout_pipe_ends_quietly(tmp_path: Path, buffered: bool) -> None:
    """`keytools list --json | head -c1`: the reader is gone before keytools writes; no traceback, exit 1."""
    home = tmp_path / "home"
    for name in ("a", "b"):
        assert run_keytools("--home", home, "generate", "--name", name, "--no-encryption").code == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_AUTH_", "PYTHONUNBUFFERED"))}
    env.update({"PYTHONPATH": str(ROOT), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"})
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    for args in (["list", "--json"], ["list"], ["show", "--name", "a"], ["export", "--name", "a"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # like `| head -c1` once head has exited
        try:
            done = subprocess.run([sys.executable, "-m", "keytools", "--home", str(home), *args], stdout=write_end,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, timeout=120, check=False)  # fmt: skip
        finally:
            os.close(write_end)
        err = done.stderr.decode()
        assert done.returncode == 1, (args, done.returncode, err)
        assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, (args, err)
