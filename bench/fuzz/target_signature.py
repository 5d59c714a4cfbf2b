"""Fuzz target: the ``Signature`` field (RFC 9421 section 4.2, an RFC 8941 Dictionary of Byte Sequences).

Checks, for any field text:

* :func:`datafold_auth.sf.parse_dictionary` returns or raises ``StructuredFieldError``;
* what parses and serializes (:func:`sf.serialize_dictionary`) parses back to the same value;
* :meth:`Verifier.verify` of an otherwise valid request carrying it returns or raises a typed error.
"""

from __future__ import annotations

from _harness import KEY_A, NOW, Finding, Signer, decode_message, request_of, signed_message, typed, verifier

from datafold_auth import sf

_TEMPLATE = signed_message(Signer(KEY_A), "POST", "/v1/items", b'{"a":1}', [("Content-Type", "application/json")])


def seeds() -> list[bytes]:
    signature = next(v for k, v in decode_message(_TEMPLATE)[2] if k == "Signature")
    return [
        signature.encode("latin-1"),
        b"df=:" + b"A" * 86 + b"==:, other=:AAAA:;x=1",
        b'df=:AAAA:, df-new=("a" "b");p="q", t=?1, u=1.25, v=%"x", w=@1',
    ]


def test_one_input(data: bytes) -> None:
    text = data.decode("latin-1")
    parsed = typed(sf.parse_dictionary, text)
    if parsed is not None:
        serialized = typed(sf.serialize_dictionary, parsed)
        if serialized is not None:
            again = sf.parse_dictionary(serialized)
            if again != parsed:
                raise Finding(f"{text!r} parses to {parsed!r}, whose serialization {serialized!r} parses to {again!r}")
    request = request_of(_TEMPLATE)
    request.headers = [(k, text if k == "Signature" else v) for k, v in request.headers]
    typed(verifier().verify, request, NOW)
