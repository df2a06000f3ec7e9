#!/usr/bin/env python3
"""
Build the drop-in patched Django: download the pinned sdist (cached in
build/sdist/), check its sha256, apply patches/series in order and write the
patched package to ./django.

Along the way it leaves build/tree/, a git checkout of the whole sdist
(django/, tests/, docs/) with one commit per patch on top of the tag
'upstream'; scripts/upstream/run_upstream.py runs Django's own tests from there and
scripts/series/export_patches.py turns its commits back into patches/.

Re-running is idempotent: when nothing changed it only checks and says so.
It refuses to rebuild over edits (in ./django or build/tree) that were not
exported yet, unless --force is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ScriptError, run_main
from series._series import (
    BUILD,
    FIXED_IDENTITY,
    PATCHES,
    TREE,
    UPSTREAM_TAG,
    VENDORED,
    copy_tree_atomically,
    extract_sdist,
    fetch_sdist,
    git,
    patch_subject,
    patches_digest,
    read_pin,
    read_series,
    read_stamp,
    tree_differences,
    vendored_edits,
    write_stamp,
)


def unexported_edits() -> list[str]:
    """Describe work in build/tree or ./django that patches/ doesn't hold."""
    if not TREE.exists():
        return []
    problems = []
    status = git("status", "--porcelain", cwd=TREE).stdout.strip()
    if status:
        problems.append("build/tree has uncommitted changes")
    head = git("rev-parse", "HEAD", cwd=TREE).stdout.strip()
    stamp = read_stamp()
    if stamp is None or stamp[0] != head:
        problems.append("build/tree has commits that were not exported")
    edits = vendored_edits()
    if edits:
        shown = ", ".join(edits[:3]) + (", ..." if len(edits) > 3 else "")
        problems.append(f"./django was edited ({shown})")
    return problems


def is_up_to_date() -> bool:
    stamp = read_stamp()
    if not (TREE.exists() and stamp and VENDORED.exists()):
        return False
    head, digest = stamp
    return (
        digest == patches_digest()
        and git("rev-parse", "HEAD", cwd=TREE).stdout.strip() == head
        and not git("status", "--porcelain", cwd=TREE).stdout.strip()
        and not tree_differences(VENDORED, TREE / "django")
    )


def apply_series(tree: Path, series: list[str]) -> None:
    """Commit each patch of the series on top of tree's HEAD, like git am."""
    for name in series:
        path = PATCHES / name
        if not path.exists():
            raise ScriptError(f"patches/series lists {name}, which doesn't exist.")
        check = git("apply", "--check", str(path), cwd=tree, check=False)
        if check.returncode:
            raise ScriptError(
                f"patch {name} does not apply:\n{check.stderr.strip()}\n"
                "Nothing was written to ./django."
            )
        git("am", "--keep", "--keep-cr", "--quiet", str(path), cwd=tree)
        print(f"  applied {name}: {patch_subject(path.read_text())}", flush=True)


def upstream_tree(sdist: Path, version: str) -> Path:
    """
    Extract sdist into build/tree.new, a git repository whose one commit,
    tagged 'upstream', is Django version.
    """
    new = BUILD / "tree.new"
    if new.exists():
        shutil.rmtree(new)
    print(f"Extracting {sdist.name} into build/tree...", flush=True)
    extract_sdist(sdist, new)
    git("init", "--quiet", "--initial-branch=main", cwd=new)
    # Commits a developer makes there get the same identity as the series.
    git("config", "user.name", FIXED_IDENTITY["GIT_AUTHOR_NAME"], cwd=new)
    git("config", "user.email", FIXED_IDENTITY["GIT_AUTHOR_EMAIL"], cwd=new)
    # A tree rebuilt from scratch needs no packing, least of all in the
    # background while it's read or copied.
    git("config", "gc.auto", "0", cwd=new)
    # Running the tests here leaves bytecode behind.
    (new / ".git" / "info" / "exclude").write_text("__pycache__/\n*.py[co]\n")
    git("add", "--all", "--force", cwd=new)
    git("commit", "--quiet", "--no-verify", "-m", f"Django {version}", cwd=new)
    git("tag", UPSTREAM_TAG, cwd=new)
    return new


def build_tree(series: list[str]) -> None:
    """Build build/tree from the sdist and the series, replacing it at the end."""
    pin = read_pin()
    new = upstream_tree(fetch_sdist(pin), pin.version)
    try:
        apply_series(new, series)
    except ScriptError:
        shutil.rmtree(new)
        raise
    if TREE.exists():
        shutil.rmtree(TREE)
    new.rename(TREE)


def vendor(force: bool = False) -> None:
    """Make ./django the pinned sdist's package with the series applied."""
    started = time.monotonic()
    series = read_series()
    fetch_sdist(read_pin())
    if not force and is_up_to_date():
        print(f"./django is up to date ({len(series)} patches applied).")
        return
    problems = unexported_edits()
    if problems and not force:
        raise ScriptError(
            "; ".join(problems)
            + ". Run scripts/series/export_patches.py to keep them, "
            "or scripts/series/vendor.py --force to discard them."
        )
    build_tree(series)
    copy_tree_atomically(TREE / "django", VENDORED)
    write_stamp()
    print(
        f"Wrote ./django: Django {read_pin().version} with {len(series)} patches "
        f"({time.monotonic() - started:.1f}s). Upstream tests and docs: build/tree/."
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="rebuild even if ./django or build/tree hold edits not exported yet",
    )
    args = parser.parse_args()
    vendor(force=args.force)
    return 0


if __name__ == "__main__":
    run_main(main)
