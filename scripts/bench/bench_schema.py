#!/usr/bin/env python3
"""
Time creating the tables of 200 models with foreign key chains and cycles,
three ways, in one run: install_models() (the fork's manager schema work),
`migrate --run-syncdb`, and executing the same SQL directly with a cursor.
Prints each time and its ratio to raw SQL, and how long install_models()
takes to build the statements without running them (the schema editor's
share of its time).

    python scripts/bench/bench_schema.py [--db sqlite|postgres|mariadb] [--rounds 3]
    python scripts/bench/bench_schema.py --tenants 50 [--db sqlite|postgres]

With --tenants, one process provisions that many tenant databases (added at
run time with connections.add()) three ways, side by side: executing the SQL
directly, install_models() and `migrate --run-syncdb --database`. The first
install_models() builds the statements; later ones reuse them. Prints the
first tenant and the median of the others for each way.

Each measurement runs in a fresh process on a fresh database (a new SQLite
file, a new database on a throwaway PostgreSQL server, or a database created
and dropped on the MariaDB/MySQL server at MULTIDB_MYSQL_HOST, default
127.0.0.1:3306 as root, as the tests use). The query compiler is imported
before the clock starts, as in any process that has run a query: with
PYTHONDONTWRITEBYTECODE set, importing it costs 10 ms of compiling, which
would otherwise go to whichever method imports it first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, ScriptError, run_main
from bench._workload import run_workload
from series.vendor import vendor
from servers.pgcluster import create_database

MODELS = 200

APP_MODELS = f"""
from django.db import models

# Model i points at model i - 1 (a chain); every tenth model also points at
# model i + 5, which closes cycles.
for i in range({MODELS}):
    attrs = {{
        "__module__": __name__,
        "name": models.CharField(max_length=20),
    }}
    if i:
        attrs["prev"] = models.ForeignKey(
            f"Thing{{i - 1}}", models.CASCADE, related_name="+"
        )
    if i % 10 == 0 and i + 5 < {MODELS}:
        attrs["ahead"] = models.ForeignKey(
            f"Thing{{i + 5}}", models.CASCADE, null=True, related_name="+"
        )
    globals()[f"Thing{{i}}"] = type(f"Thing{{i}}", (models.Model,), attrs)
"""

WORKLOAD = r"""
import json, os, sys, time
import django
from django.conf import settings

method, engine, name = sys.argv[1:4]
database = {"ENGINE": "django.db.backends." + engine, "NAME": name}
if engine == "postgresql":
    host = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)[0]
    database.update(HOST=host, USER="postgres")
elif engine == "mysql":
    database.update(
        HOST=os.environ.get("MULTIDB_MYSQL_HOST", "127.0.0.1"),
        PORT=os.environ.get("MULTIDB_MYSQL_PORT", "3306"),
        USER=os.environ.get("MULTIDB_MYSQL_USER", "root"),
        PASSWORD=os.environ.get("MULTIDB_MYSQL_PASSWORD", ""),
    )
settings.configure(
    DATABASES={"default": database},
    INSTALLED_APPS=["multidb_bench_schema"],
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.apps import apps
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models.ddl import install_models
import django.db.models.sql.compiler

models = list(apps.get_app_config("multidb_bench_schema").get_models())


def execute(statements):
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.sql, statement.params or None)


def timed():
    start = time.perf_counter()
    if method == "install_models":
        install_models(models)
    elif method == "migrate":
        call_command("migrate", run_syncdb=True, verbosity=0)
    elif method == "build":
        statements = install_models(models, sql_only=True)["default"]
        elapsed = time.perf_counter() - start
        execute(statements)  # Untimed, so that the tables are there.
        return elapsed
    else:
        statements = install_models(models, sql_only=True)["default"]
        start = time.perf_counter()
        execute(statements)
    return time.perf_counter() - start


if engine == "mysql":
    with connection._nodb_cursor() as cursor:
        cursor.execute("CREATE DATABASE " + connection.ops.quote_name(name))
try:
    connection.ensure_connection()
    elapsed = timed()
    tables = len(connection.introspection.table_names())
finally:
    if engine == "mysql":
        connection.close()
        with connection._nodb_cursor() as cursor:
            cursor.execute("DROP DATABASE " + connection.ops.quote_name(name))
json.dump({"seconds": elapsed, "tables": tables}, sys.stdout)
"""


TENANTS_WORKLOAD = r"""
import json, os, statistics, sys, time
import django
from django.conf import settings

engine, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=["multidb_bench_schema"],
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.apps import apps
from django.core.management import call_command
from django.db import connections, override_bindings, transaction
from django.db.models import ddl
from django.db.models.ddl import install_models
import django.db.models.sql.compiler

models = list(apps.get_app_config("multidb_bench_schema").get_models())


def tenant_settings(name):
    if engine == "postgresql":
        host = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)[0]
        return {"ENGINE": "django.db.backends.postgresql", "HOST": host,
                "USER": "postgres", "NAME": name}
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}


def raw(alias, statements):
    start = time.perf_counter()
    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.sql, statement.params or None)
    return time.perf_counter() - start


def install(alias, statements):
    start = time.perf_counter()
    with override_bindings({"multidb_bench_schema": alias}):
        install_models(models)
    return time.perf_counter() - start


