"""
examples/shop served from PostgreSQL with its orders read from a hot
standby (loadtest.py): uvicorn with two workers on a Unix socket, clients
that read the catalog and change prices, the standby two seconds behind. With
ReadYourWritesMiddleware no page after a change is stale; without it, they
are; stopping the standby halfway fails no request.
"""

import os
import re
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
PROJECT = ROOT / "examples" / "shop"


@skipUnless(
    connection.vendor == "postgresql",
    "the example's replicas are standbys of the first PostgreSQL server",
)
class ShopReplicasLoadTests(SimpleTestCase):
    def test_load(self):
        env = {**os.environ, "PYTHONPATH": str(DJANGO_HOME)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        result = subprocess.run(
            # A page read less than --lag seconds after its change is stale
            # without the middleware: few clients, so that a request waits
            # little for the server even on a busy machine (with the default
            # 32 clients and 1 s, a loaded CI's replies came late enough for
            # most pages to be fresh).
            [sys.executable, "loadtest.py", "--requests", "400", "--no-cost"]
            + ["--concurrency", "8", "--lag", "2"],
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        rows = {}
        for line in result.stdout.splitlines():
            found = re.match(r"(\S.*?)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)$", line)
            if found:
                rate, changes, stale, failed = map(int, found.group(2, 3, 4, 5))
                rows[found[1]] = changes, stale, failed
        self.assertEqual(
            list(rows),
            [
                "primary alone",
                "replicas",
                "replicas, writes forgotten",
                "replicas, a standby stopped",
            ],
            output,
        )
        for name, (changes, stale, failed) in rows.items():
            with self.subTest(name):
                self.assertGreater(changes, 10)
                self.assertEqual(failed, 0)
                if name == "replicas, writes forgotten":
                    # The test can fail: these pages are stale.
                    self.assertGreater(stale, changes / 2)
                else:
                    self.assertEqual(stale, 0)
        self.assertTrue(result.stdout.rstrip().endswith("OK"), output)
