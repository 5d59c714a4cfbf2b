"""``keytools register URL``: register the key's public key by proof of possession."""

from __future__ import annotations

import argparse
import json

import requests

from datafold_auth import Signer
from datafold_auth.registration import registration_request

from ..common import KeytoolsError, add_key_arguments, load_signing_key, record_server_status
from ..http import reason, unreachable

NAME = "register"
HELP = "register the key with a DataFold registration endpoint (signed by the key itself)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: URL, --client-id, --label, --scope (repeatable), --timeout, --json and the key options."""
    parser.add_argument("url", help="the registration endpoint's keys URL, e.g. https://api.example/register/keys")
    parser.add_argument("--client-id", help="identity to register under (default: the key's client id, else its keyid)")
    parser.add_argument("--label", help="label shown to the server's operators (default: the key's label)")
    parser.add_argument("--scope", action="append", dest="scopes", help="scope to request (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    parser.add_argument("--json", action="store_true", help="print the server's key record as JSON")
    add_key_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Send the signed registration; record the server in the key's metadata on success."""
    key, meta, store = load_signing_key(args)
    client_id = args.client_id or meta.client_id
    label = args.label if args.label is not None else (meta.label or None)
    try:
        request = registration_request(Signer(key), args.url, client_id=client_id, label=label, scopes=args.scopes)
    except ValueError as exc:
        raise KeytoolsError(str(exc)) from None
    try:
        response = requests.post(args.url, data=request.body, headers=dict(request.headers), timeout=args.timeout)
    except requests.RequestException as exc:
        raise unreachable(args.url, exc, args.timeout) from None
    if response.status_code in (404, 405) and reason(response).split(" ")[0] in ("not_found", "method_not_allowed"):
        raise KeytoolsError(
            f"no registration endpoint at {args.url} (HTTP {response.status_code}); "
            "the URL is the keys collection, e.g. https://host/register/keys"
        )
    if response.status_code != 201:
        raise KeytoolsError(f"registration refused: HTTP {response.status_code} {reason(response)}")
    record = response.json()
    if client_id:
        meta.client_id = client_id
    record_server_status(store, meta, args.url, str(record.get("status", "")))
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"registered keyid {record['keyid']} as client {record['client_id']!r}: status {record['status']}")
        print(f"server: {args.url}")
    return 0

