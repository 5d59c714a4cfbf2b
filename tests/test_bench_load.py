"""Smoke test of bench/load.py: a tiny run against real uvicorn and gunicorn servers prints the whole table.

Checks the shape of what is printed and that no request failed; never timings
(speed goals live in bench/ and are read by people, not asserted). The
statistics helpers and the command line are checked without servers.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .backends import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [f"{kind}-{label}" for kind in ("asgi", "wsgi") for label in ("bare", "ed25519", "redis", "memory")]


def _load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_load", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def load() -> ModuleType:
    return _load_module()


def test_cycles_rotate_and_reverse_the_configuration_order(load: ModuleType) -> None:
    names = list("abcd")
    orders = ["".join(load.cycle_order(names, c)) for c in range(8)]
    assert orders[:4] == ["abcd", "dcba", "bcda", "adcb"]
    for name in names:
        positions = [order.index(name) for order in orders]
        assert sorted(positions) == [0, 0, 1, 1, 2, 2, 3, 3]  # every position twice over 2 x n cycles
        assert all(positions[i] + positions[i + 1] == 3 for i in range(0, 8, 2))  # same mean in each pair


def test_old_requests_and_rounds_map_to_cycles(load: ModuleType) -> None:
    args = load.parse_args(["--requests", "15000", "--rounds", "3"])
    assert (args.cycles, args.batch) == (45, 1000)
    assert load.parse_args(["--requests", "1500", "--batch", "500"]).cycles == 9  # rounds default 3
    assert load.parse_args([]).cycles == 20
    quick = load.parse_args(["--quick"])
    assert (quick.cycles, quick.batch, quick.memory_requests) == (2, 250, 2000)
    with pytest.raises(SystemExit):
        load.parse_args(["--cycles", "5", "--requests", "100"])


def test_quantiles_and_bootstrap(load: ModuleType) -> None:
    assert load.median([3.0, 1.0, 2.0]) == 2.0
    assert load.iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 4.0)
    assert load.median([1.0, math.inf, math.inf]) == math.inf
    assert load.ratio(1.0, 0.0) == math.inf and load.ratio(3.0, 2.0) == 1.5
    values = [10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 10.2, 9.8]
    lo, hi = load.bootstrap_ci(len(values), lambda idx: load.median([values[i] for i in idx]))
    assert 9.0 <= lo <= 10.0 <= hi <= 11.0
    assert load.bootstrap_ci(3, lambda idx: 7.0) == (7.0, 7.0)


def test_cpu_accounting_of_an_idle_then_busy_child(load: ModuleType) -> None:
    code = (
        "import sys, time\n"
        "print('ready', flush=True); sys.stdin.readline()\n"
        "end = time.thread_time() + 0.1\n"
        "while time.thread_time() < end: pass\n"
        "print('done', flush=True); sys.stdin.readline()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline() == "ready\n"
        before = load.cpu_sample([child.pid])  # the child waits on its stdin: idle
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        used = load.cpu_use(before, load.cpu_sample([child.pid]))
    finally:
        child.stdin.close()
        child.wait(timeout=10)
    assert child.pid in before.threads
    assert used.exited == 0 and used.ns == used.sched_ns
    assert 100_000_000 <= used.sched_ns < 1_000_000_000
    assert abs(used.clock_ns - used.sched_ns) < 1_000_000  # the same counter, read a moment apart
    assert abs(used.tick_ns - used.sched_ns) <= 30_000_000  # clock ticks: 10 ms each


def test_quick_load_run_prints_the_table_with_zero_errors(tmp_path: Path) -> None:
    require_postgres()
    require_redis()
    out = tmp_path / "load.json"
    command = [sys.executable, str(ROOT / "bench" / "load.py"), "--quick", "--json", str(out)]
    proc = subprocess.run(
        [*command, "--postgres", POSTGRES_URL, "--redis", REDIS_URL],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()

    # The with/without-middleware table: one row per configuration, zero errors in each.
    header = next(i for i, line in enumerate(lines) if line.startswith("config"))
    assert lines[header].split() == "config server nonce store requests errors rps p50 ms p99 ms CPU us/req".split()
    rows = {line.split()[0]: line.split() for line in lines[header + 1 : header + 1 + len(CONFIGS)]}
    assert sorted(rows) == sorted(CONFIGS)
    quick = json.loads(out.read_text())
    for name in CONFIGS:
        config = quick["configs"][name]
        assert config["requests"] == int(rows[name][-6]) > 0
        assert config["errors"] == int(rows[name][-5]) == 0, config["statuses"]
        assert config["p50_ms"] <= config["p99_ms"]
        assert config["cpu_us"] > 0
        assert len(config["cpu_us_per_cycle"]) == quick["cycles"] == 2
    assert quick["cpu_accounting"]["batches"] == 2 * len(CONFIGS)
    assert any(line.strip().startswith("cross-check over all") for line in lines)

    # Overhead lines: one per server and nonce store, each with a ratio and a verdict.
    for name in ("asgi-redis", "asgi-memory", "wsgi-redis", "wsgi-memory"):
        line = next(line for line in lines if line.strip().startswith(name + " ") and "overhead" in line)
        assert "x in-server bare verify" in line and ("PASS" in line or "MISS" in line)
        assert re.search(r"x in-server bare verify \[(-?[\d.]+|-?inf)-([\d.]+|inf)\]", line), line  # the 95% interval
        overhead = quick["overhead"][name]
        assert overhead["verdict"] in ("PASS", "MISS")
        assert overhead["interval"] in ("below", "above", "spans")
        assert len(overhead["ratio_ci95"]) == 2 and len(overhead["per_cycle_us"]) == 2
    assert any(line.startswith("bare Ed25519PublicKey.verify:") for line in lines)

    # The memory run: RSS of the master and both workers sampled, a verdict, no errors.
    assert quick["memory"]["errors"] == 0 and quick["memory"]["requests"] > 0
    memory = proc.stdout[proc.stdout.index("memory run:") :]
    for role in ("master", "worker", "total"):
        assert any(line.startswith(role) for line in memory.splitlines()), memory
    assert "memory: FLAT" in memory or "memory: GROWTH" in memory
    assert lines[-1] == "total errors: 0"
