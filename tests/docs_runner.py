"""Runs the code examples of docs/**/*.md (the convention is in docs/README.md, "Contributing to the docs").

A page runs top to bottom in its own sandbox folder (also its ``HOME``), with
the test interpreter's ``bin`` first on ``PATH``:

* ``sh`` blocks run with ``sh -e``, ``bash`` blocks with ``bash -e -o pipefail``,
  ``console`` blocks run their ``$ `` lines (the other lines are expected output);
  each block is a fresh shell that starts with the exported variables and the working
  directory the previous shell block left (files persist in the sandbox anyway);
* ``python`` blocks run in one interpreter per page and share its namespace;
* ``json`` blocks must parse; ``text``, ``http``, ``ini``, ``toml`` and unlabelled blocks are data;
* ``js``, ``javascript`` and ``html`` blocks belong to the browser tests.

HTML comments directly above a fence steer it (see :data:`DIRECTIVES`). Every
``127.0.0.1:PORT`` / ``localhost:PORT`` of a page, and ``--port PORT`` for
those ports, is rewritten to a free port before anything runs.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

EXECUTED = frozenset({"python", "sh", "bash", "console"})
"""Languages the runner executes."""
BROWSER = frozenset({"js", "javascript", "html"})
"""Languages executed by the browser tests (Chromium), never by this runner."""
EXECUTABLE = EXECUTED | BROWSER

DIRECTIVES = {
    "file": "write the block to this path in the sandbox instead of running it (later blocks naming it append)",
    "background": "start the block in the background (its process group is killed at the end of the page)",
    "wait": "HOST:PORT a background block must be listening on before the page goes on",
    "expect-fail": "the block must fail, naming this reason code (exit status or exception)",
    "output": "this block is the expected output of the previous executed block ('...' matches anything)",
    "install": "a 'pip install datafold-auth[extras]' block: package name and extras are checked, not installed",
    "not-run": "never run; the text after the colon says why (counted and printed by the inventory)",
}

_FENCE = re.compile(r"^( *)(`{3,}|~{3,})([^\s`]*)[^\n]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*([a-z][a-z-]*)(?::\s*(.*?))?\s*-->\s*$")
_PORT = re.compile(r"(?:127\.0\.0\.1|localhost):(\d{2,5})\b")
_TEMPLATE = re.compile(r"\.\.\.|<[^>\n]*>")
_TIMEOUT = 240.0


@dataclass
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    lang: str
    code: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def page_name(path: Path) -> str:
    """``docs/x.md`` style name of a page."""
    path = path.resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def pages() -> list[Path]:
    """Every Markdown page under docs/, sorted."""
    return sorted(DOCS.rglob("*.md"))


def parse(path: Path, *, strict: bool = False) -> list[Block]:
    """The fenced blocks of a page, with the directives written directly above each.

    Raises:
        ValueError: an unclosed fence, or (``strict``) an unknown directive.
    """
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match.group(1), match.group(2), match.group(3).lower()
        directives: dict[str, str] = {}
        j = i - 1
        while j >= 0 and (found := _DIRECTIVE.match(lines[j])):
            name = found.group(1)
            if name not in DIRECTIVES and strict:
                raise ValueError(f"{page_name(path)}:{j + 1}: unknown directive <!-- {name} -->")
            directives[name] = found.group(2) or ""
            j -= 1
        end = i + 1
        while end < len(lines) and not (
            lines[end].startswith(indent + fence[0] * 3) and lines[end].strip() == fence[0] * len(lines[end].strip())
        ):
            end += 1
        if end >= len(lines):
            raise ValueError(f"{page_name(path)}:{i + 1}: unclosed code fence")
        body = [line[len(indent) :] if line.startswith(indent) else line.lstrip() for line in lines[i + 1 : end]]
        blocks.append(Block(page_name(path), i + 1, lang, "\n".join(body) + "\n", directives))
        i = end + 1
    return blocks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_map(blocks: list[Block]) -> dict[str, str]:
    """A free port for every loopback port a page mentions."""
    ports = sorted({p for b in blocks for p in _PORT.findall(b.code) + re.findall(r"--port[ =](\d+)", b.code)})
    return {p: str(free_port()) for p in ports}


def rewrite(text: str, ports: dict[str, str]) -> str:
    for old, new in ports.items():
        text = re.sub(rf"(127\.0\.0\.1:|localhost:|--port[ =]){old}\b", rf"\g<1>{new}", text)
    return text


def matches(expected: str, actual: str) -> bool:
    """Every non-empty expected line matches an actual line, in order; ``...`` matches any text.

    Runs of white space compare equal (aligned columns need not be copied exactly).
    """
    got = [" ".join(line.split()) for line in actual.splitlines()]
    pos = 0
    for line in expected.splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in line.split("...")))
        while pos < len(got) and not pattern.fullmatch(got[pos]):
            pos += 1
        if pos == len(got):
            return False
        pos += 1
    return True


def check_install(block: Block) -> None:
    """A ``pip install`` block names this project and extras it declares.

    The project may be named as on PyPI (``datafold-auth[flask]``) or as a local
    checkout or download (``./datafold-auth[flask]``, ``~/src/datafold-auth[flask]``):
    a path's last folder must then be the project's name.
    """
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    name = cfg["metadata"]["name"]
    extras = set(cfg["options.extras_require"])
    for line in block.code.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[:2] == ["pip", "install"] or words[:4] == ["python", "-m", "pip", "install"], block.where
        for word in words[2:]:
            if word.startswith("-") or word in ("-m", "pip", "install"):
                continue
            found = re.fullmatch(r"((?:\.{1,2}|~)?/(?:[^\s\[]*/)?)?([A-Za-z0-9_.-]+)(?:\[([a-z0-9_,-]+)\])?", word)
            assert found, f"{block.where}: cannot read {word!r}"
            folder, package, wanted = found.groups()
            assert not folder or package == name, f"{block.where}: a path must name the {name} folder: {word!r}"
            if package == name:
                unknown = set((wanted or "").split(",")) - extras - {""}
                assert not unknown, f"{block.where}: {name} has no extra {sorted(unknown)}"


_DRIVER = r"""
import contextlib, io, json, os, sys, traceback
ns = {"__name__": "__main__"}
results = os.fdopen(int(sys.argv[1]), "w")
for line in sys.stdin:
    message = json.loads(line)
    buf = io.StringIO()
    result = {"ok": True, "reason": None, "error": ""}
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            exec(compile(message["code"], message["name"], "exec"), ns)
        except BaseException as exc:
            reason = getattr(exc, "reason", None)
            result = {"ok": False, "reason": getattr(reason, "value", None), "error": traceback.format_exc()}
    result["output"] = buf.getvalue()
    results.write(json.dumps(result) + "\n")
    results.flush()
