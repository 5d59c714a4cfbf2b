"""A read-only registry that reads key records from another instance's registration endpoint.

Many resource servers can trust one registration service this way: each
resource server verifies signatures locally and asks the registration
service (``GET {mount}/keys/{keyid}``, docs/protocol.md section 4) only for
key records it has not seen within the cache lifetime. URL::

    remote+https://auth.example/register        (the registration app's mount)

:class:`RemoteRegistry` is a :class:`~datafold_auth.registry.CachedRegistry`:
a found record is trusted for ``ttl`` seconds (default 5), an unknown keyid
for ``negative_ttl`` (default 1). A :class:`~datafold_auth.Verifier` given a
RemoteRegistry uses it as its cache (it does not add a second one), so a
revocation made at the registration service takes effect on the resource
server within ``ttl`` seconds plus one request's latency: the same bound as
for a shared database. When the registration service cannot be reached or
answers anything but 200/404, lookups raise :class:`RegistryError` and
requests are refused with ``503 registry_unavailable`` (fail closed; a stale
record is never served past ``ttl``).

Use ``https://`` between machines: the records decide whose signatures are
trusted. Writes (registration, revocation) go to the registration service itself.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import quote

import requests

from ..errors import DatafoldAuthError, Reason, RegistryError
from . import CachedRegistry
from .hookspecs import hookimpl
from .records import KeyRecord

SCHEME_PREFIX = "remote+"
"""``remote+http://`` and ``remote+https://`` URLs name a remote registry."""


class HTTPKeyLookup:
    """Uncached lookups: ``GET {base_url}/keys/{keyid}`` (one keep-alive session per thread).

    Args:
        base_url: the registration app's mount URL, e.g. ``https://auth.example/register``.
        timeout: seconds per lookup (default 2).
        headers: extra request header fields (e.g. an API gateway's token).
    """

    blocking = True

    def __init__(self, base_url: str, *, timeout: float = 2.0, headers: dict[str, str] | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise RegistryError("a remote registry URL is remote+http(s)://host/mount", Reason.INVALID_CONFIGURATION)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "Cache-Control": "no-cache", **(headers or {})}
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # never send registry lookups through an environment proxy
            self._local.session = session
        return session

    def get(self, keyid: str) -> KeyRecord | None:
        """The record the registration service has for ``keyid``, or ``None`` (404).

        Raises:
            RegistryError: the service is unreachable, answers another status, or a malformed record.
        """
        url = f"{self.base_url}/keys/{quote(keyid, safe='')}"
        try:
            response = self._session().get(url, headers=self.headers, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise RegistryError(f"remote registry unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryError(f"remote registry answered HTTP {response.status_code}")
        try:
            record = KeyRecord.from_dict(response.json())
        except (ValueError, DatafoldAuthError) as exc:
            raise RegistryError(f"remote registry sent a malformed record: {exc}") from None
        if record.keyid != keyid:
            raise RegistryError("remote registry answered with the record of another key")
        return record

    def close(self) -> None:
        """Close this thread's session."""
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()
            self._local.session = None


class RemoteRegistry(CachedRegistry):
    """Key records read over HTTP from a registration service, cached within the revocation bound.

    Args:
        base_url: the registration app's mount URL (``https://auth.example/register``).
        ttl: seconds a record is trusted (the revocation bound; default 5).
        negative_ttl: seconds an unknown keyid is remembered (default 1).
        timeout: seconds per lookup (default 2).
        headers: extra request header fields.

    Raises:
        RegistryError: the URL is not http(s).
    """

    def __init__(
        self,
        base_url: str,
        *,
        ttl: float = 5.0,
        negative_ttl: float = 1.0,
        timeout: float = 2.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(HTTPKeyLookup(base_url, timeout=timeout, headers=headers), ttl=ttl, negative_ttl=negative_ttl)

    def close(self) -> None:
        """Close the HTTP sessions (of this thread)."""
        self.invalidate()
        self.registry.close()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"RemoteRegistry({self.registry.base_url!r}, ttl={self.ttl})"  # type: ignore[attr-defined]


class _Plugin:
    @hookimpl
    def datafold_auth_open_registry(self, url: str, options: dict[str, Any]) -> RemoteRegistry | None:
        if not url.startswith((SCHEME_PREFIX + "http://", SCHEME_PREFIX + "https://")):
            return None
        return RemoteRegistry(url[len(SCHEME_PREFIX) :], **options)


plugin = _Plugin()
"""The built-in ``remote+http(s)://`` plugin."""

__all__ = ["SCHEME_PREFIX", "HTTPKeyLookup", "RemoteRegistry"]
