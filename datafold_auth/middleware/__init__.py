"""WSGI and ASGI middleware that verify DataFold-signed requests (docs/protocol.md).

* :class:`DatafoldAuthMiddleware` wraps a WSGI app (Flask, Django, ...).
* :class:`DatafoldAuthASGIMiddleware` wraps an ASGI app (Starlette, FastAPI, ...).

Both hand the app an :class:`Identity` under ``"datafold_auth.identity"`` and
answer refused requests with :func:`datafold_auth.wire.problem`.
"""

from ._common import IDENTITY_KEY, VERIFIED_KEY, Identity
from .asgi import DatafoldAuthASGIMiddleware
from .wsgi import DatafoldAuthMiddleware

__all__ = ["IDENTITY_KEY", "VERIFIED_KEY", "DatafoldAuthASGIMiddleware", "DatafoldAuthMiddleware", "Identity"]
