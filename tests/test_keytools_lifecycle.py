"""keytools against a live server: rotate, revoke, approve, client-keys, and every ``keytools admin`` command."""

from __future__ import annotations

import json
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
    env.ok("ops", "admin", "revoke", carol.keyid, "--reason", "done", *admin)

    export = tmp_path / "audit.jsonl"
    env.ok("ops", "admin", "audit", "export", "--out", export, *admin)
    events = [json.loads(line)["event"] for line in export.read_text().splitlines()]
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
