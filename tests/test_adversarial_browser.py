"""``store.rotate(keyid, url, {backupPassphrase, format})`` in real Chromium against the Flask example, when things go wrong.

* the storage and backup passphrases never appear in a request (URL, headers, body), the
  console, the returned objects, the errors (message, properties, cause) or IndexedDB;
* the server refuses (rotating a key that was already rotated): the old key stays and
  works, the new key is deleted again;
* the request is dropped before it reaches the server and the lookup says ``404``: the
  same, reason ``network_error``;
* the server rotates but the answer is lost and so is the lookup (``rotation_unknown``):
  the new key is kept with its backup (``error.backup``, which restores to the new keyid
  outside the browser) and, once the network is back, ``refreshStatus`` says ``active``
  and it signs.

Network faults are Playwright routes (``route.abort()``, ``route.fetch()`` then abort);
browser and servers come from tests/test_browser_page.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import restore_backup

from . import test_browser_page as browser_page
from .test_browser_page import Tab, unique

chromium = browser_page.chromium
servers = browser_page.servers

STORAGE_PASS = "storage-PASS-zq81"
BACKUP_PASS = "backup-PASS-xw42"
SECRETS = (STORAGE_PASS, BACKUP_PASS)

DUMP = """
const seen = new WeakSet();
const dump = (value) => JSON.stringify(value, (key, v) => {
  if (v instanceof ArrayBuffer) v = new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), (b) => String.fromCharCode(b)).join('');
  if (v instanceof Error) return { name: v.name, message: v.message, stack: v.stack, cause: v.cause, ...v };
  if (typeof v === 'object' && v !== null) { if (seen.has(v)) return '[seen]'; seen.add(v); }
  return v;
});
const errorView = (e) => ({ reason: e.reason, text: String(e), dump: dump(e), keys: Object.keys(e),
  backup: e.backup ? { keyid: e.backup.keyid, format: e.backup.format, data: e.backup.data } : null,
  newKeyid: e.newSigner ? e.newSigner.keyid : null });
const idb = async () => {
  const db = await new Promise((ok, ko) => { const r = indexedDB.open('datafold-auth'); r.onsuccess = () => ok(r.result); r.onerror = () => ko(r.error); });
  const all = await new Promise((ok, ko) => { const r = db.transaction('keys').objectStore('keys').getAll(); r.onsuccess = () => ok(r.result); r.onerror = () => ko(r.error); });
  db.close();
  return dump(all);
};
"""


class Watched:
    """A tab whose requests and console lines are all recorded."""

    def __init__(self, tab: Tab) -> None:
        self.tab = tab
        self.traffic: list[str] = []
        self.console: list[str] = []
        tab.page.on("console", lambda message: self.console.append(message.text))
        tab.page.on("request", self._request)

    def _request(self, request: Any) -> None:
        body = request.post_data_buffer or b""
        self.traffic.append(f"{request.method} {request.url} {json.dumps(request.headers)} {body.decode('latin-1')}")

    def js(self, body: str, arg: Any = None) -> Any:
        return self.tab.js(DUMP + body, arg)

    def assert_no_secret(self, *texts: str) -> None:
        # the capture works: the rotation request was seen, with its body
        assert [t for t in self.traffic if t.startswith("POST ") and "/rotate " in t and '"jwk"' in t]
        every = [*self.traffic, *self.console, *texts, self.js("return idb();")]
        for secret in SECRETS:
            assert not [t for t in every if secret in t], secret


@pytest.fixture
def watched(chromium: Any, servers: dict[str, Any]) -> Iterator[Watched]:
    opened = browser_page.open_tab(chromium, servers["flask"])
    try:
        yield Watched(opened)
    finally:
        opened.context.close()
    assert opened.errors == [], "uncaught errors in the page"


def _registered(w: Watched) -> str:
    return w.js(  # type: ignore[no-any-return]
        """
        const store = await df.KeyStore.open();
        const key = await store.create({ protection: 'passphrase', passphrase: arg.pass });
        await store.register(key.keyid, new URL('/register/keys', location.href), { clientId: arg.client });
        return key.keyid;""",
        {"pass": STORAGE_PASS, "client": unique("adv-rotate")},
    )


ROTATE = """
const store = await df.KeyStore.open();
const before = (await store.list()).map((k) => k.keyid);
let out = null, error = null;
try {
  const r = await store.rotate(arg.keyid, undefined, { backupPassphrase: arg.backup, format: arg.format,
                                                        protection: 'passphrase', passphrase: arg.pass });
  out = { dump: dump(r), keyid: r.key.keyid, backup: { keyid: r.backup.keyid, data: r.backup.data } };
} catch (e) { error = errorView(e); }
const after = await store.list();
return { before, after: after.map((k) => ({ keyid: k.keyid, status: k.registration && k.registration.status,
                                             backup: k.backup })), out, error };
