"""Redis URLs: an unknown query option is refused when the store is built, naming it.

redis-py hands every query option it does not parse to the connection class, so a misspelt
``prefx=`` used to be accepted by ``from_url`` and then fail every connection with a
``TypeError`` (503 for every signed request; the rate limiter, which fails open, was silently
off). The known options are derived from the installed redis-py, and these tests check the
derivation against what redis-py really does.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
import redis
import redis.connection

from datafold_auth.errors import NonceStoreError
from datafold_auth.nonce import redis as redis_store
from datafold_auth.nonce.redis import RedisNonceStore
from datafold_auth.ratelimit import RedisRateLimiter
from datafold_auth.registry import open_nonce_store

from .backends import REDIS_URL


@pytest.mark.parametrize("opener", [RedisNonceStore.from_url, open_nonce_store], ids=["from_url", "open_nonce_store"])
def test_a_misspelt_option_is_refused_with_the_right_name(opener: object) -> None:
    with pytest.raises(NonceStoreError) as caught:
        opener(f"{REDIS_URL}?prefx=myapp:")  # type: ignore[operator]
    detail = caught.value.detail
    assert detail.startswith("unknown Redis URL option 'prefx' (did you mean 'prefix'?); redis:// URLs take prefix")
    assert "myapp" not in detail  # the value is never shown


@pytest.mark.parametrize(
    ("query", "suggestion"),
    [("timout=2", "timeout"), ("Prefix=a:", "prefix"), ("client-name=x", "client_name"), ("dbb=1", "db")],
)
def test_close_names_are_suggested(query: str, suggestion: str) -> None:
    with pytest.raises(NonceStoreError, match=rf"did you mean '{suggestion}'\?"):
        RedisNonceStore.from_url(f"{REDIS_URL}?{query}")


def test_nothing_close_no_suggestion_and_tls_options_point_at_rediss() -> None:
    with pytest.raises(NonceStoreError) as caught:
        RedisNonceStore.from_url("redis://127.0.0.1:6379/0?zzzzzz=1")
    # no close known name: maybe the tail of a password with an unescaped '&', so not shown
    assert "zzzzzz" not in caught.value.detail and "did you mean" not in caught.value.detail
    assert "(its name is not shown: it may be part of a password)" in caught.value.detail
    with pytest.raises(NonceStoreError, match=r"'ssl_cert_reqs' \(a TLS option: use rediss://\)"):
        RedisNonceStore.from_url("redis://127.0.0.1:6379/0?ssl_cert_reqs=none")


def test_secrets_stay_out_of_the_message() -> None:
    with pytest.raises(NonceStoreError) as caught:
        RedisNonceStore.from_url("redis://:s3cret-pw@127.0.0.1:6379/0?pasword=hunter2")
    assert "'pasword' (did you mean 'password'?)" in caught.value.detail
    assert "hunter2" not in str(caught.value) and "s3cret" not in str(caught.value)
    with pytest.raises(NonceStoreError) as caught:
        RedisNonceStore.from_url("redis://127.0.0.1:6379/0?password:hunter2")  # ':' for '=': not a name
    assert "hunter2" not in str(caught.value) and "not shown" in caught.value.detail


def test_known_options_still_work(redis_key_prefix: str) -> None:
    store = RedisNonceStore.from_url(
        f"{REDIS_URL}?prefix={redis_key_prefix}&timeout=2&client_name=df-test&max_connections=4"
        "&socket_keepalive=true&health_check_interval=10&db=0&protocol=2"
    )
    try:
        assert store.prefix == redis_key_prefix
        assert store.add("k n", 2e9, 1.9e9) is True  # a real connection: redis-py took every option

        async def add_async() -> bool:
            try:
                return await store.add_async("k n2", 2e9, 1.9e9)
            finally:
                await store.aclose()

        assert asyncio.run(add_async()) is True  # and so did redis.asyncio
    finally:
        store.close()
    unix = RedisNonceStore.from_url("unix:///run/redis/redis.sock?db=2&prefix=p:&password=x&timeout=1")
    assert unix.client.connection_pool.connection_kwargs["path"] == "/run/redis/redis.sock"
    assert RedisNonceStore.from_url("rediss://127.0.0.1:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false")


def test_the_derived_options_match_what_redis_py_takes() -> None:
    for scheme in ("redis", "rediss", "unix"):
        known = redis_store.redis_url_options(scheme)
        parsed = redis.connection.parse_url(f"{scheme}://")  # type: ignore[no-untyped-call]
        sync_class = parsed.get("connection_class", redis.connection.Connection)
        for name in known - {"max_connections"}:  # max_connections is the pool's
            assert any(
                name in inspect.signature(klass.__init__).parameters
                for klass in sync_class.__mro__
                if "__init__" in vars(klass)
            ), (scheme, name)
        # what redis-py parses from URLs and its connections take is known
        assert {"db", "socket_timeout", "socket_connect_timeout", "retry_on_timeout", "protocol"} <= known
        assert {"username", "password", "client_name", "max_connections", "health_check_interval"} <= known
    options = redis_store.redis_url_options
    assert {"ssl_ca_certs", "ssl_cert_reqs", "ssl_check_hostname"} <= options("rediss")
    assert "ssl_check_hostname" not in options("redis") and "socket_keepalive" not in options("unix")
    # only what a URL's text can set: not the settings that take Python objects
    assert not {"retry", "parser_class", "event_dispatcher", "redis_connect_func", "socket_type"} & options("redis")
    assert "prefix" not in options("redis")  # ours, not redis-py's


def test_what_is_refused_would_have_failed_every_connection() -> None:
    """The check is no stricter than redis-py: the options it refuses make redis-py fail on connect."""
    for query in ("prefx=a", "ssl_check_hostname=false"):
        assert redis_store.unknown_url_option("redis", [query.split("=")[0]]) is not None
        client = redis.Redis.from_url(f"{REDIS_URL}?{query}", socket_timeout=1, socket_connect_timeout=1)
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            client.ping()
        client.close()


def test_the_rate_limiter_refuses_unknown_options_too() -> None:
    # It fails open: a misspelt option would have switched the abuse limit off without a word.
    with pytest.raises(ValueError, match=r"^Redis URL option 'prefix' cannot be used here: pass prefix= to Redis"):
        RedisRateLimiter.from_url(f"{REDIS_URL}?prefix=a:")  # the limiter's prefix is an argument, not a URL option
    with pytest.raises(ValueError, match=r"'socket_timeout' cannot be used here: the rate limiter's Redis timeouts"):
        RedisRateLimiter.from_url(f"{REDIS_URL}?socket_timeout=1e9")
    with pytest.raises(ValueError, match=r"'max_conections' \(did you mean 'max_connections'\?\)"):
        RedisRateLimiter.from_url(f"{REDIS_URL}?max_conections=3")
    limiter = RedisRateLimiter.from_url(f"{REDIS_URL}?db=0&client_name=df-test")
    limiter.client.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0?password=hunter2&hunter3",  # an unescaped '&' in a password
        "redis://127.0.0.1:6379/0?password=S3cr&Et=x",
        "redis://:ab?cd&ef@127.0.0.1:6379/0",  # a '?' in the userinfo
        "redis://127.0.0.1:6379/0?password=x&prefx=a",  # even a likely misspelling, after a password
    ],
)
def test_the_tail_of_a_password_is_never_shown(url: str) -> None:
    with pytest.raises(NonceStoreError) as caught:
        RedisNonceStore.from_url(url)
    assert caught.value.reason.value == "invalid_configuration"
    for part in ("hunter", "S3cr", "Et", "cd", "ef", "prefx"):
        assert f"'{part}" not in str(caught.value)
    assert "not shown" in caught.value.detail


@pytest.mark.parametrize("name", ["retry", "parser_class", "event_dispatcher", "driver_info", "socket_type"])
def test_a_setting_that_takes_a_python_object_is_refused_by_name(name: str) -> None:
    """redis-py takes these as keywords, but a URL can only give text: every check would fail (503)
    and the fail-open rate limiter would admit everything."""
    expected = (
        rf"^(invalid_configuration: )?Redis URL option '{name}' cannot be set in a URL \(redis-py wants a Python object"
    )
    with pytest.raises(NonceStoreError, match=expected):
        RedisNonceStore.from_url(f"{REDIS_URL}?{name}=x")
    with pytest.raises(ValueError, match=expected):
        RedisRateLimiter.from_url(f"{REDIS_URL}?{name}=x")


@pytest.mark.parametrize("name", ["socket_timeout", "socket_connect_timeout"])
def test_socket_timeouts_go_through_the_checked_timeout(name: str) -> None:
    """In redis-py a URL option wins over from_url's keywords: ``?socket_timeout=1e9`` would undo the
    store's checked ``timeout`` (a hung Redis would hang requests instead of a 503)."""
    with pytest.raises(
        NonceStoreError,
        match=rf"^invalid_configuration: Redis URL option '{name}' cannot be used here: timeout= sets it",
    ):
        RedisNonceStore.from_url(f"{REDIS_URL}?timeout=1&{name}=1e9")


def test_an_option_given_twice_is_refused() -> None:
    with pytest.raises(
        NonceStoreError,
        match=r"^invalid_configuration: Redis URL option 'prefix' is given twice \(which one should win\?\)$",
    ):
        open_nonce_store(f"{REDIS_URL}?prefix=a:&prefix=b:")
