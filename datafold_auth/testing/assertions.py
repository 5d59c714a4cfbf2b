"""Assertions on HTTP answers: accepted, or rejected with a given reason code.

They work with the responses of werkzeug/Flask's test client, Starlette's
``TestClient``, ``httpx`` and ``requests`` (anything with ``status_code``,
``headers`` and a body), and fail with an :class:`AssertionError` that shows
the status, the reason and the body.

The reason is read from the body's ``reason`` member (RFC 9457 problem
details, as this package answers), else its ``error`` member (OAuth style),
else the ``error`` parameter of ``WWW-Authenticate`` (RFC 6750), so an app's
own refusals, such as ``403 insufficient_scope``, are checked the same way.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any, Protocol

from ..errors import Reason

BODY_PREVIEW = 500
"""How many characters of a body a failure message shows."""

_WWW_AUTH_ERROR = re.compile(r'(?:^|[\s,])error="?([^",\s]+)"?', re.IGNORECASE)


class ResponseLike(Protocol):
    """What the assertions need of a response (werkzeug, Starlette, httpx and requests responses all have it)."""

    @property
    def status_code(self) -> int:
        """The HTTP status code."""
        ...

    @property
    def headers(self) -> Any:
        """The header fields: a mapping with a case-insensitive ``get``."""
        ...


def _body(response: ResponseLike) -> bytes:
    get_data = getattr(response, "get_data", None)
    if callable(get_data):  # werkzeug
        data = get_data()
        return data if isinstance(data, bytes) else str(data).encode()
    try:
        content = getattr(response, "content", b"")  # httpx, Starlette, requests
    except Exception:  # an httpx stream that was not read
        return b""
    return content if isinstance(content, bytes) else b""


def _header(response: ResponseLike, name: str) -> str | None:
    value = response.headers.get(name)
    return None if value is None else str(value)


def problem_details(response: ResponseLike) -> dict[str, Any] | None:
    """The body as a JSON object (an RFC 9457 problem, or any JSON object), or ``None`` if it is not one."""
    try:
        doc = json.loads(_body(response).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def rejection_reason(response: ResponseLike) -> str | None:
    """The reason code of a refusal: the body's ``reason`` (or ``error``) member, else
    ``WWW-Authenticate``'s ``error`` parameter; ``None`` if there is none."""
    doc = problem_details(response)
    if doc is not None:
        for member in ("reason", "error"):
            value = doc.get(member)
            if isinstance(value, str) and value:
                return value
    challenge = _header(response, "www-authenticate")
    if challenge:
        match = _WWW_AUTH_ERROR.search(challenge)
        if match:
            return match.group(1)
    return None


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


_APP_DECIDED = frozenset({Reason.INSUFFICIENT_SCOPE.value})
"""Reason codes an application may answer with a status of its own choice (authorization is the app's):
their status is checked only when ``status`` is given."""


def describe_response(response: ResponseLike) -> str:
    """A few indented lines for a failure message: status, content type, reason and body (cut short)."""
    status = response.status_code
    lines = [f"    status: {_status_line(status)}"]
    content_type = _header(response, "content-type")
    if content_type:
        lines.append(f"    content-type: {content_type}")
    reason = rejection_reason(response)
    if reason:
        try:
            if reason in _APP_DECIDED:  # the app's own title is in the body
                raise ValueError(reason)
            lines.append(f"    reason: {reason} ({Reason(reason).description})")
        except ValueError:
            lines.append(f"    reason: {reason}")
    text = _body(response).decode("utf-8", "replace")
    if len(text) > BODY_PREVIEW:
        text = text[:BODY_PREVIEW] + f"... ({len(text)} characters)"
    lines.append(f"    body: {text if text else '(empty)'}")
    return "\n".join(lines)


def assert_rejected(response: ResponseLike, reason: str | Reason, *, status: int | None = None) -> str:
    """Assert that ``response`` refuses the request with reason code ``reason``.

    Args:
        response: a werkzeug, Starlette, httpx or requests response.
        reason: the expected code, e.g. ``"replayed_nonce"``, ``Reason.EXPIRED``
            or an app's own ``"insufficient_scope"``.
        status: the expected HTTP status (default: the status this package
            answers the reason with, e.g. 401 or 413; not checked for codes
            that are not a :class:`~datafold_auth.errors.Reason`, nor for
            ``insufficient_scope``, whose status the app decides).

    Returns:
        the reason found.

    Raises:
        AssertionError: the request was accepted, refused for another reason,
            or refused with another status; the message shows the response.
    """
    __tracebackhide__ = True
    expected = str(reason)
    if status is None and expected not in _APP_DECIDED:
        try:
            status = Reason(expected).status
        except ValueError:
            status = None
    got = rejection_reason(response)
    code = response.status_code
    if code < 400:
        problem = "but the request was accepted"
    elif got is None:
        problem = "but the answer names no reason"
    elif got != expected:
        problem = f"but it was rejected with reason {got!r}"
    elif status is not None and code != status:
        problem = f"with status {_status_line(status)}, but the status is {_status_line(code)}"
    else:
        return got
    raise AssertionError(f"expected a rejection with reason {expected!r}, {problem}\n{describe_response(response)}")


def assert_accepted(response: ResponseLike, *, status: int | None = None) -> None:
    """Assert that ``response`` is a success (2xx, or exactly ``status``).

    Raises:
        AssertionError: it is not; the message shows the status, reason and body.
    """
    __tracebackhide__ = True
    code = response.status_code
    if (status is None and 200 <= code < 300) or code == status:
        return
    reason = rejection_reason(response)
    wanted = _status_line(status) if status is not None else "a 2xx status"
    why = f"rejected with reason {reason!r}" if reason else f"answered {_status_line(code)}"
    message = f"expected the request to be accepted ({wanted}), but it was {why}"
    raise AssertionError(f"{message}\n{describe_response(response)}")


__all__ = [
    "BODY_PREVIEW",
    "ResponseLike",
    "assert_accepted",
    "assert_rejected",
    "describe_response",
    "problem_details",
    "rejection_reason",
]
