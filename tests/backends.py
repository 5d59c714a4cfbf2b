"""The PostgreSQL and Redis servers the conformance and multi-instance tests use.

Each test gets its own PostgreSQL schema (created empty, dropped after) and
its own Redis key prefix (its keys deleted after). The servers are the
machine's (127.0.0.1:5432, database ``test``; 127.0.0.1:6379), overridable
with ``DATAFOLD_TEST_POSTGRES`` / ``DATAFOLD_TEST_REDIS``. When one is
unreachable its tests are skipped, except in CI (``CI=true``), where they
fail: CI starts both (scripts/start-services.sh).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import pytest

POSTGRES_URL = os.environ.get("DATAFOLD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DATAFOLD_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why}); scripts/start-services.sh starts it"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@lru_cache(maxsize=1)
def _postgres_problem() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()[:200]
    return None


@lru_cache(maxsize=1)
def _redis_problem() -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_timeout=3, socket_connect_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()[:200]
    return None


def require_postgres() -> None:
    """Skip (fail in CI) when PostgreSQL is unreachable."""
    problem = _postgres_problem()
    if problem:
        _unavailable(f"PostgreSQL at {POSTGRES_URL}", problem)


def require_redis() -> None:
    """Skip (fail in CI) when Redis is unreachable."""
    problem = _redis_problem()
    if problem:
        _unavailable(f"Redis at {REDIS_URL}", problem)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema name (``dft_<hex>``) in the test database; dropped (with everything in it) afterwards."""
    require_postgres()
    import psycopg

    name = f"dft_{secrets.token_hex(6)}"
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def schema_url(schema: str, **options: str) -> str:
    """The registry URL of ``schema`` (plus pool options)."""
    query = "&".join(f"{k}={v}" for k, v in {"schema": schema, **options}.items())
    return f"{POSTGRES_URL}?{query}"


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix (``dft:<hex>:``); its keys are deleted afterwards."""
    require_redis()
    import redis

    prefix = f"dft:{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
