"""What the keytools commands that talk to a server share: sending a signed request, reading a refusal."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests

from datafold_auth.message import Request
from datafold_auth.registration.core import MAX_SCOPES, SCOPE_RE

from .common import KeytoolsError


def send(request: Request, *, timeout: float) -> requests.Response:
    """Send a signed :class:`~datafold_auth.message.Request` exactly as signed (no redirects).

    Raises:
        KeytoolsError: the server cannot be reached.
    """
    url = request.target_uri if request.scheme else ""
    try:
        return requests.request(
            request.method,
            url,
            data=request.body or None,
            headers=dict(request.headers),
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise unreachable(url, exc, timeout) from None


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (arguments, urllib3's ``reason``, ``__cause__``/``__context__``), outermost first."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        found = todo.pop(0)
        if not isinstance(found, BaseException) or id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        todo += [*found.args, getattr(found, "reason", None), found.__cause__, found.__context__]


def _why(exc: requests.RequestException, timeout: float | None) -> str:
    causes = list(_causes(exc))
    after = f" after {timeout:g} s" if timeout is not None else ""
    for cause in causes:
        if isinstance(cause, requests.ConnectTimeout):
            return f"connection timed out{after} (a firewall, or a host that is down?)"
        if isinstance(cause, requests.ReadTimeout):
            return f"connected, but no answer{after} (timeout; --timeout waits longer)"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return f"DNS lookup failed: {cause.strerror or cause} (check the host name)"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running, on this host and port?)"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(cause, ssl.SSLError | requests.exceptions.SSLError):
            detail = getattr(cause, "reason", None) or type(cause).__name__
            return f"TLS failed: {detail}"
        if isinstance(cause, TimeoutError):
            return f"timed out{after}"
    for cause in reversed(causes):
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror[:1].lower() + cause.strerror[1:]
    return type(exc).__name__


def unreachable(url: str, exc: requests.RequestException, timeout: float | None = None) -> KeytoolsError:
    """The one-line error for a request that got no HTTP answer: ``cannot reach host:port (url): why``.

    ``why`` is what a person can act on: ``connection refused``, ``DNS lookup failed``,
    ``connection timed out after N s``, ``connected, but no answer after N s``, ``TLS failed: ...``.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return KeytoolsError(f"cannot reach {url}: {_why(exc, timeout)}")
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return KeytoolsError(f"cannot reach {where} ({url}): {_why(exc, timeout)}")


def reason(response: requests.Response) -> str:
    """``"<reason> (<title>)"`` from a problem document, with ``"; refused scopes: a, b"`` when it
    names them (``403 scope_not_allowed``: only scope-shaped strings, at most ``MAX_SCOPES``), else
    the HTTP reason phrase."""
    try:
        doc = response.json()
    except ValueError:
        return response.reason or ""
    if not (isinstance(doc, dict) and "reason" in doc):
        return response.reason or ""
    text = f"{doc.get('reason', '')} ({doc.get('title', '')})"
    refused = doc.get("refused_scopes")
    if isinstance(refused, list):
        shown = [s for s in refused[:MAX_SCOPES] if isinstance(s, str) and SCOPE_RE.fullmatch(s)]
        if shown:
            text += f"; refused scopes: {', '.join(shown)}"
    return text


def expect(response: requests.Response, *statuses: int, what: str) -> Any:
    """The JSON body of a response with one of ``statuses``.

    Raises:
        KeytoolsError: ``<what> refused: HTTP <status> <reason>``.
    """
    if response.status_code not in statuses:
        raise KeytoolsError(f"{what} refused: HTTP {response.status_code} {reason(response)}")
    try:
        return response.json()
    except ValueError:
        raise KeytoolsError(f"{what}: the server did not answer JSON") from None


def dumps(doc: Any) -> str:
    """Pretty JSON for ``--json`` output."""
    return json.dumps(doc, indent=2, ensure_ascii=False)


__all__ = ["dumps", "expect", "reason", "send", "unreachable"]
