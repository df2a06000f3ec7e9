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
For each: filter(pk=1).first(), get(pk=1), obj.save(), atomic() around
obj.save(), compiling a queryset to SQL, iterating 200 rows and update().
Then transactions: an empty atomic() and commit() on one database, two nested
single-database atomics, and (the fork only) one atomic(using=[...]) over the
same two databases.

With --instructions CALLS, each case runs CALLS times and 0 times in a fresh
process under callgrind (address space randomization off, a fixed hash seed),
and the difference per call is compared: the same count on every run, for
overheads of a few per mille that timings on a shared machine can't show.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import (
    BUILD,
    ROOT,
    ScriptError,
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
    model.objects.using(alias).bulk_create(
        [model(pk=pk, name=f"thing {pk}") for pk in range(1, 201)]
    )

from django.db import transaction
from django.db.models import F


def best(function, number, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            function()
        times.append((time.perf_counter() - start) / number)
    return min(times)


# The cases: (name, callable, calls per timing).
cases = []
for label, model in (("unbound", UnboundThing), ("bound", BoundThing)):
    obj = model.objects.get(pk=1)
    assert obj._state.db == ("default" if model is UnboundThing else "a")

    def atomic_save(obj=obj, model=model):
        with transaction.atomic(using=obj._state.db):
            obj.save()

    cases += [
        (
            f"{label}: filter(pk=1).first()",
            lambda m=model: m.objects.filter(pk=1).first(),
            2000,
        ),
        (f"{label}: get(pk=1)", lambda m=model: m.objects.get(pk=1), 2000),
        (f"{label}: obj.save()", obj.save, 2000),
        (f"{label}: atomic() + obj.save()", atomic_save, 2000),
        (
            f"{label}: compile queryset",
            lambda m=model: str(
                m.objects.filter(name="x", size__gt=1).order_by("-pk").query
            ),
            2000,
        ),
        (f"{label}: iterate 200 rows", lambda m=model: list(m.objects.all()), 200),
        (
            f"{label}: filter(pk=1).update()",
            lambda m=model: m.objects.filter(pk=1).update(size=F("size") + 1),
            2000,
        ),
    ]


def atomic_one():
    with transaction.atomic():
        pass


def nested_two():
    with transaction.atomic("default"):
        with transaction.atomic("a"):
            pass


cases += [
    ("atomic(), one database", atomic_one, 2000),
    ("commit(), one database", transaction.commit, 20000),
    ("atomic('default') + atomic('a'), nested", nested_two, 2000),
]
if PATCHED:

    def multi_two():
        with transaction.atomic(using=["default", "a"]):
            pass

    cases.append(("atomic(using=['default', 'a'])", multi_two, 2000))

if sys.argv[2] == "list":
    results = [name for name, _, _ in cases]
elif sys.argv[2] == "count":
    # Run one case a number of times, for an instruction count.
    function = dict((name, f) for name, f, _ in cases)[sys.argv[3]]
    for _ in range(5):
        function()
    for _ in range(int(sys.argv[4])):
        function()
    results = {}
else:
    results = {name: best(function, number) for name, function, number in cases}
json.dump(results, sys.stdout)
"""


def pristine_tree() -> Path:
    pin = read_pin()
    path = BUILD / "pristine" / pin.version
    if not (path / "django" / "__init__.py").exists():
        extract_sdist(fetch_sdist(pin), path)
    return path


def run_round(which: str, path: Path) -> dict[str, float]:
    return run_workload(
        WORKLOAD, [which, "time"], cwd=path.resolve(), pythonpath=[path]
    )


def count_instructions(which: str, path: Path, case: str, calls: int) -> int:
    """
    The instructions that calls calls of case cost, counted by callgrind with
    address space randomization off: the same count on every run.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        run_workload(
            WORKLOAD,
            [which, "count", case, str(calls)],
            cwd=path.resolve(),
            pythonpath=[path],
            wrapper=[
                "setarch",
                "-R",
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
            ],
        )
        for line in out.read_text().splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise ScriptError(f"callgrind wrote no total for {which}: {case}")


def compare_instructions(trees: dict[str, Path], calls: int) -> int:
    for tool in ("setarch", "valgrind"):
        if shutil.which(tool) is None:
            raise ScriptError(
                f"--instructions needs {tool} (Debian: apt-get install "
                f"{'util-linux' if tool == 'setarch' else 'valgrind'})."
            )
    cases = run_workload(
        WORKLOAD,
        ["pristine", "list"],
        cwd=trees["pristine"],
        pythonpath=[trees["pristine"]],
    )
    print(f"Instructions per call ({calls} calls minus 0 calls, callgrind):")
    print(f"\n{'case':<44} {'pristine':>11} {'patched':>11} {'ratio':>7}")
    for case in cases:
        per_call = {}
        for which, path in trees.items():
            full = count_instructions(which, path, case, calls)
            empty = count_instructions(which, path, case, 0)
            per_call[which] = (full - empty) / calls
        print(
            f"{case:<44} {per_call['pristine']:>11.0f} {per_call['patched']:>11.0f} "
            f"{per_call['patched'] / per_call['pristine']:>7.4f}",
            flush=True,
        )
    return 0


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
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="CALLS",
        help=(
            "count instructions instead of timing (callgrind, CALLS calls minus "
            "0 calls per case): repeatable to the instruction, for overheads "
            "below what timings on a shared machine can show"
        ),
    )
    args = parser.parse_args()
    if args.patched_tree == ROOT:
        vendor()
    trees = {"pristine": pristine_tree(), "patched": args.patched_tree}
    if args.instructions:
        return compare_instructions(trees, args.instructions)
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
