"""What keytools commands share: store, key-name and passphrase options and their resolution.

A command that needs the private key (``register``, ``request``, ...) calls
:func:`add_key_arguments` on its parser and :func:`load_signing_key` in its
``run``; the global ``--home``/``--store`` options are added by :mod:`keytools.cli`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.errors import KeyFormatError
from datafold_auth.jwk import key_fingerprint
from datafold_auth.keys import (
    HOME_ENV,
    FileKeyStore,
    KdfParams,
    KeyExistsError,
    KeyMetadata,
    KeyNotFoundError,
    KeyStore,
    KeyStoreError,
    Pbkdf2Params,
    ScryptParams,
    check_name,
    default_root,
    key_status,
    normalize_passphrase,
    open_store,
    write_private_file,
)
from datafold_auth.keys.secret import wipe

DEFAULT_NAME = "default"
PASSPHRASE_ENV = "DATAFOLD_AUTH_PASSPHRASE"  # noqa: S105  # nosec B105  # an environment variable's name, not a password
"""Environment variable holding the stored key's passphrase (used when no option gives one)."""
BACKUP_PASSPHRASE_ENV = "DATAFOLD_AUTH_BACKUP_PASSPHRASE"  # noqa: S105  # nosec B105  # an environment variable's name, not a password
"""Environment variable holding the passphrase of a backup or imported file."""
NEW_PASSPHRASE_ENV = "DATAFOLD_AUTH_NEW_PASSPHRASE"  # noqa: S105  # nosec B105  # an environment variable's name, not a password
"""Environment variable holding the new passphrase for ``change-passphrase``."""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_VERIFY_FAILED = 3
EXIT_WRONG_PASSPHRASE = 4
EXIT_INTERRUPTED = 130


class KeytoolsError(Exception):
    """A failure reported as ``keytools: error: <message>``; exit status :attr:`exit_code`."""

    exit_code = EXIT_FAILURE


class UsageError(KeytoolsError):
    """The command line asks for something impossible (exit status 2)."""

    exit_code = EXIT_USAGE


class VerificationFailed(KeytoolsError):
    """A definite negative answer: a signature or a backup that does not verify (exit status 3)."""

    exit_code = EXIT_VERIFY_FAILED


_SECRETS: list[bytearray] = []


def remember_secret(buffer: bytearray) -> bytearray:
    """Register a buffer holding a secret, to be wiped by :func:`wipe_secrets` when the command ends."""
    _SECRETS.append(buffer)
    return buffer


def wipe_secrets() -> None:
    """Zero every buffer registered with :func:`remember_secret` (called by :func:`keytools.cli.main`)."""
    while _SECRETS:
        wipe(_SECRETS.pop())


def key_name(text: str) -> str:
    """An argparse ``type`` for a key name (:func:`datafold_auth.keys.check_name`)."""
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
        help=f"data folder: key files go in DIR/keys (${HOME_ENV} moves them too, without forcing files); "
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
        type=key_name,
        default=DEFAULT_NAME,
        help=f"key name (default {DEFAULT_NAME!r})",
    )


@dataclass(frozen=True)
class PassphraseSource:
    """One passphrase a command may need, and the options and variable that give it.

    Attributes:
        dest: attribute prefix in the parsed arguments (``<dest>_file``, ``<dest>_fd``).
        flag: option prefix (``<flag>-file``, ``<flag>-fd``).
        env: the environment variable read when neither option is given.
        what: how help texts and messages name it.
    """

    dest: str
    flag: str
    env: str
    what: str


KEY_PASSPHRASE = PassphraseSource("passphrase", "--passphrase", PASSPHRASE_ENV, "the stored key's passphrase")
BACKUP_PASSPHRASE = PassphraseSource(
    "backup_passphrase", "--backup-passphrase", BACKUP_PASSPHRASE_ENV, "the passphrase of the backup or imported file"
)
NEW_PASSPHRASE = PassphraseSource("new_passphrase", "--new-passphrase", NEW_PASSPHRASE_ENV, "the new passphrase")


def add_passphrase_arguments(parser: argparse.ArgumentParser, source: PassphraseSource) -> None:
    """Add ``<flag>-file FILE`` and ``<flag>-fd N`` (mutually exclusive) for ``source``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        f"{source.flag}-file",
        dest=f"{source.dest}_file",
        metavar="FILE",
        type=Path,
        help=f"read {source.what} from the first line of FILE (else {source.flag}-fd, ${source.env},"
        " or a prompt on a terminal); passphrases are NFC-normalized UTF-8",
    )
    group.add_argument(
        f"{source.flag}-fd",
        dest=f"{source.dest}_fd",
        metavar="N",
        type=_fd,
        help=f"read {source.what} from the first line of open file descriptor N",
    )


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--name`` and the passphrase options ``--passphrase-file``/``--passphrase-fd``."""
    add_name_argument(parser)
    add_passphrase_arguments(parser, KEY_PASSPHRASE)


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


