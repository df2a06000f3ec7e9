#!/usr/bin/env python3
"""
Run Django's own test suite (runtests.py from the pinned sdist) against the
patched tree and fail on any failure or error that pristine Django doesn't
have on this machine.

    python scripts/upstream/run_upstream.py [--db sqlite|postgres] [--subset] [LABELS]

Without labels the full suite runs; --subset runs the labels the series
touches (the quick check while working). The pristine result for the same
labels is read from tests/upstream_baseline.json; record it with
--pristine --record. A failure that is new against the baseline is run once
more on its own before the run is called red (some upstream tests are timing
sensitive); so is a failure of a test the baseline lists as flaky (one that
failed on pristine under load and passed rerun alone): the baseline excuses
only what fails on pristine on a quiet machine. --fork runs the fork's own
test apps under runtests.py instead.

As root, the suite runs without the capabilities that bypass file
permissions (setpriv), so that upstream's permission tests behave as they do
for a normal user. With --db postgres and no MULTIDB_PGHOSTS, a throwaway
server is started with scripts/servers/pgcluster.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, ScriptError, run_main
from series._series import BUILD, TREE, extract_sdist, fetch_sdist, read_pin

BASELINE = ROOT / "tests" / "upstream_baseline.json"
# The upstream labels the series touches.
SUBSET = [
    "backends",
    "basic",
    "cache",
    "check_framework",
    "db_utils",
    "delete",
    "invalid_models_tests",
    "many_to_many",
    "migrations",
    "model_meta",
    "model_options",
    "multiple_database",
    "order_with_respect_to",
    "queries",
    "schema",
    "select_for_update",
    "test_runner",
    "transaction_hooks",
    "transactions",
    "version",
]
TIMEOUT = 75 * 60

POSTGRES_SETTINGS = """\
import os

_host = os.environ["MULTIDB_PGHOSTS"].split(os.pathsep)[0]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": _host,
        "USER": "postgres",
        "NAME": "django",
    },
    "other": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": _host,
        "USER": "postgres",
        "NAME": "django2",
    },
}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
"""

_PROBLEM = re.compile(
    r"^(FAIL|ERROR|UNEXPECTED SUCCESS): (\S+)(?: \(([^)\s]+)\))?", re.MULTILINE
)
_RAN = re.compile(r"^Ran (\d+) tests? in ([\d.]+)s$", re.MULTILINE)
_OUTCOME = re.compile(r"^(OK|FAILED)(?: \((.*)\))?$", re.MULTILINE)


def fork_test_apps() -> list[str]:
    """Names of the fork's test apps (packages directly under tests/)."""
    return sorted(path.parent.name for path in (ROOT / "tests").glob("*/__init__.py"))


def parse_output(text: str) -> dict:
    """Counts and failing test ids from runtests.py's output."""
    ran = _RAN.findall(text)
    outcomes = _OUTCOME.findall(text)
    if not ran or not outcomes:
        raise ScriptError("runtests.py ended without a test summary (see the log).")
    counts = {}
    for part in outcomes[-1][1].split(", ") if outcomes[-1][1] else []:
        key, _, value = part.partition("=")
        counts[key.replace(" ", "_")] = int(value)
    problems = set()
    for kind, name, test_id in _PROBLEM.findall(text):
        problems.add(test_id or name)
    return {
        "tests": int(ran[-1][0]),
        "seconds": round(float(ran[-1][1])),
        "skipped": counts.get("skipped", 0),
        "expected_failures": counts.get("expected_failures", 0),
        "failures": sorted(problems),
    }


def prepare_tree(pristine: bool) -> Path:
    """The directory holding django/ and tests/ to run."""
    if not pristine:
        from series.vendor import vendor

        vendor()
        return TREE
    pin = read_pin()
    path = BUILD / "pristine" / pin.version
    if not (path / "tests" / "runtests.py").exists():
        if path.exists():
            shutil.rmtree(path)
        extract_sdist(fetch_sdist(pin), path)
    return path


def link_fork_apps(tree: Path) -> list[str]:
    """
    Link the fork's test apps into the upstream tests/ directory, where
    runtests.py finds test apps, keeping the links out of git's sight.
    Remove the links with unlink_fork_apps().
    """
    apps = fork_test_apps()
    exclude = tree / ".git" / "info" / "exclude"
    excluded = exclude.read_text().splitlines()
    for app in apps:
        link = tree / "tests" / app
        if link.exists() and not link.is_symlink():
            raise ScriptError(f"{link} exists and is not the fork's test app.")
        link.unlink(missing_ok=True)
        link.symlink_to(ROOT / "tests" / app)
        if f"/tests/{app}" not in excluded:
            excluded.append(f"/tests/{app}")
    exclude.write_text("\n".join(excluded) + "\n")
    return apps


