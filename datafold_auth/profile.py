"""The DataFold signature profile and the verification policy.

docs/protocol.md is the normative description; this module holds the values.

Defaults (the DataFold profile):

* label ``df``; ``alg="ed25519"``; ``tag="datafold"``;
* ``keyid`` is the RFC 7638 JWK thumbprint of the public key;
* covered components: ``@method``, ``@authority``, ``@path``, ``@query``,
  plus ``content-digest`` whenever the request has content, plus
  ``content-type`` when the request has that header;
* ``created`` required; ``expires`` optional (the signer sets created + 300);
  ``nonce`` required: 16 random bytes, base64url, unique per key;
* accepted when ``created`` is within ``max_age`` (300 s) in the past and
  ``clock_skew`` (30 s) in the future, and ``expires`` (if any) is not
  more than ``clock_skew`` in the past.
"""

from __future__ import annotations

from dataclasses import dataclass

LABEL = "df"
"""Signature label used by DataFold signers (RFC 9421 section 4.1)."""
TAG = "datafold"
"""Application tag (RFC 9421 section 2.3, ``tag``)."""
ALGORITHM = "ed25519"
"""The only signature algorithm (RFC 9421 section 3.3.6)."""
BASE_COMPONENTS: tuple[str, ...] = ("@method", "@authority", "@path", "@query")
"""Covered on every request."""
BODY_COMPONENTS: tuple[str, ...] = ("content-digest",)
"""Also covered when the request has content."""
OPTIONAL_FIELDS: tuple[str, ...] = ("content-type",)
"""Covered by the signer when present."""


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """What a verifier demands of a signed request.

    Attributes:
        required_components: component names every signature must cover.
        body_components: names also required when the request has content
            (a non-empty body or a non-zero ``Content-Length``).
        max_age: seconds a signature stays acceptable after ``created`` (default 300).
        clock_skew: seconds of clock difference tolerated either way (default 30).
        tag: the ``tag`` a signature must carry to be considered (``None``:
            take the first signature of any tag).
        nonce_required: refuse signatures without ``nonce`` (default ``True``).
        max_nonce_length: longest accepted nonce in characters (default 128).
        expires_required: refuse signatures without ``expires`` (default ``False``).
        max_keyid_length: longest accepted keyid in characters (default 128;
            DataFold keyids have 43), checked before the registry is asked.
        max_components: most covered components a signature may list
            (default 32), checked before any component value is computed.
    """

    required_components: tuple[str, ...] = BASE_COMPONENTS
    body_components: tuple[str, ...] = BODY_COMPONENTS
    max_age: int = 300
    clock_skew: int = 30
    tag: str | None = TAG
    nonce_required: bool = True
    max_nonce_length: int = 128
    expires_required: bool = False
    max_keyid_length: int = 128
    max_components: int = 32

    def __post_init__(self) -> None:
        if self.max_age <= 0 or self.clock_skew < 0:
            raise ValueError("max_age must be positive and clock_skew non-negative")
        if self.max_nonce_length < 1 or self.max_keyid_length < 1 or self.max_components < 1:
            raise ValueError("max_nonce_length, max_keyid_length and max_components must be positive")


DEFAULT_POLICY = VerificationPolicy()
"""The DataFold profile's policy."""

__all__ = [
    "ALGORITHM",
    "BASE_COMPONENTS",
    "BODY_COMPONENTS",
    "DEFAULT_POLICY",
    "LABEL",
    "OPTIONAL_FIELDS",
    "TAG",
    "VerificationPolicy",
]
