"""The admin API (WSGI and ASGI, real servers): admin-scoped keys only, every operation, the audit trail."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

import datafold_auth as df
from datafold_auth.admin import AdminApp, AdminASGIApp
from datafold_auth.audit import AuditSink, read_jsonl, verify_chain
from datafold_auth.middleware import DatafoldAuthMiddleware
from datafold_auth.registration import lifecycle_request
from datafold_auth.registry import hookspecs, plugin_manager

from .test_registration_http import asgi_server, wsgi_server

S = df.KeyStatus


@dataclass
class Admin:
    base: str
    registry: df.MemoryRegistry
    admin: df.Signer
    user: df.Signer
    sink: AuditSink

    def call(
        self, method: str, path: str, doc: Any = None, *, signer: df.Signer | None = None, body: bytes | None = None,
        content_type: str = "application/json",
    ) -> requests.Response:  # fmt: skip
        url = self.base + "/admin" + path
        if body is not None:
            request = df.Request.from_url(method, url, [("Content-Type", content_type)], body)
            (signer or self.admin).sign(request)
        else:
            request = lifecycle_request(signer or self.admin, method, url, doc)
        return requests.request(
            method, request.target_uri, data=request.body or None, headers=dict(request.headers), timeout=10
        )


def key(registry: df.MemoryRegistry, client_id: str, scopes: tuple[str, ...] = (), **fields: Any) -> df.Signer:
    private = Ed25519PrivateKey.generate()
    registry.register(df.KeyRecord.for_public_key(private.public_key(), client_id=client_id, scopes=scopes, **fields))
    return df.Signer(private)


@pytest.fixture(params=["wsgi", "asgi"])
def api(request: pytest.FixtureRequest) -> Iterator[Admin]:
    registry = df.MemoryRegistry()
    verifier = df.Verifier(registry, df.MemoryNonceStore(), cache_ttl=0)
    sink = AuditSink(registry)
    admin = key(registry, "ops", ("admin",))
    user = key(registry, "alice", ("read",))
    with ExitStack() as stack:
        if request.param == "wsgi":
            app: Any = DispatcherMiddleware(NotFound(), {"/admin": AdminApp(registry, verifier, audit=sink)})
            base = stack.enter_context(wsgi_server(app))
        else:
            app = Starlette(routes=[Mount("/admin", AdminASGIApp(registry, verifier, audit=sink))])
            base = stack.enter_context(asgi_server(app))
        yield Admin(base, registry, admin, user, sink)
    sink.close()


def reason(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["reason"]


def test_only_admin_keys_get_in(api: Admin) -> None:
    assert reason(api.call("GET", "/counts", signer=api.user)) == (403, "insufficient_scope")
    assert reason(api.call("POST", f"/keys/{api.admin.keyid}/revoke", signer=api.user)) == (403, "insufficient_scope")
    assert reason(requests.get(api.base + "/admin/keys", timeout=10)) == (401, "missing_signature")
    stranger = df.Signer(Ed25519PrivateKey.generate())
    assert reason(api.call("GET", "/keys", signer=stranger)) == (401, "unknown_key")
    assert api.registry.get(api.admin.keyid).status is S.ACTIVE  # type: ignore[union-attr]
    assert api.sink.flush(5)
    rejected = [e for e in api.registry.audit_entries() if e.event == "rejected"]
    assert [(e.reason, e.client_id) for e in rejected] == [
        ("insufficient_scope", "alice"),
        ("insufficient_scope", "alice"),
        ("missing_signature", None),
        ("unknown_key", None),
    ]
    assert rejected[0].keyid == api.user.keyid and rejected[0].data["path"] == "/admin/counts"
    assert reason(api.call("GET", "/nowhere")) == (404, "not_found")
    wrong = api.call("DELETE", "/keys")
    assert reason(wrong) == (405, "method_not_allowed") and wrong.headers["Allow"] == "GET"


def test_list_filter_and_page(api: Admin) -> None:
    for i in range(5):
        key(api.registry, f"c{i}", status=S.PENDING if i % 2 else S.ACTIVE, created_at=10 + i)
    listing = api.call("GET", "/keys?status=pending").json()
    assert [k["client_id"] for k in listing["keys"]] == ["c1", "c3"] and listing["next_offset"] is None
    assert all("status_reason" in k and "fingerprint" in k for k in listing["keys"])
    page = api.call("GET", "/keys?limit=2&offset=2").json()  # ops and alice (created_at 0) come first
    assert [k["client_id"] for k in page["keys"]] == ["c0", "c1"] and page["next_offset"] == 4
    assert [k["keyid"] for k in api.call("GET", "/keys?client_id=alice").json()["keys"]] == [api.user.keyid]
    assert reason(api.call("GET", "/keys?status=sleeping")) == (400, "invalid_request")
    assert reason(api.call("GET", "/keys?limit=5000")) == (400, "invalid_request")
    assert reason(api.call("GET", "/keys?client_id=a%20b")) == (400, "invalid_request")
    shown = api.call("GET", f"/keys/{api.user.keyid}")
    assert shown.json()["client_id"] == "alice" and shown.headers["Cache-Control"] == "no-store"
    assert reason(api.call("GET", f"/keys/{'A' * 43}")) == (404, "not_found")


def test_approve_suspend_revoke_with_reasons(api: Admin) -> None:
    pending = key(api.registry, "bob", status=S.PENDING)
    approved = api.call("POST", f"/keys/{pending.keyid}/approve", {"reason": "checked by phone"})
    assert approved.json()["status"] == "active" and approved.json()["status_reason"] == "checked by phone"
    suspended = api.call("POST", f"/keys/{pending.keyid}/suspend", {"reason": "odd traffic"})
    assert suspended.json()["status"] == "suspended"
    assert api.call("POST", f"/keys/{pending.keyid}/approve").json()["status"] == "active"  # reactivated
    revoked = api.call("POST", f"/keys/{pending.keyid}/revoke", {"reason": "left the company"})
    assert revoked.json()["status"] == "revoked"
    for action in ("approve", "suspend", "revoke"):
        assert reason(api.call("POST", f"/keys/{pending.keyid}/{action}")) == (409, "invalid_transition")
    assert reason(api.call("POST", f"/keys/{'A' * 43}/revoke")) == (404, "not_found")
    assert reason(api.call("POST", f"/keys/{pending.keyid}/revoke", {"reason": 5})) == (400, "invalid_request")
    trail = [(e.event, e.reason, e.actor) for e in api.registry.audit_entries() if e.keyid == pending.keyid]
    admin_actor = f"admin:ops/{api.admin.keyid}"
    assert trail[1:] == [
        ("approved", "checked by phone", admin_actor),
        ("suspended", "odd traffic", admin_actor),
        ("activated", "", admin_actor),
        ("revoked", "left the company", admin_actor),
    ]


def test_import_jsonl_and_csv(api: Admin) -> None:
    good = [Ed25519PrivateKey.generate().public_key() for _ in range(3)]
    lines = [
        json.dumps({"jwk": df.public_jwk(good[0]), "client_id": "imp-a", "scopes": ["read"], "label": "a"}),
        json.dumps({"public_key": df.public_jwk(good[1])["x"], "client_id": "imp-b", "status": "pending"}),
        "",
        json.dumps({"public_key": "not base64!"}),
        json.dumps({"jwk": df.public_jwk(good[0])}),  # a duplicate
        "[1, 2]",
        json.dumps({"jwk": df.public_jwk(good[2]), "client_id": "alice"}),  # another device for an existing client
        json.dumps({"jwk": df.public_jwk(good[2]), "status": "revoked"}),
    ]
    result = api.call("POST", "/keys/import", body="\n".join(lines).encode(), content_type="application/jsonl").json()
    assert len(result["imported"]) == 3
    assert [(e["line"], e["reason"]) for e in result["errors"]] == [
        (4, "invalid_key"),
        (5, "duplicate_key"),
        (6, "invalid_request"),
        (8, "invalid_request"),
    ]
    assert api.registry.get(df.jwk_thumbprint(good[1])).status is S.PENDING  # type: ignore[union-attr]
    assert len(api.registry.list(client_id="alice")) == 2
    csv_keys = [Ed25519PrivateKey.generate().public_key() for _ in range(2)]
    csv = "client_id,public_key,label,scopes,status,expires_at\n" + "\n".join(
        f"csv-{i},{df.public_jwk(k)['x']},label {i},read write,active,{2_000_000_000 + i}"
        for i, k in enumerate(csv_keys)
    )
    result = api.call("POST", "/keys/import", body=csv.encode(), content_type="text/csv").json()
    assert len(result["imported"]) == 2 and result["errors"] == []
    record = api.registry.get(df.jwk_thumbprint(csv_keys[1]))
    assert record is not None and (record.scopes, record.expires_at) == (("read", "write"), 2_000_000_001)
    assert reason(api.call("POST", "/keys/import", body=b"x", content_type="text/plain")) == (400, "invalid_request")
    assert reason(api.call("POST", "/keys/import", body=b"a,b\n1,2", content_type="text/csv")) == (
        400,
        "invalid_request",
    )
    imported = [e for e in api.registry.audit_entries() if e.event == "imported"]
    assert len(imported) == 5 and all(e.actor.startswith("admin:ops/") for e in imported)


def test_bulk_revoke_counts_and_expire(api: Admin) -> None:
    mallory = [key(api.registry, f"m{i}") for i in range(3)]
    devices = [key(api.registry, "carol")]
    devices.append(df.Signer(Ed25519PrivateKey.generate()))
    api.registry.register(
        df.KeyRecord.for_public_key(devices[1].public_key, client_id="carol"), allow_existing_client=True
    )
    expiring = key(api.registry, "temp", expires_at=1)
    result = api.call(
        "POST",
        "/keys/revoke",
        {"keyids": [m.keyid for m in mallory[:2]] + ["A" * 43], "client_id": "carol", "reason": "breach"},
    ).json()
    assert sorted(result["revoked"]) == sorted([mallory[0].keyid, mallory[1].keyid] + [d.keyid for d in devices])
    assert result["errors"] == [{"keyid": "A" * 43, "reason": "not_found"}]
    assert reason(api.call("POST", "/keys/revoke", {})) == (400, "invalid_request")
    counts = api.call("GET", "/counts").json()  # runs the expiry sweep first
    assert counts["counts"] == {"pending": 0, "active": 3, "rotated": 0, "revoked": 4, "expired": 1, "suspended": 0}
    assert counts["total"] == 8
    assert api.registry.get(expiring.keyid).status is S.EXPIRED  # type: ignore[union-attr]
    assert api.call("POST", "/expire").json() == {"expired": []}


def test_audit_export_verifies(api: Admin) -> None:
    api.call("POST", f"/keys/{api.user.keyid}/suspend", {"reason": "x"})
    api.call("GET", "/counts", signer=api.user)  # a refusal, recorded by the sink
    assert api.sink.flush(5)
    exported = api.call("GET", "/audit")
    assert exported.headers["Content-Type"] == "application/jsonl"
    entries = list(read_jsonl(exported.text.splitlines()))
    assert [e.event for e in entries] == ["registered", "registered", "suspended", "rejected"]
    assert verify_chain(entries).head_hash == api.registry.audit_entries()[-1].hash
    tail = list(read_jsonl(api.call("GET", "/audit?after=2&limit=1").text.splitlines()))
    assert [e.seq for e in tail] == [3]


def test_inside_the_middleware_the_request_is_verified_once() -> None:
    registry = df.MemoryRegistry()
    nonces = df.MemoryNonceStore()
    verifier = df.Verifier(registry, nonces, cache_ttl=0)
    admin = key(registry, "ops", ("admin",))
    app = DatafoldAuthMiddleware(
        DispatcherMiddleware(NotFound(), {"/admin": AdminApp(registry, verifier)}), verifier, paths=["/admin"]
    )
    with wsgi_server(app) as base:
        request = lifecycle_request(admin, "GET", base + "/admin/counts")
        response = requests.get(request.target_uri, headers=dict(request.headers), timeout=10)
        assert response.status_code == 200, response.text  # a second verification would find its nonce used
        assert response.json()["total"] == 1


class _ThreadNoting:
    def __init__(self) -> None:
        self.threads: list[int] = []

    @hookspecs.hookimpl
    def datafold_auth_authorize(self, identity: Any, scopes: tuple[str, ...], request: Any) -> bool | None:
        self.threads.append(threading.get_ident())
        return None


def test_asgi_admin_asks_an_authorize_hook_off_the_event_loop() -> None:
    """With a registry that never blocks the admin app would answer on the loop; an application's
    hook (which may query a database) still runs in a worker thread."""
    registry = df.MemoryRegistry()
    verifier = df.Verifier(registry, df.MemoryNonceStore(), cache_ttl=0)
    admin = key(registry, "ops", ("admin",))
    loop_threads: list[int] = []

    async def where(request: Any) -> PlainTextResponse:
        loop_threads.append(threading.get_ident())
        return PlainTextResponse("here")

    app = Starlette(routes=[Route("/where", where), Mount("/admin", AdminASGIApp(registry, verifier))])
    noting = _ThreadNoting()
    plugin_manager().register(noting, name="test-thread-noting")
    try:
        with asgi_server(app) as base:
            assert requests.get(base + "/where", timeout=10).text == "here"
            ok = Admin(base, registry, admin, admin, AuditSink(registry)).call("GET", "/counts")
            assert ok.status_code == 200, ok.text
    finally:
        plugin_manager().unregister(noting)
    assert noting.threads and loop_threads and loop_threads[0] not in noting.threads
