"""Several server processes of examples/shared_app.py sharing PostgreSQL (keys, audit) and Redis (nonces).

Three instances (A, B, C) run on the shared stores; a fourth (R) is a resource
server that reads key records from A's registration endpoint (remote
registry). All run with ``--cache-ttl 2``: the stated revocation bound is 2 s
per instance. Real processes, real time, bounded waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.audit import AuditContext, verify_chain
from datafold_auth.registration import lifecycle_request, registration_request, revocation_request, rotation_request

from .backends import REDIS_URL, postgres_schema, redis_prefix, schema_url
from .conftest import ROOT

BOUND = 2.0
"""The revocation bound the instances run with (--cache-ttl), seconds."""
OVERLAP = 4
"""The rotation overlap the instances run with, seconds."""
SLACK = 1.0
"""Allowed beyond the bound: one lookup's latency and the polling step, seconds."""
APP = ROOT / "examples" / "shared_app.py"


@dataclass
class Instance:
    name: str
    base: str
    process: subprocess.Popen[str]

    @property
    def authority(self) -> str:
        return self.base.removeprefix("http://")


@dataclass
class Cluster:
    instances: dict[str, Instance]
    registry_url: str
    measured: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Instance:
        return self.instances[name]


def _start(name: str, *args: str) -> Instance:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, str(APP), "--port", "0", "--cache-ttl", str(BOUND), "--rotation-overlap", str(OVERLAP), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    first: list[str] = []
    reader = threading.Thread(target=lambda: first.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(30)
    line = first[0] if first else ""
    if not line.startswith("listening on "):
        process.kill()
        output = process.communicate(timeout=10)[0]
        raise AssertionError(f"instance {name} did not start: {line!r} {output[-2000:]}")
    # keep draining its output so that it never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()
    base = line.split()[-1]
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(base + "/health", timeout=2).status_code == 200:
                return Instance(name, base, process)
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, f"instance {name} does not answer"
        time.sleep(0.1)


def _stop(instance: Instance) -> None:
    instance.process.terminate()
    try:
        instance.process.wait(10)
    except subprocess.TimeoutExpired:
        instance.process.kill()
        instance.process.wait(10)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with ExitStack() as stack:
        schema = stack.enter_context(postgres_schema())
        prefix = stack.enter_context(redis_prefix())
        registry_url = schema_url(schema, pool_max="8")
        df.open_registry(registry_url).close()  # migrate once before the instances start
        shared = ("--registry", registry_url, "--nonces", f"{REDIS_URL}?prefix={prefix}", "--rate-limit", "")
        instances: dict[str, Instance] = {}
        try:
            with ThreadPoolExecutor(3) as pool:
                for found in pool.map(lambda n: _start(n, *shared), ["A", "B", "C"]):
                    instances[found.name] = found
            remote = (
                "--registry",
                f"remote+{instances['A'].base}/register",
                "--nonces",
                f"{REDIS_URL}?prefix={prefix}",
            )
            instances["R"] = _start("R", *remote)
            found_cluster = Cluster(instances, registry_url)
            yield found_cluster
        finally:
            for instance in instances.values():
                _stop(instance)
        if found_cluster.measured:
            print("\nmulti-instance measurements:", found_cluster.measured)


def send(request: df.Request, instance: Instance, *, host: str | None = None) -> requests.Response:
    """Send a signed request to ``instance``; ``host`` is the Host it was signed for (a load balancer's name)."""
    url = request.target_uri.replace(request.normalized_authority, instance.authority, 1)
    headers = dict(request.headers)
    if host is not None:
        headers["Host"] = host
    return requests.request(request.method, url, data=request.body or None, headers=headers, timeout=10)


def register(cluster: Cluster, via: str = "A", **fields: Any) -> df.Signer:
    signer = df.Signer(Ed25519PrivateKey.generate())
    base = cluster[via].base
    response = send(registration_request(signer, base + "/register/keys", **fields), cluster[via])
    assert response.status_code == 201, response.text
    return signer


def hello(cluster: Cluster, signer: df.Signer, name: str) -> requests.Response:
    return send(lifecycle_request(signer, "GET", cluster[name].base + "/api/hello"), cluster[name])


def reason(response: requests.Response) -> str:
    return str(response.json().get("reason", "")) if response.status_code >= 400 else ""


def wait_until_refused(cluster: Cluster, signer: df.Signer, names: list[str], started: float) -> dict[str, float]:
    """Poll each instance until it refuses ``signer`` with key_not_active; the seconds each took."""
    took: dict[str, float] = {}
    deadline = started + BOUND + SLACK + 2
    while len(took) < len(names) and time.monotonic() < deadline:
        for name in names:
            if name not in took and reason(hello(cluster, signer, name)) == "key_not_active":
                took[name] = time.monotonic() - started
        time.sleep(0.05)
    return took


def test_a_nonce_used_on_one_instance_is_refused_on_the_others(cluster: Cluster) -> None:
    alice = register(cluster, client_id="nonce-alice")
    request = lifecycle_request(alice, "GET", "http://api.example.com/api/hello")  # one public name for all
    assert send(request, cluster["A"], host="api.example.com").status_code == 200
    for name in ("B", "C", "R"):
        replay = send(request, cluster[name], host="api.example.com")
        assert (replay.status_code, reason(replay)) == (401, "replayed_nonce"), name
    fresh = lifecycle_request(alice, "GET", "http://api.example.com/api/hello")
    assert send(fresh, cluster["B"], host="api.example.com").status_code == 200


def test_a_revocation_reaches_every_instance_within_the_bound(cluster: Cluster) -> None:
    names = ["A", "B", "C", "R"]
    # by the key holder, through A
    holder = register(cluster, client_id="revoke-holder")
    assert all(hello(cluster, holder, n).status_code == 200 for n in names)  # every cache holds the active record
    started = time.monotonic()
    revoked = send(revocation_request(holder, cluster["A"].base + "/register/keys", reason="lost"), cluster["A"])
    assert revoked.status_code == 200, revoked.text
    took = wait_until_refused(cluster, holder, names, started)
    assert set(took) == set(names), took
    assert max(took.values()) <= BOUND + SLACK, took
    # by an administrator, through B's admin API
    admin = df.Signer(Ed25519PrivateKey.generate())
    registry = df.open_registry(cluster.registry_url)
    try:
        registry.register(
            df.KeyRecord.for_public_key(admin.public_key, "ops", scopes=("admin",), created_at=1, updated_at=1),
            context=AuditContext(actor="local:test"),
        )
    finally:
        registry.close()
    victim = register(cluster, client_id="revoke-admin")
    assert all(hello(cluster, victim, n).status_code == 200 for n in names)
    started = time.monotonic()
    url = cluster["B"].base + f"/admin/keys/{victim.keyid}/revoke"
    response = send(lifecycle_request(admin, "POST", url, {"reason": "compromised"}), cluster["B"])
    assert response.status_code == 200 and response.json()["status_reason"] == "compromised"
    took_admin = wait_until_refused(cluster, victim, names, started)
    assert set(took_admin) == set(names) and max(took_admin.values()) <= BOUND + SLACK, took_admin
    cluster.measured["revocation_seconds_holder"] = {k: round(v, 2) for k, v in took.items()}
    cluster.measured["revocation_seconds_admin"] = {k: round(v, 2) for k, v in took_admin.items()}
    # the admin API refuses keys without the admin scope, on every instance
    for name in ("A", "B", "C"):
        refused = send(lifecycle_request(holder, "GET", cluster[name].base + "/admin/counts"), cluster[name])
        assert refused.status_code == 401  # revoked
        nonadmin = register(cluster, via=name)
        refused = send(lifecycle_request(nonadmin, "GET", cluster[name].base + "/admin/counts"), cluster[name])
        assert (refused.status_code, reason(refused)) == (403, "insufficient_scope")


def test_concurrent_registrations_from_many_clients_lose_none(cluster: Cluster) -> None:
    count = 120
    names = ["A", "B", "C"]
    signers = [df.Signer(Ed25519PrivateKey.generate()) for _ in range(count)]

    def one(i: int) -> int:
        instance = cluster[names[i % 3]]
        request = registration_request(signers[i], instance.base + "/register/keys", client_id=f"bulk-{i}")
        return send(request, instance).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(one, range(count)))
    elapsed = time.monotonic() - started
    assert statuses == [201] * count
    registry = df.open_registry(cluster.registry_url)
    try:
        stored = {r.client_id for r in registry.list(limit=None) if r.client_id.startswith("bulk-")}
        assert stored == {f"bulk-{i}" for i in range(count)}
        entries = registry.audit_entries()
        verify_chain(entries)
        assert {e.keyid for e in entries if e.event == "registered"} >= {s.keyid for s in signers}
    finally:
        registry.close()
    cluster.measured["http_registrations_per_second"] = round(count / elapsed, 1)
    # every instance serves every new key at once (never looked up before: nothing cached)
    assert all(hello(cluster, signers[i], names[(i + 1) % 3]).status_code == 200 for i in range(0, count, 17))


