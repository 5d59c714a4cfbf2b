"""The browser script and the key manager page in Debian's Chromium, against the real example servers.

Chromium is ``/usr/bin/chromium`` (apt package ``chromium``, see
scripts/install-system-deps.sh), driven headless through Playwright's sync API
with ``executable_path`` (no Playwright-downloaded browser). The servers are
``examples/flask_app.py`` and ``examples/fastapi_app.py`` run as subprocesses
on free loopback ports; they serve the page at ``/browser/``, so the page and
the API share one origin. One browser per module; a fresh browser context
(fresh IndexedDB) per test.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from datafold_auth import KeyStatus, SQLiteRegistry

from .conftest import ROOT
from .test_browser_js import (
    RFC_RUNNER,
    SF_FILES,
    SF_RUNNER,
    SF_SERIALISATION_FILES,
    SIGNER_RUNNER,
    check_rfc_results,
    check_sf_results,
    check_signer_results,
    sf_suite_data,
    signer_data,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STORE_PASSPHRASE = "correct horse battery staple é"
TIMEOUT_MS = 30_000


# --------------------------------------------------------------------------- servers and browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ExampleServer:
    """``examples/<kind>_app.py --port P --db D`` as a subprocess on a free loopback port."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = work / f"{kind}-keys.db"
        self.log = work / f"{kind}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "examples" / f"{kind}_app.py"),
                    "--port",
                    str(self.port),
                    "--db",
                    str(self.db),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} example exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as answer:  # noqa: S310 (loopback)
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{kind} example did not start: {self.log.read_text()}")
            time.sleep(0.1)

    def set_status(self, keyid: str, status: KeyStatus) -> None:
        """Change a key's status in the server's registry (what an operator does)."""
        registry = SQLiteRegistry(self.db)
        try:
            registry.set_status(keyid, status, int(time.time()))
        finally:
            registry.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _need_browser() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (sh scripts/install-system-deps.sh as root)")
    return sync_playwright


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, launched once for the module."""
    sync_playwright = _need_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ExampleServer]]:
    """Both example apps, running for the module."""
    _need_browser()
    work = tmp_path_factory.mktemp("examples")
    started: dict[str, ExampleServer] = {}
    try:
        for kind in ("flask", "fastapi"):
            started[kind] = ExampleServer(kind, work)
        yield started
    finally:
        for server in started.values():
            server.stop()


@dataclass
class Tab:
    """A page of the key manager in a fresh browser context, and what went wrong in it."""

    page: Any
    context: Any
    server: ExampleServer
    errors: list[str] = field(default_factory=list)

    def js(self, body: str, arg: Any = None) -> Any:
        """Run ``body`` in the page as an async function with ``df`` (the module) and ``arg`` in scope."""
        return self.page.evaluate(
            "async (arg) => { const df = await import('./datafold-auth.js'); " + body + "\n}", arg
        )

    def reload(self) -> None:
        self.page.reload()
        self.page.wait_for_selector("body[data-ready]")


def open_tab(browser: Any, server: ExampleServer, *, init_script: str | None = None) -> Tab:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    tab = Tab(page, context, server)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.goto(server.url + "/browser/")
    page.wait_for_selector("body[data-ready]")
    return tab


@pytest.fixture
def tab(chromium: Any, servers: dict[str, ExampleServer]) -> Iterator[Tab]:
    """The key manager served by the Flask example, in a fresh context."""
    opened = open_tab(chromium, servers["flask"])
    try:
        yield opened
    finally:
        opened.context.close()
    assert opened.errors == [], "uncaught errors in the page"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_registered_key(tab: Tab, client_id: str, **options: Any) -> str:
    """Create and register a key through the module; return its keyid."""
    return tab.js(  # type: ignore[no-any-return]
        """
        const store = await df.KeyStore.open();
        const key = await store.create(arg.options);
        await store.register(key.keyid, new URL('/register/keys', location.href), {clientId: arg.clientId});
        return key.keyid;""",
        {"clientId": client_id, "options": options},
    )


def wait_status(tab: Tab, selector: str) -> str:
    """Wait until a status line says ok or error; return its text."""
    tab.page.wait_for_selector(f"{selector}.status-ok, {selector}.status-error")
    return str(tab.page.text_content(selector))


def card(tab: Tab, keyid: str) -> Any:
    return tab.page.locator(f'li.key[data-keyid="{keyid}"]')


def badges(tab: Tab, keyid: str) -> list[str]:
    return [str(t) for t in card(tab, keyid).locator(".badge .badge-text").all_text_contents()]


def send(tab: Tab, method: str, url: str, *, body: str = "", tamper: bool = False) -> dict[str, str]:
    """Send a signed request through the page's form; return status, reason, text and body."""
    page = tab.page
    page.select_option("#request-method", method)
    page.fill("#request-url", url)
    page.fill("#request-body", body)
    page.set_checked("#request-tamper", tamper)
    page.evaluate(
        "() => { const s = document.querySelector('#response-status'); s.className = 'status'; delete s.dataset.status; }"
    )
    page.click("#request-form button[type=submit]")
    page.wait_for_selector("#response-status[data-status]")
    return {
        "status": page.get_attribute("#response-status", "data-status") or "",
        "reason": page.get_attribute("#response-status", "data-reason") or "",
        "text": page.text_content("#response-status") or "",
        "body": page.text_content("#response-body") or "",
    }


