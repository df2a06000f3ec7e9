#!/usr/bin/env python3
"""
Compare the speed of pristine and patched Django side by side, in one run.

Each round runs the same workload in a fresh process for pristine Django (the
pinned sdist) and for the patched ./django, alternating, and the best time of
each case over the rounds is compared: the ratio patched / pristine is
printed per case (1.00 = same speed; above 1 = the fork is slower).

Cases, on in-memory SQLite databases 'default' and 'a':
- unbound: a model without a binding, in 'default', and no router on either
  side;
- bound: a model that lives in 'a' (Meta.db_connection with the fork; with
  pristine Django, what a project writes today: a router sending it to 'a',
  in a process of its own).
For each: filter(pk=1).first(), get(pk=1), obj.save(), atomic() around
obj.save(), compiling a queryset to SQL, iterating 200 rows and update().
Then transactions: an empty atomic() and commit() on one database, two nested
single-database atomics, and (the fork only) one atomic(using=[...]) over the
same two databases.

With --instructions CALLS, one process per tree, case and memory layout
runs the case CALLS times under callgrind (address space randomization off,
a fixed hash seed), which dumps its count at a marker call before and after;
an empty loop's count is taken off and the mean instructions per call over
the layouts (--layouts, default 8) are compared: for overheads of a few per
mille that timings on a shared machine can't show. A case has a process of
its own, and runs CALLS times uncounted first: what the cases run before it
leave behind (caches, grown dicts), and what a process does once, would move
its count by up to 1%; so would the layout alone (see count_instructions()).
--only TEXT counts only the cases whose name contains TEXT.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, ScriptError, run_main
from bench._workload import run_workload
from series._series import BUILD, extract_sdist, fetch_sdist, read_pin
from series.vendor import vendor

WORKLOAD = r"""
import json, os, sys, time

# A layout: objects and classes made before Django is imported move where
# its strings live and which version tags its classes get, on which the
# interpreter's attribute caches depend (see count_instructions()).
layout = int(os.environ.get("BENCH_LAYOUT", "0"))
padding = ["x" * (i % 61) for i in range(layout * 773)]
for tagged in [type("Padding", (), {}) for _ in range(layout * 37 % 97)]:
    tagged.x = tagged().x = 1

import django
from django.conf import settings

# patched: every case; pristine: the unbound model and transactions, without
# a router; pristine-routed: the bound model, sent to 'a' by a router.
MODE = sys.argv[1]
PATCHED = MODE == "patched"


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
    DATABASE_ROUTERS=[Router()] if MODE == "pristine-routed" else [],
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
models = {"patched": ("unbound", "bound"), "pristine": ("unbound",)}.get(
    MODE, ("bound",)
)
for label, model in (("unbound", UnboundThing), ("bound", BoundThing)):
    if label not in models:
        continue
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


if MODE != "pristine-routed":
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
    # Run one case a number of times between two calls of math.lgamma(), on
    # which callgrind dumps its counts: an empty loop first, then the case.
    # One case per process: what other cases leave behind (caches, grown
    # dicts) would make a case's count depend on the cases run before it.
    import gc
    import math

    calls = int(sys.argv[3])
    name, function, _ = cases[int(sys.argv[4])]
    # As many calls first, uncounted: what a process does once (fill caches,
    # grow its heap) is not what each call costs.
    for _ in range(calls):
        function()
    # The cyclic garbage collector would run at different points in the two
    # trees, which allocate differently at import: it runs between the
    # measured loops only.
    gc.disable()
    for function in [lambda: None, function]:
        gc.collect()
        math.lgamma(1.0)
        for _ in range(calls):
            function()
        math.lgamma(1.0)
    results = name
else:
    results = {name: best(function, number) for name, function, number in cases}
