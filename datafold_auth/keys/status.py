"""A stored key's status and security level, in words, from its metadata (no passphrase).

Levels:

* ``good``: encrypted with a passphrase and at least one verified backup.
* ``at-risk``: encrypted but no verified backup: losing this machine, its
  disk or the passphrase loses the key for good (no server can recover it).
* ``exposed``: stored unencrypted: anyone who can read the file or keychain
  entry can sign as this key (whatever the backups).

A recorded PEM, JSON or binary backup whose file no longer exists (or is no
longer a non-empty regular file) does not count as a backup
(:func:`backup_file_missing`). Nothing is decrypted: that needs the backup's
passphrase (``keytools backup verify``). Paper and Shamir records are not
checked: their files are meant to be deleted once printed or handed out.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .metadata import BackupRecord, KeyMetadata

Level = Literal["good", "at-risk", "exposed"]

LOSS_WARNING = (
    "If this key is lost (machine, disk or passphrase), it is gone for good: no server can recover it, and "
    "a new key cannot take over its client_id: register the new key under a new client_id, or ask the "
    "server's operator to admit it."
)


@dataclass(frozen=True)
class KeyStatus:
    """The security summary of a key.

    Attributes:
        level: see the module docstring.
        stored: e.g. ``"file store, encrypted"``.
        backed_up: whether at least one verified backup is recorded (and, for a
            backup file, the file is still there).
        warnings: sentences to show the user, most important first.
        missing: the locations of recorded backup files that are gone.
    """

    level: Level
    stored: str
    backed_up: bool
    warnings: tuple[str, ...]
    missing: tuple[str, ...] = ()


FILE_BACKUP_FORMATS = ("pem", "json", "binary")
"""Backup formats whose record points at a file that should stay where it was written."""


def backup_file_missing(record: BackupRecord) -> bool:
    """Whether ``record`` is a PEM, JSON or binary backup at an absolute path that is no longer a
    non-empty regular file. Other records (paper, Shamir, "standard input") are never missing; a
    path that cannot be checked (permission denied) is not reported missing."""
    if record.format not in FILE_BACKUP_FORMATS or not Path(record.location).is_absolute():
        return False
    try:
        info = os.stat(record.location)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return not stat.S_ISREG(info.st_mode) or info.st_size == 0


def key_status(meta: KeyMetadata, *, check_files: bool = True) -> KeyStatus:
    """Summarize ``meta``'s protection and recoverability.

    Args:
        meta: the key's metadata.
        check_files: look whether recorded backup files still exist (:func:`backup_file_missing`).
    """
    where = "OS keychain" if meta.store == "keyring" else "file store"
    stored = f"{where}, {'encrypted' if meta.encrypted else 'UNENCRYPTED'}"
    warnings: list[str] = []
    if not meta.encrypted:
        warnings.append(
            "the private key is stored UNENCRYPTED: anyone who can read it can sign as you; "
            "encrypt it with 'keytools change-passphrase'"
        )
    missing = tuple(b.location for b in meta.backups if check_files and backup_file_missing(b))
    backed_up = len(meta.backups) > len(missing)
    if missing:
        warnings.append(
            f"backup file missing: {', '.join(missing)} (moved or deleted?). If it was moved, record the new place"
            " with 'keytools backup verify FILE --record'; otherwise make a new backup"
        )
    if not backed_up:
        warnings.append(
            f"no verified backup. {LOSS_WARNING} Make one: keytools backup json --name {meta.name} --out FILE"
        )
    level: Level = "exposed" if not meta.encrypted else ("good" if backed_up else "at-risk")
    return KeyStatus(level, stored, backed_up, tuple(warnings), missing)


__all__ = ["FILE_BACKUP_FORMATS", "LOSS_WARNING", "KeyStatus", "Level", "backup_file_missing", "key_status"]
