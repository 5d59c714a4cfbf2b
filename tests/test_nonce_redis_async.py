"""RedisNonceStore.add_async: the ASGI path asks Redis on the event loop, with add's answers and errors.

Runs against the machine's Redis with a fresh key prefix per test (tests/backends.py);
the failure cases use a closed port and a socket that accepts but never answers.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import datafold_auth as df
from datafold_auth.errors import NonceStoreError, Reason, SignatureError
from datafold_auth.nonce.redis import RedisNonceStore
from datafold_auth.registry import open_nonce_store

from .backends import REDIS_URL

NOW = 1_800_000_000.0


@pytest.fixture
def store(redis_key_prefix: str) -> Iterator[RedisNonceStore]:
    opened = open_nonce_store(f"{REDIS_URL}?prefix={redis_key_prefix}")
    assert isinstance(opened, RedisNonceStore)
    yield opened
    opened.close()


def test_add_async_answers_as_add_does(store: RedisNonceStore) -> None:
    async def run() -> list[bool]:
        try:
            return [
                await store.add_async("k n1", NOW + 300, NOW),
                await store.add_async("k n1", NOW + 300, NOW + 1),  # a replay
                store.add("k n1", NOW + 300, NOW),  # the same Redis key, seen by the blocking client too
                await store.add_async("k n2", NOW + 300, NOW),
            ]
        finally:
            await store.aclose()

    assert asyncio.run(run()) == [True, False, False, True]
    assert store.add("k n2", NOW + 300, NOW) is False


def test_add_async_sets_the_same_lifetime(store: RedisNonceStore, redis_key_prefix: str) -> None:
    async def run() -> None:
        try:
            assert await store.add_async("k ttl", NOW + 42.5, NOW) is True
        finally:
            await store.aclose()

    asyncio.run(run())
    ttl = redis.Redis.from_url(REDIS_URL).pttl(redis_key_prefix + "k ttl")
    assert 41_000 < ttl <= 42_500  # PX from the verifier's clock: expires_at - now


def test_concurrent_requests_with_one_nonce_exactly_one_is_fresh(store: RedisNonceStore) -> None:
    async def run() -> list[bool]:
        try:
            return list(await asyncio.gather(*(store.add_async("k same", NOW + 300, NOW) for _ in range(25))))
        finally:
            await store.aclose()

    answers = asyncio.run(run())
    assert answers.count(True) == 1 and answers.count(False) == 24


def test_each_event_loop_gets_its_own_client(store: RedisNonceStore) -> None:
    """redis.asyncio connections belong to the loop that opened them: a second loop must not reuse them."""
    clients: list[Any] = []

    async def run(nonce: str) -> bool:
        fresh = await store.add_async(f"k {nonce}", NOW + 300, NOW)
        clients.append(store._async_clients[asyncio.get_running_loop()])
        return fresh  # the client is left open: the next loop must still get a working one of its own

    assert asyncio.run(run("a")) is True
    assert asyncio.run(run("b")) is True
    assert clients[0] is not clients[1]


def _signed(signer: df.Signer) -> df.Request:
    request = df.Request.from_url("POST", "https://api.example/v1/items", [("Content-Type", "application/json")], b"{}")
    signer.sign(request, now=int(NOW))  # extends request.headers
    return request


def test_verify_offloading_needs_no_worker_thread_with_add_async(store: RedisNonceStore) -> None:
    """With the key in the cache, verification asks nothing of ``offload``: the nonce goes by add_async."""
    key = Ed25519PrivateKey.generate()
    signer = df.Signer(key)
    registry = df.MemoryRegistry()
    registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id="alice"))
    verifier = df.Verifier(registry, store)
    assert verifier.blocking
    verifier.cache.get(signer.keyid, NOW)
    offloaded: list[Any] = []

    async def forbidden(function: Any, *args: Any) -> Any:
        offloaded.append(function)
        return function(*args)

    request = _signed(signer)

    async def run() -> None:
        try:
            verified = await verifier.verify_offloading(request, NOW, forbidden)
            assert verified.client_id == "alice"
            with pytest.raises(SignatureError) as replay:
                await verifier.verify_offloading(request, NOW + 1, forbidden)
            assert replay.value.reason is Reason.REPLAYED_NONCE
        finally:
            await store.aclose()

    asyncio.run(run())
    assert offloaded == []


def test_a_store_without_an_async_client_uses_a_worker_thread(redis_key_prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    plain = RedisNonceStore(client, prefix=redis_key_prefix)
    threads: list[str] = []
    add = plain.add

    def recording_add(key: str, expires_at: float, now: float) -> bool:
        threads.append(threading.current_thread().name)
        return add(key, expires_at, now)

    plain.add = recording_add  # type: ignore[method-assign]

    async def run() -> list[bool]:
        return [await plain.add_async("k t", NOW + 300, NOW), await plain.add_async("k t", NOW + 300, NOW)]

    try:
        assert asyncio.run(run()) == [True, False]
    finally:
        plain.close()
    assert threads and all(name != threading.main_thread().name for name in threads)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_redis_fails_closed_and_keeps_the_password_out() -> None:
    store = open_nonce_store(f"redis://:s3cret-pass@127.0.0.1:{_closed_port()}/0?timeout=0.5")

    async def run() -> NonceStoreError:
        with pytest.raises(NonceStoreError) as failed:
            await store.add_async("k n", NOW + 300, NOW)
        return failed.value

    error = asyncio.run(run())
    assert error.reason is Reason.NONCE_STORE_UNAVAILABLE
    assert "s3cret" not in str(error) and "s3cret" not in repr(error) and "s3cret" not in repr(store)
    assert error.__cause__ is None and error.__suppress_context__


def test_a_redis_that_never_answers_fails_closed_within_the_timeout() -> None:
    """Accepted by the kernel, never answered (as a frozen server): the socket timeout bounds the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        store = open_nonce_store(f"redis://127.0.0.1:{port}/0?timeout=0.3")

        async def run() -> float:
            started = time.monotonic()
            with pytest.raises(NonceStoreError):
                await store.add_async("k n", NOW + 300, NOW)
            return time.monotonic() - started

        elapsed = asyncio.run(run())
    assert 0.25 <= elapsed < 5


