"""Exceptions and reason codes.

One root exception, :class:`DatafoldAuthError`, and a small flat tree below it.
Every exception carries a :class:`Reason`: a short, stable, machine-readable
code that also travels on the wire as the ``reason`` member of an RFC 9457
problem details document. The human ``detail`` of an exception may name the
offending header or parameter, but never contains key material, passphrases or
signature bytes; the wire carries only the reason's fixed title and detail (and,
for ``scope_not_allowed``, the client's own refused scopes, which tells which of its
scopes anyone may self-assign), so a response is no oracle beyond that and the
reason code itself (docs/troubleshooting.md lists every code).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Machine-readable reason codes (stable API; see docs/troubleshooting.md)."""

    # --- request verification (401 unless stated) -------------------------
    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE_INPUT = "malformed_signature_input"
    MALFORMED_SIGNATURE = "malformed_signature"
    MISSING_PARAMETER = "missing_parameter"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    WRONG_TAG = "wrong_tag"
    MISSING_COMPONENT = "missing_component"
    UNSUPPORTED_COMPONENT = "unsupported_component"
    UNKNOWN_KEY = "unknown_key"
    KEY_NOT_ACTIVE = "key_not_active"
    BAD_SIGNATURE = "bad_signature"
    MALFORMED_DIGEST = "malformed_digest"
    DIGEST_MISMATCH = "digest_mismatch"
    EXPIRED = "expired"
    CREATED_IN_FUTURE = "created_in_future"
    REPLAYED_NONCE = "replayed_nonce"
    BODY_TOO_LARGE = "body_too_large"  # 413
    NONCE_STORE_UNAVAILABLE = "nonce_store_unavailable"  # 503
    REGISTRY_UNAVAILABLE = "registry_unavailable"  # 503
    # --- registration (400/409) -----------------------------------------
    INVALID_REQUEST = "invalid_request"
    INVALID_KEY = "invalid_key"
    KEYID_MISMATCH = "keyid_mismatch"
    BAD_PROOF = "bad_proof"
    DUPLICATE_KEY = "duplicate_key"
    CLIENT_ID_TAKEN = "client_id_taken"
    SCOPE_NOT_ALLOWED = "scope_not_allowed"
    NOT_FOUND = "not_found"  # 404
    # --- local key handling ----------------------------------------------
    INVALID_KEY_FORMAT = "invalid_key_format"
    SELF_TEST_FAILED = "self_test_failed"
    KEY_STORE_ERROR = "key_store_error"
    # --- registration app routing ------------------------------------------
    METHOD_NOT_ALLOWED = "method_not_allowed"  # 405
    # --- key lifecycle, administration, permissions (appended; docs/operations.md) ---
    INSUFFICIENT_SCOPE = "insufficient_scope"  # 403
    INVALID_TRANSITION = "invalid_transition"  # 409
    CLIENT_MISMATCH = "client_mismatch"  # 403
    RATE_LIMITED = "rate_limited"  # 429
    AUDIT_CHAIN_BROKEN = "audit_chain_broken"  # local (keytools admin audit verify)
    INVALID_CONFIGURATION = "invalid_configuration"  # local: a backend URL or option refused at start-up

    @property
    def status(self) -> int:
        """The HTTP status code used when this reason is answered on the wire."""
        return _STATUS.get(self, 401)

    @property
    def description(self) -> str:
        """A fixed, human-readable sentence; safe to send to any peer."""
        return _TITLES[self]


_STATUS: dict[Reason, int] = {
    Reason.BODY_TOO_LARGE: 413,
    Reason.NONCE_STORE_UNAVAILABLE: 503,
    Reason.REGISTRY_UNAVAILABLE: 503,
    Reason.INVALID_REQUEST: 400,
    Reason.INVALID_KEY: 400,
    Reason.KEYID_MISMATCH: 400,
    Reason.BAD_PROOF: 400,
    Reason.DUPLICATE_KEY: 409,
    Reason.CLIENT_ID_TAKEN: 409,
    Reason.SCOPE_NOT_ALLOWED: 403,
    Reason.NOT_FOUND: 404,
    Reason.INVALID_KEY_FORMAT: 400,
    Reason.SELF_TEST_FAILED: 500,
    Reason.KEY_STORE_ERROR: 500,
    Reason.METHOD_NOT_ALLOWED: 405,
    Reason.INSUFFICIENT_SCOPE: 403,
    Reason.INVALID_TRANSITION: 409,
    Reason.CLIENT_MISMATCH: 403,
    Reason.RATE_LIMITED: 429,
    Reason.AUDIT_CHAIN_BROKEN: 500,
    Reason.INVALID_CONFIGURATION: 500,
}

