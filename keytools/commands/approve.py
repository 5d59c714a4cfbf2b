"""``keytools approve URL KEYID``: approve another device's pending key for this client."""

from __future__ import annotations

import argparse

from datafold_auth import Signer
from datafold_auth.registration import approval_request

from ..common import KeytoolsError, add_key_arguments, load_signing_key
from ..http import dumps, expect, send

NAME = "approve"
HELP = "approve a pending key of the same client (a new device), signed by this key; compare fingerprints first"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: URL, KEYID, --timeout, --json and the key options."""
    parser.add_argument("url", help="the registration endpoint's keys URL, e.g. https://api.example/register/keys")
    parser.add_argument("keyid", help="the pending key (see keytools client-keys)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    parser.add_argument("--json", action="store_true", help="print the server's key record as JSON")
    add_key_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Send the signed approval and print the key's new status."""
    key, _meta, _store = load_signing_key(args)
    try:
        request = approval_request(Signer(key), args.url, args.keyid)
    except ValueError as exc:
        raise KeytoolsError(str(exc)) from None
    record = expect(send(request, timeout=args.timeout), 200, what="approval")
    if args.json:
        print(dumps(record))
    else:
        print(f"approved keyid {record['keyid']} ({record['fingerprint']}) for client {record['client_id']!r}")
    return 0
