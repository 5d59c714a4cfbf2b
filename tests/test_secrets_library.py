"""The library leaks no private key or passphrase: logs (DEBUG), exception text, reprs and network traffic.

A canary key and passphrases (tests/secrets_harness.py) go through the stores, every backup format and its
restore (right and wrong passphrases, corrupt inputs, wrong keys), the format readers, the signers, the
requests/httpx clients and the registration client, with the traffic recorded by a TCP proxy in front of
real servers on loopback. Each collector is shown to have seen real data (the keyid, the signatures).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from pathlib import Path

import httpx
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import KeyRecord, MemoryNonceStore, MemoryRegistry, Request, Signer
from datafold_auth.client import DatafoldAuth, DatafoldHttpxAuth
from datafold_auth.keys import (
    PRIVATE_FORMATS,
    FileKeyStore,
    KeyMetadata,
    Pbkdf2Params,
    ScryptParams,
    SecretBytes,
    ShamirPlan,
    decode_private_key,
    encode_private_key,
    export_private_key,
    identify,
    paper_document,
    read_private_key,
    read_public_key,
    restore_backup,
    seal,
    split_key,
    unseal,
)
from datafold_auth.keys.backup import BackupInfo, Envelope
from datafold_auth.registration import RegistrationApp, registration_request
from datafold_auth.testing import EphemeralKey

from .secrets_harness import (
    Canary,
    Evidence,
    SecretScanner,
    collect_logs,
    decode_signature,
    expect_failure,
    recording_proxy,
    signature_values,
)
from .servers import Harness, flask_app, serve_wsgi

FAST_SCRYPT = ScryptParams(log2_n=10)
FAST_PBKDF2 = 1000
WRONG = "Wrong-guess-\u00e9-5521"


@pytest.fixture
def canary() -> Canary:
    return Canary.generate()


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_keys_and_backups_leak_nothing(canary: Canary, tmp_path: Path) -> None:
    key, secret = canary.key, canary.secret
    backup_pass = Canary.generate().passphrase
    other = Ed25519PrivateKey.generate()
    scanner = SecretScanner().add_canary(canary).add_passphrase(backup_pass, "backup passphrase")
    scanner.add_key(other, "other key").add_text(WRONG, "wrong guess")
    evidence = Evidence()
    wrong = WRONG.encode()
    with collect_logs(evidence):
        # the file store
        store = FileKeyStore(tmp_path / "keys")
        evidence.object(store)
        meta = store.save("canary", key, KeyMetadata.for_key("canary", key, label="leak"), passphrase=secret)
        evidence.object(meta)
        evidence.object(store.load("canary", passphrase=secret))
        with expect_failure(evidence, "store: wrong passphrase"):
            store.load("canary", passphrase=wrong)
        with expect_failure(evidence, "store: empty passphrase"):
            store.save("empty", key, KeyMetadata.for_key("empty", key), passphrase=b"")
        with expect_failure(evidence, "store: another key's metadata"):
            store.save("mixed", key, KeyMetadata.for_key("mixed", other), passphrase=secret)
        with expect_failure(evidence, "store: exists"):
            store.save("canary", key, meta, passphrase=secret)
        pem_file = tmp_path / "keys" / "canary.pem"
        pem_file.write_bytes(pem_file.read_bytes()[:-80] + b"\n-----END ENCRYPTED PRIVATE KEY-----\n")
        with expect_failure(evidence, "store: truncated file"):
            store.load("canary", passphrase=secret)

        # encrypted PKCS#8
        pem = encode_private_key(key, secret, iterations=FAST_PBKDF2)
        assert decode_private_key(pem, secret).private_bytes_raw() == key.private_bytes_raw()
        with expect_failure(evidence, "pkcs8: wrong passphrase"):
            decode_private_key(pem, wrong)
        with expect_failure(evidence, "pkcs8: no passphrase"):
            decode_private_key(pem, None)
        lines = pem.splitlines()
        for at in (len(lines[1]) // 2, 40):
            with expect_failure(evidence, f"pkcs8: corrupt at {at}"):
                body = _flip(base64.b64decode(b"".join(lines[1:-1])), at)
                decode_private_key(body, secret)

        # sealed envelopes (JSON and binary)
        envelope = seal(key, backup_pass.encode(), BackupInfo(canary.keyid, label="leak"), kdf=FAST_SCRYPT)
        evidence.object(envelope)
        for data in (envelope.to_json(), envelope.to_binary()):
            assert restore_backup([data], backup_pass.encode()).private_key.private_bytes_raw() == key.private_bytes_raw()
            with expect_failure(evidence, "envelope: wrong passphrase"):
                restore_backup([data], wrong)
            with expect_failure(evidence, "envelope: no passphrase"):
                restore_backup([data], None)
            with expect_failure(evidence, "envelope: truncated"):
                restore_backup([data[: len(data) // 2]], backup_pass.encode())
        with expect_failure(evidence, "unseal: wrong passphrase"):
            unseal(Envelope.from_binary(envelope.to_binary()), secret)
        tampered = _flip(envelope.to_binary(), len(envelope.to_binary()) - 5)
        with expect_failure(evidence, "envelope: tampered ciphertext"):
            restore_backup([tampered], backup_pass.encode())
        with expect_failure(evidence, "seal: another key's info"):
            seal(key, backup_pass.encode(), BackupInfo(Canary.generate().keyid), kdf=FAST_SCRYPT)
        with expect_failure(evidence, "seal: empty passphrase"):
            seal(key, b"", kdf=FAST_SCRYPT)
        envelope_pbkdf2 = seal(key, backup_pass.encode(), kdf=Pbkdf2Params(FAST_PBKDF2))
        with expect_failure(evidence, "envelope pbkdf2: wrong passphrase"):
            restore_backup([envelope_pbkdf2.to_json()], wrong)

        # paper and Shamir: the words are the secret, so only errors are collected
        paper = paper_document(key, BackupInfo(canary.keyid))
        swapped = paper.replace(paper.split()[-1], "zoo" if paper.split()[-1] != "zoo" else "zebra")
        with expect_failure(evidence, "paper: wrong checksum word"):
            restore_backup([swapped.encode()])
        with expect_failure(evidence, "shamir: non-ASCII passphrase"):
            split_key(key, ShamirPlan.simple(2, 3), passphrase=secret)
        ascii_pass = f"CANARY-ascii-{secrets.token_hex(8)}"
        scanner.add_passphrase(ascii_pass, "SLIP-39 passphrase")
        shares = split_key(key, ShamirPlan.simple(2, 3), passphrase=ascii_pass.encode())[0]
        for share in shares:
            scanner.add_words(share.split()[4:], "SLIP-39 share", "share words")  # past the shared prefix
        with expect_failure(evidence, "shamir: one share of two"):
            restore_backup([shares[0].encode()], ascii_pass.encode())
        restored = restore_backup([shares[0].encode(), shares[2].encode()], b"wrong-ascii")  # a wrong SLIP-39 passphrase
        assert restored.private_key.private_bytes_raw() != key.private_bytes_raw()  # decrypts to another key
        words = shares[1].split()
        words[7] = "academic" if words[7] != "academic" else "acid"
        with expect_failure(evidence, "shamir: damaged share"):
            restore_backup([shares[0].encode(), " ".join(words).encode()], ascii_pass.encode())

        # the format readers: a private key where a public one is expected, damaged inputs
        for fmt in PRIVATE_FORMATS:
            exported = export_private_key(key, fmt)
            evidence.add("identify", fmt, repr(identify(exported)))
            try:  # 32 bytes are read as a public key (documented), a private JWK gives its public part
                evidence.object(read_public_key(exported), f"read_public_key({fmt})")
            except Exception as exc:
                evidence.exception(exc, f"read_public_key({fmt})")
            evidence.object(read_private_key(exported), f"read_private_key({fmt})")
            if fmt in ("seed-hex", "seed-base64url", "jwk"):
                with expect_failure(evidence, f"read_private_key(damaged {fmt})"):
                    read_private_key(exported[:-6] + b"!!!!!!")
        with expect_failure(evidence, "read_private_key: wrong passphrase"):
            read_private_key(export_private_key(key, "pkcs8-pem", passphrase=secret), wrong)

        # signers and secret holders
        signer = Signer(key)
        ephemeral = EphemeralKey(key, KeyRecord.for_public_key(key.public_key(), client_id="leak", scopes=["read"]))
        for obj in (signer, DatafoldAuth(signer), DatafoldHttpxAuth(signer), SecretBytes(key.private_bytes_raw()),
                    key, restored, ephemeral, ephemeral.record):  # fmt: skip
            evidence.object(obj)
        with expect_failure(evidence, "Signer(seed bytes)"):
            Signer(key.private_bytes_raw())  # type: ignore[arg-type]
        with expect_failure(evidence, "Signer(bad expires)"):
            Signer(key, expires_in=-1)

    evidence.assert_saw("exception", "WrongPassphraseError", "wrong passphrase")
    evidence.assert_saw("repr", canary.keyid)
    evidence.assert_saw("identify", "private")
    scanner.assert_clean(evidence)


def test_clients_send_no_secret(canary: Canary) -> None:
    """requests and httpx (sync and async) signers and the registration client, through a recording proxy."""
    scanner = SecretScanner().add_canary(canary)
    evidence = Evidence()
    h = Harness(key=canary.key)
    registry = MemoryRegistry()
    with collect_logs(evidence):
        with serve_wsgi(flask_app(h)) as url, recording_proxy(url, evidence, "flask app") as proxy:
            signer = Signer(canary.key)
            r = requests.post(proxy.url + "/api/echo", json={"n": 1}, auth=DatafoldAuth(signer), timeout=10)
            assert r.status_code == 200 and r.json()["keyid"] == canary.keyid
            with httpx.Client(auth=DatafoldHttpxAuth(signer), timeout=10) as client:
                assert client.put(proxy.url + "/api/echo", content=b"httpx body").status_code == 200

            async def go() -> int:
                async with httpx.AsyncClient(auth=DatafoldHttpxAuth(signer), timeout=10) as client:
                    return (await client.delete(proxy.url + "/api/echo")).status_code

            assert asyncio.run(go()) == 200
            stranger = Signer(Ed25519PrivateKey.generate())
            assert requests.get(proxy.url + "/api/echo", auth=DatafoldAuth(stranger), timeout=10).status_code == 401
        app = RegistrationApp(registry, MemoryNonceStore())
        with serve_wsgi(app) as url, recording_proxy(url, evidence, "registration") as proxy:
            req = registration_request(Signer(canary.key), proxy.url + "/keys", client_id="leak", label="canary")
            r = requests.request(req.method, req.target_uri, data=req.body, headers=dict(req.headers), timeout=10)
            assert r.status_code == 201, r.text
            lookup = Request.from_url("GET", f"{proxy.url}/keys/{canary.keyid}")
            Signer(canary.key).sign(lookup)
            assert requests.get(lookup.target_uri, headers=dict(lookup.headers), timeout=10).status_code == 200
    assert isinstance(registry.get(canary.keyid), KeyRecord)
    evidence.assert_saw("log", "datafold_auth rejected 'GET' '/api/echo'", f"registered key {canary.keyid}")

    traffic = evidence.channel("traffic")
    signatures = signature_values(traffic)
    assert len(signatures) >= 6, signatures  # requests, httpx, async httpx, stranger, register, lookup
    assert all(len(decode_signature(value)) == 64 for value in signatures)
    evidence.assert_saw("traffic", f'keyid="{canary.keyid}"', canary.public_b64url, b"Content-Digest: sha-256=:")
    scanner.assert_clean(evidence)
