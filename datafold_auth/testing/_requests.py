"""requests pieces of the signed test clients (imported only when a requests session is asked for)."""

from __future__ import annotations

from http import HTTPStatus
from io import BytesIO
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from ..message import Request

if TYPE_CHECKING:
    from .clients import RequestSigning


class SigningRequestsAuth(requests.auth.AuthBase):
    """``requests`` auth that signs with a :class:`~datafold_auth.testing.clients.RequestSigning`.

    Like :class:`~datafold_auth.client.requests.DatafoldAuth`, but a request
    that already has ``Signature-Input`` is sent as it is.
    """

    def __init__(self, signing: RequestSigning) -> None:
        self.signing = signing

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Sign ``r`` in place (unless it is signed already).

        Raises:
            TypeError: the body is a stream, not ``bytes`` or ``str``.
        """
        previous = r.headers.get("Signature-Input")
        if not self.signing.should_sign(previous.decode("latin-1") if isinstance(previous, bytes) else previous):
            return r
        if previous is not None:  # a redirect hop: drop the last hop's digest (its body may be gone)
            r.headers.pop("Content-Digest", None)
        body = r.body
        if isinstance(body, str):
            body = r.body = body.encode("utf-8")
            r.prepare_content_length(body)
        elif body is not None and not isinstance(body, bytes):
            raise TypeError("a signed session sends bytes or str bodies only, not streams")
        headers = [(k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in r.headers.items()]
        request = Request.from_url(r.method or "GET", r.url or "", headers, body or b"")
        for name, value in self.signing.sign(request):
            r.headers[name] = value
        return r


class SignedSession(requests.Session):
    """A ``requests.Session`` with a base URL: ``session.get("/api/hello")`` goes to ``base_url + "/api/hello"``.

    Redirects it follows are signed again with the session's auth.

    Args:
        base_url: e.g. ``"http://127.0.0.1:8000"``.

    Attributes:
        base_url: as given.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(  # type: ignore[override]  # the stub spells out every keyword; they pass through unchanged
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """See ``requests.Session.request``; a URL starting with ``/`` is joined to :attr:`base_url`."""
        if isinstance(url, str) and url.startswith("/"):
            url = urljoin(self.base_url, url)
        return super().request(method, url, *args, **kwargs)

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        """Sign a redirect hop again (requests only re-applies ``.netrc`` credentials by itself)."""
        super().rebuild_auth(prepared_request, response)  # type: ignore[no-untyped-call]
        if isinstance(self.auth, SigningRequestsAuth):
            self.auth(prepared_request)


class InProcessAdapter(requests.adapters.BaseAdapter):
    """A transport adapter that hands requests to a WSGI or ASGI app in this process.

    WSGI apps are called through werkzeug's ``run_wsgi_app``; ASGI apps
    through ``httpx.ASGITransport`` (httpx must be installed). The response
    has status, header fields and body; cookies are not put in the session's jar.

    Args:
        app: the WSGI or ASGI application.
        asgi: force the interface (default: guessed, ``async`` callables are ASGI).
    """

    def __init__(self, app: Any, *, asgi: bool | None = None) -> None:
        super().__init__()
        from .clients import is_asgi

        self.app = app
        self.asgi = is_asgi(app) if asgi is None else asgi

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Run ``request`` through the app and return its answer."""
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):
            raise TypeError("in-process requests send bytes or str bodies only, not streams")
        url = request.url or ""
        headers = [(k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in request.headers.items()]
        if self.asgi:
            from ._httpx import call_asgi

            status, answer_headers, content = call_asgi(self.app, request.method or "GET", url, headers, body)
        else:
            status, answer_headers, content = self._call_wsgi(request.method or "GET", url, headers, body)
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict()
        for name, value in answer_headers:
            previous = response.headers.get(name)
            response.headers[name] = value if previous is None else f"{previous}, {value}"
        response._content = content
        response.raw = BytesIO(content)
        response.url = url
        response.request = request
        response.encoding = get_encoding_from_headers(response.headers)
        try:
            response.reason = HTTPStatus(status).phrase
        except ValueError:
            response.reason = ""
        return response

    def _call_wsgi(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        parts = urlsplit(url)
        # The query goes inside ``path`` so that REQUEST_URI/RAW_URI carry it,
        # as a real server's do (werkzeug leaves it out when given apart).
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        builder = EnvironBuilder(
            path=target,
            base_url=f"{parts.scheme}://{parts.netloc}",
            method=method,
            headers=headers,
            data=body,
        )
        try:
            app_iter, status, answer_headers = run_wsgi_app(self.app, builder.get_environ(), buffered=True)
            content = b"".join(app_iter)
        finally:
            builder.close()
        return int(status.split()[0]), list(answer_headers.items()), content

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["InProcessAdapter", "SignedSession", "SigningRequestsAuth"]
