"""Key registration with proof of possession (PoP): the sans-I/O core.

Wire contract (docs/protocol.md, Registration)::

    POST {mount}/keys
    Content-Type: application/json
    Content-Digest / Signature-Input / Signature   (DataFold profile, signed by the NEW key)

    {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "<base64url, 32 bytes>"},
     "client_id": "<1-128 of [A-Za-z0-9._@:-]>",   optional; default: the keyid
     "label": "<at most 200 characters>",          optional; default ""
     "scopes": ["<RFC 6749 scope-token>", ...]}    optional; default: the server's default scopes

    201 Created, Location: {mount}/keys/{keyid}, body: KeyRecord.to_dict()
    GET {mount}/keys/{keyid} -> 200 KeyRecord.to_dict() | 404 not_found

:func:`handle_registration` checks, in this order (first failure wins):

1. ``Content-Type`` is ``application/json`` and the body is a UTF-8 JSON
   object of the shape above (:func:`parse_registration_body`) -> 400 ``invalid_request``;
2. the JWK is an acceptable Ed25519 public key (RFC 8037 section 2,
   :func:`datafold_auth.jwk.public_key_from_jwk`) -> 400 ``invalid_key``; a
   ``client_id`` with the shape of a keyid is that key's own keyid -> 400 ``invalid_request``;
3. the request verifies as an RFC 9421 signed request (section 3.2) under the
   verification policy, with the body's key as the only known key: the
   signature's ``keyid`` must be the RFC 7638 thumbprint of that key
   (-> 400 ``keyid_mismatch``) and the signature must verify with it
   (-> 400 ``bad_proof``). Every other verification failure keeps its own
   reason and status (``missing_signature``, ``expired``, ``digest_mismatch``
   ... 401). ``Content-Digest`` (RFC 9530) must cover the body, so the JWK
   and the other members cannot be swapped under a valid signature. The
   nonce is recorded last, so the same signed bytes sent twice are refused
   with ``replayed_nonce`` (401) before the registry is asked;
4. requested scopes are a subset of the server's allowed scopes -> 403 ``scope_not_allowed``;
5. the record is stored atomically -> 409 ``duplicate_key`` / ``client_id_taken``,
   503 ``registry_unavailable``.

Authentication (step 3) comes before authorization (step 4): only a holder of
the private key learns which scopes are refused. A client that gets any
refusal re-signs before trying again (a nonce is never reused).

Key lifecycle (docs/protocol.md section 7), all signed per the DataFold profile
and verified against the registry itself (uncached, so statuses are current)::

    POST {mount}/keys/{keyid}/rotate     signed by {keyid}, plus a proof signature by the new key
    POST {mount}/keys/{keyid}/revoke     signed by any usable key of the same client
    POST {mount}/keys/{keyid}/approve    signed by an active key of the same client (pending -> active)
    GET  {mount}/clients/{client_id}/keys  signed by a usable key of that client
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from ..audit import AuditContext, AuditSink
from ..errors import (
    DatafoldAuthError,
    KeyFormatError,
    PermissionDenied,
    RateLimited,
    RegistrationError,
    RegistryError,
    SignatureError,
)
from ..errors import Reason as R
from ..jwk import KEYID_RE, jwk_thumbprint, public_jwk, public_key_bytes, public_key_from_jwk
from ..message import Request
from ..middleware._common import claimed_keyid
from ..nonce import NonceStore
from ..profile import DEFAULT_POLICY, VerificationPolicy
from ..ratelimit import RateLimiter
from ..registry import KeyRecord, KeyRegistry, KeyStatus, allowed_from
from ..registry.base import register_with, require, set_status_with
from ..signer import Signer
from ..verifier import VerifiedSignature, verify_request
from ..wire import json_response, problem

log = logging.getLogger("datafold_auth.registration")

DEFAULT_MAX_BODY = 16 * 1024
"""Largest accepted registration body in bytes (16 KiB)."""
MAX_LABEL = 200
"""Longest accepted ``label`` in characters."""
MAX_SCOPES = 64
"""Most scopes one registration may request."""
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9._@:-]{1,128}")
"""Shape of a ``client_id`` (matched in full)."""
SCOPE_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")
"""Shape of one scope: an RFC 6749 section 3.3 scope-token of at most 128 characters."""
_MEMBERS = frozenset({"jwk", "client_id", "label", "scopes", "expires_at"})
NEW_KEY_LABEL = "df-new"
"""Label of the new key's proof signature in a rotation request (docs/protocol.md section 7.1)."""
NEW_KEY_TAG = "datafold-new-key"
"""Tag of the new key's proof signature in a rotation request."""
MAX_REASON = 200
"""Longest accepted ``reason`` in characters (revocation)."""
DEFAULT_ROTATION_OVERLAP = 600
"""Seconds a rotated key keeps verifying by default (10 minutes)."""
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Embeddings, overrides and isolates (Unicode UAX #9): they make text display as something else."""

Response = tuple[int, list[tuple[str, str]], bytes]
"""An answer as ``(status, [(name, value), ...], body)``."""


class MethodNotAllowed(RegistrationError):
    """The path exists but not for this method (HTTP 405); ``allow`` is the ``Allow`` field value."""

    default_reason = R.METHOD_NOT_ALLOWED

    def __init__(self, detail: str, allow: str) -> None:
        super().__init__(detail)
        self.allow = allow


class ScopeNotAllowed(RegistrationError):
    """A registration asked for scopes that may not be self-assigned (HTTP 403 ``scope_not_allowed``).

    Attributes:
        refused: the refused scopes, as the client sent them, in its order. The answer carries
            them as the ``refused_scopes`` member: the client's own input. It tells which of the
            requested scopes are self-assignable (what registering with them would show anyway,
            since anyone may register); the server's other allowed scopes are never listed.
    """

    default_reason = R.SCOPE_NOT_ALLOWED

    def __init__(self, refused: Iterable[str]) -> None:
        self.refused: tuple[str, ...] = tuple(refused)
        super().__init__(f"scopes not allowed: {', '.join(self.refused)}")


def _invalid(detail: str) -> RegistrationError:
    return RegistrationError(detail, R.INVALID_REQUEST)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise ValueError("duplicate member name")
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True, slots=True)
class RegistrationBody:
    """A parsed registration body.

    Attributes:
        jwk: the ``jwk`` member, a JSON object (not yet checked as a key).
        client_id: the requested ``client_id``, or ``None`` (the keyid is used).
        label: free text, at most :data:`MAX_LABEL` characters (default ``""``).
        scopes: the requested scopes in order without repeats, or ``None``
            when the member is absent (the server's default scopes are granted).
        expires_at: the key's requested expiry (epoch seconds), or ``None``.
    """

    jwk: dict[str, Any]
    client_id: str | None = None
    label: str = ""
    scopes: tuple[str, ...] | None = None
    expires_at: int | None = None


