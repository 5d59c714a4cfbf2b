"""FastAPI (ASGI) example: signed API routes plus the registration endpoint.

Run: ``python examples/fastapi_app.py --port 8000 --db /tmp/datafold-keys.db``

Same routes as examples/flask_app.py, including the browser key manager
page under ``/browser/``. The identity is ``request.user``
(Starlette convention), also under ``request.scope["datafold_auth.identity"]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from datafold_auth import MemoryNonceStore, SQLiteRegistry, Verifier
from datafold_auth.middleware import DatafoldAuthASGIMiddleware
from datafold_auth.registration import RegistrationASGIApp

BROWSER_DIR = Path(__file__).resolve().parent.parent / "browser"
"""The browser script and key manager page, served (unsigned) under ``/browser/``."""


def create_app(db_path: str) -> FastAPI:
    """The FastAPI app, with the middleware and the registration app mounted."""
    registry = SQLiteRegistry(db_path)
    nonces = MemoryNonceStore()
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/hello")
    async def hello(request: Request) -> dict[str, Any]:
        return {"hello": request.user.client_id, "keyid": request.user.keyid}

    @app.post("/api/items")
    async def create_item(request: Request) -> dict[str, Any]:
        return {"created": await request.json(), "owner": request.user.client_id}

    app.mount("/register", RegistrationASGIApp(registry, nonces))
    app.mount("/browser", StaticFiles(directory=BROWSER_DIR, html=True), name="browser")
    app.add_middleware(DatafoldAuthASGIMiddleware, verifier=Verifier(registry, nonces), paths=["/api/"])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default="datafold-keys.db", help="SQLite registry file")
    args = parser.parse_args()
    uvicorn.run(create_app(args.db), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
