"""The README's first command: the end-to-end demo against both example apps."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_demo_runs_end_to_end(app: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--app", app],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Demo complete: every step gave the expected answer." in out
    for reason in ("digest_mismatch", "replayed_nonce", "missing_signature", "unknown_key"):
        assert f'"reason":"{reason}"' in out
    assert "UNEXPECTED" not in out
    # The passphrase used by the demo never appears in its transcript.
    assert "correct horse" not in out + proc.stderr
