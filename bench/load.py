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
(``--concurrency`` of them per server, kept open from one batch to the next).
Any answer other than 2xx, and any connection error, is an error.

The configurations run in ``--cycles`` short interleaved cycles: in each,
every configuration serves one batch of ``--batch`` requests, in an order
rotated every other cycle and reversed in between, so slow drifts in machine
speed hit all configurations alike. The server CPU of a batch is the on-CPU
time in ns of every thread of the server's processes
(``/proc/<pid>/task/<tid>/schedstat``, read just before and after it; the
per-process CPU clocks when a thread exited mid-batch), cross-checked against
the process CPU clocks and utime + stime from /proc/<pid>/stat.

Printed per configuration: requests, errors, requests per second, p50/p99
latency and the server CPU time per request. Per cycle and server, paired
differences: the overhead (``redis``/``memory`` minus ``bare``) and the bare
verify inside the server (``ed25519`` minus ``bare``); printed: their medians
over the cycles with interquartile ranges, and overhead / in-server verify as
the ratio of the medians (the verdict; target <= 1.3) with a 95% bootstrap
interval over the cycles, the median of the per-cycle ratios and the ratio of
the pooled totals. Also: bare ``Ed25519PublicKey.verify`` in a tight loop in
this process, timed between cycles, and the overhead against it.

Then a memory run: a fresh server (``--memory-config``, default the ASGI one
with Redis) serves ``--memory-requests`` (default 1,000,000) signed requests
while the resident set size of each of its processes is sampled every
second; printed: first / 25% / 50% / last / max RSS and the growth (mean of
the last quarter minus mean of the second quarter; least-squares slope over
the second half in KiB per 100,000 requests).

