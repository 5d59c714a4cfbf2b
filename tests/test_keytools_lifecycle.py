"""keytools against a live server: rotate, revoke, approve, client-keys, and every ``keytools admin`` command."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import datafold_auth as df
from datafold_auth.admin import AdminApp
from datafold_auth.client.requests import DatafoldAuth
from datafold_auth.keys import FileKeyStore, pkcs8
from datafold_auth.middleware import DatafoldAuthMiddleware
from datafold_auth.registration import RegistrationApp

from .test_keytools_helpers import PASSPHRASE, Result, cli, write_pass
from .test_registration_http import wsgi_server


class Env:
    """A registry file, a server on it (registration at /register, admin at /admin, API at /api), and keytools homes."""

    def __init__(self, tmp: Path, base: str, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp, self.base = tmp, base
        self.db = f"sqlite:///{tmp}/keys.db"
        self.pass_file = write_pass(tmp / "pass.txt", PASSPHRASE)
        self._capsys, self._monkeypatch = capsys, monkeypatch

    @property
    def keys_url(self) -> str:
        return self.base + "/register/keys"

    def run(self, home: str, *args: str | Path) -> Result:
        return cli("--home", self.tmp / home, *args, capsys=self._capsys, monkeypatch=self._monkeypatch)

    def ok(self, home: str, *args: str | Path) -> Result:
        result = self.run(home, *args)
        assert result.code == 0, (args, result.out, result.err)
        return result

    def keyed(self, home: str, *args: str | Path) -> Result:
        """``ok`` with the key passphrase options appended."""
        return self.ok(home, *args, "--passphrase-file", self.pass_file)

    def new_key(self, home: str, client_id: str) -> str:
        made = self.keyed(home, "generate", "--client-id", client_id)
        return made.out.splitlines()[0].removeprefix("keyid: ")

    def signer(self, home: str, name: str = "default") -> df.Signer:
        return df.Signer(FileKeyStore(self.tmp / home / "keys").load(name, passphrase=PASSPHRASE.encode()))

    def hello(self, signer: df.Signer) -> requests.Response:
        return requests.get(self.base + "/api/hello", auth=DatafoldAuth(signer), timeout=10)


def _hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"hello": environ["REMOTE_USER"]}).encode()]


@pytest.fixture
def env(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setattr(pkcs8, "KDF_ITERATIONS", 1000)  # fast key files (tests/test_keys_pkcs8.py checks the real cost)
    registry = df.SQLiteRegistry(tmp_path / "keys.db")
    nonces = df.MemoryNonceStore()
    verifier = df.Verifier(registry, nonces, cache_ttl=0)
    app = DispatcherMiddleware(
        NotFound(),
        {
            "/register": RegistrationApp(
                registry, nonces, allow_join=True, allowed_scopes={"read"}, rotation_overlap=60
            ),
            "/admin": AdminApp(registry, verifier),
            "/api": DatafoldAuthMiddleware(_hello, verifier),
        },
    )
    with wsgi_server(app) as base:
        yield Env(tmp_path, base, capsys, monkeypatch)
    registry.close()


def test_rotate_revoke_approve_and_list_devices(env: Env) -> None:
    keyid = env.new_key("laptop", "alice")
    shown = env.ok("laptop", "show", "--json")
    assert json.loads(shown.out)["fingerprint"] == df.key_fingerprint(keyid)
    assert f"fingerprint: {df.key_fingerprint(keyid)}" in env.ok("laptop", "show").out
    env.keyed("laptop", "register", env.keys_url)
    old = env.signer("laptop")
    assert env.hello(old).json() == {"hello": "alice"}

    rotated = env.keyed("laptop", "rotate", env.keys_url, "--json")
    doc = json.loads(rotated.out)
    new_keyid = doc["key"]["keyid"]
    assert doc["previous"]["keyid"] == keyid and doc["key"]["replaces"] == keyid
    assert "has no backup yet" in rotated.err
    new = env.signer("laptop")
    assert new.keyid == new_keyid and not FileKeyStore(env.tmp / "laptop" / "keys").exists("default.next")
    assert env.hello(new).status_code == 200 and env.hello(old).status_code == 200  # the overlap
    meta = json.loads(env.ok("laptop", "show", "--json").out)
    assert meta["keyid"] == new_keyid and meta["servers"] == [env.keys_url] and meta["client_id"] == "alice"

    env.new_key("phone", "alice")
    joined = env.keyed("phone", "register", env.keys_url)
    assert "status pending" in joined.out
    phone = env.signer("phone")
    listing = env.keyed("laptop", "client-keys", env.keys_url).out
    assert f"* {new_keyid}  active" in listing and f"{phone.keyid}  pending" in listing
    assert df.key_fingerprint(phone.keyid) in listing
    env.keyed("laptop", "approve", env.keys_url, phone.keyid)
    assert env.hello(phone).json() == {"hello": "alice"}

    revoked = env.keyed("phone", "revoke", env.keys_url, "--keyid", new_keyid, "--reason", "laptop stolen")
    assert f"revoked keyid {new_keyid}" in revoked.out
    assert env.hello(new).json()["reason"] == "key_not_active"
    own = env.keyed("phone", "revoke", env.keys_url)
    assert "no longer signs requests" in own.err
    failed = env.run("phone", "revoke", env.keys_url, "--passphrase-file", env.pass_file)
    assert failed.code == 1 and "HTTP 401 key_not_active" in failed.error_line()


def test_an_interrupted_rotation_is_finished_by_running_it_again(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.new_key("laptop", "bob")
    env.keyed("laptop", "register", env.keys_url)
    from keytools import http

    real_send = http.send
    calls = {"n": 0}

    def lose_the_answer(request: df.Request, *, timeout: float) -> requests.Response:
        calls["n"] += 1
        response = real_send(request, timeout=timeout)
        if calls["n"] == 1:
            raise http.KeytoolsError("cannot reach the server: ConnectionError")  # the answer is lost
        return response

    monkeypatch.setattr("keytools.commands.rotate.send", lose_the_answer)
    assert env.run("laptop", "rotate", env.keys_url, "--passphrase-file", env.pass_file).code == 1
    pending = FileKeyStore(env.tmp / "laptop" / "keys").metadata("default.next").keyid
    monkeypatch.setattr("keytools.commands.rotate.send", real_send)
    finished = env.keyed("laptop", "rotate", env.keys_url)
    assert "finishing the interrupted rotation" in finished.err
    assert env.signer("laptop").keyid == pending
    assert env.hello(env.signer("laptop")).json() == {"hello": "bob"}


def test_register_names_the_refused_scopes(env: Env) -> None:
    env.new_key("laptop", "dave")
    refused = env.run(
        "laptop",
        "register",
        env.keys_url,
        "--scope",
        "read",
        "--scope",
        "read:itme",
        "--passphrase-file",
        env.pass_file,
    )
    assert refused.code == 1
    assert refused.error_line() == (
        "keytools: error: registration refused: HTTP 403 scope_not_allowed "
        "(A requested scope may not be self-assigned.); refused scopes: read:itme"
    )
    assert env.keyed("laptop", "register", env.keys_url, "--scope", "read").code == 0


def test_admin_commands(env: Env, tmp_path: Path) -> None:
    env.new_key("ops", "ops")
    boot = env.keyed("ops", "admin", "bootstrap", "--registry", env.db, "--client-id", "ops", "--json")
    assert json.loads(boot.out)["scopes"] == ["admin"]
    admin = ("--url", env.base + "/admin", "--passphrase-file", env.pass_file)
    env.new_key("user", "carol")
    env.keyed("user", "register", env.keys_url)
    carol = env.signer("user")
    refused = env.run("user", "admin", "counts", *admin)
    assert refused.code == 1 and "HTTP 403 insufficient_scope" in refused.error_line()

    listing = env.ok("ops", "admin", "list", "--client-id", "carol", *admin).out
    assert carol.keyid in listing and "active" in listing
    env.ok("ops", "admin", "suspend", carol.keyid, "--reason", "checking", *admin)
    shown = env.ok("ops", "admin", "show", carol.keyid, *admin).out
    assert "suspended" in shown and "reason: checking" in shown
    assert env.hello(carol).json()["reason"] == "key_not_active"
    env.ok("ops", "admin", "approve", carol.keyid, *admin)
    assert env.hello(carol).status_code == 200

    pub = df.public_jwk(df.Signer(df.keys.generate_private_key()).public_key)
    imports = tmp_path / "keys.csv"
    imports.write_text(f"client_id,public_key,label,scopes,status\nimp,{pub['x']},imported,read,pending\n")
    assert "imported 1 key(s), 0 refused" in env.ok("ops", "admin", "import", imports, *admin).out
    pending = json.loads(env.ok("ops", "admin", "list", "--status", "pending", "--all", *admin, "--json").out)
    assert [k["client_id"] for k in pending["keys"]] == ["imp"]
    counts = json.loads(env.ok("ops", "admin", "counts", *admin, "--json").out)
    assert counts["counts"]["pending"] == 1 and counts["total"] == 3
    bulk = env.ok("ops", "admin", "bulk-revoke", "--client-id", "imp", "--reason", "test", *admin).out
    assert "revoked 1 key(s), 0 refused" in bulk
    assert "expired 0 key(s)" in env.ok("ops", "admin", "expire", *admin).out
    env.ok("ops", "admin", "revoke", carol.keyid, "--reason", "done\u2028\x85\x9b\u202e", *admin)

    export = tmp_path / "audit.jsonl"
    env.ok("ops", "admin", "audit", "export", "--out", export, *admin)
    events = [json.loads(line)["event"] for line in export.read_text().splitlines()]
    # a reason with separators and C1 controls: stored as "done????", and the export to standard
    # output (through keytools' escaping) is the same JSON lines as the file
    to_stdout = env.ok("ops", "admin", "audit", "export", *admin).out
    assert [json.loads(line) for line in to_stdout.split("\n") if line] == [
        json.loads(line) for line in export.read_text().split("\n") if line
    ]
    assert json.loads(export.read_text().split("\n")[-2])["reason"] == "done???\u202e"
    assert events[:3] == ["registered", "registered", "suspended"] and events[-1] == "revoked"
    assert "imported" in events
    by_file = json.loads(env.ok("ops", "admin", "audit", "verify", "--file", export, "--json").out)
    by_api = json.loads(env.ok("ops", "admin", "audit", "verify", *admin, "--json").out)
    by_db = json.loads(env.ok("ops", "admin", "audit", "verify", "--registry", env.db, "--json").out)
    assert by_file == by_api == by_db and by_file["entries"] == len(events)
    head = by_file["head_hash"]

    # tampering: an edited exported line, and an edited row in the database
    lines = export.read_text().splitlines()
    lines[2] = lines[2].replace('"checking"', '"routine"')
    export.write_text("\n".join(lines) + "\n")
    broken = env.run("ops", "admin", "audit", "verify", "--file", export)
    assert broken.code == 3 and "entry 3: its hash does not match its content (edited)" in broken.error_line()
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(export.read_text().splitlines()[:2]) + "\n")
    cut = env.run("ops", "admin", "audit", "verify", "--file", truncated, "--expect-head", head)
    assert cut.code == 3 and "expected head" in cut.error_line()
    conn = sqlite3.connect(tmp_path / "keys.db")
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE seq = 4")
    conn.commit()
    conn.close()
    gone = env.run("ops", "admin", "audit", "verify", "--registry", env.db)
    assert gone.code == 3 and "entry 4 is missing" in gone.error_line()
    usage = env.run("ops", "admin", "counts", "--passphrase-file", env.pass_file)
    assert usage.code == 2 and "DATAFOLD_ADMIN_URL" in usage.error_line()


def test_revoking_the_new_key_also_stops_the_old_one_and_show_says_revoked(env: Env) -> None:
    keyid = env.new_key("laptop", "dora")
    registered = env.keyed("laptop", "register", env.keys_url)
    assert "status active" in registered.out
    shown = json.loads(env.ok("laptop", "show", "--json").out)
    assert shown["server_status"] == {env.keys_url: "active"}
    old = env.signer("laptop")
    rotated = env.keyed("laptop", "rotate", env.keys_url)
    # ISO 8601 UTC, like show (the --json answer keeps epoch seconds)
    until = rotated.out.split("the old key verifies until ", 1)[1].split(" ", 1)[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", until), rotated.out
    assert env.hello(old).status_code == 200  # inside its overlap
    revoked = env.keyed("laptop", "revoke", env.keys_url, "--reason", "device exposed")
    assert "no longer signs requests" in revoked.err
    # the new key is revoked, and so is the old one, though its 60 s overlap has not ended
    assert env.hello(env.signer("laptop")).json()["reason"] == "key_not_active"
    assert env.hello(old).json()["reason"] == "key_not_active"
    assert env.run("laptop", "revoke", env.keys_url, "--keyid", keyid, "--passphrase-file", env.pass_file).code == 1
    # show and list tell, without asking the server
    text = env.ok("laptop", "show", "default")
    assert f"servers:     {env.keys_url} (revoked)" in text.out
    assert f"key 'default' is revoked at {env.keys_url}" in text.err
    listing = env.ok("laptop", "list")
    header, row = listing.out.splitlines()[:2]
    assert row.split()[header.split().index("SERVER")] == "revoked"
    assert "no longer usable at a server" in listing.err


def test_after_revoking_the_only_key_the_client_id_stays_taken_and_an_operator_admits_a_new_key(
    env: Env, tmp_path: Path
) -> None:
    # docs/getting-started/keytools.md section 6 and troubleshooting.md (key_not_active, client_id_taken)
    env.new_key("laptop", "erin")
    env.keyed("laptop", "register", env.keys_url)
    env.keyed("laptop", "revoke", env.keys_url)
    again = env.run("laptop", "rotate", env.keys_url, "--passphrase-file", env.pass_file)
    assert again.code == 1 and "HTTP 401 key_not_active" in again.error_line()
    env.keyed("laptop", "generate", "--name", "laptop2", "--client-id", "erin")
    # this server lets devices join: the new key is stored pending, and no key of erin's can approve it
    joined = env.keyed("laptop", "register", env.keys_url, "--name", "laptop2")
    assert "status pending" in joined.out
    new = env.signer("laptop", "laptop2")
    assert env.hello(new).json()["reason"] == "key_not_active"
    env.new_key("ops", "ops")
    env.keyed("ops", "admin", "bootstrap", "--registry", env.db, "--client-id", "ops")
    admin = ("--url", env.base + "/admin", "--passphrase-file", env.pass_file)
    env.ok("ops", "admin", "approve", new.keyid, "--reason", "erin's new laptop, fingerprint compared", *admin)
    assert env.hello(new).json() == {"hello": "erin"}
    # without allow_join, the operator imports the exported public key under the same client id
    env.keyed("laptop", "generate", "--name", "laptop3", "--client-id", "erin")
    jwk = env.ok("laptop", "export", "--name", "laptop3", "--format", "jwk").out
    line = tmp_path / "erin.jsonl"
    line.write_text(json.dumps({"jwk": json.loads(jwk), "client_id": "erin"}) + "\n")
    assert "imported 1 key(s), 0 refused" in env.ok("ops", "admin", "import", line, *admin).out
    assert env.hello(env.signer("laptop", "laptop3")).json() == {"hello": "erin"}


def test_unreachable_servers_are_named_with_host_port_and_cause(env: Env) -> None:
    import socket

    env.new_key("laptop", "finn")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections, never answers
    try:
        cases = [
            (("request", "GET", f"http://127.0.0.1:{port}/api/hello"), f"127.0.0.1:{port}", "connection refused"),
            (("register", f"http://127.0.0.1:{port}/register/keys"), f"127.0.0.1:{port}", "connection refused"),
            (("revoke", f"http://127.0.0.1:{port}/register/keys"), f"127.0.0.1:{port}", "connection refused"),
            (
                ("request", "GET", "http://no-such-host.invalid:8000/x"),
                "no-such-host.invalid:8000",
                "DNS lookup failed",
            ),
            (
                ("request", "GET", f"http://127.0.0.1:{silent.getsockname()[1]}/x", "--timeout", "0.3"),
                f"127.0.0.1:{silent.getsockname()[1]}",
                "no answer after 0.3 s",
            ),
        ]
        for args, where, why in cases:
            result = env.run("laptop", *args, "--passphrase-file", env.pass_file)
            line = result.error_line()
            assert result.code == 1 and f"cannot reach {where} (" in line and why in line, line
            assert "ConnectionError" not in line
    finally:
        silent.close()


def test_a_key_restored_from_a_pem_backup_has_no_client_id_and_says_how_to_give_it(env: Env) -> None:
    # docs/keys.md (Backups): PEM, paper and Shamir backups carry no client_id
    keyid = env.new_key("laptop", "erin")
    env.keyed("laptop", "register", env.keys_url)
    backup = env.tmp / "erin.pem"
    env.keyed("laptop", "backup", "pem", "--out", backup, "--backup-passphrase-file", env.pass_file)
    env.keyed("desk", "restore", backup, "--backup-passphrase-file", env.pass_file)
    shown = env.ok("desk", "show").out
    assert "client_id:   -\n" in shown
    assert "servers:     - (none recorded; 'keytools client-keys URL' asks a server about this key" in shown
    failed = env.run("desk", "client-keys", env.keys_url, "--passphrase-file", env.pass_file)
    assert failed.code == 1 and failed.error_line() == (
        "keytools: error: key 'default' has no client_id recorded (a PEM, paper or Shamir backup carries none);"
        " pass --client-id ID, or restore it with --client-id ID"
    )
    assert f"* {keyid}  active" in env.keyed("desk", "client-keys", env.keys_url, "--client-id", "erin").out
    # another client's listing is still the server's refusal, relayed
    other = env.run("desk", "client-keys", env.keys_url, "--client-id", "nobody", "--passphrase-file", env.pass_file)
    assert other.code == 1 and "HTTP 403 client_mismatch" in other.error_line()
    # restore --client-id records it: client-keys works as is, and show has the server's answer
    env.keyed("desk2", "restore", backup, "--backup-passphrase-file", env.pass_file, "--client-id", "erin")
    assert f"* {keyid}  active" in env.keyed("desk2", "client-keys", env.keys_url).out
    shown = env.ok("desk2", "show").out
    assert "client_id:   erin\n" in shown and f"servers:     {env.keys_url} (active)\n" in shown
    assert "security:    good (file store, encrypted, backed up)\n" in shown


def test_show_calls_a_revoked_key_inactive_whatever_its_storage(env: Env) -> None:
    env.new_key("laptop", "fay")
    env.keyed("laptop", "register", env.keys_url)
    env.keyed("laptop", "backup", "pem", "--out", env.tmp / "fay.pem", "--backup-passphrase-file", env.pass_file)
    assert "security:    good (file store, encrypted, backed up)\n" in env.ok("laptop", "show").out
    env.keyed("laptop", "revoke", env.keys_url)
    shown = env.ok("laptop", "show").out
    assert (
        f"security:    inactive (revoked at {env.keys_url}: it signs nothing there; storage: good (file store,"
        " encrypted, backed up))\n"
    ) in shown
    assert "security:    good" not in shown


def _hostile_server(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A registration endpoint whose answers carry terminal escape sequences (ESC, OSC, BEL, CR)."""
    if environ["PATH_INFO"].startswith("/refuse"):
        start_response("403 Forbidden", [("Content-Type", "application/problem+json")])
        doc: dict[str, Any] = {
            "title": "\x1b]0;PWNED\x07\x1b[31mred",
            "status": 403,
            "reason": "scope_not_allowed\x1b[2K\rFAKE: registered OK",
            "refused_scopes": ["read", "\x1b[31m"],
        }
    else:
        start_response("201 Created", [("Content-Type", "application/json")])
        doc = {"keyid": "\x1b[31mRED", "client_id": "c\x9b0m", "status": "active\x1b]0;PWNED\x07\x9b\x7f"}
    return [json.dumps(doc).encode()]