json.dump(results, sys.stdout)
"""


# The C function on whose entry callgrind dumps its counts: math.lgamma().
MARKER = "math_lgamma"


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


def count_instructions(
    which: str, path: Path, calls: int, layouts: int, only: list[str]
) -> dict[str, float]:
    """
    The instructions per call of each case, counted by callgrind with address
    space randomization off. Each case runs in a process of its own, calls
    times between two markers, after an empty loop whose count is taken off.

    A count is exact for one memory layout, but the interpreter's caches of
    attribute lookups are indexed by where strings live and by the version
    tags of classes, so any change to the code (or to what's imported) moves
    a case's count by up to 1% either way. Each case is therefore counted in
    layouts processes, each with other padding made before Django is
    imported, and the mean is returned.
    """
    names = run_workload(
        WORKLOAD, [which, "list"], cwd=path.resolve(), pythonpath=[path]
    )
    runs = [
        (name, index, layout)
        for index, name in enumerate(names)
        if not only or any(part in name for part in only)
        for layout in range(layouts)
    ]

    def count(run: tuple[str, int, int]) -> int:
        name, index, layout = run
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "callgrind.out"
            run_workload(
                WORKLOAD,
                [which, "count", str(calls), str(index)],
                cwd=path.resolve(),
                pythonpath=[path],
                wrapper=[
                    "setarch",
                    "-R",
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={out}",
                    f"--dump-before={MARKER}",
                ],
                extra_env={"BENCH_LAYOUT": str(layout)},
            )
            totals = []
            # Dump 1 is the start-up, dump 2 the empty loop, dump 4 the case
            # (dump 3 is the garbage collector's, between them).
            for number in (2, 4):
                dump = out.with_name(f"{out.name}.{number}")
                if not dump.exists():
                    raise ScriptError(
                        f"callgrind didn't dump on {MARKER} ({dump.name} is "
                        f"missing): this Python's math module may lack the symbol."
                    )
                for line in dump.read_text().splitlines():
                    if line.startswith("totals:"):
                        totals.append(int(line.split()[1]))
                        break
        empty, total = totals
        return total - empty

    # Counts don't depend on timing: one callgrind per core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        totals = list(pool.map(count, runs))
    counts: dict[str, float] = {}
    for (name, _, _), total in zip(runs, totals):
        counts[name] = counts.get(name, 0) + total / calls / layouts
    return counts


def compare_instructions(
    trees: dict[str, Path], calls: int, layouts: int, only: list[str]
) -> int:
    for tool in ("setarch", "valgrind"):
        if shutil.which(tool) is None:
            raise ScriptError(
                f"--instructions needs {tool} (Debian: apt-get install "
                f"{'util-linux' if tool == 'setarch' else 'valgrind'})."
            )
    counts = {
        which: count_instructions(which, path, calls, layouts, only)
        for which, path in trees.items()
    }
    print(
        f"Instructions per call ({calls} calls, callgrind, an empty loop taken "
        f"off, mean of {layouts} memory layouts):"
    )
    print_table(counts, lambda count: f"{count:>11.0f}", ratio_digits=4)
    return 0


def print_table(results, show, ratio_digits):
    """
    Print the cases of results {run: {case: value}} side by side, pristine
    (with and without a router) against patched, with their ratio.
    """
    pristine = {**results["pristine"], **results["pristine-routed"]}
    print(f"\n{'case':<44} {'pristine':>11} {'patched':>11} {'ratio':>7}")
    for case, patched in results["patched"].items():
        if case in pristine:
            ratio = patched / pristine[case]
            print(
                f"{case:<44} {show(pristine[case])} {show(patched)} "
                f"{ratio:>7.{ratio_digits}f}"
            )


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
            "count instructions instead of timing (callgrind, CALLS calls of "
            "each case, an empty loop taken off): repeatable to the "
            "instruction, for overheads below what timings can show"
        ),
    )
    parser.add_argument(
        "--layouts",
        type=int,
        default=8,
        metavar="N",
        help=(
            "with --instructions, count each case in N memory layouts and "
            "compare the means (default: 8)"
        ),
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help=(
            "with --instructions, count only the cases whose name contains "
            "TEXT (repeatable), e.g. --only 'unbound: obj.save()'"
        ),
    )
    args = parser.parse_args()
    if args.patched_tree == ROOT:
        vendor()
    pristine = pristine_tree()
    # The bound model runs on pristine Django with a router, as projects do
    # today, the rest without one.
    trees = {
        "pristine": pristine,
        "pristine-routed": pristine,
        "patched": args.patched_tree,
    }
    if args.instructions:
        return compare_instructions(trees, args.instructions, args.layouts, args.only)
    best: dict[str, dict[str, float]] = {which: {} for which in trees}
    for round_number in range(args.rounds):
        for which, path in trees.items():
            for case, seconds in run_round(which, path).items():
                previous = best[which].get(case, seconds)
                best[which][case] = min(previous, seconds)
        print(f"round {round_number + 1}/{args.rounds} done", flush=True)
    print_table(best, lambda seconds: f"{seconds * 1e6:>9.1f}us", ratio_digits=3)
    nested = best["patched"]["atomic('default') + atomic('a'), nested"]
    multi = best["patched"]["atomic(using=['default', 'a'])"]
    print(
        f"\nFork only: atomic(using=['default', 'a']) takes {multi * 1e6:.1f}us, "
        f"{multi / nested:.3f} times two nested single-database atomics."
    )
    return 0


if __name__ == "__main__":
    run_main(main)
