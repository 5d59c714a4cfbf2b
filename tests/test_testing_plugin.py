"""The pytest plugin end to end: small downstream suites run by ``pytester`` in a subprocess.

The plugin reaches those runs only through its ``pytest11`` entry point (the
package is installed, editable, in this environment): nothing here names it
in ``-p``, ``pytest_plugins`` or a conftest.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from datafold_auth import KeyStatus, SQLiteRegistry

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
DOWNSTREAM = ROOT / "examples" / "downstream"
EXAMPLE_FILES = ["conftest.py", "flask_shop.py", "fastapi_shop.py", "test_flask_shop.py", "test_fastapi_shop.py"]
APP_FILES = ["conftest.py", "flask_shop.py", "fastapi_shop.py"]


@pytest.fixture(autouse=True)
def _autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry-point plugins must load in the subprocess runs."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("PYTEST_PLUGINS", raising=False)


def copy_example(pytester: pytest.Pytester, names: list[str]) -> None:
    for name in names:
        shutil.copy(DOWNSTREAM / name, pytester.path / name)


# ----------------------------------------------------------- the example suite


def test_example_suite_passes_with_the_plugin_from_its_entry_point_under_xdist(pytester: pytest.Pytester) -> None:
    copy_example(pytester, EXAMPLE_FILES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-W", "ignore::DeprecationWarning")
    result.stdout.fnmatch_lines(["plugins:*datafold-auth-0.1.0*", "*created: 2/2 workers*"])
    collected = re.search(r"2 workers \[(\d+) items\]", result.stdout.str())
    assert collected and int(collected.group(1)) >= 40
    result.assert_outcomes(passed=int(collected.group(1)))


def test_without_the_plugin_the_fixtures_are_gone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(datafold_key):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:datafold_auth")
    result.stdout.fnmatch_lines(["*fixture 'datafold_key' not found*"])
    result.assert_outcomes(errors=1)


# --------------------------------------------------- readable failures, both apps

FAILING_FLASK = """
import pytest
from flask_shop import create_app
from datafold_auth.testing import assert_accepted, assert_rejected

@pytest.fixture
def app(datafold_verifier):
    return create_app(verifier=datafold_verifier)

@pytest.mark.datafold_identity(client_id="alice", scopes=["read"])
def test_wrong_scope(app, datafold_wsgi_client):
    assert_accepted(datafold_wsgi_client(app).post("/api/items", json={"name": "x"}))

def test_expired(app, datafold_key, datafold_clock):
    headers = datafold_key.signed_headers("GET", "http://localhost/api/hello")
    datafold_clock.advance(400)
    assert_accepted(app.test_client().get("/api/hello", headers=headers))

def test_replay(app, datafold_wsgi_client):
    client = datafold_wsgi_client(app, nonce="once")
    client.get("/api/hello")
    assert_accepted(client.get("/api/hello"))

def test_expected_a_replay(app, datafold_wsgi_client):
    assert_rejected(datafold_wsgi_client(app).get("/api/hello"), "replayed_nonce")
"""

FAILING_FASTAPI = """
import pytest
from fastapi_shop import create_app
from datafold_auth.testing import assert_accepted, assert_rejected

@pytest.fixture
def app(datafold_verifier):
    return create_app(verifier=datafold_verifier)

@pytest.mark.datafold_identity(client_id="alice", scopes=["read"])
def test_wrong_scope(app, datafold_asgi_client):
    assert_accepted(datafold_asgi_client(app).post("/api/items", json={"name": "x"}))

def test_expired(app, datafold_asgi_client, datafold_clock):
    assert_accepted(datafold_asgi_client(app, clock=datafold_clock.shifted(-400)).get("/api/hello"))

@pytest.mark.anyio
async def test_replay(app, datafold_httpx_async_client):
    async with datafold_httpx_async_client(app, nonce="once") as client:
        await client.get("/api/hello")
        assert_accepted(await client.get("/api/hello"))

def test_expected_a_replay(app, datafold_requests_session):
    assert_rejected(datafold_requests_session(app).get("/api/hello"), "replayed_nonce")
