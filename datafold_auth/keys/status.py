"""A stored key's status and security level, in words, from its metadata alone (no passphrase).

Levels:

* ``good``: encrypted with a passphrase and at least one verified backup.
* ``at-risk``: encrypted but no verified backup: losing this machine, its
  disk or the passphrase loses the key for good (no server can recover it).
* ``exposed``: stored unencrypted: anyone who can read the file or keychain
  entry can sign as this key (whatever the backups).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .metadata import KeyMetadata

Level = Literal["good", "at-risk", "exposed"]

LOSS_WARNING = (
    "If this key is lost (machine, disk or passphrase), it is gone for good: no server can recover it, and "
    "every registration made with it must be redone with a new key."
)


@dataclass(frozen=True)
class KeyStatus:
    """The security summary of a key.

    Attributes:
        level: see the module docstring.
        stored: e.g. ``"file store, encrypted"``.
        backed_up: whether at least one verified backup is recorded.
        warnings: sentences to show the user, most important first.
    """

    level: Level
    stored: str
    backed_up: bool
    warnings: tuple[str, ...]


def key_status(meta: KeyMetadata) -> KeyStatus:
    """Summarize ``meta``'s protection and recoverability."""
    where = "OS keychain" if meta.store == "keyring" else "file store"
    stored = f"{where}, {'encrypted' if meta.encrypted else 'UNENCRYPTED'}"
    warnings: list[str] = []
    if not meta.encrypted:
        warnings.append(
            "the private key is stored UNENCRYPTED: anyone who can read it can sign as you; "
            "encrypt it with 'keytools change-passphrase'"
        )
    backed_up = bool(meta.backups)
    if not backed_up:
        warnings.append(f"no verified backup. {LOSS_WARNING} Make one: keytools backup json --out FILE")
    level: Level = "exposed" if not meta.encrypted else ("good" if backed_up else "at-risk")
    return KeyStatus(level, stored, backed_up, tuple(warnings))


__all__ = ["LOSS_WARNING", "KeyStatus", "Level", "key_status"]
