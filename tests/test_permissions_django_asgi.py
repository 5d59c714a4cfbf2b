"""Django behind the DataFold middleware under ASGI (uvicorn) and WSGI (gunicorn): identity() and require_scopes.

A real Django project (CsrfViewMiddleware on, as ``django-admin startproject`` makes it) is
written to a temporary folder and served by a real server in its own process (Django's
settings are per process); the test signs real HTTP requests with keys it registered in the
project's SQLite registry.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.client.requests import DatafoldAuth

pytest.importorskip("django")

SETTINGS = """
SECRET_KEY = "test"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
"""

SERVE = """
import os

from datafold_auth import Verifier, open_nonce_store, open_registry
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
verifier = Verifier(open_registry(os.environ["REGISTRY"]), open_nonce_store("memory://"))
if {asgi}:
    from django.core.asgi import get_asgi_application
    application = DatafoldAuthASGIMiddleware(get_asgi_application(), verifier=verifier, paths=["/api/"])
else:
    from django.core.wsgi import get_wsgi_application
    application = DatafoldAuthMiddleware(get_wsgi_application(), verifier, paths=["/api/"])
"""

URLS = """
import json

from django.http import JsonResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from datafold_auth.permissions.django import identity, require_scopes


def whoami(request):
    who = identity(request)
    return JsonResponse({"client_id": who.client_id if who else None,
                         "remote_user": request.META.get("REMOTE_USER")})


@csrf_exempt
@require_scopes("write")
def create(request):
    return JsonResponse({"owner": identity(request).client_id, "body": json.loads(request.body)}, status=201)


@require_scopes("read")
async def async_read(request):
    return JsonResponse({"async": identity(request).client_id})


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(require_scopes("write"), name="dispatch")
class Items(View):
    def post(self, request):
        return JsonResponse({"class_owner": identity(request).client_id}, status=201)


class Unexempt(View):
    @method_decorator(require_scopes("write"))
    def post(self, request):
        return JsonResponse({"owner": identity(request).client_id}, status=201)


urlpatterns = [
    path("api/whoami", whoami),
    path("api/items", create),
    path("api/async", async_read),
    path("api/class-items", Items.as_view()),
    path("api/unexempt", Unexempt.as_view()),
    path("open/items", create),
    path("open/whoami", whoami),
]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    kind: str
    base: str
    signers: dict[str, df.Signer]

    def signed(self, who: str) -> requests.Session:
        session = requests.Session()
        session.auth = DatafoldAuth(self.signers[who])
        return session


def _serve(kind: str, folder: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    bind = f"127.0.0.1:{port}"
    if kind == "asgi":
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "mysite.serve:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    else:
        argv = [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", bind, "mysite.serve:application"]
    log = (folder / "server.log").open("wb")
    return subprocess.Popen(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    kind = str(request.param)
    tmp_path = tmp_path_factory.mktemp(f"django-{kind}")
    package = tmp_path / "mysite"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(SETTINGS)
    (package / "urls.py").write_text(URLS)
    (package / "serve.py").write_text(SERVE.format(asgi=kind == "asgi"))
    registry_url = f"sqlite:{tmp_path / 'keys.db'}"
    registry = df.open_registry(registry_url)
    signers = {}
    for client_id, scopes in (("reader", ("read",)), ("writer", ("read", "write"))):
        key = Ed25519PrivateKey.generate()
        registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id=client_id, scopes=scopes))
        signers[client_id] = df.Signer(key)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_", "DJANGO_"))}
    env["REGISTRY"] = registry_url
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])
    port = _free_port()
    proc = _serve(kind, tmp_path, port, env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.05)
        yield Site(kind, f"http://127.0.0.1:{port}", signers)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)
    assert b"Traceback" not in (tmp_path / "server.log").read_bytes(), (tmp_path / "server.log").read_text()


def _reason(answer: requests.Response) -> tuple[int, str]:
    assert answer.headers["Content-Type"] == "application/problem+json", answer.text
    return answer.status_code, json.loads(answer.content)["reason"]


def test_identity_of_a_signed_request(site: Site) -> None:
    answer = site.signed("reader").get(f"{site.base}/api/whoami")
    assert answer.status_code == 200, answer.text
    remote_user = "reader" if site.kind == "wsgi" else None  # ASGI: no REMOTE_USER, identity() is the way
    assert answer.json() == {"client_id": "reader", "remote_user": remote_user}


def test_require_scopes_on_a_signed_post(site: Site) -> None:
    url = f"{site.base}/api/items"
    answer = site.signed("writer").post(url, json={"name": "widget"})
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"owner": "writer", "body": {"name": "widget"}}
    assert _reason(site.signed("reader").post(url, json={})) == (403, "insufficient_scope")
    assert _reason(requests.post(url, json={}, timeout=10)) == (
        401,
        "missing_signature",
    )  # the middleware refuses first


def test_async_view(site: Site) -> None:
    answer = site.signed("reader").get(f"{site.base}/api/async")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"async": "reader"}


def test_class_based_view_needs_csrf_exempt(site: Site) -> None:
    """CsrfViewMiddleware refuses a signed POST to a view that is not csrf_exempt (signed calls carry no cookie)."""
    answer = site.signed("writer").post(f"{site.base}/api/class-items", json={})
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"class_owner": "writer"}
    refused = site.signed("writer").post(f"{site.base}/api/unexempt", json={})
    assert refused.status_code == 403 and b"CSRF" in refused.content


def test_outside_the_middleware_identity_is_none(site: Site) -> None:
    """A route outside ``paths``: identity() is None and require_scopes answers 401, never 500."""
    assert requests.get(f"{site.base}/open/whoami", timeout=10).json() == {"client_id": None, "remote_user": None}
    assert _reason(site.signed("writer").post(f"{site.base}/open/items", json={})) == (401, "missing_signature")


def test_paths_prefix_covers_the_bare_prefix(site: Site) -> None:
    """``paths=["/api/"]`` protects ``/api`` itself too (prefixes match whole segments)."""
    answer = requests.get(f"{site.base}/api", timeout=10)
    assert _reason(answer) == (401, "missing_signature")
