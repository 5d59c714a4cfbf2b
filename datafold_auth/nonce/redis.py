"""Redis nonce store: replay protection shared by any number of app instances.

Needs the ``redis`` extra (``pip install 'datafold-auth[redis]'``). URL::

    redis://[:password@]host:6379/0?prefix=datafold:nonce:&timeout=1

with, besides ``prefix`` and ``timeout``, any connection setting of the installed
redis-py as a query option (``db``, ``client_name``, ...; :func:`redis_url_options`);
an unknown option is refused with its name (``NonceStoreError``).

Each (keyid, nonce) pair is one Redis key, ``<prefix><keyid> <nonce>``, set
with ``SET key 1 NX PX <milliseconds>``: atomic set-if-absent with expiry,
so exactly one of several instances that see the same nonce at the same time
accepts it, and Redis forgets the entry when the signature could no longer
pass the freshness check anyway. The time to live is computed from the
verifier's clock (``expires_at - now``), so the Redis server's clock does not
matter. Any Redis error fails closed (``503 nonce_store_unavailable``).

Under an event loop (the ASGI middleware) the store is asked through
:meth:`RedisNonceStore.add_async`, which sends the same command with
``redis.asyncio`` on the loop itself: no worker thread per request.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode, urlunsplit

from ..errors import NonceStoreError, Reason
from ..registry.hookspecs import hookimpl
from ..urloptions import SECRET_OPTIONS, option_problem, split_query_url

DEFAULT_PREFIX = "datafold:nonce:"
"""Key prefix unless the URL or the constructor gives another one."""

NO_TIMEOUT_WARNING = (
    "RedisNonceStore: the redis client has no socket_timeout, so a Redis that hangs hangs every "
    "signed request instead of failing it with 503; give the client socket_timeout and "
    "socket_connect_timeout (seconds), or use RedisNonceStore.from_url"
)
"""The ``RuntimeWarning`` for a ``client`` without ``socket_timeout``."""


ASYNC_MAX_CONNECTIONS = 32
"""Connections of each event loop's asyncio client (:meth:`RedisNonceStore.from_url`); more
requests at once wait for a free one, up to the store's timeout, then fail closed (503)."""


STORE_URL_OPTIONS = ("prefix", "timeout")
"""The query options :meth:`RedisNonceStore.from_url` reads itself; the others go to redis-py."""

INVALID_URL = "invalid Redis URL (redis-py cannot parse it; not shown, it may hold a password)"

TEXT_OPTIONS = frozenset(
    {"client_name", "username", "password", "lib_name", "lib_version", "encoding", "encoding_errors"}
    | {"ssl_keyfile", "ssl_certfile"}
    | {"ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_ca_data", "ssl_password", "ssl_ciphers"}
)
"""Connection settings that take text as it is (redis-py has no parser for them but uses the string)."""

STORE_FIXED_OPTIONS = {
    "socket_timeout": "timeout= sets it (seconds, finite, above 0)",
    "socket_connect_timeout": "timeout= sets it (seconds, finite, above 0)",
}
"""redis-py options a nonce store URL may not carry, and why: they would override the checked ``timeout``."""


def _keyword_names(klass: type) -> set[str]:
    """The keyword parameters of ``klass.__init__`` and of the ``__init__`` of its bases (redis-py's
    connection classes hand ``**kwargs`` on to their bases)."""
    names: set[str] = set()
    for base in klass.__mro__:
        init = vars(base).get("__init__")
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names |= {p.name for p in parameters if p.kind in kinds and p.name != "self"}
    return names


def redis_url_options(scheme: str) -> frozenset[str]:
    """The query options a Redis URL with this scheme may carry, derived from the installed redis-py.

    redis-py's ``parse_url`` hands every query option to the connection pool, which hands what it
    does not take itself to the connection class of the scheme (``Connection``, ``SSLConnection``,
    ``UnixDomainSocketConnection``): an option neither takes fails every connection with a
    ``TypeError``. Known are the options of the connection class of both the blocking and the
    ``redis.asyncio`` client (a store uses both) and the pool options redis-py parses from URLs
    (``URL_QUERY_ARGUMENT_PARSERS``: ``max_connections``), and of those only the ones a URL's text
    can set: those redis-py parses (``db``, ``health_check_interval``, ...) and :data:`TEXT_OPTIONS`
    (not ``retry`` or ``parser_class``, which take Python objects); not :data:`STORE_URL_OPTIONS`.

    Args:
        scheme: ``"redis"``, ``"rediss"`` or ``"unix"``.

    Raises:
        ImportError: the ``redis`` package is missing.
    """
    return _options(scheme)[0]


