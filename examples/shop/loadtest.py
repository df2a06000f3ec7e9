#!/usr/bin/env python3
"""
Serve the shop from PostgreSQL with uvicorn, 'orders' read from hot standbys
of its server, and load it: clients read the catalog page and now and then
change the price of a product of their own, then read the product's page
the redirect leads to, which must show the new price (else the read was
stale). Printed, for each way of serving, side by side in one run:

- primary alone: no REPLICAS;
- replicas: REPLICAS, with ReadYourWritesMiddleware;
- replicas, writes forgotten: REPLICAS without the middleware, to show the
  stale reads it prevents;
- replicas, a standby stopped: as "replicas", with one standby stopped
  (pg_ctl stop -m immediate) halfway through, then started again.

Each row gives the requests per second, the changes and the stale reads
among the pages read after them, the failed requests, and the share of the
transactions on 'orders' that its standbys served. Then the cost of a read
of a product (Product.objects.filter(pk=...).first()) in one process, in
microseconds and, with valgrind, in instructions, without replicas and with
them: no position to check, a position known replayed (the check cached),
and a position checked on the standby at each read.

Run it under the fork's throwaway servers:

    python scripts/servers/pgcluster.py --servers 1 --standbys 2 -- \\
        python examples/shop/loadtest.py [--requests 4000] [--concurrency 32]
                                         [--workers 2] [--writes 0.1]

It uses the first server of MULTIDB_PGHOSTS and the standbys of
MULTIDB_PG_STANDBYS (MULTIDB_PG_STANDBY_DATA, MULTIDB_PG_BINDIR to stop and
start one), creates the databases shop_default, shop_users and shop_orders
(with psql, as postgres) and drops them at the end. Needs uvicorn and httpx.
Exits 1, saying why, if a request failed or a read was stale with the
middleware.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent
DATABASES = ["shop_default", "shop_users", "shop_orders"]
PRODUCTS = 1000


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


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def delay_replay(standby: str, seconds: float | None) -> None:
    """
    Make the standby at standby replay seconds late, or, with None, as soon
    as it can again (ALTER SYSTEM: psql quotes the value).
    """
    if seconds is None:
        psql(standby, "postgres", "ALTER SYSTEM RESET recovery_min_apply_delay;")
    else:
        psql(
            standby,
            "postgres",
            "ALTER SYSTEM SET recovery_min_apply_delay = :'delay';",
            delay=f"{seconds * 1000:.0f}ms",
        )
    psql(standby, "postgres", "SELECT pg_reload_conf();")


def pg_ctl(*args: str) -> None:
    """Run pg_ctl, as postgres when run as root (as the servers run)."""
    command = [os.path.join(os.environ["MULTIDB_PG_BINDIR"], "pg_ctl"), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, capture_output=True, check=True)


SEED = """
from django.contrib.auth.models import User
from shop.models import Order, Product

products = Product.objects.bulk_create(
    Product(name=f"Product {n:04}", price=n) for n in range(%(products)d)
)
ann = User.objects.create_user("ann")
orders = Order.objects.bulk_create(Order(customer=ann, total=n) for n in range(500))
for n, order in enumerate(orders):
    order.products.set(products[n %% 50 :: 97])