Run: ``python bench/load.py`` (full: a few minutes for the table, then about 30
for the memory run, on 2 cores),
``python bench/load.py --quick`` (seconds; what tests/test_bench_load.py runs).
Needs PostgreSQL and Redis (``--postgres``, ``--redis``; defaults are the
machine's, as for the tests).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import importlib.util
import json
import math
import multiprocessing
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
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
    """utime + stime of ``pids`` (seconds, in clock ticks: the memory run and a cross-check)."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / CLK_TCK


def thread_cpu_ns(pids: list[int]) -> dict[int, int]:
    """On-CPU time (ns) of every live thread of ``pids``: first field of /proc/<pid>/task/<tid>/schedstat."""
    out: dict[int, int] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                    out[int(tid)] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return out


def process_clock_ns(pids: list[int]) -> int:
    """CPU time (ns) of ``pids``, threads that exited included: each process's CPU-time clock
    (Linux clock id ``~pid << 3 | 2``, CPUCLOCK_SCHED: the same counter as schedstat's, summed by the kernel)."""
    total = 0
    for pid in pids:
        try:
            total += time.clock_gettime_ns(((~pid) << 3) | 2)
        except (OSError, OverflowError):
            pass
    return total


@dataclass
class CpuSample:
    threads: dict[int, int]
    clock_ns: int
    ticks: float


def cpu_sample(pids: list[int]) -> CpuSample:
    return CpuSample(thread_cpu_ns(pids), process_clock_ns(pids), cpu_seconds(pids))


@dataclass
class CpuUse:
    """Server CPU over one batch (ns)."""

    ns: int  # the figure used: schedstat deltas, or the process clocks when a thread exited mid-batch
    sched_ns: int
    clock_ns: int
    tick_ns: int
    exited: int  # threads that exited during the batch (schedstat lost their time)


def cpu_use(before: CpuSample, after: CpuSample) -> CpuUse:
    sched = sum(ns - before.threads.get(tid, 0) for tid, ns in after.threads.items())  # new threads: all of theirs
    exited = len(before.threads.keys() - after.threads.keys())
    clock = after.clock_ns - before.clock_ns
    ticks = round((after.ticks - before.ticks) * 1e9)
    if after.threads and not exited:
        used = sched
    else:  # no schedstat, or a thread took its time with it: the process clocks keep it
        used = clock if clock > 0 else ticks
    return CpuUse(used, sched, clock, ticks, exited)


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
    asgi_impl: tuple[str, ...] = ("--loop", "asyncio", "--http", "h11")
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def command(self) -> list[str]:
        py = sys.executable
        if self.kind == "asgi":
            return [
                py, "-m", "uvicorn", "--factory", "load_apps:asgi_app", "--app-dir", str(HERE),
                "--workers", "2", "--host", "127.0.0.1", "--port", str(self.port),
                "--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "300", *self.asgi_impl,
            ]  # fmt: skip
        return [
            py, "-m", "gunicorn", "--chdir", str(HERE), "-w", "2", "-k", "gthread", "--threads", "4",
            "--keep-alive", "300", "-b", f"127.0.0.1:{self.port}", "--log-level", "warning",
            "load_apps:wsgi_app()",
        ]  # fmt: skip

    def start(self, logdir: Path) -> None:
        self.port = free_port()
        self.log = logdir / f"{self.name}.log"
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, **self.env, "PYTHONPATH": path}
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
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.sent_at = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sock = transport.get_extra_info("socket")
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pool.conns.append(self)
        self.pool.send_next(self)

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
            self.pool.finish(self, False, "no content-length", close=True)
            return
        stop = head.find(b"\r\n", start + 2)
        length = int(head[start + 17 : stop if stop > 0 else len(head)])
        if len(self.buf) < end + 4 + length:
            return
        status = head[9:12].decode()
        close = b"\r\nconnection: close" in head
        self.buf = self.buf[end + 4 + length :]
        self.pool.finish(self, status.startswith("2"), status, close=close)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.lost(self)


class _Pool:
    """Up to ``concurrency`` keep-alive connections to one server, kept open from one batch to the next.

    ``run(total)`` sends ``total`` signed requests over them (one in flight per
    connection) and returns when all are answered; the connections then stay
    open, idle, for the next batch (``reconnect``: closed after every batch).
    A connection the server closed while idle is dropped and replaced.
    """

    def __init__(self, port: int, signer: df.Signer, concurrency: int, progress: Any) -> None:
        self.port = port
        self.authority = f"127.0.0.1:{port}"
        self.signer = signer
        self.concurrency = concurrency
        self.progress = progress
        self.conns: list[_Conn] = []
        self.connecting = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.total = 0
        self.issued = 0
        self.result = Result()
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
            conn.busy = False  # stays open, idle, for the next batch
            self.check_done()
            return
        self.issued += 1
        data = self.request_bytes()
        conn.busy = True
        conn.sent_at = self.clock()
        assert conn.transport is not None
        conn.transport.write(data)

    def finish(self, conn: _Conn, ok: bool, status: str, *, close: bool) -> None:
        if not conn.busy:  # nothing asked: not ours to count
            return
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
        if conn in self.conns:
            self.conns.remove(conn)
        if conn.busy:  # a request without an answer
            conn.busy = False
            r = self.result
            r.requests += 1
            r.errors += 1
            r.statuses["connection lost"] = r.statuses.get("connection lost", 0) + 1
            self.progress.value = r.requests
        if self.issued < self.total and self.done is not None and not self.done.done():
            task = asyncio.get_running_loop().create_task(self.connect())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        self.check_done()

    def check_done(self) -> None:
        if self.done is None or self.done.done() or self.issued < self.total or self.connecting:
            return
        if not any(c.busy for c in self.conns):
            self.done.set_result(None)

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.connecting += 1
            try:
                await loop.create_connection(lambda: _Conn(self), "127.0.0.1", self.port)
            except OSError:
                self.connecting -= 1
                self.issued += 1
                self.result.requests += 1
                self.result.errors += 1
                self.result.statuses["connect failed"] = self.result.statuses.get("connect failed", 0) + 1
                if self.issued >= self.total:
                    break
                await asyncio.sleep(0.05)
                continue
            self.connecting -= 1
            break
        self.check_done()

    def close(self) -> None:
        for conn in list(self.conns):
            conn.busy = False
            if conn.transport is not None:
                conn.transport.close()

    async def run(self, total: int, reconnect: bool = False) -> Result:
        for _ in range(3):  # let connections the server closed while idle report it first
            await asyncio.sleep(0)
        self.total, self.issued, self.result = total, 0, Result()
        self.progress.value = 0
        self.done = asyncio.get_running_loop().create_future()
        start = self.clock()
        for conn in list(self.conns):
            if not conn.busy:
                self.send_next(conn)
        while len(self.conns) + self.connecting < min(self.concurrency, total) and self.issued < total:
            await self.connect()
        self.check_done()
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
                    self.close()
                    break
            else:
                last, stalled = self.result.requests, 0
        self.result.seconds = self.clock() - start
        if reconnect:
            self.close()
        return self.result


def _generator_main(conn: Any, key_bytes: bytes, concurrency: int, reconnect: bool, progress: Any) -> None:
    """The load-generator process: runs the batches the bench process asks for, one at a time."""
    signer = df.Signer(Ed25519PrivateKey.from_private_bytes(key_bytes))
    loop = asyncio.new_event_loop()
    pools: dict[int, _Pool] = {}
    try:
        while True:
            try:
                command = conn.recv()
            except EOFError:
                break
            if command is None:
                break
            port, total = command
            pool = pools.setdefault(port, _Pool(port, signer, concurrency, progress))
            result = loop.run_until_complete(pool.run(total, reconnect))
            conn.send((result.requests, result.errors, result.seconds, result.latencies.tobytes(), result.statuses))
    finally:
        for pool in pools.values():
            pool.close()
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()
        conn.close()


class LoadGenerator:
    """A separate process that signs and sends requests; its connections to each server stay open across batches."""

    def __init__(self, key_bytes: bytes, concurrency: int, reconnect: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.progress = ctx.Value("q", 0, lock=False)
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_generator_main, args=(child, key_bytes, concurrency, reconnect, self.progress), daemon=True
        )
        self.proc.start()
        child.close()

    def run(self, port: int, total: int, on_tick: Any = None) -> Result:
        """Send ``total`` signed requests to ``port``; ``on_tick(done)`` is called about every second."""
        self.conn.send((port, total))
        while not self.conn.poll(1.0):
            if on_tick is not None:
                on_tick(self.progress.value)
            if not self.proc.is_alive() and not self.conn.poll(0):
                raise SystemExit(f"load generator died (exit {self.proc.exitcode})")
        requests, errors, seconds, raw, statuses = self.conn.recv()
        lat: array.array[float] = array.array("d")
        lat.frombytes(raw)
        return Result(requests, errors, seconds, lat, statuses)

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(timeout=10)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join()
        self.conn.close()


def generate(port: int, key_bytes: bytes, total: int, concurrency: int, on_tick: Any = None) -> Result:
    """Run ``total`` signed requests from a fresh generator process over fresh connections (the memory run).

    ``on_tick(done)`` is called about every second with the requests answered so far.
    """
    gen = LoadGenerator(key_bytes, concurrency)
    try:
        return gen.run(port, total, on_tick)
    finally:
        gen.close()


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
    clock = time.thread_time  # CPU time, like the servers'
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
    cpu_ns: int = 0
    sched_ns: int = 0
    clock_ns: int = 0
    tick_ns: int = 0
    batches: int = 0
    exited_batches: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    cycle_ns: list[int] = field(default_factory=list)
    cycle_requests: list[int] = field(default_factory=list)

    def add(self, result: Result, cpu: CpuUse) -> None:
        self.requests += result.requests
        self.errors += result.errors
        self.seconds += result.seconds
        self.cpu_ns += cpu.ns
        self.sched_ns += cpu.sched_ns
        self.clock_ns += cpu.clock_ns
        self.tick_ns += cpu.tick_ns
        self.batches += 1
        self.exited_batches += cpu.exited > 0
        self.latencies.extend(result.latencies)
        for k, v in result.statuses.items():
            self.statuses[k] = self.statuses.get(k, 0) + v
        self.cycle_ns.append(cpu.ns)
        self.cycle_requests.append(result.requests)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(q * len(data)))] * 1e3

    @property
    def cpu_us(self) -> float:
        return self.cpu_ns / self.requests / 1e3 if self.requests else float("nan")

    def cycle_us(self) -> list[float]:
        """CPU per request (us) in each cycle."""
        return [ns / n / 1e3 if n else float("nan") for ns, n in zip(self.cycle_ns, self.cycle_requests, strict=True)]

    def pooled_us(self, cycles: list[int]) -> float:
        """CPU per request (us) over the given cycles (with repeats: a bootstrap resample)."""
        n = sum(self.cycle_requests[c] for c in cycles)
        return sum(self.cycle_ns[c] for c in cycles) / n / 1e3 if n else float("nan")


