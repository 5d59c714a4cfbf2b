"""A throwaway Django project (``mysite``) served by a real server in its own process.

Django's settings are per process, so each test module writes its project
(settings, URLconf and the ``serve`` module that wraps Django's application in
the DataFold middleware) to a temporary folder and runs it with uvicorn (ASGI)
or gunicorn (WSGI) on a free loopback port (:func:`serve_project`). The project
reads its registry URL from the ``REGISTRY`` environment variable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .private_services import free_port
from .servers import serve_process

SETTINGS = """
SECRET_KEY = "test"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware", "django.middleware.csrf.CsrfViewMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
"""
"""``mysite/settings.py`` as ``django-admin startproject`` makes it where it matters (CsrfViewMiddleware on)."""


def server_argv(kind: str, port: int) -> list[str]:
    """The command serving ``mysite.serve:application``: uvicorn for ``asgi``, gunicorn (1 worker) for ``wsgi``."""
    if kind == "asgi":
        return [
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
    bind = f"127.0.0.1:{port}"
    return [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", bind, "mysite.serve:application"]


@contextmanager
def serve_project(
    kind: str, folder: Path, *, urls: str, serve: str, registry_url: str, settings: str = SETTINGS
) -> Iterator[str]:
    """Write ``mysite`` into ``folder`` and serve it (``kind``: ``asgi`` or ``wsgi``); yield its base URL.

    ``serve`` is a template: ``{asgi}`` is replaced by whether ``kind`` is ``asgi``. The server
    sees no ``DATAFOLD_*``/``DJANGO_*`` variables of ours, ``REGISTRY=registry_url`` and ``folder``
    on ``PYTHONPATH``; its log is ``folder/server.log`` and must hold no traceback afterwards
    (see :func:`tests.servers.serve_process`).
    """
    package = folder / "mysite"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(settings)
    (package / "urls.py").write_text(urls)
    (package / "serve.py").write_text(serve.format(asgi=kind == "asgi"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_", "DJANGO_"))}
    env["REGISTRY"] = registry_url
    env["PYTHONPATH"] = os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])
    port = free_port()
    with serve_process(server_argv(kind, port), port=port, log=folder / "server.log", cwd=folder, env=env) as base:
        yield base
