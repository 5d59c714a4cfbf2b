"""Component values and the signature base (RFC 9421 sections 2 and 2.5).

A covered component is a component identifier: a name (a lowercase field
name, or a derived component starting with ``@``) plus parameters, written as
an RFC 8941 Item such as ``"content-type"`` or ``"@query-param";name="id"``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from . import sf
from .errors import Reason, SignatureError, StructuredFieldError
from .message import Request

Component = tuple[str, dict[str, object]]
"""A component identifier: ``(name, params)``, e.g. ``("@query-param", {"name": "id"})``."""

_OBS_FOLD = re.compile(r"\r?\n[ \t]+")
_SF_TYPES = {
    "signature-input": "dictionary",
    "signature": "dictionary",
    "content-digest": "dictionary",
    "repr-digest": "dictionary",
    "want-content-digest": "dictionary",
    "accept-signature": "dictionary",
    "priority": "dictionary",
    "cache-status": "list",
}
_HEADER_PARAMS = frozenset({"sf", "key", "bs"})

_Memo = dict[Any, Any]
"""Parses shared by the components of one signature base: the query and each
structured field are parsed once, however many components read them."""


def _missing(detail: str) -> SignatureError:
    return SignatureError(detail, Reason.MISSING_COMPONENT)


def _unsupported(detail: str) -> SignatureError:
    return SignatureError(detail, Reason.UNSUPPORTED_COMPONENT)


def _derived_value(request: Request, name: str, params: dict[str, object], memo: _Memo) -> str:
    if name == "@method":
        return request.method
    if name == "@authority":
        return request.normalized_authority
    if name == "@path":
        return request.path or "/"
    if name == "@query":
        return "?" + (request.query or "")
    if name == "@scheme":
        return request.scheme.lower()
    if name == "@target-uri":
        return request.target_uri
    if name == "@request-target":
        return (request.path or "/") + ("" if request.query is None else "?" + request.query)
    if name == "@query-param":
        return _query_param(request, params, memo)
    raise _unsupported(f"derived component {name} is not supported for requests")


def _form_encode(text: str) -> str:
    # HTML URL section 5.2 "application/x-www-form-urlencoded serializing":
    # keep *-._ and alphanumerics, space becomes +, all else percent-encoded.
    return quote_plus(text, safe="*").replace("~", "%7E")


def _query_param(request: Request, params: dict[str, object], memo: _Memo) -> str:
    name = params.get("name")
    if not isinstance(name, str):
        raise _unsupported('@query-param needs a string "name" parameter')
    pairs = memo.get("@query-param")
    if pairs is None:
        pairs = memo["@query-param"] = [
            (_form_encode(k), v) for k, v in parse_qsl(request.query or "", keep_blank_values=True)
        ]
    values = [v for k, v in pairs if k == name]
    if not values:
        raise _missing(f"query parameter {name!r} is not in the request")
    if len(values) > 1:
        # RFC 9421 section 2.2.8: a repeated name cannot be covered on its own.
        raise _unsupported(f"query parameter {name!r} occurs more than once; cover @query instead")
    return _form_encode(values[0])


def _plain_value(request: Request, name: str) -> str:
    """A header field's value without component parameters (RFC 9421 section 2.1)."""
    lines = request.field_values(name)
    if lines is None:
        raise _missing(f"header field {name!r} is not in the request")
    # Strip each line, replace obs-fold, join with ", ".
    if len(lines) == 1:
        value = lines[0]
        if "\n" in value:
            value = _OBS_FOLD.sub(" ", value)
        return value.strip(" \t")
    return ", ".join(_OBS_FOLD.sub(" ", v).strip(" \t") for v in lines)


def _field_value(request: Request, name: str, params: dict[str, object], memo: _Memo) -> str:
    if not params:
        return _plain_value(request, name)
    lines = request.field_values(name)
    if lines is None:
        raise _missing(f"header field {name!r} is not in the request")
    if not params.keys() <= _HEADER_PARAMS:
        raise _unsupported(f"component parameters {sorted(params)} are not supported")
    if "bs" in params:
        if len(params) > 1:
            raise _unsupported("bs cannot be combined with sf or key (RFC 9421 section 2.1.3)")
        try:
            return ", ".join(
                ":" + base64.b64encode(v.strip(" \t").encode("latin-1")).decode("ascii") + ":" for v in lines
            )
        except UnicodeEncodeError:
            raise _unsupported(f"header field {name!r} has a value that is not latin-1 text") from None
    combined = ", ".join(_OBS_FOLD.sub(" ", v).strip(" \t") for v in lines)
    kind = "dictionary" if "key" in params else _SF_TYPES.get(name)
    if kind is None:
        raise _unsupported(f"the structured type of {name!r} is unknown; cover it without sf")
    parsed = memo.get((name, kind))
    if parsed is None:
        try:
            parsed = memo[(name, kind)] = sf.parse(combined, kind)
        except StructuredFieldError:
            raise _missing(f"header field {name!r} is not a valid structured field") from None
    if "key" in params:
        key = params["key"]
        if not isinstance(key, str) or key not in parsed:
            raise _missing(f"dictionary member {key!r} of {name!r} is absent")
        member = parsed[key]
        if isinstance(member[0], list):
            return sf.serialize_inner_list(member)
        return sf.serialize_item(member)
    if kind == "dictionary":
        return sf.serialize_dictionary(parsed)
    if kind == "list":
        return sf.serialize_list(parsed)
    return sf.serialize_item(parsed)


