"""What the keytools commands that talk to a server share: sending a signed request, reading a refusal."""

from __future__ import annotations

import json
from typing import Any

import requests

from datafold_auth.message import Request

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
        raise KeytoolsError(f"cannot reach {url}: {type(exc).__name__}") from None


def reason(response: requests.Response) -> str:
    """``"<reason> (<title>)"`` from a problem document, else the HTTP reason phrase."""
    try:
        doc = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(doc, dict) and "reason" in doc:
        return f"{doc.get('reason', '')} ({doc.get('title', '')})"
    return response.reason or ""


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


__all__ = ["dumps", "expect", "reason", "send"]
