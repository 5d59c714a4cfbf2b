"""The verify path's fast paths give exactly what the general code gives.

* :func:`signature_base.planned_signature_base` (a cached plan per list of
  covered components) against :func:`signature_base.signature_base`: the same
  bytes, or the same exception with the same reason and message;
* the verifier's one-member ``Signature`` shortcut against ``sf.parse_dictionary``;
* the verifier's single ``sha-256`` Content-Digest comparison against
  ``digest.check_content_digest``.
"""

from __future__ import annotations

import base64
import itertools
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import sf, verifier
from datafold_auth.digest import check_content_digest, content_digest
from datafold_auth.errors import DatafoldAuthError, StructuredFieldError
from datafold_auth.message import Request
from datafold_auth.signature_base import plan, planned_signature_base, signature_base

NAMES = [
    "@method",
    "@authority",
    "@path",
    "@query",
    "@scheme",
    "@target-uri",
    "@request-target",
    "@query-param",
    "@signature-params",
    "@status",
    "@unknown",
    "content-type",
    "content-digest",
    "x-multi",
    "x-fold",
    "x-break",
    "x-utf8",
    "x-missing",
    "x-empty",
    'x-"quote',
    "x-\u00e9",
]

REQUESTS = [
    Request.from_url(
        "POST",
        "https://Example.COM:443/a%20b/c?x=1&y=%20",
        [
            ("Content-Type", "application/json"),
            ("Content-Digest", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"),
            ("X-Multi", " one "),
            ("x-multi", "two\t"),
            ("X-Fold", "a\r\n  b"),
            ("X-Break", "a\rb"),
            ("X-Utf8", "caf\u00e9"),
            ("X-Empty", ""),
        ],
        b"{}",
    ),
    Request(method="get", authority="h:8080", path="", query=None, scheme="HTTP"),
    Request(method="GET", authority="[::1]:80", path="/p", query="", scheme="http", headers=[("X-Fold", "x\n y")]),
]


def _outcome(call, *args):  # type: ignore[no-untyped-def]
    try:
        return ("ok", call(*args))
    except (DatafoldAuthError, StructuredFieldError) as exc:
        return (type(exc).__name__, getattr(getattr(exc, "reason", None), "value", None), str(exc))


def _component_lists():  # type: ignore[no-untyped-def]
    rng = random.Random(9421)  # noqa: S311 - a fixed sample of component lists, not a secret
    lists = [tuple(c) for n in (1, 2) for c in itertools.permutations(NAMES, n)]
    lists += [tuple(rng.choice(NAMES) for _ in range(rng.randint(3, 8))) for _ in range(400)]
    lists += [("@method", "@authority", "@path", "@query", "content-digest", "content-type"), ("@path", "@path")]
    return lists


def test_planned_signature_base_matches_general_path() -> None:
    compared = planned = 0
    for names in _component_lists():
        steps = plan(names)
        for request in REQUESTS:
            general = _outcome(signature_base, request, [(n, {}) for n in names], "();created=1")
            if steps is None:
                continue
            planned += 1
            fast = _outcome(planned_signature_base, request, steps, "();created=1")
            assert fast == general, names
            compared += 1
    assert planned > 500 and compared == planned
    assert plan(("@path", "@path")) is None  # a duplicate goes the general way (it raises there)
    assert plan(("@query-param",)) is None and plan(("@signature-params",)) is None
    steps = plan(("@method", "content-type"))
    assert steps is not None and steps.covered == frozenset({"@method", "content-type"})


def _signature_fields() -> list[str]:
    sig = Ed25519PrivateKey.generate().sign(b"x")
    b64 = base64.b64encode(sig).decode()
    return [
        f"sig1=:{b64}:",
        f"df=:{b64}:",
        f"df=:{b64}:;x=1",
        f"df=:{b64}:, df=:{b64}:",
        f"df=:{b64[:-2]}AA:",
        f"df=:{b64[:-3]}B==:",  # non-zero pad bits
        f"df=:{base64.b64encode(sig[:63]).decode()}:",
        f"df=:{base64.b64encode(sig + b'1').decode()}:",
        f"DF=:{b64}:",
        f"df=:{b64} :",
        f"df= :{b64}:",
        "df=:;",
        f"df=:{b64.replace('+', '-')}:",
    ]


@pytest.mark.parametrize("field", _signature_fields())
@pytest.mark.parametrize("label", ["df", "sig1"])
def test_one_signature_shortcut_matches_sf(field: str, label: str) -> None:
    match = verifier._ONE_SIGNATURE.fullmatch(field)
    if match is None or match.group(1) != label:
        return  # the verifier parses this one with sf itself
    members = sf.parse_dictionary(field)
    assert members == {label: (base64.b64decode(match.group(2)), {})}


@pytest.mark.parametrize(
    "field",
    [
        content_digest(b"body"),
        content_digest(b"other"),
        content_digest(b"body", ("sha-256", "sha-512")),
        content_digest(b"body", ("sha-512",)),
        content_digest(b"body") + " ",
        "sha-256=:" + base64.b64encode(b"x" * 32).decode() + ":",
        "sha-256=:!!:",
        "sha-256=:",
        "",
    ],
)
def test_sha256_shortcut_matches_check_content_digest(field: str) -> None:
    general = _outcome(check_content_digest, field, b"body")
    if verifier._sha256_field_matches(field, b"body"):
        assert general == ("ok", "sha-256")
