"""``keytools scripts``: where the OpenSSL shell scripts (``keytools/openssl/``) are installed.

The scripts (``datafold-generate``, ``datafold-public``, ``datafold-sign-request``,
``datafold-register``, ``datafold-request``, ``datafold-setup`` and the
``datafold-lib.sh`` they source) are package data of ``keytools``; see docs/shell.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common import KeytoolsError

NAME = "scripts"
HELP = "print where the POSIX shell scripts built on openssl and curl are installed (see docs/shell.md)"

PREFIX = "datafold-"
LIBRARY = "datafold-lib.sh"


def scripts_dir() -> Path:
    """The folder holding the shell scripts (inside the installed ``keytools`` package)."""
    return Path(__file__).resolve().parent.parent / "openssl"


def script_names(folder: Path) -> list[str]:
    """The runnable scripts in ``folder``, sorted (the sourced library is not one)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(PREFIX) and p.name != LIBRARY)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options: an optional script NAME, --list."""
    parser.add_argument(
        "script",
        nargs="?",
        metavar="NAME",
        help="print the path of this script instead of the folder, e.g. 'setup' or 'datafold-setup'",
    )
    parser.add_argument("--list", action="store_true", help="print the path of every script, one a line")


def run(args: argparse.Namespace) -> int:
    """Print the folder, one script's path, or every script's path."""
    folder = scripts_dir()
    if not (folder / LIBRARY).is_file():
        raise KeytoolsError(f"the shell scripts are not installed with this keytools (no {folder / LIBRARY})")
    names = script_names(folder)
    if args.script is not None:
        name = args.script if args.script.startswith(PREFIX) else PREFIX + args.script
        if name not in names:
            known = ", ".join(n.removeprefix(PREFIX) for n in names)
            raise KeytoolsError(f"no script named {args.script!r} (known: {known})")
        print(folder / name)
    elif args.list:
        for name in names:
            print(folder / name)
    else:
        print(folder)
    return 0
