"""Structured Field Values (RFC 8941): parsing and serialization.

Parsing is done by the ``http-sf`` library (the HTTP WG's reference-grade
parser by its editor), with one exception on the hot path: a Dictionary whose
text is already in the exact canonical form that RFC 8941 section 4.1
serialization produces *and* that uses only Strings without escapes, Integers,
Byte Sequences and Boolean true parameters (which is what every DataFold signer
sends) is parsed by anchored regular expressions. For any other text the fast
path declines and ``http-sf`` parses it. ``tests/test_sf.py`` proves that both
paths give identical results and that the combination passes the HTTP WG
structured-field test suite.

Serialization (RFC 8941 section 4.1) is implemented here, because the signer
and verifier must produce the ``@signature-params`` value byte for byte and
need it fast.

Data model (the ``http-sf`` one):

* Dictionary: ``dict[str, Item | InnerList]``
* Item: ``(bare_item, params)``; InnerList: ``(list[Item], params)``
* params: ``dict[str, bare_item]``
* bare items: ``int``, ``Decimal``/``float``, ``str``, :class:`Token`, ``bytes``, ``bool``
"""

from __future__ import annotations

import base64
import binascii
import re
from decimal import Decimal
from typing import Any, TypeAlias, cast

import http_sf
from http_sf import Token

from .errors import StructuredFieldError

BareItem: TypeAlias = Any
Params: TypeAlias = dict[str, BareItem]
Item: TypeAlias = tuple[BareItem, Params]
InnerList: TypeAlias = tuple[list[Item], Params]
Member: TypeAlias = Item | InnerList
Dictionary: TypeAlias = dict[str, Member]

_KEY = r"[a-z*][a-z0-9_.*-]*"
_STR = r'"[ !#-\[\]-~]*"'  # a String with no escapes
_INT = r"(?:0|-?[1-9][0-9]{0,14})"
_PARAM = rf"(?:;{_KEY}(?:={_STR}|={_INT})?)"
_BYTES = r":(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?:"
_FAST_MEMBER = re.compile(rf"({_KEY})=(\((?:{_STR}(?: {_STR})*)?\)|{_BYTES})({_PARAM}*)")
_FAST_PARAM = re.compile(rf";({_KEY})(=(?:{_STR}|{_INT}))?")

# The same grammar with possessive quantifiers (it has one way to match any text, so they
# change no outcome; they spare the engine its backtracking bookkeeping).
_KEY_P = r"[a-z*][a-z0-9_.*-]*+"
_STR_P = r'"[ !#-\[\]-~]*+"'
_ONE_INNER_LIST = re.compile(
    rf"({_KEY_P})=(\((?:{_STR_P}(?: {_STR_P})*+)?+\))((?:;{_KEY_P}(?:={_STR_P}|={_INT})?+)*+)"
)

_CHARS_P = r"([ !#-\[\]-~]*+)"  # a String's characters, no escapes
_DATAFOLD_LAYOUT = re.compile(
    rf"({_KEY_P})=(\((?:{_STR_P}(?: {_STR_P})*+)?+\));created=({_INT})(?:;expires=({_INT}))?+"
    rf'(?:;nonce="{_CHARS_P}")?+;keyid="{_CHARS_P}";alg="{_CHARS_P}"(?:;tag="{_CHARS_P}")?+'
)
""":data:`_ONE_INNER_LIST` with the parameters in the order every DataFold signer writes them."""

_KEY_RE = re.compile(rf"^{_KEY}$")
_TOKEN_RE = re.compile(r"^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$")
_STRING_RE = re.compile(r"^[ -~]*$")


def _fast_params(text: str) -> Params:
    params: Params = {}
    for key, value in _FAST_PARAM.findall(text):
        if not value:
            params[key] = True
        elif value[1] == '"':
            params[key] = value[2:-1]
        else:
            params[key] = int(value[1:])
    return params


