"""Fuzz target: key import (``keytools import``/``keytools register``): every private and public key format.

Checks that :func:`identify` never raises, that :func:`read_public_key`,
:func:`read_private_key` and, for JSON input, :func:`public_key_from_jwk` return
or raise typed errors. A passphrase is given only to keys whose KDF is cheap: PKCS#8 within
``cheap_kdf``, OpenSSH with at most 2 bcrypt rounds, or more than the reader's cap (refused
before any work). The bcrypt-rounds reader itself must never raise.
"""

from __future__ import annotations

import json

from _backups import pem_seeds
from _harness import KEY_A, PASSPHRASE, cheap_kdf, typed
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from datafold_auth.jwk import public_key_from_jwk
from datafold_auth.keys.formats import (
    MAX_OPENSSH_BCRYPT_ROUNDS,
    PRIVATE_FORMATS,
    PUBLIC_FORMATS,
    export_private_key,
    export_public_key,
    identify,
    read_private_key,
    read_public_key,
)
from datafold_auth.keys.formats import _openssh_bcrypt_rounds as bcrypt_rounds
from datafold_auth.keys.pkcs8 import pbes2_info


def seeds() -> list[bytes]:
    public = KEY_A.public_key()
    out = [export_public_key(public, fmt) for fmt in PUBLIC_FORMATS]
    out += [export_private_key(KEY_A, fmt) for fmt in PRIVATE_FORMATS]
    openssh = KEY_A.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    encrypted = KEY_A.private_bytes(
        Encoding.PEM, PrivateFormat.OpenSSH, PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(1).build(PASSPHRASE)
    )
    return [*out, openssh, encrypted, *pem_seeds()[:2], KEY_A.private_bytes_raw()]


def test_one_input(data: bytes) -> None:
    found = identify(data)
    typed(read_public_key, data)
    typed(read_private_key, data, None)
    if found.encrypted and found.format in ("pkcs8-pem", "pkcs8-der"):
        info = typed(pbes2_info, data.strip() if found.format == "pkcs8-pem" else data)
        if info is not None and cheap_kdf(info.kdf):
            typed(read_private_key, data, PASSPHRASE)
    rounds = bcrypt_rounds(data)  # any exception here is a finding
    if rounds is not None and (rounds <= 2 or rounds > MAX_OPENSSH_BCRYPT_ROUNDS):
        typed(read_private_key, data, PASSPHRASE)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return
    typed(public_key_from_jwk, doc)
