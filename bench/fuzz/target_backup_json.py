"""Fuzz target: DataFold JSON backups (docs/formats.md).

Checks that :meth:`Envelope.from_json`, :func:`detect_backup` and :func:`restore_backup`
return or raise typed errors; that a parsed envelope survives ``to_json`` and
``to_binary`` round trips unchanged; decryption only for cheap KDF settings.
"""

from __future__ import annotations

from _backups import envelopes
from _harness import PASSPHRASE, Finding, cheap_kdf, typed

from datafold_auth.keys import Envelope, detect_backup, restore_backup


def seeds() -> list[bytes]:
    return [e.to_json() for e in envelopes()]


def check_round_trips(envelope: Envelope) -> None:
    for name, again in (
        ("JSON", Envelope.from_json(envelope.to_json())),
        ("binary", Envelope.from_binary(envelope.to_binary())),
    ):
        if again != envelope:
            raise Finding(f"{name} round trip changed the envelope: {again!r} != {envelope!r}")


def test_one_input(data: bytes) -> None:
    typed(detect_backup, data)
    typed(restore_backup, [data], None, fmt="json")
    envelope = typed(Envelope.from_json, data)
    if envelope is None:
        return
    check_round_trips(envelope)
    if cheap_kdf(envelope.kdf):
        typed(restore_backup, [data], PASSPHRASE, fmt="json")