_TITLES: dict[Reason, str] = {
    Reason.MISSING_SIGNATURE: "The request carries no signature with the expected tag.",
    Reason.MALFORMED_SIGNATURE_INPUT: "The Signature-Input field is not a valid signature input.",
    Reason.MALFORMED_SIGNATURE: "The Signature field is not a valid signature.",
    Reason.MISSING_PARAMETER: "A required signature parameter is missing or has the wrong type.",
    Reason.UNSUPPORTED_ALGORITHM: "The signature algorithm is not ed25519.",
    Reason.WRONG_TAG: "The signature's tag is not the one this service expects.",
    Reason.MISSING_COMPONENT: "A required component is not covered by the signature or is absent.",
    Reason.UNSUPPORTED_COMPONENT: "A covered component is unknown or not supported.",
    Reason.UNKNOWN_KEY: "No key with this keyid is registered.",
    Reason.KEY_NOT_ACTIVE: "The key is registered but not active.",
    Reason.BAD_SIGNATURE: "The signature does not verify.",
    Reason.MALFORMED_DIGEST: "The Content-Digest field is not valid.",
    Reason.DIGEST_MISMATCH: "The body does not match the Content-Digest field.",
    Reason.EXPIRED: "The signature is too old or past its expires time.",
    Reason.CREATED_IN_FUTURE: "The signature's created time is in the future.",
    Reason.REPLAYED_NONCE: "This nonce was already used.",
    Reason.BODY_TOO_LARGE: "The request body is larger than this service accepts.",
    Reason.NONCE_STORE_UNAVAILABLE: "Replay protection is unavailable; try again later.",
    Reason.REGISTRY_UNAVAILABLE: "The key registry is unavailable; try again later.",
    Reason.INVALID_REQUEST: "The request body is not a valid registration.",
    Reason.INVALID_KEY: "The public key is not a valid Ed25519 public key.",
    Reason.KEYID_MISMATCH: "The keyid is not the JWK thumbprint of the public key.",
    Reason.BAD_PROOF: "The proof of possession does not verify.",
    Reason.DUPLICATE_KEY: "This public key is already registered.",
    Reason.CLIENT_ID_TAKEN: "This client_id already has keys (active or not: revoked keys count too).",
    Reason.SCOPE_NOT_ALLOWED: "A requested scope may not be self-assigned.",
    Reason.NOT_FOUND: "No such key.",
    Reason.INVALID_KEY_FORMAT: "The key data is not in a supported format.",
    Reason.SELF_TEST_FAILED: "The key failed its sign/verify self-test.",
    Reason.KEY_STORE_ERROR: "The local key store could not complete the operation.",
    Reason.METHOD_NOT_ALLOWED: "This method is not allowed for this resource.",
    Reason.INSUFFICIENT_SCOPE: "The key that signed this request lacks a scope this resource requires.",
    Reason.INVALID_TRANSITION: "The key's current status does not allow this change.",
    Reason.CLIENT_MISMATCH: "The signing key does not belong to the client that owns this key.",
    Reason.RATE_LIMITED: "Too many requests; try again after the time in Retry-After.",
    Reason.AUDIT_CHAIN_BROKEN: "The audit log's hash chain does not verify.",
    Reason.INVALID_CONFIGURATION: "The service is not configured correctly.",
}


class DatafoldAuthError(Exception):
    """Root of every exception this package raises on purpose.

    Attributes:
        reason: the :class:`Reason` code.
        detail: a human sentence for logs; never contains secrets.
    """

    default_reason: Reason = Reason.INVALID_REQUEST

    def __init__(self, detail: str = "", reason: Reason | None = None) -> None:
        self.reason: Reason = reason if reason is not None else self.default_reason
        self.detail: str = detail or self.reason.description
        super().__init__(f"{self.reason.value}: {self.detail}")


class SignatureError(DatafoldAuthError):
    """A signed request failed verification (RFC 9421 section 3.2).

    Also raised by the signer for a request that cannot be signed as asked
    (for example a covered header that the request does not have).
    """

    default_reason = Reason.BAD_SIGNATURE


class StructuredFieldError(DatafoldAuthError):
    """A structured field value (RFC 8941) could not be parsed or serialized."""

    default_reason = Reason.MALFORMED_SIGNATURE_INPUT


class KeyFormatError(DatafoldAuthError, ValueError):
    """Key bytes, JWK or PEM are not a valid Ed25519 key in a supported format."""

    default_reason = Reason.INVALID_KEY_FORMAT


class RegistrationError(DatafoldAuthError):
    """A key registration was refused (docs/protocol.md, Registration)."""

    default_reason = Reason.INVALID_REQUEST


class RegistryError(DatafoldAuthError):
    """The key registry refused an operation or is unavailable."""

    default_reason = Reason.REGISTRY_UNAVAILABLE


class PermissionDenied(DatafoldAuthError):
    """A verified client lacks a required scope (HTTP 403 ``insufficient_scope``)."""

    default_reason = Reason.INSUFFICIENT_SCOPE


class RateLimited(DatafoldAuthError):
    """Too many requests (HTTP 429 ``rate_limited``).

    Attributes:
        retry_after: whole seconds after which a retry may succeed (at least 1).
    """

    default_reason = Reason.RATE_LIMITED

    def __init__(self, detail: str = "", retry_after: float = 1.0) -> None:
        super().__init__(detail)
        self.retry_after: int = max(1, int(-(-retry_after // 1)))


class AuditChainError(DatafoldAuthError):
    """The audit log's hash chain does not verify (an entry was edited, removed or reordered).

    Attributes:
        seq: the sequence number of the first entry that does not verify (``None``: the end of the log).
    """

    default_reason = Reason.AUDIT_CHAIN_BROKEN

    def __init__(self, detail: str = "", seq: int | None = None) -> None:
        super().__init__(detail)
        self.seq = seq


class NonceStoreError(DatafoldAuthError):
    """The nonce store is full or unreachable; requests fail closed (503)."""

    default_reason = Reason.NONCE_STORE_UNAVAILABLE


__all__ = [
    "AuditChainError",
    "DatafoldAuthError",
    "KeyFormatError",
    "NonceStoreError",
    "PermissionDenied",
    "RateLimited",
    "Reason",
    "RegistrationError",
    "RegistryError",
    "SignatureError",
    "StructuredFieldError",
]
