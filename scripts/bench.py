#!/usr/bin/env python3
"""
Compare the speed of pristine and patched Django side by side, in one run.

Each round runs the same workload in a fresh process for pristine Django (the
pinned sdist) and for the patched ./django, alternating, and the best time of
each case over the rounds is compared: the ratio patched / pristine is
printed per case (1.00 = same speed; above 1 = the fork is slower).

Cases, on in-memory SQLite databases 'default' and 'a':
- unbound: a model without a binding, routed to 'default';
- bound: a model that lives in 'a' (Meta.db_connection with the fork; with
  pristine Django, what a project writes today: a router sending it to 'a').
For each: Model.objects.filter(pk=1).first(), obj.save() and compiling a
queryset to SQL. Then transactions: an empty atomic() and commit() on one
database, two nested single-database atomics, and (the fork only) one
atomic(using=[...]) over the same two databases.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _common import (
    BUILD,
    ROOT,
    extract_sdist,
    fetch_sdist,
    read_pin,
    run_main,
    run_workload,
)
from vendor import vendor

WORKLOAD = r"""
import json, sys, time
import django
from django.conf import settings

PATCHED = sys.argv[1] == "patched"


class Router:
    def db_for_read(self, model, **hints):
        return "a" if model._meta.model_name == "boundthing" else None

    db_for_write = db_for_read


settings.configure(
    DATABASES={
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
        "a": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    },
    INSTALLED_APPS=["django.contrib.contenttypes"],
    DATABASE_ROUTERS=[] if PATCHED else [Router()],
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.db import connections, models


class UnboundThing(models.Model):
    name = models.CharField(max_length=20)
    size = models.IntegerField(default=0)

    class Meta:
        app_label = "contenttypes"


meta = {"app_label": "contenttypes"}
if PATCHED:
    meta["db_connection"] = "a"


class BoundThing(models.Model):
    name = models.CharField(max_length=20)
    size = models.IntegerField(default=0)

    Meta = type("Meta", (), meta)


for model, alias in ((UnboundThing, "default"), (BoundThing, "a")):
    with connections[alias].schema_editor() as editor:
        editor.create_model(model)
    model.objects.using(alias).create(pk=1, name="one")


def best(function, number, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            function()
        times.append((time.perf_counter() - start) / number)
    return min(times)


results = {}
for label, model in (("unbound", UnboundThing), ("bound", BoundThing)):
    obj = model.objects.get(pk=1)
    assert obj._state.db == ("default" if model is UnboundThing else "a")
    results[f"{label}: filter(pk=1).first()"] = best(
        lambda: model.objects.filter(pk=1).first(), 2000
    )
    results[f"{label}: obj.save()"] = best(obj.save, 2000)
    results[f"{label}: compile queryset"] = best(
        lambda: str(model.objects.filter(name="x", size__gt=1).order_by("-pk").query),
        2000,
    )
from django.db import transaction


def atomic_one():
    with transaction.atomic():
        pass


def nested_two():
    with transaction.atomic("default"):
        with transaction.atomic("a"):
            pass


results["atomic(), one database"] = best(atomic_one, 2000)
results["commit(), one database"] = best(transaction.commit, 20000)
results["atomic('default') + atomic('a'), nested"] = best(nested_two, 2000)
if PATCHED:

    def multi_two():
        with transaction.atomic(using=["default", "a"]):
            pass

    results["atomic(using=['default', 'a'])"] = best(multi_two, 2000)
json.dump(results, sys.stdout)
"""


def pristine_tree() -> Path:
    pin = read_pin()
    path = BUILD / "pristine" / pin.version
    if not (path / "django" / "__init__.py").exists():
        extract_sdist(fetch_sdist(pin), path)
    return path


def run_round(which: str, path: Path) -> dict[str, float]:
    return run_workload(WORKLOAD, [which], cwd=path.resolve(), pythonpath=[path])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--patched-tree",
        type=Path,
        default=ROOT,
        help="directory holding the patched django/ (default: this repository)",
    )
    args = parser.parse_args()
    if args.patched_tree == ROOT:
        vendor()
    trees = {"pristine": pristine_tree(), "patched": args.patched_tree}
    best: dict[str, dict[str, float]] = {"pristine": {}, "patched": {}}
    for round_number in range(args.rounds):
        for which, path in trees.items():
            for case, seconds in run_round(which, path).items():
                previous = best[which].get(case, seconds)
                best[which][case] = min(previous, seconds)
        print(f"round {round_number + 1}/{args.rounds} done", flush=True)
    print(f"\n{'case':<44} {'pristine':>11} {'patched':>11} {'ratio':>7}")
    for case, pristine in best["pristine"].items():
        patched = best["patched"][case]
        print(
            f"{case:<44} {pristine * 1e6:>9.1f}us {patched * 1e6:>9.1f}us "
            f"{patched / pristine:>7.3f}"
        )
    nested = best["patched"]["atomic('default') + atomic('a'), nested"]
    multi = best["patched"]["atomic(using=['default', 'a'])"]
    print(
        f"\nFork only: atomic(using=['default', 'a']) takes {multi * 1e6:.1f}us, "
        f"{multi / nested:.3f} times two nested single-database atomics."
    )
    return 0


if __name__ == "__main__":
    run_main(main)
