"""The verify path's fast paths give exactly what the general code gives.

* :func:`signature_base.planned_signature_base` (a cached plan per list of
  covered components) against :func:`signature_base.signature_base`: the same
  bytes, or the same exception with the same reason and message;
* the verifier's one-member ``Signature-Input`` shortcut (``sf.match_one_inner_list`` and the
  cached component list) against the general ``Signature-Input`` code;
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
from datafold_auth.profile import DEFAULT_POLICY, VerificationPolicy
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


_INPUT_PARAMS = [
    "",
    ";created=1",
    ';created=1618884473;expires=1618884773;nonce="bm9uY2U";keyid="k-1_x";alg="ed25519";tag="datafold"',
    ';created=1618884473;nonce="bm9uY2U";keyid="k";alg="ed25519";tag="datafold"',
    ';created=1618884473;expires=1618884773;keyid="k";alg="ed25519"',
    ';created=-7;expires=0;nonce="";keyid="";alg="rsa";tag=""',
    ';created=1;expires=2;nonce="a b";keyid="k";alg="ed25519";tag="datafold";x=1',
    ';created=1;expires=2;nonce="n";keyid="k";tag="datafold";alg="ed25519"',
    ';created=1;expires=2;nonce="n";nonce="m";keyid="k";alg="ed25519";tag="datafold"',
    ';created=1;expires=2;nonce="n";keyid="k";alg="ed25519";tag="datafold";tag="other"',
    ';created=01;expires=2;nonce="n";keyid="k";alg="ed25519";tag="datafold"',
    ';keyid="k";tag="datafold";created=1',
    ';tag="other"',
    ';tag="datafold";tag="other"',
    ';tag="other";tag="datafold"',
    ";tag=datafold",
    ';keyid="a;b=c";tag="datafold"',
    ';keyid="";created=-5;tag="datafold"',
    ";created=0123",
    ";created=-0",
    ";created=999999999999999;tag=\"datafold\"",
    ";created=1234567890123456",
    ";created=1.5",
    ";flag;tag=\"datafold\"",
    ";flag=?1",
    ';n="x\\"y"',
    ';n="caf\u00e9"',
    ";UPPER=1",
    "; created=1",
    ";created=1 ",
]
_INPUT_LISTS = [
    '("@method" "@authority" "@path" "@query" "content-digest" "content-type")',
    "()",
    '("@method")',
    '("Content-Type" "@path")',
    '("@Method" "x-a")',
    '("@path" "@path")',
    '("@query-param")',
    '("@query-param";name="id")',
    '("content-type";sf)',
    '("a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" "aa" "ab" "ac" "ad" "ae" "af" "ag")',
    '( "@method")',
    '("@method"  "@path")',
    '("@method" x)',
    ":AAAA:",
]


def _input_texts() -> list[str]:
    rng = random.Random(8941)  # noqa: S311 - a fixed sample of field texts, not a secret
    texts = [f"{label}={inner}{params}" for label in ("df", "sig1", "*x", "A", "") for inner in _INPUT_LISTS for params in _INPUT_PARAMS]
    texts += [f"df={_INPUT_LISTS[0]}{_INPUT_PARAMS[2]}, sig2={inner}" for inner in _INPUT_LISTS]
    alphabet = 'df=()";, @-*:AZaz09\\\t\u00e9'
    for _ in range(3000):
        text = list(rng.choice(texts))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            op = rng.randrange(3)
            if op == 0:
                text.insert(at, rng.choice(alphabet))
            elif op == 1 and at < len(text):
                del text[at]
            elif at < len(text):
                text[at] = rng.choice(alphabet)
        texts.append("".join(text))
    return texts


def _comparable(outcome):  # type: ignore[no-untyped-def]
    """The components as a list, and a :class:`Plan` as what it is made of (plans are cached,
    but not beyond the cache's bound)."""
    if outcome[0] != "ok":
        return outcome
    label, components, params, serialized, steps = outcome[1]
    plan_parts = None if steps is None else (tuple(prefix for prefix, _ in steps.steps), steps.covered)
    return ("ok", (label, list(components), params, serialized, plan_parts))


def test_cached_component_parameters_cannot_be_changed() -> None:
    """The shortcut shares one list of components per field text: their ``{}`` must stay empty."""
    field = 'df=("@method" "x-a");created=1;keyid="k";alg="ed25519";tag="datafold"'
    components = verifier._chosen_member([field], DEFAULT_POLICY)[1]
    assert components == (("@method", {}), ("x-a", {}))
    params = components[1][1]
    for change in (
        lambda: params.__setitem__("sf", True),
        lambda: params.update(sf=True),
        lambda: params.setdefault("sf", True),
        lambda: params.pop("sf"),
        lambda: params.popitem(),
        lambda: params.clear(),
        lambda: params.__delitem__("sf"),
    ):
        with pytest.raises(TypeError):
            change()
    assert verifier._chosen_member([field], DEFAULT_POLICY)[1] == (("@method", {}), ("x-a", {}))


def test_one_signature_input_shortcut_matches_general_path() -> None:
    policies = [
        DEFAULT_POLICY,
        VerificationPolicy(tag=None),
        VerificationPolicy(tag="other", max_components=3),
    ]
    fast = 0
    fast_outcomes = set()
    for text in _input_texts():
        shortcut = sf.match_one_inner_list(text) is not None
        for policy in policies:
            general = _comparable(_outcome(verifier._chosen_member_general, text, policy))
            assert _comparable(_outcome(verifier._chosen_member, [text], policy)) == general, (text, policy.tag)
            if shortcut:
                fast_outcomes.add(general[1] if general[0] != "ok" else "ok")
        if shortcut:
            fast += 1
            members, texts = sf.parse_dictionary_canonical(text)
            label, inner, params = sf.match_one_inner_list(text)  # type: ignore[misc]
            assert members == {label: ([(n, {}) for n in (inner[2:-2].split('" "') if len(inner) > 2 else [])], params)}
            assert texts == {label: text[len(label) + 1 :]}
    layout = sum(1 for text in _input_texts() if sf._DATAFOLD_LAYOUT.fullmatch(text) is not None)
    assert layout > 100 and fast > 300  # the shortcuts were taken, and compared, for many texts,
    # with every outcome they can have
    assert fast_outcomes == {"ok", "wrong_tag", "malformed_signature_input"}


def _signer_requests() -> list[Request]:
    url = "https://Example.COM:443/a%20b/c?x=1&y=%20"
    return [
        Request.from_url("POST", url, [("Content-Type", "application/json")], b'{"a":1}'),
        Request.from_url("POST", url, [("Content-Type", " text/plain "), ("content-type", "charset=x")], b"b"),
        Request.from_url("PUT", url, [("Content-Digest", "sha-256=:stale:")], b"new"),
        Request.from_url("GET", "http://h:8080", [], b""),
        Request.from_url("DELETE", "https://[::1]/p?", [("Content-Type", "x")], b""),
    ]


@pytest.mark.parametrize("expires_in", [None, 60])
def test_signer_uses_the_general_signature_base(expires_in: int | None) -> None:
    """``Signer.sign`` builds its base from a cached plan: what it signs is the general
    :func:`signature_base` of the members it sends, and its Signature-Input is
    :func:`~datafold_auth.signer.serialize_signature_params` of them."""
    from datafold_auth.signer import Signer, serialize_signature_params

    key = Ed25519PrivateKey.generate()
    signer = Signer(key, tag="t", expires_in=expires_in)
    for request in _signer_requests():
        added = dict(signer.sign(request, now=1_700_000_000, nonce="n-1"))
        members = sf.parse_dictionary(added["Signature-Input"])
        (inner, params) = members[signer.label]
        components = [(name, dict(p)) for name, p in inner]
        assert added["Signature-Input"] == f"{signer.label}=" + serialize_signature_params(components, dict(params))
        assert [name for name, _ in components][:4] == ["@method", "@authority", "@path", "@query"]
        assert ("content-digest" in [n for n, _ in components]) == bool(request.body)
        base = signature_base(request, components, added["Signature-Input"][len(signer.label) + 1 :])
        signature = base64.b64decode(added["Signature"][len(signer.label) + 2 : -1])
        key.public_key().verify(signature, base)  # raises InvalidSignature on a different base


def test_signer_refuses_what_the_general_path_refuses() -> None:
    from datafold_auth.signer import Signer

    request = Request.from_url("POST", "https://h/p", [("Content-Type", "caf\u00e9")], b"x")
    general = _outcome(signature_base, request, [("content-type", {})], "();created=1")
    assert general[0] == "SignatureError"
    with pytest.raises(DatafoldAuthError) as info:
        Signer(Ed25519PrivateKey.generate()).sign(request, now=1)
    assert (info.value.reason.value, str(info.value)) == general[1:]
