"""``keytools delete``: remove a stored key (refused when it has no verified backup, unless --force).

A recorded backup file that no longer exists does not count (see :func:`datafold_auth.keys.key_status`).
"""

from __future__ import annotations

import argparse

from datafold_auth.keys import LOSS_WARNING, key_status

from ..common import KeytoolsError, add_json_argument, add_name_argument, emit, find_key, warn

NAME = "delete"
HELP = "delete a stored key; refused for a key with no verified backup unless --force"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --name, --force, --json."""
    add_name_argument(parser)
    parser.add_argument("--force", action="store_true", help="delete even without a verified backup")
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Delete the key and its metadata from its store."""
    store, meta = find_key(args)
    status = key_status(meta)
    missing = f" (recorded backup file missing: {', '.join(status.missing)})" if status.missing else ""
    if not status.backed_up and not args.force:
        raise KeytoolsError(
            f"key {args.name!r} ({meta.keyid}) has no verified backup{missing}; deleting it destroys it for good."
            f" Back it up first (keytools backup json --name {args.name} --out FILE) or use --force"
        )
    location = store.location(args.name)
    store.delete(args.name)
    if not status.backed_up:
        warn(f"deleted without any verified backup{missing}. {LOSS_WARNING}")
    emit(
        args,
        {
            "deleted": args.name,
            "keyid": meta.keyid,
            "location": location,
            "backups": len(meta.backups) - len(status.missing),
            "missing_backups": list(status.missing),
        },
        [f"deleted: key {args.name!r} ({meta.keyid}) from {location}"],
    )
    return 0