def test_rotation_has_no_rejected_request_and_then_retires_the_old_key(cluster: Cluster) -> None:
    old = register(cluster, client_id="rotating", scopes=["read"])
    current = {"signer": old}
    results: list[tuple[str, int, str]] = []
    stop = threading.Event()

    def client() -> None:
        i = 0
        while not stop.is_set():
            name = "ABCR"[i % 4]
            response = hello(cluster, current["signer"], name)
            results.append((name, response.status_code, reason(response)))
            i += 1

    worker = threading.Thread(target=client)
    worker.start()
    time.sleep(0.5)
    new = df.Signer(Ed25519PrivateKey.generate())
    response = send(rotation_request(old, new, cluster["B"].base + "/register/keys"), cluster["B"])
    assert response.status_code == 201, response.text
    rotated_at = time.monotonic()
    current["signer"] = new
    time.sleep(1.0)
    stop.set()
    worker.join(10)
    rejected = [r for r in results if r[1] != 200]
    assert len(results) > 20 and rejected == [], rejected
    cluster.measured["rotation_requests_without_rejection"] = len(results)
    # the old key still verifies during the overlap (requests signed before the switch), then stops everywhere
    assert hello(cluster, old, "C").status_code == 200
    time.sleep(max(0.0, OVERLAP - (time.monotonic() - rotated_at)) + 0.2)
    for name in "ABCR":
        refused = hello(cluster, old, name)
        assert (refused.status_code, reason(refused)) == (401, "key_not_active"), name
        assert hello(cluster, new, name).status_code == 200


def test_the_shared_audit_log_holds_every_instance_events(cluster: Cluster) -> None:
    alice = register(cluster, client_id="audit-alice")
    request = lifecycle_request(alice, "GET", cluster["A"].base + "/api/hello")
    assert send(request, cluster["A"]).status_code == 200
    replay = send(request, cluster["A"])
    assert reason(replay) == "replayed_nonce"
    request_id = replay.json()["request_id"]
    registry = df.open_registry(cluster.registry_url)
    try:
        deadline = time.monotonic() + 10
        while True:  # the sink writes off the request path
            entries = registry.audit_entries()
            if any(e.request_id == request_id for e in entries) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        report = verify_chain(entries)
        found = [e for e in entries if e.request_id == request_id]
        assert [(e.event, e.reason, e.keyid) for e in found] == [("rejected", "replayed_nonce", alice.keyid)]
        assert report.count == len(entries)
        assert [e.event for e in entries if e.keyid == alice.keyid] == ["registered", "rejected"]
    finally:
        registry.close()
