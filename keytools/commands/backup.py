"""``keytools backup FORMAT``: write a backup and verify it before reporting success; ``backup verify FILE``.

Formats (docs/formats.md): ``pem`` (encrypted PKCS#8, PBKDF2-HMAC-SHA256
600,000 / AES-256-CBC, readable by ``openssl pkey``), ``json`` and ``binary``
(scrypt or PBKDF2, AES-256-GCM), ``paper`` (24 BIP39 words, unencrypted),
``shamir`` (SLIP-39 shares, one file each).

Every writer stages the file (mode 0600, fsync), reads the staged file back
from disk, decodes it completely (KDF, decryption, keyid, a test signature)
and only then moves it into place and records it in the key's metadata. A
backup that fails any step leaves no file.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from datafold_auth.errors import DatafoldAuthError, KeyFormatError, Reason
from datafold_auth.keys import (
    BackupInfo,
    BackupRecord,
    KdfParams,
    KeyMetadata,
    KeyStore,
    ShamirPlan,
    detect_backup,
    encode_private_key,
    paper_document,
    restore_backup,
    seal,
    split_key,
    verify_restored,
)
from datafold_auth.keys import shamir as slip39
from datafold_auth.keys.fsutil import discard, ensure_private_dir, write_private_file
from datafold_auth.keys.kdf import is_weak
from datafold_auth.keys.recovery import BackupFormat, needs_passphrase

from ..common import (
    BACKUP_PASSPHRASE,
    KeytoolsError,
    UsageError,
    VerificationFailed,
    add_json_argument,
    add_kdf_arguments,
    add_key_arguments,
    add_passphrase_arguments,
    add_store_arguments,
    candidate_stores,
    emit,
    find_key,
    format_time,
    kdf_from_args,
    require_passphrase,
    say,
    unlock_key,
    warn,
    write_file,
)
from .import_key import input_names, read_input

NAME = "backup"
HELP = "write a verified backup (pem, json, binary, paper, shamir), or check one: backup verify FILE"

_FORMAT_HELP = {
    "pem": "encrypted PKCS#8 PEM (PBES2: PBKDF2-HMAC-SHA256 600000 iterations, AES-256-CBC); openssl reads it",
    "json": "JSON envelope: scrypt (default) or PBKDF2 + AES-256-GCM, with label, created and client id",
    "binary": "compact binary encoding of the JSON envelope",
    "paper": "the seed as 24 BIP39 words to print or write down (NOT encrypted: the words are the key)",
    "shamir": "SLIP-39 shares, T of N (optionally in groups), one file per share, for social recovery",
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Subcommands pem, json, binary, paper, shamir, verify, each with its own --help."""
    sub = parser.add_subparsers(dest="backup_format", required=True, metavar="FORMAT")
    for fmt, text in _FORMAT_HELP.items():
        p = sub.add_parser(fmt, help=text, description=text)
        add_store_arguments(p, suppress=True)
        add_key_arguments(p)
        if fmt == "shamir":
            p.add_argument("--out-dir", type=Path, required=True, metavar="DIR", help="folder for the share files")
            p.add_argument("--threshold", type=int, help="shares needed (single group)")
            p.add_argument("--shares", type=int, help="shares made (single group)")
            p.add_argument(
                "--group",
                action="append",
                default=[],
                metavar="T/N",
                help="a group of N shares of which T are needed (repeat for several groups)",
            )
            p.add_argument("--group-threshold", type=int, default=1, help="groups needed (default 1)")
            p.add_argument(
                "--slip39-passphrase",
                action="store_true",
                help="also protect the shares with a SLIP-39 passphrase (printable ASCII), read like"
                " --backup-passphrase-*",
            )
            add_passphrase_arguments(p, BACKUP_PASSPHRASE)
        else:
            p.add_argument(
                "--out",
                type=Path,
                required=True,
                metavar="FILE",
                help="the backup file" + (" ('-': show on this terminal only)" if fmt == "paper" else ""),
            )
        if fmt in ("pem", "json", "binary"):
            add_passphrase_arguments(p, BACKUP_PASSPHRASE)
            p.add_argument(
                "--same-passphrase", action="store_true", help="encrypt the backup with the stored key's passphrase"
            )
            add_kdf_arguments(p, scrypt=fmt != "pem")
        p.add_argument("--force", action="store_true", help="replace existing backup files")
        add_json_argument(p)
    text = "read a backup back completely (decrypt in memory, keyid, test signature) without writing anything"
    v = sub.add_parser("verify", help=text, description=text)
    add_store_arguments(v, suppress=True)
    v.add_argument("files", nargs="+", metavar="FILE", help="the backup (several files for Shamir shares)")
    v.add_argument("--name", help="the stored key the backup must restore (default: any)")
    v.add_argument("--keyid", help="the keyid the backup must restore")
    add_passphrase_arguments(v, BACKUP_PASSPHRASE)
    v.add_argument(
        "--record",
        action="store_true",
        help="record the verified backup in the stored key's metadata (the only thing written)",
    )
    add_json_argument(v)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the format's writer, or to verify."""
    if args.backup_format == "verify":
        return _verify(args)
    if args.backup_format == "shamir":
        return _shamir(args)
    return _single(args)


