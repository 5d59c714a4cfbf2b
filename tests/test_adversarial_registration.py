"""Adversarial tests of the registration endpoint over real HTTP (werkzeug and uvicorn on loopback).

Each test is a finding of the adversarial review; the docstring says what used to happen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.registration import RegistrationApp, RegistrationASGIApp, registration_request

from .test_registration_http import Serve, asgi_server, assert_problem, send, wsgi_server


@pytest.fixture(params=["wsgi", "asgi"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """``serve(registry, **app_options) -> base URL``: the registration app on werkzeug or uvicorn."""
    with ExitStack() as stack:

        def start(registry: df.KeyRegistry, **options: Any) -> str:
            if request.param == "wsgi":
                return stack.enter_context(wsgi_server(RegistrationApp(registry, df.MemoryNonceStore(), **options)))
            return stack.enter_context(asgi_server(RegistrationASGIApp(registry, df.MemoryNonceStore(), **options)))

        yield start


@pytest.mark.parametrize(
    "label",
    [
        "invoice\u202efdp.exe",  # RIGHT-TO-LEFT OVERRIDE: shows as "invoiceexe.pdf"
        "a\u2066b\u2069",  # isolates
        "a\u202ab\u202c",  # embedding + pop
        "line\u2028break",  # LINE SEPARATOR
        "para\u2029break",  # PARAGRAPH SEPARATOR
    ],
)
def test_label_with_bidi_controls_or_line_separators_is_refused(serve: Serve, label: str) -> None:
    """Labels are shown to operators (key listings, admin pages, logs); bidi overrides and
    line separators were stored as they came, so a label could display as something else."""
    registry = df.MemoryRegistry()
    base = serve(registry)
    resp = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), base + "/keys", label=label))
    assert_problem(resp, 400, "invalid_request")
    assert registry.list() == []


def test_ordinary_unicode_labels_still_register(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    for label in (
        "Zoë's laptop",
        "\u05e2\u05d1\u05e8\u05d9\u05ea",
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    ):
        resp = send(registration_request(df.Signer(Ed25519PrivateKey.generate()), base + "/keys", label=label))
        assert resp.status_code == 201, resp.text
        assert resp.json()["label"] == label


def test_client_id_that_is_another_keys_keyid_is_refused(serve: Serve) -> None:
    """A client could register with ``client_id`` set to the keyid of someone else's key
    (keyids are public); that key's own registration, whose client_id defaults to its
    keyid, then got ``409 client_id_taken`` forever."""
    registry = df.MemoryRegistry()
    base = serve(registry)
    victim = Ed25519PrivateKey.generate()
    squat = registration_request(
        df.Signer(Ed25519PrivateKey.generate()), base + "/keys", client_id=jwk_thumbprint(victim)
    )
    assert_problem(send(squat), 400, "invalid_request")
    resp = send(registration_request(df.Signer(victim), base + "/keys"))
    assert resp.status_code == 201 and resp.json()["client_id"] == jwk_thumbprint(victim)


def test_client_id_equal_to_the_own_keyid_is_fine(serve: Serve) -> None:
    base = serve(df.MemoryRegistry())
    key = Ed25519PrivateKey.generate()
    resp = send(registration_request(df.Signer(key), base + "/keys", client_id=jwk_thumbprint(key)))
    assert resp.status_code == 201, resp.text
