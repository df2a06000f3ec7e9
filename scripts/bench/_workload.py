"""Running a benchmark's workload in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _common import ScriptError


def run_workload(
    code: str,
    args: list[str],
    cwd: Path,
    pythonpath: list[Path],
    wrapper: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
):
    """
    Run a benchmark workload (Python code) in a fresh interpreter with the
    given sys.path entries (under wrapper, a command prefix, if given) and
    return the JSON it prints.
    """
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(str(p.resolve()) for p in pythonpath),
        PYTHONHASHSEED="0",
        **(extra_env or {}),
    )
    result = subprocess.run(
        [*(wrapper or []), sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise ScriptError(
            f"the workload {' '.join(args)} failed:\n{result.stderr.strip()}"
        )
    return json.loads(result.stdout)