def _backup_passphrase(args: argparse.Namespace, key_passphrase: bytearray | None) -> bytearray:
    if getattr(args, "same_passphrase", False):
        if args.backup_passphrase_file is not None or args.backup_passphrase_fd is not None:
            raise UsageError("--same-passphrase cannot be combined with --backup-passphrase-file/-fd")
        if not key_passphrase:
            raise UsageError("--same-passphrase: the stored key has no passphrase (it is unencrypted)")
        return key_passphrase
    return require_passphrase(
        args,
        BACKUP_PASSPHRASE,
        prompt="Passphrase for the backup: ",
        confirm=True,
        why="a backup is always encrypted",
    )


def _record(meta: KeyMetadata, store: KeyStore, fmt: str, location: str, detail: str) -> None:
    now = int(time.time())
    meta.add_backup(BackupRecord(fmt, location, now, now, detail))
    try:
        store.update_metadata(meta)
    except DatafoldAuthError as exc:
        warn(f"the backup is written and verified, but recording it in the key's metadata failed: {exc.detail}")


def _info(meta: KeyMetadata) -> BackupInfo:
    return BackupInfo(meta.keyid, meta.label, meta.created, meta.client_id)


def _single(args: argparse.Namespace) -> int:
    fmt: BackupFormat = args.backup_format
    if fmt == "paper" and str(args.out) == "-" and not sys.stdout.isatty():
        raise UsageError("--out - shows the words on a terminal only; give a FILE (stdout is not a terminal)")
    key, meta, store, key_passphrase = unlock_key(args)
    passphrase = _backup_passphrase(args, key_passphrase) if fmt != "paper" else None
    info = _info(meta)
    kdf: KdfParams | None = None
    if passphrase is None:
        data = paper_document(key, info).encode("utf-8")
        detail = "BIP39, 24 words, unencrypted"
    elif fmt == "pem":
        kdf = kdf_from_args(args)
        data = encode_private_key(key, passphrase, iterations=args.pbkdf2_iterations)
        detail = f"PBES2 / {kdf.describe()} / AES-256-CBC"
    else:
        kdf = kdf_from_args(args)
        envelope = seal(key, passphrase, info, kdf=kdf)
        data = envelope.to_json() if fmt == "json" else envelope.to_binary()
        detail = f"{kdf.describe()} / AES-256-GCM"

    def verify(path: Path) -> None:
        restored = restore_backup([path.read_bytes()], passphrase, fmt=fmt, what=str(path))
        verify_restored(restored.private_key, meta.keyid)

    if fmt == "paper" and str(args.out) == "-":
        restore_backup([data], None, fmt="paper")
        sys.stdout.write(data.decode("utf-8"))
        say("the words were shown on this terminal only; no file was written")
        return 0
    write_file(args.out, data, force=args.force, verify=verify)
    location = str(args.out.resolve())
    _record(meta, store, fmt, location, detail)
    if kdf is not None and is_weak(kdf):
        warn(f"{kdf.describe()} is below the default cost; use it only for tests")
    if fmt == "paper":
        warn(f"{args.out} holds the key UNENCRYPTED as words: print it, store the paper safely, then delete the file")
    emit(
        args,
        {"format": fmt, "out": location, "keyid": meta.keyid, "detail": detail, "verified": True},
        [f"backup: {args.out} ({fmt}, {detail})", f"verified: restores key {meta.keyid} and signs"],
    )
    return 0


