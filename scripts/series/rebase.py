#!/usr/bin/env python3
"""
Move the patch series to another Django 5.2.x release.

    python scripts/series/rebase.py VERSION [--no-baseline]
    python scripts/series/rebase.py --continue [--no-baseline]

Downloads VERSION's sdist with pip, pins it in patches/UPSTREAM (version,
file name and sha256), applies the series to it in build/tree with a 3-way
merge for patches whose context moved, exports patches/, rebuilds ./django,
then records the pristine upstream baseline for that release (Django's own
suite on SQLite and PostgreSQL, about 12 minutes; --no-baseline skips it and
says what to run), and says what is left to do.

When a patch conflicts, build/tree is left in the middle of 'git am' with the
conflict to resolve there: edit the files, 'git add' them, 'git am
--continue' (repeat for each patch that stops), then run this script with
--continue. Nothing in patches/ changes until the series has applied.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, ScriptError, run_main
from series._series import (
    PATCHES,
    TREE,
    UPSTREAM_TAG,
    VENDORED,
    copy_tree_atomically,
    download_sdist,
    git,
    read_pin,
    read_series,
    sha256_of,
    write_stamp,
)
from series.export_patches import export
from series.vendor import unexported_edits, upstream_tree, vendor

PIN = PATCHES / "UPSTREAM"


def write_pin(version: str, sdist: str, sha256: str) -> None:
    """Rewrite the three values of patches/UPSTREAM, keeping its comments."""
    values = {"version": version, "sdist": sdist, "sha256": sha256}
    lines = []
    for line in PIN.read_text().splitlines():
        key = line.partition("=")[0].strip()
        if key in values and not line.lstrip().startswith("#"):
            line = f"{key} = {values.pop(key)}"
        lines.append(line)
    if values:
        raise ScriptError(f"patches/UPSTREAM has no {', '.join(values)} line.")
    PIN.write_text("\n".join(lines) + "\n")


def in_the_middle_of_am() -> bool:
    return (TREE / ".git" / "rebase-apply").exists()


def start(version: str) -> None:
    if not re.fullmatch(r"5\.2(\.\d+)?", version):
        raise ScriptError(f"{version!r} isn't a Django 5.2.x release (5.2, 5.2.N).")
    old = read_pin()
    if version == old.version:
        raise ScriptError(f"The series is pinned to Django {version} already.")
    if TREE.exists() and in_the_middle_of_am():
        raise ScriptError(
            "build/tree is in the middle of a rebase: finish it (git am "
            "--continue, then scripts/series/rebase.py --continue) or abort it (git am "
            "--abort in build/tree, then scripts/series/vendor.py --force)."
        )
    problems = unexported_edits()
    if problems:
        raise ScriptError(
            "; ".join(problems)
            + ". Export them first (scripts/series/export_patches.py)."
        )
    # The series applied to the current release: its blobs are what the
    # 3-way merge needs (the patches name them with --full-index).
    vendor()
    sdist = download_sdist(version)
    sha256 = sha256_of(sdist)
    new = upstream_tree(sdist, version)
    git("fetch", "--quiet", "--no-tags", str(TREE), "HEAD", cwd=new)
    print(f"Applying {len(read_series())} patches to Django {version}:", flush=True)
    # From here on, build/tree is the new release's.
    shutil.rmtree(TREE)
    new.rename(TREE)
    write_pin(version, sdist.name, sha256)
    print(f"Pinned Django {version} in patches/UPSTREAM (sha256 {sha256}).")
    apply_series()


def apply_series() -> None:
    series = read_series()
    applied = int(git("rev-list", "--count", f"{UPSTREAM_TAG}..HEAD", cwd=TREE).stdout)
    for name in series[applied:]:
        result = git(
            "am",
            "--3way",
            "--keep",
            "--keep-cr",
            "--quiet",
            str(PATCHES / name),
            cwd=TREE,
            check=False,
        )
        if result.returncode:
            conflicted = git(
                "diff", "--name-only", "--diff-filter=U", cwd=TREE
            ).stdout.split()
            raise ScriptError(
                f"{name} doesn't apply to Django {read_pin().version}, even with "
                f"a 3-way merge. Resolve it in build/tree"
                + (f" ({', '.join(conflicted)})" if conflicted else "")
                + ": edit, 'git add', 'git am --continue'; then run "
                "scripts/series/rebase.py --continue.\n" + result.stdout + result.stderr
            )
        print(f"  applied {name}", flush=True)


def finish(baseline: bool) -> None:
    if not TREE.exists():
        raise ScriptError("build/tree doesn't exist: nothing to continue.")
    if in_the_middle_of_am():
        raise ScriptError(
            "build/tree is still in the middle of 'git am': resolve the "
            "conflict, 'git add', 'git am --continue', then run this again."
        )
    apply_series()
    # ./django is the new tree's package before patches/ is written from it,
    # so that nothing of the old release reads as an edit.
    copy_tree_atomically(TREE / "django", VENDORED)
    write_stamp()
    if export():
        raise ScriptError("Exporting patches/ failed; see above.")
    version = read_pin().version
    print(f"The series applies to Django {version}; patches/ and ./django are new.")
    left = [
        "python3 scripts/series/check_patches.py",
        "python3 -m tox -e sqlite,postgres",
        "git diff patches/  # then commit patches/ and tests/upstream_baseline.json",
    ]
    records = [
        [sys.executable, "scripts/upstream/run_upstream.py", "--pristine", "--record"]
        + ["--db", db]
        for db in ("sqlite", "postgres")
    ]
    if baseline:
        for command in records:
            print(f"Recording the pristine baseline: {' '.join(command[1:])}")
            if subprocess.run(command, cwd=ROOT).returncode:
                raise ScriptError(f"{' '.join(command[1:])} failed.")
    else:
        left[:0] = [f"python3 {' '.join(command[1:])}" for command in records]
    print("Left to do:\n" + "\n".join(f"    {step}" for step in left))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("version", nargs="?", help="the 5.2.x release to move to")
    parser.add_argument(
        "--continue",
        dest="resume",
        action="store_true",
        help="finish after resolving a conflict in build/tree",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="don't record the pristine upstream baseline (say how instead)",
    )
    args = parser.parse_args()
    if bool(args.version) == args.resume:
        parser.error("give a VERSION or --continue")
    if args.version:
        start(args.version)
    finish(baseline=not args.no_baseline)
    return 0


if __name__ == "__main__":
    run_main(main)
