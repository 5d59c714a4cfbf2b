"""Bad input to the shell scripts: one clear error line, a non-zero exit, and no partial key file.

Covers a PATH without openssl (or curl), a wrong or missing passphrase, an
unreachable server, an existing key file, unwritable folders, unsafe modes,
bad URLs and headers, and openssl failing or being interrupted half-way
through writing a key.

"Unwritable folder" is tested two ways, because root (the CI user) ignores
permission bits: (1) an existing regular *file* where the key's folder should
be, and (2) a read-only tmpfs mounted in a private mount namespace
(``unshare --mount``; skipped where that is not permitted).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .test_shell_scripts import (
    NAMES,
    SHELLS,
    clean_env,
    error_line,
    free_port,
    needs_tools,
    ok,
    run,
    script,
    tool_dir,
    write_pass_file,
)

pytestmark = needs_tools


@pytest.fixture(scope="module")
def no_openssl_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tool_dir(tmp_path_factory.mktemp("bin") / "no-openssl", without=["openssl"]))


@pytest.fixture(scope="module")
def no_curl_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tool_dir(tmp_path_factory.mktemp("bin") / "no-curl", without=["curl"]))


@pytest.fixture
def pass_file(tmp_path: Path) -> Path:
    return write_pass_file(tmp_path / "pass")


@pytest.fixture
def plain_key(tmp_path: Path) -> Path:
    """An unencrypted PKCS#8 key file (mode 0600): no passphrase cost for tests not about passphrases."""
    path = tmp_path / "plain.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return path


def _args_for(name: str, tmp_path: Path, key: Path, pass_file: Path) -> list[str | Path]:
    url = f"http://127.0.0.1:{free_port()}"
    table: dict[str, list[str | Path]] = {
        "generate": ["--passphrase-file", pass_file, tmp_path / "new" / "key.pem"],
        "public": [key],
        "sign-request": ["-k", key, "GET", url + "/x"],
        "register": ["-k", key, url + "/register/keys"],
        "request": ["-k", key, "GET", url + "/x"],
        "setup": ["--state", tmp_path / "state", "--passphrase-file", pass_file, "--register-url",
                  url + "/register/keys", "--no-verify"],
    }  # fmt: skip
    return table[name]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("name", NAMES)
