"""Helpers of the scripts that build, check and export the patch series."""

from __future__ import annotations

import ast
import filecmp
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT, ScriptError

PATCHES = ROOT / "patches"
BUILD = ROOT / "build"
SDIST_CACHE = BUILD / "sdist"
# The git checkout of the upstream sdist with one commit per patch.
TREE = BUILD / "tree"
# What TREE was built from: its HEAD and a digest of patches/.
STAMP = BUILD / "tree.stamp"
# The drop-in package users copy into their project.
VENDORED = ROOT / "django"

UPSTREAM_TAG = "upstream"
# Identity and date of every commit the scripts make, so that the exported
# patches never depend on who ran them or when.
FIXED_IDENTITY = {
    "GIT_AUTHOR_NAME": "django-multidb",
    "GIT_AUTHOR_EMAIL": "django-multidb@localhost",
    "GIT_AUTHOR_DATE": "2000-01-01T00:00:00+00:00",
    "GIT_COMMITTER_NAME": "django-multidb",
    "GIT_COMMITTER_EMAIL": "django-multidb@localhost",
    "GIT_COMMITTER_DATE": "2000-01-01T00:00:00+00:00",
}
IGNORED_NAMES = {"__pycache__", ".DS_Store"}
IGNORED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Pin:
    version: str
    sdist: str
    sha256: str

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.version.split("."))


def read_pin() -> Pin:
    """Read patches/UPSTREAM, the one place the upstream release is named."""
    values = {}
    for line in (PATCHES / "UPSTREAM").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    try:
        return Pin(values["version"], values["sdist"], values["sha256"])
    except KeyError as exc:
        raise ScriptError(f"patches/UPSTREAM has no {exc.args[0]!r} value.")


def read_series() -> list[str]:
    """Return the patch file names listed in patches/series, in order."""
    names = []
    for line in (PATCHES / "series").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def patches_digest() -> str:
    """Digest of everything in patches/ that decides the vendored tree."""
    digest = hashlib.sha256()
    for name in ["UPSTREAM", "series", *read_series()]:
        path = PATCHES / name
        digest.update(name.encode() + b"\0")
        if path.exists():
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_sdist(version: str) -> Path:
    """
    Return the path of Django version's sdist in build/sdist/, downloading it
    with pip when it isn't cached (pip checks it against the index's hash).
    Its name is django-VERSION.tar.gz, or Django-VERSION.tar.gz for older
    releases.
    """
    for name in (f"django-{version}.tar.gz", f"Django-{version}.tar.gz"):
        if (SDIST_CACHE / name).exists():
            return SDIST_CACHE / name
    SDIST_CACHE.mkdir(parents=True, exist_ok=True)
    print(f"Downloading Django {version} sdist with pip...", flush=True)
    with tempfile.TemporaryDirectory(dir=SDIST_CACHE) as tmp:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary=:all:",
                "--disable-pip-version-check",
                "--dest",
                tmp,
                f"django=={version}",
            ],
            capture_output=True,
            text=True,
        )
        found = sorted(Path(tmp).glob("*.tar.gz"))
        if result.returncode or len(found) != 1:
            raise ScriptError(
                f"pip could not download the sdist of Django {version}:\n"
                + (result.stderr.strip() or result.stdout.strip())
            )
        return found[0].replace(SDIST_CACHE / found[0].name)


def fetch_sdist(pin: Pin) -> Path:
    """
    Return the path of the pinned sdist, downloading it with pip into
    build/sdist/ when it isn't cached, and checking its sha256 either way.
    """
    path = SDIST_CACHE / pin.sdist
    if not path.exists():
        downloaded = download_sdist(pin.version)
        if downloaded.name != pin.sdist:
            raise ScriptError(
                f"pip downloaded {downloaded.name} for Django {pin.version}, but "
                f"patches/UPSTREAM names {pin.sdist}."
            )
        try:
            check_sha256(downloaded, pin)
        except ScriptError:
            downloaded.unlink()
            raise
    check_sha256(path, pin)
    return path


def check_sha256(path: Path, pin: Pin) -> None:
    actual = sha256_of(path)
    if actual != pin.sha256:
        raise ScriptError(
            f"{path} has sha256 {actual}, but patches/UPSTREAM pins {pin.sha256}. "
            f"Delete the file to download it again."
        )


def extract_sdist(sdist: Path, dest: Path) -> None:
    """Extract the sdist's top-level directory as dest."""
    dest.mkdir(parents=True)
    with tarfile.open(sdist) as tar:
        top = tar.getmembers()[0].name.split("/", 1)[0]
        members = []
        for member in tar.getmembers():
            if member.name == top:
                continue
            if not member.name.startswith(top + "/"):
                raise ScriptError(f"{sdist} has a stray member {member.name!r}.")
            member.name = member.name[len(top) + 1 :]
            members.append(member)
        tar.extractall(dest, members=members, filter="data")