def migrate(alias, statements):
    start = time.perf_counter()
    call_command("migrate", run_syncdb=True, database=alias, verbosity=0)
    return time.perf_counter() - start


# The statements executed directly are built before the clock starts, on a
# database of their own, as a project would keep them.
connections.add("build", tenant_settings(f"{prefix}build"))
with override_bindings({"multidb_bench_schema": "build"}):
    statements = install_models(models, sql_only=True)["build"]
connections.remove("build")
# The first install_models() builds its statements itself.
ddl._built.clear()
ddl._built_sets.clear()
methods = {"raw": raw, "install_models": install, "migrate": migrate}
seconds = {name: [] for name in methods}
for number in range(count):
    for name, method in methods.items():
        alias = f"{name}_{number}"
        connections.add(alias, tenant_settings(f"{prefix}{alias}"))
        seconds[name].append(method(alias, statements))
        tables = len(connections[alias].introspection.table_names())
        assert tables >= len(models), (name, tables)
        connections.remove(alias)
json.dump(seconds, sys.stdout)
"""


def measure_tenants(db: str, count: int, app_dir: Path) -> dict[str, list[float]]:
    if db == "sqlite":
        engine, prefix = "sqlite3", str(app_dir / "tenant_")
    else:
        engine, prefix = "postgresql", "tenant_"
        host = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)[0]
        names = ["build"] + [
            f"{method}_{number}"
            for number in range(count)
            for method in ("raw", "install_models", "migrate")
        ]
        for name in names:
            create_database(host, f"{prefix}{name}")
    return run_workload(
        TENANTS_WORKLOAD,
        [engine, str(count), prefix],
        cwd=app_dir,
        pythonpath=[ROOT, app_dir],
    )


def report_tenants(db: str, count: int, seconds: dict[str, list[float]]) -> None:
    labels = {
        "raw": "raw SQL",
        "install_models": "install_models()",
        "migrate": "migrate --run-syncdb",
    }
    later = {name: statistics.median(times[1:]) for name, times in seconds.items()}
    print(
        f"\nProvisioning {count} tenant databases of {MODELS} tables each on "
        f"{db}, one process:"
    )
    print(
        f"  {'':<22} {'first tenant':>14} {'later (median)':>16} {'later vs raw':>13}"
    )
    for name, label in labels.items():
        first = seconds[name][0]
        print(
            f"  {label:<22} {first * 1000:>11.1f} ms {later[name] * 1000:>13.1f} ms "
            f"{later[name] / later['raw']:>12.2f}x"
        )


def measure(method: str, db: str, app_dir: Path, run: int) -> float:
    if db == "sqlite":
        # A database file, as a project has: in memory, DDL is nearly free.
        engine, name = "sqlite3", str(app_dir / f"bench_{method}_{run}.sqlite3")
    elif db == "mariadb":
        engine, name = "mysql", f"multidb_bench_{method}_{run}_{os.getpid()}"
    else:
        engine, name = "postgresql", f"bench_{method}_{run}"
        host = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)[0]
        create_database(host, name)
    data = run_workload(
        WORKLOAD, [method, engine, name], cwd=app_dir, pythonpath=[ROOT, app_dir]
    )
    if data["tables"] < MODELS:
        raise ScriptError(f"{method} created {data['tables']} tables, not {MODELS}.")
    return data["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db", choices=["sqlite", "postgres", "mariadb"], default="sqlite"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tenants", type=int, default=0)
    args = parser.parse_args()
    if args.db == "postgres" and not os.environ.get("MULTIDB_PGHOSTS"):
        from servers.pgcluster import run_with_clusters

        return run_with_clusters([sys.executable, *sys.argv], 1, durable=False)
    vendor()
    if args.tenants:
        if args.db == "mariadb":
            raise ScriptError("--tenants runs on sqlite or postgres.")
        if args.tenants < 2:
            raise ScriptError("--tenants needs at least 2 tenants.")
        with tempfile.TemporaryDirectory() as tmp:
            app = Path(tmp) / "multidb_bench_schema"
            app.mkdir()
            (app / "__init__.py").write_text("")
            (app / "models.py").write_text(APP_MODELS)
            seconds = measure_tenants(args.db, args.tenants, Path(tmp))
        report_tenants(args.db, args.tenants, seconds)
        return 0
    methods = {
        "raw": "raw SQL",
        "install_models": "install_models()",
        "build": "  of which building SQL",
        "migrate": "migrate --run-syncdb",
    }
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "multidb_bench_schema"
        app.mkdir()
        (app / "__init__.py").write_text("")
        (app / "models.py").write_text(APP_MODELS)
        for run in range(args.rounds):
            for method in methods:
                seconds = measure(method, args.db, Path(tmp), run)
                best[method] = min(best.get(method, seconds), seconds)
            print(f"round {run + 1}/{args.rounds} done", flush=True)
    print(f"\nCreating {MODELS} tables on {args.db} (best of {args.rounds}):")
    for method, label in methods.items():
        ratio = best[method] / best["raw"]
        print(f"  {label:<24} {best[method] * 1000:>8.1f} ms   {ratio:>5.2f}x raw SQL")
    return 0


if __name__ == "__main__":
    run_main(main)