def _read_all(fd: int) -> bytearray:
    """Everything readable from ``fd``, into one bytearray (earlier, smaller buffers are wiped)."""
    buffer = bytearray(1024)
    size = 0
    with os.fdopen(fd, "rb", buffering=0, closefd=False) as stream:
        while True:
            if size == len(buffer):
                bigger = bytearray(len(buffer) * 2)
                bigger[:size] = buffer
                wipe(buffer)
                buffer = bigger
            count = stream.readinto(memoryview(buffer)[size:])
            if not count:
                break
            size += count
    data = bytearray(buffer[:size])
    wipe(buffer)
    return data


def _first_line(data: bytearray) -> bytearray:
    end = data.find(b"\n")
    line = bytearray(data[: end if end >= 0 else len(data)])
    if line.endswith(b"\r"):
        line[-1:] = b""
    wipe(data)
    return line


def _normalized(raw: bytearray) -> bytearray:
    out = remember_secret(bytearray(normalize_passphrase(raw)))
    wipe(raw)
    return out


def get_passphrase(
    args: argparse.Namespace, source: PassphraseSource, *, prompt: str, confirm: bool = False
) -> bytearray | None:
    """A passphrase from ``<flag>-file``, ``<flag>-fd``, ``$<env>`` or, on a terminal, a prompt, in that order.

    From a file or descriptor only the first line counts, without its line ending
    (as with ``openssl -passin file:``). ``args`` without the options skips them.
    The result is NFC-normalized (when it is UTF-8) and registered to be wiped
    when the command ends (:func:`remember_secret`).

    Args:
        args: the parsed arguments.
        source: which passphrase.
        prompt: the prompt on a terminal.
        confirm: ask twice on a terminal; the two answers must agree after NFC normalization.

    Returns:
        The passphrase, or None if no source is available (no option, no variable, no terminal).

    Raises:
        UsageError: the file or descriptor cannot be read (no passphrase available: exit status 2).
        KeytoolsError: the two prompts differ.
    """
    path = getattr(args, f"{source.dest}_file", None)
    fd = getattr(args, f"{source.dest}_fd", None)
    try:
        if path is not None:
            with open(path, "rb", buffering=0) as file:
                return _normalized(_first_line(_read_all(file.fileno())))
        if fd is not None:
            return _normalized(_first_line(_read_all(fd)))
    except OSError as exc:
        where = path if path is not None else f"descriptor {fd}"
        raise UsageError(f"cannot read the passphrase from {where} ({source.what}): {exc.strerror}") from None
    if source.env in os.environ:
        return _normalized(bytearray(os.fsencode(os.environ[source.env])))
    if not sys.stdin.isatty():
        return None
    first = _normalized(bytearray(getpass.getpass(prompt).encode("utf-8")))
    if confirm and first:  # an empty answer is refused by the caller at once, without asking it again
        second = _normalized(bytearray(getpass.getpass("Repeat the passphrase: ").encode("utf-8")))
        if second != first:
            raise KeytoolsError("the passphrases do not match")
    return first


def read_passphrase(args: argparse.Namespace, *, prompt: str, confirm: bool = False) -> bytes | None:
    """The stored key's passphrase (see :func:`get_passphrase` with :data:`KEY_PASSPHRASE`)."""
    found = get_passphrase(args, KEY_PASSPHRASE, prompt=prompt, confirm=confirm)
    return None if found is None else bytes(found)


def require_passphrase(
    args: argparse.Namespace, source: PassphraseSource, *, prompt: str, confirm: bool = False, why: str
) -> bytearray:
    """Like :func:`get_passphrase`, but a missing or empty passphrase is an error.

    Raises:
        UsageError: no source gave one (the message lists the sources), or it is empty.
    """
    found = get_passphrase(args, source, prompt=prompt, confirm=confirm)
    if found is None:
        raise UsageError(
            f"{why}: give {source.what} with {source.flag}-file, {source.flag}-fd, ${source.env} or on a terminal"
        )
    if not found:
        raise UsageError(f"empty passphrase refused ({source.what})")
    return found


