"""ASGI (3.0) middleware that verifies DataFold-signed requests."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .. import wire
from ..errors import DatafoldAuthError, Reason
from ..message import Request
from ..verifier import VerifiedSignature
from ._common import IDENTITY_KEY, VERIFIED_KEY, Identity, MiddlewareBase, asgi_mount

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class DatafoldAuthASGIMiddleware(MiddlewareBase[ASGIApp]):
    """Verify the signature of every protected HTTP request before ``app`` sees it.

    ``lifespan`` scopes and unprotected paths pass through untouched. A
    ``websocket`` handshake to a protected path is verified like a ``GET``
    without content (sign it as ``GET http(s)://host/path``); refused, it is
    closed before the app sees it (with the problem as the handshake response
    where the server supports the ``websocket.http.response`` extension).

    On success the scope gets ``"datafold_auth.identity"`` and ``"user"`` (an
    :class:`~datafold_auth.middleware.Identity`), ``"auth"`` (its scopes
    tuple) and ``"datafold_auth.verified"`` (the
    :class:`~datafold_auth.verifier.VerifiedSignature`); the body messages read
    for verification are replayed to the app unchanged, then ``receive`` is
    the server's. On failure the client gets an RFC 9457 problem
    (:func:`datafold_auth.wire.problem`): 401, 413 for a body over
    ``max_body``, 503 when the registry or nonce store is unavailable; the app
    is not called. If ``verifier.blocking``, what may block (a key lookup the
    verifier's cache cannot answer, recording the nonce in a blocking store)
    runs in a worker thread, so the event loop is never blocked
    (:meth:`~datafold_auth.verifier.Verifier.verify_offloading`).

    Arguments: see :class:`~datafold_auth.middleware._common.MiddlewareBase`
    (``app`` is the ASGI application).
    """

    def _rejected(
        self, error: DatafoldAuthError, request: Request | None, scope: Scope, method: str, path: str
    ) -> str | None:
        offered = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                offered = value.decode("latin-1")
                break
        client = scope.get("client")
        return self._refused(
            error, request, method, path, offered_request_id=offered, remote=client[0] if client else None
        )

    async def _verify(self, request: Request) -> VerifiedSignature:
        if self.verifier.blocking:  # only the I/O goes to a worker thread; the CPU work stays here
            return await self.verifier.verify_offloading(request, self.clock(), asyncio.to_thread)
        return self.verifier.verify(request, self.clock())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, mount = asgi_mount(scope)
        if scope["type"] not in ("http", "websocket") or not self.selector.protects(path, mount):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, path)
            return
        request: Request | None = None
        try:
            body, messages = await wire.read_asgi_body(receive, self.max_body)
            if messages[-1]["type"] == "http.disconnect":
                return  # the client is gone: nobody to answer
            request = wire.request_from_scope(scope, body, self.authority)
            verifier = self.verifier
            if verifier.blocking:  # as in _verify, without a coroutine of its own
                verified = await verifier.verify_offloading(request, self.clock(), asyncio.to_thread)
            else:
                verified = verifier.verify(request, self.clock())
        except DatafoldAuthError as error:
            rid = self._rejected(error, request, scope, scope.get("method", ""), path)
            await _send_problem(send, error.reason, rid)
            return
        _set_identity(scope, verified)
        pending = deque(messages)

        async def replay() -> Message:
            return pending.popleft() if pending else await receive()

        await self.app(scope, replay, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        """A websocket handshake is a GET without content: verify it as one before the app sees it.

        Refused: the ``websocket.connect`` message is taken and the problem is sent as the
        handshake response (ASGI ``websocket.http.response`` extension), or, where the
        server lacks it, ``websocket.close`` (the server answers 403).
        """
        http_scope = {**scope, "method": "GET", "scheme": _WS_SCHEMES.get(scope.get("scheme", "ws"), "http")}
        request: Request | None = None
        try:
            request = wire.request_from_scope(http_scope, b"", self.authority)
            verified = await self._verify(request)
        except DatafoldAuthError as error:
            rid = self._rejected(error, request, scope, "GET", path)
            if (await receive())["type"] != "websocket.connect":
                return  # the client is gone
            if "websocket.http.response" in (scope.get("extensions") or {}):
                status, headers, body = wire.problem(error.reason, request_id=rid)
                raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
                await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        _set_identity(scope, verified)
        await self.app(scope, receive, send)


_WS_SCHEMES = {"ws": "http", "wss": "https"}


def _set_identity(scope: Scope, verified: VerifiedSignature) -> None:
    identity = Identity.from_verified(verified)
    scope[IDENTITY_KEY] = identity
    scope[VERIFIED_KEY] = verified
    scope["user"] = identity
    scope["auth"] = identity.scopes


async def _send_problem(send: Send, reason: Reason, request_id: str | None = None) -> None:
    status, headers, body = wire.problem(reason, request_id=request_id)
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


__all__ = ["ASGIApp", "DatafoldAuthASGIMiddleware", "Message", "Receive", "Scope", "Send"]
