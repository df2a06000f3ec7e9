"""
examples/shop, a project made with startproject: auth and contenttypes on
"users", the shop app on "orders", the admin and sessions on default. Its own
test suite (the admin, permissions through groups, deleting a user) runs as
a user would run it.
"""

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import django
from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parents[2]
# Where the Django under test is (./django, or another tree).
DJANGO_HOME = Path(django.__file__).resolve().parents[1]
PROJECT = ROOT / "examples" / "shop"


def manage(*args, cwd=PROJECT, env=None, input=None):
    env = {**os.environ, "PYTHONPATH": str(DJANGO_HOME), **(env or {})}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
    )


DATABASES = ["default", "users", "orders"]

SHOP = """
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission, User
from shop.models import Order, Product

ann = User.objects.create_user("ann", password="pw")
clerks = Group.objects.create(name="clerks")
clerks.permissions.add(*Permission.objects.filter(codename__endswith="order"))
ann.groups.add(clerks)
tea = Product.objects.create(name="tea", price=3)
cup = Product.objects.create(name="cup", price=5)
order = Order.objects.create(customer=ann, total=8)
order.products.add(tea, cup)
boss = User.objects.get(username="boss")
LogEntry.objects.log_actions(boss.pk, [order], ADDITION)
"""


def tables(directory):
    """
    {database: {table: (row count, digest of the rows)}} of the project's
    SQLite files in directory.
    """
    found = {}
    for alias in DATABASES:
        connection = sqlite3.connect(Path(directory) / f"{alias}.sqlite3")
        try:
            names = connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN "
                "('django_migrations', 'sqlite_sequence')"
            ).fetchall()
            found[alias] = {}
            for (name,) in names:
                quoted = '"%s"' % name.replace('"', '""')
                rows = sorted(map(repr, connection.execute(f"SELECT * FROM {quoted}")))
                digest = hashlib.sha256(repr(rows).encode()).hexdigest()
                found[alias][name] = (len(rows), digest)
        finally:
            connection.close()
    return found


class ExampleProjectTests(SimpleTestCase):
    def test_check_and_test_suite(self):
        result = manage("check")
        self.assertEqual(result.returncode, 0, result.stderr)
        result = manage("test", "--noinput")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Ran 7 tests", result.stderr)
        self.assertIn("\nOK", result.stderr)

    def test_migrations_need_no_bindings(self):
        # The project's migrations are the same without its bindings.
        result = manage("makemigrations", "--check", "--dry-run")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


