"""Every code example of docs/**/*.md runs in CI (the convention: docs/README.md, "Contributing to the docs").

``test_page`` runs each page with :mod:`tests.docs_runner`: real servers on
loopback, real HTTP, real keytools and OpenSSL. ``test_inventory`` makes sure
that no executable block is left out: each one is run here, or by the test
module named in :data:`TESTED_ELSEWHERE` / :data:`BROWSER_TESTS`, or carries a
visible ``<!-- not-run: why -->`` (listed on stdout).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .docs_runner import (
    BROWSER,
    DIRECTIVES,
    EXECUTABLE,
    EXECUTED,
    ROOT,
    Block,
    PageRun,
    check_install,
    page_name,
    pages,
    parse,
)

TESTED_ELSEWHERE: dict[tuple[str, str], str] = {
    ("docs/keys.md", "python"): "tests/test_keys_docs.py",  # in-process, one test per block
    ("docs/shell.md", "sh"): "tests/test_shell_docs.py",  # all blocks in one shell, under dash and bash
    ("docs/getting-started/browser.md", "sh"): "tests/test_docs_browser.py",  # its server, and the page's download
}
"""(page, language) -> the test module that executes those blocks; the runner skips them."""

BROWSER_TESTS: dict[str, str] = {
    "docs/getting-started/browser.md": "tests/test_docs_browser.py",
}
"""page -> the test module that executes its ``js``/``javascript``/``html`` blocks in Chromium."""

MAX_NOT_RUN = 12
"""Blocks that cannot run in CI must stay few."""


def _skipped_langs(page: str) -> frozenset[str]:
    return frozenset(lang for (p, lang) in TESTED_ELSEWHERE if p == page)


def _runs_here(block: Block) -> bool:
    d = block.directives
    if "not-run" in d or block.lang in BROWSER or block.lang in _skipped_langs(block.page):
        return False
    return block.lang in EXECUTED or block.lang == "json" or bool({"output", "install", "file"} & set(d))


RUN_PAGES = [page_name(p) for p in pages() if any(_runs_here(b) for b in parse(p))]


@pytest.mark.parametrize("page", RUN_PAGES)
def test_page(page: str, tmp_path: Path) -> None:
    with PageRun(ROOT / page, tmp_path) as run:
        run.run(skip_langs=_skipped_langs(page))
        expected = [
            b.line
            for b in run.blocks
            if _runs_here(b)
            and ("file" in b.directives or (b.lang in EXECUTED and not {"output", "install"} & set(b.directives)))
        ]
        assert [b.line for b in run.ran] == expected  # nothing skipped on the way


def _executes(module: str, page: str, langs: tuple[str, ...]) -> bool:
    """The module exists, reads ``page`` and picks out fences of one of ``langs``."""
    path = ROOT / module
    if not path.is_file():
        return False
    source = path.read_text(encoding="utf-8")
    name = Path(page).name
    return name in source and any(f"```{lang}" in source for lang in langs)


def test_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    """Every block in an executable language is executed by some test, or says why not."""
    not_run: list[str] = []
    uncovered: list[str] = []
    installs = 0
    for path in pages():
        for block in parse(path, strict=True):
            d = block.directives
            if "not-run" in d:
                assert d["not-run"].strip(), f"{block.where}: <!-- not-run: ... --> needs a reason"
                if block.lang in EXECUTABLE:
                    not_run.append(f"{block.where} [{block.lang}]: {d['not-run']}")
                continue
            if "install" in d:
                installs += 1
            if block.lang not in EXECUTABLE:
                continue
            if block.lang in BROWSER:
                module = BROWSER_TESTS.get(block.page)
                if module is None or not _executes(module, block.page, tuple(sorted(BROWSER))):
                    uncovered.append(f"{block.where} [{block.lang}]: no browser test executes it")
                continue
            module = TESTED_ELSEWHERE.get((block.page, block.lang))
            if module is not None and not _executes(module, block.page, (block.lang,)):
                uncovered.append(f"{block.where} [{block.lang}]: {module} does not execute it")
            assert "background" not in d or "wait" in d, f"{block.where}: background without wait"
    with capsys.disabled():
        print(f"\ndocs examples: {len(not_run)} executable blocks not run in CI, {installs} install blocks checked")
        for line in not_run:
            print("  not run:", line)
    assert uncovered == [], "\n".join(uncovered)
    assert len(not_run) <= MAX_NOT_RUN, not_run


def test_the_convention_is_documented() -> None:
    readme = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Contributing to the docs", 1)[1]
    for directive in DIRECTIVES:
        assert f"<!-- {directive}" in section, directive
    for module in {*TESTED_ELSEWHERE.values(), *BROWSER_TESTS.values()}:
        assert module in section, module
    assert "(docs/README.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
    for page in pages():  # the index links every page
        name = page_name(page).removeprefix("docs/")
        assert name == "README.md" or f"]({name})" in readme, name


def test_the_runner_catches_a_broken_example(tmp_path: Path) -> None:
    """A failing block, a wrong expected output and an unknown directive are all reported."""
    page = tmp_path / "page.md"
    page.write_text("```sh\necho hello\n```\n<!-- output -->\n```text\ngoodbye\n```\n")
    with PageRun(page, tmp_path) as run, pytest.raises(AssertionError, match="expected output"):
        run.run()
    page.write_text("```python\nx = 1\n```\n\n```python\nassert x == 2\n```\n")
    with PageRun(page, tmp_path) as run, pytest.raises(AssertionError, match="AssertionError"):
        run.run()
    page.write_text("<!-- expect-fail: unknown_key -->\n```sh\ntrue\n```\n")
    with PageRun(page, tmp_path) as run, pytest.raises(AssertionError, match="succeeded"):
        run.run()
    page.write_text("<!-- norun -->\n```sh\ntrue\n```\n")
    with pytest.raises(ValueError, match="unknown directive"):
        parse(page, strict=True)


def test_install_blocks_are_checked() -> None:
    """The package may be named as on PyPI or as a checkout folder; its extras must exist either way."""
    check_install(
        Block("p", 1, "sh", "pip install './datafold-auth[flask]' gunicorn\npip install 'datafold-auth[httpx]'\n")
    )
    for bad in (
        "pip install 'datafold-auth[flsk]'",
        "pip install './datafold-auth[flsk]'",
        "pip install './other[flask]'",
    ):
        with pytest.raises(AssertionError):
            check_install(Block("p", 1, "sh", bad + "\n"))


def test_relative_links_resolve() -> None:
    """Every relative link of README.md and docs/**/*.md (outside code) points at an existing file."""
    broken = []
    for path in [ROOT / "README.md", *pages()]:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z][a-z+.-]*:", link) or link.startswith("#"):
                continue
            if not (path.parent / link.split("#", 1)[0]).exists():
                broken.append(f"{path.relative_to(ROOT)}: {link}")
    assert broken == []


def test_the_runner_serves_and_cleans_up(tmp_path: Path) -> None:
    """A file block, a background server on a rewritten port, a console block against it; the server is stopped."""
    page = tmp_path / "page.md"
    fence = "```"
    page.write_text(
        f"<!-- file: srv.py -->\n{fence}python\nimport argparse, http.server\n"
        "parser = argparse.ArgumentParser()\nparser.add_argument('--port', type=int)\n"
        "port = parser.parse_args().port\n"
        "http.server.HTTPServer(('127.0.0.1', port), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
        f"{fence}\n\n<!-- background -->\n<!-- wait: 127.0.0.1:8000 -->\n{fence}sh\npython srv.py --port 8000\n{fence}\n\n"
        f"{fence}console\n$ export GREETING=hi\n$ curl -s -o /dev/null -w '%{{http_code}}\\n' "
        f"http://127.0.0.1:8000/srv.py\n200\n{fence}\n\n{fence}sh\necho $GREETING\n{fence}\n"
        f"<!-- output -->\n{fence}text\nhi\n{fence}\n"
    )
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    with PageRun(page, sandbox) as run:
        assert run.ports["8000"] != "8000"
        run.run()
        ((server, _),) = run.background
    assert server.poll() is not None  # stopped with the page
    assert [b.lang for b in run.ran] == ["python", "sh", "console", "sh"]
