"""The browser script (browser/datafold-auth.js) and the key manager page leak no private key or passphrase.

Debian's Chromium (Playwright with ``executable_path``) loads ``/browser/`` from the Flask example app through
a recording TCP proxy, so every byte the page sends and receives is kept. In the page: a key is made with a
backup at birth (the page's form, a wrong confirmation passphrase first), registered and used for signed GET
and POST requests; the Python canary key is restored into the browser from a sealed backup, stored
passphrase-protected, unlocked (wrong passphrase first), registered, used for a signed fetch and exported as
a backup again; damaged backups and wrong passphrases are fed to ``readBackup``. Collected: traffic, the
console messages and page errors, the text of every error the module raised, and the page's visible text.
The keys made in the browser are recovered from their backups (in Python) so their secrets are searched too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datafold_auth.keys import Pbkdf2Params, restore_backup, seal
from datafold_auth.keys.backup import BackupInfo

from . import test_browser_page as browser_page
from .secrets_harness import Canary, Evidence, RecordingProxy, SecretScanner, signature_values
from .test_browser_page import ExampleServer, Tab, open_tab, unique, wait_status

chromium = browser_page.chromium  # Debian's Chromium, launched once for the module

WRONG = "Wrong-Guess-4410-\u00e9-browser"


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    browser_page._need_browser()
    server = ExampleServer("flask", tmp_path_factory.mktemp("secrets-browser"))
    try:
        yield server
    finally:
        server.stop()


class _Proxied:
    """What :func:`open_tab` needs of a server: its URL (here the proxy's)."""

    def __init__(self, url: str) -> None:
        self.url = url


def test_browser_leaks_nothing(chromium: Any, app_server: ExampleServer, tmp_path: Path) -> None:
    canary = Canary.generate()
    backup_pass = Canary.generate().passphrase
    storage_pass = Canary.generate().passphrase
    page_backup_pass = Canary.generate().passphrase
    evidence = Evidence()
    proxy = RecordingProxy(app_server.url)
    tab: Tab | None = None
    try:
        tab = open_tab(chromium, _Proxied(proxy.url))  # type: ignore[arg-type]
        page = tab.page
        page.on("console", lambda msg: evidence.add("console", msg.type, msg.text))
        page.on("pageerror", lambda error: evidence.add("pageerror", "page", f"{error}\n{error.stack or ''}"))
        page.evaluate("(k) => console.log('harness console probe', k)", canary.keyid)

        # 1. the page's form: a key with a backup at birth, confirmed (wrong passphrase first), registered, used
        client_id = unique("secrets")
        page.fill("#create-label", "secrets harness")
        page.fill("#create-client", client_id)
        page.fill("#create-backup-pass", page_backup_pass)
        page.fill("#create-backup-pass2", page_backup_pass)
        page.click("#create-submit")
        assert "Created key" in wait_status(tab, "#create-status")
        page_keyid = str(page.get_attribute("li.key", "data-keyid"))
        with page.expect_download() as download_info:
            page.click("#backup-download")
        pem = tmp_path / "page-backup.pem"
        download_info.value.save_as(pem)
        page.set_input_files("#confirm-file", str(pem))
        page.fill("#confirm-pass", WRONG)
        page.click("#confirm-form button[type=submit]")
        assert "Wrong passphrase" in wait_status(tab, "#confirm-status")
        page.evaluate("() => document.getElementById('confirm-status').className = 'status'")
        page.fill("#confirm-pass", page_backup_pass)
        page.click("#confirm-form button[type=submit]")
        assert page_keyid in wait_status(tab, "#confirm-status")
        page.locator(f'li.key[data-keyid="{page_keyid}"] button[data-action=register]').click()
        assert "Registered as" in wait_status(tab, f'[id="key-{page_keyid}-status"]')
        assert browser_page.send(tab, "GET", "/api/hello")["status"] == "200"
        assert browser_page.send(tab, "POST", "/api/items", body='{"name": "secret-free"}')["status"] == "200"
        evidence.add("page text", "after the form", page.inner_text("body"))

        # 2. the module: the Python canary restored into the browser, protected, unlocked, registered, used
        sealed = seal(canary.key, backup_pass.encode(), BackupInfo(canary.keyid, label="canary"),
                      kdf=Pbkdf2Params(1000)).to_json()  # fmt: skip (browsers have no scrypt)
        got = tab.js(
            """
            const errors = [];
            const record = (where, e) => errors.push([where, String(e), e.message, e.reason, e.stack, JSON.stringify(e)].join('\\n'));
            const store = await df.KeyStore.open();
            const data = new TextEncoder().encode(arg.sealed);
            try { await store.restore(data, arg.wrong); } catch (e) { record('restore, wrong passphrase', e); }
            const {key} = await store.restore(data, arg.backup, {protection: 'passphrase', passphrase: arg.storage,
                                                                  clientId: arg.client});
            try { await store.unlock(key.keyid, arg.wrong); } catch (e) { record('unlock, wrong passphrase', e); }
            await store.unlock(key.keyid, arg.storage);
            await store.register(key.keyid, new URL('/register/keys', location.href), {clientId: arg.client});
            const signer = await store.load(key.keyid);
            const hello = await signer.fetch('/api/hello');
            const posted = await signer.fetch('/api/items', {method: 'POST', body: JSON.stringify({name: 'canary'}),
                                                            headers: {'Content-Type': 'application/json'}});
            try { await store.exportBackup(key.keyid, arg.wrong, arg.backup); } catch (e) { record('export, wrong', e); }
            const again = await store.exportBackup(key.keyid, arg.storage, arg.backup, {format: 'binary'});
            const broken = new Uint8Array(data); broken[broken.length - 40] ^= 1;
            try { await df.readBackup(broken, arg.backup); } catch (e) { record('damaged backup', e); }
            try { await df.readBackup(data.slice(0, 100), arg.backup); } catch (e) { record('truncated backup', e); }
            try { await df.readBackup(data, ''); } catch (e) { record('empty passphrase', e); }
            const plain = await store.create({label: 'never extractable'});
            try { await store.exportBackup(plain.keyid, arg.storage, arg.backup); } catch (e) { record('not extractable', e); }
            return {keyid: key.keyid, hello: hello.status, posted: posted.status, again: df.base64Encode(again.data),
                    errors, info: JSON.stringify(await store.list())};""",
            {"sealed": sealed.decode(), "backup": backup_pass, "storage": storage_pass, "wrong": WRONG, "client": unique("c")},
        )
        assert got["keyid"] == canary.keyid and (got["hello"], got["posted"]) == (200, 200), got
        for text in got["errors"]:
            evidence.add("js error", text.split("\n", 1)[0], text)
        evidence.add("page text", "key list (module)", got["info"])
        again = base64.b64decode(got["again"])
        restored = restore_backup([again], backup_pass.encode()).private_key
        assert restored.private_bytes_raw() == canary.key.private_bytes_raw()
        tab.reload()
        evidence.add("page text", "after reload", page.inner_text("body"))
    finally:
        if tab is not None:
            tab.context.close()
        proxy.close()
        proxy.record(evidence, "browser")
    assert tab.errors == [], "uncaught errors in the page"

    page_key = restore_backup([pem.read_bytes()], page_backup_pass.encode()).private_key
    scanner = SecretScanner().add_canary(canary).add_key(page_key, "page key")
    for name, passphrase in (("backup", backup_pass), ("storage", storage_pass), ("page backup", page_backup_pass)):
        scanner.add_passphrase(passphrase, f"{name} passphrase")
    scanner.add_text(WRONG, "wrong guess")

    traffic = evidence.channel("traffic")
    assert b"GET /browser/ HTTP/1.1" in traffic and b"datafold-auth.js" in traffic
    evidence.assert_saw("traffic", f'keyid="{canary.keyid}"', f'keyid="{page_keyid}"', canary.public_b64url,
                        b"POST /register/keys", b'{"name":"canary"}')  # fmt: skip
    assert len(signature_values(proxy.received)) >= 6  # 2 registrations, 4 signed requests
    evidence.assert_saw("console", "harness console probe")
    evidence.assert_saw("js error", "wrong_passphrase", "not_extractable")
    evidence.assert_saw("page text", page_keyid, canary.keyid)
    scanner.assert_clean(evidence)
