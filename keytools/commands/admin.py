"""``keytools admin ...``: the admin API's command line (docs/operations.md, Admin API).

Every subcommand but ``bootstrap`` and ``audit verify --registry/--file``
sends requests signed by the local key (``--name``), which must hold the
``admin`` scope, to the admin API at ``--url`` (or ``$DATAFOLD_ADMIN_URL``),
e.g. ``https://api.example/admin``.

``bootstrap`` gives the first administrator a key: it writes the local key's
*public* key with the ``admin`` scope straight into the registry (the
operator's access to the database is the authority there).

``audit verify`` checks the hash chain of the audit log read from the admin
API, from a registry URL or from an exported JSON-lines file; it exits 3
when an entry was edited, removed or reordered (or the log does not reach
``--expect-head``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from datafold_auth import Signer
from datafold_auth.audit import AuditContext, AuditEntry, read_jsonl, verify_chain, write_jsonl
from datafold_auth.errors import AuditChainError
from datafold_auth.jwk import b64url_decode
from datafold_auth.keys import KeyStoreError
from datafold_auth.message import Request
from datafold_auth.registration import lifecycle_request
from datafold_auth.registry import KeyRecord, KeyStatus, open_registry
from datafold_auth.registry.base import register_with
from datafold_auth.urloptions import redacted

from ..common import (
    KeytoolsError,
    UsageError,
    VerificationFailed,
    add_key_arguments,
    find_key,
    load_signing_key,
    say,
)
from ..http import dumps, expect, send

NAME = "admin"
HELP = "administer a server's keys through its admin API (list, approve, suspend, revoke, import, audit, ...)"
URL_ENV = "DATAFOLD_ADMIN_URL"
"""Environment variable with the admin API URL (used when --url is not given)."""
PAGE = 1000


def _api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"the admin API, e.g. https://api.example/admin (default ${URL_ENV})")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    parser.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    add_key_arguments(parser)


def configure(parser: argparse.ArgumentParser) -> None:
    """Subcommands: list, show, approve, suspend, revoke, import, bulk-revoke, counts, expire, audit, bootstrap."""
    subs = parser.add_subparsers(dest="admin_command", required=True, metavar="SUBCOMMAND")

    sub = subs.add_parser("list", help="list keys, filtered by status and client", description="list keys")
    sub.add_argument("--status", choices=[s.value for s in KeyStatus], help="only keys with this status")
    sub.add_argument("--client-id", help="only keys of this client")
    sub.add_argument("--limit", type=int, default=100, help="keys per page (default 100, at most 1000)")
    sub.add_argument("--all", action="store_true", help="every page")
    _api_options(sub)

    sub = subs.add_parser("show", help="one key, with its status reason", description="show one key")
    sub.add_argument("keyid")
    _api_options(sub)

    for action, text in (
        ("approve", "approve a pending (or reactivate a suspended) key"),
        ("suspend", "suspend a pending or active key (approve reactivates it)"),
        ("revoke", "revoke a key for good"),
    ):
        sub = subs.add_parser(action, help=text, description=text)
        sub.add_argument("keyid")
        sub.add_argument("--reason", help="kept in the audit log (at most 200 characters)")
        _api_options(sub)

    sub = subs.add_parser("import", help="import public keys from JSON lines or CSV", description="bulk import")
    sub.add_argument("file", type=Path, help="JSON lines (.jsonl) or CSV (.csv) with a header row ('-': stdin)")
    sub.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file name (jsonl otherwise)")
    _api_options(sub)

    sub = subs.add_parser("bulk-revoke", help="revoke many keys: by keyid and/or every key of a client")
    sub.add_argument("keyids", nargs="*", help="keyids to revoke")
    sub.add_argument("--client-id", help="also revoke every key of this client")
    sub.add_argument("--file", type=Path, help="also revoke the keyids in this file (one per line)")
    sub.add_argument("--reason", help="kept in the audit log")
    _api_options(sub)

    sub = subs.add_parser("counts", help="keys per status", description="keys per status")
    _api_options(sub)

    sub = subs.add_parser("expire", help="mark every key past its expiry as expired now")
    _api_options(sub)

    sub = subs.add_parser("audit", help="export or verify the hash-chained audit log", description="audit log")
    audit = sub.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    export = audit.add_parser("export", help="write the audit log as JSON lines", description="export the log")
    export.add_argument("--out", default="-", help="file to write ('-': stdout, the default)")
    export.add_argument("--after", type=int, default=0, help="only entries after this seq")
    _api_options(export)
    verify = audit.add_parser(
        "verify", help="check the hash chain (edited, removed or reordered entries: exit 3)", description="verify"
    )
    source = verify.add_mutually_exclusive_group()
    source.add_argument("--registry", metavar="URL", help="read the log from this registry (postgresql://, sqlite://)")
    source.add_argument("--file", type=Path, help="read an exported JSON-lines file")
    verify.add_argument("--expect-head", metavar="HASH", help="the head hash recorded earlier (detects truncation)")
    _api_options(verify)

    sub = subs.add_parser(
        "bootstrap",
        help="register the local key's public key with the admin scope directly in a registry (first admin)",
        description="register the local key's public key straight into the registry, with the admin scope",
    )
    sub.add_argument("--registry", metavar="URL", required=True, help="e.g. postgresql://user@host/db?schema=auth")
    sub.add_argument("--client-id", default="admin", help="the administrator identity (default 'admin')")
    sub.add_argument("--scope", action="append", dest="scopes", help="scopes (default: admin); repeatable")
    sub.add_argument("--label", default="", help="label of the key")
    sub.add_argument("--json", action="store_true", help="print the stored record as JSON")
    add_key_arguments(sub)


# ------------------------------------------------------------------ requests


class _Api:
    def __init__(self, args: argparse.Namespace) -> None:
        url = args.url or os.environ.get(URL_ENV)
        if not url:
            raise UsageError(f"give the admin API URL with --url or ${URL_ENV}")
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"the admin URL must be absolute http:// or https://, not {url!r}")
        self.base = url.rstrip("/")
        key, _meta, _store = load_signing_key(args)
        self.signer = Signer(key)
        self.timeout = args.timeout

    def call(
        self,
        method: str,
        path: str,
        *,
        doc: dict[str, Any] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        query: dict[str, Any] | None = None,
    ) -> requests.Response:
        url = self.base + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        if body is not None:
            request = Request.from_url(
                method, url, [("Content-Type", content_type or "application/octet-stream")], body
            )
            self.signer.sign(request)
        else:
            request = lifecycle_request(self.signer, method, url, doc)
        return send(request, timeout=self.timeout)


def _print_keys(records: list[dict[str, Any]]) -> None:
    for r in records:
        print(f"{r['keyid']}  {r['status']:<9}  {r['client_id']:<24}  {r['fingerprint']}  {r['label']}")


def _entries_from_api(api: _Api, after: int) -> Iterator[AuditEntry]:
    while True:
        response = api.call("GET", "/audit", query={"after": after, "limit": PAGE})
        if response.status_code != 200:
            expect(response, 200, what="audit export")
        lines = response.text.split("\n")  # JSON lines: only "\n" ends one (splitlines would cut at U+2028)
        yield from read_jsonl(lines)
        count = sum(1 for line in lines if line.strip())
        if count < PAGE:
            return
        after += count


def _audit_verify(args: argparse.Namespace) -> int:
    try:
        if args.file is not None:
            with open(args.file, encoding="utf-8") as stream:
                report = verify_chain(read_jsonl(stream), expect_head=args.expect_head)
            where = str(args.file)
        elif args.registry is not None:
            registry = open_registry(args.registry)
            try:
                report = verify_chain(_paged(registry), expect_head=args.expect_head)
            finally:
                registry.close()
            where = redacted(args.registry).split("?", 1)[0]
        else:
            api = _Api(args)
            report = verify_chain(_entries_from_api(api, 0), expect_head=args.expect_head)
            where = api.base
    except AuditChainError as exc:
        raise VerificationFailed(f"audit log does not verify: {exc.detail}") from None
    except OSError as exc:
        raise KeytoolsError(f"cannot read {args.file}: {exc.strerror}") from None
    except ValueError as exc:
        raise VerificationFailed(f"audit log does not verify: {exc}") from None
    result = {"verified": True, "entries": report.count, "head_seq": report.head_seq, "head_hash": report.head_hash}
    if args.json:
        print(dumps(result))
    else:
        print(f"audit log OK ({where}): {report.count} entries, head seq {report.head_seq}")
        print(f"head hash: {report.head_hash}  (record it; pass it as --expect-head later to detect truncation)")
    return 0


def _paged(registry: Any) -> Iterator[AuditEntry]:
    after = 0
    while True:
        batch = registry.audit_entries(after=after, limit=PAGE)
        yield from batch
        if len(batch) < PAGE:
            return
        after = batch[-1].seq


def _bootstrap(args: argparse.Namespace) -> int:
    try:
        _store, meta = find_key(args)
    except KeyStoreError as exc:
        raise KeytoolsError(exc.detail) from None
    now = int(time.time())
    record = KeyRecord.for_public_key(
        b64url_decode(meta.public_key),
        args.client_id,
        label=args.label or meta.label,
        scopes=tuple(args.scopes or ["admin"]),
        status=KeyStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    registry = open_registry(args.registry)
    try:
        actor = f"local:{getpass.getuser()}"
        stored = register_with(registry, record, AuditContext(actor=actor, reason="admin bootstrap"))
    finally:
        registry.close()
    if args.json:
        print(dumps(stored.to_dict()))
    else:
        print(f"registered keyid {stored.keyid} as client {stored.client_id!r} with scopes {' '.join(stored.scopes)}")
        print(f"fingerprint: {stored.fingerprint}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Carry out the admin subcommand."""
    command = args.admin_command
    if command == "bootstrap":
        return _bootstrap(args)
    if command == "audit" and args.audit_command == "verify":
        return _audit_verify(args)
    api = _Api(args)
    if command == "audit":
        out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
        try:
            count = write_jsonl(_entries_from_api(api, args.after), out)
        finally:
            if out is not sys.stdout:
                out.close()
        if args.out != "-":
            say(f"wrote {count} audit entries to {args.out}")
        return 0
    if command == "list":
        query: dict[str, Any] = {"status": args.status, "client_id": args.client_id, "limit": args.limit, "offset": 0}
        records: list[dict[str, Any]] = []
        while True:
            page = expect(api.call("GET", "/keys", query=query), 200, what="listing")
            records += page["keys"]
            if not args.all or page["next_offset"] is None:
                break
            query["offset"] = page["next_offset"]
        if args.json:
            print(dumps({"keys": records}))
        else:
            _print_keys(records)
        return 0
    if command == "show":
        doc = expect(api.call("GET", f"/keys/{args.keyid}"), 200, what="lookup")
    elif command in ("approve", "suspend", "revoke"):
        body = None if args.reason is None else {"reason": args.reason}
        doc = expect(api.call("POST", f"/keys/{args.keyid}/{command}", doc=body), 200, what=command)
    elif command == "import":
        kind = args.format or ("csv" if str(args.file).endswith(".csv") else "jsonl")
        try:
            data = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
        except OSError as exc:
            raise KeytoolsError(f"cannot read {args.file}: {exc.strerror}") from None
        content_type = "text/csv" if kind == "csv" else "application/jsonl"
        doc = expect(api.call("POST", "/keys/import", body=data, content_type=content_type), 200, what="import")
    elif command == "bulk-revoke":
        keyids = list(args.keyids)
        if args.file is not None:
            keyids += [line.strip() for line in args.file.read_text().splitlines() if line.strip()]
        request_doc: dict[str, Any] = {"keyids": keyids, "reason": args.reason}
        if args.client_id:
            request_doc["client_id"] = args.client_id
        doc = expect(api.call("POST", "/keys/revoke", doc=request_doc), 200, what="bulk revocation")
    elif command == "counts":
        doc = expect(api.call("GET", "/counts"), 200, what="counts")
    else:  # expire
        doc = expect(api.call("POST", "/expire"), 200, what="expiry sweep")
    if args.json:
        print(dumps(doc))
        return 0
    if command in ("show", "approve", "suspend", "revoke"):
        _print_keys([doc])
        if doc.get("status_reason"):
            print(f"reason: {doc['status_reason']}")
    elif command == "import":
        print(f"imported {len(doc['imported'])} key(s), {len(doc['errors'])} refused")
        for error in doc["errors"]:
            print(f"line {error['line']}: {error['reason']}: {error['detail']}")
    elif command == "bulk-revoke":
        print(f"revoked {len(doc['revoked'])} key(s), {len(doc['errors'])} refused")
        for error in doc["errors"]:
            print(f"{error['keyid']}: {error['reason']}")
    elif command == "counts":
        for status, count in doc["counts"].items():
            print(f"{status:<10}{count}")
        print(f"{'total':<10}{doc['total']}")
    else:
        print(f"expired {len(doc['expired'])} key(s)")
    return 0


__all__ = ["NAME", "URL_ENV", "configure", "run"]
