#!/usr/bin/env python3
"""
Move real apps to another database with DATABASE_BINDINGS alone, and run
their own, unchanged test suites before and after.

Each case is a reusable app from PyPI (its sdist, pinned, tests included) or
one of Django's own contrib test suites (from build/tree, see vendor.py). It
runs twice on the fork, on SQLite: unmoved, with the suite's own settings,
then moved, with a settings module that imports them, adds a database,
binds the app's labels to it and every other model to default (the "*"
entry), and sets ATOMIC_BOUND_DATABASES, as the docs advise for code that
can't name the moved app's database. Before the moved run, `migrate --all-databases`
on files checks that the moved app's tables are on its database and nowhere
else. The moved run must give the unmoved run's counts, except for the tests
listed in a case's `expected` (each with why).

    python scripts/upstream/move_apps.py            # every case
    python scripts/upstream/move_apps.py django-otp # one

The sdists and a virtualenv with the suites' dependencies are kept in
build/move_apps/. Exits 1 if a moved suite differs from its unmoved run
beyond what's expected.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import venv
from dataclasses import dataclass, field
from pathlib import Path

# Import the other scripts and their helpers by role, from scripts/.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from _common import ROOT, ScriptError, run_main
from series._series import BUILD, TREE

WORK = BUILD / "move_apps"
# What the suites import besides Django, which is the fork, on PYTHONPATH
# (installed without their dependencies, which would bring upstream Django).
REQUIREMENTS = [
    "asgiref==3.13.0",
    "sqlparse==0.6.1",
    "djangorestframework==3.16.1",
    "freezegun==1.5.5",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "qrcode==8.2",
    "django-environ==0.14.0",
    "typing_extensions==4.16.0",
]


@dataclass
class Case:
    name: str
    # The sdist on PyPI ("name==version"), or None for a suite of Django's.
    requirement: str | None
    # Directory of the unpacked sdist (or of build/tree/tests) to run in.
    subdir: str
    pythonpath: list[str]
    settings: str
    command: list[str]
    # App labels moved to the database "moved", and a model whose table
    # must end up there alone.
    labels: list[str]
    table_of: str
    # Test ids (or their beginnings) expected to fail once moved, with why.
    expected: dict[str, str] = field(default_factory=dict)
    # INSTALLED_APPS for the placement check, if the settings have none
    # (runtests.py sets them for the labels it runs).
    installed_apps: list[str] | None = None
    # Settings added to the suite's, in both runs (Python source).
    local_settings: str = ""

    def why(self, test: str) -> str | None:
        for start, why in self.expected.items():
            if test.startswith(start):
                return why
        return None


ORDERED_MODEL_COUNTS = (
    "counts queries on connections['default'] by name (the suite's own copy of "
    "assertNumQueries in tests/utils.py): the moved queries run on 'moved'"
)

GUARDIAN_COUNTS = (
    "counts or reads the queries of connection ('default', assertNumQueries() "
    "or connection.queries): guardian's queries run on 'moved', and one that "
    "joins its tables to the users reads their rows first"
)

# Run a suite as runtests.py scripts do: settings.configure() with the values
# of the settings module (tests may then delete settings they set).
CONFIGURED_RUN = """\
import importlib, os, sys
import django
from django.conf import settings
from django.test.runner import DiscoverRunner

