"""``keytools client-keys URL``: the keys (devices) of this key's client at the server."""

from __future__ import annotations

import argparse
from typing import Any

from datafold_auth import Signer
from datafold_auth.registration import client_keys_url, lifecycle_request

from ..common import KeytoolsError, add_key_arguments, load_signing_key, record_server_status
from ..http import dumps, expect, send

NAME = "client-keys"
HELP = "list the keys of this key's client at a server (status, label, fingerprint), signed by this key"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: URL, --client-id, --timeout, --json and the key options."""
    parser.add_argument("url", help="the registration endpoint's keys URL, e.g. https://api.example/register/keys")
    parser.add_argument("--client-id", help="the client (default: the key's client id)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    parser.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    add_key_arguments(parser)


def _reason(response: Any) -> str | None:
    """The ``reason`` of a problem document, or ``None``."""
    try:
        doc = response.json()
    except ValueError:
        return None
    return doc.get("reason") if isinstance(doc, dict) else None


def run(args: argparse.Namespace) -> int:
    """Print one line per key: keyid, status, fingerprint, label (``*`` marks this key)."""
    key, meta, store = load_signing_key(args)
    signer = Signer(key)
    client_id = args.client_id or meta.client_id or signer.keyid
    try:
        request = lifecycle_request(signer, "GET", client_keys_url(args.url, client_id))
    except ValueError as exc:
        raise KeytoolsError(str(exc)) from None
    response = send(request, timeout=args.timeout)
    if (
        response.status_code == 403
        and args.client_id is None
        and meta.client_id is None
        and _reason(response) == "client_mismatch"
    ):
        # a key restored from a PEM, paper or Shamir backup has no client_id: the keyid was asked for instead
        raise KeytoolsError(
            f"key {meta.name!r} has no client_id recorded (a PEM, paper or Shamir backup carries none); pass"
            " --client-id ID, or restore it with --client-id ID"
        )
    doc = expect(response, 200, what="listing")
    for record in doc["keys"]:
        if record.get("keyid") == signer.keyid:
            record_server_status(store, meta, args.url, str(record.get("status", "")))
    if args.json:
        print(dumps(doc))
        return 0
    print(f"client {doc['client_id']!r}: {len(doc['keys'])} key(s)")
    for record in doc["keys"]:
        mark = "*" if record["keyid"] == signer.keyid else " "
        print(f"{mark} {record['keyid']}  {record['status']:<9}  {record['fingerprint']}  {record['label']}")
    return 0
