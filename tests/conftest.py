"""Shared test configuration: where the published vectors live."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(os.environ.get("DATAFOLD_VECTORS", ROOT.parent / "shared" / "vectors"))


@pytest.fixture(scope="session")
def rfc_vectors() -> dict[str, Any]:
    """``../shared/vectors/rfc-vectors.json`` (RFC 9421 B.2.6, RFC 9530, RFC 7638/8037)."""
    path = VECTORS / "rfc-vectors.json"
    if not path.exists():
        pytest.fail(f"published vectors not found at {path} (set DATAFOLD_VECTORS)")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema for this test (dropped afterwards); skipped without PostgreSQL (failed in CI)."""
    from .backends import postgres_schema

    with postgres_schema() as name:
        yield name


@pytest.fixture
def redis_key_prefix() -> Iterator[str]:
    """A fresh Redis key prefix for this test (keys deleted afterwards); skipped without Redis (failed in CI)."""
    from .backends import redis_prefix

    with redis_prefix() as prefix:
        yield prefix
