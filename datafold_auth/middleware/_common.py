"""What the WSGI and ASGI middleware share: the identity, path selection, rejection logging."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .. import wire
from ..audit import AuditSink, request_id
from ..errors import DatafoldAuthError
from ..message import Request
from ..verifier import VerifiedSignature, Verifier

logger = logging.getLogger("datafold_auth")
"""Rejections are logged here at INFO, 503s at WARNING (reason, detail, keyid, method, path; never
signatures or bodies)."""

IDENTITY_KEY = "datafold_auth.identity"
"""WSGI environ / ASGI scope key of the :class:`Identity`."""
VERIFIED_KEY = "datafold_auth.verified"
"""WSGI environ / ASGI scope key of the :class:`~datafold_auth.verifier.VerifiedSignature`."""

# Only a plausible keyid (a base64url JWK thumbprint) is ever copied into the log.
_KEYID = re.compile(r'[;\s]keyid="([A-Za-z0-9_-]{1,128})"')
_SLASHES = re.compile(r"/{2,}")


@dataclass(frozen=True, slots=True)
class Identity:
    """The client a verified request acts as.

    Also usable as Starlette's ``scope["user"]`` (``is_authenticated``,
    ``display_name``, ``identity``).

    Attributes:
        client_id: the identity the key is registered for.
        keyid: the RFC 7638 thumbprint of the key that signed.
        scopes: the key's scopes, e.g. ``("read", "write")``.
    """

    client_id: str
    keyid: str
    scopes: tuple[str, ...]

    @classmethod
    def from_verified(cls, verified: VerifiedSignature) -> Identity:
        """The identity behind a successful verification."""
        return cls(client_id=verified.client_id, keyid=verified.keyid, scopes=verified.scopes)

    @property
    def is_authenticated(self) -> bool:
        """Always ``True``: an :class:`Identity` exists only for a verified request."""
        return True

    @property
    def display_name(self) -> str:
        """The ``client_id``."""
        return self.client_id

    @property
    def identity(self) -> str:
        """The ``client_id``."""
        return self.client_id


def _prefixes(value: str | Iterable[str]) -> tuple[str, ...]:
    prefixes = (value,) if isinstance(value, str) else tuple(value)
    for prefix in prefixes:
        if not prefix.startswith("/"):
            raise ValueError(f"path prefix {prefix!r} must start with '/'")
    return tuple(p.rstrip("/") for p in prefixes)


def _without_dot_segments(path: str) -> str:
    segments: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if segments:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    return "/" + "/".join(segments)


def _path_forms(path: str) -> set[str] | tuple[str]:
    """``path`` as given and as routers may see it: repeated slashes merged and/or dot segments resolved."""
    path = path if path.startswith("/") else "/" + path
    if "//" not in path and "/." not in path:
        return (path,)  # no repeated slash, no dot segment: every form is the path itself
    merged = _SLASHES.sub("/", path)
    return {
        path,
        merged,
        _without_dot_segments(path),
        _without_dot_segments(merged),
        _SLASHES.sub("/", _without_dot_segments(path)),
    }


_WITH_SLASH: dict[tuple[str, ...], tuple[str, ...]] = {}


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    # any(path == p or path.startswith(p + "/") for p in prefixes), without a generator per call
    with_slash = _WITH_SLASH.get(prefixes)
    if with_slash is None:
        with_slash = tuple(p + "/" for p in prefixes)
        if len(_WITH_SLASH) < 256:
            _WITH_SLASH[prefixes] = with_slash
    return path in prefixes or path.startswith(with_slash)


_MAX_DECISIONS = 4096
_MAX_CACHED_PATH = 256


class PathSelector:
    """Decides which request paths need a signature.

    Prefixes match whole path segments: ``/health`` covers ``/health`` and
    ``/health/db`` but not ``/healthz``; ``/`` covers everything. A path is
    checked as given and with repeated slashes merged and/or dot segments
    resolved (werkzeug, for one, serves ``/%2Fapi/x`` as ``/api/x``), and is
    protected if any of these forms is.

    When the application is mounted under a prefix (WSGI ``SCRIPT_NAME``, ASGI
    ``root_path``) it routes on the path below the mount, so ``paths`` match
    either the full path or the path below the mount (``paths="/api"`` protects
    ``/v1/api/x`` of an app mounted at ``/v1``); ``exempt`` prefixes match the
    full path only.

    Args:
        paths: prefixes to protect; ``None`` protects every path.
        exempt: prefixes never protected (wins over ``paths``).

    Raises:
        ValueError: a prefix does not start with ``/``.
    """

    __slots__ = ("_decisions", "exempt", "paths")

    def __init__(self, paths: str | Iterable[str] | None, exempt: str | Iterable[str]) -> None:
        self.paths = None if paths is None else _prefixes(paths)
        self.exempt = _prefixes(exempt)
        # Decisions for paths seen before: a bounded cache of short paths (an API's routes repeat).
        self._decisions: dict[str | tuple[str, str], bool] = {}

    def _protects(self, routed: str, full: str) -> bool:
        in_paths = self.paths is None or _under(routed, self.paths) or _under(full, self.paths)
        return in_paths and not _under(full, self.exempt)

    def protects(self, path: str, mount: str = "") -> bool:
        """``True`` if a request must be signed.

        Args:
            path: the (percent-decoded) full path, mount prefix included.
            mount: the prefix the application is mounted under (``SCRIPT_NAME``,
                ``root_path``), when ``path`` starts with it; the application
                routes on the rest of ``path``.
        """
        key = (path, mount) if mount else path
        decided = self._decisions.get(key)
        if decided is None:
            decided = self._decide(path, mount)
            if len(path) + len(mount) <= _MAX_CACHED_PATH:
                if len(self._decisions) >= _MAX_DECISIONS:  # full (many distinct paths): start over
                    self._decisions.clear()
                self._decisions[key] = decided
        return decided

    def _decide(self, path: str, mount: str) -> bool:
        forms = _path_forms(path)
        if isinstance(forms, tuple):  # the usual path: no repeated slash, no dot segment
            if self._protects(forms[0], forms[0]):
                return True
        elif any(self._protects(form, form) for form in forms):
            return True
        if not mount or not path.startswith(mount):
            return False
        return any(self._protects(form, mount + form) for form in _path_forms(path[len(mount) :]))


def asgi_mount(scope: MutableMapping[str, Any]) -> tuple[str, str]:
    """``(path, mount)`` of an ASGI scope for :meth:`PathSelector.protects`.

    ``mount`` is ``root_path`` when ``path`` starts with it (ASGI servers and
    Starlette >= 0.33 keep the mount prefix in ``path``), else ``""`` (older
    servers strip it, and the application routes on ``path`` as it is).
    """
    path, root = scope.get("path", ""), scope.get("root_path", "").rstrip("/")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path, root
    return path, ""


def claimed_keyid(request: Request | None) -> str | None:
    """The keyid a request's ``Signature-Input`` names (only a plausible one: base64url, at most 128), or ``None``."""
    if request is not None:
        for value in request.field_values("signature-input") or ():
            match = _KEYID.search(value)
            if match:
                return match.group(1)
    return None


