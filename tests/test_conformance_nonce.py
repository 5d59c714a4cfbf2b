"""Nonce store conformance: memory, SQLite and Redis give the same answers (atomic set-if-absent with expiry).

Redis runs with a fresh key prefix per test on the machine's server; it is
skipped when unreachable, except in CI, where that fails (tests/backends.py).
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.nonce.redis import RedisNonceStore
from datafold_auth.registry import open_nonce_store

from .backends import REDIS_URL

BACKENDS = ["memory", "sqlite", "redis"]
NOW = 1_800_000_000.0


@pytest.fixture(params=BACKENDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Opens stores of one kind on the same storage (two stores = two processes sharing it)."""
    opened: list[Any] = []
    if request.param == "memory":
        shared = df.MemoryNonceStore()
        yield lambda: shared
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/nonces/n.db"
    else:
        prefix = request.getfixturevalue("redis_key_prefix")
        url = f"{REDIS_URL}?prefix={prefix}"

    def open_one() -> Any:
        store = open_nonce_store(url)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def test_fresh_then_replay(opener: Callable[[], Any]) -> None:
    store = opener()
    assert store.add("k1 n1", NOW + 300, NOW) is True
    assert store.add("k1 n1", NOW + 300, NOW + 1) is False
    assert store.add("k1 n2", NOW + 300, NOW) is True
    assert store.add("k2 n1", NOW + 300, NOW) is True  # another key, same nonce


def test_an_expired_entry_may_be_used_again(opener: Callable[[], Any]) -> None:
    store = opener()
    if isinstance(store, RedisNonceStore):
        # Redis forgets on its own clock: a 50 ms lifetime, then wait it out.
        assert store.add("k n", NOW + 0.05, NOW) is True
        assert store.add("k n", NOW + 0.05, NOW) is False
        import time

        time.sleep(0.2)
        assert store.add("k n", NOW + 300, NOW) is True
        return
    assert store.add("k n", NOW + 10, NOW) is True
    assert store.add("k n", NOW + 310, NOW + 9.9) is False
    assert store.add("k n", NOW + 310, NOW + 10) is True  # past expires_at: the request would be refused as expired
    assert store.add("k n", NOW + 310, NOW + 11) is False


def test_concurrent_adds_accept_exactly_one(opener: Callable[[], Any]) -> None:
    stores = [opener(), opener()]  # two "instances" on the same storage
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def add(i: int) -> None:
        barrier.wait()
        fresh = stores[i % 2].add("key same-nonce", NOW + 300, NOW)
        with lock:
            results.append(fresh)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 15 + [True]


def _add_in_process(url: str, count: int, queue: Any) -> None:
    store = open_nonce_store(url)
    queue.put(sum(store.add(f"k n{i}", NOW + 300, NOW) for i in range(count)))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_processes_share_one_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/n.db"
    else:
        url = f"{REDIS_URL}?prefix={request.getfixturevalue('redis_key_prefix')}"
    open_nonce_store(url)  # create the file/table before the processes race
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_add_in_process, args=(url, 200, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    accepted = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(accepted) == 200  # each of the 200 nonces accepted by exactly one process


def test_the_verifier_refuses_a_replay_on_another_instance(opener: Callable[[], Any]) -> None:
    key = Ed25519PrivateKey.generate()
    registry = df.MemoryRegistry()
    registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id="alice"))
    first, second = df.Verifier(registry, opener()), df.Verifier(registry, opener())
    request = df.Request.from_url("GET", "https://api.example/x")
    df.Signer(key).sign(request, now=NOW)
    assert first.verify(request, NOW).client_id == "alice"
    with pytest.raises(df.SignatureError) as info:
        second.verify(request, NOW + 1)
    assert info.value.reason is df.Reason.REPLAYED_NONCE


def test_stores_declare_blocking(opener: Callable[[], Any]) -> None:
    store = opener()
    assert store.blocking is (not isinstance(store, df.MemoryNonceStore))


def test_redis_outage_fails_closed() -> None:
    store = open_nonce_store("redis://127.0.0.1:1/0?timeout=0.5&prefix=x:")
    assert isinstance(store, RedisNonceStore) and store.prefix == "x:"
    with pytest.raises(df.NonceStoreError):
        store.add("k n", NOW + 300, NOW)
    with pytest.raises(df.NonceStoreError, match="timeout"):
        RedisNonceStore.from_url("redis://127.0.0.1/0?timeout=soon")


def test_sqlite_store_purges_expired_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datafold_auth.nonce import sqlite as module

    monkeypatch.setattr(module, "PURGE_EVERY", 10)
    store = df.SQLiteNonceStore(tmp_path / "n.db")
    for i in range(9):
        store.add(f"k old{i}", NOW + 1, NOW)
    assert len(store) == 9
    store.add("k new", NOW + 300, NOW + 5)  # the 10th call purges what expired
    assert len(store) == 1
