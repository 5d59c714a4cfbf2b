"""keytools commands: one module per command, found automatically by :mod:`keytools.cli`.

To add a command, create ``keytools/commands/<module>.py`` (a name not starting
with ``_``) that defines what :class:`Command` describes::

    NAME = "register"
    HELP = "register the key with a DataFold server"

    def configure(parser: argparse.ArgumentParser) -> None:
        add_key_arguments(parser)          # from keytools.common: --name, passphrase options
        parser.add_argument("url")

    def run(args: argparse.Namespace) -> int:
        key, meta, store = load_signing_key(args)
        ...
        return 0

Raise :class:`keytools.common.KeytoolsError` (or let a
:class:`datafold_auth.errors.DatafoldAuthError` through) to fail with
``keytools: error: <message>``.
"""

from __future__ import annotations

import argparse
from typing import Protocol


class Command(Protocol):
    """The shape of a command module."""

    NAME: str
    HELP: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's options and arguments to its parser."""
        ...

    def run(self, args: argparse.Namespace) -> int:
        """Carry out the command; return the exit status."""
        ...
