"""Fuzz target: DataFold binary backups (docs/formats.md).

Checks that :meth:`Envelope.from_binary`, :func:`detect_backup` and :func:`restore_backup`
return or raise typed errors; that a parsed envelope survives ``to_binary`` and
``to_json`` round trips unchanged; decryption only for cheap KDF settings.
"""

from __future__ import annotations

from _backups import envelopes
from _harness import PASSPHRASE, cheap_kdf, typed
from target_backup_json import check_round_trips

from datafold_auth.keys import Envelope, detect_backup, restore_backup


def seeds() -> list[bytes]:
    return [e.to_binary() for e in envelopes()]


def test_one_input(data: bytes) -> None:
    typed(detect_backup, data)
    typed(restore_backup, [data], None, fmt="binary")
    envelope = typed(Envelope.from_binary, data)
    if envelope is None:
        return
    check_round_trips(envelope)
    if cheap_kdf(envelope.kdf):
        typed(restore_backup, [data], PASSPHRASE, fmt="binary")
