"""docs/shell.md: every ``sh`` example runs, in order, against the Flask example server.

Blocks preceded by ``<!-- not-run: why -->`` (starting the server, a deployment
script with system paths) are skipped; ``http://127.0.0.1:8000`` is replaced
by the test server's address.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .test_shell_scripts import ROOT, SHELLS, clean_env, example_server, needs_tools

pytestmark = needs_tools

DOC = ROOT / "docs" / "shell.md"
BLOCK = re.compile(r"(<!-- not-run: [^\n]*-->\n)?```sh\n(.*?)```", re.DOTALL)


def runnable_blocks() -> list[str]:
    return [m.group(2) for m in BLOCK.finditer(DOC.read_text()) if m.group(1) is None]


def test_the_doc_has_runnable_examples_for_every_script() -> None:
    text = "\n".join(runnable_blocks())
    for name in ("generate", "public", "register", "request", "sign-request", "setup"):
        assert f"datafold-{name} " in text, name
    for name in ("generate", "public", "register", "request", "sign-request", "setup"):
        assert f"`usage: datafold-{name} " in DOC.read_text(), name


@pytest.mark.parametrize("shell", SHELLS)
def test_examples_run(shell: str, tmp_path: Path) -> None:
    shell_path = shutil.which(shell)
    assert shell_path is not None
    with example_server("flask", tmp_path) as server:
        program = "set -eu\n" + "\n".join(
            block.replace("http://127.0.0.1:8000", server.url) for block in runnable_blocks()
        )
        work = tmp_path / "work"
        work.mkdir()
        env = clean_env({"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HOME": str(tmp_path)})
        proc = subprocess.run(
            [shell_path, "-c", program],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "usage: datafold-generate [options] KEYFILE" in out
    assert "status active" in out and '"owner":"backup-job"' in out
    assert '"@method": POST\n"@authority": api.example.com\n' in out
    assert '"owner":"' in out and '"created":{"name":"gadget"}' in out
    assert proc.stderr.count("[done] keyid") == 3
    # "Replacing and revoking a key": the same client_id is refused, a new one works, the old key is revoked
    assert "registration refused: HTTP 409 client_id_taken" in proc.stderr and "exit status 4" in out
    assert '"client_id":"backup-agent",' in out and '"status":"revoked"' in out
