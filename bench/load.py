"""Load test: the example apps under real servers, with and without the middleware, in one run.

Servers (each with 2 worker processes, on loopback):

* ASGI: uvicorn serving examples/shared_app.py (FastAPI), registry in
  PostgreSQL (a fresh schema) behind the verifier's cache;
* WSGI: gunicorn (gthread workers) serving examples/flask_app.py (Flask),
  registry in a SQLite file behind the cache.

Each runs in four configurations (bench/load_apps.py): ``bare`` (the same app,
the middleware replaced by a stub that sets a fixed identity), ``ed25519``
(``bare`` plus one bare ``Ed25519PublicKey.verify`` per request: the price of
the signature check alone, inside the server), ``redis`` (the middleware with
the Redis nonce store all workers share: the documented multi-worker
deployment) and ``memory`` (the middleware with one in-memory nonce store per
worker: not replay-safe across workers, shown to price the shared store). The
client key is registered before the run.

A separate load-generator process signs every request with
:class:`datafold_auth.Signer` (``POST /api/items`` with a small JSON body,
fresh nonce, ``created`` now) and sends it over keep-alive connections
(``--concurrency`` of them). Any answer other than 2xx, and any connection
error, is an error. The configurations are run in interleaved rounds, so
machine noise hits them alike.

Printed per configuration: requests, errors, requests per second, p50/p99
latency and the server CPU time per request (utime + stime of the server's
master and worker processes from /proc, read before and after the measured
requests). The overhead per request is the CPU per request with minus without
the middleware, compared with bare ``Ed25519PublicKey.verify`` measured in the
same run, both in a tight loop here and inside each server (``ed25519`` minus
``bare``; the verdict uses this one, as both sides are then server CPU under
the same conditions). Target: overhead <= 1.3 x bare verify.

Then a memory run: a fresh server (``--memory-config``, default the ASGI one
with Redis) serves ``--memory-requests`` (default 1,000,000) signed requests
while the resident set size of each of its processes is sampled every
second; printed: first / 25% / 50% / last / max RSS and the growth (mean of
the last quarter minus mean of the second quarter; least-squares slope over
the second half in KiB per 100,000 requests).

Run: ``python bench/load.py`` (full: about 40 minutes on 2 cores),
``python bench/load.py --quick`` (seconds; what tests/test_bench_load.py runs).
Needs PostgreSQL and Redis (``--postgres``, ``--redis``; defaults are the
machine's, as for the tests).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import multiprocessing
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

import datafold_auth as df  # noqa: E402

BODY = b'{"name": "widget", "quantity": 3, "tags": ["a", "b"]}'
PATH = "/api/items"
CLIENT_ID = "load-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CONFIGS = ("bare", "ed25519", "redis", "memory")
"""Per server: no middleware; no middleware + one bare Ed25519 verify; middleware + Redis / per-worker nonces."""
TARGET = 1.3
"""Overhead per request (server CPU with minus without the middleware) over bare verify."""


# ------------------------------------------------------------------ processes


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def process_tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (seconds)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One server (master + 2 workers) serving one configuration."""

    name: str
    kind: str  # "asgi" or "wsgi"
    mode: str  # "bare" or "verify"
    nonces: str  # "-", "redis" or "memory"
    env: dict[str, str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def command(self) -> list[str]:
        py = sys.executable
        if self.kind == "asgi":
            return [
                py, "-m", "uvicorn", "--factory", "load_apps:asgi_app", "--app-dir", str(HERE),
                "--workers", "2", "--host", "127.0.0.1", "--port", str(self.port),
                "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
        return [
            py, "-m", "gunicorn", "--chdir", str(HERE), "-w", "2", "-k", "gthread", "--threads", "4",
            "--keep-alive", "60", "-b", f"127.0.0.1:{self.port}", "--log-level", "warning",
            "load_apps:wsgi_app()",
        ]  # fmt: skip

    def start(self, logdir: Path) -> None:
        self.port = free_port()
        self.log = logdir / f"{self.name}.log"
        env = {**os.environ, **self.env, "PYTHONPATH": str(ROOT)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own fixed command line
                self.command(), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name}: server exited ({self.proc.returncode}); log:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as answer:
                    if answer.status == 200 and len(self.pids()) >= 3:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{self.name}: not ready after {timeout:.0f} s; log:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log and self.log.exists() else ""

    def pids(self) -> list[int]:
        assert self.proc is not None
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        tree = self.pids()
        self.proc.send_signal(signal.SIGTERM)  # uvicorn and gunicorn stop their workers gracefully
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # our own session, started above
            self.proc.wait()
        for pid in tree:  # workers that outlived their master (they should not)
            if _stat(pid) is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# ------------------------------------------------------------------ load generator


@dataclass
class Result:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: array.array[float] = field(default_factory=lambda: array.array("d"))
    statuses: dict[str, int] = field(default_factory=dict)


_QUICKACK = getattr(socket, "TCP_QUICKACK", socket.TCP_NODELAY)


class _Conn(asyncio.Protocol):
    def __init__(self, gen: _Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.sent_at = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sock = transport.get_extra_info("socket")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.gen.send_next(self)

    def data_received(self, data: bytes) -> None:
        # Acknowledge at once: uvicorn (asyncio, without uvloop) leaves Nagle on for its
        # sockets and writes the head and body of an answer separately, so a delayed ACK
        # here would hold every answer's body back 40 ms.
        self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            self.gen.finish(self, False, "no content-length", close=True)
            return
        stop = head.find(b"\r\n", start + 2)
        length = int(head[start + 17 : stop if stop > 0 else len(head)])
        if len(self.buf) < end + 4 + length:
            return
        status = head[9:12].decode()
        close = b"\r\nconnection: close" in head
        self.buf = self.buf[end + 4 + length :]
        self.gen.finish(self, status.startswith("2"), status, close=close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.lost(self)


class _Generator:
    def __init__(self, port: int, key: Ed25519PrivateKey, total: int, concurrency: int, progress: Any) -> None:
        self.port = port
        self.authority = f"127.0.0.1:{port}"
        self.signer = df.Signer(key)
        self.total = total
        self.concurrency = concurrency
        self.progress = progress
        self.issued = 0
        self.result = Result()
        self.open = 0
        self.done: asyncio.Future[None] | None = None
        self.clock = time.perf_counter
        self.prefix = (
            f"POST {PATH} HTTP/1.1\r\nHost: {self.authority}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n"
        ).encode()

    def request_bytes(self) -> bytes:
        req = df.Request(
            method="POST",
            authority=self.authority,
            path=PATH,
            headers=[("Content-Type", "application/json")],
            body=BODY,
            scheme="http",
        )
        added = self.signer.sign(req)  # fresh nonce, created = now
        return self.prefix + "".join(f"{k}: {v}\r\n" for k, v in added).encode() + b"\r\n" + BODY

    def send_next(self, conn: _Conn) -> None:
        if self.issued >= self.total:
            conn.busy = False
            assert conn.transport is not None
            conn.transport.close()
            return
        self.issued += 1
        data = self.request_bytes()
        conn.busy = True
        conn.sent_at = self.clock()
        assert conn.transport is not None
        conn.transport.write(data)

    def finish(self, conn: _Conn, ok: bool, status: str, *, close: bool) -> None:
        r = self.result
        r.latencies.append(self.clock() - conn.sent_at)
        r.requests += 1
        if not ok:
            r.errors += 1
            r.statuses[status] = r.statuses.get(status, 0) + 1
        self.progress.value = r.requests
        conn.busy = False
        if close:
            assert conn.transport is not None
            conn.transport.close()  # lost() reconnects
            return
        self.send_next(conn)

    def lost(self, conn: _Conn) -> None:
        self.open -= 1
        if conn.busy:  # a request without an answer
            r = self.result
            r.requests += 1
            r.errors += 1
            r.statuses["connection lost"] = r.statuses.get("connection lost", 0) + 1
            self.progress.value = r.requests
        if self.issued < self.total:
            asyncio.get_running_loop().create_task(self.connect())
        elif self.open == 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.open += 1
            await loop.create_connection(lambda: _Conn(self), "127.0.0.1", self.port)
        except OSError:
            self.open -= 1
            self.issued += 1
            self.result.requests += 1
            self.result.errors += 1
            self.result.statuses["connect failed"] = self.result.statuses.get("connect failed", 0) + 1
            await asyncio.sleep(0.05)
            if self.issued < self.total:
                await self.connect()
            elif self.open == 0 and self.done is not None and not self.done.done():
                self.done.set_result(None)

    async def run(self) -> Result:
        self.done = asyncio.get_running_loop().create_future()
        start = self.clock()
        for _ in range(min(self.concurrency, self.total)):
            await self.connect()
        last, stalled = -1, 0.0
        while not self.done.done():
            await asyncio.wait([self.done], timeout=1.0)
            if self.result.requests == last:
                stalled += 1
                if stalled >= 30:  # nothing answered for 30 s: count the rest as errors
                    missing = self.total - self.result.requests
                    self.result.requests += missing
                    self.result.errors += missing
                    self.result.statuses["timeout"] = missing
                    break
            else:
                last, stalled = self.result.requests, 0
        self.result.seconds = self.clock() - start
        return self.result


def _generator_main(conn: Any, port: int, key_bytes: bytes, total: int, concurrency: int, progress: Any) -> None:
    key = Ed25519PrivateKey.from_private_bytes(key_bytes)
    result = asyncio.run(_Generator(port, key, total, concurrency, progress).run())
    conn.send((result.requests, result.errors, result.seconds, result.latencies.tobytes(), result.statuses))
    conn.close()


def generate(port: int, key_bytes: bytes, total: int, concurrency: int, on_tick: Any = None) -> Result:
    """Run ``total`` signed requests from a separate process.

    ``on_tick(done)`` is called about every second with the requests answered so far.
    """
    ctx = multiprocessing.get_context("spawn")
    progress = ctx.Value("q", 0, lock=False)
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_generator_main, args=(child, port, key_bytes, total, concurrency, progress))
    proc.start()
    child.close()
    try:
        while not parent.poll(1.0):
            if on_tick is not None:
                on_tick(progress.value)
            if not proc.is_alive() and not parent.poll(0):
                raise SystemExit(f"load generator died (exit {proc.exitcode})")
        requests, errors, seconds, raw, statuses = parent.recv()
    finally:
        if proc.is_alive() and proc.pid is not None:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    lat: array.array[float] = array.array("d")
    lat.frombytes(raw)
    return Result(requests, errors, seconds, lat, statuses)


# ------------------------------------------------------------------ measuring


def bare_verify_us(rounds: int = 9, per_round: int = 300) -> float:
    """Median per-round mean CPU time of bare ``Ed25519PublicKey.verify`` over a signature base like the load's (us)."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    names = ("@method", "@authority", "@path", "@query", "content-digest", "content-type")
    components: list[tuple[str, dict[str, object]]] = [(n, {}) for n in names]
    bases, sigs = [], []
    for _ in range(per_round):
        req = df.Request("POST", "127.0.0.1:8000", PATH, headers=[("Content-Type", "application/json")], body=BODY)
        added = dict(df.Signer(key).sign(req))
        params = added["Signature-Input"].split("=", 1)[1]
        bases.append(df.signature_base(req, components, params))
        sigs.append(key.sign(bases[-1]))
    means = []
    clock = time.thread_time  # CPU time, like the servers' utime + stime
    for _ in range(rounds):
        t0 = clock()
        for base, sig in zip(bases, sigs, strict=True):
            public.verify(sig, base)
        means.append((clock() - t0) / per_round)
    return statistics.median(means) * 1e6


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def add(self, result: Result, cpu: float) -> None:
        self.requests += result.requests
        self.errors += result.errors
        self.seconds += result.seconds
        self.cpu += cpu
        self.latencies.extend(result.latencies)
        for k, v in result.statuses.items():
            self.statuses[k] = self.statuses.get(k, 0) + v

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1e3

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.requests * 1e6 if self.requests else float("nan")


def run_config(server: Server, key_bytes: bytes, n: int, warmup: int, concurrency: int, totals: Totals) -> None:
    if warmup:
        generate(server.port, key_bytes, warmup, concurrency)
    pids = server.pids()
    before = cpu_seconds(pids)
    result = generate(server.port, key_bytes, n, concurrency)
    after = cpu_seconds(server.pids())
    totals.add(result, after - before)


# ------------------------------------------------------------------ backends


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    import psycopg

    name = f"dfload_{secrets.token_hex(5)}"
    try:
        yield name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@contextmanager
def redis_prefix(url: str) -> Iterator[str]:
    import redis

    prefix = f"dfload:{secrets.token_hex(5)}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(url)
        batch = []
        for key in client.scan_iter(match=prefix + "*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
        client.close()


def register_key(registry_url: str, key: Ed25519PrivateKey) -> None:
    registry = df.open_registry(registry_url)
    try:
        registry.register(df.KeyRecord.for_public_key(key.public_key(), client_id=CLIENT_ID, scopes=("read", "write")))
    finally:
        close = getattr(registry, "close", None)
        if callable(close):
            close()


# ------------------------------------------------------------------ report


def memory_run(server: Server, key_bytes: bytes, n: int, concurrency: int) -> dict[str, Any]:
    samples: list[tuple[int, dict[int, int]]] = []
    roles: dict[int, str] = {}
    assert server.proc is not None
    master = server.proc.pid

    def tick(done: int) -> None:
        pids = server.pids()
        for pid in pids:
            if pid not in roles:
                roles[pid] = "master" if pid == master else _role(pid, len(roles))
        samples.append((done, {pid: rss_bytes(pid) for pid in pids}))

    tick(0)
    before = cpu_seconds(server.pids())
    result = generate(server.port, key_bytes, n, concurrency, on_tick=tick)
    tick(result.requests)
    cpu = cpu_seconds(server.pids()) - before
    return {"result": result, "samples": samples, "roles": roles, "cpu": cpu}


def _role(pid: int, index: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        cmdline = b""
    return "mp-helper" if b"resource_tracker" in cmdline else f"worker{index}"


def _mib(b: float) -> str:
    return f"{b / 1048576:.1f}"


def memory_table(run: dict[str, Any]) -> list[str]:
    samples: list[tuple[int, dict[int, int]]] = run["samples"]
    roles: dict[int, str] = run["roles"]
    result: Result = run["result"]
    n = max(result.requests, 1)
    lines = [
        f"memory run: {result.requests} requests, {result.errors} errors, {result.requests / result.seconds:.0f} rps, "
        f"{len(samples)} RSS samples (every ~1 s), server CPU {run['cpu'] / n * 1e6:.0f} us/request",
        f"{'process':<10}{'first MiB':>10}{'25% MiB':>10}{'50% MiB':>10}{'last MiB':>10}{'max MiB':>10}"
        f"{'Q4-Q2 KiB':>11}{'slope KiB/100k':>16}  verdict",
    ]
    series: dict[str, list[tuple[int, int]]] = {}
    for done, rss in samples:
        for pid, value in rss.items():
            if value:
                series.setdefault(roles.get(pid, str(pid)), []).append((done, value))
        series.setdefault("total", []).append((done, sum(rss.values())))
    verdicts = []
    for role in sorted(series, key=lambda r: (r == "total", r)):
        points = series[role]

        def at(frac: float, points: list[tuple[int, int]] = points) -> int:
            return next((v for d, v in points if d >= frac * n), points[-1][1])

        def mean(lo: float, hi: float, points: list[tuple[int, int]] = points) -> float:
            vals = [v for d, v in points if lo * n <= d <= hi * n]
            return statistics.fmean(vals) if vals else float("nan")

        growth = mean(0.75, 1.0) - mean(0.25, 0.5)
        half = [(d, v) for d, v in points if d >= 0.5 * n]
        slope = 0.0
        if len(half) >= 3 and len({d for d, _ in half}) > 1:
            slope = statistics.linear_regression([d for d, _ in half], [v for _, v in half]).slope
        q2 = mean(0.25, 0.5)
        flat = growth <= max(1048576, 0.01 * q2)
        verdicts.append(flat)
        lines.append(
            f"{role:<10}{_mib(points[0][1]):>10}{_mib(at(0.25)):>10}{_mib(at(0.5)):>10}{_mib(points[-1][1]):>10}"
            f"{_mib(max(v for _, v in points)):>10}{growth / 1024:>11.0f}{slope * 100_000 / 1024:>16.1f}  "
            f"{'flat' if flat else 'GROWS'}"
        )
    lines.append("memory: " + ("FLAT" if all(verdicts) else "GROWTH") + " (flat: Q4 mean - Q2 mean <= max(1 MiB, 1%))")
    return lines


def stop_all(servers: dict[str, Server]) -> None:
    for server in list(servers.values()):
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="measured requests per configuration and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the configurations")
    parser.add_argument("--warmup", type=int, default=1000, help="unmeasured requests before each measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections of the load generator")
    parser.add_argument("--memory-requests", type=int, default=1_000_000, help="requests of the memory run (0: none)")
    parser.add_argument("--memory-config", default="asgi-redis", help="configuration of the memory run")
    parser.add_argument("--servers", default="asgi,wsgi", help="which servers: asgi, wsgi or both")
    parser.add_argument(
        "--postgres", default=os.environ.get("DATAFOLD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--redis", default=os.environ.get("DATAFOLD_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--quick", action="store_true", help="tiny run (smoke test): 500 requests, 1 round, 2000 in the memory run"
    )
    args = parser.parse_args(argv)
    # Stop the servers and clean up (Redis keys, PostgreSQL schema) on SIGTERM too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.requests, args.rounds, args.warmup, args.memory_requests = 500, 1, 50, 2000
    if args.memory_config not in ("asgi-redis", "asgi-memory", "wsgi-redis", "wsgi-memory"):
        parser.error("--memory-config is asgi-redis, asgi-memory, wsgi-redis or wsgi-memory")
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if not kinds or not set(kinds) <= {"asgi", "wsgi"}:
        parser.error("--servers takes asgi, wsgi or asgi,wsgi")

    key = Ed25519PrivateKey.generate()  # a throwaway key for this run
    from cryptography.hazmat.primitives import serialization

    key_bytes = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    servers: dict[str, Server] = {}
    with ExitStack() as stack:
        schema = stack.enter_context(postgres_schema(args.postgres))
        prefix = stack.enter_context(redis_prefix(args.redis))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dfload-")))
        stack.callback(stop_all, servers)  # first thing on the way out
        sep = "&" if "?" in args.redis else "?"
        redis_url = f"{args.redis}{sep}prefix={prefix}"
        pg_url = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
        sqlite_path = tmp / "keys.db"
        registries = {"asgi": pg_url, "wsgi": str(sqlite_path)}
        if "asgi" in kinds or args.memory_config.startswith("asgi"):
            register_key(pg_url, key)
        if "wsgi" in kinds or args.memory_config.startswith("wsgi"):
            register_key(f"sqlite:///{sqlite_path}", key)

        def make(kind: str, label: str) -> Server:
            mode = {"bare": "bare", "ed25519": "bare-ed25519"}.get(label, "verify")
            env = {
                "DF_LOAD_MODE": mode,
                "DF_LOAD_REGISTRY": registries[kind],
                "DF_LOAD_NONCES": redis_url if label == "redis" else "memory://",
            }
            return Server(f"{kind}-{label}", kind, mode, label if mode == "verify" else "-", env)

        for kind in kinds:
            for label in CONFIGS:
                s = make(kind, label)
                servers[s.name] = s
        for s in servers.values():
            s.start(tmp)
        for s in servers.values():
            s.wait_ready()

        verify_us = [bare_verify_us()]
        totals = {name: Totals() for name in servers}
        t_start = time.monotonic()
        for r in range(args.rounds):
            order = list(servers.values())
            if r % 2:
                order.reverse()
            for s in order:
                warmup = args.warmup if r == 0 else args.warmup // 4
                run_config(s, key_bytes, args.requests, warmup, args.concurrency, totals[s.name])
            verify_us.append(bare_verify_us())
        bare_us = statistics.median(verify_us)
        lines = [
            f"load: {args.rounds} round(s) x {args.requests} signed POST {PATH} per configuration, "
            f"{args.concurrency} keep-alive connections from one generator process, 2 workers per server "
            f"({time.monotonic() - t_start:.0f} s)",
            f"{'config':<14}{'server':<19}{'nonce store':<17}{'requests':>9}{'errors':>7}{'rps':>7}"
            f"{'p50 ms':>8}{'p99 ms':>8}{'CPU us/req':>11}",
        ]
        desc = {"asgi": "uvicorn+FastAPI", "wsgi": "gunicorn+Flask"}
        for name, s in servers.items():
            t = totals[name]
            store = {"bare": "(no mw)", "bare-ed25519": "(no mw)+ed25519"}.get(
                s.mode, {"redis": "redis shared", "memory": "memory/worker"}.get(s.nonces, "")
            )
            lines.append(
                f"{name:<14}{desc[s.kind]:<19}{store:<17}{t.requests:>9}{t.errors:>7}{t.requests / t.seconds:>7.0f}"
                f"{t.percentile(0.5):>8.2f}{t.percentile(0.99):>8.2f}{t.cpu_us:>11.0f}"
            )
        lines.append(
            f"bare Ed25519PublicKey.verify: {bare_us:.1f} us CPU in a tight loop in this process "
            f"(median of {len(verify_us)} measurements spread over the run)"
        )
        in_server = {kind: totals[f"{kind}-ed25519"].cpu_us - totals[f"{kind}-bare"].cpu_us for kind in kinds}
        for kind in kinds:
            lines.append(
                f"bare Ed25519PublicKey.verify inside {desc[kind]}: {in_server[kind]:.0f} us CPU/request "
                f"({kind}-ed25519 minus {kind}-bare)"
            )
        lines.append(
            "overhead per request = server CPU/request with minus without the middleware; "
            f"target <= {TARGET} x bare verify (verdict on the in-server bare verify)"
        )
        outcome: dict[str, Any] = {
            "bare_verify_us": bare_us, "in_server_verify_us": in_server, "configs": {}, "overhead": {},
        }  # fmt: skip
        for kind in kinds:
            bare = totals[f"{kind}-bare"]
            for nonces in ("redis", "memory"):
                t = totals[f"{kind}-{nonces}"]
                over = t.cpu_us - bare.cpu_us
                ratio, ratio_loop = over / in_server[kind], over / bare_us
                lat = t.percentile(0.5) - bare.percentile(0.5)
                verdict = "PASS" if 0 < ratio <= TARGET else "MISS"
                lines.append(
                    f"  {kind}-{nonces:<8} overhead {over:>5.0f} us/req = {ratio:.2f} x in-server bare verify"
                    f"  {verdict}  ({ratio_loop:.2f} x tight-loop verify; p50 latency {lat:+.2f} ms)"
                )
                outcome["overhead"][f"{kind}-{nonces}"] = {
                    "us": over, "ratio": ratio, "ratio_tight_loop": ratio_loop, "verdict": verdict,
                }  # fmt: skip
        for name, t in totals.items():
            outcome["configs"][name] = {
                "requests": t.requests, "errors": t.errors, "rps": t.requests / t.seconds,
                "p50_ms": t.percentile(0.5), "p99_ms": t.percentile(0.99), "cpu_us": t.cpu_us,
                "statuses": t.statuses,
            }  # fmt: skip
        errors = sum(t.errors for t in totals.values())
        print("\n".join(lines), flush=True)
        if errors:
            print(f"ERRORS: {errors} ({ {n: t.statuses for n, t in totals.items() if t.statuses} })", flush=True)

        if args.memory_requests > 0:
            for s in servers.values():
                s.stop()
            kind, _, label = args.memory_config.partition("-")
            mem = make(kind, label)
            mem.name += "-memrun"
            servers[mem.name] = mem
            mem.start(tmp)
            mem.wait_ready()
            print(f"memory run on {mem.name}: {args.memory_requests} requests ...", flush=True)
            run = memory_run(mem, key_bytes, args.memory_requests, args.concurrency)
            mlines = memory_table(run)
            print("\n".join(mlines), flush=True)
            errors += run["result"].errors
            outcome["memory"] = {"lines": mlines, "requests": run["result"].requests, "errors": run["result"].errors}
        print(f"total errors: {errors}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(outcome, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
