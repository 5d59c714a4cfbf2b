"""The applications bench/load.py serves: the example apps, with and without the middleware.

Configured by environment variables, so that every server worker process
(uvicorn spawns its workers, gunicorn forks them) builds the same app:

* ``DF_LOAD_MODE``: ``verify`` (the example app as it ships, middleware on
  ``/api/``) or ``bare`` (the same app with the middleware replaced by a stub
  that sets a fixed identity without looking at the request, so the routes run
  unchanged and the difference between the two is the verification), or
  ``bare-ed25519`` (``bare``, plus one bare ``Ed25519PublicKey.verify`` per
  ``/api/`` request: the price of the signature check alone, inside the server);
* ``DF_LOAD_REGISTRY``: the registry (ASGI: a registry URL for
  ``examples/shared_app.py``; WSGI: the SQLite file of ``examples/flask_app.py``);
* ``DF_LOAD_NONCES``: the nonce store URL (``redis://...`` shared by the
  workers, or ``memory://``: one store per worker process).

ASGI: ``uvicorn --factory load_apps:asgi_app`` serves ``examples/shared_app.py``
(FastAPI; ``POST /api/items`` needs scope ``write``). WSGI: ``gunicorn
'load_apps:wsgi_app()'`` serves ``examples/flask_app.py`` (Flask, SQLite
registry), its nonce store swapped for ``DF_LOAD_NONCES``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from datafold_auth import open_nonce_store  # noqa: E402
from datafold_auth.middleware import IDENTITY_KEY, VERIFIED_KEY, DatafoldAuthASGIMiddleware, Identity  # noqa: E402

CLIENT_ID = "load-bench"
"""The client the load generator's key is registered for (scopes ``read``, ``write``)."""

_STUB_IDENTITY = Identity(client_id=CLIENT_ID, keyid="bare", scopes=("read", "write"))
MODES = ("verify", "bare", "bare-ed25519")


def _mode() -> str:
    mode = os.environ.get("DF_LOAD_MODE", "verify")
    if mode not in MODES:
        raise SystemExit(f"DF_LOAD_MODE must be one of {MODES}, not {mode!r}")
    return mode


def _bare_ed25519() -> Any:
    """``None``, or in ``bare-ed25519`` mode a function doing one bare ``Ed25519PublicKey.verify``
    of a signature base the size of the load's (the in-server price of the signature check alone)."""
    if _mode() != "bare-ed25519":
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    base = b'"@method": POST\n"@authority": 127.0.0.1:8000\n"@path": /api/items\n"@query": ?\n' + b"x" * 300
    signature, public = key.sign(base), key.public_key()
    return lambda: public.verify(signature, base)


class _StubASGIIdentity:
    """Stands in for the middleware in ``bare`` mode: a fixed identity, no verification."""

    def __init__(self, app: Any, **_ignored: Any) -> None:
        self.app = app
        self.check = _bare_ed25519()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if self.check is not None and scope["path"].startswith("/api/"):
                self.check()
            scope[IDENTITY_KEY] = _STUB_IDENTITY
            scope["user"] = _STUB_IDENTITY
            scope["auth"] = _STUB_IDENTITY.scopes
        await self.app(scope, receive, send)


def asgi_app() -> Any:
    """examples/shared_app.py's FastAPI app (uvicorn ``--factory``)."""
    from starlette.middleware import Middleware

    from examples.shared_app import create_app

    app = create_app(
        os.environ["DF_LOAD_REGISTRY"],
        os.environ.get("DF_LOAD_NONCES", "memory://"),
        rate_limit=None,
        rate_limit_total=None,
    )
    if _mode() != "verify":
        found = [i for i, m in enumerate(app.user_middleware) if m.cls is DatafoldAuthASGIMiddleware]  # type: ignore[comparison-overlap]
        if len(found) != 1:
            raise RuntimeError("examples/shared_app.py no longer adds DatafoldAuthASGIMiddleware once")
        app.user_middleware[found[0]] = Middleware(_StubASGIIdentity)  # type: ignore[arg-type]
    return app


class _StubWSGIIdentity:
    """Stands in for the middleware in ``bare`` mode: a fixed identity, no verification."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.check = _bare_ed25519()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.check is not None and environ.get("PATH_INFO", "").startswith("/api/"):
            self.check()
        environ[IDENTITY_KEY] = _STUB_IDENTITY
        environ[VERIFIED_KEY] = None
        environ["REMOTE_USER"] = CLIENT_ID
        return self.app(environ, start_response)  # type: ignore[no-any-return]


def wsgi_app() -> Any:
    """examples/flask_app.py's Flask app (gunicorn ``'load_apps:wsgi_app()'``)."""
    from datafold_auth.middleware import DatafoldAuthMiddleware
    from examples.flask_app import create_app

    app = create_app(os.environ["DF_LOAD_REGISTRY"])
    dispatcher = app.wsgi_app  # DispatcherMiddleware(protected, {"/register": ...})
    protected = dispatcher.app  # type: ignore[attr-defined]
    if not isinstance(protected, DatafoldAuthMiddleware):
        raise RuntimeError("examples/flask_app.py no longer wraps the app in DatafoldAuthMiddleware")
    if _mode() != "verify":
        dispatcher.app = _StubWSGIIdentity(protected.app)  # type: ignore[attr-defined]
    else:
        protected.verifier.nonce_store = open_nonce_store(os.environ.get("DF_LOAD_NONCES", "memory://"))
    return app
