"""``keytools export``: the public key in a public format (never the private key: see ``backup``)."""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from datafold_auth.jwk import b64url_decode
from datafold_auth.keys import PUBLIC_FORMATS, export_public_key

from ..common import add_json_argument, add_name_argument, emit, find_key, write_file

NAME = "export"
HELP = "export the public key: spki-pem (default), spki-der, jwk, openssh, raw-hex or raw-base64url"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --name, --format, --comment, --out, --force, --json."""
    add_name_argument(parser)
    parser.add_argument("--format", choices=PUBLIC_FORMATS, default="spki-pem", help="output format (default spki-pem)")
    parser.add_argument("--comment", default="", help="comment for the openssh format (default: none)")
    parser.add_argument("--out", type=Path, help="write to FILE instead of standard output")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Write the public key; needs no passphrase (the public key is in the key's metadata)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    _store, meta = find_key(args)
    public = Ed25519PublicKey.from_public_bytes(b64url_decode(meta.public_key))
    data = export_public_key(public, args.format, comment=args.comment)
    if args.out is not None:
        write_file(args.out, data, force=args.force)
    text = data.decode("ascii") if args.format != "spki-der" else None
    result = {
        "keyid": meta.keyid,
        "format": args.format,
        "data": text if text is not None else base64.b64encode(data).decode("ascii"),
        "encoding": "text" if text is not None else "base64",
        "out": str(args.out) if args.out is not None else None,
    }
    if args.json:
        emit(args, result, [])
    elif args.out is not None:
        print(f"wrote the {args.format} public key of {meta.keyid} to {args.out}")
    elif text is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        sys.stdout.write(text)
    return 0
