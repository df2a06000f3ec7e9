#!/usr/bin/env python3
"""
Apply the django-multidb patch series to an existing Django 5.2.x tree.

PATH is the top of a Django source tree (the directory holding django/,
tests/ and docs/): a git checkout, which gets one commit per patch like
'git am', or a plain extracted sdist, which is patched in place.

--check reports for each patch whether it applies, changing nothing.
--reverse removes the series (in a git checkout, one revert commit per
patch). A tree of another Django version, a git checkout with uncommitted
changes, or a tree that already has the series (or, with --reverse, doesn't
have it) is refused with a message and left as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ScriptError, run_main
from series._series import (
    PATCHES,
    files_in_patch,
    git,
    patch_subject,
    read_django_version,
    read_pin,
    read_series,
)


def user_env() -> dict[str, str]:
    """The user's own git environment: their identity and safe.directory."""
    return dict(os.environ, LC_ALL="C")


def is_git_checkout(path: Path) -> bool:
    result = git("rev-parse", "--show-toplevel", cwd=path, check=False, env=user_env())
    return not result.returncode and Path(result.stdout.strip()) == path.resolve()


def check_tree(path: Path) -> None:
    if not path.is_dir():
        raise ScriptError(f"{path} is not a directory.")
    version = read_django_version(path)
    if version is None:
        raise ScriptError(
            f"{path} is not a Django source tree (no django/__init__.py with VERSION)."
        )
    wanted = read_pin().version_tuple[:2]
    if tuple(version[:2]) != wanted:
        found = ".".join(str(part) for part in version[:3])
        raise ScriptError(
            f"{path} holds Django {found}, but the series is for Django "
            f"{'.'.join(map(str, wanted))}.x."
        )


def try_series(
    path: Path, patches: list[Path], reverse: bool
) -> list[tuple[Path, str | None]]:
    """
    Apply patches one after another to a scratch copy of the files they touch
    and return (patch, error or None) for each, stopping at the first failure.
    """
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch_dir = Path(scratch)
        touched = set()
        for patch in patches:
            touched.update(files_in_patch(patch.read_text()))
        for rel in touched:
            if (path / rel).is_file():
                (scratch_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path / rel, scratch_dir / rel)
        for patch in patches:
            args = ["apply", "--reverse"] if reverse else ["apply"]
            result = git(*args, str(patch), cwd=scratch_dir, check=False)
            error = result.stderr.strip() if result.returncode else None
            results.append((patch, error))
            if error:
                break
    return results


def report(results: list[tuple[Path, str | None]], total: int, verb: str) -> None:
    for patch, error in results:
        if error is None:
            print(f"  {patch.name}: {verb[:-1]}ies")
        else:
            print(f"  {patch.name}: does NOT {verb}")
            print("    " + error.replace("\n", "\n    "))
    skipped = total - len(results)
    if skipped:
        print(f"  ({skipped} later patch(es) not tried: they build on the failing one)")


def succeeded(results: list[tuple[Path, str | None]], total: int) -> bool:
    return len(results) == total and all(error is None for _, error in results)


def apply(path: Path, check: bool, reverse: bool) -> int:
    check_tree(path)
    patches = [PATCHES / name for name in read_series()]
    if reverse:
        patches.reverse()
    in_git = is_git_checkout(path)
    if in_git and not check:
        status = git(
            "status", "--porcelain", "--untracked-files=no", cwd=path, env=user_env()
        ).stdout.strip()
        if status:
            raise ScriptError(
                f"{path} has uncommitted changes: commit or stash them first."
            )
    verb = "unapply" if reverse else "apply"
    results = try_series(path, patches, reverse)
    if not succeeded(results, len(patches)):
        # A series that is already there (or, reversing, not there) is not
        # a conflict: say so plainly.
        opposite = try_series(path, list(reversed(patches)), not reverse)
        if succeeded(opposite, len(patches)):
            state = "isn't applied to" if reverse else "is already applied to"
            raise ScriptError(f"the series {state} {path}; nothing was changed.")
        report(results, len(patches), verb)
        raise ScriptError(f"the series doesn't {verb} to {path}; nothing was changed.")
    report(results, len(patches), verb)
    if check:
        print(f"All {len(patches)} patches would {verb}.")
        return 0
    for patch in patches:
        subject = patch_subject(patch.read_text())
        if in_git:
            commit_patch(path, patch, subject, reverse)
        else:
            args = ["apply", "--reverse"] if reverse else ["apply"]
            git(*args, str(patch), cwd=path)
        print(f"  {'reverted' if reverse else 'applied'} {patch.name}: {subject}")
    done = "Removed" if reverse else "Applied"
    where = " (one commit per patch)" if in_git else ""
    print(f"{done} {len(patches)} patches in {path}{where}.")
    return 0


def commit_patch(path: Path, patch: Path, subject: str, reverse: bool) -> None:
    """Commit one patch (or its reversal) in a git checkout, like git am."""
    env = user_env()
    if not reverse:
        result = subprocess.run(
            ["git", "am", "--keep", "--keep-cr", "--quiet", str(patch)],
            cwd=path,
            capture_output=True,
            text=True,
            env=env,
        )
        if result.returncode:
            subprocess.run(["git", "am", "--abort"], cwd=path, env=env)
            raise ScriptError(f"git am {patch.name} failed:\n{result.stderr.strip()}")
        return
    git("apply", "--index", "--reverse", str(patch), cwd=path, env=env)
    message = f'Reverted "{subject}"\n\nThis reverts {patch.name} of django-multidb.\n'
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=path, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("path", type=Path, help="top of the Django 5.2.x tree")
    parser.add_argument(
        "--check", action="store_true", help="report whether each patch applies"
    )
    parser.add_argument("--reverse", action="store_true", help="remove the series")
    args = parser.parse_args()
    return apply(args.path, check=args.check, reverse=args.reverse)


if __name__ == "__main__":
    run_main(main)
