"""Shared test configuration: where the published vectors live."""

from __future__ import annotations

import json
import os
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
