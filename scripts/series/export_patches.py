#!/usr/bin/env python3
"""
Regenerate patches/ from the patched tree, deterministically.

Edit either ./django (the drop-in package) or build/tree (the git checkout
with one commit per patch that scripts/series/vendor.py makes). Edits to ./django
and uncommitted edits in build/tree are folded into the patch named by
--into (default: the last one in patches/series). Commits made in build/tree
become patches too: give each new commit a name in patches/series, in the
same order as the commits.

The output has no dates or commit hashes, so exporting an untouched tree
changes nothing; --check reports what would change and exits 1 if anything
would, without writing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ScriptError, run_main
from series._series import (
    PATCHES,
    TREE,
    UPSTREAM_TAG,
    VENDORED,
    git,
    read_series,
    sync_files,
    tree_differences,
    vendored_edits,
    write_stamp,
)

FORMAT_PATCH = [
    "format-patch",
    "--stdout",
    "--zero-commit",
    "--no-signature",
    "--no-stat",
    "--full-index",
    "--keep-subject",
    "--no-numbered",
    "--no-thread",
    "--encoding=UTF-8",
]


def commits_on_upstream() -> list[str]:
    out = git("rev-list", "--reverse", f"{UPSTREAM_TAG}..HEAD", cwd=TREE).stdout
    return out.split()


def fold_edits(into: str | None, series: list[str]) -> str | None:
    """
    Commit edits made in ./django or left uncommitted in build/tree into one
    patch's commit. Return the patch name, or None when there was nothing.
    """
    edits = vendored_edits()
    tree_dirty = git("status", "--porcelain", cwd=TREE).stdout.strip()
    if edits and tree_dirty:
        raise ScriptError(
            "both ./django and build/tree have uncommitted edits: keep one of them "
            "(commit the build/tree ones, or copy them to ./django) and export again."
        )
    if edits:
        sync_files(VENDORED, TREE / "django", edits)
    elif not tree_dirty:
        return None
    if not series:
        raise ScriptError("patches/series is empty: add a patch name for the edits.")
    target = into or series[-1]
    if target not in series:
        raise ScriptError(f"--into {target}: patches/series has no such patch.")
    commits = commits_on_upstream()
    check_counts(commits, series)
    commit = commits[series.index(target)]
    git("add", "--all", cwd=TREE)
    if commit == commits[-1]:
        git("commit", "--quiet", "--amend", "--no-edit", "--no-verify", cwd=TREE)
    else:
        git("commit", "--quiet", "--no-verify", f"--fixup={commit}", cwd=TREE)
        env_rebase = git(
            "-c",
            "sequence.editor=true",
            "rebase",
            "--quiet",
            "--interactive",
            "--autosquash",
            UPSTREAM_TAG,
            cwd=TREE,
            check=False,
        )
        if env_rebase.returncode:
            git("rebase", "--abort", cwd=TREE, check=False)
            git("reset", "--quiet", "--soft", "HEAD~1", cwd=TREE)
            raise ScriptError(
                f"the edits conflict with a later patch when folded into {target}; "
                "they are left uncommitted in build/tree. Fold them by hand "
                "(git rebase -i in build/tree) and export again."
            )
    return target


def check_counts(commits: list[str], series: list[str]) -> None:
    if len(commits) != len(series):
        raise ScriptError(
            f"build/tree has {len(commits)} commits on top of '{UPSTREAM_TAG}' but "
            f"patches/series lists {len(series)} patches. Name each commit in "
            "patches/series, in the same order."
        )


def render(commit: str) -> str:
    """The patch text of one commit, without anything that varies by run."""
    text = git(*FORMAT_PATCH, "-1", commit, cwd=TREE).stdout
    # The author date is the only field that could change between exports.
    return re.sub(r"^Date: .*\n", "", text, count=1, flags=re.MULTILINE)


def export(into: str | None = None, check: bool = False) -> int:
    if not TREE.exists():
        raise ScriptError(
            "build/tree doesn't exist: run scripts/series/vendor.py first."
        )
    series = read_series()
    if check:
        if vendored_edits() or git("status", "--porcelain", cwd=TREE).stdout.strip():
            print("./django or build/tree has edits that patches/ doesn't hold.")
            return 1
    else:
        folded = fold_edits(into, series)
        if folded:
            print(f"Folded the edits into {folded}.")
    commits = commits_on_upstream()
    check_counts(commits, series)
    changed = []
    for name, commit in zip(series, commits):
        text = render(commit)
        path = PATCHES / name
        if not path.exists() or path.read_text() != text:
            changed.append(name)
            if not check:
                path.write_text(text)
    listed = set(series)
    unlisted = sorted(p.name for p in PATCHES.glob("*.patch") if p.name not in listed)
    for name in unlisted:
        print(f"patches/{name} is not listed in patches/series.")
    if check:
        for name in changed:
            print(f"patches/{name} differs from build/tree.")
        if changed or unlisted:
            return 1
        print(f"patches/ matches build/tree ({len(series)} patches).")
        return 0
    # ./django is the tree's package again, and build/tree is what patches/ says.
    differences = tree_differences(TREE / "django", VENDORED)
    sync_files(TREE / "django", VENDORED, differences)
    write_stamp()
    for name in changed:
        print(f"Wrote patches/{name}.")
    print(f"Exported {len(series)} patches, {len(changed)} changed.")
    return 1 if unlisted else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--into", metavar="PATCH", help="the patch that receives uncommitted edits"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if patches/ differs from build/tree",
    )
    args = parser.parse_args()
    return export(into=args.into, check=args.check)


if __name__ == "__main__":
    run_main(main)
