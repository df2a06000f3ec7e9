#!/usr/bin/env python3
"""
Run Django's own ORM tests with their models split over two databases, and
compare each test with the same tests on one database.

    python scripts/upstream/split_suite.py [--db sqlite|postgres] [LABELS...]

Django's tests are the oracle for relations across databases: a query over
models bound to two databases must give the answer it gives with every
model on one. The ORM test apps below run three times on the patched tree:
on one database ('default', no bindings, as on pristine Django), then with
half of each app's models bound to 'other' (DATABASE_BINDINGS with
"app.Model" keys, generated: a model stays with its parents, proxies, its
explicit many-to-many through models and models sharing its table), then
with the other half bound. The models left unbound stay where upstream puts
them (on 'default', unless a test names 'other'). A test that passes on one
database and fails split is a difference, reported by kind (wrong result,
wrong database, refusal, crash) unless tests/split_expected.txt lists it
with one of the reasons that file gives (none is a wrong answer). Exits 1 on
any unlisted difference, and on a listed test that no longer differs.

In the split runs, assertNumQueries() checks no count (a query across
databases adds the queries that read the other database's rows); the rest
of each test still runs.

The per-app table is printed at the end and written to
build/split-<db>.json.

Without labels, Django's auth_tests then run on one database and with the
one setting DATABASE_BINDINGS = {"auth": "users"} (auth moved to a database
of its own, contenttypes staying on default); each test that differs must
be listed in tests/split_expected.txt too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, ScriptError, run_main
from series._series import BUILD
from upstream.run_upstream import (
    POSTGRES_SETTINGS,
    prepare_tree,
    runtests,
    unlink_fork_apps,
)

EXPECTED = ROOT / "tests" / "split_expected.txt"
# The reasons a test may differ split, and why each is no wrong answer.
REASONS = {"query-count", "sql-text", "names-database", "own-databases", "refusal"}
LABELS = [
    "aggregation",
    "aggregation_regress",
    "annotations",
    "custom_managers",
    "delete",
    "delete_regress",
    "expressions",
    "filtered_relation",
    "foreign_object",
    "generic_relations",
    "generic_relations_regress",
    "get_or_create",
    "lookup",
    "m2m_regress",
    "m2m_through",
    "many_to_many",
    "many_to_one",
    "null_fk",
    "one_to_one",
    "ordering",
    "prefetch_related",
    "queries",
    "reverse_lookup",
    "select_related",
    "select_related_onetoone",
    "update",
]

# Moved by a setting alone: Django's auth_tests with auth on a database of
# its own, contenttypes and the rest on default.
MOVED_LABEL = "auth_tests"
MOVED_BINDINGS = {"auth": "users"}

# In the split runs, assertNumQueries() runs its block and checks no count:
# a query across databases adds the queries that read the other database's
# rows, and the rest of such a test still judges the results.
UNCOUNTED = """
from django.test import testcases as _testcases


class _Uncounted(_testcases._AssertNumQueriesInDatabasesContext):
    def __exit__(self, exc_type, exc_value, traceback):
        self.wrappers.close()
        for context in reversed(self.contexts.values()):
            context.__exit__(exc_type, exc_value, traceback)


def _uncounted(self, num, func=None, *args, using=None, **kwargs):
    aliases = [using] if using else self._databases_names(include_mirrors=False)
    context = _Uncounted(self, num, aliases)
    if func is None:
        return context
    with context:
        func(*args, **kwargs)


_testcases.TransactionTestCase.assertNumQueries = _uncounted
"""

# Prints, for each app label, its models' families: lists of "app.Model"
# that must share a database (parents, proxies, a shared table).
FAMILIES = """\
import json, sys
import django
from django.conf import settings

