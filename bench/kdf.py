"""Backup and restore cost per KDF setting, next to OpenSSL's cost for the same parameters, in one run.

Run: ``.venv/bin/python bench/kdf.py`` (needs the ``openssl`` command; ``--repeat N`` to change repetitions).

For every setting it prints, as medians over the repetitions:

* ``backup``: making one backup with ``datafold_auth.keys`` (the KDF plus AES-256-GCM and the JSON
  encoding for scrypt/PBKDF2 envelopes; PBKDF2 plus AES-256-CBC and the PKCS#8 PEM for ``pem``);
* ``restore``: reading it back (parsing, the KDF, decryption, keyid check and the sign/verify self-test);
* ``openssl``: the same KDF with the same parameters in ``openssl kdf`` (envelopes) or the same PEM written
  by ``openssl pkcs8 -topk8`` (pem rows), minus OpenSSL's process start-up, which is measured separately
  (a 1-iteration run) and printed;
* ``ratio``: backup / openssl. Near 1.0 means the cost is the KDF, spent in OpenSSL's code either way.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datafold_auth.keys import (
    KdfParams,
    Pbkdf2Params,
    ScryptParams,
    decode_private_key,
    encode_private_key,
    restore_backup,
    seal,
)

PASSPHRASE = b"bench passphrase, not a secret"
SALT_HEX = "00112233445566778899aabbccddeeff"
SETTINGS: list[KdfParams] = [
    ScryptParams(14),
    ScryptParams(15),
    ScryptParams(16),
    ScryptParams(17),
    Pbkdf2Params(100_000),
    Pbkdf2Params(310_000),
    Pbkdf2Params(600_000),
]
PEM_ITERATIONS = [600_000]


def median_time(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``action`` in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def openssl_kdf_args(params: KdfParams) -> list[str]:
    """``openssl kdf`` arguments deriving 32 bytes with ``params``."""
    base = ["kdf", "-keylen", "32", "-kdfopt", f"pass:{PASSPHRASE.decode()}", "-kdfopt", f"hexsalt:{SALT_HEX}"]
    if isinstance(params, ScryptParams):
        return [*base, "-kdfopt", f"n:{params.n}", "-kdfopt", f"r:{params.r}", "-kdfopt", f"p:{params.p}", "SCRYPT"]
    return [*base, "-kdfopt", "digest:SHA256", "-kdfopt", f"iter:{params.iterations}", "PBKDF2"]


def run_openssl(openssl: str, args: list[str]) -> None:
    """Run openssl; raise if it fails."""
    subprocess.run([openssl, *args], check=True, capture_output=True)  # noqa: S603


def main() -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per measurement (median; default 3)")
    args = parser.parse_args()
    openssl = shutil.which("openssl")
    if openssl is None:
        print("bench/kdf.py needs the openssl command", file=sys.stderr)
        return 1
    version = subprocess.run([openssl, "version"], capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603
    key = Ed25519PrivateKey.generate()
    startup = median_time(lambda: run_openssl(openssl, openssl_kdf_args(Pbkdf2Params(1))), max(args.repeat, 5))
    print(f"# {version}; cryptography in Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    print(f"# medians of {args.repeat} runs; openssl start-up {startup * 1000:.1f} ms subtracted from openssl times")
    header = f"{'format':<7} {'KDF setting':<34} {'backup ms':>10} {'openssl ms':>11} {'ratio':>6} {'restore ms':>11}"
    print(header)
    print("-" * len(header))
    for params in SETTINGS:
        holder: dict[str, bytes] = {}

        def backup(params: KdfParams = params, holder: dict[str, bytes] = holder) -> None:
            holder["data"] = seal(key, PASSPHRASE, kdf=params).to_json()

        ours = median_time(backup, args.repeat)

        def derive(params: KdfParams = params) -> None:
            run_openssl(openssl, openssl_kdf_args(params))

        def restore_it(holder: dict[str, bytes] = holder) -> None:
            restore_backup([holder["data"]], PASSPHRASE)

        theirs = max(median_time(derive, args.repeat) - startup, 1e-6)
        restore = median_time(restore_it, args.repeat)
        print(f"{'json':<7} {params.describe():<34} {ours * 1000:>10.1f} {theirs * 1000:>11.1f} {ours / theirs:>6.2f}"
              f" {restore * 1000:>11.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "plain.pem"
        plain.write_bytes(encode_private_key(key, None))
        pass_file = Path(folder) / "pass"
        pass_file.write_bytes(PASSPHRASE + b"\n")
        for iterations in PEM_ITERATIONS:
            holder = {}

            def pem(iterations: int = iterations, holder: dict[str, bytes] = holder) -> None:
                holder["data"] = encode_private_key(key, PASSPHRASE, iterations=iterations)

            ours = median_time(pem, args.repeat)
            cmd = ["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-iter", str(iterations),
                   "-in", str(plain), "-passout", f"file:{pass_file}", "-out", str(Path(folder) / "o.pem")]  # fmt: skip

            def pem_openssl(cmd: list[str] = cmd) -> None:
                run_openssl(openssl, cmd)

            def pem_restore(holder: dict[str, bytes] = holder) -> None:
                decode_private_key(holder["data"], PASSPHRASE)

            theirs = max(median_time(pem_openssl, args.repeat) - startup, 1e-6)
            restore = median_time(pem_restore, args.repeat)
            setting = f"PBES2 PBKDF2-HMAC-SHA256 {iterations}"
            print(f"{'pem':<7} {setting:<34} {ours * 1000:>10.1f} {theirs * 1000:>11.1f} {ours / theirs:>6.2f}"
                  f" {restore * 1000:>11.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