def new_store_passphrase(args: argparse.Namespace, name: str) -> bytearray | None:
    """The passphrase to store a new key ``name`` with, or None with ``--no-encryption``.

    Raises:
        UsageError: ``--no-encryption`` together with a passphrase option; no
            passphrase available; an empty passphrase without ``--no-encryption``.
    """
    if getattr(args, "no_encryption", False):
        if args.passphrase_file is not None or args.passphrase_fd is not None:
            raise UsageError("--no-encryption cannot be combined with --passphrase-file or --passphrase-fd")
        return None
    found = get_passphrase(args, KEY_PASSPHRASE, prompt=f"Passphrase for the new key {name!r}: ", confirm=True)
    if found is None:
        raise UsageError(
            f"no passphrase given: use --passphrase-file, --passphrase-fd, ${PASSPHRASE_ENV}, a terminal"
            " prompt, or --no-encryption"
        )
    if not found:
        raise UsageError("empty passphrase refused; use --no-encryption to store the key unencrypted")
    return found


def unlock_key(
    args: argparse.Namespace,
) -> tuple[Ed25519PrivateKey, KeyMetadata, KeyStore, bytearray | None]:
    """Find, unlock and load the key selected by ``--name``/``--store``/``--home`` and the passphrase options.

    The passphrase is only asked for if the key is stored encrypted.

    Returns:
        ``(private_key, metadata, store, passphrase or None)``.

    Raises:
        UsageError: no passphrase is available for an encrypted key (exit status 2).
        datafold_auth.errors.DatafoldAuthError: from the store (not found, wrong passphrase, ...).
    """
    store, meta = find_key(args)
    passphrase = None
    if meta.encrypted:
        passphrase = get_passphrase(args, KEY_PASSPHRASE, prompt=f"Passphrase for key {args.name!r}: ")
        if passphrase is None:
            raise UsageError(
                f"key {args.name!r} is encrypted: give its passphrase with --passphrase-file, --passphrase-fd"
                f" or ${PASSPHRASE_ENV}"
            )
    return store.load(args.name, passphrase=passphrase), meta, store, passphrase


def load_signing_key(
    args: argparse.Namespace,
) -> tuple[Ed25519PrivateKey, KeyMetadata, KeyStore]:
    """Find, unlock and load the key selected by ``--name``/``--store``/``--home`` and the passphrase options.

    The passphrase is only asked for if the key is stored encrypted.

    Returns:
        ``(private_key, metadata, store)``; persist metadata changes with
        ``store.update_metadata(metadata)``.

    Raises:
        UsageError: no passphrase is available for an encrypted key (exit status 2).
        datafold_auth.errors.DatafoldAuthError: from the store (not found, wrong passphrase, ...).
    """
    key, meta, store, _ = unlock_key(args)
    return key, meta, store


def describe(meta: KeyMetadata, store: KeyStore) -> dict[str, Any]:
    """The public facts about a key, JSON-ready (used by ``show --json`` and ``list --json``)."""
    status = key_status(meta)
    return {
        "name": meta.name,
        "keyid": meta.keyid,
        "fingerprint": key_fingerprint(meta.keyid),
        "public_jwk": meta.public_jwk(),
        "label": meta.label,
        "client_id": meta.client_id,
        "store": meta.store,
        "location": store.location(meta.name),
        "encrypted": meta.encrypted,
        "created": meta.created,
        "servers": list(meta.servers),
        "backups": [vars(b).copy() for b in meta.backups],
        "server_status": dict(meta.server_status),
        "security": status.level,
        "warnings": list(status.warnings),
    }


def record_server_status(store: KeyStore, meta: KeyMetadata, url: str, status: str) -> None:
    """Remember (in the key's metadata) that the server at ``url`` last answered ``status`` for this key.

    ``show`` and ``list`` print it, so a revoked key is visible without asking the server.
    """
    changed = meta.add_server(url)
    if meta.server_status.get(url) != status:
        meta.server_status[url] = status
        changed = True
    if changed:
        store.update_metadata(meta)


def server_status_note(meta: KeyMetadata) -> str | None:
    """A warning for a key that a server said is no longer usable (``revoked``, ``expired``, ...), else None."""
    dead = [f"{status} at {url}" for url, status in meta.server_status.items() if status in INACTIVE_STATUSES]
    if not dead:
        return None
    return f"key {meta.name!r} is {'; '.join(dead)} (the server's last answer): it no longer signs requests there"


INACTIVE_STATUSES = frozenset({"revoked", "expired", "suspended", "rotated"})
"""Server statuses in which a key signs nothing (docs/operations.md, Key lifecycle)."""


def aligned(fields: dict[str, str]) -> list[str]:
    """``name: value`` lines with the values in one column (``show``'s layout)."""
    width = max((len(name) for name in fields), default=0) + 2
    return [f"{name + ':':<{width}}{value}" for name, value in fields.items()]