"""


def setup(host: str, standbys: list[str], env: dict[str, str]) -> None:
    for name in DATABASES:
        psql(host, "postgres", 'CREATE DATABASE :"name";', name=name)
    manage(env, "migrate", "--all-databases", "--verbosity", "0")
    manage(env, "shell", "--command", SEED % {"products": PRODUCTS})
    wait_for_standbys(host, standbys)


def wait_for_standbys(host: str, standbys: list[str], timeout: float = 60) -> None:
    """Wait until each standby replayed what the primary wrote until now."""
    (position,) = psql(host, "postgres", "SELECT pg_current_wal_insert_lsn();")
    deadline = time.monotonic() + timeout
    for standby in standbys:
        while psql(
            standby,
            "postgres",
            "SELECT coalesce(pg_last_wal_replay_lsn() >= :'position', false);",
            position=position,
        ) != ["t"]:
            if time.monotonic() > deadline:
                raise SystemExit(f"The standby at {standby} didn't replay {position}.")
            time.sleep(0.05)


def transactions(host: str) -> int | None:
    """
    Transactions on shop_orders that the server at host counted, None if it
    can't be reached (a stopped standby).
    """
    try:
        (count,) = psql(
            host,
            "postgres",
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = 'shop_orders';",
        )
    except subprocess.CalledProcessError:
        return None
    return int(count)


def start_server(env: dict[str, str], socket_path: str, workers: int):
    Path(socket_path).unlink(missing_ok=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "shop_site.asgi:application"]
        + ["--uds", socket_path, "--workers", str(workers)]
        + ["--log-level", "warning", "--no-access-log"],
        cwd=PROJECT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("The server didn't start.")
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(socket_path)
                break
            except OSError:
                time.sleep(0.05)
    return server


def stop_server(server) -> None:
    server.terminate()
    server.wait(timeout=30)


class Load:
    """Clients, each with its cookies and a product whose price it changes."""

    price = re.compile(r'<span id="price">(-?\d+)</span>')

    def __init__(self, socket_path: str, clients: int, requests: int, writes: float):
        self.socket_path = socket_path
        self.clients = clients
        self.left = requests
        self.writes = writes
        self.requests = 0
        self.changes = 0
        self.stale = 0
        self.failures: list[str] = []

    async def request(self, client, method: str, url: str, **kwargs):
        self.requests += 1
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.failures.append(f"{method} {url}: {exc!r}")
            return None
        if response.status_code >= 400:
            self.failures.append(f"{method} {url}: {response.status_code}")
            return None
        return response

    async def client(self, number: int) -> None:
        transport = httpx.AsyncHTTPTransport(uds=self.socket_path)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost", timeout=60
        ) as client:
            pk = number + 1
            # The product's page gives the CSRF cookie.
            page = await self.request(client, "GET", f"/products/{pk}/")
            if page is None:
                return
            token = client.cookies["csrftoken"]
            price = 0
            while self.left > 0:
                self.left -= 1
                if random.random() >= self.writes:
                    await self.request(client, "GET", "/products/")
                    continue
                price += 1
                changed = await self.request(
                    client,
                    "POST",
                    f"/products/{pk}/price/",
                    data={"price": price},
                    headers={"X-CSRFToken": token},
                )
                if changed is None:
                    continue
                page = await self.request(client, "GET", changed.headers["location"])
                if page is None:
                    continue
                self.changes += 1
                self.stale += self.price.search(page.text).group(1) != str(price)

    async def run(self, during=None) -> float:
        start = time.perf_counter()
        tasks = [asyncio.create_task(self.client(n)) for n in range(self.clients)]
        if during is not None:
            await during(self)
        await asyncio.gather(*tasks)
        return self.requests / (time.perf_counter() - start)


def serve_and_load(args, env, host, standbys, extra, during=None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        socket_path = os.path.join(tmp, "shop.sock")
        server = start_server({**env, **extra}, socket_path, args.workers)
        try:
            # Warm up: each worker's connections and templates.
            asyncio.run(Load(socket_path, args.concurrency, 200, 0).run())
            wait_for_standbys(host, standbys)
            time.sleep(1)  # The servers' statistics are flushed each second.
            before = [transactions(each) for each in [host, *standbys]]
            load = Load(socket_path, args.concurrency, args.requests, args.writes)
            rate = asyncio.run(load.run(during))
            time.sleep(1.5)
            after = [transactions(each) for each in [host, *standbys]]
        finally:
            stop_server(server)
    if None in after:
        share = None  # A stopped standby's count is lost.
    else:
        served = [later - earlier for earlier, later in zip(before, after)]
        share = sum(served[1:]) / max(sum(served), 1)
    return {
        "rate": rate,
        "changes": load.changes,
        "stale": load.stale,
        "failures": load.failures,
        "standbys": share,
    }


COST = r"""
import math, os, sys, time

import django

django.setup()
from django.db import replicas
from shop.models import Product

way, calls = os.environ["COST_WAY"], int(os.environ["COST_CALLS"])
compiler = Product.objects.filter(pk=7).query.get_compiler(Product.objects.db)
if os.environ["COST_OF"] == "read":
    call = Product.objects.filter(pk=7).first
else:
    # The fork's choice of the connection, the position check included.
    def call():
        replicas.for_read(compiler)
call()
if way != "no position":
    # A write of this context: a position its reads must see.
    Product.objects.filter(pk=8).update(price=8)
if way == "position replayed":
    # Until a standby replayed it, and the fork knows.
    while replicas.for_read(compiler).alias == "orders":
        time.sleep(0.01)
for _ in range(calls):
    call()  # Warm up.
if os.environ.get("COST_COUNT"):
    # callgrind dumps its count at each call of lgamma().
    math.lgamma(1.0)
    for _ in range(calls):
        pass
    math.lgamma(1.0)
    for _ in range(calls):
        call()
    math.lgamma(1.0)
else:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, time.perf_counter() - start)
    print(best / calls * 1e6)