def _json_object(body: bytes, members: frozenset[str]) -> dict[str, Any]:
    """A UTF-8 JSON object with only ``members`` (no repeats, no NaN/Infinity).

    Raises:
        RegistrationError: ``invalid_request``.
    """
    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _invalid("the body is not a UTF-8 JSON document") from None
    if not isinstance(doc, dict):
        raise _invalid("the body is not a JSON object")
    unknown = set(doc) - members
    if unknown:
        raise _invalid(f"unknown members: {', '.join(sorted(map(repr, unknown)))[:200]}")
    return doc


def _text_member(doc: dict[str, Any], name: str, limit: int) -> str:
    """A free-text member (absent or ``null``: ``""``): at most ``limit`` characters, no control,
    bidi or separator characters, no lone surrogates."""
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise _invalid(f'"{name}" must be a string of at most {limit} characters')
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS for ch in value):
        raise _invalid(
            f'"{name}" must not contain control characters, bidi controls, line separators or lone surrogates'
        )
    return value


MAX_EXPIRES_AT = 253402300799
"""Latest accepted ``expires_at``: 9999-12-31T23:59:59Z (a larger integer overflowed the SQL
registries' 64-bit columns: a 500 from SQLite, a 503 from PostgreSQL)."""


def _expires_member(doc: dict[str, Any]) -> int | None:
    value = doc.get("expires_at")
    if value is not None and (type(value) is not int or value > MAX_EXPIRES_AT):
        raise _invalid(f'"expires_at" must be an integer (epoch seconds) of at most {MAX_EXPIRES_AT}')
    return value


def parse_registration_body(body: bytes) -> RegistrationBody:
    """Parse and shape-check a registration body (RFC 8259 JSON, UTF-8).

    Members: ``jwk`` (object, required), ``client_id``, ``label``, ``scopes``,
    ``expires_at`` (optional; ``null`` is the same as absent). Unknown or
    repeated members, ``NaN``/``Infinity``, control characters, bidi
    embedding/override/isolate controls, line or paragraph separators or lone
    surrogates in ``label`` are refused.

    Raises:
        RegistrationError: reason ``invalid_request`` naming the broken rule.
    """
    doc = _json_object(body, _MEMBERS)
    jwk = doc.get("jwk")
    if not isinstance(jwk, dict):
        raise _invalid('"jwk" must be a JSON object')
    client_id = doc.get("client_id")
    if client_id is not None and not (isinstance(client_id, str) and CLIENT_ID_RE.fullmatch(client_id)):
        raise _invalid('"client_id" must be 1-128 characters of A-Z a-z 0-9 . _ @ : -')
    label = _text_member(doc, "label", MAX_LABEL)
    expires_at = _expires_member(doc)
    scopes = doc.get("scopes")
    if scopes is not None:
        if not isinstance(scopes, list) or len(scopes) > MAX_SCOPES:
            raise _invalid(f'"scopes" must be a list of at most {MAX_SCOPES} strings')
        if not all(isinstance(s, str) and SCOPE_RE.fullmatch(s) for s in scopes):
            raise _invalid("each scope must be an RFC 6749 scope-token of 1-128 characters")
        scopes = tuple(dict.fromkeys(scopes))
    return RegistrationBody(jwk=jwk, client_id=client_id, label=label, scopes=scopes, expires_at=expires_at)


def _check_expiry(expires_at: int | None, now: float, key_lifetime: int | None) -> int | None:
    """The expiry to store: the requested one (later than ``now``, within ``key_lifetime``), else
    ``now + key_lifetime`` (``None`` without a lifetime)."""
    limit = None if key_lifetime is None else int(now) + key_lifetime
    if expires_at is None:
        return limit
    if expires_at <= now:
        raise _invalid('"expires_at" must be in the future')
    if limit is not None and expires_at > limit:
        raise _invalid(f'"expires_at" is beyond this server\'s key lifetime ({key_lifetime} s)')
    return expires_at


