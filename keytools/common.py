"""What keytools commands share: store, key-name and passphrase options and their resolution.

A command that needs the private key (``register``, ``request``, ...) calls
:func:`add_key_arguments` on its parser and :func:`load_signing_key` in its
``run``; the global ``--home``/``--store`` options are added by :mod:`keytools.cli`.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.keys import (
    HOME_ENV,
    FileKeyStore,
    KeyMetadata,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    check_name,
    default_root,
    normalize_passphrase,
    open_store,
)

DEFAULT_NAME = "default"
PASSPHRASE_ENV = "DATAFOLD_AUTH_PASSPHRASE"  # noqa: S105 - a variable name, not a password
"""Environment variable holding the passphrase (used when no option gives one)."""


class KeytoolsError(Exception):
    """A failure reported as ``keytools: error: <message>``; exit status :attr:`exit_code`."""

    exit_code = 1


class UsageError(KeytoolsError):
    """The command line asks for something impossible (exit status 2)."""

    exit_code = 2


def _key_name(text: str) -> str:
    try:
        return check_name(text)
    except KeyStoreError as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


def _fd(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a file descriptor number: {text!r}")
    return int(text)


def add_store_arguments(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Add ``--home`` and ``--store``; with ``suppress`` they set nothing unless given.

    Used on the main parser (``suppress=False``, real defaults) and on every
    command parser (``suppress=True``), so both ``keytools --home D list`` and
    ``keytools list --home D`` work.
    """
    default: Any = argparse.SUPPRESS
    parser.add_argument(
        "--home",
        metavar="DIR",
        type=Path,
        default=default if suppress else None,
        help=f"data folder: key files go in DIR/keys (as with ${HOME_ENV}); "
        "implies --store file unless --store keyring is given",
    )
    parser.add_argument(
        "--store",
        choices=("auto", "file", "keyring"),
        default=default if suppress else "auto",
        help="where keys live: the OS keychain, encrypted files, or auto (keychain if usable, else files; default)",
    )


def add_name_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--name`` (a valid key name, default ``"default"``)."""
    parser.add_argument(
        "--name",
        type=_key_name,
        default=DEFAULT_NAME,
        help=f"key name (default {DEFAULT_NAME!r})",
    )


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--name`` and the passphrase options ``--passphrase-file``/``--passphrase-fd``."""
    add_name_argument(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--passphrase-file",
        metavar="FILE",
        type=Path,
        help=f"read the passphrase from the first line of FILE (else --passphrase-fd, ${PASSPHRASE_ENV},"
        " or a prompt on a terminal); passphrases are NFC-normalized UTF-8",
    )
    group.add_argument(
        "--passphrase-fd",
        metavar="N",
        type=_fd,
        help="read the passphrase from the first line of open file descriptor N",
    )


def candidate_stores(args: argparse.Namespace) -> list[tuple[KeyStore, str]]:
    """The stores ``--store``/``--home`` select, each with a sentence saying why.

    One store, except for ``--store auto`` when the OS keychain is usable: then
    the keychain and, for keys stored before it was usable, the file store.

    Raises:
        KeyStoreError: ``--store keyring`` and no usable keychain.
    """
    root = args.home / "keys" if args.home is not None else default_root()
    if args.home is not None and args.store == "auto":
        return [(FileKeyStore(root), f"using key files in {root} (--home)")]
    store, message = open_store(args.store, root=root)
    stores = [(store, message)]
    if args.store == "auto" and store.kind != "file":
        stores.append((FileKeyStore(root), f"using key files in {root}"))
    return stores


def find_key(args: argparse.Namespace) -> tuple[KeyStore, KeyMetadata]:
    """The store holding the key ``args.name`` (see :func:`candidate_stores`), and its metadata.

    Raises:
        KeyNotFoundError: no selected store has it.
    """
    stores = [store for store, _ in candidate_stores(args)]
    for store in stores:
        if store.exists(args.name):
            return store, store.metadata(args.name)
    places = "; ".join(store.location(args.name) for store in stores)
    raise KeyNotFoundError(f"no key named {args.name!r} (looked in: {places}); create one with 'keytools generate'")


