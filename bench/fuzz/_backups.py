"""Valid backups of every format, made with the project's writers at low KDF cost (fuzz seeds)."""

from __future__ import annotations

from pathlib import Path

from _harness import KEY_A, KEY_B, NOW, PASSPHRASE

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import BackupInfo, Pbkdf2Params, ScryptParams, ShamirPlan, paper_document, seal, split_key
from datafold_auth.keys.paper import seed_words
from datafold_auth.keys.pkcs8 import encode_private_key
from datafold_auth.keys.shamir import share_documents

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors"
INFO = BackupInfo(jwk_thumbprint(KEY_A), "laptop \u00e9", NOW, "alice")
SHARE_SEPARATOR = b"\x1e"
"""Separates share files in one fuzz input (ASCII record separator)."""


def envelopes() -> list:  # type: ignore[type-arg]
    return [
        seal(KEY_A, PASSPHRASE, INFO, kdf=Pbkdf2Params(1000)),
        seal(KEY_A, PASSPHRASE, BackupInfo(jwk_thumbprint(KEY_A), "", 0, None), kdf=ScryptParams(10, 8, 1)),
    ]


def vector(name: str) -> list[bytes]:
    path = VECTORS / name
    return [path.read_bytes()] if path.exists() else []


def pem_seeds() -> list[bytes]:
    return [
        encode_private_key(KEY_A, PASSPHRASE, iterations=1000),
        encode_private_key(KEY_A, PASSPHRASE, iterations=1000, der=True),
        encode_private_key(KEY_A, None),
        encode_private_key(KEY_A, None, der=True),
        *vector("pem-pbkdf2.pem"),
        *vector("pem-scrypt-openssl.pem"),
    ]


def paper_seeds() -> list[bytes]:
    words = seed_words(KEY_A)
    return [
        paper_document(KEY_A, INFO).encode(),
        " ".join(words).encode(),
        "\n".join(f"{i}. {w[:4]}" for i, w in enumerate(words, 1)).encode(),
        *vector("paper.txt"),
    ]


def shamir_seeds() -> list[bytes]:
    plan = ShamirPlan.simple(2, 3)
    groups = split_key(KEY_B, plan, iteration_exponent=0)
    docs = [
        text.encode()
        for _, _, text in share_documents(KEY_B, BackupInfo(jwk_thumbprint(KEY_B)), plan, groups, passphrase=False)
    ]
    return [
        SHARE_SEPARATOR.join(docs[:2]),
        SHARE_SEPARATOR.join([docs[2], groups[0][0].encode()]),
        b"\n".join(m.encode() for m in groups[0][1:]),
        docs[0],
        *vector("shamir-g1-m1.txt"),
    ]