module = importlib.import_module(os.environ.pop("DJANGO_SETTINGS_MODULE"))
settings.configure(**{{k: getattr(module, k) for k in dir(module) if k.isupper()}})
django.setup()
sys.exit(bool(DiscoverRunner().run_tests({labels!r})))
"""

REVERSION_USING = (
    "names the databases of its revisions (using='postgres', 'mysql'), "
    "which the binding of reversion to 'moved' overrides"
)
REVERSION_DATABASES = (
    "sets its own databases ('default', 'mysql', 'postgres'), without 'moved'"
)

HISTORY_DATABASES = "sets its own databases ('default', 'other'), without 'moved'"

# The suite's other databases (PostgreSQL, MySQL servers) as SQLite ones.
SQLITE_EVERYWHERE = """
DATABASES = {
    alias: {"ENGINE": "django.db.backends.sqlite3", "NAME": alias + ".sqlite3"}
    for alias in DATABASES
}
"""

CASES = [
    Case(
        name="django-solo",
        requirement="django-solo==2.5.1",
        subdir="django_solo-2.5.1",
        pythonpath=["."],
        settings="solo.tests.settings",
        command=["-m", "django", "test", "solo"],
        labels=["tests", "testapp2"],
        table_of="tests.SiteConfiguration",
    ),
    Case(
        name="django-ordered-model",
        requirement="django-ordered-model==3.7.4",
        subdir="django-ordered-model-3.7.4",
        pythonpath=["."],
        settings="tests.settings",
        command=["-m", "django", "test", "tests"],
        labels=["tests"],
        table_of="tests.Answer",
        expected={
            # setUp() counts queries in these two test cases.
            "tests.tests.OrderWithRespectToTests.": ORDERED_MODEL_COUNTS,
            "tests.tests.OrderWithRespectToTestsManyToMany.": ORDERED_MODEL_COUNTS,
            "tests.tests.OrderWithRespectToReorderTests."
            "test_reorder_when_field_value_changed": ORDERED_MODEL_COUNTS,
        },
    ),
    Case(
        name="django-otp",
        requirement="django-otp==1.7.5",
        subdir="django_otp-1.7.5",
        pythonpath=["src", "test"],
        settings="test_project.settings",
        command=["-s", "-m", "django", "test", "django_otp"],
        labels=["django_otp", "otp_email", "otp_hotp", "otp_static", "otp_totp"],
        table_of="otp_static.StaticDevice",
    ),
    Case(
        name="django-guardian",
        requirement="django-guardian==3.5.2",
        subdir="django_guardian-3.5.2",
        pythonpath=["."],
        settings="guardian.testapp.testsettings",
        command=["-m", "django", "test", "guardian"],
        labels=["guardian"],
        table_of="guardian.UserObjectPermission",
        expected={
            "guardian.testapp.tests.test_core.ObjectPermissionCheckerTest."
            "test_autoprefetch_user_perms": GUARDIAN_COUNTS,
            "guardian.testapp.tests.test_core.ObjectPermissionCheckerTest."
            "test_prefetch_performance": GUARDIAN_COUNTS,
            "guardian.testapp.tests.test_managers.TestManagerAssignPerm."
            "test_group_bulk_assign_perm": GUARDIAN_COUNTS,
            "guardian.testapp.tests.test_managers.TestManagerAssignPerm."
            "test_user_bulk_assign_perm": GUARDIAN_COUNTS,
            "guardian.testapp.tests.test_shortcuts.GetUsersWithPermsTest."
            "test_with_group_users_resolves_group_ids_as_subquery": GUARDIAN_COUNTS,
            "guardian.testapp.tests.test_indexes.IndexTestCase.": (
                "introspects the indexes of guardian's tables on "
                "connection ('default'): they're on 'moved'"
            ),
        },
    ),
    Case(
        name="django-reversion",
        requirement="django-reversion==6.4.0",
        subdir="django_reversion-6.4.0",
        pythonpath=[".", "tests"],
        settings="test_project.settings",
        command=["tests/manage.py", "test", "test_app"],
        labels=["reversion"],
        table_of="reversion.Version",
        local_settings=SQLITE_EVERYWHERE,
        expected={
            **{
                f"test_app.tests.{name}.": REVERSION_USING
                for name in [
                    "test_api.CreateRevisionDbTest",
                    "test_commands.CreateInitialRevisionsDbTest",
                    "test_commands.CreateInitialRevisionsModelDbTest",
                    "test_commands.DeleteRevisionsDbTest",
                    "test_commands.DeleteRevisionsModelDbTest",
                    "test_models.GetDeletedDbTest",
                    "test_models.GetDeletedModelDbTest",
                    "test_models.GetForModelDbTest",
                    "test_models.GetForObjectDbTest",
                    "test_models.GetForObjectModelDbTest",
                    "test_models.GetForObjectReferenceDbTest",
                    "test_models.GetForObjectReferenceModelDbTest",
                ]
            },
            "test_app.tests.test_api.AddMetaTest.": REVERSION_DATABASES,
            "test_app.tests.test_models.GetDeletedTest.": REVERSION_DATABASES,
            "test_app.tests.test_api.CreateRevisionAtomicTest."
            "testCreateRevisionAtomic": (
                "asserts that connection 'default' is in an atomic block: "
                "create_revision()'s is on 'moved'"
            ),
            "test_app.tests.test_api.CreateRevisionAtomicTest."
            "testCreateRevisionInOnCommitHandler": (
                "registers its on_commit() hook on 'default', which isn't in "
                "an atomic block: create_revision()'s is on 'moved'"
            ),
            "test_app.tests.test_models.TransactionRollbackTest.": (
                "an IntegrityError on 'default' marks its transaction for "
                "rollback; create_revision() checks the rollback state of the "
                "revisions' database ('moved') only, and reads the model"
            ),
        },
    ),
    Case(
        name="django-simple-history",
        requirement="django-simple-history==3.13.0",
        subdir="django_simple_history-3.13.0",
        pythonpath=["."],
        # runtests.py configures the settings in main(): its module holds them.
        settings="runtests",
        command=["-c", CONFIGURED_RUN.format(labels=["simple_history.tests"])],
        # The tracked models and their historical models, with the user
        # model (tests.Profile inherits from it).
        labels=["tests", "custom_user"],
        table_of="tests.HistoricalPoll",
        local_settings=(
            "globals().update(get_default_settings(database_name='sqlite3'))\n"
        ),
        expected={
            "simple_history.tests.tests.test_models.MultiDBWithUsingTest.": (
                "saves its models with using='other' and asserts where their "
                "history is: the binding to 'moved' overrides using"
            ),
            "simple_history.tests.tests.test_models."
            "MultiDBExplicitHistoryUserIDTest.": HISTORY_DATABASES,
            "simple_history.tests.tests.test_models."
            "SaveHistoryInSeparateDatabaseTestCase.": HISTORY_DATABASES,
        },
    ),
    Case(
        name="django.contrib.sessions",
        requirement=None,
        subdir="tests",
        pythonpath=["."],
        settings="test_sqlite",
        command=["runtests.py", "--parallel=1", "sessions_tests"],
        labels=["sessions"],
        table_of="sessions.Session",
        installed_apps=["django.contrib.sessions"],
    ),
    Case(
        name="django.contrib.flatpages",
        requirement=None,
        subdir="tests",
        pythonpath=["."],
        settings="test_sqlite",
        command=["runtests.py", "--parallel=1", "flatpages_tests"],
        labels=["flatpages"],
        table_of="flatpages.FlatPage",
        installed_apps=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sites",
            "django.contrib.flatpages",
        ],
    ),
]

MOVED_SETTINGS = """\
from {settings} import *  # noqa: F401, F403

