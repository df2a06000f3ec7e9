#!/usr/bin/env python3
"""
Check that the patch series applies to other Django 5.2.x releases.

    python scripts/series/check_releases.py [VERSION ...] [--tests [VERSION]]

Without versions it checks the oldest release of the series (5.2), one in
the middle and the pinned one. Each sdist is downloaded with pip into
build/sdist/ (cached), extracted into a temporary directory and checked with
scripts/series/apply_patches.py --check, which changes nothing.

With --tests VERSION (default: 5.2), the series is applied to that release
in a temporary directory and the fork's own tests (tests/, without
tests/pipeline) run on SQLite against it instead of ./django.

Exits 1 if the series doesn't apply to a release or its tests fail.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, ScriptError, run_main
from series._series import download_sdist, extract_sdist, read_pin

SCRIPTS = Path(__file__).resolve().parent


def default_versions() -> list[str]:
    """The oldest 5.2.x, one in the middle and the pinned one."""
    pin = read_pin()
    major, minor, patch = pin.version_tuple
    oldest = f"{major}.{minor}"
    middle = f"{major}.{minor}.{patch // 2}"
    return list(dict.fromkeys([oldest, middle, pin.version]))


def extracted(version: str, tmp: Path) -> Path:
    """A fresh extracted copy of version's sdist under tmp."""
    tree = Path(tempfile.mkdtemp(dir=tmp)) / f"django-{version}"
    extract_sdist(download_sdist(version), tree)
    return tree


def check_applies(version: str, tmp: Path) -> bool:
    tree = extracted(version, tmp)
    result = subprocess.run(
        [sys.executable, SCRIPTS / "apply_patches.py", "--check", tree],
        capture_output=True,
        text=True,
    )
    if result.returncode:
        print(f"Django {version}: the series does NOT apply.")
        print(result.stdout + result.stderr)
        return False
    print(f"Django {version}: {result.stdout.strip().splitlines()[-1]}")
    return True


def run_tests(version: str, tmp: Path) -> bool:
    tree = extracted(version, tmp)
    subprocess.run(
        [sys.executable, SCRIPTS / "apply_patches.py", tree],
        check=True,
        capture_output=True,
    )
    # -P: the repository's ./django (the current directory) must not shadow
    # the tree under test; pytest's own pythonpath is replaced likewise.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), "tests"])}
    found = subprocess.run(
        [sys.executable, "-P", "-c", "import django; print(django.__file__)"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).is_relative_to(tree):
        raise ScriptError(f"The tests would import {found}, not Django {version}.")
    print(f"Running the fork's tests on SQLite against Django {version} ({found})")
    result = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-q", "-o", "pythonpath="]
        + ["--ignore=tests/pipeline", "tests"],
        cwd=ROOT,
        env=env,
    )
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("versions", nargs="*", help="5.2.x releases to check")
    parser.add_argument(
        "--tests",
        metavar="VERSION",
        nargs="?",
        const="5.2",
        help="run the fork's tests on this release (default: 5.2, the oldest)",
    )
    args = parser.parse_args()
    versions = args.versions or default_versions()
    with tempfile.TemporaryDirectory(prefix="multidb-releases-") as tmp:
        failed = [v for v in versions if not check_applies(v, Path(tmp))]
        if args.tests and not run_tests(args.tests, Path(tmp)):
            failed.append(f"{args.tests} (tests)")
    if failed:
        raise ScriptError(f"Failed for Django {', '.join(failed)}.")
    checked = ", ".join(versions)
    tested = f"; the fork's tests pass on {args.tests}" if args.tests else ""
    print(f"The series applies to Django {checked}{tested}.")
    return 0


if __name__ == "__main__":
    run_main(main)
