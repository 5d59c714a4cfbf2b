"""``keytools change-passphrase``: re-encrypt a stored key under a new passphrase (or add/remove encryption)."""

from __future__ import annotations

import argparse

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import KeyStoreError

from ..common import (
    NEW_PASSPHRASE,
    add_json_argument,
    add_key_arguments,
    add_passphrase_arguments,
    emit,
    protection,
    require_passphrase,
    unlock_key,
    warn,
)

NAME = "change-passphrase"
HELP = "re-encrypt a stored key with a new passphrase (the key itself, its keyid and metadata stay the same)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --name, current passphrase options, --new-passphrase-file/-fd, --no-encryption, --json."""
    add_key_arguments(parser)
    add_passphrase_arguments(parser, NEW_PASSPHRASE)
    parser.add_argument(
        "--no-encryption", action="store_true", help="store the key unencrypted from now on (not recommended)"
    )
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Unlock with the current passphrase, store atomically with the new one, read back and check the keyid."""
    key, meta, store, _old = unlock_key(args)
    new = None
    if not args.no_encryption:
        new = require_passphrase(
            args,
            NEW_PASSPHRASE,
            prompt=f"New passphrase for key {args.name!r}: ",
            confirm=True,
            why="no new passphrase",
        )
    stored = store.save(args.name, key, meta, passphrase=new, overwrite=True, allow_unencrypted=args.no_encryption)
    if jwk_thumbprint(store.load(args.name, passphrase=new)) != meta.keyid:
        raise KeyStoreError(f"read-back of key {args.name!r} after the change gave another key")
    if not stored.encrypted:
        warn("the private key is now stored UNENCRYPTED")
    warn("backups made before keep their own passphrase; this change does not affect them")
    emit(
        args,
        {"name": args.name, "keyid": meta.keyid, "encrypted": stored.encrypted, "location": store.location(args.name)},
        [f"changed: key {args.name!r} ({meta.keyid}) is now {protection(stored)} in {store.location(args.name)}"],
    )
    return 0
