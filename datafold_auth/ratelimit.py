"""Rate limits for registrations (abuse limits): per client address and for the whole service.

A limiter answers :meth:`RateLimiter.hit` with ``None`` (go ahead; one
request is counted) or the seconds to wait; the registration service turns
the latter into ``429 rate_limited`` with ``Retry-After``.

* :class:`MemoryRateLimiter`: token buckets in this process. Each instance
  counts on its own, so N instances admit up to N times the rate.
* :class:`RedisRateLimiter`: fixed windows in Redis (``INCR`` + ``PEXPIRE``),
  shared by every instance.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``per`` seconds (a burst of ``count`` is allowed).

    Raises:
        ValueError: ``count`` < 1 or ``per`` <= 0.
    """

    count: int
    per: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.per <= 0:
            raise ValueError("a rate needs count >= 1 and per > 0 seconds")

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"10/60"`` (10 per 60 s), ``"10/m"``, ``"600/h"``, ``"5/s"``.

        Raises:
            ValueError: not of that form.
        """
        count, _, per = text.partition("/")
        units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
        seconds = units[per] if per in units else float(per)
        return cls(int(count), seconds)


DEFAULT_PER_CLIENT = Rate(10, 60.0)
"""Default registrations per client address: 10 a minute."""
DEFAULT_TOTAL = Rate(600, 60.0)
"""Default registrations for the whole service: 600 a minute."""


class RateLimiter(Protocol):
    """The limiter contract."""

    def hit(self, client: str, now: float) -> float | None:
        """Count one request from ``client`` at ``now`` (epoch seconds).

        Returns:
            ``None`` if it is within the limits, else the seconds until a retry may succeed.
        """
        ...


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class MemoryRateLimiter:
    """Token buckets in memory: one per client address and one for everything.

    A bucket holds up to ``count`` tokens and refills at ``count / per`` tokens a
    second; a request takes one token from both buckets, or none when either is
    empty. At most ``max_clients`` addresses are tracked (the least recently
    seen is forgotten first; the total limit still holds).

    Args:
        per_client: the limit per client address (``None``: none).
        total: the limit for all clients together (``None``: none).
        max_clients: addresses tracked at most (default 100,000).
    """

    def __init__(
        self,
        per_client: Rate | None = DEFAULT_PER_CLIENT,
        total: Rate | None = DEFAULT_TOTAL,
        *,
        max_clients: int = 100_000,
    ) -> None:
        self.per_client = per_client
        self.total = total
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()
        self._total: _Bucket | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _refill(bucket: _Bucket, rate: Rate, now: float) -> None:
        elapsed = max(0.0, now - bucket.stamp)
        bucket.tokens = min(float(rate.count), bucket.tokens + elapsed * rate.count / rate.per)
        bucket.stamp = now

    @staticmethod
    def _wait(bucket: _Bucket, rate: Rate) -> float:
        return (1.0 - bucket.tokens) * rate.per / rate.count

    def hit(self, client: str, now: float) -> float | None:
        """See :meth:`RateLimiter.hit`."""
        with self._lock:
            buckets: list[tuple[_Bucket, Rate]] = []
            if self.per_client is not None:
                bucket = self._clients.get(client)
                if bucket is None:
                    bucket = _Bucket(float(self.per_client.count), now)
                    self._clients[client] = bucket
                    if len(self._clients) > self.max_clients:
                        self._clients.popitem(last=False)
                else:
                    self._clients.move_to_end(client)
                buckets.append((bucket, self.per_client))
            if self.total is not None:
                if self._total is None:
                    self._total = _Bucket(float(self.total.count), now)
                buckets.append((self._total, self.total))
            for bucket, rate in buckets:
                self._refill(bucket, rate, now)
            waits = [self._wait(bucket, rate) for bucket, rate in buckets if bucket.tokens < 1.0]
            if waits:
                return max(waits)
            for bucket, _ in buckets:
                bucket.tokens -= 1.0
            return None


_LIMITER_FIXED_OPTIONS = {
    "prefix": "pass prefix= to RedisRateLimiter.from_url",
    "socket_timeout": "the rate limiter's Redis timeouts are fixed at 1 s",
    "socket_connect_timeout": "the rate limiter's Redis timeouts are fixed at 1 s",
    "timeout": "the rate limiter's Redis timeouts are fixed at 1 s",
}
"""Options a rate limiter URL may not carry, and why (:func:`~datafold_auth.nonce.redis.unknown_url_option`)."""


class RedisRateLimiter:
    """Fixed-window counters in Redis, shared by every instance.

    Per window of ``per`` seconds, the ``count + 1``-th request is refused until
    the window ends. Keys: ``<prefix>c:<client>:<window>`` and ``<prefix>all:<window>``.
    A Redis failure lets the request through (the limit is an abuse brake, not
    an authentication check) and is logged by the caller.

    Args:
        client: a ``redis.Redis`` client.
        per_client, total: as for :class:`MemoryRateLimiter`.
        prefix: key prefix (default ``datafold:rate:``).
    """

    def __init__(
        self,
        client: Any,
        per_client: Rate | None = DEFAULT_PER_CLIENT,
        total: Rate | None = DEFAULT_TOTAL,
        *,
        prefix: str = "datafold:rate:",
    ) -> None:
        self.client = client
        self.per_client = per_client
        self.total = total
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisRateLimiter:
        """A limiter on the Redis server at ``url`` (``redis://host:6379/0``).

        Raises:
            ValueError: the URL is malformed or has a query option redis-py does not take (checked
                here: this limiter fails open, so a misspelt option would switch it off silently).
        """
        import redis

        from .nonce.redis import INVALID_URL, unknown_url_option
        from .urloptions import split_query_url

        parts, pairs = split_query_url(url, what="Redis URL")
        unknown = unknown_url_option(parts.scheme, (name for name, _ in pairs), own=(), fixed=_LIMITER_FIXED_OPTIONS)
        if unknown is not None:
            raise ValueError(unknown)
        try:
            client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        except ValueError:  # not redis-py's text: it may quote part of the URL, password included
            raise ValueError(INVALID_URL) from None
        return cls(client, **options)

    def hit(self, client: str, now: float) -> float | None:
        """See :meth:`RateLimiter.hit`."""
        checks = []
        if self.per_client is not None:
            checks.append((f"{self.prefix}c:{client}", self.per_client))
        if self.total is not None:
            checks.append((f"{self.prefix}all", self.total))
        if not checks:
            return None
        try:
            pipe = self.client.pipeline(transaction=True)
            windows = []
            for key, rate in checks:
                window = math.floor(now / rate.per)
                name = f"{key}:{window}"
                pipe.incr(name)
                pipe.pexpire(name, int(rate.per * 1000) + 1000)
                windows.append((window, rate))
            counts = pipe.execute()[0::2]
        except Exception:
            return None
        waits = [
            (window + 1) * rate.per - now
            for count, (window, rate) in zip(counts, windows, strict=True)
            if count > rate.count
        ]
        return max(waits) if waits else None


__all__ = [
    "DEFAULT_PER_CLIENT",
    "DEFAULT_TOTAL",
    "MemoryRateLimiter",
    "Rate",
    "RateLimiter",
    "RedisRateLimiter",
]
