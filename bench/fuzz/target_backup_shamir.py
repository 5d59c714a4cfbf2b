"""Fuzz target: Shamir share files (SLIP-39, one or several per input, separated by 0x1E).

Checks that :func:`detect_backup`, :func:`needs_passphrase` and :func:`restore_backup`
(format ``shamir``) return or raise typed errors. Combining is tried only when every
share's SLIP-39 iteration exponent is at most 2 (the harness's speed limit).
"""

from __future__ import annotations

import shamir_mnemonic
from _backups import SHARE_SEPARATOR, shamir_seeds
from _harness import typed

from datafold_auth.errors import DatafoldAuthError
from datafold_auth.keys import detect_backup, restore_backup
from datafold_auth.keys import shamir as slip39
from datafold_auth.keys.recovery import needs_passphrase


def seeds() -> list[bytes]:
    return shamir_seeds()


def _cheap(inputs: list[bytes]) -> bool:
    for item in inputs:
        try:
            documents = slip39.parse_shares(item.decode("utf-8"))
            for document in documents:
                canonical = slip39._canonical(document.mnemonic.split(), "share")
                if shamir_mnemonic.Share.from_mnemonic(canonical).iteration_exponent > 2:
                    return False
        except (UnicodeDecodeError, DatafoldAuthError, shamir_mnemonic.MnemonicError):
            pass
    return True


def test_one_input(data: bytes) -> None:
    inputs = data.split(SHARE_SEPARATOR)
    typed(detect_backup, inputs[0])
    typed(needs_passphrase, "shamir", inputs)
    if _cheap(inputs):
        typed(restore_backup, inputs, None, fmt="shamir")
        typed(restore_backup, inputs, b"TREZOR", fmt="shamir")