labels = sys.argv[1:]
settings.configure(
    INSTALLED_APPS=[
        "django.contrib.contenttypes", "django.contrib.auth",
        "django.contrib.sites", "django.contrib.sessions",
        "django.contrib.messages", "django.contrib.admin",
        "django.contrib.staticfiles", *labels,
    ],
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()
from django.apps import apps

out = {}
for label in labels:
    models = [m for m in apps.get_app_config(label).get_models()]
    root = {m: m for m in models}

    def find(m):
        while root.setdefault(m, m) is not m:
            m = root[m]
        return m

    def union(a, b):
        root[find(a)] = find(b)

    tables = {}
    for m in models:
        union(m, m._meta.concrete_model)
        for parent in m._meta.get_parent_list():
            union(m, parent)
        if m._meta.db_table in tables:
            union(m, tables[m._meta.db_table])
        tables.setdefault(m._meta.db_table, m)
        for field in m._meta.local_many_to_many:
            through = field.remote_field.through
            if through in root:
                union(m, through)
    families = {}
    for m in models:
        families.setdefault(find(m), []).append(m._meta.label)
    out[label] = sorted(sorted(f) for f in families.values())
print(json.dumps(out))
"""


def families(tree: Path, labels: list[str]) -> dict[str, list[list[str]]]:
    result = subprocess.run(
        [sys.executable, "-c", FAMILIES, *labels],
        cwd=tree / "tests",
        env=dict(os.environ, PYTHONPATH=str(tree)),
        capture_output=True,
        text=True,
    )
    if result.returncode:
        raise ScriptError(f"Listing the models failed:\n{result.stderr}")
    return json.loads(result.stdout)


def split_bindings(found: dict[str, list[list[str]]], half: int) -> dict[str, str]:
    """Every other family of each app, starting with the first or second."""
    bindings = {}
    for label in sorted(found):
        for index, family in enumerate(found[label]):
            if index % 2 == half:
                bindings.update(dict.fromkeys(family, "other"))
    return bindings


_BLOCK = re.compile(
    # The header, an optional docstring line, the dashes, the traceback.
    r"^=+\n(FAIL|ERROR|UNEXPECTED SUCCESS): (\S+) \(([^)\s]+)\)\n"
    r"(?:[^\n]*\n)?-{20,}\n"
    r"(.*?)(?=\n=+\n(?:FAIL|ERROR|UNEXPECTED)|\n-{20,}\nRan )",
    re.MULTILINE | re.DOTALL,
)


def problems(log: Path) -> dict[str, str]:
    """Each failing test of a runtests.py log, with the kind of its failure."""
    found = {}
    for outcome, _name, test_id, trace in _BLOCK.findall(
        log.read_text("utf-8", "replace")
    ):
        found[test_id] = kind_of(outcome, trace)
    return found


def kind_of(outcome: str, trace: str) -> str:
    last = trace.strip().splitlines()[-1] if trace.strip() else ""
    if outcome == "FAIL":
        return "wrong-result"
    if "no such table" in last or "does not exist" in last and "relation" in last:
        return "wrong-database"
    if last.startswith(("django.db.utils.NotSupportedError", "NotSupportedError")):
        return "refusal"
    return "crash"


def read_expected(db: str) -> dict[str, str]:
    """{test id: reason} of the tests listed for db."""
    expected = {}
    if not EXPECTED.exists():
        return expected
    for number, line in enumerate(EXPECTED.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        test_id, reason, *only = line.split()
        if reason not in REASONS or not set(only) <= {"sqlite", "postgres"}:
            raise ScriptError(
                f"{EXPECTED.name}:{number}: expected a test id, a reason (one "
                f"of {', '.join(sorted(REASONS))}) and optionally the "
                f"databases it differs on (sqlite, postgres): {line!r}."
            )
        if not only or db in only:
            expected[test_id] = reason
    return expected


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("labels", nargs="*", help=f"test apps (default: {len(LABELS)})")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    if args.db == "postgres" and not os.environ.get("MULTIDB_PGHOSTS"):
        from servers.pgcluster import run_with_clusters

        return run_with_clusters([sys.executable, *sys.argv], 1, durable=False)
    settings_dir = Path(tempfile.mkdtemp(prefix="multidb-split-"))
    try:
        return run(args, settings_dir)
    finally:
        shutil.rmtree(settings_dir, ignore_errors=True)


def run(args, settings_dir: Path) -> int:
    labels = args.labels or LABELS
    tree = prepare_tree(pristine=False)
    unlink_fork_apps(tree)
    base = "test_sqlite"
    if args.db == "postgres":
        (settings_dir / "split_base.py").write_text(POSTGRES_SETTINGS)
        base = "split_base"
    found = families(tree, labels)
    runs = {"one": None}
    for half in (0, 1):
        runs[f"split{half + 1}"] = split_bindings(found, half)
    outcomes = {}
    for name, bindings in runs.items():
        module = f"split_{name}"
        text = f"from {base} import *  # noqa\n"
        if bindings is not None:
            text += f"\nDATABASE_BINDINGS = {bindings!r}\n"
            # As a project moving models to another database does for code
            # that calls atomic() without using, as the tests do.
            text += "ATOMIC_BOUND_DATABASES = True\n" + UNCOUNTED
        (settings_dir / f"{module}.py").write_text(text)
        log = BUILD / f"split-{args.db}-{name}.log"
        result = runtests(
            tree, labels, module, [tree, settings_dir], args.parallel, log
        )
        outcomes[name] = (result, problems(log))
        print(
            f"\n{name}: {result['tests']} tests, {len(result['failures'])} failing "
            f"({len(bindings or ())} models bound to 'other'). Log: {log}\n",
            flush=True,
        )
    failed = report(args.db, labels, found, outcomes)
    if not args.labels:
        failed |= run_moved(args, settings_dir, tree, base)
    return failed


def run_moved(args, settings_dir: Path, tree: Path, base: str) -> int:
    """
    Django's auth_tests on one database, then with only the setting
    DATABASE_BINDINGS = MOVED_BINDINGS (and a database 'users'); each test
    that differs must be listed in split_expected.txt.
    """
    users = '{"ENGINE": "django.db.backends.sqlite3"}'
    if args.db == "postgres":
        users = '{**DATABASES["other"], "NAME": "django3"}'
    outcomes = {}
    for name, text in {
        "one": "",
        "moved": f"DATABASES['users'] = {users}\n"
        f"DATABASE_BINDINGS = {MOVED_BINDINGS!r}\n",
    }.items():
        module = f"moved_{name}"
        (settings_dir / f"{module}.py").write_text(
            f"from {base} import *  # noqa\n\n{text}"
        )
        log = BUILD / f"split-{args.db}-auth-{name}.log"
        result = runtests(
            tree, [MOVED_LABEL], module, [tree, settings_dir], args.parallel, log
        )
        outcomes[name] = (result, problems(log))
    (one, one_failing), (moved, moved_failing) = outcomes["one"], outcomes["moved"]
    expected = {
        test_id: reason
        for test_id, reason in read_expected(args.db).items()
        if test_id.startswith(MOVED_LABEL + ".")
    }
    differing = sorted(set(moved_failing) - set(one_failing))
    unlisted = [test_id for test_id in differing if test_id not in expected]
    stale = sorted(set(expected) - set(differing))
    passing = one["tests"] - len(one_failing)
    print(
        f"{MOVED_LABEL} with DATABASE_BINDINGS = {MOVED_BINDINGS!r}: "
        f"{moved['tests']} tests ran ({one['tests']} on one database), "
        f"{len(differing)} of the {passing} that pass on one database differ, "
        f"{len(differing) - len(unlisted)} of them listed."
    )
    for test_id in unlisted:
        print(f"  moved {moved_failing[test_id]}: {test_id}")
    for test_id in stale:
        print(f"  passes moved, remove it from {EXPECTED.name}: {test_id}")
    return 1 if unlisted or stale else 0


def report(db: str, labels, found, outcomes) -> int:
    expected = read_expected(db)
    one_result, one_failing = outcomes["one"]
    table = {}
    unlisted = []
    for label in labels:
        table[label] = {"models": sum(map(len, found[label]))}
    kinds = ["wrong-result", "wrong-database", "refusal", "crash"]
    for name in ("split1", "split2"):
        result, failing = outcomes[name]
        if result["tests"] != one_result["tests"]:
            raise ScriptError(
                f"{name} ran {result['tests']} tests, one database "
                f"{one_result['tests']}: compare the logs."
            )
        for label in labels:
            table[label].setdefault(name, dict.fromkeys(kinds + ["listed"], 0))
        for test_id, kind in sorted(failing.items()):
            if test_id in one_failing:
                continue
            label = test_id.split(".")[0]
            row = table.setdefault(label, {}).setdefault(
                name, dict.fromkeys(kinds + ["listed"], 0)
            )
            if test_id in expected:
                row["listed"] += 1
            else:
                row[kind] += 1
                unlisted.append((name, kind, test_id))
    header = f"{'app':27} {'models':>6}  " + "  ".join(
        f"{name}: " + " ".join(f"{k[:6]:>6}" for k in kinds + ["listed"])
        for name in ("split1", "split2")
    )
    print(header)
    for label in labels:
        row = table[label]
        print(
            f"{label:27} {row['models']:>6}  "
            + "  ".join(
                f"{'':8}" + " ".join(f"{row[name][k]:>6}" for k in kinds + ["listed"])
                for name in ("split1", "split2")
            )
        )
    total = one_result["tests"]
    passing_one = total - len(one_failing)
    for name in ("split1", "split2"):
        failing = outcomes[name][1]
        new = [t for t in failing if t not in one_failing]
        print(
            f"{name}: {passing_one - len(new)} of the {passing_one} tests that pass "
            f"on one database pass split ({total} tests)."
        )
    out = BUILD / f"split-{db}.json"
    out.write_text(
        json.dumps(
            {"table": table, "unlisted": unlisted, "tests": total, "one": passing_one},
            indent=2,
        )
        + "\n"
    )
    for name, kind, test_id in unlisted:
        print(f"  {name} {kind}: {test_id}")
    differing = {
        test_id
        for name in ("split1", "split2")
        for test_id in outcomes[name][1]
        if test_id not in one_failing
    }
    stale = sorted(
        test_id
        for test_id in expected
        if test_id not in differing and test_id.split(".")[0] in labels
    )
    for test_id in stale:
        print(f"  passes split, remove it from {EXPECTED.name}: {test_id}")
    print(f"{len(unlisted)} unlisted difference(s). Table: {out}")
    return 1 if unlisted or stale else 0


if __name__ == "__main__":
    run_main(main)
