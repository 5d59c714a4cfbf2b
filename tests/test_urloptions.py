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
from datafold_auth.errors import RegistryError
from datafold_auth.registry.postgres import PostgresRegistry
from datafold_auth.urloptions import option_problem

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
