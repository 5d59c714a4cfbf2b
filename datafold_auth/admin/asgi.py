"""The admin API as an ASGI 3 application (mount it, e.g. with Starlette's ``Mount``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async

from ..audit import request_id
from ..errors import DatafoldAuthError
from ..middleware._common import IDENTITY_KEY, Identity
from ..permissions import has_authorize_hook
from ..registration.asgi import split_mount
from ..wire import read_asgi_body, request_from_scope
from .core import AdminService, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AdminASGIApp(AdminService):
    """ASGI admin API (routes: :mod:`datafold_auth.admin.core`); see :class:`~datafold_auth.admin.AdminApp`.

    Verification, registry calls and a ``datafold_auth_authorize`` hook run on a worker thread
    when they may block.
    """

    def _answer(self, scope: Scope, body: bytes, rid: str, remote: str | None) -> Response:
        method = scope.get("method", "GET")
        mount, path = split_mount(scope)
        request = None
        identity: Identity | None = None
        try:
            request = request_from_scope(scope, body, self.authority)
            identity = self.identify(request, scope.get(IDENTITY_KEY))
            self.authorize(identity, request)
            return self.handle(self.route(method, path), identity, request, rid)
        except DatafoldAuthError as exc:
            return self.refuse(
                exc, request=request, method=method, path=mount + path, remote=remote, request_id=rid, identity=identity
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection scope (``lifespan`` is acknowledged, websockets closed)."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        method = scope.get("method", "GET")
        offered = next((v for k, v in scope.get("headers", ()) if k.lower() == b"x-request-id"), None)
        rid = request_id(offered.decode("latin-1") if offered else None)
        client = scope.get("client")
        remote = client[0] if client else None
        try:
            body, _ = await read_asgi_body(receive, self.max_body)
        except DatafoldAuthError as exc:
            response = self.refuse(exc, request=None, method=method, path="", remote=remote, request_id=rid)
        else:
            if self.blocking or has_authorize_hook():  # registry I/O, or application code that may block
                response = await sync_to_async(self._answer, thread_sensitive=False)(scope, body, rid, remote)
            else:
                response = self._answer(scope, body, rid, remote)
        status, headers, content = response
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else content})


__all__ = ["AdminASGIApp"]
