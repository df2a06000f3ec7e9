#!/usr/bin/env python3
"""
Check the patch series as CI does: patches/series names each patch once and
every patch file is listed; each patch has a subject, a body and the DEP-3
trailers (Origin, Forwarded, Last-Update); none repeats the pinned version;
the series applies to the pinned sdist with no fuzz (scripts/series/vendor.py);
exporting the result gives back patches/ byte for byte; and every prefix of
the series builds: with the patches up to each one applied, django.db.models
imports and a project made by startproject passes 'manage.py check' (which
imports django.contrib.admin), so that a reviewer, a bisect or a user who
applies part of the series gets a working Django.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ScriptError, run_main
from series._series import (
    PATCHES,
    TREE,
    UPSTREAM_TAG,
    git,
    patch_subject,
    read_pin,
    read_series,
)

REQUIRED_TRAILERS = ("Origin", "Forwarded", "Last-Update")


def check_series() -> list[str]:
    problems = []
    series = read_series()
    seen = set()
    for name in series:
        if name in seen:
            problems.append(f"patches/series lists {name} twice.")
        seen.add(name)
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+\.patch", name):
            problems.append(f"{name}: name it <concern>-<slug>.patch.")
        if not (PATCHES / name).exists():
            problems.append(f"patches/series lists {name}, which doesn't exist.")
    for path in sorted(PATCHES.glob("*.patch")):
        if path.name not in seen:
            problems.append(f"patches/{path.name} is not listed in patches/series.")
    return problems


def check_patch(path: Path, version: str) -> list[str]:
    text = path.read_text()
    problems = []
    header, _, _ = text.partition("\ndiff --git ")
    message = header.split("\n\n", 1)
    subject = patch_subject(text)
    if not re.search(r"^Subject: ", header, re.MULTILINE):
        problems.append(f"{path.name}: no Subject.")
    elif not subject.endswith("."):
        problems.append(f"{path.name}: end the subject with a period, as Django does.")
    if len(message) < 2 or len(message[1].strip().splitlines()) < 4:
        problems.append(f"{path.name}: the body must say what changed and why.")
    body = message[1] if len(message) > 1 else ""
    trailers = git("interpret-trailers", "--parse", cwd=PATCHES, input=body).stdout
    found = {line.split(":", 1)[0] for line in trailers.splitlines()}
    for trailer in REQUIRED_TRAILERS:
        if trailer not in found:
            problems.append(f"{path.name}: no '{trailer}:' trailer (DEP-3).")
    mention = version_pattern(version).search(text)
    if mention:
        problems.append(
            f"{path.name}: mentions the pinned version ({mention.group()!r}); it "
            f"belongs in patches/UPSTREAM only, or the series won't apply to "
            f"other 5.2.x releases."
        )
    return problems


def version_pattern(version: str) -> re.Pattern:
    """
    The pinned version in any form a patch could hold it: "5.2.19" and the
    VERSION tuple's "5, 2, 19" (any spacing), not as part of a longer number.
    """
    parts = version.split(".")
    dotted = r"\.".join(parts)
    listed = r"\s*,\s*".join(parts)
    return re.compile(rf"(?<![\d.])(?:{dotted}|{listed})(?![\d])")


def check_prefix(worktree: Path, project: Path) -> str | None:
    """
    Check the Django checked out in worktree: import django.db.models without
    settings, make a project with startproject and run its system checks.
    Return what failed, or None.
    """
    env = {"PYTHONPATH": str(worktree), "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    steps = {
        "import django.db.models": ["-c", "import django.db.models"],
        "startproject": ["-m", "django", "startproject", "prefixcheck", str(project)],
        "manage.py check": [str(project / "manage.py"), "check"],
    }
    for name, args in steps.items():
        result = subprocess.run(
            [sys.executable, *args],
            cwd=project.parent,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            output = (result.stderr.strip() or result.stdout.strip()).splitlines()
            return f"'{name}' failed: {output[-1] if output else '(no output)'}"
    return None


def check_prefixes(series: list[str]) -> list[str]:
    """
    Check every prefix of the series in a worktree of build/tree, whose
    commits are the series applied one patch at a time (scripts/series/vendor.py).
    """
    missing = [
        name
        for name in ("asgiref", "sqlparse")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ScriptError(
            f"building each prefix imports Django, which needs {', '.join(missing)}: "
            f"pip install {' '.join(missing)}."
        )
    commits = git("rev-list", "--reverse", f"{UPSTREAM_TAG}..HEAD", cwd=TREE).stdout
    problems = []
    with tempfile.TemporaryDirectory(prefix="check-prefixes-") as tmp:
        worktree = Path(tmp) / "tree"
        git(
            "worktree",
            "add",
            "--quiet",
            "--detach",
            str(worktree),
            UPSTREAM_TAG,
            cwd=TREE,
        )
        try:
            for number, (name, commit) in enumerate(zip(series, commits.split()), 1):
                start = time.monotonic()
                git("checkout", "--quiet", "--detach", commit, cwd=worktree)
                project = Path(tmp) / f"project{number}"
                project.mkdir()
                failure = check_prefix(worktree, project)
                elapsed = time.monotonic() - start
                outcome = failure or "builds, checks pass"
                print(
                    f"  1-{number} (up to {name}): {outcome} ({elapsed:.1f}s)",
                    flush=True,
                )
                if failure:
                    problems.append(f"with patches 1-{number} applied, {failure}")
        finally:
            git("worktree", "remove", "--force", str(worktree), cwd=TREE)
    return problems


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    problems = check_series()
    version = read_pin().version
    for name in read_series():
        if (PATCHES / name).exists():
            problems.extend(check_patch(PATCHES / name, version))
    for problem in problems:
        print(problem)
    if problems:
        raise ScriptError(f"{len(problems)} problem(s) in patches/.")
    print(f"patches/series: {len(read_series())} patches, each well formed.")

    from series.export_patches import export
    from series.vendor import vendor

    vendor()
    if export(check=True):
        raise ScriptError(
            "patches/ differs from a fresh export: run "
            "scripts/series/export_patches.py."
        )
    print("Every prefix of the series:")
    problems = check_prefixes(read_series())
    if problems:
        raise ScriptError(
            f"{len(problems)} prefix(es) of the series don't build: "
            + "; ".join(problems)
        )
    print(f"All {len(read_series())} prefixes of the series build and pass check.")
    return 0


if __name__ == "__main__":
    run_main(main)