# --------------------------------------------------------------------------- the page


def test_page_is_labelled_and_keyboard_reachable(tab: Tab) -> None:
    page = tab.page
    assert page.get_attribute("body", "data-ready") == "true"
    assert "supports Ed25519" in (page.text_content("#support") or "")
    assert page.get_attribute("html", "lang") == "en"
    unlabelled = page.evaluate(
        """() => Array.from(document.querySelectorAll('input, select, textarea'))
             .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map((e) => e.id)"""
    )
    assert unlabelled == []
    dangling = page.evaluate(
        """() => Array.from(document.querySelectorAll('[aria-describedby], [aria-labelledby], label[for]'))
             .flatMap((e) => [e.getAttribute('aria-describedby'), e.getAttribute('aria-labelledby'), e.getAttribute('for')])
             .filter(Boolean).flatMap((ids) => ids.split(' ')).filter((id) => !document.getElementById(id))"""
    )
    assert dangling == []
    nameless = page.evaluate(
        "() => Array.from(document.querySelectorAll('button, a[href]')).filter((e) => !e.textContent.trim()).length"
    )
    assert nameless == 0
    assert page.get_attribute("#error", "role") == "alert"
    assert page.locator("h1").count() == 1
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    # every form control is reachable with Tab, in document order
    reached = set()
    for _ in range(60):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => document.activeElement.id"))
    for control in ("create-label", "create-client", "create-protection-ne", "create-backup", "create-submit",
                    "restore-file", "restore-pass", "request-method", "request-url", "request-tamper"):  # fmt: skip
        assert control in reached, control


def test_keyboard_only_key_registers_and_signs_get_and_post(tab: Tab) -> None:
    page = tab.page
    client_id = unique("kbd")
    page.focus("#create-label")
    page.keyboard.type("work laptop")
    page.keyboard.press("Tab")
    page.keyboard.type(client_id)
    page.focus("#create-backup")
    page.keyboard.press("Space")
    assert not page.is_checked("#create-backup")
    page.focus("#create-label")
    page.keyboard.press("Enter")  # implicit submission
    assert "Created key" in wait_status(tab, "#create-status")
    keyid = page.get_attribute("li.key", "data-keyid")
    assert keyid and re.fullmatch(r"[A-Za-z0-9_-]{43}", keyid)
    assert badges(tab, keyid) == ["Not registered", "Non-extractable", "Not backed up"]

    card(tab, keyid).locator("button[data-action=register]").focus()
    page.keyboard.press("Enter")
    assert "Registered as" in wait_status(tab, f'[id="key-{keyid}-status"]')
    assert badges(tab, keyid)[0] == "Registered: active"
    assert page.evaluate("() => document.activeElement.dataset.action") == "register"  # focus kept on the card

    page.fill("#request-url", "/api/hello")
    page.focus("#request-url")
    page.keyboard.press("Enter")
    page.wait_for_selector("#response-status[data-status]")
    assert page.get_attribute("#response-status", "data-status") == "200"
    answer = json.loads(page.text_content("#response-body") or "")
    assert answer == {"hello": client_id, "keyid": keyid, "remote_user": client_id}
    signed = page.text_content("#response-signed") or ""
    assert f'keyid="{keyid}"' in signed and 'tag="datafold"' in signed

    posted = send(tab, "POST", "/api/items", body='{"name": "widget ünïcode"}')
    assert posted["status"] == "200", posted
    assert json.loads(posted["body"]) == {"created": {"name": "widget ünïcode"}, "owner": client_id}