def _parse_fast(text: str, raw: dict[str, str] | None = None) -> Dictionary | None:
    """Parse canonical, escape-free text; ``None`` means "not handled here".

    If ``raw`` is given it receives each member's value text (already canonical).
    """
    result: Dictionary = {}
    pos, end = 0, len(text)
    match = _FAST_MEMBER.match
    while True:
        m = match(text, pos)
        if m is None:
            return None
        key, value, params_text = m.groups()
        params = _fast_params(params_text) if params_text else {}
        if value[0] == "(":
            # Strings here hold no '"', so '" "' only ever separates two items.
            items = value[2:-2].split('" "') if len(value) > 2 else []
            result[key] = ([(s, {}) for s in items], params)
        else:
            result[key] = (base64.b64decode(value[1:-1]), params)
        pos = m.end()
        if raw is not None:
            raw[key] = text[m.start(2) : pos]
        if pos == end:
            return result
        if text[pos : pos + 2] != ", ":
            return None
        pos += 2


def match_one_inner_list(text: str) -> tuple[str, str, Params] | None:
    """The fast path of :func:`parse_dictionary_canonical` for the usual Signature-Input: one member.

    Returns:
        ``(key, inner, params)`` when ``text`` is exactly one canonical,
        escape-free member whose value is an Inner List of Strings without
        parameters: ``key`` the member's key, ``inner`` the list's text from
        ``(`` to ``)`` (its items are ``inner[2:-2].split('" "')``, none for
        ``()``), ``params`` the list's parameters. Then
        ``parse_dictionary_canonical(text)`` gives
        ``{key: ([(item, {}) ...], params)}`` and ``{key: text[len(key) + 1:]}``
        (``tests/test_core_fast_paths.py`` checks it). ``None`` means "not handled here".
    """
    m = _DATAFOLD_LAYOUT.fullmatch(text)
    if m is not None:  # the usual parameters, in the usual order: no parameter loop
        key, inner, created, expires, nonce, keyid, alg, tag = m.groups()
        params: Params = {"created": int(created)}
        if expires is not None:
            params["expires"] = int(expires)
        if nonce is not None:
            params["nonce"] = nonce
        params["keyid"] = keyid
        params["alg"] = alg
        if tag is not None:
            params["tag"] = tag
        return key, inner, params
    m = _ONE_INNER_LIST.fullmatch(text)
    if m is None:
        return None
    key, inner, params_text = m.groups()
    return key, inner, _fast_params(params_text) if params_text else {}