DATABASES = {{
    **DATABASES,
    "moved": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {name!r}}},
}}
DATABASE_BINDINGS = {bindings!r}
# atomic() without using covers the moved app's database too, for the code
# of the app that can't name it.
ATOMIC_BOUND_DATABASES = True
"""

# Where the moved app's tables are, after migrate --all-databases on files.
WHERE_TABLES_ARE = """\
from django.apps import apps
from django.db import connections

model = apps.get_model({model!r})
print(sorted(
    alias for alias in connections
    if model._meta.db_table in connections[alias].introspection.table_names()
))
"""


def python() -> Path:
    """The virtualenv's interpreter, with the suites' requirements."""
    env = WORK / "venv"
    interpreter = env / "bin" / "python"
    marker = env / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS)
    if not marker.exists() or marker.read_text() != wanted:
        print(f"Creating {env} with {', '.join(REQUIREMENTS)}.")
        shutil.rmtree(env, ignore_errors=True)
        venv.create(env, with_pip=True)
        pip = [str(interpreter), "-m", "pip", "install", "-q", "--no-deps"]
        subprocess.run([*pip, *REQUIREMENTS], check=True)
        marker.write_text(wanted)
    return interpreter


def source(case: Case) -> Path:
    """The directory the case's suite runs in, unpacked if need be."""
    if case.requirement is None:
        if not (TREE / "tests" / "runtests.py").exists():
            raise ScriptError(
                "build/tree is missing: run scripts/series/vendor.py first."
            )
        return TREE / case.subdir
    directory = WORK / case.subdir
    if not directory.exists():
        downloads = WORK / "sdist"
        downloads.mkdir(parents=True, exist_ok=True)
        print(f"Downloading the sdist of {case.requirement}.")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary=:all:",
                "--dest",
                str(downloads),
                case.requirement,
            ],
            check=True,
        )
        name, version = case.requirement.split("==")
        stems = {name, name.replace("-", "_")}
        sdists = [
            path
            for path in downloads.glob("*.tar.gz")
            if any(path.name == f"{stem}-{version}.tar.gz" for stem in stems)
        ]
        if not sdists:
            raise ScriptError(f"pip downloaded no sdist of {case.requirement}.")
        with tarfile.open(sdists[0]) as archive:
            archive.extractall(WORK, filter="data")
    return directory


def environment(case: Case, where: Path, settings: str, extra: Path) -> dict:
    paths = [str(ROOT), str(extra), *(str(where / p) for p in case.pythonpath)]
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(WORK),
        "PYTHONPATH": ":".join(paths),
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONHASHSEED": "0",
    }


def run_suite(case: Case, where: Path, env: dict) -> tuple[str, dict]:
    """Run the suite; return its output and its counts."""
    command = [str(python()), *case.command]
    if case.requirement is None:
        command.append(f"--settings={env['DJANGO_SETTINGS_MODULE']}")
    result = subprocess.run(
        command, cwd=where, env=env, capture_output=True, text=True, timeout=1800
    )
    output = result.stdout + result.stderr
    ran = re.search(r"^Ran (\d+) tests?", output, re.MULTILINE)
    if ran is None:
        raise ScriptError(f"{case.name}: the suite didn't run:\n{output[-3000:]}")
    counts = {"ran": int(ran.group(1))}
    summary = re.search(r"^(OK|FAILED)(?: \((.*)\))?$", output, re.MULTILINE)
    for part in (summary.group(2) or "").split(", ") if summary else []:
        if "=" in part:
            key, value = part.split("=")
            counts[key] = int(value)
    failed = re.findall(r"^(?:FAIL|ERROR): \S+ \(([^)]+)\)", output, re.MULTILINE)
    counts["failing"] = sorted(set(failed))
    if len(failed) != counts.get("failures", 0) + counts.get("errors", 0):
        raise ScriptError(f"{case.name}: couldn't read the failing tests:\n{output}")
    return output, counts


