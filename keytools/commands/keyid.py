"""``keytools keyid [FILE]``: the keyid (RFC 7638 thumbprint) of a stored key or of a key/backup file."""

from __future__ import annotations

import argparse

from datafold_auth.errors import KeyFormatError
from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import Envelope, identify, read_public_key, restore_backup

from ..common import add_json_argument, add_name_argument, emit, find_key
from .import_key import read_input


def _is_32_bytes(data: bytes) -> bool:
    """Whether ``data`` is 32 raw bytes, 64 hex digits or 43 base64url characters."""
    text = data.strip()
    return len(data) == 32 or len(text) in (43, 44, 64)


NAME = "keyid"
HELP = (
    "print the keyid of a stored key (--name) or of FILE: a public key, an unencrypted private key,"
    " or a JSON/binary backup (read from its header); 32 raw bytes (raw, hex, base64url) are read as a public key"
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: [FILE], --name, --json."""
    parser.add_argument("file", nargs="?", metavar="FILE", help="a key or backup file ('-' for stdin)")
    add_name_argument(parser)
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Print the keyid; never needs a passphrase (encrypted private keys are refused with a hint)."""
    if args.file is None:
        _store, meta = find_key(args)
        keyid, source = meta.keyid, f"stored key {meta.name!r}"
    else:
        data = read_input(args.file)
        found = identify(data)
        if found.kind == "backup" and found.format in ("json", "binary"):
            envelope = Envelope.from_json(data) if found.format == "json" else Envelope.from_binary(data)
            keyid, source = envelope.info.keyid, f"{found.format} backup header"
        elif found.kind == "backup" and found.format == "shamir":
            keyid, source = _share_keyid(data, args.file), "Shamir share document (its keyid line)"
        elif found.kind == "backup":
            keyid, source = restore_backup([data]).keyid, found.description.split(";")[0]
        elif found.format in ("seed-hex", "seed-base64url", "seed-raw") and _is_32_bytes(data):
            public, description = read_public_key(data, what=args.file)
            keyid, source = jwk_thumbprint(public), f"{description}, read as a public key"
        elif found.kind == "private" and found.encrypted:
            raise KeyFormatError(f"{args.file} is {found.description}: use 'keytools import' or 'backup verify'")
        elif found.kind == "private":
            from datafold_auth.keys import read_private_key

            keyid, source = jwk_thumbprint(read_private_key(data, what=args.file).private_key), found.description
        else:
            public, description = read_public_key(data, what=args.file)
            keyid, source = jwk_thumbprint(public), description
    emit(args, {"keyid": keyid, "source": source}, [keyid])
    return 0


def _share_keyid(data: bytes, name: str) -> str:
    """The ``keyid:`` line of a share document (one share cannot restore the key)."""
    from datafold_auth.keys.shamir import parse_shares

    documents = parse_shares(data.decode("utf-8", "replace"))
    keyid = documents[0].keyid if documents else None
    if keyid is None:
        raise KeyFormatError(f"{name} is a Shamir share without a keyid line; restore enough shares to learn the keyid")
    return keyid