def handle_registration(
    request: Request,
    *,
    now: float,
    registry: KeyRegistry,
    nonce_store: NonceStore | None,
    policy: VerificationPolicy = DEFAULT_POLICY,
    allowed_scopes: Set[str] = frozenset(),
    default_scopes: tuple[str, ...] = (),
    require_approval: bool = False,
    allow_join: bool = False,
    key_lifetime: int | None = None,
    request_id: str | None = None,
) -> KeyRecord:
    """Check a signed registration request and store the new key (see the module docstring).

    Args:
        request: the request as received (full raw path, body included).
        now: the current time in epoch seconds; ``created_at``/``updated_at`` are ``int(now)``.
        registry: where the key is stored.
        nonce_store: replay protection for the proof (RFC 9421 section 7.2.2).
        policy: what the proof's signature must satisfy (default: the DataFold profile);
            ``content-digest`` is required in any case.
        allowed_scopes: scopes a client may request for itself.
        default_scopes: scopes granted when the body has no ``scopes`` member.
        require_approval: store the key as ``pending`` instead of ``active``.
        allow_join: a ``client_id`` that already has keys is not refused: the key joins
            that identity as ``pending`` (another device), until a key of that client
            or an administrator approves it.
        key_lifetime: seconds a new key stays valid (``expires_at``); ``None``: no limit
            unless the client asks for one.
        request_id: written to the audit entry (whose actor is ``self:<keyid>``).

    Returns:
        the stored :class:`KeyRecord`.

    Raises:
        RegistrationError: ``invalid_request``, ``invalid_key``, ``keyid_mismatch``,
            ``bad_proof`` (400) or ``scope_not_allowed`` (403).
        SignatureError: any other verification failure, with its own reason (401).
        RegistryError: ``duplicate_key``/``client_id_taken`` (409) or unavailable (503).
        NonceStoreError: the nonce store is unavailable (503).
    """
    content_types = request.field_values("content-type") or [""]
    if content_types[0].split(";", 1)[0].strip().lower() != "application/json":
        raise _invalid("Content-Type must be application/json")
    body = parse_registration_body(request.body)
    try:
        public_key = public_key_from_jwk(body.jwk)
    except KeyFormatError as exc:
        raise RegistrationError(exc.detail, R.INVALID_KEY) from None
    raw = public_key_bytes(public_key)
    keyid = jwk_thumbprint(raw)
    if body.client_id is not None and body.client_id != keyid and KEYID_RE.fullmatch(body.client_id):
        # Keyids are public and a key's client_id defaults to its keyid: taking another
        # key's keyid as client_id would lock that key out of registering (client_id_taken).
        raise _invalid('"client_id" has the shape of a keyid; only the key\'s own keyid may be used')
    proof_record = KeyRecord(keyid=keyid, public_key=raw, client_id=keyid)

    def resolve_key(signed_keyid: str) -> KeyRecord:
        if signed_keyid != keyid:
            raise RegistrationError("the signature's keyid is not the thumbprint of the body's JWK", R.KEYID_MISMATCH)
        return proof_record

    if "content-digest" not in policy.body_components:  # the proof must bind the body, whatever the policy
        policy = replace(policy, body_components=(*policy.body_components, "content-digest"))
    try:
        verify_request(request, now=now, resolve_key=resolve_key, nonce_store=nonce_store, policy=policy)
    except SignatureError as exc:
        if exc.reason is R.BAD_SIGNATURE:
            raise RegistrationError("the proof signature does not verify with the body's key", R.BAD_PROOF) from None
        raise
    scopes = body.scopes if body.scopes is not None else tuple(default_scopes)
    refused = [s for s in body.scopes or () if s not in allowed_scopes]
    if refused:
        raise ScopeNotAllowed(refused)
    expires_at = _check_expiry(body.expires_at, now, key_lifetime)
    stamp = int(now)
    record = KeyRecord(
        keyid=keyid,
        public_key=raw,
        client_id=body.client_id or keyid,
        label=body.label,
        scopes=scopes,
        status=KeyStatus.PENDING if require_approval else KeyStatus.ACTIVE,
        created_at=stamp,
        updated_at=stamp,
        expires_at=expires_at,
    )
    context = AuditContext(actor=f"self:{keyid}", request_id=request_id)
    try:
        return register_with(registry, record, context)
    except RegistryError as exc:
        if exc.reason is not R.CLIENT_ID_TAKEN or not allow_join:
            raise
    joining = replace(record, status=KeyStatus.PENDING)
    joined = replace(context, reason="joins an existing client")
    return register_with(registry, joining, joined, allow_existing_client=True)


# ------------------------------------------------------------ key lifecycle


def _body_policy(policy: VerificationPolicy) -> VerificationPolicy:
    """``policy`` with ``content-digest`` required whenever there is a body (the body must be bound)."""
    if "content-digest" in policy.body_components:
        return policy
    return replace(policy, body_components=(*policy.body_components, "content-digest"))


def _json_body(request: Request, members: frozenset[str]) -> dict[str, Any]:
    """The JSON object body of a lifecycle request (an empty body is ``{}``)."""
    if not request.body:
        return {}
    content_types = request.field_values("content-type") or [""]
    if content_types[0].split(";", 1)[0].strip().lower() != "application/json":
        raise _invalid("Content-Type must be application/json")
    return _json_object(request.body, members)


def verify_holder(
    request: Request,
    *,
    now: float,
    registry: KeyRegistry,
    nonce_store: NonceStore | None,
    policy: VerificationPolicy = DEFAULT_POLICY,
) -> VerifiedSignature:
    """Verify a lifecycle request as signed by a usable registered key (read from ``registry``, uncached).

    Raises:
        SignatureError: any verification failure (401); ``RegistryError``/``NonceStoreError`` (503).
    """
    return verify_request(
        request, now=now, resolve_key=registry.get, nonce_store=nonce_store, policy=_body_policy(policy)
    )


