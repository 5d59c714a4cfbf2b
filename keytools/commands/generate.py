"""``keytools generate``: make a new key and store it."""

from __future__ import annotations

import argparse
import sys

from datafold_auth.keys import KeyMetadata, generate_private_key

from ..common import (
    PASSPHRASE_ENV,
    KeytoolsError,
    UsageError,
    add_key_arguments,
    candidate_stores,
    read_passphrase,
)

NAME = "generate"
HELP = "generate a new Ed25519 key and store it (encrypted with a passphrase unless --no-encryption)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --name, passphrase options, --label, --client-id, --no-encryption, --force."""
    add_key_arguments(parser)
    parser.add_argument("--label", default="", help="free text to recognize the key by")
    parser.add_argument("--client-id", help="the client id the key is (to be) registered under")
    parser.add_argument(
        "--no-encryption",
        action="store_true",
        help="store the private key unencrypted (not recommended)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing key of the same name")


def run(args: argparse.Namespace) -> int:
    """Generate, store, and print the keyid and where the key was stored."""
    if args.no_encryption and (args.passphrase_file is not None or args.passphrase_fd is not None):
        raise UsageError("--no-encryption cannot be combined with --passphrase-file or --passphrase-fd")
    stores = candidate_stores(args)
    store, message = next(((s, m) for s, m in stores if s.exists(args.name)), stores[0])
    if store.exists(args.name) and not args.force:
        raise KeytoolsError(
            f"key {args.name!r} already exists ({store.location(args.name)}); use --force to replace it"
            " or --name to choose another name"
        )
    passphrase = None
    if not args.no_encryption:
        passphrase = read_passphrase(args, prompt=f"Passphrase for the new key {args.name!r}: ", confirm=True)
        if passphrase is None:
            raise UsageError(
                f"no passphrase given: use --passphrase-file, --passphrase-fd, ${PASSPHRASE_ENV}, a terminal"
                " prompt, or --no-encryption"
            )
        if not passphrase:
            raise UsageError("empty passphrase refused; use --no-encryption to store the key unencrypted")
    key = generate_private_key()
    meta = store.save(
        args.name,
        key,
        KeyMetadata.for_key(args.name, key, label=args.label, client_id=args.client_id),
        passphrase=passphrase,
        overwrite=args.force,
        allow_unencrypted=args.no_encryption,
    )
    print(f"keytools: {message}", file=sys.stderr)
    if not meta.encrypted:
        print("keytools: warning: the private key is stored unencrypted", file=sys.stderr)
    print(f"keyid: {meta.keyid}")
    print(
        f"stored: {store.location(args.name)} ({meta.store} store, {'encrypted' if meta.encrypted else 'UNENCRYPTED'})"
    )
    return 0
