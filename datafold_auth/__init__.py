"""datafold-auth: client-side Ed25519 keys and RFC 9421 signed requests.

Public API (see docs/protocol.md for the wire profile):

* :class:`Signer` signs requests; :class:`Verifier` / :func:`verify_request` verify them.
* :class:`Request` holds the plain request parts both work on.
* :func:`jwk_thumbprint` computes a ``keyid`` (RFC 7638).
* :mod:`datafold_auth.registry` holds key registries; :mod:`datafold_auth.nonce` nonce stores.
* :mod:`datafold_auth.middleware` has the WSGI/ASGI middleware.
* :mod:`datafold_auth.registration` (keys register, rotate, revoke themselves),
  :mod:`datafold_auth.admin` (the admin API), :mod:`datafold_auth.audit` (the
  hash-chained audit log), :mod:`datafold_auth.permissions` (scopes per route).
* Errors derive from :class:`DatafoldAuthError` and carry a :class:`Reason`.
"""

from .audit import AuditContext, AuditEntry, AuditEvent, AuditSink, verify_chain
from .digest import check_content_digest, content_digest
from .errors import (
    AuditChainError,
    DatafoldAuthError,
    KeyFormatError,
    NonceStoreError,
    PermissionDenied,
    RateLimited,
    Reason,
    RegistrationError,
    RegistryError,
    SignatureError,
    StructuredFieldError,
)
from .jwk import jwk_thumbprint, key_fingerprint, public_jwk, public_key_from_jwk
from .message import Request
from .nonce import MemoryNonceStore, NonceStore, SQLiteNonceStore
from .profile import DEFAULT_POLICY, VerificationPolicy
from .registry import (
    CachedRegistry,
    KeyRecord,
    KeyRegistry,
    KeyStatus,
    MemoryRegistry,
    SQLiteRegistry,
    open_nonce_store,
    open_registry,
    plugin_manager,
)
from .signature_base import signature_base
from .signer import Signer, sign_message
from .verifier import VerifiedSignature, Verifier, verify_request

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_POLICY",
    "AuditChainError",
    "AuditContext",
    "AuditEntry",
    "AuditEvent",
    "AuditSink",
    "CachedRegistry",
    "DatafoldAuthError",
    "KeyFormatError",
    "KeyRecord",
    "KeyRegistry",
    "KeyStatus",
    "MemoryNonceStore",
    "MemoryRegistry",
    "NonceStore",
    "NonceStoreError",
    "PermissionDenied",
    "RateLimited",
    "Reason",
    "RegistrationError",
    "RegistryError",
    "Request",
    "SQLiteNonceStore",
    "SQLiteRegistry",
    "SignatureError",
    "Signer",
    "StructuredFieldError",
    "VerificationPolicy",
    "VerifiedSignature",
    "Verifier",
    "check_content_digest",
    "content_digest",
    "jwk_thumbprint",
    "key_fingerprint",
    "open_nonce_store",
    "open_registry",
    "plugin_manager",
    "public_jwk",
    "public_key_from_jwk",
    "sign_message",
    "signature_base",
    "verify_chain",
    "verify_request",
]
