"""Per-request cost of the WSGI and ASGI middleware, in process, against bare Ed25519 verify.

Prints, for one signed ``POST /v1/items?page=2`` with a 53-byte JSON body:

* bare ``Ed25519PublicKey.verify`` over the request's signature base;
* ``DatafoldAuthMiddleware`` (WSGI) around a trivial app, called with a real
  PEP 3333 environ (``wsgi.input`` a ``BytesIO``, as gunicorn gives one);
* ``DatafoldAuthASGIMiddleware`` around a trivial app, called with an ASGI
  scope, ``receive`` and ``send`` inside one running event loop, once with a
  non-blocking registry (``MemoryRegistry``: verification runs inline) and
  once with a blocking one (``SQLiteRegistry`` behind the warm cache: the
  ``verify_offloading`` path that uvicorn + PostgreSQL/SQLite deployments take);
* the trivial apps called directly (no middleware), to subtract.

The per-request overhead is the middleware's time minus the bare app's, and
it is printed as a ratio of the bare verify measured in the same round,
right next to it (target of the load test: overhead <= 1.3 x bare verify).
The nonce store is the in-memory one (a fresh one per round) and the key
cache is warm: the steady state of a per-worker deployment.

Run: ``python bench/middleware.py [--rounds N] [--per-round N]``; medians of
per-round means, microseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from verify import BODY, NOW, URL  # bench/ is on sys.path when run as a script
from verify import environ_for as core_environ_for

import datafold_auth as df
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware

HOST = "api.example.com"
COMPONENTS = ("@method", "@authority", "@path", "@query", "content-digest", "content-type")


def environ_for(headers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it for the signed request: bench/verify.py's, plus the usual extras."""
    env = core_environ_for(list(headers))
    env.update(
        {
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_USER_AGENT": "bench/1.0",
            "HTTP_ACCEPT": "*/*",
            "HTTP_CONNECTION": "keep-alive",
        }
    )
    return env


