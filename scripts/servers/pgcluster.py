#!/usr/bin/env python3
"""
Run a command against throwaway PostgreSQL servers.

    python scripts/servers/pgcluster.py [--servers 2] [--standbys 0] -- COMMAND ...

Creates each server with initdb in a new temporary directory, listening on a
Unix socket only (listen_addresses=''), with max_prepared_transactions > 0,
as the 'postgres' user when run as root (initdb refuses root). COMMAND runs
with MULTIDB_PGHOSTS set to the servers' socket directories and
MULTIDB_PGDATA to their data directories (for tests that stop and restart a
server with pg_ctl), separated by os.pathsep, and MULTIDB_PG_BINDIR; the
servers are stopped and their directories removed when it ends, even when it
fails or is interrupted. The exit status is COMMAND's.

With --standbys N, the first server is also the primary of N hot standbys,
made with pg_basebackup -R and streaming its WAL asynchronously, each through
a replication slot of its own (so that a standby paused or stopped by a test
finds the WAL it missed): MULTIDB_PG_STANDBYS and MULTIDB_PG_STANDBY_DATA
list their socket and data directories.

The server binaries (initdb, pg_ctl) are taken from MULTIDB_PG_BINDIR when
it is set (a directory without them is an error), else looked up on PATH,
then in /usr/lib/postgresql/*/bin. If MULTIDB_PGHOSTS is already set,
COMMAND runs against those servers and nothing is created.
"""

from __future__ import annotations

import argparse
import glob
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

SERVER_SETTINGS = {
    "listen_addresses": "''",
    "max_prepared_transactions": "20",
    "max_connections": "100",
    # Throwaway servers: surviving an operating system crash only costs
    # time (--durable keeps it). Commits still reach the kernel before they
    # return, so a test can stop a server with -m immediate and lose nothing.
    "fsync": "off",
    "synchronous_commit": "on",
    "full_page_writes": "off",
}


def find_bindir() -> Path:
    if os.environ.get("MULTIDB_PG_BINDIR"):
        # A directory the user named is the one to use, or an error.
        bindir = Path(os.environ["MULTIDB_PG_BINDIR"])
        missing = [
            name for name in ("initdb", "pg_ctl") if not (bindir / name).exists()
        ]
        if missing:
            raise ScriptError(
                f"MULTIDB_PG_BINDIR is {str(bindir)!r}, which has no "
                f"{' or '.join(missing)}: set it to the directory of the PostgreSQL "
                f"server binaries (e.g. /usr/lib/postgresql/15/bin), or unset it "
                f"to look them up on PATH and in /usr/lib/postgresql/*/bin."
            )
        return bindir
    candidates = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    candidates.extend(Path(p) for p in reversed(debian))
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise ScriptError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in "
        "/usr/lib/postgresql/*/bin. Install them (Debian: apt-get install "
        "postgresql), set MULTIDB_PG_BINDIR to their directory, or set "
        "MULTIDB_PGHOSTS to the socket directories of running servers."
    )


