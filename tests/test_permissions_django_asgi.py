"""Django behind the DataFold middleware under ASGI (uvicorn) and WSGI (gunicorn): identity() and require_scopes.

A real Django project (CsrfViewMiddleware on, as ``django-admin startproject`` makes it) is
written to a temporary folder and served by a real server in its own process (Django's
settings are per process); the test signs real HTTP requests with keys it registered in the
project's SQLite registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.client.requests import DatafoldAuth

from .django_project import serve_project

pytest.importorskip("django")

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


@dataclass
class Site:
    kind: str
    base: str
    signers: dict[str, df.Signer]

    def signed(self, who: str) -> requests.Session:
        session = requests.Session()
        session.auth = DatafoldAuth(self.signers[who])
        return session


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    kind = str(request.param)
    tmp_path = tmp_path_factory.mktemp(f"django-{kind}")
    registry_url = f"sqlite:{tmp_path / 'keys.db'}"
    registry = df.open_registry(registry_url)
    signers = {}
    for client_id, scopes in (("reader", ("read",)), ("writer", ("read", "write"))):
        key = Ed25519PrivateKey.generate()
        registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id=client_id, scopes=scopes))
        signers[client_id] = df.Signer(key)
    with serve_project(kind, tmp_path, urls=URLS, serve=SERVE, registry_url=registry_url) as base:
        yield Site(kind, base, signers)


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
