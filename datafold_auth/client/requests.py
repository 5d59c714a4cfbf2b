"""``requests`` authentication that signs each request per the DataFold profile.

Example::

    session.auth = DatafoldAuth(Signer(private_key))
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from ..message import Request
from ..signer import Signer


class DatafoldAuth(requests.auth.AuthBase):
    """Sign every request sent with this auth (``Content-Digest``, ``Signature-Input``, ``Signature``).

    Requests are signed as prepared, so a redirect that ``requests`` follows
    carries the original signature and is refused by a verifying server.

    Args:
        signer: the :class:`~datafold_auth.signer.Signer` holding the private key.
        clock: current time in epoch seconds, used as ``created``.
    """

    def __init__(self, signer: Signer, *, clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.clock = clock

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Sign ``r`` in place.

        Raises:
            TypeError: the body is a stream (file or iterator); it must be
                ``bytes`` or ``str`` (sent as UTF-8) to be digested before sending.
        """
        body = r.body
        if isinstance(body, str):
            body = r.body = body.encode("utf-8")
            r.prepare_content_length(body)
        elif body is not None and not isinstance(body, bytes):
            raise TypeError("DatafoldAuth signs bytes or str bodies only, not streams")
        headers = [(k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in r.headers.items()]
        request = Request.from_url(r.method or "GET", r.url or "", headers, body or b"")
        for name, value in self.signer.sign(request, now=self.clock()):
            r.headers[name] = value
        return r


__all__ = ["DatafoldAuth"]
