"""``keytools revoke URL``: revoke this key (or another key of the same client) at the server."""

from __future__ import annotations

import argparse

from datafold_auth import Signer
from datafold_auth.registration import revocation_request

from ..common import KeytoolsError, add_key_arguments, load_signing_key, record_server_status, warn
from ..http import dumps, expect, send

NAME = "revoke"
HELP = "revoke the key at a server (signed by the key), or with --keyid another key of the same client"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: URL, --keyid, --reason, --timeout, --json and the key options."""
    parser.add_argument("url", help="the registration endpoint's keys URL, e.g. https://api.example/register/keys")
    parser.add_argument("--keyid", help="the key to revoke (default: this key); it must belong to the same client")
    parser.add_argument("--reason", help="why (kept in the server's audit log; at most 200 characters)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    parser.add_argument("--json", action="store_true", help="print the server's key record as JSON")
    add_key_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Send the signed revocation and print the key's new status."""
    key, meta, store = load_signing_key(args)
    signer = Signer(key)
    try:
        request = revocation_request(signer, args.url, args.keyid, reason=args.reason)
    except ValueError as exc:
        raise KeytoolsError(str(exc)) from None
    record = expect(send(request, timeout=args.timeout), 200, what="revocation")
    if args.json:
        print(dumps(record))
    else:
        print(f"revoked keyid {record['keyid']} of client {record['client_id']!r}")
    if record["keyid"] == signer.keyid:
        record_server_status(store, meta, args.url, str(record.get("status", "revoked")))
        warn(f"key {args.name!r} is revoked at {args.url}: it no longer signs requests there")
    return 0
