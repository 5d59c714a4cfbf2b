"""Wire helpers shared by the WSGI/ASGI middleware and the registration apps.

* :func:`problem` builds an RFC 9457 ``application/problem+json`` answer for a
  :class:`~datafold_auth.errors.Reason`. Only fixed text goes on the wire:
  the reason code, its title and status, and extension members that echo the
  client's own input (``refused_scopes``). Details stay in the server log.
* :func:`request_from_environ` / :func:`request_from_scope` turn a WSGI
  environ or an ASGI scope plus the body into a :class:`~datafold_auth.message.Request`.
* :func:`read_wsgi_body` / :func:`read_asgi_body` read a body up to a limit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

from .errors import DatafoldAuthError, Reason
from .message import Request
from .profile import ALGORITHM, BASE_COMPONENTS, BODY_COMPONENTS, LABEL, TAG

PROBLEM_TYPE_BASE = "https://datafold.dev/problems/"
"""Problem ``type`` URIs are this prefix plus the reason code (docs/troubleshooting.md)."""
DEFAULT_MAX_BODY = 1024 * 1024
"""Default body limit in bytes (1 MiB) for verification buffering."""

_ACCEPT_SIGNATURE = (
    f"{LABEL}=("
    + " ".join(f'"{c}"' for c in BASE_COMPONENTS + BODY_COMPONENTS)
    + f');alg="{ALGORITHM}";tag="{TAG}";nonce'
)
_CHALLENGE = f'Signature realm="datafold", tag="{TAG}", alg="{ALGORITHM}"'

Header = tuple[str, str]

_RESERVED_MEMBERS = frozenset({"type", "title", "status", "reason", "detail", "instance", "request_id"})
"""Problem members :func:`problem` sets (or that RFC 9457 defines) and no extension may replace."""


class BodyTooLarge(DatafoldAuthError):
    """The request body exceeds the configured limit (HTTP 413)."""

    default_reason = Reason.BODY_TOO_LARGE


def problem(
    reason: Reason,
    *,
    request_id: str | None = None,
    retry_after: int | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> tuple[int, list[Header], bytes]:
    """An RFC 9457 problem details answer for ``reason``.

    Args:
        reason: the reason code (its status and fixed title go on the wire).
        request_id: added as the ``request_id`` member and the ``X-Request-Id`` field.
        retry_after: seconds for ``Retry-After`` on 429 and 503 answers (default 1).
        extensions: extension members (RFC 9457 section 3.2), JSON values added after the
            standard ones, e.g. ``{"refused_scopes": [...]}``. Only what the client sent
            itself: anything else would make the answer an oracle (see :mod:`datafold_auth.errors`).

    Returns:
        ``(status, headers, body)``; 401 answers carry ``WWW-Authenticate`` and
        an ``Accept-Signature`` hint (RFC 9421 section 5.1) naming the
        components the DataFold profile covers.

    Raises:
        ValueError: an extension member would replace ``type``, ``title``, ``status``,
            ``reason``, ``detail``, ``instance`` or ``request_id``.
    """
    status = reason.status
    doc: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + reason.value,
        "title": reason.description,
        "status": status,
        "reason": reason.value,
    }
    if request_id:
        doc["request_id"] = request_id
    if extensions:
        taken = sorted(set(extensions) & _RESERVED_MEMBERS)
        if taken:
            raise ValueError(f"problem extension members may not replace {', '.join(taken)}")
        doc.update(extensions)
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    headers = [
        ("Content-Type", "application/problem+json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    if status == 401:
        headers.append(("WWW-Authenticate", _CHALLENGE))
        headers.append(("Accept-Signature", _ACCEPT_SIGNATURE))
    if status in (429, 503):
        headers.append(("Retry-After", str(max(1, retry_after or 1))))
    if request_id:
        headers.append(("X-Request-Id", request_id))
    return status, headers, body


def json_response(status: int, document: Any, extra_headers: Iterable[Header] = ()) -> tuple[int, list[Header], bytes]:
    """A JSON answer ``(status, headers, body)``."""
    body = json.dumps(document, separators=(",", ":")).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *extra_headers]
    return status, headers, body


# --------------------------------------------------------------------- WSGI


def read_wsgi_body(environ: dict[str, Any], limit: int) -> bytes:
    """Read the whole body of a WSGI request, at most ``limit`` bytes.

    Uses ``CONTENT_LENGTH`` when given; otherwise (chunked uploads, with
    ``wsgi.input_terminated``) reads to the end.

    Raises:
        BodyTooLarge: the body is longer than ``limit``.
    """
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length_text = (environ.get("CONTENT_LENGTH") or "").strip()
    if length_text:
        # RFC 9110 section 8.6: 1*DIGIT. int() would also take "+5", "1_0" or "-1".
        if not (length_text.isascii() and length_text.isdigit()):
            raise DatafoldAuthError("Content-Length is not a number", Reason.INVALID_REQUEST)
        length = int(length_text)
        if length > limit:
            raise BodyTooLarge(f"body of {length} bytes is over the {limit}-byte limit")
        if length == 0:
            return b""
        chunks, remaining = [], length
        while remaining > 0:
            chunk = stream.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    if not environ.get("wsgi.input_terminated"):
        return b""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise BodyTooLarge(f"body is over the {limit}-byte limit")
    return bytes(data)


def request_from_environ(environ: dict[str, Any], body: bytes, authority: str | None = None) -> Request:
    """The :class:`Request` for a WSGI environ (PEP 3333).

    Args:
        environ: the WSGI environ.
        body: the body already read.
        authority: the public ``host[:port]`` to use for ``@authority``
            (default: the ``Host`` header, else ``SERVER_NAME:SERVER_PORT``).

    Returns:
        a request whose fields are read from the environ on demand
        (``headers`` is empty; use :meth:`Request.field_values`).
    """
    scheme = environ.get("wsgi.url_scheme", "http")
    if authority is None:
        authority = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    # PEP 3333: PATH_INFO is decoded as latin-1; RAW_URI/REQUEST_URI (when the
    # server provides them) keep the exact percent-encoding that was signed.
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        path, _, query = raw.partition("?")
        # Some environs (werkzeug's test client) leave the query out of the
        # raw URI and give it only in QUERY_STRING.
        query_value: str | None = query if "?" in raw else (environ.get("QUERY_STRING") or None)
    else:
        from urllib.parse import quote

        # PATH_INFO holds the decoded bytes as latin-1 text: quote those bytes, not their UTF-8.
        decoded = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1", "replace")
        path = quote(decoded, safe="/:@!$&'()*+,;=-._~%")
        qs = environ.get("QUERY_STRING", "")
        query_value = qs if qs else None
    return Request(
        method=environ.get("REQUEST_METHOD", "GET"),
        authority=authority,
        path=path or "/",
        query=query_value,
        body=body,
        scheme=scheme,
        lookup=_environ_lookup(environ),
    )


_CGI_NAMES = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
_ENVIRON_KEYS: dict[str, str] = dict(_CGI_NAMES)


def _environ_key(name: str) -> str:
    key = _ENVIRON_KEYS.get(name)
    if key is None:
        key = "HTTP_" + name.upper().replace("-", "_")
        if len(_ENVIRON_KEYS) < 1024:
            _ENVIRON_KEYS[name] = key
    return key


def _environ_lookup(environ: dict[str, Any]) -> Callable[[str], list[str] | None]:
    """Field lookup straight from the environ (PEP 3333 keeps one ``HTTP_*`` key
    per field, repeated lines already joined with ``", "``; an empty
    ``CONTENT_TYPE``/``CONTENT_LENGTH`` means the field is absent)."""

    def lookup(name: str) -> list[str] | None:
        value = environ.get(_environ_key(name))
        if value is None or (not value and name in _CGI_NAMES):
            return None
        return [value]

    return lookup


# --------------------------------------------------------------------- ASGI

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


async def read_asgi_body(receive: Receive, limit: int) -> tuple[bytes, list[MutableMapping[str, Any]]]:
    """Read an ASGI request body up to ``limit`` bytes.

    Returns:
        ``(body, messages)``: the body and the ``http.request`` messages read,
        to be replayed to the application untouched.

    Raises:
        BodyTooLarge: the body is longer than ``limit``.
    """
    chunks: list[bytes] = []
    messages: list[MutableMapping[str, Any]] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


def request_from_scope(scope: MutableMapping[str, Any], body: bytes, authority: str | None = None) -> Request:
    """The :class:`Request` for an ASGI HTTP scope.

    Args:
        scope: the ASGI ``http`` scope.
        body: the body already read.
        authority: the public ``host[:port]`` to use for ``@authority``
            (default: the ``Host`` header, else the ``server`` of the scope).
    """
    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope.get("headers", ())]
    # Request.field_values' index, built here: one line per field name is the usual case.
    index = {name.lower(): [value] for name, value in headers}
    if len(index) != len(headers):  # a field sent on several lines (or names differing in case)
        index = {}
        for name, value in headers:
            index.setdefault(name.lower(), []).append(value)
    if authority is None:
        hosts = index.get("host")
        if hosts is not None:
            authority = hosts[0]
        else:
            server = scope.get("server") or ("", None)
            authority = f"{server[0]}:{server[1]}" if server[1] else str(server[0])
    raw_path = scope.get("raw_path")
    if raw_path:
        path = raw_path.decode("latin-1")
    else:
        from urllib.parse import quote

        # ASGI servers and Starlette >= 0.33 keep root_path inside path; older ones strip it.
        root_path, scope_path = scope.get("root_path", ""), scope.get("path", "/")
        full_path = scope_path if scope_path.startswith(root_path) else root_path + scope_path
        path = quote(full_path, safe="/:@!$&'()*+,;=-._~%")
    query = scope.get("query_string", b"").decode("latin-1")
    return Request(
        method=scope.get("method", "GET"),
        authority=authority,
        path=path or "/",
        query=query or None,
        headers=headers,
        body=body,
        scheme=scope.get("scheme", "http"),
        _index=index,
    )


__all__ = [
    "DEFAULT_MAX_BODY",
    "PROBLEM_TYPE_BASE",
    "BodyTooLarge",
    "json_response",
    "problem",
    "read_asgi_body",
    "read_wsgi_body",
    "request_from_environ",
    "request_from_scope",
]
