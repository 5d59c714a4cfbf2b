"""The remote registry: key records read over HTTP from a registration endpoint, cached within the bound."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import datafold_auth as df
from datafold_auth.registration import RegistrationApp
from datafold_auth.registry.remote import RemoteRegistry

from .test_registration_http import wsgi_server

NOW = 1_800_000_000.0


def record(client_id: str = "alice", **fields: Any) -> df.KeyRecord:
    return df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), client_id=client_id, **fields)


def test_reads_records_and_keeps_them_no_longer_than_ttl() -> None:
    backend = df.MemoryRegistry()
    alice = backend.register(record(scopes=("read",), expires_at=2_000_000_000, label="laptop"))
    app = DispatcherMiddleware(NotFound(), {"/register": RegistrationApp(backend, df.MemoryNonceStore())})
    with wsgi_server(app) as base:
        remote = df.open_registry(f"remote+{base}/register", ttl=2.0, negative_ttl=0.5)
        assert isinstance(remote, RemoteRegistry) and remote.blocking
        assert remote.get(alice.keyid, NOW) == alice
        assert remote.get("A" * 43, NOW) is None
        backend.set_status(alice.keyid, df.KeyStatus.REVOKED, int(NOW))
        assert remote.get(alice.keyid, NOW + 1.9).status is df.KeyStatus.ACTIVE  # type: ignore[union-attr]
        assert remote.get(alice.keyid, NOW + 2.0).status is df.KeyStatus.REVOKED  # type: ignore[union-attr]
        late = backend.register(record("bob"))
        assert remote.get(late.keyid, NOW + 3) == late
        verifier = df.Verifier(remote, df.MemoryNonceStore(), cache_ttl=60)
        assert verifier.cache is remote  # one cache: the remote registry's own ttl is the bound
        assert not hasattr(remote, "register")  # read-only
        remote.close()


def test_unknown_keyids_are_cached_briefly() -> None:
    backend = df.MemoryRegistry()
    app = DispatcherMiddleware(NotFound(), {"/register": RegistrationApp(backend, df.MemoryNonceStore())})
    with wsgi_server(app) as base:
        remote = RemoteRegistry(base + "/register", ttl=5, negative_ttl=1)
        late = record()
        assert remote.get(late.keyid, NOW) is None
        backend.register(late)
        assert remote.get(late.keyid, NOW + 0.9) is None
        assert remote.get(late.keyid, NOW + 1.0) == late


def test_failures_are_registry_unavailable() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    down = RemoteRegistry(f"http://127.0.0.1:{port}/register", timeout=0.5)
    with pytest.raises(df.RegistryError) as info:
        down.get("A" * 43, NOW)
    assert info.value.reason is df.Reason.REGISTRY_UNAVAILABLE
    alice, bob = record(), record("bob")

    def liar(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path = environ["PATH_INFO"]
        if path.endswith("/broken"):
            start_response("500 Internal Server Error", [])
            return [b""]
        doc = bob.to_dict() if alice.keyid in path else {**alice.to_dict(), "keyid": bob.keyid}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(doc).encode()]

    with wsgi_server(liar) as base:
        remote = RemoteRegistry(base, ttl=0)
        with pytest.raises(df.RegistryError, match="another key"):
            remote.get(alice.keyid, NOW)  # a valid record, but of another key
        with pytest.raises(df.RegistryError, match="malformed"):
            remote.get(bob.keyid, NOW)  # a keyid that is not the JWK's thumbprint
        with pytest.raises(df.RegistryError, match="HTTP 500"):
            remote.get("broken", NOW)
    with pytest.raises(df.RegistryError):
        RemoteRegistry("ftp://example/register")