@functools.lru_cache(maxsize=8)
def _options(scheme: str) -> tuple[frozenset[str], frozenset[str]]:
    """``(what a URL may set, every keyword redis-py takes)`` for :func:`redis_url_options`."""
    import redis.asyncio.connection
    import redis.connection

    # parse_url picks the connection class of the scheme (it leaves redis:// to the default)
    sync_class = redis.connection.parse_url(f"{scheme}://").get(  # type: ignore[no-untyped-call]
        "connection_class", redis.connection.Connection
    )
    async_class = redis.asyncio.connection.parse_url(f"{scheme}://").get(
        "connection_class", redis.asyncio.connection.Connection
    )
    pool = _keyword_names(redis.connection.ConnectionPool) & _keyword_names(
        redis.asyncio.connection.BlockingConnectionPool
    )
    parsed_pool_options = pool & set(redis.connection.URL_QUERY_ARGUMENT_PARSERS)
    taken = (_keyword_names(sync_class) & _keyword_names(async_class)) | parsed_pool_options
    return frozenset(taken & (set(redis.connection.URL_QUERY_ARGUMENT_PARSERS) | TEXT_OPTIONS)), frozenset(taken)


def unknown_url_option(
    scheme: str,
    names: Iterable[str],
    own: tuple[str, ...] = STORE_URL_OPTIONS,
    fixed: Mapping[str, str] = STORE_FIXED_OPTIONS,
) -> str | None:
    """The error message for the first of ``names`` (the query option names of a Redis URL) that is
    neither in ``own`` (the options the caller reads itself) nor in :func:`redis_url_options`, or
    that is given twice (:func:`datafold_auth.urloptions.option_problem`), with the closest known
    name when one is close; or that is in ``fixed`` (options the caller sets itself: the message
    says why). ``None`` if all are fine (or the scheme is none of redis-py's, which it refuses
    itself). Never a value (it may be a password), and an unknown name only when it is a likely
    misspelling (see :func:`~datafold_auth.urloptions.option_problem`).

    Raises:
        ImportError: the ``redis`` package is missing.
    """
    if scheme not in ("redis", "rediss", "unix"):
        return None
    names = list(names)
    for name in names:
        if name in fixed:
            return f"Redis URL option {name!r} cannot be used here: {fixed[name]}"
    known = (redis_url_options(scheme) - set(fixed)) | set(own)
    problem = option_problem(names, known, what="Redis URL")
    if problem is None or not problem.startswith("unknown"):
        return problem
    position = next(i for i, name in enumerate(names) if name not in known)
    unknown = names[position]
    after_secret = bool(SECRET_OPTIONS.intersection(names[:position]))  # maybe a password's tail: name nothing
    if not after_secret and scheme == "redis" and unknown in redis_url_options("rediss") - redis_url_options("redis"):
        problem = f"unknown Redis URL option {unknown!r} (a TLS option: use rediss://)"
    elif not after_secret and unknown in _options(scheme)[1]:  # a real redis-py setting, so no password: name it
        return (
            f"Redis URL option {unknown!r} cannot be set in a URL (redis-py wants a Python object, not text): "
            "build the redis.Redis client yourself and pass it in"
        )
    takes = f"{', '.join(own)} and " if own else ""
    return (
        f"{problem}; {scheme}:// URLs take {takes}the connection settings of redis-py (db, password, client_name, ...)"
    )


def _pool_settings(client: Any) -> dict[str, Any] | None:
    """The connection settings of a ``redis.Redis`` client's pool, or ``None`` (a cluster client, a stand-in)."""
    settings = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    return settings if isinstance(settings, dict) else None