class Cluster:
    def __init__(self, bindir: Path, root: Path, name: str, as_user: str | None):
        self.bindir = bindir
        self.data = root / name / "data"
        self.socket_dir = root / name / "socket"
        self.log = root / name / "server.log"
        self.as_user = as_user
        self.started = False

    def run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            log = self.log.read_text() if self.log.exists() else ""
            raise ScriptError(
                f"{args[0]} failed:\n{result.stderr.strip() or result.stdout.strip()}"
                + (f"\n{log.strip()}" if log else "")
            )

    def make_directories(self) -> None:
        for path in (self.data.parent, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            user = pwd.getpwnam(self.as_user)
            for path in (self.data.parent, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        # Clients of any user must reach the socket.
        self.socket_dir.chmod(0o755)

    def start(self, settings: dict[str, str]) -> None:
        self.make_directories()
        self.run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        # In postgresql.conf, so that a test can restart the server with a
        # plain pg_ctl start.
        settings = dict(settings, unix_socket_directories=f"'{self.socket_dir}'")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self.run_server()

    def start_standby(self, primary: Cluster, slot: str) -> None:
        """
        Copy primary's data with pg_basebackup -R, which makes this a standby
        streaming primary's WAL through slot, and start it on a socket of its
        own (the copied postgresql.conf names primary's: a later line wins).
        """
        self.make_directories()
        self.run(
            "pg_basebackup",
            "--pgdata",
            str(self.data),
            "--host",
            str(primary.socket_dir),
            "--username=postgres",
            "--write-recovery-conf",
            "--wal-method=stream",
            "--create-slot",
            f"--slot={slot}",
            "--checkpoint=fast",
            "--no-sync",
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"unix_socket_directories = '{self.socket_dir}'\n")
        self.run_server()

    def run_server(self) -> None:
        data, log = str(self.data), str(self.log)
        self.run("pg_ctl", "start", "--pgdata", data, "--wait", "--log", log)
        self.started = True

    def stop(self) -> None:
        if self.started:
            try:
                self.run(
                    "pg_ctl", "stop", "--pgdata", str(self.data), "-m", "immediate"
                )
            except ScriptError as exc:
                print(f"warning: {exc}", file=sys.stderr)
            self.started = False


def create_database(host: str, name: str, drop_first: bool = False) -> None:
    """
    Create the database name on the server at host (a socket directory) as
    the postgres user; psql quotes the name (:"name").
    """
    statements = 'CREATE DATABASE :"name";'
    if drop_first:
        statements = 'DROP DATABASE IF EXISTS :"name";' + statements
    subprocess.run(
        ["psql", "-h", host, "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
        + ["-v", f"name={name}"],
        input=statements,
        text=True,
        check=True,
    )


def run_with_clusters(
    command: list[str], servers: int, durable: bool, standbys: int = 0
) -> int:
    if os.environ.get("MULTIDB_PGHOSTS"):
        if standbys and not os.environ.get("MULTIDB_PG_STANDBYS"):
            raise ScriptError(
                "--standbys can't be given servers in MULTIDB_PGHOSTS without "
                "their standbys: set MULTIDB_PG_STANDBYS to the standbys' socket "
                "directories, or unset MULTIDB_PGHOSTS to start throwaway servers."
            )
        print(f"Using the servers in MULTIDB_PGHOSTS={os.environ['MULTIDB_PGHOSTS']}")
        return subprocess.run(command).returncode
    bindir = find_bindir()
    as_user = "postgres" if os.geteuid() == 0 else None
    if as_user:
        try:
            pwd.getpwnam(as_user)
        except KeyError:
            raise ScriptError("running as root needs a 'postgres' user to run initdb.")
    settings = dict(SERVER_SETTINGS)
    if durable:
        for key in ("fsync", "full_page_writes"):
            settings[key] = "on"
    root = Path(tempfile.mkdtemp(prefix="multidb-pg-"))
    root.chmod(0o755)
    clusters = [Cluster(bindir, root, f"server{i}", as_user) for i in range(servers)]
    replicas = [
        Cluster(bindir, root, f"server0-standby{i}", as_user) for i in range(standbys)
    ]

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        for cluster in clusters:
            cluster.start(settings)
        for index, replica in enumerate(replicas):
            replica.start_standby(clusters[0], slot=f"standby{index}")
        hosts = os.pathsep.join(str(c.socket_dir) for c in clusters)
        print(
            f"Started {servers} throwaway PostgreSQL server(s) from {bindir} in "
            f"{time.monotonic() - started:.1f}s: {hosts}",
            flush=True,
        )
        env = dict(
            os.environ,
            MULTIDB_PGHOSTS=hosts,
            MULTIDB_PGDATA=os.pathsep.join(str(c.data) for c in clusters),
            MULTIDB_PG_BINDIR=str(bindir),
        )
        if replicas:
            standby_hosts = os.pathsep.join(str(c.socket_dir) for c in replicas)
            print(f"and {standbys} standby(s) of the first: {standby_hosts}")
            env.update(
                MULTIDB_PG_STANDBYS=standby_hosts,
                MULTIDB_PG_STANDBY_DATA=os.pathsep.join(str(c.data) for c in replicas),
            )
        return subprocess.run(command, env=env).returncode
    finally:
        for cluster in [*replicas, *clusters]:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        print(f"Stopped and removed the throwaway server(s) in {root}.", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=2, help="how many (default 2)")
    parser.add_argument(
        "--standbys",
        type=int,
        default=0,
        help="hot standbys of the first server, streaming its WAL (default 0)",
    )
    parser.add_argument(
        "--durable", action="store_true", help="keep fsync and synchronous_commit on"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    return run_with_clusters(command, args.servers, args.durable, args.standbys)


if __name__ == "__main__":
    run_main(main)