def format_time(epoch: int) -> str:
    """Epoch seconds as ISO 8601 UTC, e.g. ``2024-05-01T12:00:00Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def protection(meta: KeyMetadata) -> str:
    """``"encrypted"`` or ``"UNENCRYPTED"``."""
    return "encrypted" if meta.encrypted else "UNENCRYPTED"


def say(message: str) -> None:
    """A progress or status line for humans, on stderr: ``keytools: <message>``."""
    print(f"keytools: {message}", file=sys.stderr)


def warn(message: str) -> None:
    """A warning on stderr: ``keytools: warning: <message>``."""
    print(f"keytools: warning: {message}", file=sys.stderr)


def emit(args: argparse.Namespace, result: dict[str, Any], lines: list[str]) -> None:
    """Print ``result`` as one JSON object if ``--json`` was given, else ``lines`` (stdout)."""
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        for line in lines:
            print(line)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` (machine-readable output on stdout)."""
    parser.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")


def write_file(
    path: Path, data: bytes | bytearray, *, force: bool, verify: Callable[[Path], None] | None = None
) -> None:
    """Write a private output file (mode 0600, atomic; see :func:`datafold_auth.keys.write_private_file`).

    Raises:
        KeytoolsError: ``path`` exists and not ``force`` (the message names ``--force``).
        KeyStoreError: the OS refused (full disk, read-only folder, ...).
    """
    try:
        write_private_file(path, data, overwrite=force, verify=verify)
    except KeyExistsError:
        raise KeytoolsError(f"{path} already exists; use --force to replace it") from None


def add_kdf_arguments(parser: argparse.ArgumentParser, *, scrypt: bool) -> None:
    """Add the KDF cost options: ``--kdf`` (if ``scrypt``), ``--scrypt-log-n``, ``--pbkdf2-iterations``."""
    if scrypt:
        parser.add_argument(
            "--kdf",
            choices=("scrypt", "pbkdf2"),
            default="scrypt",
            help="key derivation: scrypt (default; N=2^17, r=8, p=1) or pbkdf2 (PBKDF2-HMAC-SHA256, 600000"
            " iterations; the choice for backups a browser must open, since WebCrypto has no scrypt)",
        )
        parser.add_argument(
            "--scrypt-log-n", type=int, default=17, metavar="L", help="scrypt cost N = 2^L (default 17; 10 to 20)"
        )
    parser.add_argument(
        "--pbkdf2-iterations",
        type=int,
        default=600_000,
        metavar="C",
        help="PBKDF2-HMAC-SHA256 iterations (default 600000, the OWASP figure; lower only for tests)",
    )


def kdf_from_args(args: argparse.Namespace) -> KdfParams:
    """The KDF parameters selected by :func:`add_kdf_arguments`'s options (checked).

    Raises:
        UsageError: out of bounds.
    """
    params: KdfParams
    if getattr(args, "kdf", "pbkdf2") == "scrypt":
        params = ScryptParams(args.scrypt_log_n)
    else:
        params = Pbkdf2Params(args.pbkdf2_iterations)
    try:
        return params.check()
    except KeyFormatError as exc:
        raise UsageError(exc.detail) from None


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 controls (not newline or tab), line and paragraph separators, bidi overrides and isolates."""


def printable(text: str) -> str:
    """``text`` with its control characters (ESC, BEL, CR, C1, DEL; not newline or tab), Unicode line
    separators and bidi controls written ``\\uXXXX``: what a server sends (a reason, a status, a label)
    must not drive the terminal or reorder it. The same escape is valid inside a JSON string, so JSON
    output stays JSON (json.dumps writes C0 as ``\\u00XX`` itself, never raw)."""
    return _CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


__all__ = [
    "INACTIVE_STATUSES",
    "BACKUP_PASSPHRASE",
    "BACKUP_PASSPHRASE_ENV",
    "DEFAULT_NAME",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_VERIFY_FAILED",
    "EXIT_WRONG_PASSPHRASE",
    "KEY_PASSPHRASE",
    "NEW_PASSPHRASE",
    "NEW_PASSPHRASE_ENV",
    "PASSPHRASE_ENV",
    "KeytoolsError",
    "PassphraseSource",
    "UsageError",
    "VerificationFailed",
    "add_json_argument",
    "add_kdf_arguments",
    "add_key_arguments",
    "add_name_argument",
    "add_passphrase_arguments",
    "add_store_arguments",
    "printable",
    "aligned",
    "candidate_stores",
    "describe",
    "emit",
    "find_key",
    "format_time",
    "get_passphrase",
    "kdf_from_args",
    "key_name",
    "load_signing_key",
    "new_store_passphrase",
    "protection",
    "read_passphrase",
    "record_server_status",
    "remember_secret",
    "require_passphrase",
    "say",
    "server_status_note",
    "unlock_key",
    "warn",
    "wipe_secrets",
    "write_file",
]