@dataclass(frozen=True, slots=True)
class RotationBody:
    """A parsed rotation body: ``{"jwk": {...}, "label": "...", "expires_at": 1800000000}``.

    Attributes:
        jwk: the new public key (not yet checked).
        label: the new key's label, or ``None`` to keep the old key's.
        expires_at: the new key's requested expiry, or ``None``.
    """

    jwk: dict[str, Any]
    label: str | None = None
    expires_at: int | None = None


def parse_rotation_body(body: bytes) -> RotationBody:
    """Parse a rotation body (members ``jwk``, required; ``label``, ``expires_at``, optional).

    Raises:
        RegistrationError: ``invalid_request``.
    """
    doc = _json_object(body, frozenset({"jwk", "label", "expires_at"}))
    jwk = doc.get("jwk")
    if not isinstance(jwk, dict):
        raise _invalid('"jwk" must be a JSON object')
    label = _text_member(doc, "label", MAX_LABEL) if doc.get("label") is not None else None
    return RotationBody(jwk=jwk, label=label, expires_at=_expires_member(doc))


def handle_rotation(
    request: Request,
    keyid: str,
    *,
    now: float,
    registry: KeyRegistry,
    nonce_store: NonceStore | None,
    policy: VerificationPolicy = DEFAULT_POLICY,
    overlap: int = DEFAULT_ROTATION_OVERLAP,
    key_lifetime: int | None = None,
    request_id: str | None = None,
) -> tuple[KeyRecord, KeyRecord]:
    """Rotate key ``keyid`` to the new key in the body (docs/protocol.md section 7.1).

    The request carries two signatures over the same components: label ``df``,
    tag ``datafold``, by the current key ``keyid``; and label ``df-new``, tag
    ``datafold-new-key``, by the new key (its proof of possession). Both nonces
    are recorded. The new key takes the old key's client_id and scopes (and at
    most its ``expires_at``: a rotation never extends a key's life); the old
    key becomes ``rotated`` and keeps verifying for ``overlap`` seconds.

    Returns:
        ``(old, new)`` as stored.

    Raises:
        RegistrationError: ``invalid_request``/``invalid_key``, ``keyid_mismatch`` (the
            ``df`` signature is not by ``keyid``, or the proof not by the body's key),
            ``bad_proof`` (no proof signature, or it does not verify).
        SignatureError: the current key's signature fails (401, e.g. ``key_not_active``).
        RegistryError: ``invalid_transition`` (the key is not active), ``duplicate_key`` (409).
    """
    content_types = request.field_values("content-type") or [""]
    if content_types[0].split(";", 1)[0].strip().lower() != "application/json":
        raise _invalid("Content-Type must be application/json")
    body = parse_rotation_body(request.body)
    try:
        new_public = public_key_from_jwk(body.jwk)
    except KeyFormatError as exc:
        raise RegistrationError(exc.detail, R.INVALID_KEY) from None
    raw = public_key_bytes(new_public)
    new_keyid = jwk_thumbprint(raw)
    if new_keyid == keyid:
        raise _invalid("the new key is the current key")
    policy = _body_policy(policy)
    verified = verify_request(request, now=now, resolve_key=registry.get, nonce_store=nonce_store, policy=policy)
    if verified.keyid != keyid:
        raise RegistrationError("the rotation must be signed by the key being rotated", R.KEYID_MISMATCH)
    old = verified.record
    proof_record = KeyRecord(keyid=new_keyid, public_key=raw, client_id=old.client_id)

    def resolve_new(signed_keyid: str) -> KeyRecord:
        if signed_keyid != new_keyid:
            raise RegistrationError("the proof's keyid is not the thumbprint of the body's JWK", R.KEYID_MISMATCH)
        return proof_record

    proof_policy = replace(policy, tag=NEW_KEY_TAG)
    try:
        verify_request(request, now=now, resolve_key=resolve_new, nonce_store=nonce_store, policy=proof_policy)
    except SignatureError as exc:
        if exc.reason in (R.BAD_SIGNATURE, R.WRONG_TAG, R.MISSING_SIGNATURE):
            raise RegistrationError(f"the new key's proof ({NEW_KEY_TAG}): {exc.detail}", R.BAD_PROOF) from None
        raise
    stamp = int(now)
    expires_at = _check_expiry(body.expires_at, now, key_lifetime)
    if old.expires_at is not None:  # a rotation never extends a key's life
        expires_at = old.expires_at if expires_at is None else min(expires_at, old.expires_at)
    new = KeyRecord(
        keyid=new_keyid,
        public_key=raw,
        client_id=old.client_id,
        label=old.label if body.label is None else body.label,
        scopes=old.scopes,
        status=KeyStatus.ACTIVE,
        created_at=stamp,
        updated_at=stamp,
        expires_at=expires_at,
    )
    context = AuditContext(actor=f"self:{keyid}", request_id=request_id)
    result: tuple[KeyRecord, KeyRecord] = require(registry, "rotate")(keyid, new, stamp, overlap, context=context)
    return result


def _same_client(verified: VerifiedSignature, target: KeyRecord) -> None:
    if verified.client_id != target.client_id:
        raise PermissionDenied(f"key {verified.keyid} belongs to another client", R.CLIENT_MISMATCH)


