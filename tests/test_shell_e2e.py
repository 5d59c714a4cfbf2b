"""The shell scripts against the real example apps on loopback, under dash and bash.

Registration by proof of possession, signed GET and POST accepted by the
Python middleware (WSGI through Flask; ASGI through FastAPI), headers from
``datafold-sign-request`` sent by plain curl, replay and tampering refused,
and keys crossing between the scripts and the Python toolkit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from datafold_auth import Request, Signer
from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import decode_private_key

from .test_shell_scripts import (
    PASSPHRASE,
    SHELLS,
    ExampleServer,
    clean_env,
    error_line,
    example_server,
    needs_tools,
    ok,
    run,
    write_pass_file,
)

pytestmark = needs_tools


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shell-e2e")


@pytest.fixture(scope="module")
def flask_server(work: Path) -> Iterator[ExampleServer]:
    with example_server("flask", work) as server:
        yield server


@pytest.fixture(scope="module")
def pass_file(work: Path) -> Path:
    return write_pass_file(work / "pass")


def _generate(shell: str, tmp_path: Path, pass_file: Path) -> tuple[Path, str]:
    key_file = tmp_path / "keys" / "key.pem"
    keyid = ok(run(shell, "generate", "--quiet", "--passphrase-file", pass_file, key_file)).strip()
    return key_file, keyid


@pytest.mark.parametrize("shell", SHELLS)
def test_register_then_signed_get_and_post(
    shell: str, tmp_path: Path, flask_server: ExampleServer, pass_file: Path
) -> None:
    key_file, keyid = _generate(shell, tmp_path, pass_file)
    client_id = f"sh-{shell}-{keyid[:8]}"
    out = ok(run(shell, "register", "-k", key_file, "--passphrase-file", pass_file, "--client-id", client_id,
                 "--label", 'deploy "box" \\ 1', flask_server.register_url))  # fmt: skip
    assert out == (
        f"registered keyid {keyid} as client '{client_id}': status active\nserver: {flask_server.register_url}\n"
    )
    record = requests.get(f"{flask_server.register_url}/{keyid}", timeout=10).json()
    assert (record["client_id"], record["label"], record["status"]) == (client_id, 'deploy "box" \\ 1', "active")

    got = run(shell, "request", "-k", key_file, "--passphrase-file", pass_file, "GET", flask_server.url + "/api/hello")
    assert json.loads(ok(got)) == {"hello": client_id, "keyid": keyid, "remote_user": client_id}

    body = '{"name": "widget", "qty": 3, "note": "caf\u00e9"}'
    posted = run(shell, "request", "-k", key_file, "--passphrase-file", pass_file, "-d", body, "POST",
                 flask_server.url + "/api/items")  # fmt: skip
    assert json.loads(ok(posted)) == {"created": json.loads(body), "owner": client_id}

    # A body from a file (binary-safe) and an explicit Content-Type, with -i.
    (tmp_path / "body.json").write_bytes(b'{"bytes": "\\u0000\\u00ff", "n": [1, 2]}\n')
    posted = run(shell, "request", "-i", "-k", key_file, "--passphrase-file", pass_file, "--data-file",
                 tmp_path / "body.json", "-H", "Content-Type: application/json", "POST",
                 flask_server.url + "/api/items")  # fmt: skip
    head, _, rest = ok(posted).partition("\n\n")
    assert head.startswith("HTTP/1.1 200")
    assert json.loads(rest)["created"] == {"bytes": "\u0000\u00ff", "n": [1, 2]}

    # The registered key is already known: a second registration is refused with the server's reason.
    again = run(shell, "register", "-k", key_file, "--passphrase-file", pass_file, flask_server.register_url)
    assert "HTTP 409 duplicate_key" in error_line(again, "register", 4)


@pytest.mark.parametrize("shell", SHELLS)
def test_sign_request_headers_work_with_plain_curl(
    shell: str, tmp_path: Path, flask_server: ExampleServer, pass_file: Path
) -> None:
    key_file, keyid = _generate(shell, tmp_path, pass_file)
    ok(run(shell, "register", "-k", key_file, "--passphrase-file", pass_file, flask_server.register_url))
    url = flask_server.url + "/api/items"
    body = '{"name":"widget"}'
    headers = tmp_path / "headers.txt"
    headers.write_text(
        ok(run(shell, "sign-request", "-k", key_file, "--passphrase-file", pass_file, "-H",
               "Content-Type: application/json", "-d", body, "POST", url))
    )  # fmt: skip
    lines = headers.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Content-Digest", "Signature-Input", "Signature"]

    def curl(data: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["curl", "-sS", "--path-as-is", "-H", f"@{headers}", "-H", "Content-Type: application/json",
             "--data-binary", data, "-w", "\n%{http_code}", url],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    first = curl(body)
    answer, status = first.stdout.rsplit("\n", 1)
    assert status == "200", first.stdout
    assert json.loads(answer)["owner"] == keyid  # registered without a client id: the keyid
    replayed = curl(body)
    assert replayed.stdout.endswith("401") and '"reason":"replayed_nonce"' in replayed.stdout

    # A fresh signature, then the body swapped: the Content-Digest no longer matches.
    headers.write_text(
        ok(run(shell, "sign-request", "-k", key_file, "--passphrase-file", pass_file, "-H",
               "Content-Type: application/json", "-d", body, "POST", url))
    )  # fmt: skip
    tampered = curl('{"name":"WIDGET"}')
    assert tampered.stdout.endswith("401") and '"reason":"digest_mismatch"' in tampered.stdout


@pytest.mark.parametrize("shell", SHELLS)
def test_unusual_urls_verify(shell: str, tmp_path: Path, flask_server: ExampleServer, pass_file: Path) -> None:
    """Paths and queries are signed and sent exactly as written (verified, then the app answers 404)."""
    key_file, _ = _generate(shell, tmp_path, pass_file)
    ok(run(shell, "register", "-k", key_file, "--passphrase-file", pass_file, flask_server.register_url))
    host = flask_server.url.replace("127.0.0.1", "LocalHost")
    for url in (
        flask_server.url + "/api/a/../b/./c%2Fd?x=%41&y=&z=a+b",
        flask_server.url + "/api/nothing?",
        host + "/api/upper%7e",
    ):
        proc = run(shell, "request", "-k", key_file, "--passphrase-file", pass_file, "GET", url)
        assert "HTTP 404" in error_line(proc, "request", 4), url  # 401 would mean the signature did not verify


@pytest.mark.parametrize("shell", SHELLS)
def test_python_and_scripts_share_keys_with_the_server(
    shell: str, tmp_path: Path, flask_server: ExampleServer, pass_file: Path
) -> None:
    """A script key registered by the scripts signs for Python; a keytools key registered by keytools signs for the scripts."""
    key_file, keyid = _generate(shell, tmp_path, pass_file)
    ok(run(shell, "register", "-k", key_file, "--passphrase-file", pass_file, flask_server.register_url))
    key = decode_private_key(key_file.read_bytes(), PASSPHRASE.encode())
    assert jwk_thumbprint(key) == keyid
    request = Request.from_url("GET", flask_server.url + "/api/hello")
    Signer(key).sign(request)
    answer = requests.get(flask_server.url + "/api/hello", headers=dict(request.headers), timeout=10)
    assert answer.status_code == 200 and answer.json()["keyid"] == keyid

    home = tmp_path / "home"
    base = [sys.executable, "-m", "keytools", "--home", str(home)]
    for args in (["generate", "--client-id", f"kt-{shell}-{keyid[:6]}"], ["register", flask_server.register_url]):
        made = subprocess.run([*base, *args, "--passphrase-file", str(pass_file)], capture_output=True, text=True,
                              env=clean_env(), check=False)  # fmt: skip
        assert made.returncode == 0, made.stderr
    got = run(shell, "request", "-k", home / "keys" / "default.pem", "--passphrase-file", pass_file, "-d",
              '{"from": "sh"}', "POST", flask_server.url + "/api/items")  # fmt: skip
    assert json.loads(ok(got)) == {"created": {"from": "sh"}, "owner": f"kt-{shell}-{keyid[:6]}"}


@pytest.mark.parametrize("shell", SHELLS)
def test_refused_scopes_are_named(shell: str, tmp_path: Path, flask_server: ExampleServer, pass_file: Path) -> None:
    """403 scope_not_allowed: the scripts name the refused scopes (the problem's refused_scopes),
    printing only scopes they sent; a scope-token may hold ']' and ','."""
    key_file, _ = _generate(shell, tmp_path, pass_file)  # the Flask example allows no scope at all
    proc = run(shell, "register", "-k", key_file, "--passphrase-file", pass_file, "--scope", "read",
               "--scope", "x]y,z", "--scope", "r", flask_server.register_url)  # fmt: skip
    assert error_line(proc, "register", 4).endswith(
        "registration refused: HTTP 403 scope_not_allowed; refused scopes: read, x]y,z, r"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_unregistered_key_is_refused_with_the_reason(
    shell: str, tmp_path: Path, flask_server: ExampleServer, pass_file: Path
) -> None:
    key_file, _ = _generate(shell, tmp_path, pass_file)
    proc = run(shell, "request", "-k", key_file, "--passphrase-file", pass_file, "GET", flask_server.url + "/api/hello")
    assert error_line(proc, "request", 4).endswith(f"GET {flask_server.url}/api/hello: HTTP 401 unknown_key")
    assert '"reason":"unknown_key"' in proc.stdout  # the problem document is printed


def test_fastapi_example_accepts_the_scripts(tmp_path: Path, pass_file: Path) -> None:
    """The ASGI middleware (FastAPI example) too: register, GET, POST, setup; under dash."""
    with example_server("fastapi", tmp_path) as server:
        key_file, keyid = _generate("dash", tmp_path, pass_file)
        ok(run("dash", "register", "-k", key_file, "--passphrase-file", pass_file, "--client-id", "asgi-sh",
               server.register_url))  # fmt: skip
        got = ok(
            run("dash", "request", "-k", key_file, "--passphrase-file", pass_file, "GET", server.url + "/api/hello")
        )
        assert json.loads(got) == {"hello": "asgi-sh", "keyid": keyid}
        posted = ok(run("bash", "request", "-k", key_file, "--passphrase-file", pass_file, "-d", '{"a": [1]}', "POST",
                        server.url + "/api/items"))  # fmt: skip
        assert json.loads(posted) == {"created": {"a": [1]}, "owner": "asgi-sh"}
        ok(run("dash", "setup", "--state", tmp_path / "state", "--passphrase-file", pass_file, "--register-url",
               server.register_url, "--verify-url", server.url + "/api/hello"))  # fmt: skip
