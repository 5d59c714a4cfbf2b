"""``keytools restore FILE...``: put a key back into the store from any backup format."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

from datafold_auth.keys import (
    BACKUP_FORMATS,
    BackupRecord,
    KeyMetadata,
    detect_backup,
    restore_backup,
    verify_restored,
)
from datafold_auth.keys.recovery import BackupFormat, needs_passphrase

from ..common import (
    BACKUP_PASSPHRASE,
    PASSPHRASE_ENV,
    KeytoolsError,
    PassphraseSource,
    UsageError,
    add_json_argument,
    add_name_argument,
    add_passphrase_arguments,
    candidate_stores,
    describe,
    emit,
    new_store_passphrase,
    protection,
    remember_secret,
    require_passphrase,
    say,
    warn,
)
from .import_key import input_names, read_input

RESTORED_KEY_PASSPHRASE = PassphraseSource(
    "passphrase", "--passphrase", PASSPHRASE_ENV, "the NEW passphrase to store the restored key with (not the backup's)"
)
"""``--passphrase-file``/``-fd`` of ``restore``: the local passphrase of the restored key."""

NAME = "restore"
HELP = (
    "restore a key from a backup (pem, json, binary, paper, shamir; detected), or from words typed"
    " with --paper / --shamir"
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: FILE..., --paper, --shamir, --format, --name, passphrase options (``--passphrase-file``: the
    NEW passphrase to store the key with; ``--backup-passphrase-file``: the backup's), --same-passphrase, ..."""
    parser.add_argument("files", nargs="*", metavar="FILE", help="the backup; several files for Shamir shares")
    typed = parser.add_mutually_exclusive_group()
    typed.add_argument("--paper", action="store_true", help="without FILE: type the 24 words (hidden input)")
    typed.add_argument("--shamir", action="store_true", help="without FILE: type the shares one by one (hidden)")
    parser.add_argument("--format", choices=BACKUP_FORMATS, help="the backup format (default: detected)")
    add_name_argument(parser)
    add_passphrase_arguments(parser, RESTORED_KEY_PASSPHRASE)
    add_passphrase_arguments(parser, BACKUP_PASSPHRASE)
    parser.add_argument(
        "--same-passphrase",
        action="store_true",
        help="store the restored key under the backup's passphrase (else --passphrase-file/-fd give a new one)",
    )
    parser.add_argument("--label", help="label for the restored key (default: the backup's)")
    parser.add_argument("--client-id", help="client id for the restored key (default: the backup's)")
    parser.add_argument("--no-encryption", action="store_true", help="store the key unencrypted (not recommended)")
    parser.add_argument("--force", action="store_true", help="replace an existing key of the same name")
    add_json_argument(parser)


def _typed(args: argparse.Namespace) -> tuple[list[bytes], BackupFormat, str, list[str]]:
    if not sys.stdin.isatty():
        raise UsageError("typing words needs a terminal; give the backup FILE (or '-' to read stdin)")
    if args.paper:
        text = getpass.getpass("The 24 words, in order, separated by spaces (input hidden): ")
        return [text.encode("utf-8")], "paper", "the typed words", ["the typed words"]
    shares: list[bytes] = []
    while True:
        text = getpass.getpass(f"Share {len(shares) + 1} (33 words; empty line when done; input hidden): ")
        if not text.strip():
            break
        shares.append(text.encode("utf-8"))
    return shares, "shamir", "the typed shares", [f"typed share {i}" for i in range(1, len(shares) + 1)]


def _header_note(what: str, used: list[str]) -> str:
    """The sentence saying which metadata came from a document's unauthenticated header lines."""
    fields = " and ".join("creation date" if name == "created" else name for name in used)
    return (
        f"{fields} taken from the header lines of {what}, which the words do not protect"
        " (anyone could have changed them); check them with 'keytools show'"
    )


def _check_same_passphrase(args: argparse.Namespace) -> None:
    if args.same_passphrase and (
        args.passphrase_file is not None or args.passphrase_fd is not None or args.no_encryption
    ):
        raise UsageError("--same-passphrase cannot be combined with --passphrase-file/-fd or --no-encryption")


def _store_passphrase(args: argparse.Namespace, backup_passphrase: bytearray | None) -> bytearray | None:
    """The passphrase to store the restored key with: the backup's (``--same-passphrase``) or a new one."""
    if not args.same_passphrase:
        return new_store_passphrase(args, args.name)
    if not backup_passphrase:
        raise UsageError("--same-passphrase: this backup has no passphrase (paper and Shamir backups have none)")
    return backup_passphrase


def run(args: argparse.Namespace) -> int:
    """Read the backup, decrypt it in memory, verify the key (keyid, test signature), then store it."""
    _check_same_passphrase(args)
    stores = candidate_stores(args)
    store, message = next(((s, m) for s, m in stores if s.exists(args.name)), stores[0])
    if store.exists(args.name) and not args.force:
        raise KeytoolsError(
            f"key {args.name!r} already exists ({store.location(args.name)}); use --force to replace it"
        )
    if args.files:
        inputs = [read_input(name) for name in args.files]
        names, what = input_names(args.files)
        fmt: BackupFormat = args.format or detect_backup(inputs[0], what=names[0])
        location = str(Path(args.files[0]).resolve()) if args.files[0] != "-" else "standard input"
    elif args.paper or args.shamir:
        inputs, fmt, what, names = _typed(args)
        location = what
    else:
        raise UsageError("give the backup FILE(s), or --paper / --shamir to type the words")
    for item in inputs:
        remember_secret(bytearray(item))
    passphrase = None
    if needs_passphrase(fmt, inputs):
        passphrase = require_passphrase(
            args, BACKUP_PASSPHRASE, prompt=f"Passphrase of {what}: ", why=f"{what} is encrypted"
        )
    restored = restore_backup(inputs, passphrase, fmt=fmt, what=what, names=names)
    key = restored.private_key
    verify_restored(key, restored.keyid)
    info, header = restored.info, restored.header
    from_header: list[str] = []  # metadata taken from unauthenticated header lines
    label = args.label if args.label is not None else (info.label if info else None)
    if label is None and header is not None and header.label:
        label = header.label
        from_header.append("label")
    meta = KeyMetadata.for_key(
        args.name,
        key,
        label=label or "",
        client_id=args.client_id if args.client_id is not None else (info.client_id if info else None),
    )
    if info is not None:
        meta.created = info.created
    elif header is not None and header.created is not None:
        meta.created = header.created
        from_header.append("created")
    now = int(time.time())
    meta.add_backup(BackupRecord(fmt, location, now, now, f"restored from it: {restored.description}"))
    store_passphrase = _store_passphrase(args, passphrase)
    meta = store.save(
        args.name,
        key,
        meta,
        passphrase=store_passphrase,
        overwrite=args.force,
        allow_unencrypted=args.no_encryption,
    )
    say(message)
    for warning in restored.warnings:
        warn(warning)
    if from_header:
        say(_header_note(what, from_header))
    if not meta.encrypted:
        warn("the private key is stored unencrypted")
    emit(
        args,
        {
            **describe(meta, store),
            "restored_from": restored.description,
            "from_unauthenticated_header": from_header,
        },
        [
            f"restored: {restored.description}",
            f"keyid: {meta.keyid}",
            f"stored: {store.location(args.name)} ({meta.store} store, {protection(meta)})",
        ],
    )
    return 0
