"""Shared fixtures of the example suite. The datafold-auth fixtures need no import:
installing datafold-auth registers its pytest plugin."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio."""
    return "asyncio"