def run_batch(server: Server, gen: LoadGenerator, n: int, totals: Totals) -> None:
    """``n`` measured requests to ``server``; its CPU read just before and after (all its threads, in ns)."""
    pids = server.pids()
    before = cpu_sample(pids)
    result = gen.run(server.port, n)
    after = cpu_sample(pids)
    totals.add(result, cpu_use(before, after))


def cycle_order(servers: list[Server], cycle: int) -> list[Server]:
    """Cycle 2m: the configurations rotated by m places; cycle 2m + 1: the same, reversed.

    Each pair of cycles puts every configuration at the same mean position (a
    linear drift in machine speed hits all alike), and over 2 x n cycles every
    configuration takes every position twice.
    """
    k = (cycle // 2) % len(servers)
    order = servers[k:] + servers[:k]
    return order[::-1] if cycle % 2 else order


# ------------------------------------------------------------------ statistics

BOOTSTRAP = 2000
"""Bootstrap resamples (of the cycles, with replacement) for the 95% intervals."""


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (``q`` in [0, 1]); copes with infinities."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = q * (len(data) - 1)
    lo = int(pos)
    frac = pos - lo
    if frac == 0 or lo + 1 >= len(data):
        return data[lo]
    a, b = data[lo], data[lo + 1]
    if a == b or math.isinf(a) or math.isinf(b):
        return a if frac < 0.5 else b
    return a + (b - a) * frac


def iqr(values: list[float]) -> tuple[float, float]:
    return quantile(values, 0.25), quantile(values, 0.75)


def median(values: list[float]) -> float:
    return quantile(values, 0.5)


def ratio(num: float, den: float) -> float:
    """``num / den``; infinite when ``den`` is not positive (a bare verify that did not show up)."""
    return num / den if den > 0 else math.inf


def bootstrap_ci(n: int, stat: Callable[[list[int]], float], resamples: int = BOOTSTRAP) -> tuple[float, float]:
    """95% percentile-bootstrap interval of ``stat(cycle indices)`` over resampled cycles (fixed seed)."""
    rng = random.Random(9421)  # noqa: S311 - resampling, not secrets
    values = [stat([rng.randrange(n) for _ in range(n)]) for _ in range(resamples)]
    return quantile(values, 0.025), quantile(values, 0.975)


def _span(lo_hi: tuple[float, float], fmt: str = ".0f") -> str:
    return f"{lo_hi[0]:{fmt}}-{lo_hi[1]:{fmt}}"


def analyse(totals: dict[str, Totals], kinds: list[str], tight_us: list[float]) -> dict[str, Any]:
    """Paired per-cycle statistics: overhead (mw - bare) and in-server verify (ed25519 - bare) per server."""
    out: dict[str, Any] = {"in_server_verify": {}, "overhead": {}}
    tight = median(tight_us)
    for kind in kinds:
        bare_t, ed_t = totals[f"{kind}-bare"], totals[f"{kind}-ed25519"]
        bare, ed = bare_t.cycle_us(), ed_t.cycle_us()
        n = len(bare)
        ver = [e - b for e, b in zip(ed, bare, strict=True)]
        out["in_server_verify"][kind] = {
            "us": median(ver), "iqr": iqr(ver), "ci95": bootstrap_ci(n, lambda idx: median([ver[i] for i in idx])),
            "pooled_us": ed_t.cpu_us - bare_t.cpu_us, "per_cycle_us": ver,
        }  # fmt: skip
        for nonces in ("redis", "memory"):
            mw_t = totals[f"{kind}-{nonces}"]
            mw = mw_t.cycle_us()
            over = [m - b for m, b in zip(mw, bare, strict=True)]
            per_cycle = [ratio(o, v) for o, v in zip(over, ver, strict=True)]

            def of_medians(idx: list[int], over: list[float] = over) -> float:
                return ratio(median([over[i] for i in idx]), median([ver[i] for i in idx]))

            def pooled(idx: list[int], mw_t: Totals = mw_t) -> float:
                base = bare_t.pooled_us(idx)
                return ratio(mw_t.pooled_us(idx) - base, ed_t.pooled_us(idx) - base)

            def median_over(idx: list[int], over: list[float] = over) -> float:
                return median([over[i] for i in idx])

            everything = list(range(n))
            value = of_medians(everything)
            ci = bootstrap_ci(n, of_medians)
            out["overhead"][f"{kind}-{nonces}"] = {
                "us": median(over), "iqr": iqr(over), "ci95_us": bootstrap_ci(n, median_over),
                "ratio": value, "ratio_ci95": ci,
                "ratio_per_cycle_median": median(per_cycle), "ratio_per_cycle_iqr": iqr(per_cycle),
                "ratio_pooled": pooled(everything), "ratio_pooled_ci95": bootstrap_ci(n, pooled),
                "ratio_tight_loop": ratio(median(over), tight),
                "verdict": "PASS" if 0 < value <= TARGET else "MISS",
                "interval": "below" if ci[1] <= TARGET else "above" if ci[0] > TARGET else "spans",
                "per_cycle_us": over,
            }  # fmt: skip
    return out


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


def _store(s: Server) -> str:
    return {"bare": "(no mw)", "bare-ed25519": "(no mw)+ed25519"}.get(
        s.mode, {"redis": "redis shared", "memory": "memory/worker"}.get(s.nonces, "")
    )


DESC = {"asgi": "uvicorn+FastAPI", "wsgi": "gunicorn+Flask"}
ASGI_IMPLS = {"h11": ("--loop", "asyncio", "--http", "h11"), "uvloop": ("--loop", "uvloop", "--http", "httptools")}
"""uvicorn's ``--loop`` and ``--http`` per ``--asgi`` choice (explicit: "auto" would pick whatever is installed)."""
ASGI_IMPL_NAMES = {"h11": "asyncio + h11", "uvloop": "uvloop + httptools"}


def report(
    servers: dict[str, Server], totals: dict[str, Totals], kinds: list[str], tight_us: list[float], head: str
) -> tuple[list[str], dict[str, Any]]:
    """The table, the CPU accounting check, the bare verify (tight loop and in-server) and the overhead verdicts."""
    stats = analyse(totals, kinds, tight_us)
    lines = [
        head,
        f"{'config':<14}{'server':<19}{'nonce store':<17}{'requests':>9}{'errors':>7}{'rps':>7}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'CPU us/req':>11}",
    ]
    for name, s in servers.items():
        t = totals[name]
        lines.append(
            f"{name:<14}{DESC[s.kind]:<19}{_store(s):<17}{t.requests:>9}{t.errors:>7}{t.requests / t.seconds:>7.0f}"
            f"{t.percentile(0.5):>8.2f}{t.percentile(0.99):>8.2f}{t.cpu_us:>11.0f}"
        )
    used = sum(t.cpu_ns for t in totals.values())
    sched = sum(t.sched_ns for t in totals.values())
    clock = sum(t.clock_ns for t in totals.values())
    ticks = sum(t.tick_ns for t in totals.values())
    batches = sum(t.batches for t in totals.values())
    exited = sum(t.exited_batches for t in totals.values())

    def dev(x: int) -> float:
        return (x / sched - 1) * 100 if sched else float("nan")

    lines += [
        "server CPU: on-CPU ns of every thread of master and workers (/proc/<pid>/task/<tid>/schedstat), "
        "read just before and after each batch",
        f"  cross-check over all {batches} batches: process CPU clocks {dev(clock):+.2f}%, utime+stime ticks "
        f"{dev(ticks):+.2f}% of the schedstat total; {exited} batch(es) with a thread exiting mid-batch "
        "(counted from the process clocks, which keep an exited thread's time)",
    ]
    tight = median(tight_us)
    lines.append(
        f"bare Ed25519PublicKey.verify: {tight:.1f} us CPU in a tight loop in this process (median of "
        f"{len(tight_us)} measurements between cycles, servers idle; IQR {_span(iqr(tight_us), '.1f')})"
    )
    for kind in kinds:
        v = stats["in_server_verify"][kind]
        lines.append(
            f"bare Ed25519PublicKey.verify inside {DESC[kind]}: {v['us']:.0f} us CPU/request ({kind}-ed25519 minus "
            f"{kind}-bare per cycle: median of {len(v['per_cycle_us'])}, IQR {_span(v['iqr'])}, "
            f"95% CI {_span(v['ci95'])}; pooled {v['pooled_us']:.0f})"
        )
    lines.append(
        "overhead per request = server CPU/request with minus without the middleware, paired per cycle; "
        f"verdict: median overhead / median in-server bare verify <= {TARGET} [95% bootstrap CI over cycles]"
    )
    outcome: dict[str, Any] = {
        "bare_verify_us": tight, "bare_verify_us_per_cycle": tight_us,
        "in_server_verify_us": {k: v["us"] for k, v in stats["in_server_verify"].items()},
        "in_server_verify": stats["in_server_verify"], "configs": {}, "overhead": {},
        "cpu_accounting": {
            "used_ns": used, "schedstat_ns": sched, "process_clock_ns": clock, "ticks_ns": ticks,
            "batches": batches, "batches_with_exited_threads": exited,
        },
    }  # fmt: skip
    for kind in kinds:
        bare = totals[f"{kind}-bare"]
        for nonces in ("redis", "memory"):
            name = f"{kind}-{nonces}"
            o = stats["overhead"][name]
            lat = totals[name].percentile(0.5) - bare.percentile(0.5)
            lines.append(
                f"  {name:<13} overhead {o['us']:>5.0f} us/req (IQR {_span(o['iqr'])}) = {o['ratio']:.2f} x in-server "
                f"bare verify [{_span(o['ratio_ci95'], '.2f')}]  {o['verdict']} (interval {o['interval']} {TARGET})"
            )
            lines.append(
                f"  {'':<13} per-cycle ratios: median {o['ratio_per_cycle_median']:.2f} (IQR "
                f"{_span(o['ratio_per_cycle_iqr'], '.2f')}); pooled over all cycles {o['ratio_pooled']:.2f} "
                f"[{_span(o['ratio_pooled_ci95'], '.2f')}]; {o['ratio_tight_loop']:.2f} x tight-loop verify; "
                f"p50 latency {lat:+.2f} ms"
            )
            outcome["overhead"][name] = {**o, "estimator": "median overhead / median in-server verify"}
    for name, t in totals.items():
        outcome["configs"][name] = {
            "requests": t.requests, "errors": t.errors, "rps": t.requests / t.seconds,
            "p50_ms": t.percentile(0.5), "p99_ms": t.percentile(0.99), "cpu_us": t.cpu_us,
            "cpu_us_per_cycle": t.cycle_us(), "statuses": t.statuses,
        }  # fmt: skip
    return lines, outcome


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the old ``--requests``/``--rounds`` become cycles of ``--batch`` requests."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, help="interleaved cycles over the configurations (default 20)")
    parser.add_argument("--batch", type=int, default=1000, help="measured requests per configuration and cycle")
    parser.add_argument(
        "--requests", type=int, help="old form: measured requests per configuration and round (default 20,000)"
    )
    parser.add_argument("--rounds", type=int, help="old form: rounds (default 3); cycles = requests x rounds / batch")
    parser.add_argument("--warmup", type=int, default=1000, help="unmeasured requests per configuration first")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections per server")
    parser.add_argument(
        "--reconnect", action="store_true", help="close the connections after every batch (default: kept open)"
    )

    parser.add_argument("--memory-requests", type=int, default=1_000_000, help="requests of the memory run (0: none)")
    parser.add_argument("--memory-config", default="asgi-redis", help="configuration of the memory run")
    parser.add_argument("--servers", default="asgi,wsgi", help="which servers: asgi, wsgi or both")
    parser.add_argument(
        "--postgres", default=os.environ.get("DATAFOLD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--redis", default=os.environ.get("DATAFOLD_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    parser.add_argument(
        "--asgi",
        choices=sorted(ASGI_IMPLS),
        default="h11",
        help="uvicorn's event loop and HTTP parser: h11 (asyncio + h11, what the project installs; default) or "
        "uvloop (uvloop + httptools, as uvicorn[standard] picks them; pip install uvloop httptools first)",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny run (smoke test): 2 cycles x 250 requests, 50 warm-up, 2000 in the memory run",
    )
    args = parser.parse_args(argv)
    old_form = args.requests is not None or args.rounds is not None
    if old_form and args.cycles is not None:
        parser.error("give --cycles (with --batch) or the old --requests/--rounds, not both")
    if args.batch < 1 or (args.cycles is not None and args.cycles < 1):
        parser.error("--cycles and --batch must be at least 1")
    if old_form:  # the same requests per configuration as before, in cycles of --batch
        total = (args.requests if args.requests is not None else 20_000) * (args.rounds if args.rounds else 3)
        args.cycles = max(1, math.ceil(total / args.batch))
    elif args.cycles is None:
        args.cycles = 20
    if args.quick:
        args.cycles, args.batch, args.warmup, args.memory_requests = 2, 250, 50, 2000
    if args.memory_config not in ("asgi-redis", "asgi-memory", "wsgi-redis", "wsgi-memory"):
        parser.error("--memory-config is asgi-redis, asgi-memory, wsgi-redis or wsgi-memory")
    if args.asgi == "uvloop" and not all(importlib.util.find_spec(m) for m in ("uvloop", "httptools")):
        parser.error("--asgi uvloop needs uvloop and httptools: pip install uvloop httptools")
    args.kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    if not args.kinds or not set(args.kinds) <= {"asgi", "wsgi"}:
        parser.error("--servers takes asgi, wsgi or asgi,wsgi")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kinds: list[str] = args.kinds
    # Stop the servers and clean up (Redis keys, PostgreSQL schema) on SIGTERM too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

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
            return Server(f"{kind}-{label}", kind, mode, label if mode == "verify" else "-", env, ASGI_IMPLS[args.asgi])

        for kind in kinds:
            for label in CONFIGS:
                s = make(kind, label)
                servers[s.name] = s
        for s in servers.values():
            s.start(tmp)
        for s in servers.values():
            s.wait_ready()

        gen = LoadGenerator(key_bytes, args.concurrency, args.reconnect)
        stack.callback(gen.close)
        totals = {name: Totals() for name in servers}
        t_start = time.monotonic()
        if args.warmup:
            for s in servers.values():
                gen.run(s.port, args.warmup)
        tight_us = [bare_verify_us()]
        order = list(servers.values())
        for cycle in range(args.cycles):
            for s in cycle_order(order, cycle):
                run_batch(s, gen, args.batch, totals[s.name])
            tight_us.append(bare_verify_us())  # between cycles, the servers idle
            print(f"cycle {cycle + 1}/{args.cycles} done ({time.monotonic() - t_start:.0f} s)", file=sys.stderr)
        gen.close()
        head = (
            f"load: {args.cycles} cycle(s) x {args.batch} signed POST {PATH} per configuration (order rotated every "
            f"other cycle, reversed in between), {args.concurrency} keep-alive connections per server "
            f"({'reopened every batch' if args.reconnect else 'kept open across cycles'}) from one generator "
            f"process, 2 workers per server, uvicorn on {ASGI_IMPL_NAMES[args.asgi]} "
            f"({time.monotonic() - t_start:.0f} s)"
        )
        lines, outcome = report(servers, totals, kinds, tight_us, head)
        outcome["cycles"], outcome["batch"] = args.cycles, args.batch
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
