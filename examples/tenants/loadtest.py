#!/usr/bin/env python3
"""
Serve this project with uvicorn on a Unix socket and load it: concurrent
requests to many tenants, mixing writes (sync view) and reads (async views),
while tenants are added and removed with the tenant command. Then check that
every note landed in its own tenant's database and nothing else did, that no
request failed, and that the idle server holds no database open (SQLite
files open in its processes, or sessions on the PostgreSQL server); print
requests per second with the tenant middleware's override and without it
(the same views on the default database).

    python loadtest.py [--tenants 20] [--requests 3000] [--concurrency 50]
                       [--workers 1] [--db sqlite|postgres] [--pg-host DIR]
                       [--no-rates]

With --db postgres, the tenants are databases of the PostgreSQL server at
--pg-host (default: the first of MULTIDB_PGHOSTS, which the fork's
scripts/servers/pgcluster.py sets for a throwaway server), created and dropped with
psql as the postgres user; the run drops every database it created.

Needs uvicorn and httpx. Exits 1, saying why, if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (uvicorn's workers)."""
    pids = [pid]
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                found = children.read().split()
        except FileNotFoundError:
            continue  # A thread (of the thread pool) that ended meanwhile.
        for child in found:
            pids.extend(process_tree(int(child)))
    return pids


def open_database_files(pid: int) -> int:
    """How many SQLite files the process pid and its workers hold open."""
    count = 0
    for each in process_tree(pid):
        for fd in os.listdir(f"/proc/{each}/fd"):
            try:
                target = os.readlink(f"/proc/{each}/fd/{fd}")
            except OSError:
                continue
            count += target.endswith(".sqlite3")
    return count


def psql(host: str, database: str, script: str, **variables: str) -> list[str]:
    """Run script with psql on database, as postgres; psql quotes :"name"."""
    command = ["psql", "-h", host, "-U", "postgres", "-d", database]
    command += ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for name, value in variables.items():
        command += ["-v", f"{name}={value}"]
    result = subprocess.run(
        command, input=script, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def wait_until_serving(socket_path: str, server, timeout: float = 30) -> None:
    """Wait until the server answers (its socket exists before it listens)."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("The server didn't start.")
        # A socket of our own, closed whether it connects or not.
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(socket_path)
                break
            except OSError:
                pass
        time.sleep(0.05)
    transport = httpx.HTTPTransport(uds=socket_path)
    with httpx.Client(transport=transport, base_url="http://tenants") as client:
        client.get("/notes/count/").raise_for_status()


class SQLiteTenants:
    """The tenants' databases as files, read back with sqlite3."""

    label = "database files the idle server holds open"

    def __init__(self, tmp: str):
        self.env = {
            "TENANTS_DIR": os.path.join(tmp, "tenants"),
            "TENANTS_DEFAULT_DB": os.path.join(tmp, "default.sqlite3"),
        }

    def tokens(self, tenant: str | None) -> set[str]:
        if tenant is None:
            path = self.env["TENANTS_DEFAULT_DB"]
        else:
            path = Path(self.env["TENANTS_DIR"]) / f"{tenant}.sqlite3"
        with sqlite3.connect(path) as db:
            return {row[0] for row in db.execute("SELECT token FROM notes_note")}

    def open_now(self, server) -> int:
        return open_database_files(server.pid)

    def clean(self) -> None:
        pass  # The temporary directory goes.


class PostgreSQLTenants:
    """The tenants' databases on a PostgreSQL server, read back with psql."""

    label = "sessions the idle server holds on its databases"
    default = "tenants_default"

    def __init__(self, host: str):
        self.host = host
        self.env = {"TENANTS_PG_HOST": host, "TENANTS_PG_DEFAULT": self.default}
        psql(host, "postgres", 'CREATE DATABASE :"name";', name=self.default)

    def tokens(self, tenant: str | None) -> set[str]:
        database = self.default if tenant is None else f"tenant_{tenant}"
        return set(psql(self.host, database, "SELECT token FROM notes_note;"))

    def databases(self) -> list[str]:
        return psql(
            self.host,
            "postgres",
            "SELECT datname FROM pg_database "
            "WHERE datname = :'name' OR datname LIKE 'tenant\\_%';",
            name=self.default,
        )

    def open_now(self, server) -> int:
        count = psql(
            self.host,
            "postgres",
            # Not autovacuum's workers, which come and go on any database.
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' "
            "AND (datname = :'name' OR datname LIKE 'tenant\\_%');",
            name=self.default,
        )
        return int(count[0])

    def clean(self) -> None:
        for database in self.databases():
            psql(
                self.host,
                "postgres",
                'DROP DATABASE :"name" WITH (FORCE);',
                name=database,
            )


class Load:
    def __init__(self, client: httpx.AsyncClient, concurrency: int):
        self.client = client
        self.slots = asyncio.Semaphore(concurrency)
        self.posted: dict[str, set[str]] = {}
        self.failures: list[str] = []
        self.unanswered: dict[str | None, int] = {}

    async def request(self, tenant: str | None, method: str, url: str, **kwargs):
        prefix = f"/t/{tenant}" if tenant else ""
        async with self.slots:
            try:
                return await self.client.request(method, prefix + url, **kwargs)
            except httpx.HTTPError as exc:
                self.failures.append(f"{method} {prefix}{url}: {exc!r}")
                return None

    async def write(self, tenant: str | None) -> None:
        token = uuid.uuid4().hex
        response = await self.request(tenant, "POST", "/notes/", data={"token": token})
        if response is None:
            return
        expected = f"tenant_{tenant}" if tenant else "default"
        if response.status_code != 201 or response.json()["database"] != expected:
            self.failures.append(
                f"POST to {tenant}: {response.status_code} {response.text}"
            )
            return
        self.posted.setdefault(tenant, set()).add(token)

    async def read(self, tenant: str | None) -> None:
        url = random.choice(["/notes/", "/notes/count/"])
        response = await self.request(tenant, "GET", url)
        if response is not None and response.status_code != 200:
            self.failures.append(f"GET {url} of {tenant}: {response.status_code}")

    async def one(self, tenant: str | None) -> None:
        if random.random() < 0.5:
            await self.write(tenant)
        else:
            await self.read(tenant)

    def start(self, tenant: str | None) -> asyncio.Task:
        """
        Schedule one request to tenant. It counts in self.unanswered from
        now, not from when it gets one of the slots: a tenant is removed once
        every request sent its way while it was active has been answered.
        """
        self.unanswered[tenant] = self.unanswered.get(tenant, 0) + 1
        task = asyncio.create_task(self.one(tenant))
        task.add_done_callback(lambda task: self.answered(tenant))
        return task

    def answered(self, tenant: str | None) -> None:
        self.unanswered[tenant] -= 1


async def held_open(store, server, at_most: int, timeout: float = 10) -> int:
    """
    What the idle server holds open (store.open_now()), read again until it
    is at most at_most or timeout seconds have passed: a session or a file
    that was just closed takes a moment to go.
    """
    deadline = time.monotonic() + timeout
    while True:
        count = store.open_now(server)
        if count <= at_most or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.1)