def test_tampered_requests_are_refused_with_their_reason(tab: Tab) -> None:
    keyid = create_registered_key(tab, unique("tamper"))
    tab.reload()
    tab.page.select_option("#request-key", keyid)
    changed_body = send(tab, "POST", "/api/items", body='{"name": "x"}', tamper=True)
    assert (changed_body["status"], changed_body["reason"]) == ("401", "digest_mismatch")
    assert "refused: digest_mismatch" in changed_body["text"] and "not the one that was signed" in changed_body["text"]
    changed_query = send(tab, "GET", "/api/hello", tamper=True)
    assert (changed_query["status"], changed_query["reason"]) == ("401", "bad_signature")

    reasons = tab.js(
        """
        const store = await df.KeyStore.open();
        const signer = await store.load(arg);
        const reason = async (response) => `${response.status} ${(await df.readProblem(response))?.reason ?? ''}`.trim();
        const out = {};
        const { request } = await signer.signedRequest('/api/hello');
        out.first = await reason(await fetch(request.clone()));
        out.replayed = await reason(await fetch(request.clone()));
        const post = (await signer.signedRequest('/api/items', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'})).request;
        out.header_changed = await reason(await fetch(new Request(post, {headers: (() => { const h = new Headers(post.headers); h.set('Content-Type', 'text/plain'); return h; })()})));
        const get = (await signer.signedRequest('/api/hello')).request;
        out.method_changed = await reason(await fetch(get.url, {method: 'DELETE', headers: get.headers}));
        out.unsigned = await reason(await fetch('/api/hello'));
        const old = (await signer.signedRequest('/api/hello', {}, {now: Math.floor(Date.now() / 1000) - 3600})).request;
        out.expired = await reason(await fetch(old));
        const stranger = await df.Signer.create(...await (async () => { const p = await df.generateKeyPair(); return [p.privateKey, p.publicKey]; })());
        out.unknown = await reason(await stranger.fetch('/api/hello'));
        return out;""",
        keyid,
    )
    assert reasons == {
        "first": "200",
        "replayed": "401 replayed_nonce",
        "header_changed": "401 bad_signature",
        "method_changed": "401 bad_signature",
        "unsigned": "401 missing_signature",
        "expired": "401 expired",
        "unknown": "401 unknown_key",
    }


@pytest.mark.parametrize("kind", ["flask", "fastapi"])
def test_signed_requests_are_accepted_by_both_examples(
    chromium: Any, servers: dict[str, ExampleServer], kind: str
) -> None:
    tab = open_tab(chromium, servers[kind])
    try:
        client_id = unique(kind)
        got = tab.js(
            """
            const store = await df.KeyStore.open();
            const key = await store.create({label: 'api'});
            const signer = await store.load(key.keyid);
            const record = await df.register(signer, '/register/keys', {clientId: arg, label: 'api key', scopes: []});
            let duplicate = null;
            try { await df.register(signer, '/register/keys', {clientId: arg}); } catch (e) { duplicate = [e.reason, e.status]; }
            const answer = async (r) => ({status: r.status, type: r.headers.get('content-type'), body: await r.text()});
            const json = JSON.stringify({name: 'widget é', n: 1});
            return {
              keyid: key.keyid, record, duplicate,
              fetched: await df.fetchKeyRecord('/register/keys', key.keyid),
              hello: await answer(await signer.fetch('/api/hello')),
              post: await answer(await signer.fetch('/api/items', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: json})),
              blob: await answer(await signer.fetch('/api/items', {method: 'POST', body: new Blob([json], {type: 'application/json'})})),
              query: await answer(await signer.fetch("/api/hello?q=a b&é=ü&x=%2F&y=1+2&z='\\"<>`")),
              // other bodies, read as fetch sends them (multipart boundary, form encoding, a stream); 404 = verified
              form: await answer(await signer.fetch('/api/sink', {method: 'POST', body: (() => { const f = new FormData(); f.append('a', 'b é'); f.append('file', new Blob(['xyz']), 'x.txt'); return f; })()})),
              params: await answer(await signer.fetch('/api/sink', {method: 'PUT', body: new URLSearchParams({q: 'a b', r: 'é'})})),
              stream: await answer(await signer.fetch('/api/sink', {method: 'POST', duplex: 'half', body: new Blob(['streamed body']).stream()})),
              patch: await answer(await signer.fetch('/api/sink', {method: 'patch', body: '{}', headers: {'Content-Type': 'application/json'}})),
              // a path that needs percent-encoding: the middleware verifies it (404 from the app, not 401)
              encoded: await answer(await signer.fetch("/api/it ems/é%2Fx;p=1/'quote'?z=é")),
              url: new URL("/api/it ems/é%2Fx;p=1/'quote'?z=é", location.href).href,
            };""",
            client_id,
        )
    finally:
        tab.context.close()
    assert tab.errors == []
    keyid = got["keyid"]
    assert got["record"]["keyid"] == keyid and got["record"]["status"] == "active"
    assert got["record"]["client_id"] == client_id and got["record"]["label"] == "api key"
    assert got["duplicate"] == ["duplicate_key", 409]
    assert got["fetched"]["status"] == "active"
    assert got["hello"]["status"] == 200 and json.loads(got["hello"]["body"])["keyid"] == keyid
    for name in ("post", "blob"):
        assert got[name]["status"] == 200, got[name]
        assert json.loads(got[name]["body"]) == {"created": {"name": "widget é", "n": 1}, "owner": client_id}
    assert got["query"]["status"] == 200, got["query"]
    for name in ("form", "params", "stream", "patch"):
        assert got[name]["status"] in (404, 405), (name, got[name])  # verified, then not found (never 401)
    assert got["encoded"]["status"] == 404, got["encoded"]
    assert "problem" not in (got["encoded"]["type"] or "")
    assert "/api/it%20ems/%C3%A9%2Fx;p=1/" in got["url"]


