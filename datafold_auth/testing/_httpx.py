"""httpx piece of the in-process requests adapter (imported only when a requests session calls an ASGI app)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx


def call_asgi(
    app: Any, method: str, url: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send one request to an ASGI app through ``httpx.ASGITransport`` on a private event loop.

    The loop runs in a worker thread, so this works from sync code and from
    inside a running event loop alike.

    Returns:
        ``(status, header lines, body)``.
    """

    async def send() -> tuple[int, list[tuple[str, str]], bytes]:
        transport = httpx.ASGITransport(app=app)
        response = await transport.handle_async_request(httpx.Request(method, url, headers=headers, content=body))
        content = await response.aread()
        return response.status_code, response.headers.multi_items(), content

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="datafold-asgi") as pool:
        return pool.submit(asyncio.run, send()).result()


__all__ = ["call_asgi"]
