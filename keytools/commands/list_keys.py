"""``keytools list``: one line (or JSON object) per stored key, with its security status."""

from __future__ import annotations

import argparse
import json

from datafold_auth.keys import backup_file_missing

from ..common import INACTIVE_STATUSES, candidate_stores, describe, format_time, warn

NAME = "list"
HELP = "list the stored keys with their store, encryption, backup status, security level and last known server status"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --json."""
    parser.add_argument("--json", action="store_true", help="print a JSON array of key descriptions")


def run(args: argparse.Namespace) -> int:
    """Print the keys of every selected store (both keychain and files with --store auto)."""
    metas = [(store, meta) for store, _ in candidate_stores(args) for meta in store.list()]
    infos, counts = [], []
    at_risk, missing, inactive = [], [], []
    for store, meta in metas:
        info = describe(meta, store)
        for record, entry in zip(meta.backups, info["backups"], strict=True):
            entry["missing"] = backup_file_missing(record)
        present = sum(not entry["missing"] for entry in info["backups"])
        counts.append(present)
        if not present:
            at_risk.append(meta.name)
        if present < len(meta.backups):
            missing.append(meta.name)
        if any(status in INACTIVE_STATUSES for status in meta.server_status.values()):
            inactive.append(meta.name)
        infos.append(info)
    if args.json:
        print(json.dumps(infos, indent=2, ensure_ascii=False))
        return 0
    print(
        f"{'NAME':<20} {'KEYID':<43} {'STORE':<7} {'ENC':<3} {'BACKUP':<7} {'SECURITY':<8} {'SERVER':<9}"
        f" {'CREATED':<20} LABEL"
    )
    for info, present in zip(infos, counts, strict=True):
        enc = "yes" if info["encrypted"] else "NO"
        backed = str(present) if present else ("MISSING" if info["backups"] else "NONE")
        created = format_time(info["created"])
        server = "/".join(dict.fromkeys(info["server_status"].values())) or "-"
        print(
            f"{info['name']:<20} {info['keyid']} {info['store']:<7} {enc:<3} {backed:<7} {info['security']:<8}"
            f" {server:<9} {created:<20} {info['label']}"
        )
    if missing:
        warn(f"recorded backup file missing for: {', '.join(missing)} ('keytools show --name NAME' says which)")
    if inactive:
        warn(f"no longer usable at a server (SERVER: its last answer): {', '.join(inactive)}")
    if at_risk:
        warn(f"no verified backup for: {', '.join(at_risk)} (a lost key cannot be recovered by anyone)")
    return 0
