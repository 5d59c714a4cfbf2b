"""A small Flask app protected by datafold-auth: the app under test of the example suite.

The one thing that makes it testable is the app factory's ``verifier``
argument: production passes nothing (the verifier is built on the real
registry), tests pass the plugin's ``datafold_verifier`` (test registry,
inspectable nonce store, controllable clock).

Routes: ``GET /health`` (open); ``GET /api/hello`` (any signed client);
``GET /api/items`` (scope ``read``); ``POST /api/items`` (scope ``write``).
A missing scope is answered ``403 application/problem+json`` with reason
``insufficient_scope``, decided by the app (the middleware authenticates;
authorization is the app's).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request

from datafold_auth import MemoryNonceStore, SQLiteRegistry, Verifier
from datafold_auth.middleware import IDENTITY_KEY, DatafoldAuthMiddleware, Identity


def insufficient_scope(scope: str) -> Response:
    """The app's own refusal, in the same RFC 9457 shape as the middleware's."""
    doc = {
        "type": "https://example.com/problems/insufficient_scope",
        "title": f"This needs the {scope!r} scope.",
        "status": 403,
        "reason": "insufficient_scope",
    }
    return Response(json.dumps(doc), status=403, content_type="application/problem+json")


def identity() -> Identity:
    """The verified client of the current request (set by the middleware)."""
    found: Identity = request.environ[IDENTITY_KEY]
    return found


def require_scope(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Route decorator: answer ``403 insufficient_scope`` unless the client's key has ``scope``."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if scope not in identity().scopes:
                return insufficient_scope(scope)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def create_app(verifier: Verifier | None = None, *, db_path: str = "shop-keys.db") -> Flask:
    """The app. ``verifier``: how signatures are checked (default: the SQLite registry at ``db_path``)."""
    if verifier is None:
        verifier = Verifier(SQLiteRegistry(db_path), MemoryNonceStore())
    app = Flask(__name__)
    items: list[dict[str, Any]] = []

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.get("/api/hello")
    def hello() -> Any:
        who = identity()
        return {"hello": who.client_id, "scopes": list(who.scopes)}

    @app.get("/api/items")
    @require_scope("read")
    def list_items() -> Any:
        return {"items": items, "reader": identity().client_id}

    @app.post("/api/items")
    @require_scope("write")
    def create_item() -> Any:
        item = {"name": (request.get_json() or {}).get("name"), "owner": identity().client_id}
        items.append(item)
        return jsonify(item), 201

    app.wsgi_app = DatafoldAuthMiddleware(app.wsgi_app, verifier, paths=["/api/"])  # type: ignore[method-assign]
    return app