def _first_line(data: bytes) -> bytes:
    return data.split(b"\n", 1)[0].removesuffix(b"\r")


def read_passphrase(args: argparse.Namespace, *, prompt: str, confirm: bool = False) -> bytes | None:
    """The passphrase from ``--passphrase-file``, ``--passphrase-fd``, ``$DATAFOLD_AUTH_PASSPHRASE``
    or, on a terminal, a ``getpass`` prompt (asked twice if ``confirm``; the two
    answers must agree after NFC normalization), in that order.

    From a file or descriptor only the first line counts, without its line ending
    (as with ``openssl -passin file:``). ``args`` without the passphrase options
    (see :func:`add_key_arguments`) skips them. Returns None if no source is available.

    Raises:
        KeytoolsError: the file or descriptor cannot be read; the two prompts differ.
    """
    try:
        if getattr(args, "passphrase_file", None) is not None:
            return _first_line(args.passphrase_file.read_bytes())
        if getattr(args, "passphrase_fd", None) is not None:
            with os.fdopen(args.passphrase_fd, "rb", closefd=False) as stream:
                return _first_line(stream.read())
    except OSError as exc:
        raise KeytoolsError(f"cannot read the passphrase: {exc.strerror}") from None
    if PASSPHRASE_ENV in os.environ:
        return os.fsencode(os.environ[PASSPHRASE_ENV])
    if not sys.stdin.isatty():
        return None
    first = normalize_passphrase(getpass.getpass(prompt).encode("utf-8"))
    if confirm and normalize_passphrase(getpass.getpass("Repeat the passphrase: ").encode("utf-8")) != first:
        raise KeytoolsError("the passphrases do not match")
    return first


def load_signing_key(
    args: argparse.Namespace,
) -> tuple[Ed25519PrivateKey, KeyMetadata, KeyStore]:
    """Find, unlock and load the key selected by ``--name``/``--store``/``--home`` and the passphrase options.

    The passphrase is only asked for if the key is stored encrypted.

    Returns:
        ``(private_key, metadata, store)``; persist metadata changes with
        ``store.update_metadata(metadata)``.

    Raises:
        KeytoolsError: no passphrase is available for an encrypted key.
        datafold_auth.errors.DatafoldAuthError: from the store (not found, wrong passphrase, ...).
    """
    store, meta = find_key(args)
    passphrase = None
    if meta.encrypted:
        passphrase = read_passphrase(args, prompt=f"Passphrase for key {args.name!r}: ")
        if passphrase is None:
            raise KeytoolsError(
                f"key {args.name!r} is encrypted: give its passphrase with --passphrase-file, --passphrase-fd"
                f" or ${PASSPHRASE_ENV}"
            )
    return store.load(args.name, passphrase=passphrase), meta, store


def describe(meta: KeyMetadata, store: KeyStore) -> dict[str, Any]:
    """The public facts about a key, JSON-ready (used by ``show --json`` and ``list --json``)."""
    return {
        "name": meta.name,
        "keyid": meta.keyid,
        "public_jwk": meta.public_jwk(),
        "label": meta.label,
        "client_id": meta.client_id,
        "store": meta.store,
        "location": store.location(meta.name),
        "encrypted": meta.encrypted,
        "created": meta.created,
        "servers": list(meta.servers),
    }


def format_time(epoch: int) -> str:
    """Epoch seconds as ISO 8601 UTC, e.g. ``2024-05-01T12:00:00Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "DEFAULT_NAME",
    "PASSPHRASE_ENV",
    "KeytoolsError",
    "UsageError",
    "add_key_arguments",
    "add_name_argument",
    "add_store_arguments",
    "candidate_stores",
    "describe",
    "find_key",
    "format_time",
    "load_signing_key",
    "read_passphrase",
]
