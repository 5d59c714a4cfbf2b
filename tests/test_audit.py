"""The audit log: canonical hashing, chain verification, JSON-lines export, the sink, the hook, and
rejected requests recorded by the middleware off the accept path."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import threading
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient
from werkzeug.test import Client

import datafold_auth as df
from datafold_auth.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    AuditSink,
    canonical_json,
    chain,
    read_jsonl,
    request_id,
    verify_chain,
    write_jsonl,
)
from datafold_auth.middleware import DatafoldAuthASGIMiddleware, DatafoldAuthMiddleware
from datafold_auth.registry import hookspecs, plugin_manager


def events(n: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            time=100 + i, event="revoked", keyid=f"k{i}", client_id="c", actor="admin:x", reason="r", data={"i": i}
        )
        for i in range(n)
    ]


def test_hash_is_sha256_over_canonical_json_with_the_previous_hash() -> None:
    (entry,) = chain(
        [AuditEvent(time=1, event="registered", keyid="k", client_id="ä", actor="self", data={"b": 1, "a": ["x"]})],
        0,
        GENESIS_HASH,
    )
    body = {
        "actor": "self",
        "client_id": "ä",
        "data": {"a": ["x"], "b": 1},
        "event": "registered",
        "keyid": "k",
        "prev_hash": GENESIS_HASH,
        "reason": "",
        "request_id": None,
        "seq": 1,
        "time": 1,
    }
    text = '{"actor":"self","client_id":"ä","data":{"a":["x"],"b":1},"event":"registered","keyid":"k",' + (
        f'"prev_hash":"{GENESIS_HASH}","reason":"","request_id":null,"seq":1,"time":1}}'
    )
    assert canonical_json(body) == text.encode("utf-8") == canonical_json(entry.body())
    assert entry.hash == hashlib.sha256(text.encode("utf-8")).hexdigest()
    with pytest.raises(TypeError):
        canonical_json({"x": 1.5})


def test_chain_verifies_and_reports_the_head() -> None:
    entries = chain(events(5), 0, GENESIS_HASH)
    report = verify_chain(entries)
    assert (report.count, report.head_seq, report.head_hash) == (5, 5, entries[-1].hash)
    more = chain(events(2), 5, entries[-1].hash)
    assert [e.seq for e in more] == [6, 7] and more[0].prev_hash == entries[-1].hash
    assert verify_chain(more, start_seq=6, start_prev=entries[-1].hash).count == 2
    assert verify_chain([]).head_hash == GENESIS_HASH


@pytest.mark.parametrize(
    ("attack", "seq"),
    [
        ("edit-reason", 3),
        ("edit-time", 3),
        ("edit-data", 3),
        ("edit-hash", 3),
        ("remove", 3),
        ("remove-first", 1),
        ("reorder", 3),
        ("duplicate", 4),
        ("truncate", None),
    ],
)
def test_chain_detects_tampering(attack: str, seq: int | None) -> None:
    entries = chain(events(6), 0, GENESIS_HASH)
    head = entries[-1].hash
    if attack == "edit-reason":
        entries[2] = dataclasses.replace(entries[2], reason="nothing happened")
    elif attack == "edit-time":
        entries[2] = dataclasses.replace(entries[2], time=entries[2].time + 1)
    elif attack == "edit-data":
        entries[2] = dataclasses.replace(entries[2], data={"i": 99})
    elif attack == "edit-hash":  # an edited entry re-hashed: the next entry no longer chains to it
        edited = dataclasses.replace(entries[2], reason="x")
        entries[2] = dataclasses.replace(edited, hash=hashlib.sha256(canonical_json(edited.body())).hexdigest())
        seq = 4
    elif attack == "remove":
        del entries[2]
    elif attack == "remove-first":
        del entries[0]
    elif attack == "reorder":
        entries[2], entries[3] = entries[3], entries[2]
    elif attack == "duplicate":
        entries.insert(3, entries[2])
    else:
        del entries[-1]
    with pytest.raises(df.AuditChainError) as info:
        verify_chain(entries, expect_head=head)
    assert info.value.seq == seq, info.value.detail
    assert info.value.reason is df.Reason.AUDIT_CHAIN_BROKEN


def test_jsonl_round_trip() -> None:
    entries = chain(events(3), 0, GENESIS_HASH)
    out = io.StringIO()
    assert write_jsonl(entries, out) == 3
    lines = out.getvalue().splitlines()
    assert all(json.loads(line)["hash"] for line in lines)
    assert list(read_jsonl(["", *lines, "  "])) == entries
    with pytest.raises(ValueError, match="line 2"):
        list(read_jsonl([lines[0], '{"seq": 2}']))
    with pytest.raises(ValueError, match="wrong type"):
        AuditEntry.from_dict({**entries[0].to_dict(), "seq": "1"})


def test_request_ids() -> None:
    assert request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "a b", "x" * 65, "é"):
        made = request_id(bad)
        assert len(made) == 32 and made != bad


# ------------------------------------------------------------------- the sink


class SlowLog:
    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.registry = df.MemoryRegistry()
        self.delay, self.fail, self.calls = delay, fail, 0

    def append_audit(self, batch: Any) -> Any:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            raise df.RegistryError("down")
        return self.registry.append_audit(batch)


def test_sink_writes_in_batches_off_the_caller_thread() -> None:
    target = SlowLog(delay=0.05)
    sink = AuditSink(target, batch=50)
    started = time.perf_counter()
    for event in events(200):
        sink.record(event)
    assert time.perf_counter() - started < 0.05  # record() never waits for the write
    assert sink.flush(10)
    assert len(target.registry.audit_entries()) == 200 and target.calls < 200
    verify_chain(target.registry.audit_entries())
    sink.close()
    sink.record(events(1)[0])  # after close: ignored
    assert len(target.registry.audit_entries()) == 200


def test_sink_drops_when_full_and_counts_failures() -> None:
    target = SlowLog(delay=0.2)
    sink = AuditSink(target, capacity=5, batch=1)
    for event in events(50):
        sink.record(event)
    assert sink.dropped >= 40
    sink.close()
    failing = AuditSink(SlowLog(fail=True))
    failing.record(events(1)[0])
    assert failing.flush(5) and failing.failed == 1
    failing.close()


# ------------------------------------------------------------------- the hook


class Forwarder:
    def __init__(self, fail: bool = False) -> None:
        self.seen: list[AuditEntry] = []
        self.fail = fail

    @hookspecs.hookimpl
    def datafold_auth_audit_event(self, entry: AuditEntry) -> None:
        if self.fail:
            raise RuntimeError("logging is down")
        self.seen.append(entry)


def test_the_hook_receives_every_appended_entry(caplog: pytest.LogCaptureFixture) -> None:
    forwarder, broken = Forwarder(), Forwarder(fail=True)
    pm = plugin_manager()
    pm.register(forwarder, name="test-forwarder")
    pm.register(broken, name="test-broken")
    try:
        registry = df.MemoryRegistry()
        record = registry.register(df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), "alice"))
        registry.set_status(record.keyid, df.KeyStatus.REVOKED, 5)
        registry.append_audit(events(2))
    finally:
        pm.unregister(forwarder)
        pm.unregister(broken)
    assert [e.event for e in forwarder.seen] == ["registered", "revoked", "revoked", "revoked"]
    assert forwarder.seen == registry.audit_entries()
    assert "an audit hook (test-broken) failed on entry 1" in caplog.text


# --------------------------------------------------------- the middleware


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_middleware_records_rejections_and_nothing_else(kind: str) -> None:
    key = Ed25519PrivateKey.generate()
    registry = df.MemoryRegistry()
    registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id="alice"))
    verifier = df.Verifier(registry, df.MemoryNonceStore())
    sink = AuditSink(registry)
    signer = df.Signer(key)
    host = "localhost" if kind == "wsgi" else "testserver"
    headers = dict(signer.sign_parts("GET", f"http://{host}/api/x"))
    if kind == "wsgi":
        client: Any = Client(DatafoldAuthMiddleware(_app, verifier, audit=sink))
        get = lambda h: client.get("/api/x", headers=h)  # noqa: E731
    else:
        client = TestClient(DatafoldAuthASGIMiddleware(_asgi_app, verifier, audit=sink))
        get = lambda h: client.get("/api/x", headers=h)  # noqa: E731
    assert get(headers).status_code == 200
    replay = get({**headers, "X-Request-Id": "req-42"})
    unsigned = get({})
    assert sink.flush(5)
    assert replay.status_code == 401 and replay.headers["X-Request-Id"] == "req-42"
    assert json.loads(replay.get_data() if kind == "wsgi" else replay.content)["request_id"] == "req-42"
    entries = registry.audit_entries()
    rejected = [e for e in entries if e.event == "rejected"]
    assert [(e.reason, e.keyid, e.request_id) for e in rejected] == [
        ("replayed_nonce", signer.keyid, "req-42"),
        ("missing_signature", None, unsigned.headers["X-Request-Id"]),
    ]
    assert rejected[0].data == {"method": "GET", "path": "/api/x"} and rejected[0].actor
    verify_chain(entries)
    sink.close()


def test_sink_and_threads_keep_the_chain_linear(tmp_path: Any) -> None:
    registry = df.SQLiteRegistry(tmp_path / "k.db")
    sink = AuditSink(registry, batch=7)
    threads = [threading.Thread(target=lambda: [sink.record(e) for e in events(50)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(20):
        registry.register(df.KeyRecord.for_public_key(Ed25519PrivateKey.generate().public_key(), f"c{i}"))
    assert sink.flush(10)
    assert verify_chain(registry.audit_entries()).count == 220
    sink.close()
