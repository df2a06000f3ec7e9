#!/usr/bin/env python3
"""
Run the whole test suite: install what it needs, then run tox.

The tox envs need, besides Python packages that tox installs itself:

- the PostgreSQL server binaries (initdb, pg_ctl) and libpq's headers
  (pg_config), for the throwaway PostgreSQL servers and psycopg2;
- the MariaDB server binaries (mariadb-install-db), for the throwaway
  MariaDB server;
- the MariaDB client headers and pkg-config, which mysqlclient builds with;
- tox itself.

What's missing is installed with apt-get (as root) and pip, each saying what
it installs. Where that isn't possible (not root, no apt-get), one line says
what to install, and nothing runs. Arguments go to tox; with -e, only what
the envs named need is installed:

    python3 scripts/run_tests.py              # every env, as CI does
    python3 scripts/run_tests.py -e sqlite    # one env
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from _common import ROOT

# Where tox writes what each env ran, for the recap of failures.
RESULT_JSON = ROOT / "build" / "tox-result.json"
# How much of a failed command's output the recap repeats.
RECAP_LINES = 60


@dataclass
class Requirement:
    what: str
    # The Debian packages that provide it.
    packages: list[str]
    present: Callable[[], bool]
    # The tox envs that need it.
    envs: set[str]


def command(name: str, *patterns: str) -> Callable[[], bool]:
    def present() -> bool:
        return shutil.which(name) is not None or any(
            glob.glob(pattern) for pattern in patterns
        )

    return present


def pkg_config(*modules: str) -> Callable[[], bool]:
    def present() -> bool:
        if shutil.which("pkg-config") is None:
            return False
        return any(
            subprocess.run(["pkg-config", "--exists", module]).returncode == 0
            for module in modules
        )

    return present


POSTGRES = {
    "postgres",
    "postgres-psycopg3",
    "split-postgres",
    "upstream-postgres",
    "bench",
}
MARIADB = {"mariadb", "bench"}
REQUIREMENTS = [
    Requirement(
        "the PostgreSQL server binaries",
        ["postgresql"],
        command("initdb", "/usr/lib/postgresql/*/bin/initdb"),
        POSTGRES,
    ),
    Requirement(
        "libpq's headers (pg_config)", ["libpq-dev"], command("pg_config"), POSTGRES
    ),
    Requirement(
        "the MariaDB server binaries",
        ["mariadb-server"],
        command("mariadb-install-db", "/usr/bin/mysql_install_db"),
        MARIADB,
    ),
    Requirement(
        "the MariaDB client headers",
        ["libmariadb-dev", "pkg-config"],
        pkg_config("libmariadb", "mysqlclient"),
        MARIADB,
    ),
]


def chosen_envs(args: list[str]) -> set[str] | None:
    """The envs named with -e (or --env, TOXENV), or None for every env."""
    names = os.environ.get("TOXENV", "")
    if "--" in args:
        # What follows goes to the envs' commands.
        args = args[: args.index("--")]
    for i, arg in enumerate(args):
        if arg in ("-e", "--env") and i + 1 < len(args):
            names = args[i + 1]
        elif arg.startswith(("-e", "--env=")) and arg not in ("-e", "--env"):
            names = arg.removeprefix("--env=").removeprefix("-e")
    if not names or "ALL" in names.split(","):
        return None
    return set(names.split(","))


def install_system_packages(envs: set[str] | None) -> bool:
    missing = [
        req
        for req in REQUIREMENTS
        if (envs is None or envs & req.envs) and not req.present()
    ]
    if not missing:
        return True
    packages = sorted({package for req in missing for package in req.packages})
    needed = "; ".join(f"{req.what} ({', '.join(req.packages)})" for req in missing)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            f"Missing: {needed}. Install the packages {' '.join(packages)} "
            f"(e.g. sudo apt-get install {' '.join(packages)}) and run again.",
            file=sys.stderr,
        )
        return False
    print(f"Installing with apt-get: {' '.join(packages)}, for {needed}.", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["update", "-qq"], ["install", "-y", "-qq", *packages]):
        result = subprocess.run(["apt-get", *args], env=env, stdout=subprocess.DEVNULL)
        if result.returncode != 0:
            print(
                f"apt-get {' '.join(args)} failed (exit {result.returncode}): "
                f"install {' '.join(packages)} and run again.",
                file=sys.stderr,
            )
            return False
    still = [req.what for req in missing if not req.present()]
    if still:
        print(f"Still missing after apt-get: {', '.join(still)}.", file=sys.stderr)
        return False
    return True


def install_tox() -> bool:
    check = [sys.executable, "-m", "tox", "--version"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return True
    print("Installing with pip: tox>=4.", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "tox>=4"]
    )
    if result.returncode != 0:
        print(
            f"pip couldn't install tox (exit {result.returncode}): install "
            f"tox>=4 for {sys.executable} and run again.",
            file=sys.stderr,
        )
        return False
    return True


def main() -> int:
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if sys.version_info < (3, 11):
        print("Python 3.11 or newer is needed (Sphinx, for the docs).", file=sys.stderr)
        return 2
    if not (install_system_packages(chosen_envs(sys.argv[1:])) and install_tox()):
        return 2
    tox = [sys.executable, "-m", "tox", *sys.argv[1:]]
    print(f"Running: {' '.join(tox)}", flush=True)
    RESULT_JSON.parent.mkdir(exist_ok=True)
    RESULT_JSON.unlink(missing_ok=True)
    returncode = subprocess.run(
        [*tox, "--result-json", str(RESULT_JSON)], cwd=ROOT
    ).returncode
    if returncode != 0:
        recap_failures()
    return returncode


def recap_failures() -> None:
    """
    Repeat, after tox's summary, the end of each failed command's output:
    tox prints it in the middle of a long run, where it's easily lost.
    """
    try:
        result = json.loads(RESULT_JSON.read_text())
    except (OSError, ValueError) as e:
        print(f"No recap of the failures: {RESULT_JSON}: {e}", flush=True)
        return
    for env, data in result.get("testenvs", {}).items():
        for run in [*data.get("setup", []), *data.get("test", [])]:
            if run.get("retcode", 0) == 0:
                continue
            lines = (run.get("output", "") + run.get("err", "")).splitlines()
            failed = [line for line in lines if is_failure_line(line)]
            print(
                f"\n=== {env} failed (exit {run['retcode']}): "
                f"{' '.join(run.get('command', []))}",
            )
            if failed:
                print("Failing tests:", *failed[:50], sep="\n  ")
            print(f"Last {RECAP_LINES} lines of its output:")
            print(*lines[-RECAP_LINES:], sep="\n", flush=True)


def is_failure_line(line: str) -> bool:
    # pytest's short summary, and unittest's headers of a failure or error.
    return line.startswith(("FAILED ", "ERROR ", "FAIL: ", "ERROR: "))


if __name__ == "__main__":
    sys.exit(main())