"""

SIGNED_GET = """
const store = await df.KeyStore.open();
await store.unlock(arg.keyid, arg.pass);
const response = await (await store.load(arg.keyid)).fetch(new URL('/api/hello', location.href));
return response.status;
"""


def _rotate(w: Watched, keyid: str, fmt: str = "pem") -> dict[str, Any]:
    return w.js(ROTATE, {"keyid": keyid, "backup": BACKUP_PASS, "pass": STORAGE_PASS, "format": fmt})  # type: ignore[no-any-return]


def _signed_get(w: Watched, keyid: str) -> int:
    return w.js(SIGNED_GET, {"keyid": keyid, "pass": STORAGE_PASS})  # type: ignore[no-any-return]


def test_success_and_refusal_leak_no_passphrase_and_lose_no_key(watched: Watched) -> None:
    old = _registered(watched)
    done = _rotate(watched, old, "json")
    assert done["error"] is None, done["error"]
    new = done["out"]["keyid"]
    assert done["out"]["backup"]["keyid"] == new
    # a second rotation of the old (now rotated) key: the server refuses
    refused = _rotate(watched, old)
    assert refused["out"] is None and refused["error"]["reason"] not in ("rotation_unknown", None)
    assert sorted(k["keyid"] for k in refused["after"]) == sorted([old, new])  # the refused new key is gone again
    assert _signed_get(watched, new) == 200
    assert _signed_get(watched, old) == 200  # the overlap
    watched.assert_no_secret(json.dumps(done), json.dumps(refused))


def test_dropped_request_keeps_the_old_key_and_drops_the_new(watched: Watched) -> None:
    old = _registered(watched)
    watched.tab.page.route("**/rotate", lambda route: route.abort("connectionreset"))
    got = _rotate(watched, old)
    watched.tab.page.unroute("**/rotate")
    assert got["error"]["reason"] == "network_error"
    assert [k["keyid"] for k in got["after"]] == [old] and got["after"][0]["status"] == "active"
    assert _signed_get(watched, old) == 200
    watched.assert_no_secret(json.dumps(got))


def test_lost_answer_keeps_the_new_key_with_its_backup(watched: Watched, tmp_path: Path) -> None:
    old = _registered(watched)
    page = watched.tab.page

    def forward_then_drop(route: Any) -> None:
        route.fetch()  # the server rotates ...
        route.abort("connectionreset")  # ... and its answer is lost

    def lookup_down(route: Any) -> None:
        if route.request.method == "GET":
            route.abort("connectionreset")
        else:
            route.fallback()

    page.route("**/rotate", forward_then_drop)
    page.route("**/register/keys/*", lookup_down)
    got = _rotate(watched, old, "pem")
    page.unroute("**/rotate")
    page.unroute("**/register/keys/*")
    error = got["error"]
    assert error["reason"] == "rotation_unknown"
    new = error["newKeyid"]
    assert error["backup"]["keyid"] == new
    kept = {k["keyid"]: k for k in got["after"]}
    assert set(kept) == {old, new} and kept[new]["status"] == "rotating" and kept[new]["backup"]["format"] == "pem"
    # the backup handed over in the error restores the new key outside the browser
    pem = tmp_path / "new.pem"
    pem.write_text(error["backup"]["data"])
    assert jwk_thumbprint(restore_backup([pem.read_bytes()], BACKUP_PASS.encode()).private_key) == new
    # the network is back: the rotation did happen
    status = watched.js(
        "const store = await df.KeyStore.open(); return (await store.refreshStatus(arg)).registration.status;", new
    )
    assert status == "active"
    assert _signed_get(watched, new) == 200
    watched.assert_no_secret(json.dumps(got))
