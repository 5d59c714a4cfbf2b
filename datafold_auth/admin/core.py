"""The admin API, sans-I/O: routing, authorization and the operations (docs/operations.md, Admin API).

Every request is a DataFold-signed request (docs/protocol.md), verified by
the application's :class:`~datafold_auth.Verifier`, by a key whose scopes
include ``admin`` (configurable; the ``datafold_auth_authorize`` hook may
decide instead). Other keys get ``403 insufficient_scope``. Routes, relative
to the mount point::

    GET  /keys?status=&client_id=&limit=&offset=   list keys (oldest first; limit <= 1000, default 100)
    GET  /keys/{keyid}                             one key (with its status_reason)
    POST /keys/{keyid}/approve                     pending or suspended -> active
    POST /keys/{keyid}/suspend                     pending or active -> suspended
    POST /keys/{keyid}/revoke                      any but revoked -> revoked
    POST /keys/import                              bulk import of public keys (JSON lines or CSV)
    POST /keys/revoke                              bulk revoke: {"keyids": [...], "client_id": "...", "reason": "..."}
    GET  /counts                                   keys per status
    POST /expire                                   run the expiry sweep now
    GET  /audit?after=&limit=                      the audit log as JSON lines (limit <= 10000, default 1000)

Status changes take ``{"reason": "..."}`` (optional). Listing and counting
run the expiry sweep first, so ``expired`` is up to date in what they show.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ..audit import AuditContext, AuditSink, write_jsonl
from ..errors import DatafoldAuthError, KeyFormatError, PermissionDenied, RegistrationError, RegistryError
from ..errors import Reason as R
from ..jwk import KEYID_RE, jwk_thumbprint, public_key_bytes, public_key_from_jwk
from ..message import Request
from ..middleware._common import Identity, claimed_keyid
from ..permissions import allowed
from ..registration.core import CLIENT_ID_RE, MAX_LABEL, MAX_REASON, SCOPE_RE, MethodNotAllowed
from ..registry import KeyRecord, KeyRegistry, KeyStatus, allowed_from
from ..registry.base import register_with, require, set_status_with
from ..verifier import Verifier
from ..wire import json_response, problem

log = logging.getLogger("datafold_auth.admin")

Response = tuple[int, list[tuple[str, str]], bytes]
DEFAULT_MAX_BODY = 8 * 1024 * 1024
"""Largest admin request body in bytes (8 MiB: about 50,000 imported keys)."""
MAX_IMPORT = 50_000
"""Most keys one import may carry."""
MAX_BULK = 10_000
"""Most keys one bulk revocation may name."""
IMPORT_STATUSES = frozenset({KeyStatus.ACTIVE, KeyStatus.PENDING, KeyStatus.SUSPENDED})
"""Statuses an imported key may have."""
_STATUS_ACTIONS: dict[str, tuple[KeyStatus, frozenset[KeyStatus]]] = {
    "approve": (KeyStatus.ACTIVE, frozenset({KeyStatus.PENDING, KeyStatus.SUSPENDED})),
    "suspend": (KeyStatus.SUSPENDED, frozenset({KeyStatus.PENDING, KeyStatus.ACTIVE})),
    "revoke": (KeyStatus.REVOKED, allowed_from(KeyStatus.REVOKED)),
}


@dataclass(frozen=True, slots=True)
class AdminRoute:
    """A routed admin request: ``action`` and the keyid in the path, if any."""

    action: str
    keyid: str | None = None


def _invalid(detail: str) -> RegistrationError:
    return RegistrationError(detail, R.INVALID_REQUEST)


def _int_arg(query: dict[str, list[str]], name: str, default: int, maximum: int | None = None) -> int:
    values = query.get(name)
    if not values:
        return default
    text = values[0]
    if not text.isascii() or not text.isdigit():
        raise _invalid(f"{name} must be a non-negative integer")
    value = int(text)
    if maximum is not None and value > maximum:
        raise _invalid(f"{name} must be at most {maximum}")
    return value


def _json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _invalid("the body is not a UTF-8 JSON document") from None
    if not isinstance(doc, dict):
        raise _invalid("the body is not a JSON object")
    return doc


def _reason(doc: dict[str, Any]) -> str:
    reason = doc.get("reason")
    if reason is None:
        return ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise _invalid(f'"reason" must be a string of at most {MAX_REASON} characters')
    return reason


def import_record(doc: dict[str, Any], now: int) -> KeyRecord:
    """The record of one imported key: ``{"jwk": {...}}`` or ``{"public_key": "<base64url>"}``, plus optional
    ``client_id`` (default: the keyid), ``label``, ``scopes`` (a list or one space-separated string),
    ``status`` (``active``, default; ``pending``; ``suspended``) and ``expires_at`` (epoch seconds).
    A ``keyid`` member, if present, must be the key's thumbprint.

    Raises:
        RegistrationError: ``invalid_request`` or ``invalid_key`` with the rule broken.
    """
    try:
        if doc.get("jwk") is not None:
            raw = public_key_bytes(public_key_from_jwk(doc["jwk"]))
        elif isinstance(doc.get("public_key"), str):
            raw = public_key_bytes(public_key_from_jwk({"kty": "OKP", "crv": "Ed25519", "x": doc["public_key"]}))
        else:
            raise _invalid('each key needs "jwk" or "public_key" (base64url)')
    except KeyFormatError as exc:
        raise RegistrationError(exc.detail, R.INVALID_KEY) from None
    keyid = jwk_thumbprint(raw)
    if doc.get("keyid") not in (None, "", keyid):
        raise _invalid("keyid is not the thumbprint of the key")
    client_id = doc.get("client_id") or keyid
    if not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id):
        raise _invalid("client_id must be 1-128 characters of A-Z a-z 0-9 . _ @ : -")
    label = doc.get("label") or ""
    if not isinstance(label, str) or len(label) > MAX_LABEL or any(ord(c) < 32 for c in label):
        raise _invalid(f"label must be text of at most {MAX_LABEL} characters without control characters")
    scopes = doc.get("scopes") or ()
    if isinstance(scopes, str):
        scopes = scopes.split()
    if not isinstance(scopes, list | tuple) or not all(isinstance(s, str) and SCOPE_RE.fullmatch(s) for s in scopes):
        raise _invalid("scopes must be RFC 6749 scope-tokens")
    try:
        status = KeyStatus(doc.get("status") or "active")
    except ValueError:
        raise _invalid("unknown status") from None
    if status not in IMPORT_STATUSES:
        raise _invalid("an imported key is active, pending or suspended")
    expires_at = doc.get("expires_at")
    if expires_at in ("", None):
        expires_at = None
    elif isinstance(expires_at, str) and expires_at.isdigit():
        expires_at = int(expires_at)
    if expires_at is not None and type(expires_at) is not int:
        raise _invalid("expires_at must be epoch seconds")
    return KeyRecord(
        keyid=keyid,
        public_key=raw,
        client_id=client_id,
        label=label,
        scopes=tuple(dict.fromkeys(scopes)),
        status=status,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )


CSV_COLUMNS = ("client_id", "public_key", "label", "scopes", "status", "expires_at")
"""CSV import columns (a header row names them; ``public_key`` is required, the others optional)."""


def parse_import(body: bytes, content_type: str) -> Iterable[tuple[int, dict[str, Any] | Exception]]:
    """``(line number, document or the error reading it)`` for each key of an import body.

    ``application/jsonl`` (also ``application/x-ndjson``, ``application/json-lines``): one JSON
    object per line. ``text/csv``: a header row (:data:`CSV_COLUMNS`), then one key per row.

    Raises:
        RegistrationError: ``invalid_request`` for another content type or a body that is not UTF-8.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _invalid("the import is not UTF-8 text") from None
    if kind in ("application/jsonl", "application/x-ndjson", "application/json-lines"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                yield number, doc if isinstance(doc, dict) else _invalid("a line is not a JSON object")
            except ValueError:
                yield number, _invalid("a line is not JSON")
        return
    if kind == "text/csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "public_key" not in reader.fieldnames:
            raise _invalid(f"a CSV import starts with a header row: {','.join(CSV_COLUMNS)}")
        for row in reader:
            yield reader.line_num, {k: v for k, v in row.items() if k is not None}
        return
    raise _invalid("an import is application/jsonl or text/csv")


class AdminService:
    """Authorization and operations of the admin API, shared by the WSGI and ASGI apps.

    Args:
        registry: the key registry to administer (the full :class:`~datafold_auth.registry.KeyRegistry`).
        verifier: verifies the admins' signed requests (the application's own verifier).
        scope: the scope a key needs (default ``admin``).
        audit: where refused admin requests are recorded.
        clock: current time in epoch seconds.
        authority: the public ``host[:port]`` for ``@authority`` behind a proxy.
        max_body: largest request body in bytes (default 8 MiB).

    Raises:
        TypeError: ``verifier`` is not a :class:`~datafold_auth.Verifier`-like object.
    """

    def __init__(
        self,
        registry: KeyRegistry,
        verifier: Verifier,
        *,
        scope: str = "admin",
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.time,
        authority: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        if not callable(getattr(verifier, "verify", None)):
            raise TypeError("the admin API needs a Verifier for the admins' signatures")
        self.registry = registry
        self.verifier = verifier
        self.scope = scope
        self.audit = audit
        self.clock = clock
        self.authority = authority
        self.max_body = max_body

    @property
    def blocking(self) -> bool:
        """``True`` if registry calls do I/O."""
        return bool(getattr(self.registry, "blocking", True)) or self.verifier.blocking

    # ------------------------------------------------------------------ auth

    def identify(self, request: Request, identity: Identity | None) -> Identity:
        """Who signed ``request``: the identity the middleware already verified, else verify here.

        Raises:
            SignatureError: the signature does not verify (401).
        """
        if identity is None:
            identity = Identity.from_verified(self.verifier.verify(request, self.clock()))
        return identity

    def authorize(self, identity: Identity, request: Request | None = None) -> None:
        """Require the admin scope (through :func:`datafold_auth.permissions.allowed`).

        Raises:
            PermissionDenied: ``insufficient_scope`` (403).
        """
        if not allowed(identity, (self.scope,), request):
            raise PermissionDenied(f"key {identity.keyid} of {identity.client_id!r} lacks the {self.scope!r} scope")

    def authenticate(self, request: Request, identity: Identity | None) -> Identity:
        """:meth:`identify` then :meth:`authorize`; the admin's identity."""
        found = self.identify(request, identity)
        self.authorize(found, request)
        return found

    # --------------------------------------------------------------- routing

    def route(self, method: str, path: str) -> AdminRoute:
        """Route by method and path relative to the mount point.

        Raises:
            RegistrationError: ``not_found``. MethodNotAllowed: 405.
        """

        def need(allowed_method: str, action: str, keyid: str | None = None) -> AdminRoute:
            ok = method == allowed_method or (allowed_method == "GET" and method == "HEAD")
            if not ok:
                raise MethodNotAllowed(f"{method!r} on {path!r}", allowed_method)
            return AdminRoute(action, keyid)

        if path == "/keys":
            return need("GET", "list")
        if path == "/keys/import":
            return need("POST", "import")
        if path == "/keys/revoke":
            return need("POST", "bulk_revoke")
        if path == "/counts":
            return need("GET", "counts")
        if path == "/expire":
            return need("POST", "expire")
        if path == "/audit":
            return need("GET", "audit")
        if path.startswith("/keys/"):
            keyid, _, action = path[6:].partition("/")
            if KEYID_RE.fullmatch(keyid):
                if not action:
                    return need("GET", "show", keyid)
                if action in _STATUS_ACTIONS:
                    return need("POST", action, keyid)
        raise RegistrationError("no such path", R.NOT_FOUND)

    # ------------------------------------------------------------ operations

    def handle(self, found: AdminRoute, identity: Identity, request: Request, request_id: str | None) -> Response:
        """Carry out an authorized admin request.

        Raises:
            DatafoldAuthError: a refusal, answered with :meth:`refuse`.
        """
        now = int(self.clock())
        query = parse_qs(request.query or "", keep_blank_values=True)
        actor = f"admin:{identity.client_id}/{identity.keyid}"
        headers = [("Cache-Control", "no-store")]
        if request_id:
            headers.append(("X-Request-Id", request_id))
        action = found.action
        if action == "list":
            return json_response(200, self._list(query, now), headers)
        if action == "show":
            record = self.registry.get(found.keyid or "")
            if record is None:
                raise RegistrationError(f"no key {found.keyid}", R.NOT_FOUND)
            return json_response(200, record.to_admin_dict(), headers)
        if action in _STATUS_ACTIONS:
            target, expected = _STATUS_ACTIONS[action]
            context = AuditContext(actor=actor, reason=_reason(_json(request.body)), request_id=request_id)
            record = set_status_with(self.registry, found.keyid or "", target, now, context, expected)
            log.info("admin %s: %s key %s (%s)", identity.client_id, action, record.keyid, record.client_id)
            return json_response(200, record.to_admin_dict(), headers)
        if action == "counts":
            require(self.registry, "expire_due")(now, context=AuditContext(actor="system", request_id=request_id))
            counts = require(self.registry, "counts")()
            return json_response(200, {"counts": counts, "total": sum(counts.values())}, headers)
        if action == "expire":
            changed = require(self.registry, "expire_due")(
                now, context=AuditContext(actor=actor, request_id=request_id)
            )
            return json_response(200, {"expired": [r.keyid for r in changed]}, headers)
        if action == "import":
            content_type = (request.field_values("content-type") or [""])[0]
            return json_response(200, self._import(request.body, content_type, actor, now, request_id), headers)
        if action == "bulk_revoke":
            return json_response(200, self._bulk_revoke(_json(request.body), actor, now, request_id), headers)
        if action == "audit":
            after = _int_arg(query, "after", 0)
            limit = _int_arg(query, "limit", 1000, 10_000)
            entries = require(self.registry, "audit_entries")(after=after, limit=limit)
            out = io.StringIO()
            write_jsonl(entries, out)
            body = out.getvalue().encode("utf-8")
            return 200, [("Content-Type", "application/jsonl"), ("Content-Length", str(len(body))), *headers], body
        raise RegistrationError("no such path", R.NOT_FOUND)  # pragma: no cover - route() knows every action

    def _list(self, query: dict[str, list[str]], now: int) -> dict[str, Any]:
        status = None
        if query.get("status"):
            try:
                status = KeyStatus(query["status"][0])
            except ValueError:
                raise _invalid(f"status is one of {', '.join(s.value for s in KeyStatus)}") from None
        client_id = query["client_id"][0] if query.get("client_id") else None
        if client_id is not None and not CLIENT_ID_RE.fullmatch(client_id):
            raise _invalid("client_id must be 1-128 characters of A-Z a-z 0-9 . _ @ : -")
        limit = _int_arg(query, "limit", 100, 1000)
        offset = _int_arg(query, "offset", 0)
        expire = getattr(self.registry, "expire_due", None)
        if callable(expire):
            expire(now, context=AuditContext(actor="system"))
        records = self.registry.list(client_id=client_id, status=status, limit=limit, offset=offset)
        return {
            "keys": [r.to_admin_dict() for r in records],
            "limit": limit,
            "offset": offset,
            "next_offset": offset + len(records) if len(records) == limit else None,
        }

    def _import(self, body: bytes, content_type: str, actor: str, now: int, request_id: str | None) -> dict[str, Any]:
        imported: list[str] = []
        errors: list[dict[str, Any]] = []
        context = AuditContext(actor=actor, event="imported", request_id=request_id)
        for count, (line, item) in enumerate(parse_import(body, content_type), 1):
            if count > MAX_IMPORT:
                raise _invalid(f"an import carries at most {MAX_IMPORT} keys")
            try:
                if isinstance(item, Exception):
                    raise item
                record = import_record(item, now)
                register_with(self.registry, record, context, allow_existing_client=True)
                imported.append(record.keyid)
            except (DatafoldAuthError, TypeError, ValueError) as exc:
                reason = exc.reason.value if isinstance(exc, DatafoldAuthError) else R.INVALID_REQUEST.value
                detail = exc.detail if isinstance(exc, DatafoldAuthError) else str(exc)
                if isinstance(exc, RegistryError) and exc.reason is R.REGISTRY_UNAVAILABLE:
                    raise
                errors.append({"line": line, "reason": reason, "detail": detail[:200]})
        log.info("admin import: %d keys imported, %d refused", len(imported), len(errors))
        return {"imported": imported, "errors": errors}

    def _bulk_revoke(self, doc: dict[str, Any], actor: str, now: int, request_id: str | None) -> dict[str, Any]:
        keyids = doc.get("keyids") or []
        client_id = doc.get("client_id")
        if not isinstance(keyids, list) or not all(isinstance(k, str) for k in keyids) or len(keyids) > MAX_BULK:
            raise _invalid(f'"keyids" must be a list of at most {MAX_BULK} keyids')
        if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id)):
            raise _invalid('"client_id" must be a client id')
        if not keyids and client_id is None:
            raise _invalid('give "keyids", "client_id" or both')
        targets = list(dict.fromkeys(keyids))
        if client_id is not None:
            targets += [r.keyid for r in self.registry.list(client_id=client_id) if r.status is not KeyStatus.REVOKED]
        context = AuditContext(actor=actor, reason=_reason(doc), request_id=request_id)
        revoked: list[str] = []
        errors: list[dict[str, str]] = []
        expected = allowed_from(KeyStatus.REVOKED)
        for keyid in dict.fromkeys(targets):
            try:
                set_status_with(self.registry, keyid, KeyStatus.REVOKED, now, context, expected)
                revoked.append(keyid)
            except RegistryError as exc:
                if exc.reason is R.REGISTRY_UNAVAILABLE:
                    raise
                errors.append({"keyid": keyid[:64], "reason": exc.reason.value})
        log.info("admin bulk revoke: %d keys revoked, %d refused", len(revoked), len(errors))
        return {"revoked": revoked, "errors": errors}

    # --------------------------------------------------------------- refusal

    def refuse(
        self,
        exc: DatafoldAuthError,
        *,
        request: Request | None,
        method: str,
        path: str,
        remote: str | None,
        request_id: str | None,
        identity: Identity | None = None,
    ) -> Response:
        """Log a refusal, record it with the audit sink (failed authentication and authorization), answer it."""
        log.info("admin request refused: %s: %s", exc.reason.value, exc.detail)
        if self.audit is not None and exc.reason.status in (401, 403):
            self.audit.rejected(
                exc,
                keyid=identity.keyid if identity else claimed_keyid(request),
                client_id=identity.client_id if identity else None,
                method=method,
                path=path,
                remote=remote,
                request_id=request_id,
            )
        status, headers, body = problem(exc.reason, request_id=request_id)
        if isinstance(exc, MethodNotAllowed):
            headers.append(("Allow", exc.allow))
        return status, headers, body


__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_MAX_BODY",
    "IMPORT_STATUSES",
    "MAX_BULK",
    "MAX_IMPORT",
    "AdminRoute",
    "AdminService",
    "Response",
    "import_record",
    "parse_import",
]
