"""Key lifecycle in browser/datafold-auth.js (docs/protocol.md section 7, docs/browser.md).

* node: protocol.md 7.1's worked rotation example reproduced byte for byte by
  ``rotationRequest``, the 7.6 fingerprint example, ``Retry-After`` on
  ``429 rate_limited``, and a lost rotation answer settled by a lookup;
* Chromium against the Flask example: a key made in the page registers,
  rotates (the new key's GET is accepted, the old key keeps working during the
  overlap), then the holder revokes the new key and it gets ``key_not_active``.

Browser and servers come from tests/test_browser_page.py.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import read_public_key, restore_backup

from . import test_browser_page as browser_page
from .conftest import ROOT
from .test_browser_js import run_node
from .test_browser_page import Tab, card, unique

chromium = browser_page.chromium
servers = browser_page.servers
tab = browser_page.tab

NEW_JWK = {  # RFC 8037 appendix A.1
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
}

ROTATION_RUNNER = r"""
async function main(df, data) {
  const signerOf = async (jwk) => {
    const priv = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
    return df.Signer.create(priv, { kty: "OKP", crv: "Ed25519", x: jwk.x });
  };
  const current = await signerOf(data.current);
  const next = await signerOf(data.next);
  const built = await df.rotationRequest(current, next, "https://api.example.com/register/keys", {
    now: 1800000000, nonce: "R3o5JlsK4cELCXjiOtXbZg", newNonce: "Qm9Lq8ZtV1xYp2Hs7WdR4c",
  });
  return { url: built.url, headers: built.headers, body: built.body, bases: built.bases, newKeyid: built.newSigner.keyid,
           fingerprint: df.fingerprint("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k") };
}
"""


def test_rotation_example_of_protocol_md_in_node(rfc_vectors: dict[str, Any], tmp_path: Path) -> None:
    b14 = rfc_vectors["rfc9421_b14_test_key_ed25519"]["jwk"]
    current = {"kty": "OKP", "crv": "Ed25519", "x": b14["x"], "d": b14["d"]}
    got = run_node(ROTATION_RUNNER, {"current": current, "next": NEW_JWK}, tmp_path)
    doc = (ROOT / "docs" / "protocol.md").read_text()
    section = doc.split("### 7.1 Rotation", 1)[1].split("### 7.2", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    assert got["url"] == ("https://api.example.com/register/keys/poqkLGiymh_W0uP6PZFw-dvez3QJT5SolqXBCW38r0U/rotate")
    assert got["newKeyid"] == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert got["body"] + "\n" in blocks
    assert got["bases"][1] + "\n" in blocks  # the df-new base, byte for byte
    # the df base: the same lines, its own @signature-params
    assert got["bases"][0].split('"@signature-params"')[0] == got["bases"][1].split('"@signature-params"')[0]
    assert 'tag="datafold"' in got["bases"][0] and 'nonce="R3o5JlsK4cELCXjiOtXbZg"' in got["bases"][0]
    # exactly the documented field lines, one Signature-Input and one Signature, df first
    assert "".join(f"{k}: {v}\n" for k, v in got["headers"]) in blocks
    assert [k for k, _ in got["headers"]] == ["Content-Type", "Content-Digest", "Signature-Input", "Signature"]
    assert got["fingerprint"] == "SD5M V7VJ WFKW NGCU B5YM AEL2 ELVD PPK4"
    assert got["fingerprint"] in doc


ANSWERS_RUNNER = r"""
async function main(df) {
  const pair = await df.generateKeyPair();
  const out = {};
  const problem = (status, reason, headers = {}) => new Response(
    JSON.stringify({ type: "about:blank", title: reason, status, reason }),
    { status, headers: { "Content-Type": "application/problem+json", ...headers } });
  // 429 rate_limited with Retry-After: thrown with retryAfter, or waited for and signed again
  let calls = 0;
  const nonces = [];
  const limited = async (request) => {
    calls += 1;
    nonces.push(request.headers.get("signature-input").match(/nonce="([^"]+)"/)[1]);
    if (calls === 1) return problem(429, "rate_limited", { "Retry-After": "1" });
    return new Response(JSON.stringify({ keyid: "k", status: "suspended" }), { status: 201, headers: { "Content-Type": "application/json" } });
  };
  const signer = await df.Signer.create(pair.privateKey, pair.publicKey, { fetch: limited });
  try { await df.register(signer, "http://127.0.0.1:1/register/keys"); } catch (e) {
    out.limited = { reason: e.reason, status: e.status, retryAfter: e.retryAfter, problem: e.problem, message: e.message };
  }
  calls = 0; nonces.length = 0;
  const record = await df.register(signer, "http://127.0.0.1:1/register/keys", { maxRetryWait: 2 });
  out.retried = { status: record.status, calls, distinctNonces: new Set(nonces).size };
  out.suspended = df.describeStatus("suspended");
  out.badKeyid = await (async () => { try { df.fingerprint("nope"); } catch (e) { return e.reason; } })();
  // a lost rotation answer: the lookup shows replaces = old keyid, so the rotation happened
  const next = await df.generateKeyPair();
  const nextKeyid = await df.keyIdOf(next.publicKey);
  const seen = [];
  const lossy = async (input, init) => {
    const url = typeof input === "string" ? input : input.url;
    seen.push((init?.method ?? "GET") + " " + url);
    if (url.endsWith("/rotate")) throw new TypeError("Failed to fetch");
    if (url.endsWith("/" + nextKeyid)) return new Response(JSON.stringify({ keyid: nextKeyid, status: "active", replaces: signer.keyid }), { status: 200, headers: { "Content-Type": "application/json" } });
    return new Response(JSON.stringify({ keyid: signer.keyid, status: "rotated", replaced_by: nextKeyid }), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  const result = await df.rotate(signer, next, "http://127.0.0.1:1/register/keys", { fetch: lossy });
  out.recovered = { keyid: result.signer.keyid, expected: nextKeyid, status: result.record.status, previous: result.previous.status, seen };
  // lost, and the lookup says 404: not done, the new key is handed back
  const notDone = async (input) => {
    const url = typeof input === "string" ? input : input.url;
    if (url.endsWith("/rotate")) throw new TypeError("Failed to fetch");
    return problem(404, "not_found");
  };
  try { await df.rotate(signer, next, "http://127.0.0.1:1/register/keys", { fetch: notDone }); } catch (e) {
    out.notDone = { reason: e.reason, newKeyid: e.newSigner && e.newSigner.keyid };
  }
  // the lookup fails too: unknown
  const down = async () => { throw new TypeError("Failed to fetch"); };
  try { await df.rotate(signer, next, "http://127.0.0.1:1/register/keys", { fetch: down }); } catch (e) {
    out.unknown = { reason: e.reason, newKeyid: e.newSigner && e.newSigner.keyid };
  }
  out.nextKeyid = nextKeyid;
  return out;
}
"""


def test_rate_limits_suspension_and_lost_rotation_answers_in_node(tmp_path: Path) -> None:
    got = run_node(ANSWERS_RUNNER, None, tmp_path)
    limited = got["limited"]
    assert limited["reason"] == "rate_limited" and limited["status"] == 429 and limited["retryAfter"] == 1
    assert limited["problem"]["retry_after"] == 1 and "wait 1 s" in limited["message"]
    assert got["retried"] == {"status": "suspended", "calls": 2, "distinctNonces": 2}
    assert got["suspended"]["usable"] is False and "operator" in got["suspended"]["text"]
    assert got["badKeyid"] == "invalid_key"
    recovered = got["recovered"]
    assert recovered["keyid"] == recovered["expected"] and recovered["status"] == "active"
    assert recovered["previous"] == "rotated"
    assert recovered["seen"][0].startswith("POST ") and recovered["seen"][0].endswith("/rotate")
    assert got["notDone"] == {"reason": "network_error", "newKeyid": got["nextKeyid"]}
    assert got["unknown"] == {"reason": "rotation_unknown", "newKeyid": got["nextKeyid"]}


# --------------------------------------------------------------------------- Chromium, real server

SIGNED_GET = """
const store = await df.KeyStore.open();
const signer = await store.load(arg.keyid);
const response = await signer.fetch(new URL('/api/hello', location.href));
const problem = response.ok ? null : await df.readProblem(response.clone());
return { status: response.status, reason: problem && problem.reason, body: response.ok ? await response.json() : null };
"""


def signed_get(tab: Tab, keyid: str) -> dict[str, Any]:
    return tab.js(SIGNED_GET, {"keyid": keyid})  # type: ignore[no-any-return]


def test_page_key_registers_rotates_and_is_revoked(tab: Tab) -> None:
    client = unique("rotator")
    old = tab.js(
        """
        const store = await df.KeyStore.open();
        const key = await store.create({ label: 'laptop' });
        await store.register(key.keyid, new URL('/register/keys', location.href), { clientId: arg });
        return key.keyid;""",
        client,
    )
    assert signed_get(tab, old)["status"] == 200
    rotated = tab.js(
        """
        const store = await df.KeyStore.open();
        const out = await store.rotate(arg);
        const response = await out.signer.fetch(new URL('/api/hello', location.href));
        return { key: out.key, previous: out.previous, record: out.record, status: response.status, body: await response.json(),
                 stored: (await store.list()).map((k) => k.keyid) };""",
        old,
    )
    new = rotated["key"]["keyid"]
    assert new != old and set(rotated["stored"]) == {old, new}
    assert rotated["record"]["status"] == "active" and rotated["record"]["replaces"] == old
    assert rotated["record"]["client_id"] == client and rotated["record"]["fingerprint"] == tab.js(
        "return df.fingerprint(arg);", new
    )
    assert rotated["key"]["registration"]["status"] == "active"
    assert rotated["previous"]["registration"]["status"] == "rotated"
    assert rotated["status"] == 200 and rotated["body"]["keyid"] == new and rotated["body"]["hello"] == client
    # a fresh signer of the stored new key, and the old key during the overlap
    again = signed_get(tab, new)
    assert again["status"] == 200 and again["body"]["keyid"] == new
    overlap = signed_get(tab, old)
    assert overlap["status"] == 200 and overlap["body"]["keyid"] == old and overlap["body"]["hello"] == client
    # the key card shows the fingerprint and the rotation
    tab.reload()
    fp = card(tab, new).locator("code.fingerprint").text_content()
    assert fp is not None and re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", fp)
    assert fp == rotated["record"]["fingerprint"]
    assert "Registered: rotated" in card(tab, old).locator(".badge .badge-text").all_text_contents()
    # holder revocation of the new key
    revoked = tab.js(
        """
        const store = await df.KeyStore.open();
        return store.revoke(arg, undefined, { reason: 'lost the laptop' });""",
        new,
    )
    assert revoked["record"]["status"] == "revoked" and revoked["key"]["registration"]["status"] == "revoked"
    deadline = time.monotonic() + 15  # the example's verifier caches records for 5 s (docs/operations.md)
    while True:
        answer = signed_get(tab, new)
        if answer["status"] != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert answer["status"] == 401 and answer["reason"] == "key_not_active"
    # revocation is final: the revoked key cannot even sign its own revocation again
    again_revoked = tab.js(
        """
        const store = await df.KeyStore.open();
        try { await store.revoke(arg); return null; } catch (e) { return { reason: e.reason, status: e.status }; }""",
        new,
    )
    assert again_revoked == {"reason": "key_not_active", "status": 401}


ROTATE_WITH_BACKUP = """
const store = await df.KeyStore.open();
const out = arg.pass === null ? await store.rotate(arg.keyid) : await store.rotate(arg.keyid, undefined, { backupPassphrase: arg.pass, format: arg.format });
const response = await out.signer.fetch(new URL('/api/hello', location.href));
const backup = out.backup && { keyid: out.backup.keyid, format: out.backup.format, filename: out.backup.filename,
  data: typeof out.backup.data === 'string' ? out.backup.data : df.base64Encode(out.backup.data) };
return { key: out.key, record: out.record, status: response.status, backup, stored: await store.get(out.key.keyid),
         extractable: (await store.load(out.key.keyid)).privateKey.extractable };
"""


def test_rotation_with_a_backup_at_birth_restores_the_new_key(tab: Tab, tmp_path: Path) -> None:
    """store.rotate(keyid, url, {backupPassphrase, format}) backs the new key up as createWithBackup does."""
    passphrase = "rotation backup passphrase é"
    old = browser_page.create_registered_key(tab, unique("rotate-backup"))
    got = tab.js(ROTATE_WITH_BACKUP, {"keyid": old, "pass": passphrase, "format": "pem"})
    new = got["key"]["keyid"]
    assert new != old and got["record"]["replaces"] == old and got["status"] == 200
    backup = got["backup"]
    assert backup["keyid"] == new and backup["format"] == "pem" and backup["filename"] == f"datafold-key-{new[:12]}.pem"
    assert got["stored"]["backup"]["format"] == "pem" and got["stored"]["backup"]["writtenAt"] is not None
    assert got["stored"]["backup"]["confirmedAt"] is None and got["stored"]["protection"] == "non-extractable"
    assert got["extractable"] is False
    # the backup opens outside the browser, to the NEW keyid: the Python reader and openssl
    pem = tmp_path / backup["filename"]
    pem.write_text(backup["data"])
    assert jwk_thumbprint(restore_backup([pem.read_bytes()], passphrase.encode()).private_key) == new
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(pem), "-passin", "env:BACKUP_PASS", "-pubout"],
        env={"BACKUP_PASS": passphrase, "PATH": os.environ["PATH"]},
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert jwk_thumbprint(read_public_key(public)[0]) == new
    # binary, with createWithBackup's format option; then a rotation without a backup gives none, as before
    got_binary = tab.js(ROTATE_WITH_BACKUP, {"keyid": new, "pass": passphrase, "format": "binary"})
    newer = got_binary["key"]["keyid"]
    assert got_binary["backup"]["format"] == "binary" and got_binary["backup"]["keyid"] == newer != new
    restored = restore_backup([base64.b64decode(got_binary["backup"]["data"])], passphrase.encode())
    assert jwk_thumbprint(restored.private_key) == newer and got_binary["status"] == 200
    plain = tab.js(ROTATE_WITH_BACKUP, {"keyid": newer, "pass": None, "format": None})
    assert plain["backup"] is None and plain["stored"]["backup"] is None and plain["status"] == 200