def git_env() -> dict[str, str]:
    """
    An environment in which git ignores the user's and system's config and
    commits with the fixed identity, for the repositories under build/.
    """
    env = dict(os.environ)
    env.update(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    env.update(FIXED_IDENTITY)
    return env


def git(
    *args: str,
    cwd: Path,
    check: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=input,
        env=env if env is not None else git_env(),
    )
    if check and result.returncode:
        raise ScriptError(
            f"git {' '.join(args)} failed in {cwd}:\n"
            + (result.stderr.strip() or result.stdout.strip())
        )
    return result


def is_ignored(name: str) -> bool:
    return name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES)


def list_files(top: Path) -> set[str]:
    """Relative paths of the files under top, skipping bytecode caches."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if not is_ignored(d)]
        rel = Path(dirpath).relative_to(top)
        found.update(str(rel / f) for f in filenames if not is_ignored(f))
    return found


def tree_differences(a: Path, b: Path) -> list[str]:
    """Relative paths that differ between directories a and b."""
    files_a = list_files(a) if a.exists() else set()
    files_b = list_files(b) if b.exists() else set()
    different = files_a ^ files_b
    for rel in files_a & files_b:
        if not filecmp.cmp(a / rel, b / rel, shallow=False):
            different.add(rel)
    return sorted(different)


def read_stamp() -> tuple[str, str] | None:
    """The (HEAD, patches digest) build/tree and ./django were made from."""
    if not STAMP.exists():
        return None
    head, digest = STAMP.read_text().split()
    return head, digest


def write_stamp() -> None:
    head = git("rev-parse", "HEAD", cwd=TREE).stdout.strip()
    STAMP.write_text(f"{head} {patches_digest()}\n")


def vendored_edits() -> list[str]:
    """
    Paths under ./django that a developer changed since it was written: those
    that differ from the django/ of the build/tree commit it was made from.
    (A path that differs only because build/tree moved on is not an edit.)
    """
    stamp = read_stamp()
    if not VENDORED.exists() or stamp is None:
        return []
    candidates = tree_differences(VENDORED, TREE / "django")
    if not candidates:
        return []
    batch = "".join(f"{stamp[0]}:django/{rel}\n" for rel in candidates)
    out = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=TREE,
        input=batch.encode(),
        capture_output=True,
        env=git_env(),
        check=True,
    ).stdout
    edits = []
    for rel in candidates:
        header, _, out = out.partition(b"\n")
        if header.endswith(b" missing"):
            original = None
        else:
            size = int(header.split()[2])
            original, out = out[:size], out[size + 1 :]
        path = VENDORED / rel
        current = path.read_bytes() if path.exists() else None
        if current != original:
            edits.append(rel)
    return edits


def copy_tree_atomically(src: Path, dest: Path) -> None:
    """Replace dest with a copy of src; dest is never left half-written."""
    ignore = shutil.ignore_patterns(
        *IGNORED_NAMES, *(f"*{s}" for s in IGNORED_SUFFIXES)
    )
    new = dest.with_name(dest.name + ".new")
    old = dest.with_name(dest.name + ".old")
    for leftover in (new, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(src, new, ignore=ignore)
    if dest.exists():
        dest.rename(old)
    new.rename(dest)
    if old.exists():
        shutil.rmtree(old)


def sync_files(src: Path, dest: Path, paths: list[str]) -> None:
    """Make each relative path in dest a copy of src's (or remove it)."""
    for rel in paths:
        source, target = src / rel, dest / rel
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.exists():
            target.unlink()


_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)


def files_in_patch(text: str) -> list[str]:
    """Paths a git-style patch touches (both sides of renames)."""
    paths = []
    for a, b in _DIFF_GIT.findall(text):
        paths.extend(p for p in (a, b) if p not in paths)
    return paths


def patch_subject(text: str) -> str:
    match = re.search(r"^Subject: (.*(?:\n [^\n]*)*)", text, re.MULTILINE)
    return " ".join(match.group(1).split()) if match else "(no subject)"


def read_django_version(tree: Path) -> tuple | None:
    """The VERSION tuple declared in tree/django/__init__.py, if any."""
    init = tree / "django" / "__init__.py"
    if not init.exists():
        return None
    match = re.search(r"^VERSION = (\(.*\))$", init.read_text(), re.MULTILINE)
    if not match:
        return None
    return ast.literal_eval(match.group(1))
