"""The datafold-auth pytest plugin: fixtures, a marker and options (docs/testing.md).

Registered through the ``pytest11`` entry point ``datafold_auth``, so it is
active wherever datafold-auth is installed (turn it off with
``-p no:datafold_auth``). This module holds fixtures and hooks only; the
helpers they return live in :mod:`datafold_auth.testing`.

Every fixture is function-scoped except :func:`datafold_registry_url`, and
keeps its state in the test's own objects, so tests share nothing, within a
process or between pytest-xdist workers.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from ..errors import RegistryError
from ..profile import DEFAULT_POLICY, VerificationPolicy
from ..registry import KeyRegistry
from ..signer import Signer
from ..urloptions import redacted
from .clients import (
    ASGIClientFactory,
    HttpxAsyncClientFactory,
    HttpxClientFactory,
    RequestsSessionFactory,
    WSGIClientFactory,
)
from .clock import FakeClock
from .identities import DEFAULT_CLIENT_ID, EphemeralKey, KeyFactory
from .nonces import RecordingNonceStore
from .registries import MEMORY_URL, RegistryFactory
from .verifier import ClockedVerifier

MARKER = "datafold_identity"
_MARKER_HELP = (
    f"{MARKER}(client_id=None, *, scopes=(), status='active', expires_in=None, expires_at=None, label='', "
    "register=True): the identity the datafold_key fixture (and so every signed test client) runs as."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--datafold-registry URL`` and the ``datafold_registry`` ini value."""
    group = parser.getgroup("datafold_auth", "datafold-auth signed requests")
    group.addoption(
        "--datafold-registry",
        dest="datafold_registry",
        metavar="URL",
        default=None,
        help="register the test keys in this key registry instead of a fresh in-memory one per test "
        "(e.g. sqlite:///srv/app/keys.db or a registry plugin's URL; overrides the ini value).",
    )
    parser.addini(
        "datafold_registry",
        "registry URL for the datafold-auth fixtures (default memory://: a fresh in-memory registry per test).",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``datafold_identity`` marker."""
    config.addinivalue_line("markers", _MARKER_HELP)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed test that used ``datafold_verifier``, add what the verifier decided to the report."""
    report = yield
    if report.when == "call" and report.failed:
        verifier = getattr(item, "funcargs", {}).get("datafold_verifier")
        if isinstance(verifier, ClockedVerifier) and verifier.log:
            report.sections.append(("datafold-auth verifier", verifier.report()))
    return report


# ----------------------------------------------------------------- time, state


@pytest.fixture
def datafold_clock() -> FakeClock:
    """A :class:`~datafold_auth.testing.FakeClock` standing at the test's start time; it moves only when told."""
    return FakeClock()


@pytest.fixture(scope="session")
def datafold_registry_url(pytestconfig: pytest.Config) -> str:
    """The registry URL from ``--datafold-registry`` or the ``datafold_registry`` ini value, else ``memory://``."""
    url = pytestconfig.getoption("datafold_registry", None) or pytestconfig.getini("datafold_registry")
    return str(url).strip() or MEMORY_URL


@pytest.fixture
def datafold_registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """Opens registries: ``factory()`` is a new SQLite file in a temporary folder,
    ``factory(url)`` any registry URL. All are closed after the test."""
    factory = RegistryFactory(lambda: tmp_path_factory.mktemp("datafold-registry"))
    yield factory
    factory.close()


@pytest.fixture
def datafold_registry(datafold_registry_factory: RegistryFactory, datafold_registry_url: str) -> KeyRegistry:
    """The registry the test keys are registered in: a fresh in-memory one, or the configured URL."""
    try:
        return datafold_registry_factory(datafold_registry_url)
    except Exception as exc:  # any backend's error is reported the same way
        where = redacted(datafold_registry_url)  # CI logs keep what a failed test prints
        pytest.fail(f"datafold-auth: cannot open the registry {where!r}: {exc}", pytrace=False)


@pytest.fixture
def datafold_nonce_store() -> RecordingNonceStore:
    """A fresh in-memory nonce store that records every nonce (``.uses``, ``.replays``, ``(keyid, nonce) in store``)."""
    return RecordingNonceStore()


@pytest.fixture
def datafold_policy() -> VerificationPolicy:
    """The verification policy of ``datafold_verifier`` (the DataFold profile); override it to test another."""
    return DEFAULT_POLICY


@pytest.fixture
def datafold_verifier(
    datafold_registry: KeyRegistry,
    datafold_nonce_store: RecordingNonceStore,
    datafold_policy: VerificationPolicy,
    datafold_clock: FakeClock,
) -> ClockedVerifier:
    """A verifier on the test's registry, nonce store, policy and clock, to hand to the app under test."""
    return ClockedVerifier(datafold_registry, datafold_nonce_store, datafold_policy, clock=datafold_clock)


# ------------------------------------------------------------------------ keys


@pytest.fixture
def datafold_key_factory(
    datafold_registry: KeyRegistry, datafold_clock: FakeClock, datafold_registry_url: str
) -> Iterator[KeyFactory]:
    """Makes registered keys: ``factory("bob", scopes=["read"], status="revoked", expires_in=60)``.

    With a configured (shared) registry, client_ids the factory picks get a
    random suffix, and the keys are revoked after the test.
    """
    shared = datafold_registry_url != MEMORY_URL
    factory = KeyFactory(datafold_registry, datafold_clock, unique_client_ids=shared)
    yield factory
    if shared:
        factory.revoke_all()


@pytest.fixture
def datafold_key(request: pytest.FixtureRequest, datafold_key_factory: KeyFactory) -> EphemeralKey:
    """The test's identity: a fresh registered key, client_id ``test-client``, no scopes, active.

    Declare another with ``@pytest.mark.datafold_identity(client_id=..., scopes=[...], ...)``
    or ``@pytest.mark.parametrize("datafold_key", [{"scopes": ["read"]}], indirect=True)``.
    """
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    where = f"@pytest.mark.{MARKER}"
    param = getattr(request, "param", None)
    if param is not None:
        where = "the datafold_key parameter"
        if not isinstance(param, dict):
            pytest.fail(f"{where} must be a dict of datafold_identity arguments, got {param!r}", pytrace=False)
        kwargs = dict(param)
    else:
        marker = request.node.get_closest_marker(MARKER)
        if marker is not None:
            args, kwargs = tuple(marker.args), dict(marker.kwargs)
    problem = _identity_arguments_problem(args, kwargs)
    if problem is None:
        if not args and kwargs.get("client_id") is None:
            kwargs["client_id"] = datafold_key_factory.client_id_for(DEFAULT_CLIENT_ID)
        try:
            return datafold_key_factory(*args, **kwargs)
        except (TypeError, ValueError, RegistryError) as exc:
            problem = str(exc)
    # outside the except block: a one-line report, without a chained "During handling..." traceback
    pytest.fail(f"{where}: {problem}", pytrace=False)


def _identity_arguments_problem(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """What is wrong with ``datafold_identity`` arguments as :class:`KeyFactory` takes them, or None."""
    parameters = list(inspect.signature(KeyFactory.__call__).parameters.values())[1:]  # without self
    accepted = ", ".join(p.name for p in parameters)
    unknown = [name for name in kwargs if name not in {p.name for p in parameters}]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        return f"unknown argument{plural} {', '.join(map(repr, unknown))} (accepted: {accepted})"
    positional = [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    if len(args) > len(positional):
        plural = "s" if len(positional) != 1 else ""
        return f"takes at most {len(positional)} positional argument{plural} ({', '.join(positional)}); got {len(args)}"
    twice = [name for name in positional[: len(args)] if name in kwargs]
    if twice:
        return f"{twice[0]} given twice (positionally and by name)"
    return None


@pytest.fixture
def datafold_signer(datafold_key: EphemeralKey) -> Signer:
    """The :class:`~datafold_auth.Signer` of ``datafold_key`` (pass ``now=datafold_clock()`` when signing)."""
    return datafold_key.signer


# --------------------------------------------------------------------- clients


@pytest.fixture
def datafold_wsgi_client(request: pytest.FixtureRequest, datafold_clock: FakeClock) -> WSGIClientFactory:
    """``datafold_wsgi_client(app)``: a werkzeug/Flask test client that signs as ``datafold_key``."""
    return WSGIClientFactory(lambda: request.getfixturevalue("datafold_key"), datafold_clock)


@pytest.fixture
def datafold_asgi_client(request: pytest.FixtureRequest, datafold_clock: FakeClock) -> Iterator[ASGIClientFactory]:
    """``datafold_asgi_client(app)``: a Starlette ``TestClient`` that signs as ``datafold_key``."""
    factory = ASGIClientFactory(lambda: request.getfixturevalue("datafold_key"), datafold_clock)
    yield factory
    factory.close()


@pytest.fixture
def datafold_httpx_client(request: pytest.FixtureRequest, datafold_clock: FakeClock) -> Iterator[HttpxClientFactory]:
    """``datafold_httpx_client(wsgi_app)``: an ``httpx.Client`` on ``WSGITransport`` that signs as ``datafold_key``."""
    factory = HttpxClientFactory(lambda: request.getfixturevalue("datafold_key"), datafold_clock)
    yield factory
    factory.close()


@pytest.fixture
def datafold_httpx_async_client(request: pytest.FixtureRequest, datafold_clock: FakeClock) -> HttpxAsyncClientFactory:
    """``datafold_httpx_async_client(asgi_app)``: an ``httpx.AsyncClient`` (ASGI transport) signing as datafold_key."""
    return HttpxAsyncClientFactory(lambda: request.getfixturevalue("datafold_key"), datafold_clock)


@pytest.fixture
def datafold_requests_session(
    request: pytest.FixtureRequest, datafold_clock: FakeClock
) -> Iterator[RequestsSessionFactory]:
    """``datafold_requests_session(url_or_app)``: a ``requests.Session`` that signs as ``datafold_key``."""
    factory = RequestsSessionFactory(lambda: request.getfixturevalue("datafold_key"), datafold_clock)
    yield factory
    factory.close()
