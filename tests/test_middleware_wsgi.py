"""The WSGI middleware called in process: path selection, body replay, authority, clock, bad framing."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment
from wsgiref.util import setup_testing_defaults

import pytest

from datafold_auth import Reason, Request
from datafold_auth.middleware import IDENTITY_KEY, VERIFIED_KEY, DatafoldAuthMiddleware, Identity
from datafold_auth.middleware._common import PathSelector

from .servers import Harness


def inner_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Answers what it saw: identity, REMOTE_USER, CONTENT_LENGTH and the body read from wsgi.input."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    identity = environ.get(IDENTITY_KEY)
    seen = {
        "client_id": identity and identity.client_id,
        "remote_user": environ.get("REMOTE_USER"),
        "content_length": environ.get("CONTENT_LENGTH"),
        "body": environ["wsgi.input"].read(length).decode("latin-1"),
        "verified": VERIFIED_KEY in environ,
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


def environ_for(req: Request, *, host: str | None = None, chunked: bool = False) -> WSGIEnvironment:
    """A PEP 3333 environ for ``req`` as a server on ``host`` (default: the request's authority) builds it."""
    environ: WSGIEnvironment = {
        "REQUEST_METHOD": req.method,
        "PATH_INFO": req.path,
        "QUERY_STRING": req.query or "",
        "REQUEST_URI": req.path + ("" if req.query is None else "?" + req.query),
        "HTTP_HOST": host or req.authority,
        "wsgi.input": io.BytesIO(req.body),
    }
    for name, value in req.headers:
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    if chunked:
        environ["wsgi.input_terminated"] = True
    elif req.body:
        environ["CONTENT_LENGTH"] = str(len(req.body))
    setup_testing_defaults(environ)
    return environ


def call(app: Any, environ: WSGIEnvironment) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Call a WSGI app; return status code, headers and the JSON body."""
    captured: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured.extend([int(status.split()[0]), dict(headers)])

    body = b"".join(app(environ, start_response))
    return captured[0], captured[1], json.loads(body)


def signed(h: Harness, url: str, body: bytes = b"", *, now: float | None = None) -> Request:
    req = Request.from_url("POST" if body else "GET", url, [("Content-Type", "text/plain")] if body else [], body)
    h.signer.sign(req, now=now)
    return req


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_success_hands_identity_and_exact_body_to_app(h: Harness) -> None:
    body = b"\x00binary\xffbody"
    status, _, seen = call(
        DatafoldAuthMiddleware(inner_app, h.verifier), environ_for(signed(h, "http://api.test/a", body))
    )
    assert status == 200
    assert seen == {
        "client_id": "alice",
        "remote_user": "alice",
        "content_length": str(len(body)),
        "body": body.decode("latin-1"),
        "verified": True,
    }


def test_chunked_body_is_buffered_and_content_length_fixed(h: Harness) -> None:
    body = b"chunked upload " * 100
    environ = environ_for(signed(h, "http://api.test/a", body), chunked=True)
    assert "CONTENT_LENGTH" not in environ
    status, _, seen = call(DatafoldAuthMiddleware(inner_app, h.verifier), environ)
    assert status == 200
    assert seen["content_length"] == str(len(body)) and seen["body"] == body.decode()


def test_chunked_body_over_limit_is_413(h: Harness) -> None:
    environ = environ_for(signed(h, "http://api.test/a", b"z" * 101), chunked=True)
    status, headers, doc = call(DatafoldAuthMiddleware(inner_app, h.verifier, max_body=100), environ)
    assert (status, doc["reason"]) == (413, "body_too_large")
    assert "WWW-Authenticate" not in headers


def test_unreadable_content_length_is_400_not_500(h: Harness) -> None:
    environ = environ_for(signed(h, "http://api.test/a", b"abc"))
    environ["CONTENT_LENGTH"] = "three"
    status, headers, doc = call(DatafoldAuthMiddleware(inner_app, h.verifier), environ)
    assert (status, doc["reason"]) == (400, Reason.INVALID_REQUEST.value)
    assert headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("/api", True),
        ("/api/x", True),
        ("/apix", False),
        ("/other", False),
        ("/api/public", False),
        ("/api/public/y", False),
    ],
)
def test_paths_and_exempt_prefixes(h: Harness, path: str, protected: bool) -> None:
    mw = DatafoldAuthMiddleware(inner_app, h.verifier, paths=["/api"], exempt="/api/public/")
    status, _, _ = call(mw, environ_for(Request.from_url("GET", "http://api.test" + path)))
    assert status == (401 if protected else 200)


def test_script_name_is_part_of_the_matched_path(h: Harness) -> None:
    environ = environ_for(Request.from_url("GET", "http://api.test/x"))
    environ["SCRIPT_NAME"] = "/health"
    status, _, seen = call(DatafoldAuthMiddleware(inner_app, h.verifier, exempt=["/health"]), environ)
    assert status == 200 and seen["client_id"] is None


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("//api/x", True),  # e.g. /%2Fapi/x: werkzeug routes it as /api/x
        ("/./api/x", True),
        ("/open/../api/x", True),
        ("/api/../open/x", True),  # protected as given: a router may not resolve dot segments
        ("//api/../open", True),  # werkzeug merges slashes, then /api/<path> gets "../open"
        ("/open//../api/x", True),
        ("/open//x", False),
        ("/open/./x", False),
        ("", False),
    ],
)
def test_paths_are_also_matched_normalized(path: str, protected: bool) -> None:
    assert PathSelector(["/api"], ["/open"]).protects(path) is protected


def test_the_path_forms_shortcut_gives_every_form_the_full_computation_gives() -> None:
    """A path without "//" and "/." is its only form; every path up to 6 pieces of "/", ".", "a" is checked."""
    import itertools
    import re

    from datafold_auth.middleware._common import _path_forms, _without_dot_segments

    def full(path: str) -> set[str]:
        path = path if path.startswith("/") else "/" + path
        merged = re.sub("/{2,}", "/", path)
        undotted = _without_dot_segments(path)
        return {path, merged, undotted, _without_dot_segments(merged), re.sub("/{2,}", "/", undotted)}

    for size in range(7):
        for pieces in itertools.product(("/", ".", "a"), repeat=size):
            path = "".join(pieces)
            assert set(_path_forms(path)) == full(path), path


def test_encoded_slash_does_not_bypass_a_protected_flask_route(h: Harness) -> None:
    from flask import Flask

    flask = Flask("bypass")
    flask.add_url_rule("/api/secret", "secret", lambda: "secret")
    flask.wsgi_app = DatafoldAuthMiddleware(flask.wsgi_app, h.verifier, paths="/api")  # type: ignore[method-assign]
    environ = environ_for(Request.from_url("GET", "http://api.test/%2Fapi/secret"))
    environ["PATH_INFO"] = "//api/secret"  # what a server decodes /%2Fapi/secret to
    status, _, doc = call(flask, environ)
    assert (status, doc["reason"]) == (401, "missing_signature")


def test_path_prefix_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        PathSelector(None, ["health"])
    assert PathSelector("/", ()).protects("/anything")


def test_public_authority_behind_a_proxy(h: Harness) -> None:
    environ = environ_for(signed(h, "https://api.example.com/a"), host="10.0.0.7:8080")
    status, _, doc = call(DatafoldAuthMiddleware(inner_app, h.verifier), environ)
    assert (status, doc["reason"]) == (401, "bad_signature")
    environ = environ_for(signed(h, "https://api.example.com/a"), host="10.0.0.7:8080")
    mw = DatafoldAuthMiddleware(inner_app, h.verifier, authority="api.example.com")
    assert call(mw, environ)[0] == 200


def test_time_comes_from_clock(h: Harness) -> None:
    then = time.time() - 10_000
    mw = DatafoldAuthMiddleware(inner_app, h.verifier, clock=lambda: then)
    assert call(mw, environ_for(signed(h, "http://api.test/a", now=then)))[0] == 200
    status, _, doc = call(mw, environ_for(signed(h, "http://api.test/a")))
    assert (status, doc["reason"]) == (401, "created_in_future")


def test_identity_serves_as_a_starlette_user() -> None:
    identity = Identity(client_id="alice", keyid="k", scopes=("read",))
    assert identity.is_authenticated and identity.display_name == identity.identity == "alice"
    with pytest.raises(AttributeError):
        identity.client_id = "mallory"  # type: ignore[misc]
