"""``keytools show``: the public facts about a key and its security status (no passphrase needed)."""

from __future__ import annotations

import argparse
import json

from datafold_auth.keys import backup_file_missing, key_status

from ..common import add_json_argument, add_name_argument, describe, emit, find_key, format_time, warn

NAME = "show"
HELP = "show a key's keyid, public JWK, label, client id, store, encryption, backups and security level"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --name, --json."""
    add_name_argument(parser)
    add_json_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Print the key's description as text (warnings on stderr) or JSON."""
    store, meta = find_key(args)
    info = describe(meta, store)
    status = key_status(meta)
    backups = []
    for record, entry in zip(meta.backups, info["backups"], strict=True):
        entry["missing"] = backup_file_missing(record)
        note = "backup file missing; " if entry["missing"] else ""
        detail = f", {record.detail}" if record.detail else ""
        backups.append(f"{record.format} {record.location} ({note}verified {format_time(record.verified)}{detail})")
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
        "servers": ", ".join(meta.servers) or "-",
        "backups": "; ".join(backups) or "NONE verified",
        "security": f"{status.level} ({status.stored}, {'backed up' if status.backed_up else 'NOT backed up'})",
    }
    emit(
        args,
        info,
        [
            f"{field + ':':<11} {value}" if len(field) > 10 else f"{field + ':':<12}{value}"
            for field, value in fields.items()
        ],
    )
    if not args.json:
        for warning in status.warnings:
            warn(warning)
    return 0
