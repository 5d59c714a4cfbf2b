"""``keytools import FILE``: store a private key given in any supported key format."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datafold_auth.keys import KeyMetadata, identify, read_private_key, self_test

from ..common import (
    BACKUP_PASSPHRASE,
    KeytoolsError,
    add_json_argument,
    add_key_arguments,
    add_passphrase_arguments,
    candidate_stores,
    describe,
    emit,
    get_passphrase,
    new_store_passphrase,
    protection,
    say,
    warn,
)

NAME = "import"
HELP = (
    "import a private key: seed (hex/base64url, 32 or 64 bytes), PKCS#8 PEM/DER (plain or encrypted),"
    " private JWK or OpenSSH private key; the format is detected"
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: FILE ('-' for stdin), --name, store passphrase options, --backup-passphrase-*, --label, ..."""
    parser.add_argument("file", metavar="FILE", help="the key file ('-' reads standard input)")
    add_key_arguments(parser)
    add_passphrase_arguments(parser, BACKUP_PASSPHRASE)
    parser.add_argument("--label", default="", help="free text to recognize the key by")
    parser.add_argument("--client-id", help="the client id the key is registered under")
    parser.add_argument("--no-encryption", action="store_true", help="store the key unencrypted (not recommended)")
    parser.add_argument("--force", action="store_true", help="replace an existing key of the same name")
    add_json_argument(parser)


def read_input(name: str) -> bytes:
    """The bytes of FILE, or of standard input for ``-``.

    Raises:
        KeytoolsError: missing or unreadable file (one line, with the OS reason).
    """
    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except FileNotFoundError:
        raise KeytoolsError(f"no such file: {name}") from None
    except OSError as exc:
        raise KeytoolsError(f"cannot read {name}: {exc.strerror}") from None


def input_names(files: list[str]) -> tuple[list[str], str]:
    """How messages name each input FILE (``-`` is ``standard input``), and all of them together
    (``a.txt``, ``a.txt and b.txt``, ``a.txt, b.txt and c.txt``)."""
    names = ["standard input" if name == "-" else name for name in files]
    together = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return names, together


def run(args: argparse.Namespace) -> int:
    """Detect, read (asking the file's passphrase only if it is encrypted), self-test, store."""
    data = read_input(args.file)
    what = "standard input" if args.file == "-" else args.file
    found = identify(data)
    source = None
    if found.encrypted:
        source = get_passphrase(args, BACKUP_PASSPHRASE, prompt=f"Passphrase of {what}: ")
        if source is None:
            raise KeytoolsError(
                f"{what} is encrypted: give its passphrase with --backup-passphrase-file, --backup-passphrase-fd"
                " or $DATAFOLD_AUTH_BACKUP_PASSPHRASE"
            )
    imported = read_private_key(data, source, what=what)
    self_test(imported.private_key)
    stores = candidate_stores(args)
    store, message = next(((s, m) for s, m in stores if s.exists(args.name)), stores[0])
    if store.exists(args.name) and not args.force:
        raise KeytoolsError(
            f"key {args.name!r} already exists ({store.location(args.name)}); use --force to replace it"
        )
    passphrase = new_store_passphrase(args, args.name)
    meta = KeyMetadata.for_key(args.name, imported.private_key, label=args.label, client_id=args.client_id)
    meta = store.save(
        args.name,
        imported.private_key,
        meta,
        passphrase=passphrase,
        overwrite=args.force,
        allow_unencrypted=args.no_encryption,
    )
    say(message)
    for note in imported.notes:
        say(note)
    if not meta.encrypted:
        warn("the private key is stored unencrypted")
    if args.file == "-":
        warn(
            "the key was read from standard input: if it came from a file, delete that file once you have a"
            " verified backup"
        )
    else:
        warn(f"the original file {what} still holds the key: delete it once you have a verified backup")
    result = {**describe(meta, store), "imported_from": imported.description, "notes": imported.notes}
    emit(
        args,
        result,
        [
            f"imported: {imported.description}",
            f"keyid: {meta.keyid}",
            f"stored: {store.location(args.name)} ({meta.store} store, {protection(meta)})",
        ],
    )
    return 0
