"""RFC 9530 ``Content-Digest``: computing and checking digests of the content.

The field is an RFC 8941 Dictionary from algorithm name to a Byte Sequence
(RFC 9530 section 2), e.g. ``sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:``.
Only the ``sha-256`` and ``sha-512`` algorithms (RFC 9530 section 5,
"Active") are produced or accepted; members with other algorithm names are
ignored when checking, and a field with no accepted member is malformed.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterable

from cryptography.hazmat.primitives import hashes

from . import sf
from .errors import Reason, SignatureError, StructuredFieldError

ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {"sha-256": hashes.SHA256, "sha-512": hashes.SHA512}
"""Accepted digest algorithm names (RFC 9530 section 5) and their hash."""

EMPTY_HASHES = {name: hashes.Hash(algorithm()) for name, algorithm in ALGORITHMS.items()}
"""Per algorithm, a context nothing is ever fed to: each digest starts as a copy of it (cheaper than a
new one); the verifier's ``sha-256`` shortcut copies it too."""


def digest_bytes(body: bytes, algorithm: str = "sha-256") -> bytes:
    """The raw digest of ``body`` with ``algorithm`` (``"sha-256"`` or ``"sha-512"``).

    Raises:
        ValueError: unknown algorithm name.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    empty = EMPTY_HASHES.get(algorithm)
    h = empty.copy() if empty is not None else hashes.Hash(ALGORITHMS[algorithm]())  # else: added after import
    h.update(body)
    return h.finalize()


def content_digest(body: bytes, algorithms: Iterable[str] = ("sha-256",)) -> str:
    """The ``Content-Digest`` field value for ``body`` (RFC 9530 section 2).

    Args:
        body: the content bytes as sent (after any content coding).
        algorithms: names from :data:`ALGORITHMS`, in the order to list them.
    """
    return ", ".join(
        name + "=:" + base64.b64encode(digest_bytes(body, name)).decode("ascii") + ":" for name in algorithms
    )


def check_content_digest(field_value: str, body: bytes) -> str:
    """Check ``body`` against a ``Content-Digest`` field value.

    Every member with an accepted algorithm must match; at least one must be
    present.

    Returns:
        the strongest algorithm name that matched.

    Raises:
        SignatureError: ``malformed_digest`` if the field is not a valid
            dictionary of byte sequences or has no accepted algorithm;
            ``digest_mismatch`` if any accepted digest differs.
    """
    if field_value.startswith("sha-256=:") and field_value == content_digest(body):
        return "sha-256"  # the usual single member, compared as text
    try:
        members = sf.parse_dictionary(field_value)
    except StructuredFieldError:
        raise SignatureError("Content-Digest is not a structured dictionary", Reason.MALFORMED_DIGEST) from None
    matched = ""
    for name, (value, _params) in members.items():
        if name not in ALGORITHMS:
            continue
        if not isinstance(value, bytes):
            raise SignatureError(f"Content-Digest member {name} is not a byte sequence", Reason.MALFORMED_DIGEST)
        if not hmac.compare_digest(value, digest_bytes(body, name)):
            raise SignatureError(f"{name} digest of the body does not match", Reason.DIGEST_MISMATCH)
        matched = name
    if not matched:
        raise SignatureError("Content-Digest has no sha-256 or sha-512 member", Reason.MALFORMED_DIGEST)
    return matched


__all__ = ["ALGORITHMS", "check_content_digest", "content_digest", "digest_bytes"]
