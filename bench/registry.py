"""Registrations per second and lookup latency of the registry backends, measured in one run.

For each backend (SQLite file, PostgreSQL in a scratch schema that is dropped
afterwards) N keys are registered from T threads (each registration is one
transaction: the insert and its hash-chained audit entry), then every key is
looked up once (``get``, the verify path's cache miss), then the audit chain
is verified. Run::

    python bench/registry.py [--keys 2000] [--threads 8] [--postgres postgresql://postgres@127.0.0.1/test]

``--postgres ''`` skips PostgreSQL.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.audit import AuditContext, verify_chain


def measure(name: str, registry: Any, keys: int, threads: int) -> None:
    records = [
        df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), f"bench-{i}", created_at=i, updated_at=i)
        for i in range(keys)
    ]
    context = AuditContext(actor="bench")
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda r: registry.register(r, context=context), records))
    elapsed = time.perf_counter() - started
    lookups = []
    for record in records[: min(keys, 1000)]:
        t0 = time.perf_counter()
        registry.get(record.keyid)
        lookups.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    report = verify_chain(registry.audit_entries())
    verified = time.perf_counter() - t0
    assert report.count == keys
    print(
        f"{name:<12} {keys / elapsed:>9.0f} registrations/s ({threads} threads)   "
        f"get median {statistics.median(lookups) * 1e6:>7.0f} us   "
        f"audit verify {report.count / verified:>9.0f} entries/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        registry = df.SQLiteRegistry(f"{folder}/keys.db")
        measure("sqlite", registry, args.keys, args.threads)
        registry.close()
    if args.postgres:
        import psycopg

        schema = f"bench_{secrets.token_hex(4)}"
        registry = df.open_registry(f"{args.postgres}?schema={schema}&pool_max={args.threads}")
        try:
            measure("postgresql", registry, args.keys, args.threads)
        finally:
            registry.close()
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