def test_cancelled_requests_leave_no_stale_reply_behind(store: RedisNonceStore) -> None:
    """A request cancelled mid-command (a client gone) must not leave a reply on a pooled connection
    for the next command to read: a fresh nonce must then still be fresh, and its replay refused."""
    import random
    import secrets

    async def run() -> list[tuple[bool, bool]]:
        answers = []
        try:
            for _ in range(60):
                tasks = [
                    asyncio.ensure_future(store.add_async(f"k {secrets.token_hex(8)}", NOW + 300, NOW))
                    for _ in range(20)
                ]
                await asyncio.sleep(random.random() * 0.002)  # noqa: S311 - timing jitter, not a secret
                for task in tasks:
                    if random.random() < 0.5:  # noqa: S311 - which to cancel, not a secret
                        task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                fresh = f"k {secrets.token_hex(8)}"
                answers.append(
                    (await store.add_async(fresh, NOW + 300, NOW), await store.add_async(fresh, NOW + 300, NOW))
                )
        finally:
            await store.aclose()
        return answers

    assert set(asyncio.run(run())) == {(True, False)}


def test_a_client_without_socket_timeout_is_warned_about(redis_key_prefix: str) -> None:
    from datafold_auth.nonce.redis import NO_TIMEOUT_WARNING

    with pytest.warns(RuntimeWarning) as warned:
        bare = RedisNonceStore(redis.Redis.from_url(REDIS_URL, socket_timeout=None), prefix=redis_key_prefix)
    assert [str(w.message) for w in warned] == [NO_TIMEOUT_WARNING] and warned[0].filename == __file__
    bare.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RedisNonceStore(redis.Redis.from_url(REDIS_URL, socket_timeout=1), prefix=redis_key_prefix).close()
        open_nonce_store(f"{REDIS_URL}?prefix={redis_key_prefix}").close()  # type: ignore[attr-defined]
        # redis-py's own default (5 s in redis-py 8) counts as a timeout
        default = redis.Redis.from_url(REDIS_URL).connection_pool.connection_kwargs.get("socket_timeout", "default")
        if default != "default":
            pytest.skip("this redis-py puts socket_timeout in the pool's settings: nothing to infer")
        RedisNonceStore(redis.Redis.from_url(REDIS_URL), prefix=redis_key_prefix).close()
        RedisNonceStore(object(), prefix=redis_key_prefix)  # not a plain pool: nothing to check, no crash