"""
# The ways to read a product of the shop: whether 'orders' has replicas, and
# the position the context's reads must see (a write of its own).
WAYS = {
    "primary alone": False,
    "no position": True,
    "position replayed": True,
    "position not replayed": True,
}


def cost(env: dict[str, str], way: str, of: str, calls: int, count: bool) -> float:
    """
    Microseconds (or instructions, count) per read of a product in way (of:
    "read"), or per choice of the connection that serves it ("choice").
    """
    env = {**env, "COST_WAY": way, "COST_OF": of, "COST_CALLS": str(calls)}
    env["DJANGO_SETTINGS_MODULE"] = "shop_site.settings"
    if not WAYS[way]:
        env["SHOP_PG_STANDBYS"] = ""
    command = [sys.executable, "-c", COST]
    if not count:
        result = subprocess.run(
            command, cwd=PROJECT, env=env, capture_output=True, text=True, check=True
        )
        return float(result.stdout)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = [
            "setarch",
            "-R",
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            "--dump-before=math_lgamma",
            *command,
        ]
        env["COST_COUNT"] = "1"
        subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, check=True)
        # Dump 2 is the empty loop's, dump 3 the calls'.
        totals = []
        for number in (2, 3):
            text = Path(f"{out}.{number}").read_text()
            totals.append(int(re.search(r"^totals: (\d+)", text, re.M).group(1)))
    return (totals[1] - totals[0]) / calls


def pause_replay(standbys: list[str], pause: bool) -> None:
    function = "pg_wal_replay_pause" if pause else "pg_wal_replay_resume"
    for standby in standbys:
        psql(standby, "postgres", f"SELECT {function}();")


def costs(env, standbys, counting: bool) -> dict[str, list[float | None]]:
    """
    For each way: microseconds per read, and with counting, instructions per
    read and per choice of the connection.
    """
    results = {}
    for way in WAYS:
        pause_replay(standbys, way == "position not replayed")
        try:
            results[way] = [min(cost(env, way, "read", 2000, False) for _ in range(3))]
            if counting:
                results[way].append(cost(env, way, "read", 200, True))
                if WAYS[way]:
                    results[way].append(cost(env, way, "choice", 200, True))
        finally:
            pause_replay(standbys, False)
    return results


def stop_a_standby(standby_data: str):
    """What serve_and_load runs during the load: stop a standby halfway."""

    async def during(load: Load) -> None:
        total = load.left
        while load.left > total / 2:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(
            pg_ctl, "stop", "--pgdata", standby_data, "-m", "immediate"
        )

    return during


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--writes", type=float, default=0.1)
    parser.add_argument(
        "--lag",
        type=float,
        default=1.0,
        help="how far the standbys stay behind, in seconds (default 1)",
    )
    parser.add_argument(
        "--no-cost", action="store_true", help="skip the cost of a read in one process"
    )
    args = parser.parse_args()
    host = os.environ.get("MULTIDB_PGHOSTS", "").split(os.pathsep)[0]
    standbys = [
        each
        for each in os.environ.get("MULTIDB_PG_STANDBYS", "").split(os.pathsep)
        if each
    ]
    standby_data = os.environ.get("MULTIDB_PG_STANDBY_DATA", "").split(os.pathsep)
    if not host or not standbys or "MULTIDB_PG_BINDIR" not in os.environ:
        parser.error(
            "needs a PostgreSQL server and its standbys: run it under "
            "scripts/servers/pgcluster.py --standbys 2."
        )
    env = {
        **os.environ,
        "SHOP_PG_HOST": host,
        "SHOP_PG_STANDBYS": os.pathsep.join(standbys),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    problems = []
    try:
        for standby in standbys:
            delay_replay(standby, args.lag)
        setup(host, standbys, env)
        ways = {
            "primary alone": ({"SHOP_PG_STANDBYS": ""}, None),
            "replicas": ({}, None),
            "replicas, writes forgotten": ({"SHOP_FORGET_WRITES": "1"}, None),
            "replicas, a standby stopped": ({}, stop_a_standby(standby_data[-1])),
        }
        print(
            f"{args.requests} requests by {args.concurrency} clients, "
            f"{args.writes:.0%} of them a change of a price followed by the page "
            f"it redirects to, the others the catalog; uvicorn, {args.workers} "
            f"worker(s), {len(standbys)} standby(s) {args.lag * 1000:.0f} ms behind:"
        )
        print(
            f"{'':28} {'requests/s':>10} {'changes':>8} {'stale':>6} "
            f"{'failed':>7} {'on standbys':>12}"
        )
        for name, (extra, during) in ways.items():
            result = serve_and_load(args, env, host, standbys, extra, during)
            share = "-" if result["standbys"] is None else f"{result['standbys']:.0%}"
            print(
                f"{name:28} {result['rate']:>10.0f} {result['changes']:>8} "
                f"{result['stale']:>6} {len(result['failures']):>7} {share:>12}",
                flush=True,
            )
            problems += [f"{name}: {failure}" for failure in result["failures"][:5]]
            if result["stale"] and "forgotten" not in name:
                problems.append(f"{name}: {result['stale']} stale reads")
            if during is not None:
                pg_ctl(
                    "start",
                    "--pgdata",
                    standby_data[-1],
                    "--wait",
                    "--log",
                    os.path.join(os.path.dirname(standby_data[-1]), "server.log"),
                )
        if not args.no_cost:
            counting = shutil.which("valgrind") is not None
            print("A read of a product, Product.objects.filter(pk=7).first():")
            print(
                f"{'':28} {'microseconds':>12} {'instructions':>12} "
                f"{'of the choice':>13}"
            )
            for way, values in costs(env, standbys, counting).items():
                micro, *counted = values + [None, None]
                shown = [f"{value:.0f}" if value else "-" for value in counted[:2]]
                print(f"{way:28} {micro:>12.1f} {shown[0]:>12} {shown[1]:>13}")
    finally:
        for standby in standbys:
            delay_replay(standby, None)
        for name in DATABASES:
            psql(
                host,
                "postgres",
                'DROP DATABASE IF EXISTS :"name" WITH (FORCE);',
                name=name,
            )
    for problem in problems:
        print("FAILED:", problem)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