async def run_load(args, env, store, socket_path: str, server) -> list[str]:
    transport = httpx.AsyncHTTPTransport(uds=socket_path)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://tenants", timeout=60
    ) as client:
        load = Load(client, args.concurrency)
        active = [f"t{n}" for n in range(args.tenants)]
        # Warm up: every tenant once, then the server is idle.
        await asyncio.gather(*(load.one(t) for t in active))
        idle_before = await held_open(store, server, at_most=0)
        processes = set(process_tree(server.pid))

        async def change_tenants():
            await asyncio.sleep(0.5)
            added = [f"n{n}" for n in range(5)]
            await asyncio.to_thread(manage, env, "tenant", "add", *added)
            active.extend(added)
            removed = active[:3]
            del active[:3]
            while any(load.unanswered.get(t) for t in removed):
                await asyncio.sleep(0.01)
            await asyncio.to_thread(manage, env, "tenant", "remove", *removed)
            return added, removed

        changer = asyncio.create_task(change_tenants())
        start = time.perf_counter()
        pending = set()
        for _ in range(args.requests):
            pending.add(load.start(random.choice(active)))
            if len(pending) >= args.concurrency * 2:
                done, pending = await asyncio.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED
                )
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - start
        added, removed = await changer
        print(
            f"{args.requests} mixed requests to {args.tenants}+5-3 tenants "
            f"({args.db}, {args.workers} worker(s)): "
            f"{args.requests / elapsed:.0f} requests/s"
        )
        problems = list(load.failures)
        if set(process_tree(server.pid)) != processes:
            # Its requests in flight failed too: closed or reset connections.
            problems.append(
                "uvicorn replaced a worker during the load: it died or didn't "
                "answer uvicorn's health check in time"
            )

        # A removed tenant is gone for the server too.
        for tenant in removed:
            response = await load.request(tenant, "GET", "/notes/count/")
            if response is None or response.status_code != 404:
                problems.append(
                    f"removed tenant {tenant}: {response and response.status_code}"
                )
            load.posted.pop(tenant, None)

        # Every note is in its own tenant's database, and only there.
        for tenant in active:
            stored = store.tokens(tenant)
            if stored != load.posted.get(tenant, set()):
                problems.append(
                    f"tenant {tenant}: {len(stored)} notes stored, "
                    f"{len(load.posted.get(tenant, ()))} posted to it"
                )
        if store.tokens(None):
            problems.append("notes landed on the default database")

        idle_after = await held_open(store, server, at_most=idle_before)
        print(f"{store.label}: {idle_before} before, {idle_after} after")
        if idle_after > idle_before:
            problems.append(f"{idle_after - idle_before} left open: {store.label}")

        problems.extend(load.failures[len(problems) :])
        return problems, active[0]


