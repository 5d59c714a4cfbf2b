"""End-to-end demo: a real server on loopback, a client with its own key.

Starts an example app (Flask by default, ``--app fastapi`` for the ASGI one)
on 127.0.0.1, then with ``keytools``: generates an Ed25519 key (self-tested,
stored as an encrypted PKCS#8 file), registers its public key by proof of
possession, and sends a signed GET and a signed POST. Then it shows what the
middleware refuses: a tampered body, a replayed request, an unsigned request
and a key the server does not know. Prints a transcript; exits non-zero if
any step did not give the expected answer.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import Request, Signer
from datafold_auth.keys import FileKeyStore

HERE = Path(__file__).resolve().parent
failures: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say()
    say(f"== {title}")


def keytools(home: Path, *args: str, passphrase_file: Path, expect: int = 0) -> str:
    """Run ``keytools`` as a user would, echo the command line and its output."""
    cmd = [sys.executable, "-m", "keytools", "--home", str(home), *args]
    if args[0] not in ("show", "list"):
        cmd += ["--passphrase-file", str(passphrase_file)]
    say("$ keytools " + " ".join(a if " " not in a else repr(a) for a in cmd[3:]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    for line in (proc.stdout + proc.stderr).rstrip().splitlines():
        say("  " + line)
    if proc.returncode != expect:
        failures.append(f"keytools {args[0]} exited {proc.returncode}, expected {expect}")
    return proc.stdout


def show(response: requests.Response, expect_status: int, expect_reason: str | None = None) -> None:
    doc = response.json() if response.headers.get("Content-Type", "").endswith("json") else {}
    reason = doc.get("reason") if isinstance(doc, dict) else None
    say(f"  -> HTTP {response.status_code} {response.headers.get('Content-Type', '')}")
    say(f"     {response.text.strip()}")
    ok = response.status_code == expect_status and (expect_reason is None or reason == expect_reason)
    say(f"     {'as expected' if ok else 'UNEXPECTED'}: want {expect_status} {expect_reason or ''}".rstrip())
    if not ok:
        failures.append(f"wanted {expect_status} {expect_reason}, got {response.status_code} {reason}")


def send(request: Request) -> requests.Response:
    url = f"{request.scheme}://{request.authority}{request.path}" + (f"?{request.query}" if request.query else "")
    return requests.request(request.method, url, data=request.body or None, headers=dict(request.headers), timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the example server exited with status {server.returncode}")
        try:
            if requests.get(base + "/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("the example server did not start within 30 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", choices=("flask", "fastapi"), default="flask")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="datafold-demo-") as tmp:
        work = Path(tmp)
        home = work / "client"
        passphrase_file = work / "passphrase"
        passphrase_file.write_text("correct horse battery staple\n")
        os.chmod(passphrase_file, 0o600)
        port = free_port()
        base = f"http://127.0.0.1:{port}"

        step(f"Start the {args.app} example server on {base} (SQLite registry in a temp folder)")
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, str(HERE / f"{args.app}_app.py"), "--port", str(port), "--db", str(work / "keys.db")]
        )
        try:
            wait_until_up(base, server)
            say(f"  server up (pid {server.pid})")
            run_client(base, home, passphrase_file)
        finally:
            step("Stop the server")
            server.terminate()
            server.wait(timeout=10)
            say("  stopped")

    say()
    if failures:
        say("DEMO FAILED:")
        for failure in failures:
            say("  - " + failure)
        return 1
    say("Demo complete: every step gave the expected answer.")
    return 0


def run_client(base: str, home: Path, passphrase_file: Path) -> None:
    step("The client generates its own Ed25519 key (private key never leaves this machine)")
    keytools(home, "generate", "--client-id", "demo-client", "--label", "demo laptop", passphrase_file=passphrase_file)
    keytools(home, "show", passphrase_file=passphrase_file)

    step("Register the public key by proof of possession (the request is signed by the new key)")
    keytools(home, "register", f"{base}/register/keys", passphrase_file=passphrase_file)

    step("Signed GET and signed POST with a JSON body")
    keytools(home, "request", "GET", f"{base}/api/hello", passphrase_file=passphrase_file)
    keytools(
        home, "request", "POST", f"{base}/api/items", "--data", '{"name": "widget", "qty": 3}',
        passphrase_file=passphrase_file,
    )  # fmt: skip

    # The attacks below use the library directly, with the same stored key.
    passphrase = passphrase_file.read_bytes().splitlines()[0]
    signer = Signer(FileKeyStore(home / "keys").load("default", passphrase=passphrase))

    step("Tampered body: signed {\"qty\": 3}, sent {\"qty\": 300}")
    request = Request.from_url("POST", f"{base}/api/items", [("Content-Type", "application/json")], b'{"qty": 3}')
    signer.sign(request)
    request.body = b'{"qty": 300}'
    show(send(request), 401, "digest_mismatch")

    step("Replay: the same signed GET sent twice")
    request = Request.from_url("GET", f"{base}/api/hello")
    signer.sign(request)
    say("  first time:")
    show(send(request), 200)
    say("  second time:")
    show(send(request), 401, "replayed_nonce")

    step("Unsigned request")
    say(f"  GET {base}/api/hello with no signature")
    show(requests.get(f"{base}/api/hello", timeout=30), 401, "missing_signature")

    step("A key the server does not know")
    stranger = Signer(Ed25519PrivateKey.generate())
    request = Request.from_url("GET", f"{base}/api/hello")
    stranger.sign(request)
    say(f"  signed by unregistered keyid {stranger.keyid}")
    show(send(request), 401, "unknown_key")


if __name__ == "__main__":
    sys.exit(main())