def handle_revocation(
    request: Request,
    keyid: str,
    *,
    now: float,
    registry: KeyRegistry,
    nonce_store: NonceStore | None,
    policy: VerificationPolicy = DEFAULT_POLICY,
    request_id: str | None = None,
) -> KeyRecord:
    """Revoke key ``keyid`` at the holder's request (docs/protocol.md section 7.2).

    Signed by the key itself (any usable key may revoke itself) or by another
    ``active`` key of the same client (a lost device is revoked from another one;
    a ``rotated`` key in its overlap may not revoke its successor). Body:
    ``{"reason": "..."}`` (optional, at most 200 characters) or empty.

    Raises:
        SignatureError: verification failures (401).
        RegistrationError: ``not_found`` (404), ``invalid_request``.
        PermissionDenied: ``client_mismatch`` (403).
        RegistryError: ``invalid_transition`` (already revoked, 409).
    """
    doc = _json_body(request, frozenset({"reason"}))
    reason = _text_member(doc, "reason", MAX_REASON)
    verified = verify_holder(request, now=now, registry=registry, nonce_store=nonce_store, policy=policy)
    target = registry.get(keyid)
    if target is None:
        raise RegistrationError(f"no key {keyid}", R.NOT_FOUND)
    _same_client(verified, target)
    if verified.keyid != keyid and verified.record.status is not KeyStatus.ACTIVE:
        raise PermissionDenied("only an active key revokes another", R.INVALID_TRANSITION)
    context = AuditContext(actor=f"self:{verified.keyid}", reason=reason, request_id=request_id)
    return set_status_with(registry, keyid, KeyStatus.REVOKED, int(now), context, allowed_from(KeyStatus.REVOKED))


def handle_approval(
    request: Request,
    keyid: str,
    *,
    now: float,
    registry: KeyRegistry,
    nonce_store: NonceStore | None,
    policy: VerificationPolicy = DEFAULT_POLICY,
    request_id: str | None = None,
) -> KeyRecord:
    """Approve the ``pending`` key ``keyid`` (a device joining the client) with an active key of the same
    client (docs/protocol.md section 7.3). The pending key's scopes must be among the approver's.

    Raises:
        SignatureError: verification failures (401).
        RegistrationError: ``not_found`` (404).
        PermissionDenied: ``client_mismatch`` or ``insufficient_scope`` (403).
        RegistryError: ``invalid_transition`` (the key is not pending, 409).
    """
    _json_body(request, frozenset())
    verified = verify_holder(request, now=now, registry=registry, nonce_store=nonce_store, policy=policy)
    target = registry.get(keyid)
    if target is None:
        raise RegistrationError(f"no key {keyid}", R.NOT_FOUND)
    _same_client(verified, target)
    if verified.record.status is not KeyStatus.ACTIVE:
        raise PermissionDenied("only an active key approves another", R.INVALID_TRANSITION)
    missing = [scope for scope in target.scopes if scope not in verified.scopes]
    if missing:
        raise PermissionDenied(f"the approving key lacks {' '.join(missing)}", R.INSUFFICIENT_SCOPE)
    context = AuditContext(actor=f"self:{verified.keyid}", request_id=request_id)
    return set_status_with(registry, keyid, KeyStatus.ACTIVE, int(now), context, {KeyStatus.PENDING})


def handle_client_keys(
    request: Request,
    client_id: str,
    *,
    now: float,
    registry: KeyRegistry,
    nonce_store: NonceStore | None,
    policy: VerificationPolicy = DEFAULT_POLICY,
) -> list[KeyRecord]:
    """The keys of ``client_id``, for a request signed by a usable key of that client (section 7.4).

    Raises:
        SignatureError: verification failures (401).
        PermissionDenied: ``client_mismatch`` (403).
    """
    verified = verify_holder(request, now=now, registry=registry, nonce_store=nonce_store, policy=policy)
    if verified.client_id != client_id:
        raise PermissionDenied(f"key {verified.keyid} belongs to another client", R.CLIENT_MISMATCH)
    return registry.list(client_id=client_id)


def registration_request(
    signer: Signer,
    url: str,
    *,
    client_id: str | None = None,
    label: str | None = None,
    scopes: list[str] | tuple[str, ...] | None = None,
    expires_at: int | None = None,
    now: float | None = None,
) -> Request:
    """Build the signed registration request for ``signer``'s key (the client side).

    Example, with ``requests``::

        url = "https://api.example/register/keys"
        req = registration_request(Signer(key), url, label="laptop")
        resp = requests.post(url, data=req.body, headers=dict(req.headers))  # 201: resp.json() is the record

    Args:
        signer: signs with the key being registered (the proof of possession).
        url: the absolute URL of the keys collection, ``{base}{mount}/keys``.
        client_id, label, scopes, expires_at: sent only when not ``None``.
        now: ``created`` in epoch seconds (default: the clock).

    Returns:
        a :class:`Request` with the JSON body and the ``Content-Type``,
        ``Content-Digest``, ``Signature-Input`` and ``Signature`` fields.

    Raises:
        ValueError: ``url`` is not an absolute http(s) URL.
    """
    doc: dict[str, Any] = {"jwk": public_jwk(signer.public_key)}
    for name, value in (("client_id", client_id), ("label", label), ("scopes", scopes), ("expires_at", expires_at)):
        if value is not None:
            doc[name] = list(value) if name == "scopes" else value  # type: ignore[arg-type]
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    request = Request.from_url("POST", url, [("Content-Type", "application/json")], body)
    signer.sign(request, now=now)
    return request