def unlink_fork_apps(tree: Path) -> None:
    """Remove the links, so that upstream's full suite runs upstream's apps."""
    for link in (tree / "tests").iterdir():
        if link.is_symlink() and link.resolve().parent == ROOT / "tests":
            link.unlink()


def runtests(
    tree: Path,
    labels: list[str],
    settings: str,
    pythonpath: list[Path],
    parallel: int,
    log: Path,
) -> dict:
    command = [
        sys.executable,
        "runtests.py",
        f"--settings={settings}",
        f"--parallel={parallel}",
        "--noinput",
        *labels,
    ]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        command = [
            "setpriv",
            "--bounding-set=-dac_override,-dac_read_search",
            "--",
            *command,
        ]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, pythonpath)))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    print(f"$ cd {tree / 'tests'} && {' '.join(command)}", flush=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=tree / "tests",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # A hung test (say, DDL waiting on a lock) must not hang the run.
        timed_out = threading.Event()

        def stop():
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(TIMEOUT, stop)
        watchdog.start()
        try:
            # Stream in chunks: runtests.py prints progress dots without newlines.
            while chunk := os.read(process.stdout.fileno(), 65536):
                out.write(chunk)
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            process.wait()
        finally:
            watchdog.cancel()
        if timed_out.is_set():
            raise ScriptError(f"runtests.py ran over {TIMEOUT // 60} minutes.")
    return parse_output(log.read_text(errors="replace"))


def load_baseline() -> dict:
    return json.loads(BASELINE.read_text()) if BASELINE.exists() else {}


def check_baseline_version(baseline: dict, db: str) -> None:
    """Refuse a baseline recorded on another release than the pinned one."""
    version = read_pin().version
    for key, entry in sorted(baseline.items()):
        if key.split("/")[0] == db and entry.get("django") != version:
            raise ScriptError(
                f"{BASELINE.name} holds the pristine baseline of Django "
                f"{entry.get('django', '(unknown)')} for {key}, but the series is "
                f"pinned to Django {version}: record it again with python3 "
                f"scripts/upstream/run_upstream.py --pristine --record --db {db} "
                f"(scripts/series/rebase.py does)."
            )


def known_failures(baseline: dict, db: str) -> set[str]:
    """
    The tests that fail on pristine Django on a quiet machine. Tests listed
    as flaky (timing sensitive: they failed on pristine under load and passed
    when rerun alone) aren't excused: they get the rerun any new failure gets,
    and must pass it.
    """
    known = set()
    for key, entry in baseline.items():
        if key.split("/")[0] == db:
            known.update(set(entry["failures"]) - set(entry.get("flaky", [])))
    return known


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("labels", nargs="*", help="test labels (default: all)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--subset", action="store_true", help="the series' labels")
    parser.add_argument(
        "--fork", action="store_true", help="run the fork's test apps instead"
    )
    parser.add_argument(
        "--pristine", action="store_true", help="run unpatched Django instead"
    )
    parser.add_argument(
        "--record", action="store_true", help="with --pristine: write the baseline"
    )
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    if args.record and not args.pristine:
        parser.error("--record needs --pristine: the baseline is pristine Django's")

    if args.db == "postgres" and not os.environ.get("MULTIDB_PGHOSTS"):
        from servers.pgcluster import run_with_clusters

        # The fork's tests span two servers, as tests/settings_postgres.py
        # says, and its replica tests need a standby of the first.
        servers, standbys = (2, 1) if args.fork else (1, 0)
        return run_with_clusters(
            [sys.executable, *sys.argv], servers, durable=False, standbys=standbys
        )

    if not (args.fork or args.record):
        # Before a run of many minutes that would be compared with it.
        check_baseline_version(load_baseline(), args.db)
    # Kept until the end: new failures are rerun with the same settings.
    settings_dir = Path(tempfile.mkdtemp(prefix="multidb-settings-"))
    try:
        return run(args, parser, settings_dir)
    finally:
        shutil.rmtree(settings_dir, ignore_errors=True)


def run(args, parser, settings_dir: Path) -> int:
    tree = prepare_tree(args.pristine)
    labels = list(args.labels) or (SUBSET if args.subset else [])
    pythonpath = [tree]
    unlink_fork_apps(tree)
    try:
        if args.fork:
            if args.pristine:
                parser.error("--fork runs the fork's own tests on the patched tree")
            apps = link_fork_apps(tree)
            labels = labels or apps
            pythonpath.append(ROOT / "tests")
            settings = f"settings_{args.db}"
            # The two-phase commit tests restart a PostgreSQL server, which
            # would break the tests another process runs on it meanwhile.
            args.parallel = 1
        elif args.db == "postgres":
            (settings_dir / "multidb_upstream_postgres.py").write_text(
                POSTGRES_SETTINGS
            )
            pythonpath.append(settings_dir)
            settings = "multidb_upstream_postgres"
        else:
            settings = "test_sqlite"
        which = "pristine" if args.pristine else "fork" if args.fork else "patched"
        log = BUILD / f"upstream-{args.db}-{which}.log"
        result = runtests(tree, labels, settings, pythonpath, args.parallel, log)
    finally:
        unlink_fork_apps(tree)

    if args.fork:
        key = f"{args.db}/fork"
    elif labels == SUBSET:
        key = f"{args.db}/subset"
    else:
        key = f"{args.db}/" + (" ".join(labels) or "full")
    print(
        f"\n{which} Django, {key}: {result['tests']} tests in {result['seconds']}s, "
        f"{len(result['failures'])} failing, {result['skipped']} skipped. Log: {log}"
    )
    baseline = load_baseline()
    if args.record:
        flaky = set()
        if result["failures"]:
            # A failure that passes when rerun alone is a timing test that
            # failed under load: recorded as flaky, never as a known failure.
            print(f"Rerunning {len(result['failures'])} failing test(s) alone:")
            rerun = runtests(
                tree,
                result["failures"],
                settings,
                pythonpath,
                1,
                BUILD / f"upstream-{args.db}-{which}-rerun.log",
            )
            if rerun["tests"]:
                flaky = set(result["failures"]) - set(rerun["failures"])
        previous = baseline.get(key, {})
        result.update(
            failures=sorted(set(result["failures"]) - flaky),
            flaky=sorted(flaky | set(previous.get("flaky", []))),
        )
        if previous.get("note"):
            result["note"] = previous["note"]
        result.update(
            recorded=time.strftime("%Y-%m-%d"),
            django=read_pin().version,
            python=platform.python_version(),
            as_root=os.geteuid() == 0,
        )
        # Entries of this database recorded on another release are stale.
        for other in [k for k, entry in baseline.items() if k.split("/")[0] == args.db]:
            if baseline[other].get("django") != result["django"]:
                del baseline[other]
        baseline[key] = result
        BASELINE.write_text(json.dumps(baseline, indent=2, sort_keys=True) + "\n")
        print(f"Recorded the pristine baseline for {key} in {BASELINE.name}.")
        return 0
    if args.fork:
        return 1 if result["failures"] else 0
    return compare(result, baseline, key, args, tree, settings, pythonpath)


def compare(result, baseline, key, args, tree, settings, pythonpath) -> int:
    known = known_failures(baseline, args.db)
    new = [test for test in result["failures"] if test not in known]
    status = 0
    if new:
        print(f"\n{len(new)} failing test(s) not in the pristine baseline; rerunning:")
        rerun = runtests(
            tree,
            new,
            settings,
            pythonpath,
            1,
            BUILD / f"upstream-{args.db}-rerun.log",
        )
        still = [test for test in new if test in rerun["failures"]]
        if rerun["tests"] == 0:
            still = new
        for test in new:
            print(f"  {'FAILS AGAIN' if test in still else 'passed on rerun'}: {test}")
        if still:
            status = 1
    entry = baseline.get(key)
    if entry is None:
        print(f"No pristine baseline for {key}: compared with known failures only.")
    else:
        print(
            f"Pristine baseline for {key}: {entry['tests']} tests, "
            f"{entry['skipped']} skipped, failing: {entry['failures'] or 'none'}."
        )
        if result["tests"] < entry["tests"]:
            print(
                f"The patched tree ran fewer tests ({result['tests']}) than pristine."
            )
            status = 1
    print("New failures versus pristine: " + ("yes" if status else "none") + ".")
    return status


if __name__ == "__main__":
    run_main(main)