"""


class PageRun:
    """Runs the blocks of one page in ``sandbox``; use as a context manager (stops what it started)."""

    def __init__(self, path: Path, sandbox: Path) -> None:
        self.blocks = parse(path)
        self.sandbox = sandbox
        self.ports = port_map(self.blocks)
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.python: subprocess.Popen[str] | None = None
        self.results: IO[str] | None = None
        self.last_output = ""
        self.ran: list[Block] = []
        self.written: set[str] = set()
        home = sandbox
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATAFOLD_", "DBUS_", "XDG_", "PYTHON", "VIRTUAL_ENV", "PYTEST_"))
        }
        self.env.update(
            HOME=str(home),
            PATH=f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",  # CI has no keychain: keys go to files
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONUNBUFFERED="1",
        )

    def __enter__(self) -> PageRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.python is not None:
            _stop(self.python)  # its whole session: servers a block started too
            self.python = None
        if self.results is not None:
            self.results.close()
            self.results = None
        for proc, _ in self.background:
            _stop(proc)
        self.background.clear()

    def run(self, skip_langs: frozenset[str] = frozenset()) -> None:
        """Run every block (except those of ``skip_langs``, tested elsewhere)."""
        for block in self.blocks:
            if block.lang in skip_langs or "not-run" in block.directives or block.lang in BROWSER:
                continue
            self.run_block(block)

    def run_block(self, block: Block) -> None:
        d = block.directives
        code = rewrite(block.code, self.ports)
        if "output" in d:
            assert matches(code, self.last_output), (
                f"{block.where}: expected output\n{code}\n--- got ---\n{self.last_output}"
            )
            return
        if "install" in d:
            check_install(block)
            return
        if block.lang == "json":
            if not _TEMPLATE.search(code):  # a template with placeholders is data
                json.loads(code)
            return
        if "file" in d:
            target = self.sandbox / d["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            earlier = target.read_text(encoding="utf-8") + "\n\n" if d["file"] in self.written else ""
            target.write_text(earlier + code, encoding="utf-8")  # blocks naming one file are joined in order
            self.written.add(d["file"])
            self.ran.append(block)
            return
        if block.lang not in EXECUTED:
            return
        self.ran.append(block)
        if "background" in d:
            self._background(block, code)
            return
        if block.lang == "python":
            ok, output, reason = self._python(block, code)
        else:
            ok, output, reason = self._shell(block, code)
        self.last_output = output
        if "expect-fail" in d:
            want = d["expect-fail"]
            assert not ok, f"{block.where}: expected a failure ({want}), but it succeeded:\n{output}"
            assert want in output or reason == want, f"{block.where}: failed without naming {want}:\n{output}"
        else:
            assert ok, f"{block.where}: failed:\n{output}"

    # ------------------------------------------------------------------ shells

    def _argv(self, lang: str, code: str, *, keep: bool = True) -> list[str]:
        """A shell running ``code`` after the exported variables and directory the page's last block left."""
        state = self.sandbox / ".shell-state"
        if not state.exists():
            state.mkdir()
            (state / "env").write_text("")
            (state / "cwd").write_text(str(self.sandbox))
        head = f'. "{state}/env"\ncd "$(cat "{state}/cwd")"\n'
        dump = "export -p" if lang == "sh" else "(set -o posix; export -p)"  # `export NAME=...` lines in both
        tail = f'\n{dump} >"{state}/env"; pwd >"{state}/cwd"\n' if keep else "\n"
        script = head + code + tail
        return ["sh", "-e", "-c", script] if lang == "sh" else ["bash", "-e", "-o", "pipefail", "-c", script]

    def _shell(self, block: Block, code: str) -> tuple[bool, str, str | None]:
        expected = ""
        if block.lang == "console":
            commands, outputs = [], []
            for line in code.splitlines():
                if line.startswith("$ "):
                    commands.append(line[2:])
                elif commands and commands[-1].endswith("\\"):
                    commands.append(line)
                else:
                    outputs.append(line)
            code, expected = "\n".join(commands) + "\n", "\n".join(outputs)
        proc = subprocess.run(
            self._argv(block.lang, code),
            cwd=self.sandbox,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=_TIMEOUT,
            check=False,
        )
        output = proc.stdout.decode("utf-8", "replace")
        if expected.strip():
            assert matches(expected, output), f"{block.where}: expected output\n{expected}\n--- got ---\n{output}"
        return proc.returncode == 0, output, None

    def _background(self, block: Block, code: str) -> None:
        log = self.sandbox / f".background-{block.line}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self._argv(block.lang, code, keep=False) if block.lang != "python" else [sys.executable, "-c", code],
                cwd=self.sandbox,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.background.append((proc, log))
        wait = block.directives.get("wait")
        assert wait, f"{block.where}: a background block needs <!-- wait: HOST:PORT -->"
        host, port = rewrite(wait, self.ports).rsplit(":", 1)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{block.where}: nothing listens on {host}:{port}:\n{log.read_text()}")
            time.sleep(0.1)

    # ------------------------------------------------------------------ python

    def _python(self, block: Block, code: str) -> tuple[bool, str, str | None]:
        if self.python is None:
            read_end, write_end = os.pipe()
            log = (self.sandbox / ".python.log").open("wb")
            self.python = subprocess.Popen(
                [sys.executable, "-c", _DRIVER, str(write_end)],
                cwd=self.sandbox,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_end,),
                text=True,
                start_new_session=True,
            )
            log.close()
            os.close(write_end)
            self.results = os.fdopen(read_end, "r")
        assert self.python.stdin is not None and self.results is not None
        self.python.stdin.write(json.dumps({"code": code, "name": block.where}) + "\n")
        self.python.stdin.flush()
        ready, _, _ = select.select([self.results], [], [], _TIMEOUT)
        line = self.results.readline() if ready else ""
        if not line:
            raise AssertionError(
                f"{block.where}: the interpreter did not answer:\n{_tail(self.sandbox / '.python.log')}"
            )
        result: dict[str, Any] = json.loads(line)
        output = result["output"] + result["error"]
        return bool(result["ok"]), output, result["reason"]


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _stop(proc: subprocess.Popen[Any]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue
