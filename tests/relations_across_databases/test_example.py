"""
examples/shop, a project made with startproject: auth and contenttypes on
"users", the shop app on "orders", the admin and sessions on default. Its own
test suite (the admin, permissions through groups, deleting a user) runs as
a user would run it.
"""

import os
import subprocess
import sys
from pathlib import Path

from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "shop"


def manage(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


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
