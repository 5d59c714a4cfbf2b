"""Component values (RFC 9421 sections 2.1 and 2.2) and signature base rules."""

from __future__ import annotations

import pytest

from datafold_auth import Reason, Request, SignatureError
from datafold_auth.signature_base import component_value, signature_base


def _req(headers: list[tuple[str, str]] | None = None, url: str = "https://www.Example.com:443/path?param=value&foo=bar&baz=batman&qux=") -> Request:
    return Request.from_url("POST", url, headers or [])


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("@method", {}, "POST"),
        ("@target-uri", {}, "https://www.example.com/path?param=value&foo=bar&baz=batman&qux="),
        ("@authority", {}, "www.example.com"),
        ("@scheme", {}, "https"),
        ("@request-target", {}, "/path?param=value&foo=bar&baz=batman&qux="),
        ("@path", {}, "/path"),
        ("@query", {}, "?param=value&foo=bar&baz=batman&qux="),
        ("@query-param", {"name": "baz"}, "batman"),
        ("@query-param", {"name": "qux"}, ""),
        ("@query-param", {"name": "param"}, "value"),
    ],
)
def test_derived_components_rfc_examples(name: str, params: dict[str, object], expected: str) -> None:
    assert component_value(_req(), (name, params)) == expected


def test_query_param_reencoding_rfc_2_2_8() -> None:
    # RFC 9421 section 2.2.8 example: var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something
    url = "https://example.com/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something"
    req = Request.from_url("GET", url)
    assert component_value(req, ("@query-param", {"name": "var"})) == "this+is+a+big%0Amultiline+value"
    assert component_value(req, ("@query-param", {"name": "bar"})) == "with+plus+whitespace"
    assert component_value(req, ("@query-param", {"name": "fa%C3%A7ade%22%3A+"})) == "something"


def test_query_absent_and_empty() -> None:
    assert component_value(Request.from_url("GET", "https://e.com/x"), ("@query", {})) == "?"
    assert component_value(Request.from_url("GET", "https://e.com/x?"), ("@query", {})) == "?"
    assert component_value(Request.from_url("GET", "http://e.com:8080"), ("@authority", {})) == "e.com:8080"
    assert component_value(Request.from_url("GET", "http://e.com:80"), ("@path", {})) == "/"


def test_header_whitespace_obs_fold_and_repeats_rfc_2_1() -> None:
    req = _req(
        [
            ("X-OWS-Header", "   Leading and trailing whitespace.   "),
            ("X-Obs-Fold-Header", "Obsolete\r\n    line folding."),
            ("Cache-Control", "max-age=60"),
            ("Cache-Control", "   must-revalidate"),
            ("X-Empty-Header", ""),
        ]
    )
    assert component_value(req, ("x-ows-header", {})) == "Leading and trailing whitespace."
    assert component_value(req, ("x-obs-fold-header", {})) == "Obsolete line folding."
    assert component_value(req, ("cache-control", {})) == "max-age=60, must-revalidate"
    assert component_value(req, ("x-empty-header", {})) == ""


def test_structured_field_parameters() -> None:
    req = _req([("Example-Dict", ' a=1,    b=2;x=1;y=2,   c=(a   b   c)  '), ("Example-Header", "value, with, lots"), ("Example-Header", "of, commas")])
    assert component_value(req, ("example-dict", {"key": "a"})) == "1"
    assert component_value(req, ("example-dict", {"key": "b"})) == "2;x=1;y=2"
    assert component_value(req, ("example-dict", {"key": "c"})) == "(a b c)"
    assert component_value(req, ("example-header", {"bs": True})) == ":dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:"
    sig_req = _req([("Signature-Input", ' sig1=("@method"   "@path");created=1')])
    assert component_value(sig_req, ("signature-input", {"sf": True})) == 'sig1=("@method" "@path");created=1'


@pytest.mark.parametrize(
    ("component", "reason"),
    [
        (("x-missing", {}), Reason.MISSING_COMPONENT),
        (("@query-param", {"name": "nope"}), Reason.MISSING_COMPONENT),
        (("@status", {}), Reason.UNSUPPORTED_COMPONENT),
        (("@signature-params", {}), Reason.UNSUPPORTED_COMPONENT),
        (("@method", {"x": True}), Reason.UNSUPPORTED_COMPONENT),
        (("content-type", {"req": True}), Reason.UNSUPPORTED_COMPONENT),
        (("content-type", {"sf": True}), Reason.UNSUPPORTED_COMPONENT),
        (("example-dict", {"key": "zz"}), Reason.MISSING_COMPONENT),
    ],
)
def test_component_errors(component: tuple[str, dict[str, object]], reason: Reason) -> None:
    req = _req([("content-type", "text/plain"), ("example-dict", "a=1")])
    with pytest.raises(SignatureError) as info:
        component_value(req, component)
    assert info.value.reason is reason


def test_repeated_query_param_is_refused() -> None:
    with pytest.raises(SignatureError) as info:
        component_value(Request.from_url("GET", "https://e.com/?a=1&a=2"), ("@query-param", {"name": "a"}))
    assert info.value.reason is Reason.UNSUPPORTED_COMPONENT


def test_base_refuses_duplicates_and_non_ascii() -> None:
    req = _req([("x-name", "caf\u00e9")])
    with pytest.raises(SignatureError):
        signature_base(req, [("@method", {}), ("@method", {})], '("@method" "@method")')
    with pytest.raises(SignatureError):
        signature_base(req, [("x-name", {})], '("x-name")')
    assert signature_base(req, [("x-name", {"bs": True})], '("x-name";bs)').startswith(b'"x-name";bs: :Y2Fm6Q==:')
