"""Backend URL options: an unknown or repeated option is refused at start-up, by name when that is safe.

:func:`datafold_auth.urloptions.option_problem` itself, and its use by the PostgreSQL registry
(``open_registry("postgresql://...")``, ``PostgresRegistry(conninfo)``) and the plugin lookups;
the Redis side is in ``test_nonce_redis_url.py``. A misspelt PostgreSQL option used to cost the
pool timeout (5 s) and then a ``registry_unavailable`` error with libpq's text.
"""

from __future__ import annotations

import time

import pytest

from datafold_auth import open_nonce_store, open_registry
from datafold_auth.errors import NonceStoreError, RegistryError
from datafold_auth.ratelimit import RedisRateLimiter
from datafold_auth.registry.postgres import PostgresRegistry
from datafold_auth.urloptions import NOT_SHOWN, option_problem, redacted

from .backends import POSTGRES_URL, postgres_schema, require_postgres

KNOWN = frozenset({"prefix", "timeout", "password", "db"})


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["prefix", "db"], None),
        (["prefx"], "unknown X option 'prefx' (did you mean 'prefix'?)"),
        (["PREFIX"], "unknown X option 'PREFIX' (did you mean 'prefix'?)"),  # case ignored
        (["timout", "prefx"], "unknown X option 'timout' (did you mean 'timeout'?)"),  # the first
        (["db", "db"], "X option 'db' is given twice (which one should win?)"),
        (["zzzz"], "unknown X option (its name is not shown: it may be part of a password)"),
        (["password:hunter2"], "unknown X option (its name is not shown: it may be part of a password)"),
        (["password", "prefx"], "unknown X option (its name is not shown: it may be part of a password)"),
        (["prefx", "password"], "unknown X option 'prefx' (did you mean 'prefix'?)"),
        (["ef@host:6379/0"], "unknown X option (its name is not shown: it may be part of a password)"),
    ],
)
def test_option_problem(names: list[str], message: str | None) -> None:
    assert option_problem(names, KNOWN, what="X") == message


def test_a_misspelt_postgres_option_is_refused_before_connecting() -> None:
    started = time.monotonic()
    with pytest.raises(RegistryError) as caught:
        open_registry(f"{POSTGRES_URL}?shema=x")
    assert time.monotonic() - started < 1  # no pool timeout: nothing was tried
    assert caught.value.reason.value == "invalid_configuration"
    assert caught.value.detail.startswith(
        "unknown PostgreSQL URL option 'shema' (did you mean 'schema'?); postgresql:// URLs take pool_max, pool_min,"
    )
    with pytest.raises(RegistryError, match="'SCHEMA' \\(did you mean 'schema'\\?\\)"):
        open_registry("postgresql://u:s3cret@127.0.0.1:1/db?SCHEMA=x")
    with pytest.raises(RegistryError, match="'sslmdoe' \\(did you mean 'sslmode'\\?\\)"):  # libpq's names too
        open_registry("postgresql://u:s3cret@127.0.0.1:1/db?sslmdoe=disable")
    with pytest.raises(RegistryError, match=r"^invalid_configuration: PostgreSQL URL option 'schema' is given twice"):
        open_registry("postgresql://127.0.0.1:1/db?schema=a&schema=b")


def test_a_postgres_password_tail_is_never_shown() -> None:
    with pytest.raises(RegistryError) as caught:
        open_registry("postgresql://127.0.0.1:1/db?password=ab&cdefg")
    assert "cdefg" not in str(caught.value) and "not shown" in caught.value.detail


def test_a_conninfo_libpq_cannot_parse_is_refused_without_echoing_it() -> None:
    with pytest.raises(RegistryError) as caught:
        PostgresRegistry("host=127.0.0.1 port=1 password=s3cret shema=x")
    assert caught.value.reason.value == "invalid_configuration"
    assert caught.value.detail == "invalid PostgreSQL connection string (libpq cannot parse it)"
    assert "s3cret" not in str(caught.value)


def test_libpq_parameters_and_ours_still_work() -> None:
    require_postgres()
    with postgres_schema() as schema:
        registry = open_registry(
            f"{POSTGRES_URL}?schema={schema}&sslmode=disable&application_name=df-test&pool_max=2&connect_timeout=3"
        )
        try:
            assert registry.get("nope") is None  # type: ignore[attr-defined]
        finally:
            registry.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("opener", [open_registry, open_nonce_store])
def test_an_unknown_scheme_is_a_configuration_error(opener: object) -> None:
    with pytest.raises(RegistryError) as caught:
        opener("reddis://127.0.0.1/0")  # type: ignore[operator]
    assert caught.value.reason.value == "invalid_configuration"