async def read_rate(socket_path: str, tenant: str | None, args) -> float:
    """Requests per second of reads only, to tenant (None: at /)."""
    transport = httpx.AsyncHTTPTransport(uds=socket_path)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://tenants", timeout=60
    ) as client:
        load = Load(client, args.concurrency)
        count = args.requests // 3
        start = time.perf_counter()
        await asyncio.gather(*(load.read(tenant) for _ in range(count)))
        rate = count / (time.perf_counter() - start)
    if load.failures:
        raise SystemExit(f"Reads failed: {load.failures[:3]}")
    return rate


def start_server(env: dict[str, str], socket_path: str, workers: int, *options: str):
    """Start uvicorn on socket_path with options (e.g. --root-path /app)."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tenants_site.asgi:application",
            "--uds",
            socket_path,
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            # The client's pool may leave a connection idle for a while:
            # not closed by the server just as a request is sent on it.
            "--timeout-keep-alive",
            "60",
            *options,
        ],
        cwd=PROJECT,
        env=env,
    )
    wait_until_serving(socket_path, server)
    return server


def stop_server(server) -> None:
    server.terminate()
    server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--no-rates",
        action="store_true",
        help="skip the side-by-side reads (six more servers started)",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--pg-host",
        default=os.environ.get("MULTIDB_PGHOSTS", "").split(os.pathsep)[0],
    )
    args = parser.parse_args()
    if args.db == "postgres" and not args.pg_host:
        parser.error("--db postgres needs --pg-host (or MULTIDB_PGHOSTS).")
    with tempfile.TemporaryDirectory() as tmp:
        if args.db == "postgres":
            store = PostgreSQLTenants(args.pg_host)
        else:
            store = SQLiteTenants(tmp)
        env = {**os.environ, **store.env}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        server = None
        try:
            manage(env, "installmodels", "notes")
            manage(env, "tenant", "add", *(f"t{n}" for n in range(args.tenants)))
            socket_path = os.path.join(tmp, "server.sock")
            server = start_server(env, socket_path, args.workers)
            problems, tenant = asyncio.run(
                run_load(args, env, store, socket_path, server)
            )
            stop_server(server)
            server = None
            if args.no_rates:
                return report(problems)
            # Reads of one tenant's notes, side by side, each on a server
            # started for it: through the middleware (the tenant looked up,
            # its database bound by the override), and by a server that
            # serves that tenant only, bound in its settings.
            # Alternated three times, the best of each: this machine's noise.
            rates = {"override": [], "settings": []}
            ways = {
                "override": ({}, tenant),
                "settings": ({"TENANTS_SINGLE": tenant}, None),
            }
            for way in ["override", "settings"] * 3:
                extra, url_tenant = ways[way]
                Path(socket_path).unlink(missing_ok=True)
                server = start_server({**env, **extra}, socket_path, args.workers)
                asyncio.run(read_rate(socket_path, url_tenant, args))  # Warm up.
                rates[way].append(asyncio.run(read_rate(socket_path, url_tenant, args)))
                stop_server(server)
            with_override, without = max(rates["override"]), max(rates["settings"])
            print(
                f"reads of one tenant: {with_override:.0f} requests/s through "
                f"the tenant middleware and override_bindings(), {without:.0f} "
                f"bound in the settings ({with_override / without:.2f}x)"
            )
            server = None
        finally:
            if server is not None:
                stop_server(server)
            store.clean()
    return report(problems)


def report(problems: list[str]) -> int:
    for problem in problems:
        print("FAILED:", problem)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