def component_value(request: Request, component: Component) -> str:
    """The value of one covered component for ``request`` (RFC 9421 sections 2.1, 2.2).

    Raises:
        SignatureError: ``missing_component`` if the request lacks it,
            ``unsupported_component`` if the identifier is unknown or not
            allowed for requests (``@status``, ``req``, ``tr``, ...).
    """
    return _component_value(request, component, {})


def _component_value(request: Request, component: Component, memo: _Memo) -> str:
    name, params = component
    if name.startswith("@"):
        if name == "@signature-params":
            raise _unsupported("@signature-params cannot be a covered component")
        if params and name != "@query-param":
            raise _unsupported(f"{name} takes no parameters")
        return _derived_value(request, name, params, memo)
    return _field_value(request, name, params, memo)


_PLAIN_IDS: dict[str, str] = {}


def serialize_component_id(component: Component) -> str:
    """The component identifier as an RFC 8941 Item, e.g. ``"@query-param";name="id"``.

    Raises:
        StructuredFieldError: the name or a parameter cannot be serialized.
    """
    name, params = component
    if params:
        return sf.serialize_item((name, params))
    ident = _PLAIN_IDS.get(name)
    if ident is None:
        ident = sf.serialize_bare_item(name)
        if len(_PLAIN_IDS) < 4096:
            _PLAIN_IDS[name] = ident
    return ident


def _plain_field(name: str) -> Callable[[Request], str]:
    def value(request: Request) -> str:
        return _plain_value(request, name)

    return value


_PLAIN_DERIVED: dict[str, Callable[[Request], str]] = {
    "@method": lambda request: request.method,
    "@authority": lambda request: request.normalized_authority,
    "@path": lambda request: request.path or "/",
    "@query": lambda request: "?" + (request.query or ""),
    "@scheme": lambda request: request.scheme.lower(),
    "@target-uri": lambda request: request.target_uri,
    "@request-target": lambda request: (request.path or "/") + ("" if request.query is None else "?" + request.query),
}


class Plan:
    """The precomputed steps of a signature base for one list of covered components without parameters.

    Attributes:
        steps: ``(line prefix, value function)`` per component, in order; the
            prefix is the serialized identifier followed by ``": "``.
        covered: the covered component names.
    """

    __slots__ = ("covered", "steps")

    def __init__(self, steps: tuple[tuple[str, Callable[[Request], str]], ...], covered: frozenset[str]) -> None:
        self.steps = steps
        self.covered = covered


_PLANS: dict[tuple[str, ...], Plan | None] = {}
_MAX_PLANS = 256


def plan(names: tuple[str, ...]) -> Plan | None:
    """The cached :class:`Plan` for covered components ``names`` (each without parameters).

    Returns:
        the plan, or ``None`` when these components need the general path
        (a name listed twice, a derived component that is unknown or needs
        parameters, or a name that cannot be serialized): that path then
        raises the error at the same point as without a plan.
    """
    try:
        return _PLANS[names]
    except KeyError:
        pass
    steps: list[tuple[str, Callable[[Request], str]]] = []
    result: Plan | None = None
    try:
        for name in names:
            if name.startswith("@"):
                value = _PLAIN_DERIVED.get(name)
                if value is None:
                    break
            else:
                value = _plain_field(name)
            steps.append((serialize_component_id((name, {})) + ": ", value))
        else:
            if len(set(names)) == len(names):
                result = Plan(tuple(steps), frozenset(names))
    except StructuredFieldError:
        result = None
    if len(_PLANS) >= _MAX_PLANS:  # full (a flood of odd lists, perhaps): start over rather than stop caching
        _PLANS.clear()
    _PLANS[names] = result
    return result


def planned_signature_base(request: Request, steps: Plan, signature_params: str) -> bytes:
    """:func:`signature_base` for the components of ``steps`` (a :func:`plan`); same result, same errors."""
    lines = []
    for prefix, value_of in steps.steps:
        value = value_of(request)
        if "\n" in value or "\r" in value:
            raise _unsupported(f"component {prefix[:-2]} contains a line break")
        lines.append(prefix + value)
    lines.append('"@signature-params": ' + signature_params)
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise _unsupported("a covered component value is not ASCII; cover the field with ;bs") from None


def signature_base(request: Request, components: Sequence[Component], signature_params: str) -> bytes:
    """Build the signature base (RFC 9421 section 2.5).

    Args:
        request: the request parts.
        components: the covered components, in order.
        signature_params: the serialized ``@signature-params`` value, i.e. the
            Inner List of the Signature-Input member, e.g.
            ``("@method" "@path");created=1618884473;keyid="..."``.

    Returns:
        the signature base as ASCII bytes (no trailing newline).

    Raises:
        SignatureError: ``missing_component``/``unsupported_component`` as for
            :func:`component_value`; ``unsupported_component`` too for a
            component listed twice or a value that is not ASCII.
    """
    lines = []
    seen: set[str] = set()
    memo: _Memo = {}
    for component in components:
        ident = serialize_component_id(component)
        if ident in seen:
            raise _unsupported(f"component {ident} is covered twice (RFC 9421 section 2.5)")
        seen.add(ident)
        value = _component_value(request, component, memo)
        if "\n" in value or "\r" in value:
            raise _unsupported(f"component {ident} contains a line break")
        lines.append(f"{ident}: {value}")
    lines.append(f'"@signature-params": {signature_params}')
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise _unsupported("a covered component value is not ASCII; cover the field with ;bs") from None


__all__ = ["Component", "component_value", "serialize_component_id", "signature_base"]