def parse_dictionary(value: str | bytes) -> Dictionary:
    """Parse a Dictionary field value (RFC 8941 section 4.2.2).

    Args:
        value: the combined field value (several field lines joined by ``", "``).

    Returns:
        the dictionary, members in order; duplicate keys keep the last value.

    Raises:
        StructuredFieldError: the text is not a valid Dictionary.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    fast = _parse_fast(text)
    if fast is not None:
        return fast
    try:
        parsed = http_sf.parse(text.encode("latin-1"), tltype="dictionary")
    except (http_sf.StructuredFieldError, UnicodeEncodeError, ValueError) as exc:
        raise StructuredFieldError(f"not a structured field dictionary: {exc}") from None
    if not isinstance(parsed, dict):  # pragma: no cover - http-sf always returns a dict here
        raise StructuredFieldError("not a dictionary")
    return cast(Dictionary, parsed)


def parse_dictionary_canonical(value: str) -> tuple[Dictionary, dict[str, str]]:
    """Parse a Dictionary and also return each member's canonical serialization.

    Returns:
        ``(dictionary, texts)`` where ``texts[key]`` is the serialized member
        value (what ``key=`` is followed by in canonical form), as needed for
        ``@signature-params`` (RFC 9421 section 2.3).

    Raises:
        StructuredFieldError: the text is not a valid Dictionary, or a member
            has no serialization.
    """
    texts: dict[str, str] = {}
    fast = _parse_fast(value, texts)
    if fast is not None:
        return fast, texts
    parsed = parse_dictionary(value)
    return parsed, {key: _serialize_member(member) for key, member in parsed.items()}


def parse(value: str | bytes, kind: str) -> Any:
    """Parse a field value of the given top-level ``kind``: ``"item"``, ``"list"`` or ``"dictionary"``.

    Raises:
        StructuredFieldError: the text is not valid for that type.
    """
    if kind == "dictionary":
        return parse_dictionary(value)
    raw = value.encode("latin-1") if isinstance(value, str) else value
    try:
        return http_sf.parse(raw, tltype=kind)
    except (http_sf.StructuredFieldError, UnicodeEncodeError, ValueError) as exc:
        raise StructuredFieldError(f"not a structured field {kind}: {exc}") from None


# --------------------------------------------------------------------------
# Serialization (RFC 8941 section 4.1)


_VALID_KEYS: set[str] = set()


def serialize_key(key: str) -> str:
    """Serialize a key (section 4.1.1.3); raise :class:`StructuredFieldError` if invalid."""
    if key in _VALID_KEYS:
        return key
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise StructuredFieldError(f"invalid structured field key {key!r}")
    if len(_VALID_KEYS) < 1024:
        _VALID_KEYS.add(key)
    return key


def serialize_bare_item(value: BareItem) -> str:
    """Serialize a bare item (section 4.1.3.1).

    Raises:
        StructuredFieldError: the value has no structured field representation.
    """
    if type(value) is str:
        if value.isascii() and value.isprintable():
            if '"' in value or "\\" in value:
                return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            return '"' + value + '"'
        raise StructuredFieldError("strings may hold printable ASCII only")
    if value is True:
        return "?1"
    if value is False:
        return "?0"
    if isinstance(value, int):
        if not -999_999_999_999_999 <= value <= 999_999_999_999_999:
            raise StructuredFieldError("integer out of range")
        return str(value)
    if isinstance(value, Token):
        text = str(value)
        if not _TOKEN_RE.match(text):
            raise StructuredFieldError(f"invalid token {text!r}")
        return text
    if isinstance(value, str):
        if not _STRING_RE.match(value):
            raise StructuredFieldError("strings may hold printable ASCII only")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bytes | bytearray):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, float | Decimal):
        return _serialize_decimal(Decimal(str(value)) if isinstance(value, float) else value)
    raise StructuredFieldError(f"cannot serialize {type(value).__name__}")


def _serialize_decimal(value: Decimal) -> str:
    rounded = value.quantize(Decimal("0.001"), rounding="ROUND_HALF_EVEN")
    integer_part = abs(int(rounded))
    if integer_part > 999_999_999_999:
        raise StructuredFieldError("decimal out of range")
    text = format(rounded, "f")
    if "." not in text:
        text += ".0"
    head, frac = text.split(".")
    frac = frac.rstrip("0") or "0"
    if head == "-0" and frac == "0":
        head = "0"
    return f"{head}.{frac}"


def serialize_params(params: Params) -> str:
    """Serialize parameters (section 4.1.1.2); ``True`` values are written bare."""
    out = []
    for key, value in params.items():
        if value is True:
            out.append(";" + serialize_key(key))
        else:
            out.append(";" + serialize_key(key) + "=" + serialize_bare_item(value))
    return "".join(out)


def serialize_item(item: Item) -> str:
    """Serialize an Item ``(bare_item, params)`` (section 4.1.3)."""
    value, params = item
    return serialize_bare_item(value) + serialize_params(params)


def serialize_inner_list(inner: InnerList) -> str:
    """Serialize an Inner List ``([items], params)`` (section 4.1.1.1)."""
    items, params = inner
    return "(" + " ".join(serialize_item(i) for i in items) + ")" + serialize_params(params)


def _serialize_member(member: Member) -> str:
    value, _ = member
    if isinstance(value, list):
        return serialize_inner_list(member)
    return serialize_item(member)


def serialize_list(members: list[Member]) -> str:
    """Serialize a List (section 4.1.1)."""
    return ", ".join(_serialize_member(m) for m in members)


def serialize_dictionary(members: Dictionary) -> str:
    """Serialize a Dictionary (section 4.1.2); a ``True`` item value is written bare."""
    out = []
    for key, member in members.items():
        value, params = member
        if value is True:
            out.append(serialize_key(key) + serialize_params(params))
        else:
            out.append(serialize_key(key) + "=" + _serialize_member(member))
    return ", ".join(out)


def decode_base64(text: str) -> bytes:
    """Strict base64 (RFC 4648 section 4) as used in Byte Sequences; raise on bad input."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StructuredFieldError("invalid base64") from exc


__all__ = [
    "Dictionary",
    "InnerList",
    "Item",
    "Params",
    "Token",
    "decode_base64",
    "parse",
    "parse_dictionary",
    "parse_dictionary_canonical",
    "serialize_bare_item",
    "serialize_dictionary",
    "serialize_inner_list",
    "serialize_item",
    "serialize_key",
    "serialize_list",
    "serialize_params",
]