def test_missing_openssl(
    shell: str, name: str, tmp_path: Path, no_openssl_path: str, plain_key: Path, pass_file: Path
) -> None:
    proc = run(shell, name, *_args_for(name, tmp_path, plain_key, pass_file), env={"PATH": no_openssl_path})
    line = error_line(proc, name, 1)
    assert (
        line
        == f"datafold-{name}: error: openssl not found in PATH: install OpenSSL 3.0 or later (Debian/Ubuntu: apt-get install openssl)"
    )
    assert not (tmp_path / "new").exists() and not (tmp_path / "state").exists()


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("name", ["register", "request", "setup"])
def test_missing_curl(
    shell: str, name: str, tmp_path: Path, no_curl_path: str, plain_key: Path, pass_file: Path
) -> None:
    proc = run(shell, name, *_args_for(name, tmp_path, plain_key, pass_file), env={"PATH": no_curl_path})
    assert error_line(proc, name, 1).endswith(
        "curl not found in PATH: install it (Debian/Ubuntu: apt-get install curl)"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_too_old_openssl(shell: str, tmp_path: Path, plain_key: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "openssl").write_text('#!/bin/sh\necho "OpenSSL 1.1.1w  11 Sep 2023"\n')
    (fake / "openssl").chmod(0o755)
    proc = run(shell, "public", plain_key, env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert error_line(proc, "public", 1).endswith("OpenSSL 3.0 or later is needed (found: OpenSSL 1.1.1w  11 Sep 2023)")


@pytest.mark.parametrize("shell", SHELLS)
def test_wrong_and_missing_passphrase(shell: str, tmp_path: Path, pass_file: Path) -> None:
    key = tmp_path / "k" / "key.pem"
    ok(run(shell, "generate", "--passphrase-file", pass_file, key))
    wrong = write_pass_file(tmp_path / "wrong", "Zebra-Angstrom-7731-secret")
    for name, args in (
        ("public", [key]),
        ("sign-request", ["-k", key, "GET", "http://127.0.0.1/x"]),
        ("request", ["-k", key, "GET", "http://127.0.0.1:1/x"]),
    ):
        proc = run(shell, name, "--passphrase-file", wrong, *args)
        assert error_line(proc, name, 1) == (
            f"datafold-{name}: error: cannot decrypt key file {key}: wrong passphrase (or a damaged key file)"
        )
        assert proc.stdout == ""
        missing = run(shell, name, *args)
        assert error_line(missing, name, 1).endswith(
            f"key file {key} is encrypted: give its passphrase with --passphrase-file, --passphrase-fd or"
            " $DATAFOLD_AUTH_PASSPHRASE"
        )
    # The environment and a file descriptor work as sources; CRLF files too.
    assert ok(run(shell, "public", "-f", "keyid", key, env={"DATAFOLD_AUTH_PASSPHRASE": pass_file.read_text()[:-1]}))
    crlf = tmp_path / "crlf"
    crlf.write_bytes(pass_file.read_bytes().replace(b"\n", b"\r\n") + b"second line\r\n")
    assert ok(run(shell, "public", "-f", "keyid", "--passphrase-file", crlf, key))
    read_fd, write_fd = os.pipe()
    os.write(write_fd, pass_file.read_bytes())
    os.close(write_fd)
    try:
        assert ok(run(shell, "public", "-f", "keyid", "--passphrase-fd", str(read_fd), key, pass_fds=[read_fd]))
    finally:
        os.close(read_fd)
    closed = run(shell, "public", "--passphrase-fd", "7", key)
    assert error_line(closed, "public", 1).endswith("file descriptor 7 is not open for reading")
    closed = run(shell, "public", "--passphrase-fd", "12", key)
    assert error_line(closed, "public", 1).endswith("file descriptor 12 is not open for reading")


@pytest.mark.parametrize("shell", SHELLS)
def test_generate_passphrase_problems(shell: str, tmp_path: Path, pass_file: Path) -> None:
    key = tmp_path / "k" / "key.pem"
    assert "no passphrase given" in error_line(run(shell, "generate", key), "generate", 2)
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    assert error_line(run(shell, "generate", "--passphrase-file", empty, key), "generate", 1).endswith(
        f"empty passphrase (from passphrase file {empty})"
    )
    assert error_line(run(shell, "generate", "--passphrase-file", tmp_path / "nope", key), "generate", 1).endswith(
        f"passphrase file {tmp_path / 'nope'} does not exist"
    )
    both = run(shell, "generate", "--passphrase-file", pass_file, "--passphrase-fd", "0", key)
    assert "give only one of --passphrase-file and --passphrase-fd" in error_line(both, "generate", 2)
    low = run(shell, "generate", "--passphrase-file", pass_file, "--iter", "1000", key)
    assert "--iter must be a number of at least 600000" in error_line(low, "generate", 2)
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_existing_key_file_is_never_overwritten(shell: str, tmp_path: Path, pass_file: Path) -> None:
    key = tmp_path / "k" / "key.pem"
    ok(run(shell, "generate", "--passphrase-file", pass_file, key))
    before = key.read_bytes()
    proc = run(shell, "generate", "--passphrase-file", pass_file, key)
    assert error_line(proc, "generate", 1) == (
        f"datafold-generate: error: {key} already exists; refusing to overwrite it (move it away or choose another file)"
    )
    assert key.read_bytes() == before
    assert sorted(p.name for p in key.parent.iterdir()) == ["key.pem"]
    # A dangling symbolic link counts as existing too.
    link = tmp_path / "k" / "link.pem"
    link.symlink_to(tmp_path / "nowhere")
    assert "already exists" in error_line(run(shell, "generate", "--passphrase-file", pass_file, link), "generate", 1)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("shell", SHELLS)
def test_unwritable_folder_a_file_in_place_of_the_folder(shell: str, tmp_path: Path, pass_file: Path) -> None:
    blocker = tmp_path / "notadir"
    blocker.write_text("I am a file\n")
    proc = run(shell, "generate", "--passphrase-file", pass_file, blocker / "key.pem")
    assert error_line(proc, "generate", 1).endswith(f"cannot use folder {blocker}: it exists and is not a folder")
    proc = run(shell, "generate", "--passphrase-file", pass_file, blocker / "sub" / "key.pem")
    assert error_line(proc, "generate", 1).startswith(f"datafold-generate: error: cannot create folder {blocker}/sub: ")
    assert blocker.read_text() == "I am a file\n"


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare --mount (root with CAP_SYS_ADMIN)")
@pytest.mark.parametrize("shell", SHELLS)
def test_unwritable_folder_read_only_mount(shell: str, tmp_path: Path, pass_file: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o700)
    shell_path = shutil.which(shell)
    assert shell_path is not None
    program = (
        'mount -t tmpfs -o ro,mode=0700 datafold-test "$1" || exit 99\n'
        "dir=$1; shell=$2; gen=$3; pass=$4; shift 4\n"
        'for key in "$@"; do "$shell" "$gen" --passphrase-file "$pass" "$key"; echo "rc=$?"; done\n'
        'ls -A "$dir" | wc -l\n'
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", program, "sh", str(ro), shell_path,
         str(script("generate")), str(pass_file), str(ro / "key.pem"), str(ro / "sub" / "key.pem")],
        capture_output=True, text=True, env=clean_env(), timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["rc=1", "rc=1", "0"], proc.stdout + proc.stderr
    errors = proc.stderr.splitlines()
    assert errors == [
        f"datafold-generate: error: cannot write in folder {ro}: Read-only file system",
        f"datafold-generate: error: cannot create folder {ro}/sub: Read-only file system",
    ]


@pytest.mark.parametrize("shell", SHELLS)
def test_unsafe_modes(shell: str, tmp_path: Path, pass_file: Path, plain_key: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    proc = run(shell, "generate", "--passphrase-file", pass_file, shared / "key.pem")
    assert error_line(proc, "generate", 1) == (
        f"datafold-generate: error: folder {shared} has mode drwxr-xr-x; key folders must be private (0700):"
        f" chmod 700 {shared}, or name a new folder"
    )
    assert list(shared.iterdir()) == []
    plain_key.chmod(0o644)
    proc = run(shell, "sign-request", "-k", plain_key, "GET", "http://127.0.0.1/")
    assert error_line(proc, "sign-request", 1) == (
        f"datafold-sign-request: error: key file {plain_key} has mode -rw-r--r--: group or others can access it;"
        f" fix: chmod 600 {plain_key}"
    )


@pytest.mark.parametrize("shell", SHELLS)
def test_not_a_usable_key(shell: str, tmp_path: Path, plain_key: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello\n")
    garbage.chmod(0o600)
    assert "is not a PKCS#8 PEM private key" in error_line(run(shell, "public", garbage), "public", 1)
    rsa = tmp_path / "rsa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(rsa)],
                   capture_output=True, check=True)  # fmt: skip
    rsa.chmod(0o600)
    assert error_line(run(shell, "public", rsa), "public", 1).endswith(f"{rsa} is not an Ed25519 key")
    missing = tmp_path / "missing.pem"
    assert error_line(run(shell, "public", missing), "public", 1).endswith(f"key file {missing} does not exist")
    pub = tmp_path / "pub.pem"
    pub.write_text(ok(run(shell, "public", "-f", "pem", plain_key)))
    assert error_line(run(shell, "sign-request", "-k", pub, "GET", "http://h/"), "sign-request", 1).endswith(
        f"{pub} holds a public key; a private key is needed"
    )
    assert "no key: give --key FILE" in error_line(run(shell, "request", "GET", "http://h/"), "request", 2)


@pytest.mark.parametrize("shell", SHELLS)
def test_unreachable_server(shell: str, tmp_path: Path, plain_key: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = run(shell, "request", "-k", plain_key, "GET", url + "/api/hello")
    line = error_line(proc, "request", 3)
    assert line.startswith(f"datafold-request: error: cannot reach {url}/api/hello: curl: (7) ")
    assert line.endswith("(curl exit 7)")
    proc = run(shell, "register", "-k", plain_key, url + "/register/keys")
    assert error_line(proc, "register", 3).startswith(f"datafold-register: error: cannot reach {url}/register/keys: ")


BAD_URLS = [
    ("ftp://h/x", "unsupported URL scheme 'ftp'"),
    ("/api/hello", "not an absolute URL: /api/hello"),
    ("http://h/a b", "contains spaces, control or non-ASCII characters"),
    ("http://h/caf\u00e9", "contains spaces, control or non-ASCII characters"),
    ("http://h/x#frag", "has a fragment"),
    ("http://user:pw@h/x", "has user information"),
    ("http://h:99999/x", "bad port '99999'"),
    ("http://h:/x", "has an empty port"),
    ("http://::1/x", "IPv6 addresses in URLs must be in brackets"),
    ("http://[zz]/x", "bad IPv6 address"),
    ("http:///x", "has no host"),
    ("http://h_$(x)/", "bad host name"),
]


@pytest.mark.parametrize("shell", SHELLS)
def test_bad_urls_headers_and_methods(shell: str, plain_key: Path) -> None:
    for url, message in BAD_URLS:
        proc = run(shell, "sign-request", "-k", plain_key, "GET", url)
        assert message in error_line(proc, "sign-request", 2), (url, proc.stderr)
    for header, message in (
        ("Content-Type: a\nInjected: 1", "only printable ASCII is allowed in values"),
        ("NoColon", "a header is 'Name: value'"),
        ("Bad Name: x", "bad header name"),
        ("Signature: df=:AA==:", "is computed by this script"),
    ):
        proc = run(shell, "sign-request", "-k", plain_key, "-H", header, "GET", "http://h/")
        assert message in error_line(proc, "sign-request", 2), header
    proc = run(shell, "sign-request", "-k", plain_key, "GE T", "http://h/")
    assert "bad HTTP method" in error_line(proc, "sign-request", 2)
    proc = run(shell, "sign-request", "-k", plain_key, "--nonce", 'a"b', "GET", "http://h/")
    assert "a nonce is 1-128 of" in error_line(proc, "sign-request", 2)
    proc = run(shell, "sign-request", "-k", plain_key, "--created", "yesterday", "GET", "http://h/")
    assert "--created must be epoch seconds" in error_line(proc, "sign-request", 2)
    proc = run(shell, "sign-request", "-k", plain_key, "--data-file", "/nonexistent/body", "POST", "http://h/")
    assert error_line(proc, "sign-request", 1).endswith("body file /nonexistent/body does not exist")
    proc = run(shell, "register", "-k", plain_key, "--label", "two\nlines", "http://127.0.0.1:1/register/keys")
    assert "control characters are not allowed" in error_line(proc, "register", 2)
    proc = run(shell, "register", "-k", plain_key, "--client-id", "no spaces", "http://127.0.0.1:1/register/keys")
    assert "a client id is 1-128 of" in error_line(proc, "register", 2)


def _fake_openssl(tmp_path: Path, pkcs8_action: str) -> str:
    """A PATH whose ``openssl`` runs the real one, except ``openssl pkcs8``, which does ``pkcs8_action``
    after writing a partial output file."""
    real = shutil.which("openssl")
    fake = tmp_path / "fake-bin"
    fake.mkdir()
    (fake / "openssl").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = pkcs8 ]; then\n'
        '  out=; while [ $# -gt 0 ]; do [ "$1" = -out ] && out=$2; shift; done\n'
        '  cat >/dev/null; printf -- "-----BEGIN ENCRYPTED PRIVATE KEY-----\\nMIGb" >"$out"\n'
        f"  {pkcs8_action}\n"
        "fi\n"
        f'exec {real} "$@"\n'
    )
    (fake / "openssl").chmod(0o755)
    return f"{fake}:{os.environ['PATH']}"


@pytest.mark.parametrize("shell", SHELLS)
def test_openssl_failing_half_way_leaves_no_key_file(shell: str, tmp_path: Path, pass_file: Path) -> None:
    folder = tmp_path / "keys"
    path = _fake_openssl(tmp_path, 'echo "pkcs8: simulated failure: disk full" >&2; exit 1')
    proc = run(shell, "generate", "--passphrase-file", pass_file, folder / "key.pem", env={"PATH": path})
    line = error_line(proc, "generate", 1)
    assert "openssl could not generate or encrypt the key" in line and "simulated failure" in line
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("shell", SHELLS)
def test_interrupted_generate_leaves_no_key_file(shell: str, tmp_path: Path, pass_file: Path) -> None:
    folder = tmp_path / "keys"
    path = _fake_openssl(tmp_path, "exec sleep 30")
    shell_path = shutil.which(shell)
    assert shell_path is not None
    proc = subprocess.Popen(
        [shell_path, str(script("generate")), "--passphrase-file", str(pass_file), str(folder / "key.pem")],
        env=clean_env({"PATH": path}), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (folder.is_dir() and any(folder.iterdir())):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the partial file never appeared"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143
    assert list(folder.iterdir()) == []
