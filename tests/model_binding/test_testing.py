"""
The test framework follows the bindings: a test case that doesn't declare
its databases may use default and every database a model is bound to, and
assertNumQueries() without a database counts the queries of all of them.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import TestCase
from django.test.testcases import DatabaseOperationForbidden

from .models import Artist, Vehicle, Widget

TESTS = Path(__file__).resolve().parents[1]

# Models of the fork's test apps are bound to these (Ledger by the setting).
BOUND = {"a", "b", "p", "q"}


class UndeclaredDatabasesTests(TestCase):
    def test_bound_databases_are_allowed(self):
        self.assertEqual(set(self.databases), {"default", *BOUND})
        Artist.objects.create(name="Klee")
        Widget.objects.create(code="w1", weight=1)
        Vehicle.objects.create(make="Fiat", model="500", year=1957)
        self.assertEqual((Artist.objects.count(), Widget.objects.count()), (1, 1))

    def test_assert_num_queries_counts_every_database(self):
        with self.assertNumQueries(3):
            Artist.objects.count()
            Widget.objects.count()
            Vehicle.objects.count()
        with self.assertNumQueries(1, using="a"):
            Artist.objects.count()
            Vehicle.objects.count()

    def test_assert_num_queries_names_the_database_of_each_query(self):
        with self.assertRaises(AssertionError) as cm:
            with self.assertNumQueries(1):
                Artist.objects.count()
                Widget.objects.count()
        message = str(cm.exception)
        self.assertIn("2 queries executed, 1 expected", message)
        self.assertIn("1. [a] SELECT COUNT(*)", message)
        self.assertIn("2. [b] SELECT COUNT(*)", message)

    def test_assert_num_queries_captures_queries_in_order(self):
        # As upstream's context does, for tests that read the SQL.
        with self.assertNumQueries(3) as captured:
            Widget.objects.count()
            Artist.objects.exists()
            Widget.objects.exists()
        self.assertEqual(len(captured), 3)
        self.assertIn("COUNT(*)", captured[0]["sql"])
        self.assertIn('"model_binding_artist"', captured[1]["sql"])
        self.assertIn('"model_binding_widget"', captured.captured_queries[2]["sql"])
        self.assertEqual(
            [query["sql"] for query in captured],
            [query["sql"] for query in captured.captured_queries],
        )


class DeclaredDatabasesTests(TestCase):
    databases = {"default"}

    def test_declared_databases_mean_exactly_that(self):
        self.assertEqual(set(self.databases), {"default"})
        msg = "Database queries to 'a' are not allowed in this test."
        with self.assertRaisesMessage(DatabaseOperationForbidden, msg):
            Artist.objects.count()

    def test_assert_num_queries_counts_default(self):
        with self.assertNumQueries(1):
            Vehicle.objects.count()


@pytest.mark.django_db
def test_django_db_marker_allows_bound_databases():
    Artist.objects.create(name="Miro")
    assert Artist.objects.count() == 1


def test_django_db_marker_sets_up_bound_databases_alone():
    # Run alone, the marked test is the only one pytest-django sets up
    # databases for: it asks for default, and the bound ones come along.
    env = {**os.environ}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            # SQLite in memory: a second session on this run's PostgreSQL
            # servers would recreate and then drop the same test databases.
            "--ds=settings_sqlite",
            f"{__file__}::test_django_db_marker_allows_bound_databases",
        ],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
