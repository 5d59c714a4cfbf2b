"""Generate the published backup test vectors in tests/vectors/ (deterministic; docs/formats.md).

Run from the repository root::

    .venv/bin/python tests/vectors/make_vectors.py          # (re)write the files
    .venv/bin/python tests/vectors/make_vectors.py --check  # exit 1 if a file differs

Every vector uses the key of RFC 8032 section 7.1 TEST 1 (seed
``9d61b19d...7f60``) and fixed salts, nonces and IVs, so the output is the same
byte for byte on every run and every machine; tests/test_backup_vectors.py
checks that. The one exception is ``pem-scrypt-openssl.pem``, written once by
OpenSSL (which cannot be given a salt) with::

    openssl pkcs8 -topk8 -scrypt -scrypt_N 16384 -scrypt_r 8 -scrypt_p 1 -v2 aes-256-cbc \\
        -in rfc8032-test1.pem -passout file:pass.txt -out pem-scrypt-openssl.pem

and kept as is: it is the evidence that OpenSSL's PBES2-scrypt files import.

``vectors.json`` lists every vector with its inputs (passphrase in NFC and
NFD, KDF parameters, salt, nonce/IV, metadata) and expected outputs (keyid,
the AES-GCM associated data in hex, the file name) for other implementations
(the browser script) to reproduce.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import (
    BackupInfo,
    KdfParams,
    Pbkdf2Params,
    ScryptParams,
    encode_private_key,
    paper_document,
    seal,
)
from datafold_auth.keys import shamir as slip39

HERE = Path(__file__).resolve().parent
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
PASSPHRASE = "Ångström café 🔑 correct horse"
"""The vectors' passphrase; its UTF-8 NFC bytes are what the KDF sees."""
SALT = bytes(range(0x10, 0x20))
NONCE = bytes(range(0xA0, 0xAC))
IV = bytes(range(0xC0, 0xD0))
CREATED = 1_700_000_000
LABEL = "vector key — étiquette"
CLIENT_ID = "client-42"
OPENSSL_SCRYPT_PEM = "pem-scrypt-openssl.pem"
OPENSSL_SCRYPT_PASSPHRASE = "openssl-scrypt-pass"


def vector_key() -> Ed25519PrivateKey:
    """The RFC 8032 TEST 1 key."""
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEED_HEX))


def _stream(label: bytes) -> Callable[[int], bytes]:
    """Deterministic bytes: SHA-256(label || counter) blocks, for SLIP-39's randomness in vectors only."""
    counter = 0
    pending = b""

    def take(size: int) -> bytes:
        nonlocal counter, pending
        while len(pending) < size:
            pending += hashlib.sha256(label + counter.to_bytes(4, "big")).digest()
            counter += 1
        out, pending = pending[:size], pending[size:]
        return out

    return take


def build() -> tuple[dict[str, bytes], dict[str, object]]:
    """All deterministic vector files (name -> bytes) and the manifest (vectors.json content)."""
    key = vector_key()
    keyid = jwk_thumbprint(key)
    passphrase = unicodedata.normalize("NFC", PASSPHRASE).encode("utf-8")
    info = BackupInfo(keyid, LABEL, CREATED, CLIENT_ID)
    files: dict[str, bytes] = {}
    entries: list[dict[str, object]] = []
    envelopes: dict[str, tuple[KdfParams, str]] = {
        "json-scrypt.json": (ScryptParams(17, 8, 1), "json"),
        "json-pbkdf2.json": (Pbkdf2Params(600_000), "json"),
        "binary-scrypt.bin": (ScryptParams(14, 8, 1), "binary"),
        "binary-pbkdf2.bin": (Pbkdf2Params(600_000), "binary"),
    }
    for name, (kdf, encoding) in envelopes.items():
        envelope = seal(key, passphrase, info, kdf=kdf, salt=SALT, nonce=NONCE)
        files[name] = envelope.to_json() if encoding == "json" else envelope.to_binary()
        entries.append(
            {
                "file": name,
                "format": encoding,
                "kdf": {"name": kdf.name, **({"n": kdf.n, "r": kdf.r, "p": kdf.p} if isinstance(kdf, ScryptParams)
                                            else {"iterations": kdf.iterations})},
                "salt_hex": SALT.hex(),
                "nonce_hex": NONCE.hex(),
                "associated_data_hex": envelope.header().hex(),
                "ciphertext_hex": envelope.ciphertext.hex(),
            }
        )  # fmt: skip
    files["pem-pbkdf2.pem"] = encode_private_key(key, passphrase, iterations=600_000, salt=SALT, iv=IV)
    entries.append(
        {"file": "pem-pbkdf2.pem", "format": "pem", "kdf": {"name": "pbkdf2-sha256", "iterations": 600_000},
         "salt_hex": SALT.hex(), "iv_hex": IV.hex()}
    )  # fmt: skip
    files["paper.txt"] = paper_document(key, info).encode("utf-8")
    entries.append({"file": "paper.txt", "format": "paper"})
    plan = slip39.ShamirPlan(1, ((2, 3),))
    mnemonics = slip39.split_key(key, plan, random_bytes=_stream(b"datafold slip39 vector"))
    for g, m, text in slip39.share_documents(key, info, plan, mnemonics, passphrase=False):
        files[f"shamir-g{g}-m{m}.txt"] = text.encode("utf-8")
    entries.append(
        {"files": [f"shamir-g1-m{m}.txt" for m in (1, 2, 3)], "format": "shamir", "plan": "2 of 3",
         "slip39_passphrase": "", "mnemonics": mnemonics[0]}
    )  # fmt: skip
    entries.append(
        {"file": OPENSSL_SCRYPT_PEM, "format": "pem", "made_by": "openssl (not deterministic; kept as written)",
         "kdf": {"name": "scrypt", "n": 16384, "r": 8, "p": 1}, "passphrase": OPENSSL_SCRYPT_PASSPHRASE}
    )  # fmt: skip
    manifest: dict[str, object] = {
        "description": "DataFold key backup test vectors (docs/formats.md); made by tests/vectors/make_vectors.py",
        "seed_hex": SEED_HEX,
        "public_key_hex": key.public_key().public_bytes_raw().hex(),
        "keyid": keyid,
        "passphrase": PASSPHRASE,
        "passphrase_nfc_utf8_hex": passphrase.hex(),
        "passphrase_nfd": unicodedata.normalize("NFD", PASSPHRASE),
        "label": LABEL,
        "created": CREATED,
        "client_id": CLIENT_ID,
        "bip39_words": paper_words(key),
        "vectors": entries,
    }
    files["vectors.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return files, manifest


def paper_words(key: Ed25519PrivateKey) -> list[str]:
    """The 24 BIP39 words of the vector key."""
    from datafold_auth.keys import seed_words

    return seed_words(key)


def main(argv: list[str] | None = None) -> int:
    """Write the vectors, or with --check compare them with the files on disk."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    files, _ = build()
    differ = [name for name, data in files.items() if not (HERE / name).exists() or (HERE / name).read_bytes() != data]
    if args.check:
        for name in differ:
            print(f"differs: {name}", file=sys.stderr)
        return 1 if differ else 0
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    print(f"wrote {len(files)} files in {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
