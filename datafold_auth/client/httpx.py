"""``httpx`` authentication that signs each request per the DataFold profile.

Works with ``httpx.Client`` and ``httpx.AsyncClient``::

    client = httpx.Client(auth=DatafoldHttpxAuth(Signer(private_key)))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator

import httpx

from ..message import Request
from ..signer import Signer


class DatafoldHttpxAuth(httpx.Auth):
    """Sign every request sent with this auth (``Content-Digest``, ``Signature-Input``, ``Signature``).

    ``requires_request_body`` makes httpx read a streamed body before signing.
    Redirects that the client follows carry the original signature and are
    refused by a verifying server.

    Args:
        signer: the :class:`~datafold_auth.signer.Signer` holding the private key.
        clock: current time in epoch seconds, used as ``created``.
    """

    requires_request_body = True

    def __init__(self, signer: Signer, *, clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign ``request`` in place and send it once."""
        parts = Request.from_url(request.method, str(request.url), request.headers.multi_items(), request.content)
        for name, value in self.signer.sign(parts, now=self.clock()):
            request.headers[name] = value
        yield request


__all__ = ["DatafoldHttpxAuth"]
