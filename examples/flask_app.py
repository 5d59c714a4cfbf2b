"""Flask (WSGI) example: signed API routes plus the registration endpoint.

Run: ``python examples/flask_app.py --port 8000 --db keys.db [--static DIR]``; the first line on
stdout is ``listening on http://HOST:PORT (development server)``; each refused request is logged
at INFO on stderr (``datafold_auth rejected 'GET' '/api/hello': reason=... detail=... keyid=...``).

* ``POST /register/keys``: registration with proof of possession (unsigned routes of
  the registration app itself, mounted with werkzeug's DispatcherMiddleware);
* ``GET /api/hello`` and ``POST /api/items``: need a DataFold signature; the app
  reads the verified identity from the WSGI environ;
* ``GET /health``: open;
* ``GET /browser/``: the browser key manager page and ``datafold-auth.js`` (docs/browser.md);
* ``GET /app/``: with ``--static DIR``, the files of ``DIR`` (your own page, unsigned;
  docs/getting-started/browser.md); hidden files and symlinks leading out of ``DIR`` are not
  served (404).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, request, send_from_directory
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.security import safe_join
from werkzeug.serving import run_simple

from datafold_auth import MemoryNonceStore, SQLiteRegistry, Verifier
from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthMiddleware
from datafold_auth.registration import RegistrationApp

BROWSER_DIR = Path(__file__).resolve().parent.parent / "browser"
"""The browser script and key manager page, served (unsigned) under ``/browser/``."""


def create_app(db_path: str, static_dir: str | None = None) -> Flask:
    """The Flask app, with the middleware and the registration app mounted.

    Args:
        db_path: the SQLite registry file.
        static_dir: a folder served unsigned at ``/app/`` (``index.html`` for ``/app/``); ``None``: no ``/app/``.
    """
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

    if static_dir is not None:
        static_root = Path(static_dir).resolve()

        @app.get("/app/")
        @app.get("/app/<path:name>")
        def static_files(name: str = "index.html") -> Any:
            # send_from_directory refuses ``..`` and absolute paths but follows symlinks:
            # a link in DIR leading out of it would serve any file this process may read.
            # Hidden names (.env, .git/...) are not served either.
            hidden = any(part.startswith(".") for part in name.split("/"))
            joined = None if hidden or "\0" in name else safe_join(str(static_root), name)
            if joined is None or not Path(joined).resolve().is_relative_to(static_root):
                abort(404)
            return send_from_directory(static_root, name)

    protected = DatafoldAuthMiddleware(app.wsgi_app, Verifier(registry, nonces), paths=["/api/"])
    app.wsgi_app = DispatcherMiddleware(protected, {"/register": RegistrationApp(registry, nonces)})  # type: ignore[method-assign]
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--db", default="datafold-keys.db", help="SQLite registry file (default datafold-keys.db)")
    parser.add_argument("--static", metavar="DIR", help="also serve the files of DIR (unsigned) at /app/")
    args = parser.parse_args()
    if args.static is not None and not Path(args.static).is_dir():
        parser.error(f"--static {args.static}: not a folder")
    app = create_app(args.db, args.static)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access log
    logging.basicConfig(format="%(message)s")
    logging.getLogger("datafold_auth").setLevel(logging.INFO)  # one line per refused request: why (no secrets)
    print(f"listening on http://{args.host}:{args.port} (development server)", flush=True)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