def move(case: Case) -> bool:
    where = source(case)
    shim = WORK / "settings" / case.name.replace(".", "_").replace("-", "_")
    shutil.rmtree(shim, ignore_errors=True)
    shim.mkdir(parents=True)
    database = shim / "moved.sqlite3"
    if case.requirement:
        # The app's metadata, as if installed: some apps read their version.
        name, version = case.requirement.split("==")
        info = shim / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
    settings = case.settings
    if case.local_settings:
        (shim / "case_settings.py").write_text(
            f"from {settings} import *  # noqa: F401, F403\n{case.local_settings}"
        )
        settings = "case_settings"
    (shim / "moved_settings.py").write_text(
        MOVED_SETTINGS.format(
            settings=settings,
            name=str(database),
            bindings={"*": "default", **{label: "moved" for label in case.labels}},
        )
    )
    unmoved_env = environment(case, where, settings, shim)
    moved_env = environment(case, where, "moved_settings", shim)

    # The moved app's tables go to "moved" alone.
    files = shim / "files_settings.py"
    files.write_text(
        "from moved_settings import *  # noqa: F401, F403\n\n"
        "DATABASES = {alias: {'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(shim)!r} + '/' + alias + '.sqlite3'}} "
        "for alias in DATABASES}\n"
        + (f"INSTALLED_APPS = {case.installed_apps!r}\n" if case.installed_apps else "")
    )
    files_env = environment(case, where, "files_settings", shim)
    django = [str(python()), "-m", "django"]
    migrate = subprocess.run(
        [*django, "migrate", "--all-databases", "--run-syncdb", "--verbosity=0"],
        cwd=where,
        env=files_env,
        capture_output=True,
        text=True,
    )
    if migrate.returncode:
        raise ScriptError(f"{case.name}: migrate failed:\n{migrate.stderr[-3000:]}")
    code = WHERE_TABLES_ARE.format(model=case.table_of)
    placed = subprocess.run(
        [*django, "shell", "--no-imports", "-c", code],
        cwd=where,
        env=files_env,
        capture_output=True,
        text=True,
    )
    placed = placed.stdout.strip() or placed.stderr.strip()

    output, unmoved = run_suite(case, where, unmoved_env)
    if unmoved["failing"]:
        raise ScriptError(f"{case.name}: the unmoved suite fails:\n{output[-5000:]}")
    output, moved = run_suite(case, where, moved_env)
    unexpected = sorted(set(moved["failing"]) - set(unmoved["failing"]))
    unexplained = [test for test in unexpected if case.why(test) is None]
    same = (
        placed == "['moved']"
        and not unexplained
        and moved["ran"] == unmoved["ran"]
        and moved.get("skipped", 0) == unmoved.get("skipped", 0)
    )
    print(f"\n{case.name}: {', '.join(case.labels)} moved to 'moved'")
    print(f"  {case.table_of} table after migrate --all-databases: {placed}")
    for label, counts in [("unmoved", unmoved), ("moved", moved)]:
        failing = len(counts["failing"])
        print(
            f"  {label:8} ran {counts['ran']}, skipped {counts.get('skipped', 0)}, "
            f"failing {failing}"
        )
    for start, why in case.expected.items():
        tests = [test for test in unexpected if test.startswith(start)]
        if tests:
            print(f"  expected: {len(tests)} failing in {start}*: {why}")
    for test in unexplained:
        print(f"  UNEXPECTED: {test} fails once moved")
    if unexplained:
        print(output[-5000:])
    if same and not unexpected:
        print("  same counts as unmoved")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="Cases to run (default: all).")
    args = parser.parse_args()
    cases = [case for case in CASES if not args.names or case.name in args.names]
    if not cases:
        raise ScriptError(f"No such case. Cases: {', '.join(c.name for c in CASES)}.")
    WORK.mkdir(parents=True, exist_ok=True)
    failed = [case.name for case in cases if not move(case)]
    if failed:
        raise ScriptError(f"Moved suites differ from unmoved: {', '.join(failed)}.")
    print(f"\n{len(cases)} suite(s) moved with DATABASE_BINDINGS alone: as expected.")


if __name__ == "__main__":
    run_main(main)
