#!/usr/bin/env python3
"""
Build the documentation of the patched tree with Sphinx, as upstream's
`make html` does (the djangohtml builder, nitpicky), and fail on any warning
that the pristine release's documentation doesn't have.

    python scripts/series/build_docs.py    # after scripts/series/vendor.py

The HTML lands in build/docs/html/ (open build/docs/html/index.html). The
pristine docs (the tag 'upstream' of build/tree) are built once per Sphinx
version: their warnings are kept in build/docs/pristine-<version>.txt.
Warnings are compared without line numbers, which the patches shift.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ScriptError, run_main
from series._series import BUILD, TREE, UPSTREAM_TAG, git

OUT = BUILD / "docs"
# "/abs/path/docs/ref/models/options.txt:120: WARNING: ..." and the like.
LOCATION = re.compile(r"^(?P<path>[^:\s]+?)(?::(?P<line>\d+))?: (?P<rest>.*)$")


def sphinx_version() -> str:
    import sphinx

    return sphinx.__version__


def build(docs: Path, html: Path, warnings: Path) -> None:
    """Build docs into html, writing Sphinx's warnings to warnings."""
    shutil.rmtree(html, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "djangohtml",
        "-n",
        "-q",
        "-j",
        "auto",
        "-D",
        "language=en",
        "-d",
        str(html.parent / f"{html.name}-doctrees"),
        "-w",
        str(warnings),
        str(docs),
        str(html),
    ]
    print(f"Building {docs} with Sphinx {sphinx_version()}.", flush=True)
    result = subprocess.run(command, stderr=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ScriptError(f"Sphinx failed on {docs} (exit {result.returncode}).")


def normalized(warnings: Path, docs: Path) -> Counter:
    """The warnings of a build, relative to docs and without line numbers."""
    found = Counter()
    prefixes = [str(docs.resolve()) + "/", str(docs) + "/"]
    for line in warnings.read_text().splitlines():
        if not line.strip() or line.startswith((" ", "\t")):
            continue
        match = LOCATION.match(line)
        if match:
            path = match["path"]
            for prefix in prefixes:
                path = path.removeprefix(prefix)
            line = f"{path}: {match['rest']}"
        found[line] += 1
    return found


def pristine_warnings() -> Counter:
    """The warnings of the pristine release's docs, built once per Sphinx."""
    kept = OUT / f"pristine-{sphinx_version()}.txt"
    if not kept.exists():
        with tempfile.TemporaryDirectory(dir=BUILD) as work:
            source = Path(work) / "src"
            source.mkdir()
            archive = Path(work) / "pristine.tar"
            git("archive", "-o", str(archive), UPSTREAM_TAG, "docs", "django", cwd=TREE)
            with tarfile.open(archive) as tar:
                tar.extractall(source, filter="data")
            warnings = Path(work) / "warnings.txt"
            build(source / "docs", Path(work) / "html", warnings)
            found = normalized(warnings, source / "docs")
        lines = [f"{count}\t{line}" for line, count in sorted(found.items())]
        kept.write_text("".join(f"{line}\n" for line in lines))
    found = Counter()
    for line in kept.read_text().splitlines():
        count, _, warning = line.partition("\t")
        found[warning] = int(count)
    return found


def main() -> int:
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    if not (TREE / "docs" / "conf.py").exists():
        raise ScriptError("build/tree is missing: run scripts/series/vendor.py first.")
    OUT.mkdir(parents=True, exist_ok=True)
    before = pristine_warnings()
    warnings = OUT / "warnings.txt"
    build(TREE / "docs", OUT / "html", warnings)
    after = normalized(warnings, TREE / "docs")
    new = after - before
    print(
        f"HTML: {OUT / 'html' / 'index.html'}. Warnings: {sum(after.values())} "
        f"(pristine {sum(before.values())}), {sum(new.values())} new."
    )
    if new:
        for warning in sorted(new):
            print(f"  new: {warning}")
        return 1
    return 0


if __name__ == "__main__":
    run_main(main)
