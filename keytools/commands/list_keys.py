"""``keytools list``: one line (or JSON object) per stored key, with its security status."""

from __future__ import annotations

import argparse
import json

from ..common import candidate_stores, describe, format_time, warn

NAME = "list"
HELP = "list the stored keys with their store, encryption, backup status and security level"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: --json."""
    parser.add_argument("--json", action="store_true", help="print a JSON array of key descriptions")


def run(args: argparse.Namespace) -> int:
    """Print the keys of every selected store (both keychain and files with --store auto)."""
    infos = [describe(meta, store) for store, _ in candidate_stores(args) for meta in store.list()]
    if args.json:
        print(json.dumps(infos, indent=2, ensure_ascii=False))
        return 0
    print(f"{'NAME':<20} {'KEYID':<43} {'STORE':<7} {'ENC':<3} {'BACKUP':<6} {'SECURITY':<8} {'CREATED':<20} LABEL")
    for info in infos:
        enc = "yes" if info["encrypted"] else "NO"
        backed = str(len(info["backups"])) if info["backups"] else "NONE"
        created = format_time(info["created"])
        print(
            f"{info['name']:<20} {info['keyid']} {info['store']:<7} {enc:<3} {backed:<6} {info['security']:<8}"
            f" {created:<20} {info['label']}"
        )
    at_risk = [info["name"] for info in infos if not info["backups"]]
    if at_risk:
        warn(f"no verified backup for: {', '.join(at_risk)} (a lost key cannot be recovered by anyone)")
    return 0
