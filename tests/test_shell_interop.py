"""The shell scripts agree with the Python toolkit and the published vectors, byte for byte.

* keys and keyids: RFC 9421 B.1.4 and RFC 8037 A.1/A.3 keys, keytools-made keys;
* the signature base and headers of ``datafold-sign-request`` equal those of
  :class:`datafold_auth.Signer` for the same inputs, ``created`` and nonce;
* the library's openssl signing reproduces RFC 9421 B.2.6;
* keys made by the scripts load in :mod:`datafold_auth.keys` and keytools
  keys work in the scripts;
* (no secret on any command line: tests/test_secrets_shell.py, with the secrets harness).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import Request, Signer, profile
from datafold_auth.jwk import jwk_thumbprint, public_jwk
from datafold_auth.keys import FileKeyStore, KeyMetadata, decode_private_key, encode_private_key
from datafold_auth.registration import registration_request
from datafold_auth.signature_base import Component, signature_base

from .test_shell_scripts import (
    LIB,
    PASSPHRASE,
    SCRIPTS,
    SHELLS,
    clean_env,
    needs_tools,
    ok,
    run,
    write_pass_file,
)

pytestmark = needs_tools

CREATED = 1800000000
NONCE = "R3o5JlsK4cELCXjiOtXbZg"


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key_file(path: Path, pem: bytes) -> Path:
    path.write_bytes(pem)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def b14_key(rfc_vectors: dict[str, Any]) -> Ed25519PrivateKey:
    pem = rfc_vectors["rfc9421_b14_test_key_ed25519"]["private_key_pem"].encode()
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


# --- keys and keyids ------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_public_of_the_rfc9421_b14_key_matches_the_vectors(
    shell: str, tmp_path: Path, rfc_vectors: dict[str, Any]
) -> None:
    vector = rfc_vectors["rfc9421_b14_test_key_ed25519"]
    key_file = _key_file(tmp_path / "b14.pem", vector["private_key_pem"].encode())
    out = ok(run(shell, "public", key_file))
    lines = out.splitlines()
    assert lines[0] == f"keyid: {vector['jwk_thumbprint_sha256']}"
    assert lines[1] == f"x: {vector['jwk']['x']}"
    assert json.loads(lines[2].removeprefix("jwk: ")) == {k: vector["jwk"][k] for k in ("kty", "crv", "x")}
    assert "\n".join(lines[3:]) + "\n" == vector["public_key_pem"]
    # The public key file gives the same answers, without any passphrase.
    pub_file = tmp_path / "b14.pub.pem"
    pub_file.write_text(vector["public_key_pem"])
    assert ok(run(shell, "public", pub_file)) == out
    assert ok(run(shell, "public", "--format", "keyid", pub_file)) == vector["jwk_thumbprint_sha256"] + "\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_keyid_of_the_rfc8037_key_matches_the_vectors(shell: str, tmp_path: Path, rfc_vectors: dict[str, Any]) -> None:
    vector = rfc_vectors["rfc8037_a1_a3_jwk_thumbprint"]
    key = Ed25519PrivateKey.from_private_bytes(_b64url_decode(vector["jwk"]["d"]))
    key_file = _key_file(tmp_path / "a1.pem", encode_private_key(key, PASSPHRASE.encode()))
    pass_file = write_pass_file(tmp_path / "pass")
    assert ok(run(shell, "public", "--format", "keyid", "--passphrase-file", pass_file, key_file)) == (
        vector["jwk_thumbprint_sha256"] + "\n"
    )
    assert ok(run(shell, "public", "-f", "x", "--passphrase-file", pass_file, key_file)) == vector["jwk"]["x"] + "\n"
    jwk = ok(run(shell, "public", "--format=jwk", "--passphrase-file", pass_file, key_file)).strip()
    assert jwk == json.dumps(public_jwk(key), separators=(",", ":"))
    assert jwk_thumbprint(key) == vector["jwk_thumbprint_sha256"]


@pytest.mark.parametrize("shell", SHELLS)
def test_generated_key_loads_in_python_and_keyids_agree(shell: str, tmp_path: Path) -> None:
    pass_file = write_pass_file(tmp_path / "pass")
    key_file = tmp_path / "keys" / "svc.pem"
    out = ok(run(shell, "generate", "--passphrase-file", pass_file, key_file))
    keyid = out.splitlines()[0].removeprefix("keyid: ")
    pem = key_file.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    key = decode_private_key(pem, PASSPHRASE.encode())
    assert jwk_thumbprint(key) == keyid
    shown = ok(run(shell, "public", "--passphrase-file", pass_file, key_file)).splitlines()
    assert shown[:2] == [f"keyid: {keyid}", f"x: {public_jwk(key)['x']}"]
    # The encryption parameters are the documented ones (read back with openssl asn1parse).
    parsed = subprocess.run(
        ["openssl", "asn1parse", "-in", str(key_file)], capture_output=True, text=True, check=True
    ).stdout
    assert ":PBES2" in parsed and ":PBKDF2" in parsed and ":hmacWithSHA256" in parsed and ":aes-256-cbc" in parsed
    assert ":0927C0" in parsed  # 600000 iterations
    # Importing into a keytools file store: the same key, re-encrypted by the Python toolkit.
    store = FileKeyStore(tmp_path / "home" / "keys")
    store.save("imported", key, KeyMetadata.for_key("imported", key), passphrase=PASSPHRASE.encode())
    assert jwk_thumbprint(store.load("imported", passphrase=PASSPHRASE.encode())) == keyid


def _keytools(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keytools", *map(str, args)], capture_output=True, text=True, env=clean_env(),
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def _needs_keytools_command(name: str) -> None:
    if _keytools(name, "--help").returncode != 0:
        pytest.skip(f"keytools has no {name} command yet")


@pytest.mark.parametrize("shell", SHELLS)
def test_keytools_import_reads_a_script_key(shell: str, tmp_path: Path) -> None:
    _needs_keytools_command("import")
    pass_file = write_pass_file(tmp_path / "pass")
    key_file = tmp_path / "k" / "key.pem"
    keyid = ok(run(shell, "generate", "-q", "--passphrase-file", pass_file, key_file)).strip()
    home = tmp_path / "home"
    proc = _keytools("--home", home, "import", "--name", "from-sh", "--backup-passphrase-file", pass_file,
                     "--passphrase-file", pass_file, key_file)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    shown = _keytools("--home", home, "show", "--name", "from-sh", "--json")
    assert json.loads(shown.stdout)["keyid"] == keyid
    key = FileKeyStore(home / "keys").load("from-sh", passphrase=PASSPHRASE.encode())
    assert jwk_thumbprint(key) == keyid


@pytest.mark.parametrize("shell", SHELLS)
def test_scripts_read_public_keys_exported_by_keytools(shell: str, tmp_path: Path) -> None:
    _needs_keytools_command("export")
    pass_file = write_pass_file(tmp_path / "pass")
    home = tmp_path / "home"
    made = _keytools("--home", home, "generate", "--passphrase-file", pass_file)
    assert made.returncode == 0, made.stderr
    keyid = made.stdout.splitlines()[0].removeprefix("keyid: ")
    exported = _keytools("--home", home, "export", "--format", "spki-pem", "--out", tmp_path / "pub.pem")
    assert exported.returncode == 0, exported.stderr
    out = ok(run(shell, "public", tmp_path / "pub.pem")).splitlines()
    assert out[0] == f"keyid: {keyid}"
    jwk = _keytools("--home", home, "export", "--format", "jwk")
    assert json.loads(out[2].removeprefix("jwk: ")) == json.loads(jwk.stdout)
    x = _keytools("--home", home, "export", "--format", "raw-base64url")
    assert out[1] == f"x: {x.stdout.strip()}"
    assert "\n".join(out[3:]) + "\n" == (tmp_path / "pub.pem").read_text()
    if _keytools("keyid", "--help").returncode == 0:
        assert _keytools("keyid", tmp_path / "pub.pem").stdout.strip() == keyid
    # A script-made public key file is read by keytools too.
    (tmp_path / "sh.pub.pem").write_text(ok(run(shell, "public", "-f", "pem", tmp_path / "pub.pem")))
    if _keytools("keyid", "--help").returncode == 0:
        assert _keytools("keyid", tmp_path / "sh.pub.pem").stdout.strip() == keyid


@pytest.mark.parametrize("shell", SHELLS)
def test_scripts_use_a_keytools_key_file_as_is(shell: str, tmp_path: Path) -> None:
    pass_file = write_pass_file(tmp_path / "pass")
    home = tmp_path / "home"
    made = _keytools("--home", home, "generate", "--passphrase-file", pass_file)
    assert made.returncode == 0, made.stderr
    keyid = made.stdout.splitlines()[0].removeprefix("keyid: ")
    key_file = home / "keys" / "default.pem"
    assert ok(run(shell, "public", "-f", "keyid", "--passphrase-file", pass_file, key_file)).strip() == keyid
    # The same signature as the Python signer over the same inputs.
    key = FileKeyStore(home / "keys").load("default", passphrase=PASSPHRASE.encode())
    headers = ok(
        run(shell, "sign-request", "-k", key_file, "--passphrase-file", pass_file, "--created", str(CREATED),
            "--nonce", NONCE, "GET", "https://api.example.com/v1/items?page=2")
    )  # fmt: skip
    expected = Signer(key).sign(Request.from_url("GET", "https://api.example.com/v1/items?page=2"), now=CREATED,
                                nonce=NONCE)  # fmt: skip
    assert headers == "".join(f"{n}: {v}\n" for n, v in expected)


# --- signature base parity with the Python signer -------------------------------------

PARITY_CASES: list[tuple[str, str, bytes | None, list[str]]] = [
    ("GET", "http://127.0.0.1:8000/api/hello", None, []),
    ("POST", "https://api.example.com/v1/items?page=2", b'{"a":1}', ["Content-Type: application/json"]),
    ("GET", "HTTP://Example.COM:80/a%2Fb/../c?x=%41&y=&z", None, []),
    ("GET", "https://API.example.com:443", None, []),
    ("GET", "https://api.example.com:8443/p?", None, []),
    ("DELETE", "https://[2001:DB8::1]:443/k/1", None, []),
    ("PUT", "http://[::1]:8080?only=query", b"x", ["Content-Type:   text/plain;charset=utf-8\t"]),
    ("PATCH", "http://h.example/x;y=1/%7Ez", b"\x00\xff\r\n binary\n", ["Content-Type: application/octet-stream"]),
    ("POST", "http://h.example/empty", b"", ["Content-Type: text/plain"]),
    ("POST", "http://h.example/two", b"{}", ["Content-Type: application/json", "content-type: charset=utf-8"]),
    ("QUERY", "http://h.example/s?q=a+b&r=%2B", b"select", ["X-Other: not covered"]),
]


def _python_signature(
    key: Ed25519PrivateKey, method: str, url: str, body: bytes | None, header_args: list[str]
) -> tuple[list[tuple[str, str]], bytes]:
    headers = []
    for text in header_args:
        name, _, value = text.partition(":")
        headers.append((name.strip(), value.strip(" \t")))
    request = Request.from_url(method, url, headers, body or b"")
    added = Signer(key).sign(request, now=CREATED, nonce=NONCE)
    components: list[Component] = [(n, {}) for n in profile.BASE_COMPONENTS]
    if body:
        components.append(("content-digest", {}))
    if any(n.lower() == "content-type" for n, _ in headers):
        components.append(("content-type", {}))
    params = dict(added)["Signature-Input"].removeprefix("df=")
    return added, signature_base(request, components, params)


@pytest.mark.parametrize("shell", SHELLS)
def test_signature_base_and_headers_equal_the_python_signer(
    shell: str, tmp_path: Path, b14_key: Ed25519PrivateKey
) -> None:
    key_file = _key_file(tmp_path / "key.pem", _pem(b14_key))
    for i, (method, url, body, header_args) in enumerate(PARITY_CASES):
        args: list[str | Path] = ["-k", key_file, "--created", str(CREATED), "--nonce", NONCE]
        for h in header_args:
            args += ["-H", h]
        if body is not None:
            body_file = tmp_path / f"body{i}"
            body_file.write_bytes(body)
            args += ["--data-file", body_file]
        base_file = tmp_path / f"base{i}"
        out = ok(run(shell, "sign-request", *args, "--base-out", base_file, method, url))
        expected, expected_base = _python_signature(b14_key, method, url, body, header_args)
        assert base_file.read_bytes() == expected_base, (method, url)
        assert out == "".join(f"{n}: {v}\n" for n, v in expected), (method, url)
        printed = ok(run(shell, "sign-request", *args, "--print-base", method, url))
        assert printed.encode() == expected_base + b"\n"


@pytest.mark.parametrize("shell", SHELLS)
def test_the_protocol_doc_example_base(shell: str, tmp_path: Path, b14_key: Ed25519PrivateKey) -> None:
    """docs/protocol.md section 2.3: the same base lines, with this key's keyid."""
    key_file = _key_file(tmp_path / "key.pem", _pem(b14_key))
    base = ok(
        run(shell, "sign-request", "-k", key_file, "--created", str(CREATED), "--nonce", NONCE, "-H",
            "Content-Type: application/json", "-d", '{"a":1}', "--print-base", "POST",
            "https://api.example.com/v1/items?page=2")
    )  # fmt: skip
    keyid = jwk_thumbprint(b14_key)
    assert base == (
        '"@method": POST\n"@authority": api.example.com\n"@path": /v1/items\n"@query": ?page=2\n'
        '"content-digest": sha-256=:AVq9f1zFei3ZS3WQ8ErYCEJzkF7jPsXOvq5iJ2qX+GI=:\n'
        '"content-type": application/json\n'
        '"@signature-params": ("@method" "@authority" "@path" "@query" "content-digest" "content-type")'
        f';created=1800000000;expires=1800000300;nonce="R3o5JlsK4cELCXjiOtXbZg";keyid="{keyid}";alg="ed25519"'
        ';tag="datafold"\n'
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_fresh_nonces_and_created(shell: str, tmp_path: Path, b14_key: Ed25519PrivateKey) -> None:
    key_file = _key_file(tmp_path / "key.pem", _pem(b14_key))
    nonces = set()
    for _ in range(3):
        out = ok(run(shell, "sign-request", "-k", key_file, "GET", "http://127.0.0.1/x"))
        lines = out.splitlines()
        assert (
            len(lines) == 2 and lines[0].startswith("Signature-Input: df=(") and lines[1].startswith("Signature: df=:")
        )
        params = lines[0]
        nonce = params.split(';nonce="')[1].split('"')[0]
        created = int(params.split(";created=")[1].split(";")[0])
        expires = int(params.split(";expires=")[1].split(";")[0])
        assert len(nonce) == 22 and set(nonce) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert expires == created + 300
        nonces.add(nonce)
    assert len(nonces) == 3


@pytest.mark.parametrize("shell", SHELLS)
def test_library_signing_reproduces_rfc9421_b26(shell: str, tmp_path: Path, rfc_vectors: dict[str, Any]) -> None:
    vector = rfc_vectors["rfc9421_b26_ed25519_signature"]
    key_file = _key_file(tmp_path / "key.pem", rfc_vectors[vector["key"]]["private_key_pem"].encode())
    base_file = tmp_path / "base"
    base_file.write_bytes(vector["signature_base"].encode("ascii"))
    program = '. "$1"; df_tmpdir; df_load_private_key "$2"; df_sign "$3"; printf "\\n%s\\n" "$DF_KEYID"'
    proc = subprocess.run(
        [shell, "-euc", program, "sh", str(LIB), str(key_file), str(base_file)],
        capture_output=True, text=True, env=clean_env(), check=False,
    )  # fmt: skip
    signature, keyid = ok(proc).split()
    label = vector["label"]
    assert f"{label}=:{signature}:" == vector["signature"]
    assert keyid == rfc_vectors[vector["key"]]["jwk_thumbprint_sha256"]
    digest = tmp_path / "body"
    digest.write_bytes(rfc_vectors["rfc9530_content_digest"]["body"].encode())
    proc = subprocess.run(
        [shell, "-euc", '. "$1"; df_tmpdir; df_content_digest "$2"', "sh", str(LIB), str(digest)],
        capture_output=True, text=True, env=clean_env(), check=False,
    )  # fmt: skip
    assert ok(proc) == rfc_vectors["rfc9530_content_digest"]["sha-256"]


@pytest.mark.parametrize("shell", SHELLS)
def test_registration_body_equals_the_python_one(shell: str, tmp_path: Path, b14_key: Ed25519PrivateKey) -> None:
    """The document datafold-register signs is the one keytools sends (ASCII values), and scopes are never globbed."""
    key_file = _key_file(tmp_path / "key.pem", _pem(b14_key))
    (tmp_path / "ab").write_text("a file that 'a*' would match")
    program = (
        '. "$1"; df_tmpdir; df_load_private_key "$2"; df_registration_body "$3" "$4" "$5"; cat "$DF_TMP/register.json"'
    )
    cases = [
        (None, None, None),
        ("svc.backup@host:1", 'web "1" \\ x', ["read", "a*", "write:all"]),
        (None, "label only", None),
    ]
    for client_id, label, scopes in cases:
        proc = subprocess.run(
            [shell, "-euc", program, "sh", str(LIB), str(key_file), client_id or "", label or "",
             " ".join(scopes or [])],
            capture_output=True, cwd=tmp_path, env=clean_env(), check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        expected = registration_request(Signer(b14_key), "http://h/register/keys", client_id=client_id, label=label,
                                        scopes=scopes).body  # fmt: skip
        assert proc.stdout == expected


@pytest.mark.parametrize("shell", SHELLS)
def test_scripts_run_through_symbolic_links(shell: str, tmp_path: Path, b14_key: Ed25519PrivateKey) -> None:
    """A link to a script (absolute or relative, in another folder) still finds datafold-lib.sh."""
    key_file = _key_file(tmp_path / "key.pem", _pem(b14_key))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "datafold-public").symlink_to(SCRIPTS / "datafold-public")
    (bin_dir / "df-public").symlink_to("datafold-public")
    for link in (bin_dir / "datafold-public", bin_dir / "df-public"):
        proc = subprocess.run([shell, str(link), "-f", "keyid", str(key_file)], capture_output=True, text=True,
                              env=clean_env(), check=False)  # fmt: skip
        assert ok(proc).strip() == jwk_thumbprint(b14_key)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(SCRIPTS / "datafold-public", lonely)
    proc = subprocess.run([shell, str(lonely / "datafold-public"), "-h"], capture_output=True, text=True,
                          env=clean_env(), check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == f"datafold-public: error: datafold-lib.sh not found in {lonely} (keep the scripts together)\n"