def test_server_text_cannot_drive_the_terminal(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a server sends (reason, title, keyid, status) reaches the terminal with its control
    characters written ``\\xNN``, on the error line and on standard output."""
    monkeypatch.setattr(pkcs8, "KDF_ITERATIONS", 1000)
    pass_file = write_pass(tmp_path / "pass.txt", PASSPHRASE)

    def run(*args: str | Path) -> Result:
        return cli("--home", tmp_path / "home", *args, capsys=capsys, monkeypatch=monkeypatch)

    assert run("generate", "--passphrase-file", pass_file).code == 0
    with wsgi_server(_hostile_server) as base:
        refused = run("register", f"{base}/refuse/keys", "--scope", "read", "--passphrase-file", pass_file)
        accepted = run("register", f"{base}/accept/keys", "--passphrase-file", pass_file)
    assert refused.code == 1
    assert refused.err == (
        "keytools: error: registration refused: HTTP 403 scope_not_allowed\\u001b[2K FAKE: registered OK "
        "(\\u001b]0;PWNED\\u0007\\u001b[31mred); refused scopes: read\n"
    )
    assert accepted.code == 0
    assert accepted.out.splitlines()[0] == (
        "registered keyid \\u001b[31mRED as client 'c\\x9b0m': status active\\u001b]0;PWNED\\u0007\\u009b\\u007f"
    )
    # what keytools kept of the answer (the status, in the key's metadata) stays JSON in --json output
    listed = run("list", "--json")
    assert listed.code == 0
    assert list(json.loads(listed.out)[0]["server_status"].values()) == ["active\x1b]0;PWNED\x07\x9b\x7f"]
    for text in (refused.err, accepted.out, listed.out):
        assert not any(ch in text for ch in "\x1b\x07\r\x9b")
