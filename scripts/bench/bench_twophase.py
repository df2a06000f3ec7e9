#!/usr/bin/env python3
"""
Time a transfer between two databases on two PostgreSQL servers, in one run:
the raw driver committing each database (the floor), the raw driver's own
two-phase commit (tpc_* methods, no decision log, no recovery), two nested
single-database atomic blocks, one best-effort atomic(using=["a", "b"]), and
atomic(using=["a", "b"], two_phase=True) with the decision log on a third
database ("default") and on "a" itself (the last agent). Prints the latency of
each (median per transfer), its throughput with one client, its ratio to the
best-effort block, and what two-phase commit adds over committing each
database, for the raw driver and for Django.

    python scripts/bench/bench_twophase.py [--transfers 500] [--rounds 3] [--durable]

Starts two throwaway servers (scripts/servers/pgcluster.py) unless MULTIDB_PGHOSTS is
set. Without --durable the servers don't fsync, which measures the protocol's
round trips; with it, the cost of making each step durable on this disk.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, run_main
from bench._workload import run_workload
from series.vendor import vendor

WORKLOAD = r"""
import json, os, statistics, sys, time, uuid
import django
from django.conf import settings

hosts = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)
def database(host, name):
    return {"ENGINE": "django.db.backends.postgresql", "HOST": host,
            "USER": "postgres", "NAME": name}
settings.configure(
    DATABASES={
        "default": database(hosts[0], "bench_default"),
        "a": database(hosts[0], "bench_a"),
        "b": database(hosts[1], "bench_b"),
    },
    INSTALLED_APPS=["two_phase_commit"],
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.db import connections, transaction
from django.db.models import F
from two_phase_commit.models import Account, Transfer

def raw_connection(alias):
    connection = connections[alias]
    return connection.get_new_connection(connection.get_connection_params())

transfers, rounds = int(sys.argv[1]), int(sys.argv[2])
for alias in ("a", "b"):
    with connections[alias].schema_editor() as editor:
        editor.create_model(Account)
        editor.create_model(Transfer)
Account.objects.using("a").create(name="alice", balance=10**9)
Account.objects.using("b").create(name="bob", balance=0)

def body():
    key = uuid.uuid4()
    Account.objects.using("a").filter(name="alice").update(balance=F("balance") - 1)
    Transfer.objects.using("a").create(key=key, amount=-1)
    Account.objects.using("b").filter(name="bob").update(balance=F("balance") + 1)
    Transfer.objects.using("b").create(key=key, amount=1)

def nested():
    with transaction.atomic(using="a"), transaction.atomic(using="b"):
        body()

def best_effort():
    with transaction.atomic(using=["a", "b"]):
        body()

def two_phase():
    settings.TRANSACTION_COORDINATOR = "default"
    with transaction.atomic(using=["a", "b"], two_phase=True):
        body()

def last_agent():
    settings.TRANSACTION_COORDINATOR = "a"
    with transaction.atomic(using=["a", "b"], two_phase=True):
        body()

raw = {alias: raw_connection(alias) for alias in ("a", "b")}
account = connections["a"].ops.quote_name(Account._meta.db_table)
transfer = connections["a"].ops.quote_name(Transfer._meta.db_table)
update = f"UPDATE {account} SET balance = balance + %s WHERE name = %s"
insert = f"INSERT INTO {transfer} (key, amount) VALUES (%s, %s)"

def raw_body():
    key = str(uuid.uuid4())
    with raw["a"].cursor() as cursor:
        cursor.execute(update, [-1, "alice"])
        cursor.execute(insert, [key, -1])
    with raw["b"].cursor() as cursor:
        cursor.execute(update, [1, "bob"])
        cursor.execute(insert, [key, 1])

def raw_commits():
    raw_body()
    raw["a"].commit()
    raw["b"].commit()

def raw_two_phase():
    gid = "bench_" + uuid.uuid4().hex
    for alias in ("a", "b"):
        raw[alias].tpc_begin(f"{gid}_{alias}")
    raw_body()
    for alias in ("a", "b"):
        raw[alias].tpc_prepare()
    for alias in ("a", "b"):
        raw[alias].tpc_commit()

modes = {
    "raw_commits": raw_commits,
    "raw_two_phase": raw_two_phase,
    "nested": nested,
    "best_effort": best_effort,
    "two_phase": two_phase,
    "last_agent": last_agent,
}
samples = {mode: [] for mode in modes}
for mode in modes.values():  # Warm up: connections, the decision log.
    mode()
for _ in range(rounds):
    for name, mode in modes.items():
        for _ in range(transfers):
            start = time.perf_counter()
            mode()
            samples[name].append(time.perf_counter() - start)
json.dump({name: statistics.median(s) for name, s in samples.items()}, sys.stdout)
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transfers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--durable", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("MULTIDB_PGHOSTS"):
        from servers.pgcluster import run_with_clusters

        return run_with_clusters([sys.executable, *sys.argv], 2, args.durable)
    vendor()
    from servers.pgcluster import create_database

    hosts = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)
    for host, name in ((hosts[0], "default"), (hosts[0], "a"), (hosts[1], "b")):
        create_database(host, f"bench_{name}", drop_first=True)
    medians = run_workload(
        WORKLOAD,
        [str(args.transfers), str(args.rounds)],
        cwd=ROOT,
        pythonpath=[ROOT, ROOT / "tests"],
    )
    labels = {
        "raw_commits": "raw driver, two commits",
        "raw_two_phase": "raw driver, tpc_*",
        "nested": "two nested atomic()",
        "best_effort": 'atomic(using=["a","b"])',
        "two_phase": "two_phase=True, log apart",
        "last_agent": "two_phase=True, last agent",
    }
    mode = "durable (fsync on)" if args.durable else "fsync off"
    print(
        f"\nA transfer between two PostgreSQL servers, {mode}, median of "
        f"{args.transfers * args.rounds} per way, one client:"
    )
    for name, label in labels.items():
        seconds = medians[name]
        ratio = seconds / medians["best_effort"]
        print(
            f"  {label:<28} {seconds * 1e3:>7.2f} ms  {1 / seconds:>7.0f}/s  "
            f"{ratio:>5.2f}x best effort"
        )
    floor = medians["raw_two_phase"] - medians["raw_commits"]
    print("\nWhat two-phase commit adds over committing each database:")
    print(f"  raw driver (the floor)       {floor * 1e3:+7.2f} ms")
    for name in ("two_phase", "last_agent"):
        extra = medians[name] - medians["best_effort"]
        print(
            f"  {labels[name]:<28} {extra * 1e3:+7.2f} ms  "
            f"{extra / floor:>5.2f}x the floor"
        )
    return 0


if __name__ == "__main__":
    run_main(main)
