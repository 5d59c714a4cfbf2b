"""Encrypted backups cross over between the browser, keytools and OpenSSL (docs/formats.md).

* written in Chromium (through the page's download, and through the module),
  restored by ``keytools restore`` and ``openssl pkey``;
* written by ``keytools backup`` and ``openssl pkcs8``, restored in Chromium;
* the published vectors of tests/vectors/ reproduced byte for byte in Chromium;
* keyids agree everywhere. scrypt, PBES1 and damaged inputs give clear errors.

Browser and servers come from tests/test_browser_page.py.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import read_public_key, restore_backup

from . import test_browser_page as browser_page
from .conftest import ROOT
from .test_browser_page import Tab, badges, unique, wait_status

# the browser, the example servers and the page of tests/test_browser_page.py
chromium = browser_page.chromium
servers = browser_page.servers
tab = browser_page.tab

OPENSSL = shutil.which("openssl")
VECTORS = ROOT / "tests" / "vectors"
PASSPHRASE = "Backup passphrase — ünïcödé 🔑"
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def keytools(*args: str) -> dict[str, Any]:
    """Run ``python -m keytools ... --json`` with no keychain and no passphrase in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_AUTH_", "DBUS_"))}
    env.update(PYTHONPATH=str(ROOT), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    proc = subprocess.run(
        [sys.executable, "-m", "keytools", *args, "--json"],
        env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def openssl(*args: str, data: bytes | None = None) -> bytes:
    assert OPENSSL is not None
    proc = subprocess.run([OPENSSL, *args], input=data, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def pass_file(tmp_path: Path, passphrase: str = PASSPHRASE) -> Path:
    path = tmp_path / "pass.txt"
    path.write_bytes(passphrase.encode("utf-8") + b"\n")
    path.chmod(0o600)
    return path


def openssl_keyid(pem: Path, passphrase_file: Path) -> str:
    """The keyid of an encrypted PKCS#8 PEM as OpenSSL reads it (its public key, then RFC 7638)."""
    public = openssl("pkey", "-in", str(pem), "-passin", f"file:{passphrase_file}", "-pubout")
    return jwk_thumbprint(read_public_key(public)[0])


def read_in_browser(tab: Tab, data: bytes, passphrase: str) -> dict[str, Any]:
    """``readBackup`` in the page: keyid, format, info, extractable; or the error's reason and message."""
    return tab.js(  # type: ignore[no-any-return]
        """
        const bytes = Uint8Array.from(atob(arg.data), (c) => c.charCodeAt(0));
        try {
          const r = await df.readBackup(bytes, arg.passphrase);
          return {keyid: r.keyid, format: r.format, info: r.info, extractable: r.privateKey.extractable, description: r.description};
        } catch (e) {
          return {error: e.reason, message: e.message};
        }""",
        {"data": base64.b64encode(data).decode(), "passphrase": passphrase},
    )


# --------------------------------------------------------------------------- the published vectors


def test_vectors_are_reproduced_and_read_in_chromium(tab: Tab) -> None:
    manifest = json.loads((VECTORS / "vectors.json").read_text())
    made = tab.js(
        """
        const hex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
        const pkcs8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...hex(arg.seed_hex)]);
        const key = await crypto.subtle.importKey('pkcs8', pkcs8, {name: 'Ed25519'}, true, ['sign']);
        const out = {};
        for (const v of arg.vectors) {
          if (!['pem-pbkdf2.pem', 'json-pbkdf2.json', 'binary-pbkdf2.bin'].includes(v.file)) continue;
          const backup = await df.exportBackup(key, arg.passphrase_nfd, {
            format: v.format, iterations: v.kdf.iterations, salt: hex(v.salt_hex),
            nonce: v.nonce_hex ? hex(v.nonce_hex) : undefined, iv: v.iv_hex ? hex(v.iv_hex) : undefined,
            label: arg.label, created: arg.created, clientId: arg.client_id,
          });
          out[v.file] = typeof backup.data === 'string' ? btoa(unescape(encodeURIComponent(backup.data))) : df.base64Encode(backup.data);
        }
        return out;""",
        manifest,
    )
    for name, data in made.items():
        assert base64.b64decode(data) == (VECTORS / name).read_bytes(), name
    for name in ("pem-pbkdf2.pem", "json-pbkdf2.json", "binary-pbkdf2.bin"):
        for passphrase in (manifest["passphrase"], manifest["passphrase_nfd"]):
            got = read_in_browser(tab, (VECTORS / name).read_bytes(), passphrase)
            assert got["keyid"] == manifest["keyid"], got
            assert got["extractable"] is False
            if name != "pem-pbkdf2.pem":
                assert got["info"] == {
                    "keyid": manifest["keyid"], "label": manifest["label"],
                    "created": manifest["created"], "clientId": manifest["client_id"],
                }  # fmt: skip
    for name in ("json-scrypt.json", "binary-scrypt.bin", "pem-scrypt-openssl.pem"):
        got = read_in_browser(tab, (VECTORS / name).read_bytes(), manifest["passphrase"])
        assert got["error"] == "unsupported_backup", got
        assert "scrypt" in got["message"] and ("keytools" in got["message"] or "openssl" in got["message"])


# --------------------------------------------------------------------------- browser -> keytools and OpenSSL


@needs_openssl
def test_backup_at_birth_in_the_page_restores_with_keytools_and_openssl(tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    client_id = unique("birth")
    page.fill("#create-label", "backed up at birth")
    page.fill("#create-client", client_id)
    page.fill("#create-backup-pass", "short")
    page.fill("#create-backup-pass2", "short")
    page.click("#create-submit")
    assert "at least 12 characters" in wait_status(tab, "#create-status")
    page.fill("#create-backup-pass", PASSPHRASE)
    page.fill("#create-backup-pass2", PASSPHRASE + "x")
    page.click("#create-submit")
    assert "differ" in wait_status(tab, "#create-status")
    page.fill("#create-backup-pass2", PASSPHRASE)
    page.click("#create-submit")
    assert "Created key" in wait_status(tab, "#create-status")
    keyid = str(page.get_attribute("li.key", "data-keyid"))
    assert page.is_visible("#backup-section")
    assert page.evaluate("() => document.activeElement.id") == "backup-heading"
    assert badges(tab, keyid) == ["Not registered", "Non-extractable", "Backup not confirmed"]
    with page.expect_download() as download_info:
        page.click("#backup-download")
    download = download_info.value
    pem = tmp_path / download.suggested_filename
    download.save_as(pem)
    assert pem.suffix == ".pem" and pem.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----\n")

    # confirm by restoring: a wrong passphrase is refused, then the right one confirms
    page.set_input_files("#confirm-file", str(pem))
    page.fill("#confirm-pass", "not it at all")
    page.click("#confirm-form button[type=submit]")
    assert "Wrong passphrase" in wait_status(tab, "#confirm-status")
    page.evaluate("() => document.getElementById('confirm-status').className = 'status'")
    page.fill("#confirm-pass", PASSPHRASE)
    page.click("#confirm-form button[type=submit]")
    assert f"holds key {keyid}" in wait_status(tab, "#confirm-status")
    assert badges(tab, keyid) == ["Not registered", "Non-extractable", "Backed up (PEM)"]
    stored = tab.js(
        """const s = await df.KeyStore.open(); const signer = await s.load(arg);
        try { await crypto.subtle.exportKey('pkcs8', signer.privateKey); return 'exported'; } catch (e) { return e.name; }""",
        keyid,
    )
    assert stored == "InvalidAccessError"

    secret = pass_file(tmp_path)
    assert openssl_keyid(pem, secret) == keyid
    text = openssl("pkey", "-in", str(pem), "-passin", f"file:{secret}", "-noout", "-text").decode()
    assert "ED25519 Private-Key" in text
    asn1 = openssl("asn1parse", "-in", str(pem)).decode()
    for part in ("PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc", ":0927C0"):  # 600000 iterations
        assert part in asn1, part
    restored = keytools("restore", str(pem), "--home", str(tmp_path / "kt"), "--name", "from-browser",
                        "--backup-passphrase-file", str(secret), "--no-encryption")  # fmt: skip
    assert restored["keyid"] == keyid


def test_module_backups_restore_with_keytools(tab: Tab, tmp_path: Path) -> None:
    client_id = unique("mod")
    made = tab.js(
        """
        const store = await df.KeyStore.open();
        const out = {};
        for (const format of ['json', 'binary', 'pem']) {
          const {key, backup} = await store.createWithBackup({label: 'étiquette ' + format, clientId: arg.client + '-' + format,
                                                             backupPassphrase: arg.pass, format});
          const stored = await store.get(key.keyid);
          out[format] = {keyid: key.keyid, created: key.created, filename: backup.filename, mimeType: backup.mimeType,
                         data: typeof backup.data === 'string' ? btoa(unescape(encodeURIComponent(backup.data))) : df.base64Encode(backup.data),
                         extractable: stored.extractable, backup: stored.backup};
        }
        return out;""",
        {"pass": PASSPHRASE, "client": client_id},
    )
    secret = pass_file(tmp_path)
    for fmt, item in made.items():
        data = base64.b64decode(item["data"])
        path = tmp_path / item["filename"]
        path.write_bytes(data)
        assert item["backup"]["format"] == fmt and item["backup"]["confirmedAt"] is None
        restored = keytools("restore", str(path), "--home", str(tmp_path / fmt), "--name", "b",
                            "--backup-passphrase-file", str(secret), "--no-encryption")  # fmt: skip
        assert restored["keyid"] == item["keyid"], fmt
        library = restore_backup([data], PASSPHRASE.encode())
        assert jwk_thumbprint(library.private_key) == item["keyid"]
        if fmt != "pem":
            assert restored["label"] == f"étiquette {fmt}" and restored["client_id"] == f"{client_id}-{fmt}"
            assert library.info is not None and library.info.created == item["created"]
            assert library.warnings == [], library.warnings  # 600,000 PBKDF2 iterations: the default cost
    assert made["json"]["mimeType"] == "application/json" and made["binary"]["filename"].endswith(".dfkb")


def test_passphrase_protected_key_can_be_backed_up_later(tab: Tab, tmp_path: Path) -> None:
    got = tab.js(
        """
        const store = await df.KeyStore.open();
        const pp = await store.create({protection: 'passphrase', passphrase: 'storage passphrase 1', label: 'later'});
        const backup = await store.exportBackup(pp.keyid, 'storage passphrase 1', arg, {format: 'pem'});
        let wrong = null;
        try { await store.exportBackup(pp.keyid, 'not the storage passphrase', arg); } catch (e) { wrong = e.reason; }
        const plain = await store.create({label: 'never extractable'});
        let refused = null;
        try { await store.exportBackup(plain.keyid, 'x', arg); } catch (e) { refused = [e.reason, e.message]; }
        const pair = await df.generateKeyPair();
        let direct = null;
        try { await df.exportBackup(pair, arg); } catch (e) { direct = e.reason; }
        return {keyid: pp.keyid, pem: backup.data, wrong, refused, direct, state: (await store.get(pp.keyid)).backup};""",
        PASSPHRASE,
    )
    pem = tmp_path / "later.pem"
    pem.write_text(got["pem"])
    assert jwk_thumbprint(restore_backup([pem.read_bytes()], PASSPHRASE.encode()).private_key) == got["keyid"]
    assert got["wrong"] == "wrong_passphrase"
    assert got["refused"][0] == "not_extractable" and "cannot be backed up" in got["refused"][1]
    assert got["direct"] == "not_extractable"
    assert got["state"]["format"] == "pem" and got["state"]["writtenAt"]


# --------------------------------------------------------------------------- keytools and OpenSSL -> browser


def test_keytools_backups_restore_in_chromium(tab: Tab, tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    secret = pass_file(tmp_path)
    made = keytools("generate", "--home", home, "--no-encryption", "--label", "from keytools é", "--client-id", "kt-1")
    keyid = made["keyid"]
    files = {
        "pem": ["pem"],
        "json": ["json", "--kdf", "pbkdf2"],
        "dfkb": ["binary", "--kdf", "pbkdf2"],
    }
    for suffix, args in files.items():
        keytools(
            "backup",
            *args,
            "--home",
            home,
            "--out",
            str(tmp_path / f"kt.{suffix}"),
            "--backup-passphrase-file",
            str(secret),
        )
        got = read_in_browser(tab, (tmp_path / f"kt.{suffix}").read_bytes(), PASSPHRASE)
        assert got["keyid"] == keyid, (suffix, got)
        if suffix != "pem":
            assert got["info"]["label"] == "from keytools é" and got["info"]["clientId"] == "kt-1"
    keytools("backup", "json", "--home", home, "--scrypt-log-n", "10", "--out", str(tmp_path / "scrypt.json"),
             "--backup-passphrase-file", str(secret))  # fmt: skip
    refused = read_in_browser(tab, (tmp_path / "scrypt.json").read_bytes(), PASSPHRASE)
    assert refused["error"] == "unsupported_backup" and "--kdf pbkdf2" in refused["message"]

    # the page's restore flow, with the keytools JSON backup as a file
    page = tab.page
    page.set_input_files("#restore-file", str(tmp_path / "kt.json"))
    page.fill("#restore-pass", PASSPHRASE + " wrong")
    page.click("#restore-form button[type=submit]")
    assert "Wrong passphrase" in wait_status(tab, "#restore-status")
    assert "Wrong passphrase" in (page.text_content("#error") or "")
    page.evaluate("() => document.getElementById('restore-status').className = 'status'")
    page.set_input_files("#restore-file", str(tmp_path / "kt.json"))
    page.fill("#restore-pass", PASSPHRASE)
    page.click("#restore-form button[type=submit]")
    status = wait_status(tab, "#restore-status")
    assert f"Restored and verified key {keyid}" in status and "its keyid matches" in status
    assert badges(tab, keyid) == ["Not registered", "Non-extractable", "Backed up (JSON)"]
    assert page.text_content(f'li.key[data-keyid="{keyid}"] h3') == "from keytools é"


@needs_openssl
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("openssl 3 default (PBKDF2-SHA256 2048, 8-byte salt)", []),
        (
            "aes-256-cbc / hmacWithSHA256 / 600000",
            ["-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA256", "-iter", "600000"],
        ),
        ("aes-128-cbc / hmacWithSHA512", ["-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA512"]),
        ("aes-192-cbc / hmacWithSHA1", ["-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA1"]),
    ],
)
def test_openssl_backups_restore_in_chromium(tab: Tab, tmp_path: Path, name: str, options: list[str]) -> None:
    secret = pass_file(tmp_path)
    plain = tmp_path / "plain.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(plain))
    encrypted = tmp_path / "enc.pem"
    openssl("pkcs8", "-topk8", "-in", str(plain), "-passout", f"file:{secret}", "-out", str(encrypted), *options)
    keyid = openssl_keyid(encrypted, secret)
    got = read_in_browser(tab, encrypted.read_bytes(), PASSPHRASE)
    if "aes-192" in name and got.get("error"):  # Chromium has no 192-bit AES; the message says what to do
        assert (
            got["error"] == "unsupported_backup"
            and "aes-192-cbc" in got["message"]
            and "openssl pkcs8" in got["message"]
        )
        return
    assert got["keyid"] == keyid, (name, got)
    assert got["format"] == "pem" and got["extractable"] is False
    # an unencrypted PKCS#8 PEM is read too (and said to be unencrypted)
    unencrypted = read_in_browser(tab, plain.read_bytes(), "")
    assert unencrypted["keyid"] == keyid and unencrypted["format"] == "pkcs8"


@needs_openssl
def test_openssl_schemes_a_browser_cannot_do_are_named(tab: Tab, tmp_path: Path) -> None:
    secret = pass_file(tmp_path)
    plain = tmp_path / "plain.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(plain))
    expected = {
        "scrypt": (["-scrypt", "-scrypt_N", "1024"], "scrypt"),
        "pbes1": (["-v1", "PBE-SHA1-3DES"], "PBES1"),
        "3des": (["-v2", "des3"], "3DES"),
    }
    for label, (options, words) in expected.items():
        out = tmp_path / f"{label}.pem"
        try:
            openssl("pkcs8", "-topk8", "-in", str(plain), "-passout", f"file:{secret}", "-out", str(out), *options)
        except AssertionError:
            continue  # this OpenSSL build lacks the legacy scheme
        got = read_in_browser(tab, out.read_bytes(), PASSPHRASE)
        assert got.get("error") == "unsupported_backup", (label, got)
        assert words in got["message"], (label, got)


def test_pkcs8_v2_with_public_key_is_read(tab: Tab) -> None:
    """A OneAsymmetricKey (RFC 5958 v2, with the public key) that WebCrypto will not import directly."""
    key = Ed25519PrivateKey.generate()
    seed, public = key.private_bytes_raw(), key.public_key().public_bytes_raw()
    v2 = bytes.fromhex("3051020101300506032b657004220420") + seed + bytes.fromhex("812100") + public
    salt, iv, iterations = os.urandom(16), os.urandom(16), 1000
    aes_key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(PASSPHRASE.encode())
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(v2) + padder.finalize()) + encryptor.finalize()

    def tlv(tag: int, content: bytes) -> bytes:
        size = len(content)
        head = bytes((tag, size)) if size < 0x80 else bytes((tag, 0x81, size))
        return head + content

    pbkdf2 = tlv(0x30, bytes.fromhex("06092a864886f70d01050c") + tlv(0x30, tlv(0x04, salt) + tlv(0x02, iterations.to_bytes(2, "big"))
                 + tlv(0x30, bytes.fromhex("06082a864886f70d0209") + b"\x05\x00")))  # fmt: skip
    scheme = tlv(
        0x30,
        bytes.fromhex("06092a864886f70d01050d")
        + tlv(0x30, pbkdf2 + tlv(0x30, bytes.fromhex("060960864801650304012a") + tlv(0x04, iv))),
    )
    body = base64.encodebytes(tlv(0x30, scheme + tlv(0x04, ciphertext))).decode()
    pem = f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}-----END ENCRYPTED PRIVATE KEY-----\n"
    got = read_in_browser(tab, pem.encode(), PASSPHRASE)
    assert got["keyid"] == jwk_thumbprint(key), got
    wrong = read_in_browser(tab, pem.encode(), "wrong")
    assert wrong["error"] == "wrong_passphrase"


def test_wrong_passphrase_and_damaged_backups(tab: Tab) -> None:
    manifest = json.loads((VECTORS / "vectors.json").read_text())
    pem = (VECTORS / "pem-pbkdf2.pem").read_bytes()
    doc = json.loads((VECTORS / "json-pbkdf2.json").read_text())
    binary = (VECTORS / "binary-pbkdf2.bin").read_bytes()
    for data in (pem, json.dumps(doc).encode(), binary):
        assert read_in_browser(tab, data, "wrong passphrase")["error"] == "wrong_passphrase"
    relabelled = {**doc, "key": {**doc["key"], "label": "changed"}}  # the header is authenticated
    assert read_in_browser(tab, json.dumps(relabelled).encode(), manifest["passphrase"])["error"] == "wrong_passphrase"
    extra = {**doc, "comment": "x"}
    assert read_in_browser(tab, json.dumps(extra).encode(), manifest["passphrase"])["error"] == "invalid_backup"
    text = (VECTORS / "json-pbkdf2.json").read_text()
    duplicated = text.replace('"version": 1,', '"version": 1,\n  "version": 1,')
    assert read_in_browser(tab, duplicated.encode(), manifest["passphrase"])["error"] == "invalid_backup"
    not_integer = text.replace('"created": 1700000000', '"created": 1700000000.0')
    assert read_in_browser(tab, not_integer.encode(), manifest["passphrase"])["error"] == "invalid_backup"
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    keyid = doc["key"]["keyid"]
    spare = keyid[:-1] + alphabet[alphabet.index(keyid[-1]) ^ 1]  # same 32 bytes: only an unused bit differs
    respelled = {**doc, "key": {**doc["key"], "keyid": spare}}
    refused = read_in_browser(tab, json.dumps(respelled).encode(), manifest["passphrase"])
    assert refused == {"error": "invalid_backup", "message": "backup keyid is not canonical base64url"}
    padded = {**doc, "ciphertext": doc["ciphertext"] + "=="}
    assert read_in_browser(tab, json.dumps(padded).encode(), manifest["passphrase"])["error"] == "invalid_backup"
    assert read_in_browser(tab, binary[:-1], manifest["passphrase"])["error"] == "invalid_backup"
    assert read_in_browser(tab, binary + b"\x00", manifest["passphrase"])["error"] == "invalid_backup"
    truncated = pem.replace(pem.splitlines()[2], pem.splitlines()[2][:20])
    assert read_in_browser(tab, truncated, manifest["passphrase"])["error"] == "invalid_backup"
    assert read_in_browser(tab, pem, "")["error"] == "passphrase_required"
    public = read_in_browser(
        tab,
        b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n",
        "x",
    )
    assert public["error"] == "unsupported_backup" and "public key" in public["message"]
    paper = read_in_browser(tab, (VECTORS / "paper.txt").read_bytes(), "x")
    assert paper["error"] == "unsupported_backup" and "keytools restore" in paper["message"]


def test_every_field_of_the_binary_vector_is_authenticated(tab: Tab) -> None:
    """docs/formats.md section 7 (c): changing one byte of any header field, or of the ciphertext, is refused."""
    manifest = json.loads((VECTORS / "vectors.json").read_text())
    binary = (VECTORS / "binary-pbkdf2.bin").read_bytes()
    # magic, version, kdf id, iterations, salt length, salt, cipher id, nonce length, nonce, keyid,
    # created, label length, label, client_id length, client_id, ciphertext length, ciphertext, tag
    offsets = [0, 4, 5, 9, 10, 11, 27, 28, 29, 41, 73, 81, 83, 90, 108, 113, 119, 121, len(binary) - 1]
    for offset in offsets:
        changed = bytearray(binary)
        changed[offset] ^= 0x01
        got = read_in_browser(tab, bytes(changed), manifest["passphrase"])
        assert got.get("error") in ("wrong_passphrase", "invalid_backup", "unsupported_backup"), (offset, got)