@pytest.mark.parametrize(
    "url",
    [
        "redis://:SECRa?d&SECRb@127.0.0.1:6379/0",  # '?' in the password: 'd' would be "did you mean 'db'"
        "redis://:SECRa/SECRb@127.0.0.1:6379/0",  # '/': redis-py quoted 'SECRa' as the port
        "redis://:SECRa#SECRb@127.0.0.1:6379/0",
        "redis://:SECRa]SECRb@127.0.0.1:6379/0",  # urlsplit: "does not appear to be an IPv4 or IPv6 address"
        "redis://:SECR\udcffa@127.0.0.1:6379/0",  # a byte that was not UTF-8 (os.environ): a surrogate
        "postgresql://u:SECRa?hst&SECRb@127.0.0.1/test",
        "postgresql://u:SECRa@SECRb@127.0.0.1/test",  # libpq would take 'SECRb@127.0.0.1' for the host
        "postgresql://u:SECR\udcffa@127.0.0.1/test",
    ],
)
def test_a_password_that_breaks_the_url_is_never_quoted(url: str) -> None:
    opener = open_registry if url.startswith("postgresql") else open_nonce_store
    with pytest.raises((RegistryError, NonceStoreError)) as caught:
        opener(url)
    assert caught.value.reason.value == "invalid_configuration"
    assert "SECR" not in str(caught.value) and "not shown, it may hold a password" in str(caught.value)
    if url.startswith("redis"):
        with pytest.raises(ValueError) as limited:
            RedisRateLimiter.from_url(url)
        assert "SECR" not in str(limited.value)


def test_named_special_cases_stay_quiet_after_a_password() -> None:
    """``?password=a&retry=b``: 'retry' may be the tail of the password, so even a real option name is not shown."""
    for url in ("redis://h/0?password=SECRa&retry=SECRb", "redis://h/0?password=SECRa&ssl_keyfile=SECRb"):
        with pytest.raises(NonceStoreError) as caught:
            open_nonce_store(url)
        assert "retry" not in caught.value.detail and "ssl_keyfile" not in caught.value.detail
        assert NOT_SHOWN in caught.value.detail


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:TopSecret@h:5432/db?schema=x&password=pw2&sslpassword=k", "postgresql://u:***@h:5432/db?schema=x&password=***&sslpassword=***"),
        ("redis://:pw@h/0?prefix=a:", "redis://:***@h/0?prefix=a:"),
        ("redis://user@h/0", "redis://user@h/0"),
        ("sqlite:keys.db", "sqlite:keys.db"),
        ("postgresql:///db?host=/var/run/postgresql", "postgresql:///db?host=/var/run/postgresql"),
        ("redis://:ab?cd&ef@h/0", "<unreadable URL>"),
    ],
)  # fmt: skip
def test_redacted(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_postgres_urls_reach_libpq_as_written() -> None:
    """A socket URL (``postgresql:///db``) keeps its ``//``; ``%20`` stays a space (not ``+``); the
    URL's ``options`` and ``connect_timeout`` are kept, not replaced by the pool's keywords."""
    require_postgres()
    with postgres_schema() as schema:
        query = f"schema={schema}&application_name=my%20app&options=-c%20statement_timeout%3D2000&connect_timeout=3"
        for base in ("postgresql:///test?host=/var/run/postgresql&", f"{POSTGRES_URL}?"):
            registry = open_registry(base + query)
            try:
                with registry._pool.connection() as conn:  # type: ignore[attr-defined]
                    row = conn.execute(
                        "SELECT current_setting('application_name'), current_setting('statement_timeout'),"
                        " current_setting('search_path')"
                    ).fetchone()
                assert row == ("my app", "2s", schema)
                assert registry._pool.kwargs["connect_timeout"] == 3  # type: ignore[attr-defined]
            finally:
                registry.close()  # type: ignore[attr-defined]


def test_more_options_that_work() -> None:
    assert option_problem(["ssl"], frozenset(), what="X") is not None  # (the PostgreSQL check adds it)
    with pytest.raises(RegistryError) as caught:  # libpq's "ssl=true" alias passes the check; port 1 refuses
        open_registry("postgresql://127.0.0.1:1/db?ssl=true&pool_timeout=0.3&connect_timeout=1")
    assert caught.value.reason.value == "registry_unavailable"
    store = open_nonce_store("redis://127.0.0.1:6379/0?encoding=utf-8&encoding_errors=strict&prefix=t:")
    store.close()
    with pytest.raises(ValueError, match=r"^Redis URL option 'timeout' cannot be used here: the rate limiter's"):
        RedisRateLimiter.from_url("redis://127.0.0.1:6379/0?timeout=5")
