#!/usr/bin/env python3
"""
Run a command against a throwaway MariaDB (or MySQL) server.

    python scripts/servers/mariadbserver.py -- COMMAND [ARGS...]

Creates the server with mariadb-install-db (or mysql_install_db) in a new
temporary directory, listening on a Unix socket only (skip-networking), with
a root user that needs no password, and starts it. COMMAND runs with
MULTIDB_MYSQL_HOST set to the socket's path (Django's MySQL backend takes a
HOST that starts with "/" as a socket); the server is stopped and its
directory removed when it ends, even when it fails or is interrupted. The
exit status is COMMAND's.

The binaries are taken from MULTIDB_MARIADB_BINDIR when it is set (a
directory without them is an error), else looked up on PATH, then in /usr/bin
and /usr/sbin. If MULTIDB_MYSQL_HOST is already set, COMMAND runs against
that server (with MULTIDB_MYSQL_PORT, _USER, _PASSWORD) and nothing is
created.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ScriptError, run_main

# (what it does, its names by preference)
BINARIES = {
    "install": ["mariadb-install-db", "mysql_install_db"],
    "server": ["mariadbd", "mysqld"],
}
STANDARD_DIRS = [Path("/usr/bin"), Path("/usr/sbin")]


def find_binaries() -> dict[str, Path]:
    if os.environ.get("MULTIDB_MARIADB_BINDIR"):
        directories = [Path(os.environ["MULTIDB_MARIADB_BINDIR"])]
        where = f"MULTIDB_MARIADB_BINDIR ({directories[0]})"
    else:
        path = os.environ.get("PATH", "").split(os.pathsep)
        directories = [Path(p) for p in path if p] + STANDARD_DIRS
        where = "PATH, /usr/bin or /usr/sbin"
    found = {}
    for role, names in BINARIES.items():
        for directory in directories:
            match = next(
                (directory / n for n in names if (directory / n).exists()), None
            )
            if match:
                found[role] = match
                break
    missing = [BINARIES[role][0] for role in BINARIES if role not in found]
    if missing:
        raise ScriptError(
            f"The MariaDB server binaries ({', '.join(missing)}) aren't in {where}: "
            f"install them (Debian: apt-get install mariadb-server), set "
            f"MULTIDB_MARIADB_BINDIR to their directory, or point MULTIDB_MYSQL_HOST "
            f"(and _PORT, _USER, _PASSWORD) at a running server."
        )
    return found


class Server:
    def __init__(self, binaries: dict[str, Path], root: Path, as_user: str | None):
        self.binaries = binaries
        self.root = root
        self.data = root / "data"
        self.socket = root / "mysqld.sock"
        self.log = root / "server.log"
        self.as_user = as_user
        self.process: subprocess.Popen | None = None

    def options(self) -> list[str]:
        options = [
            "--no-defaults",
            f"--datadir={self.data}",
            f"--socket={self.socket}",
            f"--pid-file={self.root / 'mysqld.pid'}",
        ]
        if self.as_user:
            options.append(f"--user={self.as_user}")
        return options

    def start(self, timeout: float = 60) -> None:
        self.data.mkdir()
        if self.as_user:
            user = pwd.getpwnam(self.as_user)
            for path in (self.root, self.data):
                os.chown(path, user.pw_uid, user.pw_gid)
        result = subprocess.run(
            [str(self.binaries["install"]), *self.options()]
            + ["--auth-root-authentication-method=normal", "--skip-test-db"],
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise ScriptError(
                f"{self.binaries['install'].name} failed:\n"
                + (result.stderr.strip() or result.stdout.strip())
            )
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [str(self.binaries["server"]), *self.options()]
                + ["--skip-networking", f"--log-error={self.log}"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ScriptError(
                    f"The MariaDB server didn't start:\n{self.log.read_text().strip()}"
                )
            time.sleep(0.1)

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        admin = shutil.which("mariadb-admin") or shutil.which("mysqladmin")
        if admin is None:
            return True
        return not subprocess.run(
            [admin, "--no-defaults", f"--socket={self.socket}", "-uroot", "ping"],
            capture_output=True,
        ).returncode

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_with_server(command: list[str]) -> int:
    if os.environ.get("MULTIDB_MYSQL_HOST"):
        print(
            f"Using the server at MULTIDB_MYSQL_HOST={os.environ['MULTIDB_MYSQL_HOST']}"
        )
        return subprocess.run(command).returncode
    binaries = find_binaries()
    as_user = None
    if os.geteuid() == 0:
        # mariadbd refuses to run as root unless told to; run it as mysql.
        try:
            pwd.getpwnam("mysql")
            as_user = "mysql"
        except KeyError:
            as_user = "root"
    root = Path(tempfile.mkdtemp(prefix="multidb-mariadb-"))
    root.chmod(0o755)
    server = Server(binaries, root, as_user)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        server.start()
        print(
            f"Started a throwaway MariaDB server from {binaries['server']} in "
            f"{time.monotonic() - started:.1f}s: {server.socket}",
            flush=True,
        )
        env = dict(
            os.environ,
            MULTIDB_MYSQL_HOST=str(server.socket),
            MULTIDB_MYSQL_USER="root",
            MULTIDB_MYSQL_PASSWORD="",
        )
        env.pop("MULTIDB_MYSQL_PORT", None)
        return subprocess.run(command, env=env).returncode
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        print(
            f"Stopped and removed the throwaway MariaDB server in {root}.", flush=True
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    return run_with_server(command)


if __name__ == "__main__":
    run_main(main)
