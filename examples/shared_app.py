"""Multi-instance example: a FastAPI app whose instances share one registry and one nonce store.

Run several of these against PostgreSQL (keys, audit log) and Redis (nonces)::

    python examples/shared_app.py --port 8001 \\
        --registry 'postgresql://postgres@127.0.0.1/test?schema=datafold' --nonces redis://127.0.0.1:6379/0
    python examples/shared_app.py --port 8002 --registry ... --nonces ...   # same URLs: same keys, same nonces

or a resource server that trusts another instance's registration endpoint::

    python examples/shared_app.py --port 8003 --registry remote+http://127.0.0.1:8001/register \\
        --nonces redis://127.0.0.1:6379/0

Routes:

* ``POST /register/keys`` and the key lifecycle (``/register/keys/{keyid}/rotate|revoke|approve``,
  ``/register/clients/{client_id}/keys``), rate limited per client address;
* ``/admin/...``: the admin API (keys with the ``admin`` scope; docs/operations.md);
* ``GET /api/hello`` (any signed client), ``GET /api/items`` (scope ``read``),
  ``POST /api/items`` (scope ``write``);
* ``GET /health`` (open).

Deployed, give every instance of one service ``--authority`` with the public host name
clients sign (e.g. ``--authority api.example``): without it ``@authority`` is the request's
``Host`` header, which the sender chooses (docs/security.md, cross-service replay).

A nonce used on one instance is refused on every other (shared nonce store);
a key revoked through one is refused by all within ``--cache-ttl`` seconds
(the revocation bound). With ``--port 0`` a free port is chosen; the first
line on stdout is always ``listening on http://HOST:PORT``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request

from datafold_auth import AuditSink, Verifier, open_nonce_store, open_registry
from datafold_auth.admin import AdminASGIApp
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, Identity
from datafold_auth.permissions.starlette import install, require_scopes
from datafold_auth.ratelimit import MemoryRateLimiter, Rate, RedisRateLimiter
from datafold_auth.registration import RegistrationASGIApp


def create_app(
    registry_url: str,
    nonces_url: str = "memory://",
    *,
    cache_ttl: float = 5.0,
    rotation_overlap: int = 600,
    key_lifetime: int | None = None,
    rate_limit: str | None = "10/m",
    rate_limit_total: str | None = "600/m",
    allowed_scopes: tuple[str, ...] = ("read", "write"),
    default_scopes: tuple[str, ...] = ("read",),
    allow_join: bool = True,
    require_approval: bool = False,
    authority: str | None = None,
) -> FastAPI:
    """The app: shared registry and nonce store, middleware on ``/api/``, registration and admin mounted.

    Args:
        registry_url: ``postgresql://...``, ``sqlite:///...``, ``memory://`` or ``remote+http(s)://...``
            (then the registration and admin apps are not mounted: the remote instance serves them).
        nonces_url: ``redis://...``, ``sqlite:///...`` or ``memory://``.
        cache_ttl: seconds a key record is cached: the revocation bound of this instance.
        rotation_overlap: seconds a rotated key keeps verifying.
        key_lifetime: seconds new keys stay valid (``None``: no expiry).
        rate_limit, rate_limit_total: registrations per client address / in total (``"10/m"``;
            ``None``: none); counted in Redis when the nonce store is Redis, else per instance.
        allowed_scopes, default_scopes: what registrations may request / get by default.
        allow_join: a registration for an existing client_id joins it as ``pending``.
        require_approval: new registrations start ``pending``.
        authority: the public ``host[:port]`` used as ``@authority`` by the middleware, the registration
            and the admin apps (``None``: the request's ``Host`` header; pin it in any deployment).
    """
    remote = registry_url.startswith("remote+")
    registry: Any = open_registry(registry_url, ttl=cache_ttl) if remote else open_registry(registry_url)
    nonces = open_nonce_store(nonces_url)
    verifier = Verifier(registry, nonces, cache_ttl=cache_ttl)
    sink = AuditSink(registry) if callable(getattr(registry, "append_audit", None)) else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if sink is not None:
            sink.close()
        registry.close()
        aclose = getattr(nonces, "aclose", None)  # RedisNonceStore: this loop's redis.asyncio client
        if aclose is not None:
            await aclose()

    app = FastAPI(lifespan=lifespan)
    install(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/hello")
    async def hello(request: Request) -> dict[str, Any]:
        return {"hello": request.user.client_id, "keyid": request.user.keyid, "scopes": list(request.user.scopes)}

    @app.get("/api/items")
    async def list_items(who: Identity = Depends(require_scopes("read"))) -> dict[str, Any]:  # noqa: B008
        return {"items": [], "reader": who.client_id}

    @app.post("/api/items", status_code=201)
    async def create_item(request: Request, who: Identity = Depends(require_scopes("write"))) -> dict[str, Any]:  # noqa: B008
        return {"created": await request.json(), "owner": who.client_id}

    if not remote:
        limiter: Any = None
        per_client = Rate.parse(rate_limit) if rate_limit else None
        total = Rate.parse(rate_limit_total) if rate_limit_total else None
        if per_client or total:
            if nonces_url.startswith(("redis://", "rediss://")):
                prefix = nonces.prefix + "rate:"  # type: ignore[attr-defined]
                limiter = RedisRateLimiter(nonces.client, per_client, total, prefix=prefix)  # type: ignore[attr-defined]
            else:
                limiter = MemoryRateLimiter(per_client, total)
        registration = RegistrationASGIApp(
            registry,
            nonces,
            allowed_scopes=set(allowed_scopes),
            default_scopes=default_scopes,
            allow_join=allow_join,
            require_approval=require_approval,
            rotation_overlap=rotation_overlap,
            key_lifetime=key_lifetime,
            rate_limit=limiter,
            authority=authority,
            audit=sink,
        )
        app.mount("/register", registration)
        app.mount("/admin", AdminASGIApp(registry, verifier, authority=authority, audit=sink))
    app.add_middleware(DatafoldAuthASGIMiddleware, verifier=verifier, paths=["/api/"], authority=authority, audit=sink)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--registry", default="sqlite:///datafold-keys.db", help="registry URL")
    parser.add_argument("--nonces", default="memory://", help="nonce store URL")
    parser.add_argument("--cache-ttl", type=float, default=5.0, help="revocation bound in seconds (default 5)")
    parser.add_argument("--rotation-overlap", type=int, default=600, help="seconds a rotated key still verifies")
    parser.add_argument("--key-lifetime", type=int, default=None, help="seconds new keys stay valid")
    parser.add_argument("--rate-limit", default="10/m", help="registrations per client address ('' for none)")
    parser.add_argument("--rate-limit-total", default="600/m", help="registrations in total ('' for none)")
    parser.add_argument("--require-approval", action="store_true", help="new keys start pending")
    parser.add_argument(
        "--authority", help="public host[:port] clients sign (default: the Host header; set it when deployed)"
    )
    args = parser.parse_args()
    app = create_app(
        args.registry,
        args.nonces,
        cache_ttl=args.cache_ttl,
        rotation_overlap=args.rotation_overlap,
        key_lifetime=args.key_lifetime,
        rate_limit=args.rate_limit or None,
        rate_limit_total=args.rate_limit_total or None,
        require_approval=args.require_approval,
        authority=args.authority,
    )
    logging.basicConfig(level=logging.WARNING)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