def test_keys_persist_across_reloads_and_cannot_be_exported(tab: Tab) -> None:
    keyid = create_registered_key(tab, unique("persist"), label="persistent")
    tab.reload()
    assert card(tab, keyid).count() == 1
    assert badges(tab, keyid) == ["Registered: active", "Non-extractable", "Not backed up"]
    got = tab.js(
        """
        const store = await df.KeyStore.open();
        const signer = await store.load(arg);
        const hello = await signer.fetch('/api/hello');
        // the record as stored, read with plain IndexedDB (no help from the module)
        const db = await new Promise((ok, fail) => { const r = indexedDB.open('datafold-auth'); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
        const raw = await new Promise((ok, fail) => { const r = db.transaction('keys').objectStore('keys').get(arg); r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
        db.close();
        const key = raw.privateKey;
        const attempts = {};
        for (const format of ['pkcs8', 'jwk', 'raw']) {
          try { await crypto.subtle.exportKey(format, key); attempts[format] = 'exported'; } catch (e) { attempts[format] = e.name; }
        }
        const aes = await crypto.subtle.generateKey({name: 'AES-GCM', length: 256}, false, ['wrapKey']);
        try { await crypto.subtle.wrapKey('pkcs8', key, aes, {name: 'AES-GCM', iv: new Uint8Array(12)}); attempts.wrap = 'wrapped'; } catch (e) { attempts.wrap = e.name; }
        return {
          hello: hello.status, fields: Object.keys(raw).sort(), isCryptoKey: key instanceof CryptoKey,
          extractable: key.extractable, type: key.type, usages: key.usages, attempts,
          signerExtractable: signer.privateKey.extractable,
        };""",
        keyid,
    )
    assert got["hello"] == 200
    assert got["isCryptoKey"] and got["type"] == "private" and got["usages"] == ["sign"]
    assert got["extractable"] is False and got["signerExtractable"] is False
    assert got["attempts"]["pkcs8"] == "InvalidAccessError"
    assert got["attempts"]["jwk"] == "InvalidAccessError"
    assert got["attempts"]["raw"] in ("InvalidAccessError", "NotSupportedError")
    assert got["attempts"]["wrap"] == "InvalidAccessError"
    assert got["fields"] == [
        "backup",
        "clientId",
        "created",
        "keyid",
        "label",
        "privateKey",
        "protection",
        "publicJwk",
        "registration",
    ]