def _merge_signature_fields(request: Request) -> None:
    """Join repeated ``Signature-Input``/``Signature`` lines into one line each (``", "``), in order."""
    for name in ("Signature-Input", "Signature"):
        values = [v for k, v in request.headers if k.lower() == name.lower()]
        request.headers = [(k, v) for k, v in request.headers if k.lower() != name.lower()]
        request.headers.append((name, ", ".join(values)))
    request._index = None


def rotation_request(
    current: Signer,
    new: Signer,
    keys_url: str,
    *,
    label: str | None = None,
    expires_at: int | None = None,
    now: float | None = None,
) -> Request:
    """Build the signed rotation request (docs/protocol.md section 7.1): ``POST {keys_url}/{keyid}/rotate``
    with body ``{"jwk": <new public JWK>}``, signed by ``current`` (label ``df``) and by ``new``
    (label ``df-new``, tag ``datafold-new-key``), each with its own nonce.

    Args:
        current: the signer of the key being rotated (its default label and tag).
        new: a signer of the new key (any label/tag; the proof uses ``df-new``/``datafold-new-key``).
        keys_url: the keys collection, ``{base}{mount}/keys``.
        label, expires_at: sent when not ``None``.
        now: ``created`` of both signatures (default: the clock).

    Raises:
        ValueError: ``keys_url`` is not an absolute http(s) URL.
    """
    doc: dict[str, Any] = {"jwk": public_jwk(new.public_key)}
    if label is not None:
        doc["label"] = label
    if expires_at is not None:
        doc["expires_at"] = expires_at
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    url = f"{keys_url.rstrip('/')}/{current.keyid}/rotate"
    request = Request.from_url("POST", url, [("Content-Type", "application/json")], body)
    when = time.time() if now is None else now
    current.sign(request, now=when)
    new.relabeled(label=NEW_KEY_LABEL, tag=NEW_KEY_TAG).sign(request, now=when)
    _merge_signature_fields(request)
    return request


def lifecycle_request(
    signer: Signer, method: str, url: str, doc: dict[str, Any] | None = None, *, now: float | None = None
) -> Request:
    """A signed lifecycle request (revoke, approve, client keys; also the admin API): ``doc`` as a JSON body."""
    if doc is None:
        request = Request.from_url(method, url)
    else:
        body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        request = Request.from_url(method, url, [("Content-Type", "application/json")], body)
    signer.sign(request, now=now)
    return request


def revocation_request(
    signer: Signer, keys_url: str, keyid: str | None = None, *, reason: str | None = None, now: float | None = None
) -> Request:
    """``POST {keys_url}/{keyid}/revoke`` signed by ``signer`` (``keyid`` default: the signer's own key)."""
    doc = None if reason is None else {"reason": reason}
    return lifecycle_request(signer, "POST", f"{keys_url.rstrip('/')}/{keyid or signer.keyid}/revoke", doc, now=now)


def approval_request(signer: Signer, keys_url: str, keyid: str, *, now: float | None = None) -> Request:
    """``POST {keys_url}/{keyid}/approve`` signed by ``signer`` (an active key of the same client)."""
    return lifecycle_request(signer, "POST", f"{keys_url.rstrip('/')}/{keyid}/approve", now=now)


def client_keys_url(keys_url: str, client_id: str) -> str:
    """``{base}{mount}/clients/{client_id}/keys`` from the keys collection URL ``{base}{mount}/keys``."""
    base = keys_url.rstrip("/")
    if base.endswith("/keys"):
        base = base[: -len("/keys")]
    return f"{base}/clients/{quote(client_id, safe='@:')}/keys"


@dataclass(frozen=True, slots=True)
class Route:
    """What a request to the registration app asks for.

    Attributes:
        action: ``register``, ``lookup``, ``rotate``, ``revoke``, ``approve`` or ``client_keys``.
        keyid: the key in the path, if any.
        client_id: the client in the path (``client_keys``).
    """

    action: str
    keyid: str | None = None
    client_id: str | None = None

    def need_keyid(self) -> str:
        """The keyid of a per-key route.

        Raises:
            RegistrationError: ``not_found``: the route has no keyid (a checked error, not an ``assert``,
                so that it also holds under ``python -O``).
        """
        if self.keyid is None:
            raise RegistrationError(f"no keyid for {self.action!r}", R.NOT_FOUND)
        return self.keyid

    def need_client_id(self) -> str:
        """The client id of a ``client_keys`` route (``RegistrationError`` ``not_found`` if it has none)."""
        if self.client_id is None:
            raise RegistrationError(f"no client id for {self.action!r}", R.NOT_FOUND)
        return self.client_id


_KEY_ACTIONS = {"rotate", "revoke", "approve"}