def _plan(args: argparse.Namespace) -> ShamirPlan:
    groups: list[tuple[int, int]] = []
    for text in args.group:
        threshold, sep, count = text.partition("/")
        if not sep or not threshold.isdigit() or not count.isdigit():
            raise UsageError(f"--group takes T/N (e.g. 2/3), not {text!r}")
        groups.append((int(threshold), int(count)))
    if args.threshold is not None or args.shares is not None:
        if groups or args.threshold is None or args.shares is None:
            raise UsageError("give either --threshold T --shares N, or --group T/N (repeatable)")
        groups.append((args.threshold, args.shares))
    if not groups:
        raise UsageError("give --threshold T --shares N, or --group T/N (repeatable) with --group-threshold G")
    try:
        return ShamirPlan(args.group_threshold, tuple(groups)).check()
    except KeyFormatError as exc:
        raise UsageError(exc.detail) from None


def _shamir(args: argparse.Namespace) -> int:
    plan = _plan(args)
    key, meta, store, _ = unlock_key(args)
    passphrase = None
    if args.slip39_passphrase:
        passphrase = require_passphrase(
            args,
            BACKUP_PASSPHRASE,
            prompt="SLIP-39 passphrase for the shares: ",
            confirm=True,
            why="--slip39-passphrase",
        )
    mnemonics = split_key(key, plan, passphrase=passphrase)
    tried, total = slip39.check_split(mnemonics, plan, meta.keyid, passphrase), plan.minimal_sets()
    documents = slip39.share_documents(key, _info(meta), plan, mnemonics, passphrase=passphrase is not None)
    ensure_private_dir(args.out_dir)
    paths = [args.out_dir / f"{meta.name}-share-g{g}-m{m}.txt" for g, m, _ in documents]
    if not args.force:
        taken = [str(p) for p in paths if p.exists()]
        if taken:
            raise KeytoolsError(f"{taken[0]} already exists; use --force to replace the share files")
    expected = [m for group in mnemonics for m in group]
    written: list[Path] = []
    try:
        for path, (_g, _m, text), mnemonic in zip(paths, documents, expected, strict=True):

            def verify(staged: Path, mnemonic: str = mnemonic) -> None:
                docs = slip39.parse_shares(staged.read_text(encoding="utf-8"))
                if len(docs) != 1 or docs[0].mnemonic != mnemonic or docs[0].keyid != meta.keyid:
                    raise KeytoolsError(f"read-back of {staged} does not match the share that was written")
                slip39.share_info(docs[0].mnemonic)

            write_private_file(path, text.encode("utf-8"), overwrite=args.force, verify=verify)
            written.append(path)
        # the files on disk, not the strings in memory, must restore the key
        from_disk = [slip39.parse_shares(p.read_text(encoding="utf-8"))[0] for p in paths]
        verify_restored(slip39.restore_shares(_minimal(from_disk, plan), passphrase), meta.keyid)
    except BaseException:
        for path in written:
            discard(path)
        raise
    _record(meta, store, "shamir", str(args.out_dir.resolve()), f"SLIP-39 {plan.describe()}")
    warn(
        f"give each share to a different person or place; any {plan.describe()} restore the key."
        " Delete the files once the shares are handed out."
    )
    emit(
        args,
        {
            "format": "shamir",
            "out_dir": str(args.out_dir.resolve()),
            "files": [str(p) for p in paths],
            "plan": plan.describe(),
            "keyid": meta.keyid,
            "verified": True,
            "sets_tried": tried,
            "sets_total": total,
        },
        [
            *(f"share: {p}" for p in paths),
            f"plan: {plan.describe()}",
            f"verified: {_sets_verified(tried, total)} key {meta.keyid}, and the files read back",
        ],
    )
    return 0


