"""Flask (WSGI) example: signed API routes plus the registration endpoint.

Run: ``python examples/flask_app.py --port 8000 --db /tmp/datafold-keys.db``

* ``POST /register/keys``: registration with proof of possession (unsigned routes of
  the registration app itself, mounted with werkzeug's DispatcherMiddleware);
* ``GET /api/hello`` and ``POST /api/items``: need a DataFold signature; the app
  reads the verified identity from the WSGI environ;
* ``GET /health``: open;
* ``GET /browser/``: the browser key manager page and ``datafold-auth.js`` (docs/browser.md).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request, send_from_directory
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import run_simple

from datafold_auth import MemoryNonceStore, SQLiteRegistry, Verifier
from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthMiddleware
from datafold_auth.registration import RegistrationApp

BROWSER_DIR = Path(__file__).resolve().parent.parent / "browser"
"""The browser script and key manager page, served (unsigned) under ``/browser/``."""


def create_app(db_path: str) -> Flask:
    """The Flask app, with the middleware and the registration app mounted."""
    registry = SQLiteRegistry(db_path)
    nonces = MemoryNonceStore()
    app = Flask(__name__)

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.get("/api/hello")
    def hello() -> Any:
        identity = request.environ[IDENTITY_KEY]
        return {"hello": identity.client_id, "keyid": identity.keyid, "remote_user": request.environ["REMOTE_USER"]}

    @app.post("/api/items")
    def create_item() -> Any:
        identity = request.environ[IDENTITY_KEY]
        return jsonify(created=request.get_json(), owner=identity.client_id)

    @app.get("/browser/")
    @app.get("/browser/<path:name>")
    def browser_files(name: str = "index.html") -> Any:
        return send_from_directory(BROWSER_DIR, name)

    protected = DatafoldAuthMiddleware(app.wsgi_app, Verifier(registry, nonces), paths=["/api/"])
    app.wsgi_app = DispatcherMiddleware(protected, {"/register": RegistrationApp(registry, nonces)})  # type: ignore[method-assign]
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default="datafold-keys.db", help="SQLite registry file")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access log
    run_simple(args.host, args.port, create_app(args.db), threaded=True)


if __name__ == "__main__":
    main()
