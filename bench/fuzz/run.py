"""Run the atheris fuzz targets of this folder, each for a time budget.

Usage::

    python bench/fuzz/run.py --seconds 600 [--workdir bench/fuzz/work] [TARGET ...]
    python bench/fuzz/run.py --list
    python bench/fuzz/run.py --reproduce TARGET CRASH-FILE

For each target (default: all, one after the other) the runner writes the
target's seed corpus (``seeds()``, made with the project's own signers and
backup writers) into ``WORKDIR/corpus/TARGET/``, runs ``_worker.py`` (atheris
over libFuzzer) on that corpus with ``-max_total_time``, keeps the log in
``WORKDIR/logs/`` and any crashing input in ``WORKDIR/crashes/TARGET/``, and
prints one line per target: seconds, executions, corpus size, findings. The
exit status is 1 if any target found something (or failed to run).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = sorted(p.stem.removeprefix("target_") for p in HERE.glob("target_*.py"))
_EXECS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


def write_seeds(target: str, corpus: Path) -> int:
    """Write the target's seeds into ``corpus`` (file name: SHA-1 of the content, as libFuzzer does)."""
    sys.path.insert(0, str(HERE))
    module = importlib.import_module(f"target_{target}")
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = module.seeds()
    for seed in seeds:
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)  # noqa: S324 - a file name, not security
    return len(seeds)


def run_target(target: str, seconds: int, workdir: Path, extra: list[str]) -> dict[str, object]:
    corpus, crashes, logs = workdir / "corpus" / target, workdir / "crashes" / target, workdir / "logs"
    crashes.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    seeded = write_seeds(target, corpus)
    before = set(crashes.iterdir())
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    log = logs / f"{target}-{started.replace(':', '')}.log"
    command = [
        sys.executable,
        str(HERE / "_worker.py"),
        target,
        str(corpus),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={crashes}/",
        "-timeout=30",
        "-rss_limit_mb=3072",
        "-max_len=8192",
        "-print_final_stats=1",
        *extra,
    ]
    t0 = time.monotonic()
    with log.open("wb") as out:
        rc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False).returncode  # noqa: S603
    wall = time.monotonic() - t0
    text = log.read_text("utf-8", "replace")
    execs = _EXECS.findall(text) or [m[0] for m in _DONE.findall(text)]
    findings = sorted(str(p) for p in set(crashes.iterdir()) - before)
    return {
        "target": target,
        "started": started,
        "seconds": round(wall),
        "executions": int(execs[-1]) if execs else None,
        "seeds": seeded,
        "corpus": sum(1 for _ in corpus.iterdir()),
        "findings": findings,
        "exit": rc,
        "log": str(log),
    }


def runs_table(workdir: Path) -> str:
    """The runs recorded in ``workdir/summary-*.json`` as a Markdown table, oldest first."""
    rows = [r for path in sorted(workdir.glob("summary-*.json")) for r in json.loads(path.read_text())]
    lines = ["| target | start (UTC) | seconds | executions | corpus | findings |", "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["started"], r["target"])):
        found = ", ".join(Path(f).name for f in r["findings"]) or "none"
        lines.append(
            f"| `{r['target']}` | {r['started']} | {r['seconds']} | {r['executions']} | {r['corpus']} | {found} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"targets (default: all): {', '.join(TARGETS)}")
    parser.add_argument("--seconds", type=int, default=60, help="time budget per target (default 60)")
    parser.add_argument("--workdir", type=Path, default=HERE / "work", help="corpus/crashes/logs folder")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--reproduce", nargs=2, metavar=("TARGET", "INPUT"), help="run one input once")
    parser.add_argument("--table", action="store_true", help="print the runs of WORKDIR's summaries as Markdown")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at the same time (default 1)")
    parser.add_argument("--libfuzzer", action="append", default=[], help="extra libFuzzer flag (repeatable)")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if args.table:
        print(runs_table(args.workdir))
        return 0
    if args.reproduce:
        target, path = args.reproduce
        return subprocess.run([sys.executable, str(HERE / "_worker.py"), target, path], check=False).returncode  # noqa: S603
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    targets = args.targets or TARGETS
    for target in targets:  # import every target (and write its seeds) before any worker starts
        write_seeds(target, args.workdir / "corpus" / target)
    results = []
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = [pool.submit(run_target, t, args.seconds, args.workdir, args.libfuzzer) for t in targets]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            print(
                f"{result['target']:18} {result['started']}  {result['seconds']:>5} s"
                f"  {result['executions'] or 0:>9} execs  corpus {result['corpus']:>5}"
                f"  findings {len(result['findings'])}  exit {result['exit']}",  # type: ignore[arg-type]
                flush=True,
            )
            for finding in result["findings"]:  # type: ignore[attr-defined]
                print(f"    finding: {finding}", flush=True)
    summary = args.workdir / f"summary-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.json"
    summary.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any(r["findings"] or r["exit"] != 0 for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