def _sets_verified(tried: int, total: int) -> str:
    """E.g. ``all 3 minimal sets of shares restore`` or ``12 of the 12870 minimal sets ... restore``."""
    if total == 1:
        return "the only minimal set of shares restores"
    if tried >= total:
        return f"all {total} minimal sets of shares restore"
    return f"{tried} of the {total} minimal sets of shares (every share in at least one) restore"


def _minimal(docs: list[slip39.ShareDocument], plan: ShamirPlan) -> list[slip39.ShareDocument]:
    """The first threshold members of the first group_threshold groups, in plan order."""
    chosen, index = [], 0
    for g, (threshold, count) in enumerate(plan.groups):
        if g < plan.group_threshold:
            chosen += docs[index : index + threshold]
        index += count
    return chosen


def _verify(args: argparse.Namespace) -> int:
    inputs = [read_input(name) for name in args.files]
    names, what = input_names(args.files)
    fmt = detect_backup(inputs[0], what=names[0])
    passphrase = None
    if needs_passphrase(fmt, inputs):
        passphrase = require_passphrase(
            args, BACKUP_PASSPHRASE, prompt=f"Passphrase of {what}: ", why=f"{what} is encrypted"
        )
    restored = restore_backup(inputs, passphrase, fmt=fmt, what=what, names=names)
    expected = args.keyid
    store: KeyStore | None = None
    meta: KeyMetadata | None = None
    if args.name is not None:
        store, meta = find_key(args)
        expected = expected or meta.keyid
    try:
        keyid = verify_restored(restored.private_key, expected)
    except DatafoldAuthError as exc:
        if exc.reason is Reason.SELF_TEST_FAILED:
            raise VerificationFailed(f"{what}: the restored key fails its sign/verify test") from None
        raise VerificationFailed(f"{what}: {exc.detail}") from None
    if meta is None:
        for candidate, _ in candidate_stores(args):
            found = next((m for m in candidate.list() if m.keyid == keyid), None)
            if found is not None:
                store, meta = candidate, found
                break
    if args.record:
        if meta is None or store is None:
            raise KeytoolsError(f"--record: no stored key has keyid {keyid}")
        first = Path(args.files[0]).resolve()
        location = str(first) if fmt != "shamir" else str(first.parent)
        _record(meta, store, fmt, location, restored.description)
    for warning in restored.warnings:
        warn(warning)
    info, header = restored.info, restored.header
    article = "an" if restored.description[:1] in "aeiouAEIOU" else "a"
    verb = "is" if len(names) == 1 else "together are"
    lines = [
        f"OK: {what} {verb} {article} {restored.description}",
        f"keyid: {keyid}" + (f" (stored key {meta.name!r})" if meta is not None else " (no stored key has it)"),
    ]
    label = created = None
    if info is not None:
        label, created = info.label, info.created
        lines.append(f"label: {label or '-'}; created {format_time(created)}; client_id {info.client_id or '-'}")
    elif header is not None:
        label, created = header.label, header.created
        when = format_time(created) if created is not None else "-"
        lines.append(
            f"label: {label or '-'}; created {when} (from the document's header lines, which the words do not protect)"
        )
    lines.append(
        "verified: "
        + ("decrypted in memory, " if fmt in ("pem", "json", "binary") else "")
        + "keyid matches, a test signature verifies; nothing was written"
    )
    emit(
        args,
        {
            "ok": True,
            "format": fmt,
            "files": names,
            "description": restored.description,
            "keyid": keyid,
            "stored_key": meta.name if meta is not None else None,
            "label": label,
            "created": created,
            "client_id": info.client_id if info is not None else None,
            "metadata_authenticated": True if info is not None else (False if header is not None else None),
            "warnings": restored.warnings,
            "recorded": bool(args.record),
        },
        lines,
    )
    return 0
