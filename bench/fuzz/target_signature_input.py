"""Fuzz target: the ``Signature-Input`` field (RFC 9421 section 4.1, an RFC 8941 Dictionary).

Checks, for any field text:

* :func:`datafold_auth.sf.parse_dictionary_canonical` returns or raises ``StructuredFieldError``;
* the canonical member text it returns parses back to the same member (round trip);
* when the regular-expression fast path accepts the text, ``http-sf`` parses it to the same value;
* the verifier's one-member shortcut (``sf.match_one_inner_list``, cached component lists) selects
  the same member, components, parameters, text and plan as its general code, or raises the same error;
* :meth:`Verifier.verify` of a request carrying it returns or raises a typed error.
"""

from __future__ import annotations

import http_sf
from _harness import KEY_A, NOW, Finding, Signer, decode_message, request_of, signed_message, typed, verifier

from datafold_auth import sf
from datafold_auth import verifier as verifier_module
from datafold_auth.errors import DatafoldAuthError
from datafold_auth.profile import DEFAULT_POLICY, VerificationPolicy

_POLICIES = [DEFAULT_POLICY, VerificationPolicy(tag=None, max_components=3)]


def _selection(function, *args):  # type: ignore[no-untyped-def]
    """What ``function`` selects, comparably: components as a list, a plan as its prefixes and names."""
    try:
        label, components, params, serialized, steps = function(*args)
    except DatafoldAuthError as exc:
        return ("error", exc.reason, str(exc))
    planned = None if steps is None else (tuple(prefix for prefix, _ in steps.steps), steps.covered)
    return (label, list(components), params, serialized, planned)

_EXOTIC = [
    ("X-Dict", 'a=1, b=(x "y");p, c=%"d%c3%a9"'),
    ("X-List", "1, (a b), ?0"),
    ("Priority", "u=1, i"),
    ("Cache-Status", "a;hit, b"),
]
_SIGNED = [
    signed_message(Signer(KEY_A), "GET", "/v1/items?page=2&q=a+b", headers=_EXOTIC),
    signed_message(Signer(KEY_A), "POST", "/v1/items", b'{"a":1}', [("Content-Type", "application/json")]),
    signed_message(Signer(KEY_A, expires_in=None, label="sig-1", tag=None), "DELETE", "/x"),
]


def _field(message: bytes, name: str) -> str:
    return next(v for k, v in decode_message(message)[2] if k == name)


_TEMPLATE = _SIGNED[0]


def seeds() -> list[bytes]:
    inputs = [_field(m, "Signature-Input").encode("latin-1") for m in _SIGNED]
    params = inputs[0].decode("latin-1").split(")", 1)[1]  # ;created=...;keyid=... of a valid signature
    exotic = (
        '"@query-param";name="page" "@query-param";name="q" "host";bs "x-dict";key="a" "x-dict";key="b"'
        ' "priority";sf "cache-status";sf "@target-uri" "@request-target" "@scheme"'
    )
    return [
        *inputs,
        f'df=("@method" "@authority" "@path" "@query" {exotic}){params}'.encode("latin-1"),
        b'df=("@method" "@authority");created=1;keyid="k\\"x";alg=ed25519, b=("a";sf;key="v";bs;tr);x=1.5',
        b'a=(), b=?0, c=:AAA=:;p=-12, d=%"caf%c3%a9", e=@1700000000, f=("x" ("y"))',
        b'df=("@query-param";name="q" "content-digest";sf "x";bs);created=1800000000',
    ]


def test_one_input(data: bytes) -> None:
    text = data.decode("latin-1")
    result = typed(sf.parse_dictionary_canonical, text)
    if result is not None:
        members, texts = result
        for key, member in members.items():
            again = sf.parse_dictionary(f"{key}={texts[key]}")[key]
            if again != member:
                raise Finding(f"canonical text {texts[key]!r} of {key!r} parses to {again!r}, not {member!r}")
    fast = sf._parse_fast(text)
    if fast is not None:
        reference = http_sf.parse(text.encode("latin-1"), tltype="dictionary")
        if reference != fast:
            raise Finding(f"fast path {fast!r} differs from http-sf {reference!r}")
    for policy in _POLICIES:
        shortcut = _selection(verifier_module._chosen_member, [text], policy)
        general = _selection(verifier_module._chosen_member_general, text, policy)
        if shortcut != general:
            raise Finding(f"one-member shortcut {shortcut!r} differs from the general code {general!r}")
    headers = [(k, text if k == "Signature-Input" else v) for k, v in decode_message(_TEMPLATE)[2]]
    request = request_of(_TEMPLATE)
    request.headers = headers
    typed(verifier().verify, request, NOW)
