"""The registration endpoint as an ASGI 3 application.

Routes are relative to the mount point: ``scope["path"]`` minus the
``scope["root_path"]`` prefix when the path starts with it (Starlette
``Mount`` and uvicorn ``--root-path`` keep the full path in ``path``), else
``path`` as is (servers that strip the prefix). Verification uses the full
raw path as the client signed it. Registry and nonce-store calls run on a
worker thread when either is blocking, so the event loop never waits on them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, ParamSpec
from urllib.parse import quote

from asgiref.sync import sync_to_async

from ..audit import request_id
from ..errors import DatafoldAuthError
from ..wire import read_asgi_body, request_from_scope
from .core import RegistrationService, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
P = ParamSpec("P")


def split_mount(scope: Scope) -> tuple[str, str]:
    """``(mount, path)``: the mount prefix and the path relative to it (ASGI ``http`` scope)."""
    root, path = scope.get("root_path", ""), scope.get("path", "/")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return root, path[len(root) :]
    return root, path


class RegistrationASGIApp(RegistrationService):
    """ASGI app: ``POST /keys`` registers a key with proof of possession,
    ``GET /keys/{keyid}`` returns its public record (see :mod:`.core`).

    Constructor: see :class:`~datafold_auth.registration.core.RegistrationService`.
    Handles ``lifespan`` (nothing to do) and closes ``websocket`` connections.
    """

    async def _run(self, func: Callable[P, Response], *args: P.args, **kwargs: P.kwargs) -> Response:
        if self.blocking:
            return await sync_to_async(func, thread_sensitive=False)(*args, **kwargs)
        return func(*args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection scope."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        method = scope.get("method", "GET")
        mount, path = split_mount(scope)
        request = None
        rid = None
        client = scope.get("client")
        remote = client[0] if client else None
        try:
            found = self.route_action(method, path)
            if found.action == "lookup":
                response = await self._run(self.lookup, found.need_keyid())
            else:
                fields = {k.lower(): v for k, v in scope.get("headers", ())}
                offered = fields.get(b"x-request-id")
                rid = request_id(offered.decode("latin-1") if offered else None)
                if found.action == "register":
                    forwarded = fields.get(b"x-forwarded-for")
                    self.check_rate(self.client_address(remote, forwarded.decode("latin-1") if forwarded else None))
                body, _ = await read_asgi_body(receive, self.max_body)
                request = request_from_scope(scope, body, self.authority)
                response = await self._run(self.handle, found, request, quote(mount), request_id=rid)
        except DatafoldAuthError as exc:
            response = self.refuse(
                exc, request=request, method=method, path=mount + path, remote=remote, request_id=rid
            )
        status, headers, content = response
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else content})


__all__ = ["RegistrationASGIApp", "split_mount"]
