"""Verification and signing cost against bare Ed25519, measured in one run.

Prints, for one signed POST request with a small JSON body:

* bare ``Ed25519PublicKey.verify`` over its signature base, and our full
  verification of the same request as the middleware runs it (WSGI environ to
  request parts, Signature-Input/Signature parsing, policy and time checks,
  registry lookup through the cache, signature base, verify, Content-Digest,
  nonce store) -- target ratio <= 1.25;
* bare ``Ed25519PrivateKey.sign`` over the signature base, and our full
  ``Signer.sign`` (Content-Digest, nonce, parameters, base, sign) -- target
  ratio <= 1.5.

Each measured operation runs right after its baseline (same request), and
the median of per-round means is reported, so machine noise hits both sides
alike. Run:
``python bench/verify.py [--rounds N] [--per-round N]``.
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.wire import request_from_environ

URL = "https://api.example.com/v1/items?page=2"
BODY = b'{"name": "widget", "quantity": 3, "tags": ["a", "b"]}'
NOW = 1_800_000_000


def environ_for(headers: list[tuple[str, str]]) -> dict[str, object]:
    env: dict[str, object] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/v1/items",
        "RAW_URI": "/v1/items?page=2",  # as gunicorn and werkzeug provide
        "QUERY_STRING": "page=2",
        "SERVER_NAME": "api.example.com",
        "SERVER_PORT": "443",
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(BODY),
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(BODY)),
        "HTTP_HOST": "api.example.com",
    }
    for name, value in headers:
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=400)
    args = parser.parse_args()
    total = args.rounds * args.per_round

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    signer = df.Signer(key)
    registry = df.MemoryRegistry()
    registry.register(df.KeyRecord.for_public_key(public, client_id="bench"))

    # Pre-sign distinct requests (distinct nonces) for the verify side.
    environs, bases, signatures = [], [], []
    for i in range(total):
        req = df.Request.from_url("POST", URL, [("Content-Type", "application/json")], BODY)
        added = signer.sign(req, now=NOW)
        environs.append(environ_for([(k, v) for k, v in added]))
        params = dict(added)["Signature-Input"].split("=", 1)[1]
        components = [(n, {}) for n in ("@method", "@authority", "@path", "@query", "content-digest", "content-type")]
        bases.append(df.signature_base(req, components, params))  # type: ignore[arg-type]
        signatures.append(key.sign(bases[-1]))
    base0 = bases[0]

    # The pre-signed requests are setup data, not server state: keep the
    # garbage collector from walking them during the measurement.
    gc.collect()
    gc.freeze()
    results: dict[str, list[float]] = {k: [] for k in ("bare_verify", "full_verify", "bare_sign", "full_sign")}
    clock = time.perf_counter
    for r in range(args.rounds):
        verifier = df.Verifier(registry, df.MemoryNonceStore(), cache_ttl=3600)
        verifier.cache.get(signer.keyid, NOW)  # warm cache: the measured path is the steady state
        sums = dict.fromkeys(results, 0.0)
        # Each op of a pair runs back to back with its baseline, so that
        # noise from other processes hits both sides alike.
        for i in range(r * args.per_round, (r + 1) * args.per_round):
            t0 = clock()
            public.verify(signatures[i], bases[i])
            t1 = clock()
            verifier.verify(request_from_environ(environs[i], BODY), NOW)  # body already read by the middleware
            t2 = clock()
            key.sign(base0)
            t3 = clock()
            signer.sign(df.Request.from_url("POST", URL, [("Content-Type", "application/json")], BODY), now=NOW)
            t4 = clock()
            sums["bare_verify"] += t1 - t0
            sums["full_verify"] += t2 - t1
            sums["bare_sign"] += t3 - t2
            sums["full_sign"] += t4 - t3
        for name, total in sums.items():
            results[name].append(total / args.per_round)

    med = {k: statistics.median(v) * 1e6 for k, v in results.items()}
    verify_ratio = med["full_verify"] / med["bare_verify"]
    sign_ratio = med["full_sign"] / med["bare_sign"]
    print(f"rounds={args.rounds} x {args.per_round} ops; medians of per-round means (microseconds per op)")
    print(f"{'measure':<44}{'us/op':>10}")
    print(f"{'bare Ed25519PublicKey.verify(base)':<44}{med['bare_verify']:>10.1f}")
    print(f"{'full verification (middleware path)':<44}{med['full_verify']:>10.1f}")
    print(f"{'bare Ed25519PrivateKey.sign(base)':<44}{med['bare_sign']:>10.1f}")
    print(f"{'full Signer.sign':<44}{med['full_sign']:>10.1f}")
    print(f"verify ratio full/bare = {verify_ratio:.3f} (target <= 1.25) {'OK' if verify_ratio <= 1.25 else 'OVER'}")
    print(f"sign   ratio full/bare = {sign_ratio:.3f} (target <= 1.50) {'OK' if sign_ratio <= 1.5 else 'OVER'}")


if __name__ == "__main__":
    main()