class ExampleProjectCommandsTests(SimpleTestCase):
    """
    The project's life through the real commands, in a copy of it: migrate
    every database, create a superuser and data, dump it, start again from
    fresh databases and load the dump.
    """

    def setUp(self):
        self.directory = Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, self.directory)
        self.project = self.directory / "shop"
        shutil.copytree(
            PROJECT, self.project, ignore=shutil.ignore_patterns("*.sqlite3")
        )

    def run_ok(self, *args, **kwargs):
        result = manage(*args, cwd=self.project, **kwargs)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result

    def test_migrate_dump_and_load_into_fresh_databases(self):
        result = self.run_ok("migrate", "--all-databases")
        # users first: the admin log (default) and orders refer to users.
        headings = [line for line in result.stdout.splitlines() if "Database" in line]
        self.assertEqual(
            headings,
            ["Database 'users':", "Database 'default':", "Database 'orders':"],
        )
        # Each database has its own apps' tables and no other.
        self.assertEqual(
            {alias: sorted(found) for alias, found in tables(self.project).items()},
            {
                "default": ["django_admin_log", "django_session"],
                "users": [
                    "auth_group",
                    "auth_group_permissions",
                    "auth_permission",
                    "auth_user",
                    "auth_user_groups",
                    "auth_user_user_permissions",
                    "django_content_type",
                ],
                "orders": ["shop_order", "shop_order_products", "shop_product"],
            },
        )
        self.run_ok(
            "createsuperuser",
            "--noinput",
            "--username=boss",
            "--email=boss@example.com",
            env={"DJANGO_SUPERUSER_PASSWORD": "s3cret-pass"},
        )
        self.run_ok("shell", "-c", SHOP)
        before = tables(self.project)
        self.assertEqual(before["users"]["auth_user"][0], 2)
        self.assertEqual(before["orders"]["shop_order_products"][0], 2)
        self.assertEqual(before["default"]["django_admin_log"][0], 1)
        # XML keeps microseconds (JSON rounds datetimes to milliseconds).
        dump = self.run_ok("dumpdata", "--format=xml").stdout
        self.assertEqual(dump.count("<object model="), 47)
        for alias in DATABASES:
            (self.project / f"{alias}.sqlite3").unlink()
        self.run_ok("migrate", "--all-databases", "--verbosity=0")
        result = self.run_ok("loaddata", "--format=xml", "-", input=dump)
        self.assertIn("Installed 47 object(s) from 1 fixture(s)", result.stdout)
        self.assertEqual(tables(self.project), before)

    def test_moving_apps_of_a_project_on_one_database(self):
        # The walk-through of docs/topics/db/multi-db.txt: the project runs on
        # default alone, its data is dumped, the bindings are switched on,
        # and the dump is loaded into the new databases.
        (self.project / "shop_site" / "unbound.py").write_text(
            "from .settings import *  # noqa: F401, F403\n\nDATABASE_BINDINGS = {}\n"
        )
        unbound = "--settings=shop_site.unbound"
        self.run_ok("migrate", unbound, "--verbosity=0")
        self.run_ok(
            "createsuperuser",
            unbound,
            "--noinput",
            "--username=boss",
            "--email=boss@example.com",
            env={"DJANGO_SUPERUSER_PASSWORD": "s3cret-pass"},
        )
        self.run_ok("shell", unbound, "-c", SHOP)
        self.assertEqual(
            set(tables(self.project)["default"]) >= {"auth_user", "shop_order"}, True
        )
        dump = self.run_ok(
            "dumpdata",
            unbound,
            "--natural-foreign",
            "--natural-primary",
            "--format=xml",
        ).stdout
        for alias in DATABASES:
            (self.project / f"{alias}.sqlite3").unlink()
        self.run_ok("migrate", "--all-databases", "--verbosity=0")
        self.run_ok("loaddata", "--format=xml", "-", input=dump)
        found = tables(self.project)
        self.assertEqual(found["users"]["auth_user"][0], 2)
        self.assertEqual(found["orders"]["shop_order"][0], 1)
        self.assertEqual(found["default"]["django_admin_log"][0], 1)
        check = self.run_ok(
            "shell",
            "-c",
            "from django.contrib.auth.models import User\n"
            "from shop.models import Order\n"
            "ann = User.objects.get(username='ann')\n"
            "print(ann.has_perm('shop.change_order'), "
            "Order.objects.get(customer__username='ann').products.count())",
        )
        self.assertEqual(check.stdout.split()[-2:], ["True", "2"])

    def test_without_the_fallback_entry(self):
        # Without "*", migrate --all-databases copies the admin's and the
        # sessions' tables to users and orders; the admin's log refers to
        # the users, bound to default only.
        (self.project / "shop_site" / "copies.py").write_text(
            "from .settings import *  # noqa: F401, F403\n\n"
            "DATABASE_BINDINGS = {'auth': 'default', 'contenttypes': 'default', "
            "'shop': 'orders'}\n"
        )
        copies = "--settings=shop_site.copies"
        result = self.run_ok("check", copies)
        self.assertIn("(multidb.W001) These apps aren't bound", result.stderr)
        self.assertIn("'admin', 'sessions'", result.stderr)
        self.assertIn('HINT: Add the "*" entry to DATABASE_BINDINGS', result.stderr)
        self.run_ok("migrate", copies, "--all-databases", "--verbosity=0")
        self.assertIn("django_admin_log", tables(self.project)["orders"])
        for alias in DATABASES:
            self.run_ok("flush", copies, f"--database={alias}", "--no-input")
        connection = sqlite3.connect(self.project / "orders.sqlite3")
        try:
            (schema,) = connection.execute(
                "SELECT sql FROM sqlite_master WHERE name = 'django_admin_log'"
            ).fetchone()
        finally:
            connection.close()
        self.assertNotIn("REFERENCES", schema)
