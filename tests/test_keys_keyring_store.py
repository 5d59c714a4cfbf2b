"""KeyringKeyStore against a real Secret Service (gnome-keyring on a private D-Bus session bus).

CI must install the daemons (Debian/Ubuntu):

    apt-get install -y gnome-keyring dbus-x11 libsecret-tools

(gnome-keyring: gnome-keyring-daemon; dbus-x11 pulls in dbus-daemon and
dbus-run-session; libsecret-tools: secret-tool, used to read entries back
independently of the ``keyring`` library.) Without dbus-daemon or
gnome-keyring-daemon these tests are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService

from datafold_auth.jwk import jwk_thumbprint
from datafold_auth.keys import (
    KeyExistsError,
    KeyMetadata,
    KeyNotFoundError,
    KeyringKeyStore,
    KeyStoreError,
    WrongPassphraseError,
    generate_private_key,
    keyring_status,
    open_store,
)

DBUS_DAEMON = shutil.which("dbus-daemon")
KEYRING_DAEMON = shutil.which("gnome-keyring-daemon")
SECRET_TOOL = shutil.which("secret-tool")
ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    DBUS_DAEMON is None or KEYRING_DAEMON is None,
    reason="needs dbus-daemon and gnome-keyring-daemon: apt-get install -y gnome-keyring dbus-x11 libsecret-tools",
)
PASS = b"keyring-test-passphrase"
SECRET_SERVICE: Callable[[], KeyringBackend] = SecretService.Keyring  # typed alias of an untyped class


def _secrets_service_ready() -> bool:
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    with open_dbus_connection(bus="SESSION") as connection:
        reply = connection.send_and_get_reply(message_bus.NameHasOwner("org.freedesktop.secrets"))
    return bool(reply.body[0])


@pytest.fixture(scope="module")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private session bus with an unlocked gnome-keyring (empty login password); yields its environment.

    Both daemons run in the foreground as our children, so teardown can
    terminate and reap them; keyring data lives in a temporary HOME.
    """
    assert DBUS_DAEMON is not None and KEYRING_DAEMON is not None
    home = tmp_path_factory.mktemp("keyring-home")
    (home / "run").mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run"), "XDG_DATA_HOME": str(home / "data")}
    bus = subprocess.Popen(
        [DBUS_DAEMON, "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    assert bus.stdout is not None
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
    daemon = subprocess.Popen(
        [KEYRING_DAEMON, "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert daemon.stdin is not None
    daemon.stdin.write(b"\n")  # the (empty) login keyring password
    daemon.stdin.close()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DBUS_SESSION_BUS_ADDRESS", env["DBUS_SESSION_BUS_ADDRESS"])
            deadline = time.monotonic() + 10
            while not _secrets_service_ready():
                if time.monotonic() > deadline or daemon.poll() is not None:
                    pytest.fail("gnome-keyring-daemon did not start a Secret Service")
                time.sleep(0.05)
            yield env
    finally:
        for process in (daemon, bus):
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def store(secret_service: dict[str, str]) -> KeyringKeyStore:
    """A store on the real Secret Service, under a service name unique to the test."""
    return KeyringKeyStore(f"datafold-auth-test-{uuid.uuid4().hex}", backend=SECRET_SERVICE())


def test_secret_service_is_a_usable_keychain(secret_service: dict[str, str]) -> None:
    backend = SECRET_SERVICE()
    assert keyring_status(backend)[0] is True
    store, message = open_store("auto", keyring_backend=backend)
    assert isinstance(store, KeyringKeyStore) and "OS keychain" in message


def test_round_trip(store: KeyringKeyStore) -> None:
    key = generate_private_key()
    meta = store.save("default", key, KeyMetadata.for_key("default", key, label="ci"), passphrase=PASS)
    assert (meta.store, meta.encrypted) == ("keyring", True)
    assert store.exists("default") and store.metadata("default") == meta
    assert store.load("default", passphrase=PASS).private_bytes_raw() == key.private_bytes_raw()
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        store.load("default", passphrase=b"nope")
    with pytest.raises(KeyExistsError):
        store.save("default", key, meta, passphrase=PASS)
    other = generate_private_key()
    store.save("default", other, KeyMetadata.for_key("default", other), passphrase=PASS, overwrite=True)
    assert store.metadata("default").keyid == jwk_thumbprint(other)
    assert [m.name for m in store.list()] == ["default"]


def test_index_metadata_update_and_delete(store: KeyringKeyStore) -> None:
    for name in ("b", "a"):
        key = generate_private_key()
        store.save(name, key, KeyMetadata.for_key(name, key), passphrase=PASS)
    assert [m.name for m in store.list()] == ["a", "b"]
    meta = store.metadata("a")
    meta.add_server("https://api.example/register")
    store.update_metadata(meta)
    assert store.metadata("a").servers == ["https://api.example/register"]
    store.delete("a")
    assert [m.name for m in store.list()] == ["b"] and not store.exists("a")
    with pytest.raises(KeyNotFoundError):
        store.load("a", passphrase=PASS)
    with pytest.raises(KeyNotFoundError):
        store.delete("a")


def test_unencrypted_needs_consent(store: KeyringKeyStore) -> None:
    key = generate_private_key()
    meta = KeyMetadata.for_key("plain", key)
    with pytest.raises(KeyStoreError, match="allow_unencrypted"):
        store.save("plain", key, meta, passphrase=None)
    assert store.save("plain", key, meta, passphrase=None, allow_unencrypted=True).encrypted is False
    assert store.load("plain", passphrase=None).private_bytes_raw() == key.private_bytes_raw()


@pytest.mark.skipif(SECRET_TOOL is None, reason="needs secret-tool: apt-get install -y libsecret-tools")
def test_entry_holds_only_the_encrypted_pem(store: KeyringKeyStore, secret_service: dict[str, str]) -> None:
    assert SECRET_TOOL is not None
    key = generate_private_key()
    store.save("default", key, KeyMetadata.for_key("default", key), passphrase=PASS)
    lookup = [SECRET_TOOL, "lookup", "service", store.service, "username"]
    pem = subprocess.run([*lookup, "key:default"], env=secret_service, capture_output=True, check=True).stdout
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    meta = subprocess.run([*lookup, "meta:default"], env=secret_service, capture_output=True, check=True).stdout
    assert jwk_thumbprint(key).encode() in meta and key.private_bytes_raw().hex().encode() not in meta


def test_keytools_auto_uses_the_keychain(secret_service: dict[str, str], tmp_path: Path) -> None:
    env = {
        **secret_service,
        "PYTHONPATH": str(ROOT),
        "DATAFOLD_AUTH_HOME": str(tmp_path),
        "DATAFOLD_AUTH_PASSPHRASE": "pw",
    }
    name = f"k{uuid.uuid4().hex[:12]}"

    def keytools(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "keytools", *args], env=env, capture_output=True, text=True)

    made = keytools("generate", "--name", name)
    assert made.returncode == 0, made.stderr
    assert "using the OS keychain" in made.stderr and "keyring store, encrypted" in made.stdout
    shown = keytools("show", "--name", name, "--json")
    assert shown.returncode == 0 and '"store": "keyring"' in shown.stdout
    assert not (tmp_path / "keys").exists()
    store = KeyringKeyStore(backend=SECRET_SERVICE())
    assert store.load(name, passphrase=b"pw")
    store.delete(name)


def test_keytools_full_life_cycle_in_the_keychain(
    secret_service: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """generate, list, show, backup + verify, change-passphrase, restore, delete: all on the real Secret Service.

    In-process (fast): keytools gets the real gnome-keyring backend through ``keyring.get_keyring``.
    """
    from tests.test_keytools_helpers import cli

    monkeypatch.setattr(keyring, "get_keyring", SECRET_SERVICE)
    monkeypatch.setenv("DATAFOLD_AUTH_HOME", str(tmp_path / "files"))
    (tmp_path / "pass").write_text("kc-pass-1\n")
    (tmp_path / "new").write_text("kc-pass-2\n")
    name = f"k{uuid.uuid4().hex[:12]}"
    pw, new = ("--passphrase-file", str(tmp_path / "pass")), ("--passphrase-file", str(tmp_path / "new"))

    def keytools(*args: str) -> str:
        result = cli("--store", "keyring", *args, capsys=capsys, monkeypatch=monkeypatch)
        assert result.code == 0, (args, result.err)
        return result.out

    keyid = json.loads(keytools("generate", "--name", name, *pw, "--json"))["keyid"]
    listed = json.loads(keytools("list", "--json"))
    assert any(k["name"] == name and k["store"] == "keyring" and k["security"] == "at-risk" for k in listed)
    backup = tmp_path / "b.json"
    keytools("backup", "json", "--name", name, "--out", str(backup), *pw, "--same-passphrase", "--scrypt-log-n", "10")
    shown = json.loads(keytools("show", "--name", name, "--json"))
    assert shown["security"] == "good" and shown["backups"][0]["format"] == "json"
    keytools("change-passphrase", "--name", name, *pw, "--new-passphrase-file", str(tmp_path / "new"))
    store = KeyringKeyStore(backend=SECRET_SERVICE())
    assert jwk_thumbprint(store.load(name, passphrase=b"kc-pass-2")) == keyid
    with pytest.raises(WrongPassphraseError):
        store.load(name, passphrase=b"kc-pass-1")
    verified = keytools("backup", "verify", str(backup), "--backup-passphrase-file", str(tmp_path / "pass"))
    assert f"stored key {name!r}" in verified
    keytools("restore", str(backup), "--name", f"{name}-r", "--backup-passphrase-file", str(tmp_path / "pass"), *new)
    assert jwk_thumbprint(store.load(f"{name}-r", passphrase=b"kc-pass-2")) == keyid
    for key_name in (name, f"{name}-r"):
        keytools("delete", "--name", key_name)
        assert not store.exists(key_name)
    assert name not in keytools("list")
    assert not (tmp_path / "files").exists()  # nothing went to the file store


def test_keytools_without_a_keychain_falls_back_to_files_and_says_so(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "DATAFOLD_AUTH_"))},
        "PYTHONPATH": str(ROOT),
        "DATAFOLD_AUTH_HOME": str(tmp_path),
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path / 'no-bus'}",
        "DATAFOLD_AUTH_PASSPHRASE": "pw",
    }
    made = subprocess.run([sys.executable, "-m", "keytools", "generate"], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert "no OS keychain available (headless Linux?" in made.stderr and "(file store, encrypted)" in made.stdout
    assert (tmp_path / "keys" / "default.pem").exists()
    forced = subprocess.run([sys.executable, "-m", "keytools", "--store", "keyring", "list"], env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert forced.returncode == 1 and "no usable OS keychain" in forced.stderr
