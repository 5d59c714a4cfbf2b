"""``python -m keytools``."""

from keytools.cli import main

raise SystemExit(main())
