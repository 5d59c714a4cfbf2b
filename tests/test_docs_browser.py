"""docs/getting-started/browser.md, run as written: every block, in order, in Debian's Chromium.

* the install ```sh block is checked, not run (it would download packages):
  the command, and that its extra holds what the example server imports;
* the ```sh block that starts the Flask example is run as written (the port
  replaced by a free one) in a folder laid out as the page says (``.venv`` and
  ``datafold-auth/`` side by side, the page in ``my-app/``) and is the server;
  its first line is the documented ``listening on ...`` line, and it logs
  refusals at INFO;
* the ```html block is ``index.html`` and the ```js blocks, in order, are
  ``app.js`` of the ``--static`` folder: the example serves them at ``/app/``;
  each block's ``console.log`` lines are checked, then the effects on the
  server (the key is in the registry, ``active``, under the client id) and in
  the browser (the stored key is non-extractable);
* the page is loaded a second time in the same browser profile: it finds its
  key again (``existing key``), makes none, and signs; in a fresh profile the
  server's ``409 client_id_taken`` goes to the page's ``showError``, the refused
  key is deleted, and restoring alice's backup through the page's file input,
  then reloading, gets the user back in (signed requests succeed);
* the backup the page offers is downloaded into ``~/Downloads`` and the interop
  ```sh block moves it and reads it with ``openssl pkey`` and ``keytools
  restore``; the next ```sh block makes a keytools backup, which the page's
  restore handler reads (and refuses with a wrong passphrase through the page's
  ``showError``);
* the ```python block (a Flask route for the page) serves the page's files.

The page's ``sh`` blocks need the server or the page's download, so the
generic runner (tests/test_docs_examples.py) leaves them to this module.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datafold_auth import KeyStatus, SQLiteRegistry
from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import encode_private_key, read_public_key

from . import test_browser_page as browser_page
from .conftest import ROOT
from .test_browser_page import TIMEOUT_MS, _free_port, _need_browser

chromium = browser_page.chromium  # Debian's Chromium, launched once for the module

DOC = ROOT / "docs" / "getting-started" / "browser.md"
BLOCK = re.compile(r"```([a-z]+)\n(.*?)```", re.S)
PASSPHRASE = "a long passphrase the user chose"
SAMPLE_KEYID_START = "7b3FqXk2mZpA"
"""The placeholder for the first 12 characters of the keyid in the page's backup file name."""
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def blocks() -> list[tuple[str, str]]:
    """The page's fenced blocks, ``(language, text)``, in order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(DOC.read_text())]


def blocks_of(language: str) -> list[str]:
    return [text for lang, text in blocks() if lang == language]


MARK = "@@block"


def app_js() -> str:
    """The js blocks joined into one module, with a console mark after each block."""
    parts = []
    for i, text in enumerate(blocks_of("js")):
        parts.append(f"{text}\nconsole.log('{MARK} {i}');\n")
    return "".join(parts)


# --------------------------------------------------------------------------- the server of the page


@dataclass
class DocServer:
    url: str
    db: Path
    proc: subprocess.Popen[bytes]
    log: Path


def server_block() -> str:
    starts = [b for b in blocks_of("sh") if "examples/flask_app.py" in b]
    assert len(starts) == 1, "the page starts the example server in one sh block"
    return starts[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocServer]:
    """The page's server command, run as written with a free port, in a folder laid out as the page says:
    ``.venv`` and the checkout ``datafold-auth/`` side by side (links to this checkout), the page in ``my-app/``."""
    _need_browser()
    work = tmp_path_factory.mktemp("docs-browser-server")
    port, db, log, site = _free_port(), work / "keys.db", work / "server.log", work / "my-app"
    site.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))
    (work / "datafold-auth").symlink_to(ROOT)
    (html,) = blocks_of("html")
    (site / "index.html").write_text(html)
    (site / "app.js").write_text(app_js())
    command = server_block().strip()
    assert command.startswith(".venv/bin/python datafold-auth/examples/flask_app.py "), command
    assert "--db keys.db" in command and "--static my-app" in command
    command = command.replace("--port 8000", f"--port {port}")
    with open(log, "wb") as out:
        proc = subprocess.Popen(  # noqa: S602 (the documented command line)
            command, shell=True, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as answer:  # noqa: S310 (loopback)
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the example server did not start: " + log.read_text()
            time.sleep(0.1)
        first = log.read_text().splitlines()[0]
        assert first == f"listening on {url} (development server)", first
        yield DocServer(url, db, proc, log)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)


@dataclass
class Page:
    page: Any
    console: list[str]
    errors: list[str]

    def wait_console(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait for a console line matching ``pattern``; fail early on an uncaught error in the page."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.console:
                found = regex.fullmatch(line)
                if found:
                    return found
            assert not self.errors, f"uncaught errors in the page: {self.errors}; console: {self.console}"
            assert time.monotonic() < deadline, f"no console line {pattern!r}; console: {self.console}"
            self.page.wait_for_timeout(50)


def open_page(context: Any, server: DocServer) -> Page:
    """The documented page at ``/app/`` of the server (``--static``), loaded until its last block ran."""
    opened = Page(context.new_page(), [], [])
    opened.page.on("console", lambda message: opened.console.append(message.text))
    opened.page.on("pageerror", lambda error: opened.errors.append(str(error)))
    opened.page.goto(server.url + "/app/")
    opened.wait_console(f"{MARK} {len(blocks_of('js')) - 1}", timeout=60)
    return opened


@pytest.fixture(scope="module")
def page(chromium: Any, server: DocServer) -> Iterator[Page]:
    """The documented page in a fresh browser profile (its first visit)."""
    context = chromium.new_context(accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield open_page(context, server)
    finally:
        context.close()


@pytest.fixture(scope="module")
def keyid(page: Page) -> str:
    return page.wait_console(r"new key ([A-Za-z0-9_-]{43}) \(non-extractable\)").group(1)


def keytools_env(home: Path) -> dict[str, str]:
    """keytools and openssl on PATH, a private HOME, no keychain, no passphrase in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAFOLD_AUTH_", "DBUS_", "XDG_"))}
    env.update(
        HOME=str(home),
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env


def run_sh(block: str, cwd: Path) -> str:
    proc = subprocess.run(
        ["sh", "-eu", "-c", block],
        cwd=cwd,
        env=keytools_env(cwd / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def keyid_of_pem_backup(path: Path) -> str:
    """The keyid of an encrypted PKCS#8 PEM, through openssl (not through the module under test)."""
    public = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-passin", f"pass:{PASSPHRASE}", "-pubout"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return jwk_thumbprint(read_public_key(public)[0])


# --------------------------------------------------------------------------- the tests


def test_the_page_has_every_kind_of_block() -> None:
    languages = [lang for lang, _ in blocks()]
    assert languages.count("html") == 1 and languages.count("js") >= 8 and languages.count("sh") == 4
    first = blocks_of("js")[0]
    assert "// the URL where you serve the script" in first
    assert 'import { KeyStore, DatafoldAuthError, checkSupport, readProblem } from "/browser/' in first
    text = DOC.read_text()
    # what a new user tripped over: where the files are, per-origin keys, problem types, the backup's name
    assert "repository only" in text and "`examples/`" in text
    assert "`http://127.0.0.1:8000` is not there on\n`http://localhost:8000`" in text
    assert "https://datafold.dev/problems/<reason>" in text and "store.list()" in text
    assert "allow_join=True" in text and "~/Downloads" in text and "--kdf pbkdf2" in text


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_sections_of_other_pages_land_on_headings() -> None:
    links = re.findall(r"\]\(([\w./-]+\.md)#([\w-]+)\)", DOC.read_text())
    assert links, "the page links sections of the reference"
    for target, anchor in links:
        text = (DOC.parent / target).read_text()
        headings = {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
        assert anchor in headings, f"{target}#{anchor}"


def test_the_install_step_names_a_real_extra() -> None:
    """The install block: a venv beside the checkout (docs/README.md, Install) and the extra that holds what the
    example server imports."""
    (install,) = [b for b in blocks_of("sh") if "pip install" in b]
    assert install.strip() == "python3 -m venv .venv && .venv/bin/pip install './datafold-auth[flask]'"
    assert "](../README.md#install)" in DOC.read_text()
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    flask_extra = cfg["options.extras_require"]["flask"].split()
    assert any(req.startswith("flask") for req in flask_extra)
    imports = set(re.findall(r"^(?:from|import) (\w+)", (ROOT / "examples" / "flask_app.py").read_text(), re.M))
    assert imports <= {"__future__", "argparse", "logging", "pathlib", "typing", "flask", "werkzeug", "datafold_auth"}
    # the example and the script are in the checkout, not in the package (the page says so)
    packages = cfg["options.packages.find"]["include"].split()
    assert not any(p.startswith(("examples", "browser")) for p in packages)


def test_blocks_run_in_order_and_print_what_the_page_says(page: Page, keyid: str, server: DocServer) -> None:
    page.wait_console("secure context: true, IndexedDB: true")
    page.wait_console("backup confirmed: true")
    page.wait_console(f"registered {keyid} for alice: active")
    hello = page.wait_console(r"GET /api/hello: 200 (.*)").group(1)
    assert '"hello":"alice"' in hello and f'"keyid":"{keyid}"' in hello
    item = page.wait_console(r"POST /api/items: 200 (.*)").group(1)
    assert '"created":{"name":"widget"}' in item and '"owner":"alice"' in item
    page.wait_console("unsigned: 401 missing_signature")
    assert "datafold_auth rejected 'GET' '/api/hello': reason=missing_signature" in server.log.read_text()
    marks = [line for line in page.console if line.startswith(MARK)]
    assert marks == [f"{MARK} {i}" for i in range(len(blocks_of("js")))]
    assert not any(line.startswith(("existing key", "error:")) for line in page.console), page.console
    assert page.errors == []


def test_the_key_is_registered_on_the_server(server: DocServer, keyid: str) -> None:
    registry = SQLiteRegistry(server.db)
    try:
        record = registry.get(keyid)
    finally:
        registry.close()
    assert record is not None and record.status is KeyStatus.ACTIVE and record.client_id == "alice"


def test_the_stored_key_is_non_extractable(page: Page, keyid: str) -> None:
    got = page.page.evaluate(
        """async (keyid) => {
          const df = await import('/browser/datafold-auth.js');
          const signer = await (await df.KeyStore.open()).load(keyid);
          let exported = null;
          try { await crypto.subtle.exportKey('pkcs8', signer.privateKey); exported = 'exported'; }
          catch (e) { exported = e.name; }
          return { extractable: signer.privateKey.extractable, exported };
        }""",
        keyid,
    )
    assert got == {"extractable": False, "exported": "InvalidAccessError"}


STORED_KEYIDS = (
    "async () => (await (await (await import('/browser/datafold-auth.js')).KeyStore.open()).list()).map((k) => k.keyid)"
)


def test_backups_cross_between_the_page_keytools_and_openssl(page: Page, keyid: str, tmp_path: Path) -> None:
    read_block, make_block = (b for b in blocks_of("sh") if "examples/flask_app.py" not in b and "pip" not in b)
    # the page's download, saved where browsers save it, then moved and read by openssl and keytools as the page says
    with page.page.expect_download() as download:
        page.page.click("#backup-link")
    name = download.value.suggested_filename
    assert name == f"datafold-key-{keyid[:12]}.pem"
    downloads = tmp_path / "home" / "Downloads"
    downloads.mkdir(parents=True)
    download.value.save_as(downloads / name)
    assert keyid_of_pem_backup(downloads / name) == keyid
    assert f"datafold-key-{SAMPLE_KEYID_START}.pem" in read_block
    out = run_sh(read_block.replace(SAMPLE_KEYID_START, keyid[:12]), tmp_path)
    assert "-----BEGIN PUBLIC KEY-----" in out and keyid in out
    assert (tmp_path / name).is_file() and not (downloads / name).exists()
    # a keytools backup, restored by the page's handler
    run_sh(make_block, tmp_path)
    desktop = keyid_of_pem_backup(tmp_path / "desktop.pem")
    page.page.fill("#restore-passphrase", PASSPHRASE)
    page.page.set_input_files("#restore-file", str(tmp_path / "desktop.pem"))
    page.wait_console(f"restored {desktop} from .*PKCS#8.*: reload the page to use it")
    assert set(page.page.evaluate(STORED_KEYIDS)) == {keyid, desktop}
    # a wrong passphrase goes through showError
    page.page.fill("#restore-passphrase", "not the passphrase")
    page.page.set_input_files("#restore-file", str(tmp_path / "desktop.pem"))
    page.wait_console("error: wrong_passphrase")
    assert page.page.text_content("#error") == "Wrong passphrase, or the file was changed. (wrong_passphrase)"
    assert page.errors == []


def test_a_second_load_finds_the_key_again(page: Page, server: DocServer, keyid: str) -> None:
    """The same profile, the page loaded again: no new key, no registration error, signed requests work."""
    before = set(page.page.evaluate(STORED_KEYIDS))
    again = open_page(page.page.context, server)
    try:
        again.wait_console(f"existing key {keyid}")
        again.wait_console(f"registered {keyid} for alice: active")
        hello = again.wait_console(r"GET /api/hello: 200 (.*)").group(1)
        assert f'"keyid":"{keyid}"' in hello
        again.wait_console("unsigned: 401 missing_signature")
        assert not any(line.startswith(("new key", "error:")) for line in again.console), again.console
        assert again.errors == [] and again.page.text_content("#error") == ""
        assert set(again.page.evaluate(STORED_KEYIDS)) == before
    finally:
        again.page.close()


def test_a_refusal_at_the_top_level_is_shown_and_restoring_the_backup_gets_the_user_back_in(
    chromium: Any, page: Page, server: DocServer, keyid: str, tmp_path: Path
) -> None:
    """A fresh profile makes a second key for alice: 409 client_id_taken reaches showError, the refused key is
    deleted; restoring alice's backup through the page's file input, then reloading, signs as alice again."""
    with page.page.expect_download() as download:  # alice's backup, offered by the first profile's page
        page.page.click("#backup-link")
    backup = tmp_path / download.value.suggested_filename
    download.value.save_as(backup)
    context = chromium.new_context(accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        other = open_page(context, server)
        refused = other.wait_console(r"new key ([A-Za-z0-9_-]{43}) \(non-extractable\)").group(1)
        other.wait_console("error: client_id_taken")
        assert str(other.page.text_content("#error")).endswith("(client_id_taken)")
        assert not any(line.startswith("registered") for line in other.console)
        assert other.page.evaluate(STORED_KEYIDS) == []  # the refused key is gone, its backup link hidden
        assert other.page.is_hidden("#backup-link")
        # another account's key, restored: refused on the next visit (client_id_taken), and kept (a
        # restored key is never deleted: it came from a file the user chose)
        stranger_key = Ed25519PrivateKey.generate()
        stranger = jwk_thumbprint(stranger_key)
        (tmp_path / "stranger.pem").write_bytes(encode_private_key(stranger_key, PASSPHRASE.encode()))
        other.page.fill("#restore-passphrase", PASSPHRASE)
        other.page.set_input_files("#restore-file", str(tmp_path / "stranger.pem"))
        other.wait_console(f"restored {stranger} from .*: reload the page to use it")
        visit = open_page(context, server)
        try:
            visit.wait_console(f"existing key {stranger}")
            visit.wait_console("error: client_id_taken")
            assert visit.page.evaluate(STORED_KEYIDS) == [stranger]
        finally:
            visit.page.close()
        time.sleep(1.1)  # the page takes the newest restored key (KeyInfo.created, in seconds)
        # the restore handler was attached anyway: a file that is no backup is refused through showError
        junk = tmp_path / "notes.txt"
        junk.write_text("not a backup\n")
        other.page.fill("#restore-passphrase", PASSPHRASE)
        other.page.set_input_files("#restore-file", str(junk))
        other.wait_console(r"error: (invalid_backup|unsupported_backup)")
        # alice's backup: restored for alice, the error cleared
        other.page.set_input_files("#restore-file", str(backup))
        other.wait_console(f"restored {keyid} from .*: reload the page to use it")
        assert other.page.text_content("#error") == ""
        stored = other.page.evaluate(
            "async () => (await (await (await import('/browser/datafold-auth.js')).KeyStore.open()).list())"
            ".map((k) => [k.keyid, k.clientId])"
        )
        assert sorted(stored) == sorted([[keyid, "alice"], [stranger, "alice"]])
        # reload: the restored key is found, registered (the server already has it) and signs
        again = open_page(context, server)
        again.wait_console(f"existing key {keyid}")
        again.wait_console(f"registered {keyid} for alice: active")
        hello = again.wait_console(r"GET /api/hello: 200 (.*)").group(1)
        assert '"hello":"alice"' in hello and f'"keyid":"{keyid}"' in hello
        again.wait_console(r"POST /api/items: 200 .*")
        assert not any(line.startswith(("new key", "error:")) for line in again.console), again.console
        assert again.page.text_content("#error") == ""
        assert other.errors == [] and again.errors == []
    finally:
        context.close()
    registry = SQLiteRegistry(server.db)
    try:
        record = registry.get(keyid)
        assert registry.get(refused) is None
    finally:
        registry.close()
    assert record is not None and record.status is KeyStatus.ACTIVE and record.client_id == "alice"


def test_the_flask_route_for_the_page_serves_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page's ```python block: a route that serves my-app/ unsigned at /app/."""
    (code,) = blocks_of("python")
    (tmp_path / "my-app").mkdir()
    (html,) = blocks_of("html")
    (tmp_path / "my-app" / "index.html").write_text(html)
    (tmp_path / "my-app" / "app.js").write_text(app_js())
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "page_app"}
    exec(compile(code, str(DOC), "exec"), namespace)  # noqa: S102 (the documented code)
    client = namespace["app"].test_client()
    index = client.get("/app/")
    assert index.status_code == 200 and index.text == html
    script = client.get("/app/app.js")
    assert script.status_code == 200 and script.mimetype in {"text/javascript", "application/javascript"}
    assert client.get("/app/../keys.db").status_code == 404
