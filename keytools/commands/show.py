"""``keytools show``: print the public facts about a key (no passphrase needed)."""

from __future__ import annotations

import argparse
import json

from ..common import add_name_argument, describe, find_key, format_time

NAME = "show"
HELP = "show a key's keyid, public JWK, label, client id, store, encryption, creation time and servers"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --name, --json."""
    add_name_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Print the key's description as text or JSON."""
    store, meta = find_key(args)
    info = describe(meta, store)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    info["public_jwk"] = json.dumps(info["public_jwk"])
    info["client_id"] = info["client_id"] or "-"
    info["encrypted"] = "yes" if meta.encrypted else "NO"
    info["created"] = f"{format_time(meta.created)} ({meta.created})"
    info["servers"] = ", ".join(meta.servers) or "-"
    for field, value in info.items():
        print(f"{field + ':':<12}{value}")
    return 0
