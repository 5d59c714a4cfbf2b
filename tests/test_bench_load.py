"""Smoke test of bench/load.py: a tiny run against real uvicorn and gunicorn servers prints the whole table.

Checks the shape of what is printed and that no request failed; never timings
(speed goals live in bench/ and are read by people, not asserted).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .backends import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [f"{kind}-{label}" for kind in ("asgi", "wsgi") for label in ("bare", "ed25519", "redis", "memory")]


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

    # Overhead lines: one per server and nonce store, each with a ratio and a verdict.
    for name in ("asgi-redis", "asgi-memory", "wsgi-redis", "wsgi-memory"):
        line = next(line for line in lines if line.strip().startswith(name + " ") and "overhead" in line)
        assert "x in-server bare verify" in line and ("PASS" in line or "MISS" in line)
        assert quick["overhead"][name]["verdict"] in ("PASS", "MISS")
    assert any(line.startswith("bare Ed25519PublicKey.verify:") for line in lines)

    # The memory run: RSS of the master and both workers sampled, a verdict, no errors.
    assert quick["memory"]["errors"] == 0 and quick["memory"]["requests"] > 0
    memory = proc.stdout[proc.stdout.index("memory run:") :]
    for role in ("master", "worker", "total"):
        assert any(line.startswith(role) for line in memory.splitlines()), memory
    assert "memory: FLAT" in memory or "memory: GROWTH" in memory
    assert lines[-1] == "total errors: 0"
