"""The plain request parts that signing and verification work on.

No I/O here: adapters (WSGI, ASGI, requests, httpx) turn their request objects
into a :class:`Request`, and the core never sees a socket or a framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_NORMALIZED: dict[tuple[str, str], str] = {}
"""``normalized_authority`` of recent ``(authority, scheme)`` pairs (a service sees few)."""


@dataclass(slots=True)
class Request:
    """An HTTP request as the signature sees it.

    Attributes:
        method: the request method as sent, e.g. ``"POST"`` (case is kept,
            RFC 9421 section 2.2.1).
        authority: ``host[:port]`` as sent in ``Host`` / ``:authority``.
        path: the absolute path as sent on the wire (still percent-encoded);
            an empty path means ``/``.
        query: the query without its leading ``?``; ``None`` when the target
            has no ``?`` at all.
        headers: the field lines in order as ``(name, value)``; names in any
            case, values as text (bytes decoded as latin-1 by the adapters).
        body: the content bytes (``b""`` for none).
        scheme: ``"http"`` or ``"https"``.
        lookup: optional ``name -> values`` function used instead of
            ``headers`` to find fields (servers pass one over their own header
            store, e.g. the WSGI environ, to avoid copying every header).
    """

    method: str
    authority: str
    path: str
    query: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    scheme: str = "https"
    lookup: Callable[[str], list[str] | None] | None = field(default=None, repr=False, compare=False)
    _index: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_url(
        cls,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Request:
        """Build a request from an absolute URL such as ``https://api.example/x?y=1``.

        Raises:
            ValueError: the URL is not absolute http(s).
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("an absolute http:// or https:// URL is required")
        target = url.split("#", 1)[0]
        query = target.split("?", 1)[1] if "?" in target else None
        authority = parts.netloc.rsplit("@", 1)[-1]
        return cls(
            method=method,
            authority=authority,
            path=parts.path or "/",
            query=query,
            headers=list(headers),
            body=body,
            scheme=parts.scheme,
        )

    def field_values(self, name: str) -> list[str] | None:
        """All field line values for a lowercase field ``name``, in order; ``None`` if absent."""
        if self.lookup is not None:
            return self.lookup(name)
        index = self._index
        if index is None:
            index = {}
            for key, value in self.headers:
                index.setdefault(key.lower(), []).append(value)
            self._index = index
        return index.get(name)

    def add_header(self, name: str, value: str) -> None:
        """Append a field line (keeps the lookup index in step)."""
        self.headers.append((name, value))
        if self._index is not None:
            self._index.setdefault(name.lower(), []).append(value)

    @property
    def normalized_authority(self) -> str:
        """``@authority`` (RFC 9421 section 2.2.3): lowercase host, default port removed."""
        key = (self.authority, self.scheme)
        authority = _NORMALIZED.get(key)
        if authority is None:
            authority = self.authority.lower()
            default = _DEFAULT_PORTS.get(self.scheme.lower())
            if default and authority.endswith(":" + default) and not authority.endswith("]"):
                authority = authority[: -len(default) - 1]
            if len(key[0]) <= 255:
                if len(_NORMALIZED) >= 1024:  # full (many Host values): start over
                    _NORMALIZED.clear()
                _NORMALIZED[key] = authority
        return authority

    @property
    def target_uri(self) -> str:
        """``@target-uri`` (RFC 9421 section 2.2.2): the absolute request URI."""
        query = "" if self.query is None else "?" + self.query
        return f"{self.scheme.lower()}://{self.normalized_authority}{self.path or '/'}{query}"


__all__ = ["Request"]
