"""RFC 8941 parsing and serialization against the HTTP WG structured-field test suite.

``date.json`` and ``display-string.json`` are RFC 9651 additions (Date and
Display String types) that no DataFold field uses; they are skipped.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import http_sf
import pytest
from hypothesis import given
from hypothesis import strategies as st

from datafold_auth import sf
from datafold_auth.errors import StructuredFieldError

from .conftest import VECTORS

SUITE = VECTORS / "structured-field-tests"
FILES = [
    "item", "list", "dictionary", "param-dict", "param-list", "param-listlist", "listlist",
    "string", "string-generated", "token", "token-generated", "number", "number-generated",
    "binary", "boolean", "key-generated", "large-generated", "examples",
]  # fmt: skip
SKIPPED = {"date": "RFC 9651 Date type; not used by any DataFold field",
           "display-string": "RFC 9651 Display String type; not used by any DataFold field"}  # fmt: skip


def _cases(names: list[str], folder: Path = SUITE) -> list[Any]:
    cases = []
    for name in names:
        for case in json.loads((folder / f"{name}.json").read_text()):
            cases.append(pytest.param(case, id=f"{name}: {case['name']}"))
    return cases


def _from_expected(value: Any) -> Any:
    """Turn the suite's JSON encoding into the http-sf data model."""
    if isinstance(value, dict) and "__type" in value:
        kind = value["__type"]
        if kind == "token":
            return sf.Token(value["value"])
        if kind == "binary":
            return base64.b32decode(value["value"])
        raise ValueError(kind)
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def _params(pairs: list[Any]) -> dict[str, Any]:
    return {k: _from_expected(v) for k, v in pairs}


def _member(value: Any) -> Any:
    bare, params = value
    if isinstance(bare, list):
        return ([(_from_expected(b), _params(p)) for b, p in bare], _params(params))
    return (_from_expected(bare), _params(params))


def _expected(case: dict[str, Any]) -> Any:
    kind, expected = case["header_type"], case["expected"]
    if kind == "dictionary":
        return {k: _member(v) for k, v in expected}
    if kind == "list":
        return [_member(v) for v in expected]
    return _member(expected)


def _normalise(value: Any) -> Any:
    """Compare numbers by value and tokens by text."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, http_sf.Token):
        return ("token", str(value))
    if isinstance(value, float | Decimal) and not isinstance(value, bool):
        return ("decimal", Decimal(str(value)))
    return value


@pytest.mark.parametrize("case", _cases(FILES))
def test_parse(case: dict[str, Any]) -> None:
    raw = ", ".join(case["raw"])
    kind = case["header_type"]
    if case.get("must_fail"):
        with pytest.raises(StructuredFieldError):
            sf.parse(raw, kind)
        return
    try:
        parsed = sf.parse(raw, kind)
    except StructuredFieldError:
        if case.get("can_fail"):
            return
        raise
    assert _normalise(parsed) == _normalise(_expected(case))
    # Serialization of the parsed value gives the canonical form.
    canonical = case.get("canonical", case["raw"])
    serialized = {"dictionary": sf.serialize_dictionary, "list": sf.serialize_list, "item": sf.serialize_item}[kind](
        parsed
    )
    assert serialized == ", ".join(canonical) if canonical else serialized == ""


@pytest.mark.parametrize("case", _cases(["key-generated", "number", "string-generated", "token-generated"],
                                        SUITE / "serialisation-tests"))  # fmt: skip
def test_serialise(case: dict[str, Any]) -> None:
    kind = case["header_type"]
    serializer = {"dictionary": sf.serialize_dictionary, "list": sf.serialize_list, "item": sf.serialize_item}[kind]
    if case.get("must_fail"):
        with pytest.raises(StructuredFieldError):
            serializer(_expected(case))
        return
    assert serializer(_expected(case)) == ", ".join(case["canonical"])


def test_skipped_files_are_the_rfc9651_ones() -> None:
    """The suite files not run above are exactly the RFC 9651-only types."""
    present = {p.stem for p in SUITE.glob("*.json")}
    assert present - set(FILES) == set(SKIPPED)


# ---- the fast path agrees with http-sf on everything it accepts -----------

_key = st.from_regex(r"\A[a-z*][a-z0-9_.*-]{0,8}\Z")
_string = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
_int = st.integers(-999_999_999_999_999, 999_999_999_999_999)
_param_value = st.one_of(_string, _int, st.just(True), st.booleans(), st.binary(max_size=6))
_params_st = st.dictionaries(_key, _param_value, max_size=4)
_inner = st.tuples(st.lists(st.tuples(_string, _params_st), max_size=4), _params_st)
_bytes_member = st.tuples(st.binary(max_size=70), _params_st)
_dict_st = st.dictionaries(_key, st.one_of(_inner, _bytes_member), min_size=1, max_size=3)


@given(_dict_st)
def test_fast_path_matches_http_sf(value: dict[str, Any]) -> None:
    text = sf.serialize_dictionary(value)
    reference = http_sf.parse(text.encode(), tltype="dictionary")
    assert sf.parse_dictionary(text) == reference
    fast = sf._parse_fast(text)
    if fast is not None:
        assert fast == reference


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60))
def test_fast_path_never_accepts_what_http_sf_refuses(text: str) -> None:
    fast = sf._parse_fast(text)
    try:
        reference = http_sf.parse(text.encode(), tltype="dictionary")
    except http_sf.StructuredFieldError:
        assert fast is None
        return
    if fast is not None:
        assert fast == reference


def test_fast_path_takes_signer_output() -> None:
    text = 'df=("@method" "@authority" "@path" "@query");created=1;expires=301;nonce="n";keyid="k";alg="ed25519";tag="datafold"'
    assert sf._parse_fast(text) == http_sf.parse(text.encode(), tltype="dictionary")
