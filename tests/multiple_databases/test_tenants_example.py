"""
examples/tenants, a database per tenant, served for real: its load test
(loadtest.py) runs uvicorn with two workers on a Unix socket, sends
thousands of concurrent requests to 20 tenants while the tenant command adds
5 and removes 3, then checks every note against the tenants' databases, the
failures, and what the idle server holds open: SQLite files with the SQLite
settings, sessions on the throwaway PostgreSQL server with the PostgreSQL
settings (a database per tenant on the server of 'default').
"""

import os
import subprocess
import sys
from pathlib import Path
from unittest import skipUnless

import django
from django.db import connection
from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parents[2]
# Where the Django under test is (./django, or another tree).
DJANGO_HOME = Path(django.__file__).resolve().parents[1]
PROJECT = ROOT / "examples" / "tenants"


@skipUnless(
    connection.vendor in {"sqlite", "postgresql"},
    "the example runs on SQLite files or on PostgreSQL",
)
class TenantsExampleTests(SimpleTestCase):
    def test_load(self):
        env = {**os.environ, "PYTHONPATH": str(DJANGO_HOME)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        command = [sys.executable, "loadtest.py", "--tenants", "20", "--workers", "2"]
        command.append("--no-rates")
        if connection.vendor == "postgresql":
            # Two sessions per request (the tenant's and the lookup of the
            # tenant on 'default'): stay within the server's connections.
            command += [
                "--db",
                "postgres",
                "--pg-host",
                connection.settings_dict["HOST"],
            ]
            command += ["--requests", "1500", "--concurrency", "30"]
            idle = "sessions the idle server holds on its databases: 0 before, 0 after"
        else:
            command += ["--requests", "2000"]
            idle = "database files the idle server holds open: 0 before, 0 after"
        result = subprocess.run(
            command,
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(idle, result.stdout)
        self.assertTrue(result.stdout.rstrip().endswith("OK"), result.stdout)