def test_passphrase_protected_storage(tab: Tab) -> None:
    keyid = tab.js(
        """
        const store = await df.KeyStore.open();
        const key = await store.create({label: 'encrypted', protection: 'passphrase', passphrase: arg.pass});
        await store.register(key.keyid, '/register/keys', {clientId: arg.client});
        return key.keyid;""",
        {"pass": STORE_PASSPHRASE, "client": unique("pp")},
    )
    tab.reload()
    page = tab.page
    assert "Passphrase-encrypted: locked" in badges(tab, keyid)
    locked = tab.js(
        """
        const store = await df.KeyStore.open();
        const out = {};
        try { await store.load(arg); } catch (e) { out.load = e.reason; }
        try { await store.unlock(arg, 'not the passphrase'); } catch (e) { out.wrong = [e.reason, e.message]; }
        const db = await new Promise((ok) => { const r = indexedDB.open('datafold-auth'); r.onsuccess = () => ok(r.result); });
        const raw = await new Promise((ok) => { const r = db.transaction('keys').objectStore('keys').get(arg); r.onsuccess = () => ok(r.result); });
        db.close();
        out.fields = Object.keys(raw).sort();
        out.wrapped = {kdf: raw.wrapped.kdf, iterations: raw.wrapped.iterations, cipher: raw.wrapped.cipher, size: raw.wrapped.ciphertext.length, nonce: raw.wrapped.nonce.length};
        return out;""",
        keyid,
    )
    assert locked["load"] == "key_locked"
    assert locked["wrong"][0] == "wrong_passphrase" and "Wrong passphrase" in locked["wrong"][1]
    assert "privateKey" not in locked["fields"] and "wrapped" in locked["fields"]
    assert locked["wrapped"] == {
        "kdf": "pbkdf2-sha256",
        "iterations": 600000,
        "cipher": "aes-256-gcm",
        "size": 64,
        "nonce": 12,
    }

    # the page: a wrong passphrase gives a readable error, the right one unlocks
    card(tab, keyid).locator("button[data-action=unlock]").click()
    page.fill(f'[id="panel-{keyid}-passphrase"]', "wrong passphrase")
    page.press(f'[id="panel-{keyid}-passphrase"]', "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert "Wrong passphrase" in (page.text_content("#error") or "")
    assert "Wrong passphrase" in wait_status(tab, f'[id="key-{keyid}-status"]')
    page.fill(f'[id="panel-{keyid}-passphrase"]', STORE_PASSPHRASE)
    page.press(f'[id="panel-{keyid}-passphrase"]', "Enter")
    page.wait_for_function(
        "(id) => [...document.querySelectorAll(`li.key[data-keyid='${id}'] .badge-text`)].some((b) => b.textContent.includes('unlocked'))",
        arg=keyid,
    )
    unlocked = tab.js(
        """
        const store = await df.KeyStore.open();
        const signer = await store.load(arg);
        return {status: (await signer.fetch('/api/hello')).status, extractable: signer.privateKey.extractable};""",
        keyid,
    )
    assert unlocked == {"status": 200, "extractable": False}
    tab.reload()  # a new page session forgets the unlocked copy
    assert "Passphrase-encrypted: locked" in badges(tab, keyid)


def test_status_indicators_follow_the_server(tab: Tab) -> None:
    page = tab.page
    page.fill("#create-label", "to be revoked")
    page.fill("#create-client", unique("rev"))
    page.uncheck("#create-backup")
    page.click("#create-submit")
    wait_status(tab, "#create-status")
    keyid = str(page.get_attribute("li.key", "data-keyid"))
    card(tab, keyid).locator("button[data-action=register]").click()
    wait_status(tab, f'[id="key-{keyid}-status"]')
    tab.server.set_status(keyid, KeyStatus.REVOKED)
    page.evaluate("(id) => document.getElementById(`key-${id}-status`).className = 'status'", keyid)
    card(tab, keyid).locator("button[data-action=status]").click()
    assert "revoked" in wait_status(tab, f'[id="key-{keyid}-status"]')
    assert badges(tab, keyid)[0] == "Registered: revoked"
    assert "badge-bad" in (card(tab, keyid).locator(".badge").first.get_attribute("class") or "")
    page.select_option("#request-key", keyid)
    refused = send(tab, "GET", "/api/hello")
    assert (refused["status"], refused["reason"]) == ("401", "key_not_active")
    assert "not active" in refused["text"]


def test_delete_asks_for_confirmation(tab: Tab) -> None:
    keyid = tab.js("const s = await df.KeyStore.open(); return (await s.create({label: 'doomed'})).keyid;")
    tab.reload()
    page = tab.page
    card(tab, keyid).locator("button[data-action=delete]").click()
    field = f'[id="panel-{keyid}-confirm"]'
    page.fill(field, "yes")
    page.press(field, "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert card(tab, keyid).count() == 1
    page.fill(field, "DELETE")
    page.press(field, "Enter")
    page.wait_for_selector(f'li.key[data-keyid="{keyid}"]', state="detached")
    assert tab.js("const s = await df.KeyStore.open(); return (await s.list()).length;") == 0


def test_missing_ed25519_gives_a_readable_message(chromium: Any, servers: dict[str, ExampleServer]) -> None:
    without_ed25519 = """(() => {
      const real = SubtleCrypto.prototype.generateKey;
      SubtleCrypto.prototype.generateKey = function (alg, ...rest) {
        if (((alg && alg.name) || alg) === 'Ed25519') return Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError'));
        return real.call(this, alg, ...rest);
      };
    })();"""
    tab = open_tab(chromium, servers["flask"], init_script=without_ed25519)
    try:
        page = tab.page
        assert page.get_attribute("body", "data-ready") == "unsupported"
        support = page.text_content("#support") or ""
        assert "cannot use DataFold keys" in support and "no Ed25519 in WebCrypto" in support
        assert page.is_visible("#error") and "(unsupported_browser)" in (page.text_content("#error") or "")
        assert page.is_disabled("#create-submit")
        reason = tab.js("try { await df.checkSupport(); return null; } catch (e) { return e.reason; }")
        assert reason == "unsupported_browser"
    finally:
        tab.context.close()


# --------------------------------------------------------------------------- vectors in Chromium


@pytest.fixture(scope="module")
def chromium_sf_results(chromium: Any, servers: dict[str, ExampleServer]) -> list[dict[str, Any]]:
    tab = open_tab(chromium, servers["flask"])
    try:
        return tab.js(SF_RUNNER + "\nreturn runSf(df, arg);", sf_suite_data())  # type: ignore[no-any-return]
    finally:
        tab.context.close()


@pytest.mark.parametrize("file", SF_FILES + [f"serialisation-tests/{f}" for f in SF_SERIALISATION_FILES])
def test_structured_field_suite_in_chromium(chromium_sf_results: list[dict[str, Any]], file: str) -> None:
    check_sf_results(chromium_sf_results, file)


def test_rfc_vectors_in_chromium(tab: Tab, rfc_vectors: dict[str, Any]) -> None:
    check_rfc_results(tab.js(RFC_RUNNER + "\nreturn runRfc(df, arg);", rfc_vectors), rfc_vectors)


def test_signer_matches_python_in_chromium(tab: Tab, rfc_vectors: dict[str, Any]) -> None:
    check_signer_results(tab.js(SIGNER_RUNNER + "\nreturn runSigner(df, arg);", signer_data(rfc_vectors)), rfc_vectors)


# --------------------------------------------------------------------------- measurements


def test_timings_in_the_page(tab: Tab) -> None:
    """Sign, generate, signed round trip and unlock times in Chromium (printed; generous bounds)."""
    create_registered_key(tab, unique("bench"))
    got = tab.js(
        """
        const store = await df.KeyStore.open();
        const [key] = await store.list();
        const signer = await store.load(key.keyid);
        const body = new Uint8Array(1024);
        const time = async (n, fn) => { const t = performance.now(); for (let i = 0; i < n; i++) await fn(); return (performance.now() - t) / n; };
        const median = async (n, fn) => { const all = []; for (let i = 0; i < n; i++) { const t = performance.now(); await fn(); all.push(performance.now() - t); } all.sort((a, b) => a - b); return all[Math.floor(n / 2)]; };
        const out = {};
        out.sign_get_ms = await time(500, () => signer.sign({method: 'GET', url: location.origin + '/api/hello'}));
        out.sign_post_1k_ms = await time(500, () => signer.sign({method: 'POST', url: location.origin + '/api/items', headers: [['Content-Type', 'application/json']], body}));
        out.raw_ed25519_sign_ms = await time(500, () => crypto.subtle.sign('Ed25519', signer.privateKey, body));
        out.generate_ms = await time(100, () => df.generateKeyPair());
        out.signed_get_roundtrip_median_ms = await median(30, async () => { const r = await signer.fetch('/api/hello'); await r.arrayBuffer(); });
        const pp = await store.create({protection: 'passphrase', passphrase: 'timing passphrase'});
        out.unlock_600k_ms = await time(3, () => store.unlock(pp.keyid, 'timing passphrase'));
        return out;""",
    )
    print("\nbrowser timings (Chromium, ms):", json.dumps({k: round(v, 3) for k, v in got.items()}))
    assert got["sign_get_ms"] < 25 and got["sign_post_1k_ms"] < 25
    assert got["signed_get_roundtrip_median_ms"] < 500
