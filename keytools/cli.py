"""The ``keytools`` command line: global options, command discovery, error reporting.

Commands live in :mod:`keytools.commands`, one module each, and are found
automatically. Failures print one line, ``keytools: error: <message>``, on
stderr, and nothing on stdout.

Exit status (the same for every command; docs/keys.md):

===  ==================================================================
0    success
1    failure: not found, already exists, unreadable or malformed input,
     I/O error (full disk, read-only folder, ...), keychain error
2    usage error: bad options, missing or empty passphrase
3    verification failed: a signature that does not verify (``verify``),
     a backup that restores another key than expected (``backup verify``)
4    wrong passphrase, or encrypted data that fails authentication
     (a backup whose content or header was changed)
130  interrupted (Ctrl-C)
===  ==================================================================

Passphrase buffers registered by the commands are wiped when ``main`` returns.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, cast

from datafold_auth.errors import DatafoldAuthError
from datafold_auth.jwk import KEYID_RE
from datafold_auth.keys import WrongPassphraseError

from . import commands
from .commands import Command
from .common import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_WRONG_PASSPHRASE,
    KeytoolsError,
    add_store_arguments,
    printable,
    wipe_secrets,
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit status 2.

    A keyid is 43 characters of base64url (RFC 7638), so about one in 64
    starts with ``-``; argparse would take it for an option, as a positional
    (``approve URL KEYID``) and as an option's value (``--keyid KEYID``)
    alike. A word of exactly that shape is never one of our options, so it
    is read as a value.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"keytools: error: {message}\n")

    def _parse_optional(self, arg_string: str) -> tuple[argparse.Action | None, str, str | None] | None:
        if KEYID_RE.fullmatch(arg_string):
            return None
        return super()._parse_optional(arg_string)


class _PrintableStream:
    """Standard output with :func:`printable` applied to every text written (``buffer`` and the
    rest are the stream's own)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(printable(text)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _commands() -> list[Command]:
    names = sorted(info.name for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_"))
    return [cast(Command, importlib.import_module(f"{commands.__name__}.{name}")) for name in names]


def build_parser() -> argparse.ArgumentParser:
    """The parser for all commands; each sets ``args.run`` to its ``run`` function."""
    parser = _Parser(
        prog="keytools",
        description="Manage the Ed25519 keys that sign DataFold requests (RFC 9421).",
    )
    add_store_arguments(parser, suppress=False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _commands():
        sub = subparsers.add_parser(command.NAME, help=command.HELP, description=command.HELP)
        add_store_arguments(sub, suppress=True)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run keytools with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = build_parser().parse_args(argv)
    stdout = sys.stdout
    if args.command != "request":  # a response body is printed as the server sent it, as curl does
        sys.stdout = _PrintableStream(stdout)
    try:
        status = int(args.run(args))
        sys.stdout.flush()  # a reader that went away shows here (caught below), not as a traceback at exit
        return status
    except KeytoolsError as exc:
        message, status = str(exc), exc.exit_code
    except WrongPassphraseError as exc:
        message, status = exc.detail, EXIT_WRONG_PASSPHRASE
    except DatafoldAuthError as exc:
        message, status = exc.detail, EXIT_FAILURE
    except KeyboardInterrupt:
        message, status = "interrupted", EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        wipe_secrets()
        return EXIT_FAILURE
    finally:
        sys.stdout = stdout
        wipe_secrets()
    print(f"keytools: error: {printable(' '.join(message.split()))}", file=sys.stderr)
    return status
