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
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Set
from dataclasses import dataclass, replace
from typing import Any

from ..errors import DatafoldAuthError, KeyFormatError, RegistrationError, SignatureError
from ..errors import Reason as R
from ..jwk import KEYID_RE, jwk_thumbprint, public_jwk, public_key_bytes, public_key_from_jwk
from ..message import Request
from ..nonce import NonceStore
from ..profile import DEFAULT_POLICY, VerificationPolicy
from ..registry import KeyRecord, KeyRegistry, KeyStatus
from ..signer import Signer
from ..verifier import verify_request
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
_MEMBERS = frozenset({"jwk", "client_id", "label", "scopes"})
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
    """

    jwk: dict[str, Any]
    client_id: str | None = None
    label: str = ""
    scopes: tuple[str, ...] | None = None


def parse_registration_body(body: bytes) -> RegistrationBody:
    """Parse and shape-check a registration body (RFC 8259 JSON, UTF-8).

    Members: ``jwk`` (object, required), ``client_id``, ``label``, ``scopes``
    (optional; ``null`` is the same as absent). Unknown or repeated members,
    ``NaN``/``Infinity``, control characters, bidi embedding/override/isolate
    controls, line or paragraph separators or lone surrogates in ``label``
    are refused.

    Raises:
        RegistrationError: reason ``invalid_request`` naming the broken rule.
    """
    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _invalid("the body is not a UTF-8 JSON document") from None
    if not isinstance(doc, dict):
        raise _invalid("the body is not a JSON object")
    unknown = set(doc) - _MEMBERS
    if unknown:
        raise _invalid(f"unknown members: {', '.join(sorted(map(repr, unknown)))[:200]}")
    jwk = doc.get("jwk")
    if not isinstance(jwk, dict):
        raise _invalid('"jwk" must be a JSON object')
    client_id = doc.get("client_id")
    if client_id is not None and not (isinstance(client_id, str) and CLIENT_ID_RE.fullmatch(client_id)):
        raise _invalid('"client_id" must be 1-128 characters of A-Z a-z 0-9 . _ @ : -')
    label = doc.get("label")
    if label is None:
        label = ""
    elif not isinstance(label, str) or len(label) > MAX_LABEL:
        raise _invalid(f'"label" must be a string of at most {MAX_LABEL} characters')
    elif any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS for ch in label):
        raise _invalid('"label" must not contain control characters, bidi controls, line separators or lone surrogates')
    scopes = doc.get("scopes")
    if scopes is not None:
        if not isinstance(scopes, list) or len(scopes) > MAX_SCOPES:
            raise _invalid(f'"scopes" must be a list of at most {MAX_SCOPES} strings')
        if not all(isinstance(s, str) and SCOPE_RE.fullmatch(s) for s in scopes):
            raise _invalid("each scope must be an RFC 6749 scope-token of 1-128 characters")
        scopes = tuple(dict.fromkeys(scopes))
    return RegistrationBody(jwk=jwk, client_id=client_id, label=label, scopes=scopes)


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
        raise RegistrationError(f"scopes not allowed: {', '.join(refused)}", R.SCOPE_NOT_ALLOWED)
    stamp = int(now)
    return registry.register(
        KeyRecord(
            keyid=keyid,
            public_key=raw,
            client_id=body.client_id or keyid,
            label=body.label,
            scopes=scopes,
            status=KeyStatus.PENDING if require_approval else KeyStatus.ACTIVE,
            created_at=stamp,
            updated_at=stamp,
        )
    )


def registration_request(
    signer: Signer,
    url: str,
    *,
    client_id: str | None = None,
    label: str | None = None,
    scopes: list[str] | tuple[str, ...] | None = None,
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
        client_id, label, scopes: sent only when not ``None``.
        now: ``created`` in epoch seconds (default: the clock).

    Returns:
        a :class:`Request` with the JSON body and the ``Content-Type``,
        ``Content-Digest``, ``Signature-Input`` and ``Signature`` fields.

    Raises:
        ValueError: ``url`` is not an absolute http(s) URL.
    """
    doc: dict[str, Any] = {"jwk": public_jwk(signer.public_key)}
    for name, value in (("client_id", client_id), ("label", label), ("scopes", scopes)):
        if value is not None:
            doc[name] = list(value) if name == "scopes" else value
    body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    request = Request.from_url("POST", url, [("Content-Type", "application/json")], body)
    signer.sign(request, now=now)
    return request


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
    ) -> None:
        if not all(callable(getattr(registry, name, None)) for name in ("get", "register")):
            raise TypeError("registration needs a key registry (an object with get() and register())")
        if not callable(getattr(nonce_store, "add", None)):
            raise TypeError("registration needs a nonce store (replayed proofs would be accepted without one)")
        self.registry = registry
        self.nonce_store = nonce_store
        self.policy = policy
        self.allowed_scopes = frozenset(allowed_scopes)
        self.default_scopes = tuple(default_scopes)
        self.require_approval = require_approval
        self.clock = clock
        self.authority = authority
        self.max_body = max_body

    @property
    def blocking(self) -> bool:
        """``True`` if the registry or the nonce store does blocking I/O."""
        return bool(getattr(self.registry, "blocking", True) or getattr(self.nonce_store, "blocking", True))

    def route(self, method: str, path: str) -> str | None:
        """Route a request by ``method`` and ``path`` relative to the mount point.

        Returns:
            ``None`` for ``POST /keys`` (a registration), the keyid for
            ``GET``/``HEAD /keys/{keyid}`` (a lookup).

        Raises:
            RegistrationError: ``not_found`` for any other path.
            MethodNotAllowed: a known path with another method (405).
        """
        if path == "/keys":
            if method != "POST":
                raise MethodNotAllowed(f"{method!r} on /keys", "POST")  # repr: the method is as sent
            return None
        keyid = path[6:] if path.startswith("/keys/") else ""
        if not KEYID_RE.fullmatch(keyid):
            raise RegistrationError("no such path", R.NOT_FOUND)
        if method not in ("GET", "HEAD"):
            raise MethodNotAllowed(f"{method!r} on /keys/{{keyid}}", "GET, HEAD")
        return keyid

    def register(self, request: Request, mount: str) -> Response:
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
        )
        log.info("registered key %s for client %s (%s)", record.keyid, record.client_id, record.status.value)
        location = f"{mount}/keys/{record.keyid}"
        return json_response(201, record.to_dict(), [("Location", location), ("Cache-Control", "no-store")])

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

    def refuse(self, exc: DatafoldAuthError) -> Response:
        """Log a refusal and build its problem answer (with ``Allow`` for 405)."""
        log.info("registration request refused: %s: %s", exc.reason.value, exc.detail)
        status, headers, body = problem(exc.reason)
        if isinstance(exc, MethodNotAllowed):
            headers.append(("Allow", exc.allow))
        return status, headers, body


__all__ = [
    "CLIENT_ID_RE",
    "DEFAULT_MAX_BODY",
    "MAX_LABEL",
    "MAX_SCOPES",
    "SCOPE_RE",
    "MethodNotAllowed",
    "RegistrationBody",
    "RegistrationService",
    "Response",
    "handle_registration",
    "parse_registration_body",
    "registration_request",
]