"""


def expected_failures(compact: bool) -> list[str]:
    """The failure report lines of FAILING_FLASK / FAILING_FASTAPI, in order."""
    sep = ":" if compact else ": "
    return [
        # wrong scope: refused by the app, after the middleware accepted the signature
        "*_ test_wrong_scope _*",
        "E*AssertionError: expected the request to be accepted (a 2xx status), "
        "but it was rejected with reason 'insufficient_scope'",
        "E*status: 403 Forbidden",
        "E*content-type: application/problem+json",
        "E*reason: insufficient_scope",
        f'E*body: *"reason"{sep}"insufficient_scope"*',
        "*- datafold-auth verifier -*",
        "1. t=* POST /api/items -> accepted as 'alice' scopes=[[]'read'[]] (keyid *)",
        # expired
        "*_ test_expired _*",
        "E*AssertionError: *but it was rejected with reason 'expired'",
        "E*status: 401 Unauthorized",
        "E*reason: expired (The signature is too old or past its expires time.)",
        "*- datafold-auth verifier -*",
        "1. t=* GET /api/hello -> rejected expired: created is 400 s old (max_age 300 s) (keyid *)",
        # replay
        "*_ test_replay _*",
        "E*AssertionError: *but it was rejected with reason 'replayed_nonce'",
        "E*reason: replayed_nonce (This nonce was already used.)",
        "*- datafold-auth verifier -*",
        "2. t=* GET /api/hello -> rejected replayed_nonce: this nonce was already used with this key (keyid *)",
        # a rejection that did not happen
        "*_ test_expected_a_replay _*",
        "E*AssertionError: expected a rejection with reason 'replayed_nonce', but the request was accepted",
        "E*status: 200 OK",
    ]


def test_app_rejections_fail_with_a_readable_message(pytester: pytest.Pytester) -> None:
    copy_example(pytester, APP_FILES)
    pytester.makepyfile(test_failing_fastapi=FAILING_FASTAPI, test_failing_flask=FAILING_FLASK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(failed=8)
    result.stdout.fnmatch_lines(expected_failures(compact=True) + expected_failures(compact=False))


# ------------------------------------------------------ marker and parameters


def test_marker_levels_and_bad_declarations(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.datafold_identity(client_id="module-wide", scopes="read")

        def test_module_marker(datafold_key):
            assert (datafold_key.client_id, datafold_key.scopes) == ("module-wide", ("read",))

        @pytest.mark.datafold_identity("closest", status="pending", expires_in=60)
        def test_closest_marker_wins(datafold_key, datafold_clock):
            assert (datafold_key.client_id, datafold_key.status, datafold_key.scopes) == ("closest", "pending", ())
            assert datafold_key.record.expires_at == datafold_clock.now + 60

        @pytest.mark.parametrize("datafold_key", [{"client_id": "p1"}, {"scopes": ["x"]}], indirect=True)
        def test_parameter_wins(datafold_key):
            assert datafold_key.client_id in ("p1", "test-client")

        @pytest.mark.datafold_identity(scope=["read"])
        def test_typo(datafold_key):
            pass

        @pytest.mark.parametrize("datafold_key", ["alice"], indirect=True)
        def test_not_a_dict(datafold_key):
            pass

        @pytest.mark.datafold_identity(status="asleep")
        def test_bad_status(datafold_key):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=4, errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*@pytest.mark.datafold_identity: unknown argument 'scope' (accepted: client_id, scopes, *)",
            "*the datafold_key parameter must be a dict of datafold_identity arguments, got 'alice'",
            "*@pytest.mark.datafold_identity: 'asleep' is not a valid KeyStatus",
        ]
    )


def test_bad_identity_arguments_are_reported_in_one_line(pytester: pytest.Pytester) -> None:
    """Trial finding 16: no "KeyFactory.__call__() got an unexpected keyword argument" after a chained traceback."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.datafold_identity(bogus=1)
        def test_unknown(datafold_key):
            pass

        @pytest.mark.datafold_identity("a", "b")
        def test_two_positional(datafold_key):
            pass

        @pytest.mark.datafold_identity("a", client_id="b")
        def test_twice(datafold_key):
            pass

        @pytest.mark.datafold_identity(status="asleep")
        def test_bad_value(datafold_key):
            pass

        @pytest.mark.parametrize("datafold_key", [{"scopes": ["x"], "colour": "red", "size": 2}], indirect=True)
        def test_bad_parameter(datafold_key):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=5)
    accepted = "(accepted: client_id, scopes, status, expires_in, expires_at, label, register)"
    result.stdout.fnmatch_lines_random(
        [
            f"@pytest.mark.datafold_identity: unknown argument 'bogus' {accepted}",
            "@pytest.mark.datafold_identity: takes at most 1 positional argument (client_id); got 2",
            "@pytest.mark.datafold_identity: client_id given twice (positionally and by name)",
            "@pytest.mark.datafold_identity: 'asleep' is not a valid KeyStatus",
            f"the datafold_key parameter: unknown arguments 'colour', 'size' {accepted}",
        ]
    )
    output = result.stdout.str()
    assert "During handling" not in output and "KeyFactory.__call__" not in output and "Traceback" not in output