def test_more_requests_at_once_than_connections_all_get_an_answer(store: RedisNonceStore) -> None:
    """Past the asyncio pool's size, requests wait for a free connection instead of failing (503)."""
    from datafold_auth.nonce.redis import ASYNC_MAX_CONNECTIONS

    async def run() -> list[object]:
        try:
            return await asyncio.gather(
                *(store.add_async(f"k many {i}", NOW + 300, NOW) for i in range(ASYNC_MAX_CONNECTIONS * 8)),
                return_exceptions=True,
            )
        finally:
            await store.aclose()

    answers = asyncio.run(run())
    assert answers.count(True) == len(answers), [a for a in answers if a is not True][:3]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_short_lived_event_loops_do_not_pile_up_connections(store: RedisNonceStore) -> None:
    """One asyncio.run per request (as test clients do): the clients of closed loops are dropped."""
    asyncio.run(store.add_async("k loop first", NOW + 300, NOW))
    gc.collect()
    before = _open_fds()
    for i in range(60):
        assert asyncio.run(store.add_async(f"k loop {i}", NOW + 300, NOW)) is True
    gc.collect()
    assert len(store._async_clients) == 1
    assert _open_fds() - before <= 2


def test_the_first_request_after_a_redis_restart_succeeds(tmp_path: Any) -> None:
    """Redis restarted (or closing idle connections): the pooled connection is dead; one retry on a
    new connection answers, as the blocking client does, instead of a 503."""
    from .private_services import private_redis

    with private_redis() as server:
        restarted = open_nonce_store(server.url)

        async def run() -> list[bool]:
            try:
                first = await restarted.add_async("k before", NOW + 300, NOW)
                server.kill()
                server.start()  # a new process: empty, and every old connection is gone
                return [first, await restarted.add_async("k after", NOW + 300, NOW)]
            finally:
                await restarted.aclose()
                restarted.close()

        assert asyncio.run(run()) == [True, True]


def test_a_subclass_that_decides_in_add_is_asked_on_the_async_path(redis_key_prefix: str) -> None:
    base = open_nonce_store(f"{REDIS_URL}?prefix={redis_key_prefix}")
    assert isinstance(base, RedisNonceStore)
    asked: list[str] = []

    class Audited(RedisNonceStore):
        def add(self, key: str, expires_at: float, now: float) -> bool:
            asked.append(key)
            return super().add(key, expires_at, now)

    audited = Audited(base.client, prefix=base.prefix, async_client=base._make_async_client)
    assert asyncio.run(audited.add_async("k sub", NOW + 300, NOW)) is True
    assert asked == ["k sub"]
    base.close()


def test_unix_socket_urls_keep_their_path() -> None:
    store = RedisNonceStore.from_url("unix:///run/redis/redis.sock?db=2&prefix=p:")
    settings = store.client.connection_pool.connection_kwargs
    assert settings["path"] == "/run/redis/redis.sock" and settings["db"] == 2 and store.prefix == "p:"
    assert settings["socket_timeout"] == 1.0


def test_aclose_closes_the_loops_connections(store: RedisNonceStore) -> None:
    async def run() -> None:
        await asyncio.gather(*(store.add_async(f"k close {i}", NOW + 300, NOW) for i in range(5)))
        await store.aclose()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()  # what earlier tests left behind is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(run())
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_an_unavailable_store_names_where_it_looked_never_the_password() -> None:
    store = open_nonce_store(f"redis://:s3cret-pass@127.0.0.1:{_closed_port()}/0?timeout=0.5")
    with pytest.raises(NonceStoreError) as failed:
        store.add("k n", NOW + 300, NOW)
    assert f"at 127.0.0.1:{store.client.connection_pool.connection_kwargs['port']} unavailable" in str(failed.value)
    assert "s3cret" not in str(failed.value)


def test_a_503_is_logged_at_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A refusal because a backend is down is the operator's business: WARNING, not INFO."""
    import logging

    from werkzeug.test import Client

    from datafold_auth.middleware import DatafoldAuthMiddleware

    key = Ed25519PrivateKey.generate()
    signer = df.Signer(key)
    registry = df.MemoryRegistry()
    registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id="alice"))
    down = open_nonce_store(f"redis://127.0.0.1:{_closed_port()}/0?timeout=0.5")

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    client = Client(DatafoldAuthMiddleware(app, df.Verifier(registry, down)))
    caplog.set_level(logging.INFO, logger="datafold_auth")
    request = df.Request.from_url("GET", "http://localhost/x")
    response = client.get("/x", headers=dict(signer.sign(request)))
    assert response.status_code == 503
    (record,) = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert record.levelno == logging.WARNING and "nonce_store_unavailable" in record.getMessage()
    assert "at 127.0.0.1:" in record.getMessage()
