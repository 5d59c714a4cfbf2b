"""Run one fuzz target under atheris (started by run.py; arguments: TARGET then libFuzzer's).

The project's modules (and the parsers they delegate to: http-sf, mnemonic,
shamir-mnemonic) are imported inside ``atheris.instrument_imports()`` so that
libFuzzer sees their coverage.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
INSTRUMENTED = ["datafold_auth", "http_sf", "mnemonic", "shamir_mnemonic"]


def main() -> None:
    target = sys.argv[1]
    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=INSTRUMENTED):
        import http_sf  # noqa: F401
        import mnemonic  # noqa: F401
        import shamir_mnemonic  # noqa: F401

        import datafold_auth
        import datafold_auth.keys
        import datafold_auth.middleware
        import datafold_auth.registration  # noqa: F401

        module = importlib.import_module(f"target_{target}")
    atheris.Setup([sys.argv[0], *sys.argv[2:]], module.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
