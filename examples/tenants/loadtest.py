#!/usr/bin/env python3
"""
Serve this project with uvicorn on a Unix socket and load it: concurrent
requests to many tenants, mixing writes (sync view) and reads (async views),
while tenants are added and removed with the tenant command. Then check that
every note landed in its own tenant's database file and nothing else did,
that no request failed, and that the server holds no database file open once
idle; print requests per second with the tenant middleware's override and
without it (the same views on the default database).

    python loadtest.py [--tenants 20] [--requests 3000] [--concurrency 50]

Needs uvicorn and httpx. Exits 1, saying why, if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def open_database_files(pid: int) -> int:
    """How many SQLite files the process pid holds open."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        count += target.endswith(".sqlite3")
    return count


class Load:
    def __init__(self, client: httpx.AsyncClient, concurrency: int):
        self.client = client
        self.slots = asyncio.Semaphore(concurrency)
        self.posted: dict[str, set[str]] = {}
        self.failures: list[str] = []
        self.in_flight: dict[str, int] = {}

    async def request(self, tenant: str | None, method: str, url: str, **kwargs):
        prefix = f"/t/{tenant}" if tenant else ""
        async with self.slots:
            self.in_flight[tenant] = self.in_flight.get(tenant, 0) + 1
            try:
                response = await self.client.request(method, prefix + url, **kwargs)
            except httpx.HTTPError as exc:
                self.failures.append(f"{method} {prefix}{url}: {exc!r}")
                return None
            finally:
                self.in_flight[tenant] -= 1
        return response

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


async def run_load(args, env, socket_path: str, server) -> list[str]:
    transport = httpx.AsyncHTTPTransport(uds=socket_path)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://tenants", timeout=60
    ) as client:
        load = Load(client, args.concurrency)
        active = [f"t{n}" for n in range(args.tenants)]
        # Warm up: every tenant once, then the server is idle.
        await asyncio.gather(*(load.one(t) for t in active))
        await asyncio.sleep(0.5)
        idle_before = open_database_files(server.pid)

        async def change_tenants():
            await asyncio.sleep(0.5)
            added = [f"n{n}" for n in range(5)]
            await asyncio.to_thread(manage, env, "tenant", "add", *added)
            active.extend(added)
            removed = active[:3]
            del active[:3]
            while any(load.in_flight.get(t) for t in removed):
                await asyncio.sleep(0.01)
            await asyncio.to_thread(manage, env, "tenant", "remove", *removed)
            return added, removed

        changer = asyncio.create_task(change_tenants())
        start = time.perf_counter()
        pending = set()
        for _ in range(args.requests):
            pending.add(asyncio.create_task(load.one(random.choice(active))))
            if len(pending) >= args.concurrency * 2:
                done, pending = await asyncio.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED
                )
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - start
        added, removed = await changer
        print(
            f"{args.requests} mixed requests to {args.tenants}+5-3 tenants: "
            f"{args.requests / elapsed:.0f} requests/s"
        )
        problems = list(load.failures)

        # A removed tenant is gone for the server too.
        for tenant in removed:
            response = await load.request(tenant, "GET", "/notes/count/")
            if response is None or response.status_code != 404:
                problems.append(
                    f"removed tenant {tenant}: {response and response.status_code}"
                )
            load.posted.pop(tenant, None)

        # Every note is in its own tenant's file, and only there.
        for tenant in active:
            with sqlite3.connect(Path(env["TENANTS_DIR"]) / f"{tenant}.sqlite3") as db:
                stored = {row[0] for row in db.execute("SELECT token FROM notes_note")}
            if stored != load.posted.get(tenant, set()):
                problems.append(
                    f"tenant {tenant}: {len(stored)} notes stored, "
                    f"{len(load.posted.get(tenant, ()))} posted to it"
                )
        with sqlite3.connect(env["TENANTS_DEFAULT_DB"]) as db:
            if db.execute("SELECT count(*) FROM notes_note").fetchone()[0]:
                problems.append("notes landed on the default database")

        await asyncio.sleep(0.5)
        idle_after = open_database_files(server.pid)
        print(
            f"database files the idle server holds open: {idle_before} before, "
            f"{idle_after} after"
        )
        if idle_after > idle_before:
            problems.append(f"{idle_after - idle_before} database files left open")

        # Requests per second, reads only: through the override, and not.
        for label, tenant in (("with the override", active[0]), ("without it", None)):
            start = time.perf_counter()
            await asyncio.gather(
                *(load.read(tenant) for _ in range(args.requests // 3))
            )
            rate = (args.requests // 3) / (time.perf_counter() - start)
            print(f"reads {label}: {rate:.0f} requests/s")
        problems.extend(load.failures[len(problems) :])
        return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "TENANTS_DIR": os.path.join(tmp, "tenants"),
            "TENANTS_DEFAULT_DB": os.path.join(tmp, "default.sqlite3"),
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        manage(env, "installmodels", "notes")
        manage(env, "tenant", "add", *(f"t{n}" for n in range(args.tenants)))
        socket_path = os.path.join(tmp, "server.sock")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tenants_site.asgi:application",
                "--uds",
                socket_path,
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=PROJECT,
            env=env,
        )
        try:
            for _ in range(200):
                if os.path.exists(socket_path):
                    break
                time.sleep(0.05)
            problems = asyncio.run(run_load(args, env, socket_path, server))
        finally:
            server.terminate()
            server.wait(timeout=30)
    for problem in problems:
        print("FAILED:", problem)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