def _has_socket_timeout(client: Any) -> bool:
    """Whether a ``redis.Redis`` client's connections get a socket timeout: the pool's setting, else
    the connection class's default (redis-py 8 gives 5 s). ``True`` when it cannot be told (a
    cluster client, a stand-in): only a plain pool set to ``None`` is worth a warning."""
    settings = _pool_settings(client)
    if settings is None:
        return True
    if "socket_timeout" in settings:
        return settings["socket_timeout"] is not None
    for klass in getattr(getattr(client.connection_pool, "connection_class", None), "__mro__", ()):
        try:
            parameter = inspect.signature(klass.__init__).parameters.get("socket_timeout")
        except (TypeError, ValueError):
            continue
        if parameter is not None:
            return parameter.default not in (None, inspect.Parameter.empty)
    return False


def _where(client: Any) -> str:
    """`` at host:port`` (or `` at /socket/path``) of a client's connections for error details, or ``""``
    (never the password or other URL parts)."""
    settings = _pool_settings(client)
    if settings is None:
        return ""
    if isinstance(settings.get("path"), str):
        return f" at {settings['path']}"
    host, port = settings.get("host"), settings.get("port", 6379)
    return f" at {host}:{port}" if isinstance(host, str) else ""


class RedisNonceStore:
    """Nonces in Redis with ``SET NX PX``.

    Args:
        client: a ``redis.Redis`` client (its connection pool is shared by all threads). Give it
            ``socket_timeout`` and ``socket_connect_timeout`` (seconds; :meth:`from_url` sets both),
            else a Redis that hangs hangs the requests instead of failing them with 503.
        prefix: prepended to every key (one per application or test run).
            A ``client`` without ``socket_timeout`` gets a ``RuntimeWarning``
            (:data:`NO_TIMEOUT_WARNING`).
        async_client: makes the ``redis.asyncio`` client :meth:`add_async` uses, once per
            event loop (:meth:`from_url` gives one for the same URL and timeouts); without
            it :meth:`add_async` runs :meth:`add` in a worker thread.

    Raises:
        NonceStoreError: the ``redis`` package is missing (from :meth:`from_url`).
    """

    blocking = True

    def __init__(
        self, client: Any, *, prefix: str = DEFAULT_PREFIX, async_client: Callable[[], Any] | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._make_async_client = async_client
        if not _has_socket_timeout(client):
            warnings.warn(NO_TIMEOUT_WARNING, RuntimeWarning, stacklevel=2)
        self._where = _where(client)
        # One asyncio client per event loop: its connections belong to the loop that opened them.
        # Those of a closed loop are dropped when another loop comes (their sockets close as the
        # transports are collected), so short-lived loops (test clients) do not pile up.
        self._async_clients: dict[asyncio.AbstractEventLoop, Any] = {}

    @classmethod
    def from_url(cls, url: str, *, prefix: str | None = None, timeout: float | None = None) -> RedisNonceStore:
        """A store for ``redis://`` / ``rediss://`` / ``unix://`` URLs; ``prefix`` and ``timeout``
        (seconds per command and per connection attempt, default 1, finite and above 0) may also be
        query parameters.

        Raises:
            NonceStoreError: the ``redis`` package is missing; with reason ``invalid_configuration``:
                the URL is malformed, a query option is unknown or given twice (a misspelt ``prefx=``
                would otherwise fail every connection; see :func:`redis_url_options`), or the
                timeout is not a positive finite number.
        """
        try:
            import redis
        except ImportError:  # pragma: no cover - depends on the installation
            raise NonceStoreError("the Redis nonce store needs: pip install 'datafold-auth[redis]'") from None
        try:
            parts, pairs = split_query_url(url, what="Redis URL")
        except ValueError as exc:
            raise NonceStoreError(str(exc), Reason.INVALID_CONFIGURATION) from None
        unknown = unknown_url_option(parts.scheme, (name for name, _ in pairs))
        if unknown is not None:
            raise NonceStoreError(unknown, Reason.INVALID_CONFIGURATION)
        query = dict(pairs)
        prefix = prefix if prefix is not None else query.pop("prefix", DEFAULT_PREFIX)
        query.pop("prefix", None)
        try:
            seconds = float(timeout if timeout is not None else query.pop("timeout", 1.0))
        except ValueError:
            raise NonceStoreError(
                "Redis URL option timeout must be a number of seconds", Reason.INVALID_CONFIGURATION
            ) from None
        if not (math.isfinite(seconds) and seconds > 0):  # else every command fails: 503s for ever
            raise NonceStoreError(
                f"Redis URL option timeout must be a positive number of seconds, not {seconds}",
                Reason.INVALID_CONFIGURATION,
            )
        query.pop("timeout", None)
        rest = urlencode(query)
        if parts.scheme == "unix":  # urlunsplit would drop the "//" of unix:///path
            clean = f"unix://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
        else:
            clean = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
        try:
            client = redis.Redis.from_url(clean, socket_timeout=seconds, socket_connect_timeout=seconds)
        except ValueError:
            # not redis-py's text: it may quote part of the URL, password included
            raise NonceStoreError(INVALID_URL, Reason.INVALID_CONFIGURATION) from None

        def async_client() -> Any:
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # A bounded pool that waits (up to the timeout) for a free connection rather than failing
            # past its size, and one retry on a connection Redis closed while idle (a restart, its
            # `timeout` setting), as the blocking client does; not on a timeout, which stays one timeout.
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                clean,
                max_connections=ASYNC_MAX_CONNECTIONS,
                timeout=seconds,
                socket_timeout=seconds,
                socket_connect_timeout=seconds,
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
            )
            return redis.asyncio.Redis.from_pool(pool)  # owns the pool: aclose() closes its connections

        return cls(client, prefix=prefix, async_client=async_client)

    def add(self, key: str, expires_at: float, now: float) -> bool:
        """See :meth:`datafold_auth.nonce.NonceStore.add`."""
        ttl_ms = max(1, math.ceil((expires_at - now) * 1000))
        try:
            return bool(self.client.set(self.prefix + key, b"1", nx=True, px=ttl_ms))
        except Exception as exc:  # redis.RedisError and socket errors: fail closed
            raise NonceStoreError(f"Redis nonce store{self._where} unavailable: {type(exc).__name__}") from None

    async def add_async(self, key: str, expires_at: float, now: float) -> bool:
        """:meth:`add` for an event loop: the same ``SET NX PX`` through ``redis.asyncio``, on the
        running loop (or :meth:`add` in a worker thread when the store has no ``async_client``, or
        when a subclass overrides :meth:`add`).

        Raises:
            NonceStoreError: as :meth:`add` (Redis unreachable, timed out or failing: fail closed).
        """
        if self._make_async_client is None or type(self).add is not RedisNonceStore.add:
            # no asyncio client, or a subclass decides in its own add(): that, in a worker thread
            return await asyncio.to_thread(self.add, key, expires_at, now)
        ttl_ms = max(1, math.ceil((expires_at - now) * 1000))
        try:
            loop = asyncio.get_running_loop()
            client = self._async_clients.get(loop)
            if client is None:
                for old in [other for other in self._async_clients if other.is_closed()]:
                    del self._async_clients[old]
                client = self._async_clients[loop] = self._make_async_client()
            return bool(await client.set(self.prefix + key, b"1", nx=True, px=ttl_ms))
        except Exception as exc:  # redis.RedisError, socket errors and timeouts: fail closed
            raise NonceStoreError(f"Redis nonce store{self._where} unavailable: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        """Close the connections of the running loop's asyncio client (see :meth:`close` for the rest)."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        """Close the client's connections (an event loop's asyncio client: :meth:`aclose`)."""
        self.client.close()

    def __repr__(self) -> str:
        return f"RedisNonceStore(prefix={self.prefix!r})"


class _Plugin:
    @hookimpl
    def datafold_auth_open_nonce_store(self, url: str, options: dict[str, Any]) -> RedisNonceStore | None:
        if url.split(":", 1)[0] not in ("redis", "rediss", "unix"):
            return None
        return RedisNonceStore.from_url(url, **options)


plugin = _Plugin()
"""The built-in ``redis://`` nonce store plugin."""

__all__ = [
    "ASYNC_MAX_CONNECTIONS",
    "DEFAULT_PREFIX",
    "NO_TIMEOUT_WARNING",
    "STORE_URL_OPTIONS",
    "RedisNonceStore",
    "redis_url_options",
    "unknown_url_option",
]
