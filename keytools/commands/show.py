"""``keytools show``: the public facts about a key and its security status (no passphrase needed)."""

from __future__ import annotations

import argparse
import json

from datafold_auth.keys import KeyMetadata, backup_file_missing, key_status

from ..common import (
    DEFAULT_NAME,
    INACTIVE_STATUSES,
    UsageError,
    add_json_argument,
    aligned,
    describe,
    emit,
    find_key,
    format_time,
    key_name,
    server_status_note,
    warn,
)

NAME = "show"
HELP = "show a key's keyid, public JWK, label, client id, store, encryption, backups and security level"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: [NAME], --name, --json."""
    parser.add_argument(
        "key_name", nargs="?", type=key_name, metavar="NAME", help=f"the key's name (default {DEFAULT_NAME!r})"
    )
    parser.add_argument("--name", type=key_name, help="the key's name (the same as NAME)")
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Print the key's description as text (warnings on stderr) or JSON."""
    if args.key_name is not None and args.name is not None and args.name != args.key_name:
        raise UsageError(f"two key names given: {args.key_name!r} and --name {args.name!r}")
    args.name = args.key_name or args.name or DEFAULT_NAME
    store, meta = find_key(args)
    info = describe(meta, store)
    status = key_status(meta)
    backups = []
    for record, entry in zip(meta.backups, info["backups"], strict=True):
        entry["missing"] = backup_file_missing(record)
        note = "backup file missing; " if entry["missing"] else ""
        detail = f", {record.detail}" if record.detail else ""
        backups.append(f"{record.format} {record.location} ({note}verified {format_time(record.verified)}{detail})")
    backed = "backed up" if status.backed_up else "NOT backed up"
    fields = {
        "name": meta.name,
        "keyid": meta.keyid,
        "fingerprint": info["fingerprint"],
        "public_jwk": json.dumps(meta.public_jwk()),
        "label": meta.label,
        "client_id": meta.client_id or "-",
        "store": meta.store,
        "location": store.location(meta.name),
        "encrypted": "yes" if meta.encrypted else "NO",
        "created": f"{format_time(meta.created)} ({meta.created})",
        "servers": ", ".join(_server(url, meta.server_status.get(url, "")) for url in meta.servers) or NO_SERVERS,
        "backups": "; ".join(backups) or "NONE verified",
        "security": _security(meta, f"{status.level} ({status.stored}, {backed})"),
    }
    emit(args, info, aligned(fields))
    if not args.json:
        inactive = server_status_note(meta)
        if inactive:
            warn(inactive)
        for warning in status.warnings:
            warn(warning)
    return 0


NO_SERVERS = "- (none recorded; 'keytools client-keys URL' asks a server about this key and records its answer)"
"""``servers:`` of a key no keytools command has told a server about (e.g. imported by an operator)."""


def _security(meta: KeyMetadata, storage: str) -> str:
    """The ``security:`` line: ``inactive`` when every server's last answer says the key signs nothing
    (``revoked``, ``expired``, ``suspended``, ``rotated``), whatever its storage level; else the storage level."""
    statuses = [status for status in meta.server_status.values() if status]
    if statuses and all(status in INACTIVE_STATUSES for status in statuses):
        dead = ", ".join(f"{status} at {url}" for url, status in meta.server_status.items() if status)
        return f"inactive ({dead}: it signs nothing there; storage: {storage})"
    return storage


def _server(url: str, status: str) -> str:
    return f"{url} ({status})" if status else url
