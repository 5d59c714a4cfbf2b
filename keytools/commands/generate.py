"""``keytools generate``: make a new key, self-test it, and store it."""

from __future__ import annotations

import argparse

from datafold_auth.keys import KeyMetadata, generate_private_key, key_status

from ..common import (
    KeytoolsError,
    add_json_argument,
    add_key_arguments,
    candidate_stores,
    describe,
    emit,
    new_store_passphrase,
    protection,
    say,
    warn,
)

NAME = "generate"
HELP = "generate a new Ed25519 key and store it (encrypted with a passphrase unless --no-encryption)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --name, passphrase options, --label, --client-id, --no-encryption, --force, --json."""
    add_key_arguments(parser)
    parser.add_argument("--label", default="", help="free text to recognize the key by")
    parser.add_argument("--client-id", help="the client id the key is (to be) registered under")
    parser.add_argument(
        "--no-encryption",
        action="store_true",
        help="store the private key unencrypted (not recommended)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing key of the same name")
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Generate (OS CSPRNG + sign/verify self-test), store, and print the keyid and where it is stored."""
    stores = candidate_stores(args)
    store, message = next(((s, m) for s, m in stores if s.exists(args.name)), stores[0])
    if store.exists(args.name) and not args.force:
        raise KeytoolsError(
            f"key {args.name!r} already exists ({store.location(args.name)}); use --force to replace it"
            " or --name to choose another name"
        )
    passphrase = new_store_passphrase(args, args.name)
    key = generate_private_key()
    meta = store.save(
        args.name,
        key,
        KeyMetadata.for_key(args.name, key, label=args.label, client_id=args.client_id),
        passphrase=passphrase,
        overwrite=args.force,
        allow_unencrypted=args.no_encryption,
    )
    say(message)
    status = key_status(meta)
    if not meta.encrypted:
        warn("the private key is stored unencrypted")
    warn(f"new key {args.name!r} has no backup yet. Make one now: keytools backup json --name {args.name} --out FILE")
    emit(
        args,
        describe(meta, store),
        [
            f"keyid: {meta.keyid}",
            f"stored: {store.location(args.name)} ({meta.store} store, {protection(meta)})",
            f"security: {status.level}",
        ],
    )
    return 0
