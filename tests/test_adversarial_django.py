"""Spoofing the identity that ``datafold_auth.permissions.django`` trusts, under real uvicorn and gunicorn.

* a client's headers (``Datafold-Auth-Identity``, ``Remote-User``, ...) land in ``META`` as
  ``HTTP_*`` and never become the identity;
* a value under ``datafold_auth.identity`` put in the ASGI scope / WSGI environ by another
  component (not the DataFold middleware) on a path the middleware does not cover is not an
  identity: ``require_scopes`` answers ``401 missing_signature`` problem+json (it used to
  crash into a 500 on ``.scopes``), sync and async views alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from .django_project import SETTINGS, serve_project

pytest.importorskip("django")

SERVE = """
import os

from datafold_auth import Verifier, open_nonce_store, open_registry
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
verifier = Verifier(open_registry(os.environ["REGISTRY"]), open_nonce_store("memory://"))
FOREIGN = {{"str": "admin", "dict": {{"client_id": "admin", "scopes": ["write"]}}, "list": ["write"]}}
if {asgi}:
    from django.core.asgi import get_asgi_application
    inner = DatafoldAuthASGIMiddleware(get_asgi_application(), verifier=verifier, paths=["/api/"])

    async def application(scope, receive, send):  # another component, outside ours, sets the key
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-foreign":
                    scope["datafold_auth.identity"] = FOREIGN[value.decode()]
        await inner(scope, receive, send)
else:
    from django.core.wsgi import get_wsgi_application
    inner = DatafoldAuthMiddleware(get_wsgi_application(), verifier, paths=["/api/"])

    def application(environ, start_response):
        if "HTTP_X_FOREIGN" in environ:
            environ["datafold_auth.identity"] = FOREIGN[environ["HTTP_X_FOREIGN"]]
        return inner(environ, start_response)
"""

URLS = """
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from datafold_auth.permissions.django import identity, require_scopes


def whoami(request):
    who = identity(request)
    return JsonResponse({"client_id": who.client_id if who else None,
                         "remote_user": request.META.get("REMOTE_USER")})


@csrf_exempt
@require_scopes("write")
def create(request):
    return JsonResponse({"owner": identity(request).client_id}, status=201)


@csrf_exempt
@require_scopes("write")
async def async_create(request):
    return JsonResponse({"owner": identity(request).client_id}, status=201)


urlpatterns = [path("open/whoami", whoami), path("open/items", create), path("open/async", async_create)]
"""


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    kind = str(request.param)
    tmp_path = tmp_path_factory.mktemp(f"django-spoof-{kind}")
    registry_url = f"sqlite:{tmp_path / 'keys.db'}"
    with serve_project(kind, tmp_path, urls=URLS, serve=SERVE, registry_url=registry_url) as url:
        yield url


SPOOF_HEADERS = {
    "Datafold-Auth-Identity": "admin",
    "Datafold_Auth.Identity": "admin",
    "Remote-User": "admin",
    "X-Remote-User": "admin",
    "Signature": "df=:AAAA:",
    "Signature-Input": 'df=("@method");keyid="x";alg="ed25519"',
}


def test_client_headers_never_become_the_identity(base: str) -> None:
    for name, value in SPOOF_HEADERS.items():
        answer = requests.get(f"{base}/open/whoami", headers={name: value}, timeout=10)
        assert answer.json() == {"client_id": None, "remote_user": None}, name
        refused = requests.post(f"{base}/open/items", headers={name: value}, data=b"{}", timeout=10)
        assert (refused.status_code, refused.headers["Content-Type"]) == (401, "application/problem+json"), name


@pytest.mark.parametrize("route", ["open/items", "open/async"])
@pytest.mark.parametrize("foreign", ["str", "dict", "list"])
def test_a_foreign_value_under_the_identity_key_is_no_identity(base: str, route: str, foreign: str) -> None:
    answer = requests.post(f"{base}/{route}", headers={"X-Foreign": foreign}, data=b"{}", timeout=10)
    assert answer.headers["Content-Type"] == "application/problem+json", answer.text
    assert (answer.status_code, json.loads(answer.content)["reason"]) == (401, "missing_signature")
    who = requests.get(f"{base}/open/whoami", headers={"X-Foreign": foreign}, timeout=10)
    assert who.json()["client_id"] is None


# ------------------------------------------------------------------ an authorize hook that uses the ORM

HOOKED_SETTINGS = SETTINGS.replace(
    "DATABASES: dict[str, dict[str, str]] = {}",
    'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}',
)

HOOKED_SERVE = """
import os

from django.db import connection

from datafold_auth import Verifier, open_nonce_store, open_registry
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.registry import plugin_manager
from datafold_auth.registry.hookspecs import hookimpl

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")


class Permissions:  # the application's own permission system, in its database
    @hookimpl
    def datafold_auth_authorize(self, identity, scopes, request):
        with connection.cursor() as cursor:  # Django refuses this inside a running event loop
            cursor.execute("SELECT %s", [identity.client_id])
            return cursor.fetchone()[0] == "writer" or None


plugin_manager().register(Permissions())
verifier = Verifier(open_registry(os.environ["REGISTRY"]), open_nonce_store("memory://"))
if {asgi}:
    from django.core.asgi import get_asgi_application
    application = DatafoldAuthASGIMiddleware(get_asgi_application(), verifier=verifier, paths=["/api/"])
else:
    from django.core.wsgi import get_wsgi_application
    application = DatafoldAuthMiddleware(get_wsgi_application(), verifier, paths=["/api/"])
"""

HOOKED_URLS = URLS.replace(
    'path("open/async", async_create)]',
    'path("open/async", async_create), path("api/async", async_create), path("api/items", create)]',
)


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def hooked(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, Any]]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    import datafold_auth as df

    kind = str(request.param)
    tmp_path = tmp_path_factory.mktemp(f"django-hooked-{kind}")
    registry_url = f"sqlite:{tmp_path / 'keys.db'}"
    registry = df.open_registry(registry_url)
    signers = {}
    for client_id in ("reader", "writer"):
        key = Ed25519PrivateKey.generate()
        registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id=client_id, scopes=("read",)))
        signers[client_id] = df.Signer(key)
    with serve_project(
        kind, tmp_path, urls=HOOKED_URLS, serve=HOOKED_SERVE, registry_url=registry_url, settings=HOOKED_SETTINGS
    ) as url:
        yield url, signers


@pytest.mark.parametrize("route", ["api/items", "api/async"])
def test_an_authorize_hook_using_the_orm_works_in_sync_and_async_views(
    hooked: tuple[str, dict[str, Any]], route: str
) -> None:
    """The hook grants ``writer`` the ``write`` scope its key lacks, from the database. In an
    async view the hook ran inside the event loop: Django raised SynchronousOnlyOperation (500)."""
    from datafold_auth.client.requests import DatafoldAuth

    base, signers = hooked
    granted = requests.post(f"{base}/{route}", data=b"{}", auth=DatafoldAuth(signers["writer"]), timeout=10)
    assert (granted.status_code, granted.json()) == (201, {"owner": "writer"}), granted.text[:300]
    refused = requests.post(f"{base}/{route}", data=b"{}", auth=DatafoldAuth(signers["reader"]), timeout=10)
    assert refused.headers["Content-Type"] == "application/problem+json", refused.text[:300]
    assert (refused.status_code, json.loads(refused.content)["reason"]) == (403, "insufficient_scope")
