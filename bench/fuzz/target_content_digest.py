"""Fuzz target: ``Content-Digest`` (RFC 9530 section 2).

Input: ``FIELD LF BODY``. Checks that :func:`check_content_digest` returns or raises
``SignatureError`` (``malformed_digest``/``digest_mismatch``), and that the field
:func:`content_digest` writes for the body always checks.
"""

from __future__ import annotations

from _harness import Finding, typed

from datafold_auth.digest import check_content_digest, content_digest
from datafold_auth.errors import Reason

_ALGORITHMS = (("sha-256",), ("sha-512",), ("sha-256", "sha-512"), ("sha-512", "sha-256"))


def seeds() -> list[bytes]:
    body = b'{"name": "widget"}'
    out = [content_digest(body, algs).encode("ascii") + b"\n" + body for algs in _ALGORITHMS]
    out.append(b"sha-256=:AAAA:, md5=:AAAA:;p=1, unixsum=?1\nxyz")
    out.append(b'sha-512="not bytes", sha-256=("a")\n')
    return out


def test_one_input(data: bytes) -> None:
    field, _, body = data.partition(b"\n")
    try:
        check_content_digest(field.decode("latin-1"), body)
    except Exception as exc:
        if getattr(exc, "reason", None) not in (Reason.MALFORMED_DIGEST, Reason.DIGEST_MISMATCH):
            raise
    algorithms = _ALGORITHMS[data[0] % len(_ALGORITHMS)] if data else _ALGORITHMS[0]
    written = content_digest(body, algorithms)
    if typed(check_content_digest, written, body) not in algorithms:
        raise Finding(f"the digest field written for the body does not check: {written!r}")
