"""Helpers shared by every script (standard library only)."""

from __future__ import annotations

import sys
from pathlib import Path

# The repository's root.
ROOT = Path(__file__).resolve().parent.parent


class ScriptError(Exception):
    """A failure to report in one line, without a traceback."""


def run_main(main) -> None:
    """Run main(), turning a ScriptError into 'error: ...' and exit code 1."""
    try:
        code = main()
    except ScriptError as exc:
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