class RegistrationService:
    """Configuration and request handling shared by the WSGI and ASGI apps.

    Sans-I/O: the apps read the body, build the :class:`Request` and send the
    :data:`Response`; this class routes, decides and logs. Refusals are
    logged at INFO on ``datafold_auth.registration`` with reason and detail
    (never body or signature bytes) and answered as RFC 9457 problems.

    Args:
        registry: where keys are stored and looked up.
        nonce_store: replay protection for proofs.
        policy: the proof's verification policy (default: the DataFold profile).
        allowed_scopes: scopes a client may request (default: none).
        default_scopes: scopes granted when none are requested (default: none).
        require_approval: store new keys as ``pending`` (an operator activates them).
        clock: returns the current time in epoch seconds.
        authority: the public ``host[:port]`` for ``@authority`` behind a proxy
            (default: the request's ``Host``).
        max_body: largest accepted body in bytes (default 16 KiB; larger: 413).
        allow_join: a registration naming a client_id that has keys joins it as
            ``pending`` (another device) instead of ``409 client_id_taken``.
        rotation_overlap: seconds a rotated key keeps verifying (default 600). For zero
            rejected requests through a rotation, keep it above ``max_age + clock_skew``
            (330 s by default) plus the verifiers' cache ttl.
        key_lifetime: seconds new keys stay valid (``expires_at``); ``None``: unlimited.
        rate_limit: a :class:`~datafold_auth.ratelimit.RateLimiter` for ``POST /keys``
            (per client address and in total; ``None``: no limit). Refused: ``429 rate_limited``.
        trusted_proxies: how many reverse proxies in front of this app append to
            ``X-Forwarded-For``; the client address for the rate limit is taken that many
            entries from the right (default 0: the connection's peer address).
        audit: where refused registration requests are recorded (an :class:`~datafold_auth.audit.AuditSink`).

    Raises:
        TypeError: ``registry`` or ``nonce_store`` is missing or of the wrong kind.
    """

    def __init__(
        self,
        registry: KeyRegistry,
        nonce_store: NonceStore,
        *,
        policy: VerificationPolicy = DEFAULT_POLICY,
        allowed_scopes: Set[str] = frozenset(),
        default_scopes: tuple[str, ...] | list[str] = (),
        require_approval: bool = False,
        clock: Callable[[], float] = time.time,
        authority: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        allow_join: bool = False,
        rotation_overlap: int = DEFAULT_ROTATION_OVERLAP,
        key_lifetime: int | None = None,
        rate_limit: RateLimiter | None = None,
        trusted_proxies: int = 0,
        audit: AuditSink | None = None,
    ) -> None:
        if not all(callable(getattr(registry, name, None)) for name in ("get", "register")):
            raise TypeError("registration needs a key registry (an object with get() and register())")
        if not callable(getattr(nonce_store, "add", None)):
            raise TypeError("registration needs a nonce store (replayed proofs would be accepted without one)")
        if rotation_overlap < 0 or (key_lifetime is not None and key_lifetime <= 0) or trusted_proxies < 0:
            raise ValueError("rotation_overlap and trusted_proxies must not be negative, key_lifetime must be positive")
        self.registry = registry
        self.nonce_store = nonce_store
        self.policy = policy
        self.allowed_scopes = frozenset(allowed_scopes)
        self.default_scopes = tuple(default_scopes)
        self.require_approval = require_approval
        self.clock = clock
        self.authority = authority
        self.max_body = max_body
        self.allow_join = allow_join
        self.rotation_overlap = rotation_overlap
        self.key_lifetime = key_lifetime
        self.rate_limit = rate_limit
        self.trusted_proxies = trusted_proxies
        self.audit = audit

    @property
    def blocking(self) -> bool:
        """``True`` if the registry or the nonce store does blocking I/O."""
        return bool(getattr(self.registry, "blocking", True) or getattr(self.nonce_store, "blocking", True))

    def route(self, method: str, path: str) -> str | None:
        """Route ``POST /keys`` and ``GET``/``HEAD /keys/{keyid}`` (see :meth:`route_action` for all routes).

        Returns:
            ``None`` for ``POST /keys`` (a registration), the keyid for
            ``GET``/``HEAD /keys/{keyid}`` (a lookup).

        Raises:
            RegistrationError: ``not_found`` for any other path (lifecycle paths included).
            MethodNotAllowed: a known path with another method (405).
        """
        found = self.route_action(method, path)
        if found.action == "register":
            return None
        if found.action == "lookup":
            return found.keyid
        raise RegistrationError("no such path", R.NOT_FOUND)

    def route_action(self, method: str, path: str) -> Route:
        """Route a request by ``method`` and ``path`` relative to the mount point.

        Raises:
            RegistrationError: ``not_found`` for an unknown path.
            MethodNotAllowed: a known path with another method (405).
        """
        if path == "/keys":
            if method != "POST":
                raise MethodNotAllowed(f"{method!r} on /keys", "POST")  # repr: the method is as sent
            return Route("register")
        if path.startswith("/keys/"):
            keyid, _, action = path[6:].partition("/")
            if KEYID_RE.fullmatch(keyid):
                if not action:
                    if method not in ("GET", "HEAD"):
                        raise MethodNotAllowed(f"{method!r} on /keys/{{keyid}}", "GET, HEAD")
                    return Route("lookup", keyid=keyid)
                if action in _KEY_ACTIONS:
                    if method != "POST":
                        raise MethodNotAllowed(f"{method!r} on /keys/{{keyid}}/{action}", "POST")
                    return Route(action, keyid=keyid)
        if path.startswith("/clients/") and path.endswith("/keys"):
            client_id = path[len("/clients/") : -len("/keys")]
            if CLIENT_ID_RE.fullmatch(client_id):
                if method not in ("GET", "HEAD"):
                    raise MethodNotAllowed(f"{method!r} on /clients/{{client_id}}/keys", "GET, HEAD")
                return Route("client_keys", client_id=client_id)
        raise RegistrationError("no such path", R.NOT_FOUND)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address for the rate limit: ``peer``, or with ``trusted_proxies`` the entry
        of ``X-Forwarded-For`` that many from the right."""
        if self.trusted_proxies and forwarded_for:
            hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
            if len(hops) >= self.trusted_proxies:
                return hops[-self.trusted_proxies]
        return peer or "unknown"

    def check_rate(self, address: str) -> None:
        """Count a registration from ``address``.

        Raises:
            RateLimited: over a limit (429, with the seconds to wait).
        """
        if self.rate_limit is None:
            return
        wait = self.rate_limit.hit(address, self.clock())
        if wait is not None:
            raise RateLimited(f"registration rate limit reached for {address}", retry_after=wait)

    def handle(self, found: Route, request: Request, mount: str, *, request_id: str | None = None) -> Response:
        """Answer a routed request other than ``lookup`` (the apps read the body first).

        Raises:
            DatafoldAuthError: a refusal, to be answered with :meth:`refuse`.
        """
        if found.action == "register":
            return self.register(request, mount, request_id=request_id)
        now = self.clock()
        common: dict[str, Any] = {"now": now, "registry": self.registry, "nonce_store": self.nonce_store}
        headers = [("Cache-Control", "no-store")]
        if request_id:
            headers.append(("X-Request-Id", request_id))
        if found.action == "client_keys":
            client_id = found.need_client_id()
            records = handle_client_keys(request, client_id, policy=self.policy, **common)
            doc = {"client_id": client_id, "keys": [r.to_dict() for r in records]}
            return json_response(200, doc, headers)
        keyid = found.need_keyid()
        if found.action == "rotate":
            old, new = handle_rotation(
                request,
                keyid,
                policy=self.policy,
                overlap=self.rotation_overlap,
                key_lifetime=self.key_lifetime,
                request_id=request_id,
                **common,
            )
            log.info("rotated key %s to %s for client %s", old.keyid, new.keyid, new.client_id)
            location = f"{mount}/keys/{new.keyid}"
            return json_response(
                201, {"key": new.to_dict(), "previous": old.to_dict()}, [("Location", location), *headers]
            )
        if found.action == "revoke":
            record = handle_revocation(request, keyid, policy=self.policy, request_id=request_id, **common)
            log.info("revoked key %s of client %s at the holder's request", record.keyid, record.client_id)
        else:
            record = handle_approval(request, keyid, policy=self.policy, request_id=request_id, **common)
            log.info("approved key %s of client %s by another of its keys", record.keyid, record.client_id)
        return json_response(200, record.to_dict(), headers)

    def register(self, request: Request, mount: str, *, request_id: str | None = None) -> Response:
        """Handle ``POST /keys`` (see :func:`handle_registration`); ``mount`` is the
        percent-encoded mount path, used for ``Location``.

        Raises:
            DatafoldAuthError: a refusal, to be answered with :meth:`refuse`.
        """
        record = handle_registration(
            request,
            now=self.clock(),
            registry=self.registry,
            nonce_store=self.nonce_store,
            policy=self.policy,
            allowed_scopes=self.allowed_scopes,
            default_scopes=self.default_scopes,
            require_approval=self.require_approval,
            allow_join=self.allow_join,
            key_lifetime=self.key_lifetime,
            request_id=request_id,
        )
        log.info("registered key %s for client %s (%s)", record.keyid, record.client_id, record.status.value)
        location = f"{mount}/keys/{record.keyid}"
        headers = [("Location", location), ("Cache-Control", "no-store")]
        if request_id:
            headers.append(("X-Request-Id", request_id))
        return json_response(201, record.to_dict(), headers)

    def lookup(self, keyid: str) -> Response:
        """Handle ``GET /keys/{keyid}``: the public record.

        Raises:
            RegistrationError: ``not_found``.
            RegistryError: the registry is unavailable.
        """
        record = self.registry.get(keyid)
        if record is None:
            raise RegistrationError(f"no key {keyid}", R.NOT_FOUND)
        return json_response(200, record.to_dict(), [("Cache-Control", "no-store")])

    def refuse(
        self,
        exc: DatafoldAuthError,
        *,
        request: Request | None = None,
        method: str = "",
        path: str = "",
        remote: str | None = None,
        request_id: str | None = None,
    ) -> Response:
        """Log a refusal (and record it with the audit sink) and build its problem answer
        (with ``Allow`` for 405, ``Retry-After`` for 429, the ``refused_scopes`` member for 403
        ``scope_not_allowed``)."""
        log.info("registration request refused: %s: %s", exc.reason.value, exc.detail)
        if self.audit is not None and not isinstance(exc, MethodNotAllowed) and exc.reason is not R.NOT_FOUND:
            self.audit.rejected(
                exc,
                keyid=claimed_keyid(request),
                method=method,
                path=path,
                remote=remote,
                request_id=request_id,
            )
        retry = exc.retry_after if isinstance(exc, RateLimited) else None
        extensions = {"refused_scopes": list(exc.refused)} if isinstance(exc, ScopeNotAllowed) else None
        status, headers, body = problem(exc.reason, request_id=request_id, retry_after=retry, extensions=extensions)
        if isinstance(exc, MethodNotAllowed):
            headers.append(("Allow", exc.allow))
        return status, headers, body


__all__ = [
    "CLIENT_ID_RE",
    "DEFAULT_MAX_BODY",
    "DEFAULT_ROTATION_OVERLAP",
    "MAX_LABEL",
    "MAX_REASON",
    "MAX_SCOPES",
    "NEW_KEY_LABEL",
    "NEW_KEY_TAG",
    "SCOPE_RE",
    "MethodNotAllowed",
    "RegistrationBody",
    "RegistrationService",
    "Response",
    "RotationBody",
    "Route",
    "ScopeNotAllowed",
    "approval_request",
    "client_keys_url",
    "handle_approval",
    "handle_client_keys",
    "handle_registration",
    "handle_revocation",
    "handle_rotation",
    "lifecycle_request",
    "parse_registration_body",
    "parse_rotation_body",
    "registration_request",
    "revocation_request",
    "rotation_request",
    "verify_holder",
]