def log_rejection(error: DatafoldAuthError, request: Request | None, method: str, path: str) -> str | None:
    """Log a refused request at INFO (at WARNING when the answer is 503: the registry or nonce store
    is unavailable): reason, detail, keyid (when one was sent), method and path.

    Returns:
        the keyid the request named, or ``None``.
    """
    keyid = claimed_keyid(request)
    logger.log(
        logging.WARNING if error.reason.status == 503 else logging.INFO,  # 503: a backend is down, for the operator
        "datafold_auth rejected %r %r: reason=%s detail=%r keyid=%s",  # method and path as sent: repr, never raw
        method,
        path,
        error.reason.value,
        error.detail,
        keyid,
    )
    return keyid


__all__ = [
    "IDENTITY_KEY",
    "VERIFIED_KEY",
    "Identity",
    "PathSelector",
    "asgi_mount",
    "claimed_keyid",
    "log_rejection",
    "logger",
]


App = TypeVar("App")


class MiddlewareBase(Generic[App]):
    """What the WSGI and ASGI middleware share: their configuration and refusal bookkeeping.

    Args:
        app: the wrapped application.
        verifier: checks signatures, keys and nonces.
        paths: path prefixes to protect (``None``: every path).
        exempt: path prefixes passed through unsigned (e.g. registration, health checks).
        max_body: largest body in bytes read for verification.
        authority: public ``host[:port]`` used for ``@authority`` behind a proxy
            (default: the ``Host`` header).
        clock: current time in epoch seconds, passed to the verifier as ``now``.
        audit: where rejected requests are recorded (an :class:`~datafold_auth.audit.AuditSink`;
            off the request path). With one, refusals also carry a ``request_id``
            (the client's ``X-Request-Id`` when it is sane, else a new one).

    Raises:
        ValueError: a path prefix does not start with ``/``.
    """

    def __init__(
        self,
        app: App,
        verifier: Verifier,
        *,
        paths: str | Iterable[str] | None = None,
        exempt: str | Iterable[str] = (),
        max_body: int = wire.DEFAULT_MAX_BODY,
        authority: str | None = None,
        clock: Callable[[], float] = time.time,
        audit: AuditSink | None = None,
    ) -> None:
        self.app = app
        self.audit = audit
        self.verifier = verifier
        self.selector = PathSelector(paths, exempt)
        self.max_body = max_body
        self.authority = authority
        self.clock = clock

    def _refused(
        self,
        error: DatafoldAuthError,
        request: Request | None,
        method: str,
        path: str,
        *,
        offered_request_id: str | None,
        remote: str | None,
    ) -> str | None:
        """Log a refusal and, with an audit sink, record it; return its request id (``None`` without a sink)."""
        keyid = log_rejection(error, request, method, path)
        if self.audit is None:
            return None
        rid = request_id(offered_request_id)
        self.audit.rejected(error, keyid=keyid, method=method, path=path, remote=remote, request_id=rid)
        return rid
