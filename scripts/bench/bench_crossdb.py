#!/usr/bin/env python3
"""
Time queries through a relation across databases against the same queries
with both models on one database, in one run, side by side:

- a filter through a foreign key (Order.objects.filter(customer__tier__lt=K),
  the orders fetched as (id, total) rows) matching 1,000, 10,000 and 100,000
  customers;
- 10,000 orders with their customers (select_related());
- 10,000 orders ordered by their customer's name;
- 10,000 customers annotated with the Count() of their orders.

On one database each is a join; across two, the customers' (or orders')
rows are read from the other database and joined in as a derived table:
the rows and bytes of that table, sent as query parameters, are reported
beside the times.

    python scripts/bench/bench_crossdb.py [--db sqlite|postgres] [--rounds 5]

SQLite uses database files; PostgreSQL two throwaway servers (the orders on
one, the customers on the other when split). Each configuration runs in a
fresh process; each query runs --rounds times and the best time counts.
Prints the times and the ratio split / one database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, run_main
from bench._workload import run_workload
from series.vendor import vendor
from servers.pgcluster import create_database

CUSTOMERS = 100_000
MATCHES = [1_000, 10_000, 100_000]
PREFETCHED = 10_000
ORDERED = 10_000

APP_MODELS = """
from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=20)
    tier = models.IntegerField()


class Order(models.Model):
    customer = models.ForeignKey(Customer, models.CASCADE)
    total = models.IntegerField()
"""

WORKLOAD = r"""
import json, os, sys, time
import django
from django.conf import settings

layout, engine, rounds, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
customers, matches, prefetched, ordered = json.loads(sys.argv[5])


def database(index, name):
    if engine == "sqlite3":
        name = f"{prefix}_{name}.sqlite3"
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    hosts = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": hosts[index % len(hosts)],
        "USER": "postgres",
        "NAME": f"{prefix}_{name}",
    }


bindings = {"multidb_bench_crossdb": "a"}
if layout == "split":
    bindings["multidb_bench_crossdb.Customer"] = "b"
settings.configure(
    DATABASES={
        "default": database(0, "default"),
        "a": database(0, "a"),
        "b": database(1, "b"),
    },
    DATABASE_BINDINGS=bindings,
    INSTALLED_APPS=["multidb_bench_crossdb"],
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.db import connections
from django.db.models.ddl import install_models
from django.db.models import Count
from multidb_bench_crossdb.models import Customer, Order

install_models([Customer, Order])
Customer.objects.bulk_create(
    (Customer(id=i + 1, name=f"c{i}", tier=i) for i in range(customers)),
    batch_size=5000,
)
Order.objects.bulk_create(
    (Order(customer_id=i + 1, total=i) for i in range(customers)), batch_size=5000
)


# (rows, bytes) of the rows of another database sent as parameters.
def shipped_rows(params):
    rows = size = 0
    for param in params or ():
        if isinstance(param, list):  # PostgreSQL: one array per column.
            rows = max(rows, len(param))
            size += len("{%s}" % ",".join(map(str, param)))
        elif isinstance(param, str) and param.startswith("["):  # SQLite: JSON.
            rows = max(rows, len(json.loads(param)))
            size += len(param.encode())
        elif isinstance(param, str) and param.startswith("{"):  # An array's text.
            rows = max(rows, param.count(",") + 1 if param != "{}" else 0)
            size += len(param.encode())
    return rows, size


def best(function):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    shipped = [0, 0]

    def measure(execute, sql, params, many, context):
        rows, size = shipped_rows(params)
        shipped[0] += rows
        shipped[1] += size
        return execute(sql, params, many, context)

    with connections["a"].execute_wrapper(measure):
        with connections["b"].execute_wrapper(measure):
            function()
    return [min(times), *shipped], result


results = {}
for count in matches:
    seconds, rows = best(
        lambda: list(
            Order.objects.filter(customer__tier__lt=count).values_list("id", "total")
        )
    )
    assert len(rows) == count, (count, len(rows))
    results[f"filter {count}"] = seconds


def related():
    orders = Order.objects.select_related("customer").order_by("id")[:prefetched]
    return [order.customer.name for order in orders]


seconds, names = best(related)
assert len(names) == prefetched
results[f"related {prefetched}"] = seconds

seconds, rows = best(
    lambda: list(
        Order.objects.filter(customer__tier__lt=ordered)
        .order_by("customer__name", "id")
        .values_list("id", "customer__name")
    )
)
assert len(rows) == ordered
results[f"ordered {ordered}"] = seconds

seconds, rows = best(
    lambda: list(
        Customer.objects.filter(tier__lt=ordered)
        .annotate(n=Count("order"))
        .values_list("id", "n")
    )
)
assert len(rows) == ordered and all(n == 1 for _, n in rows)
results[f"counted {ordered}"] = seconds
json.dump(results, sys.stdout)
"""


def create_databases(prefix: str) -> None:
    hosts = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)
    for index, name in enumerate(["default", "a", "b"]):
        host = hosts[(1 if name == "b" else 0) % len(hosts)]
        create_database(host, f"{prefix}_{name}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.db == "postgres" and not os.environ.get("MULTIDB_PGHOSTS"):
        from servers.pgcluster import run_with_clusters

        return run_with_clusters([sys.executable, *sys.argv], 2, durable=False)
    vendor()
    engine = "sqlite3" if args.db == "sqlite" else "postgresql"
    sizes = [CUSTOMERS, MATCHES, PREFETCHED, ORDERED]
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "multidb_bench_crossdb"
        app.mkdir()
        (app / "__init__.py").write_text("")
        (app / "models.py").write_text(APP_MODELS)
        for layout in ["one", "split"]:
            prefix = f"bench_crossdb_{layout}"
            if args.db == "postgres":
                create_databases(prefix)
            else:
                prefix = str(Path(tmp) / prefix)
            times[layout] = run_workload(
                WORKLOAD,
                [layout, engine, str(args.rounds), prefix, json.dumps(sizes)],
                cwd=Path(tmp),
                pythonpath=[ROOT, Path(tmp)],
            )
            print(f"{layout} database layout measured", flush=True)
    print(
        f"\nOrders and customers on one database vs split across two, {args.db} "
        f"(best of {args.rounds}):"
    )
    labels = {
        "filter": "filter through the foreign key, {} rows",
        "related": "{} orders with their customer",
        "ordered": "ordered by the customer's name, {} rows",
        "counted": "customers annotated with Count, {} rows",
    }
    print(
        f"  {'query':<44} {'one':>10} {'split':>10} {'ratio':>7} "
        f"{'rows sent':>10} {'bytes sent':>11}"
    )
    for case in times["one"]:
        one = times["one"][case][0] * 1000
        split, rows, size = times["split"][case]
        split *= 1000
        kind, count = case.split()
        label = labels[kind].format(f"{int(count):,}")
        print(
            f"  {label:<44} {one:>7.1f} ms {split:>7.1f} ms {split / one:>6.2f}x "
            f"{rows:>10,} {size:>11,}"
        )
    return 0


if __name__ == "__main__":
    run_main(main)
