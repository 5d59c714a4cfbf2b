"""Fuzz target: encrypted (and plain) PKCS#8 backups, PEM and DER (docs/formats.md).

Checks that :func:`detect_backup`, :func:`pbes2_info` and :func:`restore_backup`
return or raise typed errors, and that :func:`identify` never raises. Decryption is
tried only when ``pbes2_info`` reports a cheap KDF (the harness's speed limit; the
reader's own bounds are what ``pbes2_info`` enforces).
"""

from __future__ import annotations

from _backups import pem_seeds
from _harness import PASSPHRASE, cheap_kdf, typed

from datafold_auth.keys import detect_backup, restore_backup
from datafold_auth.keys.formats import identify
from datafold_auth.keys.pkcs8 import is_encrypted, pbes2_info


def seeds() -> list[bytes]:
    return pem_seeds()


def test_one_input(data: bytes) -> None:
    identify(data)
    typed(detect_backup, data)
    typed(restore_backup, [data], None, fmt="pem")
    if is_encrypted(data.strip() if data.lstrip().startswith(b"-----") else data):
        info = typed(pbes2_info, data)
        if info is None or not cheap_kdf(info.kdf):
            return
    typed(restore_backup, [data], PASSPHRASE, fmt="pem")