def test_marker_is_documented_in_markers_list(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.datafold_identity(client_id=None, *scopes=()*"])


# --------------------------------------------------- isolation under pytest-xdist

ISOLATION = """
import os
import pytest
from datafold_auth import Request

@pytest.mark.parametrize("n", range(24))
@pytest.mark.datafold_identity(client_id="alice", scopes=["read"])
def test_isolated(n, worker_id, datafold_registry, datafold_nonce_store, datafold_key, datafold_key_factory,
                  datafold_clock, datafold_verifier):
    # Each test sees only its own key, nonces and clock, even with the same client_id and nonce everywhere.
    assert [r.client_id for r in datafold_registry.list()] == ["alice"]
    assert datafold_nonce_store.uses == [] and datafold_verifier.log == []
    datafold_clock.advance(n)
    request = Request.from_url("GET", "https://api.example/x", [])
    datafold_key.sign(request, nonce="the-same-in-every-test")
    assert datafold_verifier.verify(request).client_id == "alice"
    datafold_key_factory("bob")
    with open(os.path.join(os.environ["SEEN_DIR"], f"{worker_id}-{n}"), "w") as f:
        f.write(f"{os.getpid()} {datafold_key.keyid} {datafold_clock.now}")
"""


def test_no_state_is_shared_between_tests_or_workers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    seen.mkdir()
    monkeypatch.setenv("SEEN_DIR", str(seen))
    pytester.makepyfile(test_isolation=ISOLATION)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=24)
    records = [p.read_text().split() for p in seen.iterdir()]
    workers = {p.name.split("-")[0] for p in seen.iterdir()}
    assert workers == {"gw0", "gw1"}
    assert len({pid for pid, _, _ in records}) == 2
    assert len({keyid for _, keyid, _ in records}) == 24  # a fresh key pair per test


# ------------------------------------------------------------ registry options

SHARED = """
import pytest

@pytest.mark.parametrize("n", range(6))
def test_default_identity(n, datafold_key, datafold_registry_url, datafold_registry, datafold_key_factory):
    assert datafold_registry_url.startswith("sqlite:///")
    assert datafold_key.client_id.startswith("test-client-")
    assert datafold_key_factory().client_id.startswith("client-1-")
    assert datafold_registry.get(datafold_key.keyid).status == "active"
"""


def records(db: Path) -> list[tuple[str, str]]:
    registry = SQLiteRegistry(db)
    try:
        return [(r.client_id, r.status.value) for r in registry.list()]
    finally:
        registry.close()


def test_command_line_option_points_the_fixtures_at_a_shared_registry(pytester: pytest.Pytester) -> None:
    db = pytester.path / "shared" / "keys.db"
    pytester.makepyfile(test_shared=SHARED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", f"--datafold-registry=sqlite://{db}")
    result.assert_outcomes(passed=6)
    found = records(db)
    assert len(found) == 12 and len({client_id for client_id, _ in found}) == 12  # unique across workers
    assert {status for _, status in found} == {KeyStatus.REVOKED.value}  # cleaned up after each test


def test_ini_option_and_command_line_precedence(pytester: pytest.Pytester) -> None:
    ini_db, cli_db = pytester.path / "ini.db", pytester.path / "cli.db"
    pytester.makeini(f"[pytest]\ndatafold_registry = sqlite://{ini_db}\n")
    pytester.makepyfile(test_shared=SHARED)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=6)
    assert len(records(ini_db)) == 12
    pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--datafold-registry=sqlite://{cli_db}").assert_outcomes(
        passed=6
    )
    assert len(records(ini_db)) == 12 and len(records(cli_db)) == 12


def test_registry_option_errors_are_readable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.datafold_identity(client_id="alice")
        def test_one(datafold_key):
            pass

        @pytest.mark.datafold_identity(client_id="alice")
        def test_two(datafold_key):
            pass
        """
    )
    db = pytester.path / "keys.db"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--datafold-registry=sqlite://{db}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*client_id 'alice' already has a key in this registry; *own client_id*"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--datafold-registry=nosuch://x")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*datafold-auth: cannot open the registry 'nosuch://x': *no registry plugin handles 'nosuch' URLs*"]
    )
    # a password in the URL does not reach the report (CI logs keep it)
    secret_url = "postgresql://app:TopSecretPw@127.0.0.1:1/db?password=Other5ecret&pool_timeout=0.2&connect_timeout=1"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--datafold-registry={secret_url}")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*cannot open the registry 'postgresql://app:***@127.0.0.1:1/db?password=***&pool_timeout=0.2&connect*"]
    )
    assert "TopSecretPw" not in result.stdout.str() and "Other5ecret" not in result.stdout.str()


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["datafold-auth signed requests:", "*--datafold-registry=URL*", "*datafold_registry *"])


# ------------------------------------------------------------------------- docs


def test_docs_list_every_fixture_and_option() -> None:
    plugin = (ROOT / "datafold_auth" / "testing" / "plugin.py").read_text()
    fixtures = re.findall(r"@pytest\.fixture(?:\([^)]*\))?\ndef (datafold_\w+)\(", plugin)
    assert len(fixtures) == 15
    docs = (ROOT / "docs" / "testing.md").read_text()
    for name in fixtures:
        section = re.search(rf"^### `{name}`\n(.*?)(?=^##)", docs, re.M | re.S)
        assert section, f"docs/testing.md has no section for {name}"
        for field in ("Scope", "Type", "Default"):
            assert f"| {field} |" in section.group(1) or f"**{field}**" in section.group(1), (name, field)
        assert "```python" in section.group(1), f"{name} has no example"
    for option in ("--datafold-registry", "datafold_registry", "datafold_identity", "-p no:datafold_auth"):
        assert option in docs
