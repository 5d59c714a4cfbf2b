"""A small FastAPI app protected by datafold-auth: the app under test of the example suite.

Same routes and rules as flask_shop.py. ``create_app(verifier=...)`` is the
seam the tests use to hand in the plugin's ``datafold_verifier``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from datafold_auth import MemoryNonceStore, SQLiteRegistry, Verifier
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, Identity


class InsufficientScope(Exception):
    """Raised by :func:`require_scope`; answered ``403 insufficient_scope``."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


def require_scope(scope: str) -> Callable[[Request], Awaitable[Identity]]:
    """A dependency that returns the verified identity if its key has ``scope``."""

    async def dependency(request: Request) -> Identity:
        identity: Identity = request.user
        if scope not in identity.scopes:
            raise InsufficientScope(scope)
        return identity

    return dependency


def create_app(verifier: Verifier | None = None, *, db_path: str = "shop-keys.db") -> FastAPI:
    """The app. ``verifier``: how signatures are checked (default: the SQLite registry at ``db_path``)."""
    if verifier is None:
        verifier = Verifier(SQLiteRegistry(db_path), MemoryNonceStore())
    app = FastAPI()
    items: list[dict[str, Any]] = []

    @app.exception_handler(InsufficientScope)
    async def refuse(request: Request, exc: InsufficientScope) -> JSONResponse:
        doc = {
            "type": "https://example.com/problems/insufficient_scope",
            "title": f"This needs the {exc.scope!r} scope.",
            "status": 403,
            "reason": "insufficient_scope",
        }
        return JSONResponse(doc, status_code=403, media_type="application/problem+json")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/hello")
    async def hello(request: Request) -> dict[str, Any]:
        return {"hello": request.user.client_id, "scopes": list(request.user.scopes)}

    @app.get("/api/items")
    async def list_items(who: Identity = Depends(require_scope("read"))) -> dict[str, Any]:  # noqa: B008
        return {"items": items, "reader": who.client_id}

    @app.post("/api/items", status_code=201)
    async def create_item(request: Request, who: Identity = Depends(require_scope("write"))) -> dict[str, Any]:  # noqa: B008
        item = {"name": (await request.json()).get("name"), "owner": who.client_id}
        items.append(item)
        return item

    app.add_middleware(DatafoldAuthASGIMiddleware, verifier=verifier, paths=["/api/"])
    return app