def scope_for(headers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """An ASGI scope as uvicorn builds it for the signed request."""
    raw = [
        (b"host", HOST.encode()),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": "/v1/items",
        "raw_path": b"/v1/items",
        "root_path": "",
        "query_string": b"page=2",
        "headers": raw,
        "server": (HOST, 443),
        "client": ("127.0.0.1", 50000),
    }


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    if not status.startswith("200"):
        raise SystemExit(f"middleware refused a request: {status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--per-round", type=int, default=400)
    args = parser.parse_args()
    total = args.rounds * args.per_round

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    signer = df.Signer(key)
    record = df.KeyRecord.for_public_key(public, client_id="bench")
    memory_registry = df.MemoryRegistry()
    memory_registry.register(record)
    tmp = tempfile.TemporaryDirectory()
    sqlite_registry = df.SQLiteRegistry(Path(tmp.name) / "keys.db")
    sqlite_registry.register(record)

    # Pre-signed distinct requests (distinct nonces), one set per middleware.
    kinds = ("wsgi", "asgi", "asgi_blocking")
    signed: dict[str, list[list[tuple[str, str]]]] = {k: [] for k in kinds}
    bases, signatures = [], []
    for _ in range(total):
        for kind in kinds:
            req = df.Request.from_url("POST", URL, [("Content-Type", "application/json")], BODY)
            signed[kind].append(list(signer.sign(req, now=NOW)))
        params = dict(signed["wsgi"][-1])["Signature-Input"].split("=", 1)[1]
        bases.append(df.signature_base(req, [(n, {}) for n in COMPONENTS], params))
        signatures.append(key.sign(bases[-1]))
    environs = [environ_for(h) for h in signed["wsgi"]]
    plain_environs = [environ_for(h) for h in signed["wsgi"]]
    scopes = {k: [scope_for(h) for h in signed[k]] for k in ("asgi", "asgi_blocking")}
    plain_scopes = [scope_for(h) for h in signed["asgi"]]

    gc.collect()
    gc.freeze()
    names = ("bare_verify", "wsgi_app", "wsgi_mw", "asgi_app", "asgi_mw", "asgi_mw_blocking")
    results: dict[str, list[float]] = {k: [] for k in names}
    clock = time.perf_counter

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"middleware refused a request: {message['status']}")

    async def run_round(r: int, sums: dict[str, float], asgi_mw: Any, asgi_blocking: Any) -> None:
        for i in range(r * args.per_round, (r + 1) * args.per_round):
            done = False

            async def receive() -> dict[str, Any]:
                nonlocal done
                if done:
                    return {"type": "http.disconnect"}
                done = True
                return {"type": "http.request", "body": BODY, "more_body": False}

            t0 = clock()
            public.verify(signatures[i], bases[i])
            t1 = clock()
            await asgi_app(plain_scopes[i], receive, send)
            t2 = clock()
            done = False
            await asgi_mw(scopes["asgi"][i], receive, send)
            t3 = clock()
            done = False
            await asgi_blocking(scopes["asgi_blocking"][i], receive, send)
            t4 = clock()
            sums["asgi_app"] += t2 - t1
            sums["asgi_mw"] += t3 - t2
            sums["asgi_mw_blocking"] += t4 - t3
            sums["bare_verify"] += t1 - t0

    loop = asyncio.new_event_loop()
    for r in range(args.rounds):
        sums = dict.fromkeys(names, 0.0)
        wsgi = DatafoldAuthMiddleware(wsgi_app, df.Verifier(memory_registry, df.MemoryNonceStore()), clock=lambda: NOW)
        asgi_mw = DatafoldAuthASGIMiddleware(
            asgi_app, df.Verifier(memory_registry, df.MemoryNonceStore()), clock=lambda: NOW
        )
        asgi_blocking = DatafoldAuthASGIMiddleware(
            asgi_app, df.Verifier(sqlite_registry, df.MemoryNonceStore(), cache_ttl=3600), clock=lambda: NOW
        )
        asgi_blocking.verifier.cache.get(signer.keyid, NOW)  # warm cache: the steady state
        for i in range(r * args.per_round, (r + 1) * args.per_round):
            t0 = clock()
            public.verify(signatures[i], bases[i])
            t1 = clock()
            wsgi_app(plain_environs[i], _start_response)
            t2 = clock()
            wsgi(environs[i], _start_response)
            t3 = clock()
            sums["bare_verify"] += t1 - t0
            sums["wsgi_app"] += t2 - t1
            sums["wsgi_mw"] += t3 - t2
        loop.run_until_complete(run_round(r, sums, asgi_mw, asgi_blocking))
        for name, value in sums.items():
            results[name].append(value / (args.per_round * (2 if name == "bare_verify" else 1)))
    loop.close()
    tmp.cleanup()

    med = {k: statistics.median(v) * 1e6 for k, v in results.items()}
    bare = med["bare_verify"]
    print(f"rounds={args.rounds} x {args.per_round} requests; medians of per-round means (microseconds per request)")
    print(f"{'measure':<52}{'us/req':>9}{'overhead':>10}{'x verify':>10}")
    print(f"{'bare Ed25519PublicKey.verify(base)':<52}{bare:>9.1f}")
    rows = [
        ("WSGI: DatafoldAuthMiddleware, memory registry", "wsgi_mw", "wsgi_app"),
        ("ASGI: DatafoldAuthASGIMiddleware, memory registry", "asgi_mw", "asgi_app"),
        ("ASGI: same, SQLite registry (offloading path)", "asgi_mw_blocking", "asgi_app"),
    ]
    for label, mw, app in rows:
        overhead = med[mw] - med[app]
        print(f"{label:<52}{med[mw]:>9.1f}{overhead:>10.1f}{overhead / bare:>10.3f}")
    print(
        f"(trivial apps alone: WSGI {med['wsgi_app']:.1f} us, ASGI {med['asgi_app']:.1f} us; target overhead <= 1.3 x)"
    )


if __name__ == "__main__":
    main()
