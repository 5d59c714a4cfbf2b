"""``keytools sign FILE``: a detached Ed25519 signature (RFC 8032, pure) over the file's bytes."""

from __future__ import annotations

import argparse
import base64
from pathlib import Path

from ..common import KeytoolsError, add_json_argument, add_key_arguments, emit, unlock_key, write_file
from .import_key import read_input

NAME = "sign"
HELP = "sign FILE with a stored key: a detached signature in FILE.sig (base64 text, or --raw 64 bytes)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: FILE, --out, --raw, --force, --name, passphrase options, --json."""
    parser.add_argument("file", metavar="FILE", help="the file to sign ('-' for stdin, then --out is required)")
    parser.add_argument("--out", type=Path, metavar="SIG", help="signature file (default FILE.sig)")
    parser.add_argument(
        "--raw", action="store_true", help="write the 64 raw signature bytes (as 'openssl pkeyutl -rawin' does)"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing signature file")
    add_key_arguments(parser)
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Sign, check the signature with the public key, write it atomically."""
    if args.out is None and args.file == "-":
        raise KeytoolsError("signing standard input needs --out SIG")
    out: Path = args.out if args.out is not None else Path(args.file + ".sig")
    data = read_input(args.file)
    key, meta, _store, _ = unlock_key(args)
    signature = key.sign(data)
    key.public_key().verify(signature, data)
    content = signature if args.raw else base64.b64encode(signature) + b"\n"
    write_file(out, content, force=args.force)
    emit(
        args,
        {
            "file": args.file,
            "signature_file": str(out),
            "keyid": meta.keyid,
            "encoding": "raw" if args.raw else "base64",
        },
        [f"signed: {args.file} -> {out} (Ed25519, keyid {meta.keyid})"],
    )
    return 0
