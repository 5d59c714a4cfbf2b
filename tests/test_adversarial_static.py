"""``examples/flask_app.py --static DIR`` under hostile paths, on a real server on loopback.

Raw request lines (``http.client`` sends the path as given, no client-side normalising):
dot segments, encoded dots and slashes, absolute paths, backslashes and a NUL never serve
a file outside DIR; a symlink inside DIR that leads outside is not followed out; hidden
files (``.env``, ``.git/``) are not served; files are
served unsigned only under ``/app/`` and a file in DIR named like a protected route never
answers for it (the route still needs a signature).
"""

from __future__ import annotations

import http.client
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .private_services import free_port
from .servers import serve_process

pytest.importorskip("flask")

ROOT = Path(__file__).resolve().parent.parent
SECRET = b"SECRET-OUTSIDE-THE-STATIC-FOLDER"


@dataclass
class Site:
    port: int
    static: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            answer = conn.getresponse()
            return answer.status, answer.read(), answer.getheader("Content-Type") or ""
        finally:
            conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    work = tmp_path_factory.mktemp("static")
    (work / "secret.txt").write_bytes(SECRET)
    (work / "outside").mkdir()
    (work / "outside" / "secret.txt").write_bytes(SECRET)
    static = work / "site"
    (static / "sub").mkdir(parents=True)
    (static / "index.html").write_text("<p>index</p>")
    (static / "sub" / "page.txt").write_text("inside")
    (static / "api").mkdir()
    (static / "api" / "hello").write_text("STATIC-SHADOW")  # named like the protected route
    (static / "register").write_text("STATIC-SHADOW")
    (static / "leak.txt").symlink_to(work / "secret.txt")  # a symlink out of DIR
    (static / "leakdir").symlink_to(work / "outside", target_is_directory=True)
    (static / "inner.txt").symlink_to(static / "sub" / "page.txt")  # a symlink that stays inside
    (static / ".env").write_bytes(SECRET)  # `--static .` in a project folder
    (static / ".git").mkdir()
    (static / ".git" / "config").write_bytes(SECRET)
    port = free_port()
    argv = [sys.executable, str(ROOT / "examples" / "flask_app.py"), "--port", str(port), "--db", str(work / "k.db"),
            "--static", str(static)]  # fmt: skip
    with serve_process(argv, port=port, log=work / "server.log", cwd=work):
        yield Site(port, static)


def test_files_of_the_folder_are_served_unsigned(site: Site) -> None:
    assert site.get("/app/")[:2] == (200, b"<p>index</p>")
    assert site.get("/app/sub/page.txt")[:2] == (200, b"inside")
    assert site.get("/app/inner.txt")[:2] == (200, b"inside")


TRAVERSALS = [
    "/app/../secret.txt",
    "/app/../../secret.txt",
    "/app/sub/../../secret.txt",
    "/app/%2e%2e/secret.txt",
    "/app/%2E%2E/secret.txt",
    "/app/..%2fsecret.txt",
    "/app/%2e%2e%2fsecret.txt",
    "/app/sub/%2e%2e/%2e%2e/secret.txt",
    "/app/..%5csecret.txt",
    "/app/..\\secret.txt",
    "/app//etc/passwd",
    "/app/%2fetc%2fpasswd",
    "/app/leak.txt",
    "/app/leakdir/secret.txt",
    "/app/leakdir/",
    "/app/sub/%00/../../secret.txt",
    "/app/%00",
    "/app/.env",
    "/app/%2eenv",
    "/app/.git/config",
    "/app/sub/../.env",
    "/app/" + "a/" * 2000,
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_nothing_outside_the_folder_is_served(site: Site, path: str) -> None:
    status, body, _ = site.get(path)
    assert SECRET not in body and b"root:" not in body
    assert status in (308, 400, 401, 404, 414), (status, body[:200])  # 308: werkzeug merges slashes, under /app/


@pytest.mark.parametrize("path", ["/api/hello", "/app/../api/hello", "/app/%2e%2e/api/hello", "/app/..%2fapi/hello"])
def test_a_static_file_never_answers_for_a_protected_route(site: Site, path: str) -> None:
    status, body, ctype = site.get(path)
    assert b"STATIC-SHADOW" not in body and b"hello" not in body.lower().replace(b"/api/hello", b"")
    assert status in (401, 404), (status, body[:200])
    if status == 401:
        assert ctype == "application/problem+json"


def test_the_registration_routes_are_not_shadowed(site: Site) -> None:
    _, body, _ = site.get("/register")
    assert b"STATIC-SHADOW" not in body
    assert site.get("/app/register")[:2] == (200, b"STATIC-SHADOW")  # only under /app/
