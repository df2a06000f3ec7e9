"""
examples/tenants, a database per tenant, served for real: its load test
(loadtest.py) runs uvicorn on a Unix socket, sends thousands of concurrent
requests to 20 tenants while the tenant command adds 5 and removes 3, then
checks every note against the tenants' SQLite files, the failures, and the
database files the idle server holds open.
"""

import os
import subprocess
import sys
from pathlib import Path
from unittest import skipUnless

from django.db import connection
from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "examples" / "tenants"


# The example keeps its tenants in SQLite files whatever the test databases
# are: it runs with the SQLite settings only, not once more per backend.
@skipUnless(connection.vendor == "sqlite", "the example runs on SQLite files")
class TenantsExampleTests(SimpleTestCase):
    def test_load(self):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        result = subprocess.run(
            [sys.executable, "loadtest.py", "--tenants", "20", "--requests", "2000"],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(
            "database files the idle server holds open: 0 before, 0 after",
            result.stdout,
        )
        self.assertTrue(result.stdout.rstrip().endswith("OK"), result.stdout)
