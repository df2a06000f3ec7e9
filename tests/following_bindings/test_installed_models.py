"""
Tables for unmanaged models during tests: TestCase.installed_models (for the
test case) and django.test.utils.installed_models (a decorator and context
manager), on the databases the models are bound to.

The test cases that use them run inside these tests, with unittest, so that
what they leave behind can be checked once they're done.
"""

import unittest

from django.db import connections, models
from django.test import TestCase, TransactionTestCase, override_settings
from django.test.utils import installed_models, isolate_apps
from relations_across_databases.models import Author, Book, Country
from relations_across_databases.tests import SPLIT

DATABASES = {"default", "a", "b"}


def tables(alias):
    return set(connections[alias].introspection.table_names())


def run(case):
    """Run a test case class; return the result."""
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(case).run(result)
    return result


@override_settings(DATABASE_BINDINGS=SPLIT)
class InstalledModelsTests(TransactionTestCase):
    available_apps = ["relations_across_databases"]
    databases = DATABASES

    def assertPassed(self, result, tests):
        problems = [text for _, text in result.errors + result.failures]
        self.assertEqual(problems, [])
        self.assertEqual(result.testsRun, tests)

    def assertNoTables(self):
        self.assertNotIn(Author._meta.db_table, tables("a"))
        self.assertNotIn(Book._meta.db_table, tables("b"))
        self.assertNotIn(Country._meta.db_table, tables("b"))

    def test_test_case_attribute(self):
        class Case(TestCase):
            databases = DATABASES
            installed_models = [Country, Author, Book]

            @classmethod
            def setUpTestData(cls):
                cls.peru = Country.objects.create(name="Peru")
                cls.ann = Author.objects.create(name="Ann", country=cls.peru)

            def test_tables_on_their_databases(self):
                self.assertIn(Author._meta.db_table, tables("a"))
                self.assertIn(Country._meta.db_table, tables("b"))
                self.assertNotIn(Author._meta.db_table, tables("default"))
                Book.objects.create(title="T", pages=1, author=self.ann)
                self.assertEqual(self.peru.authors.get().books.count(), 1)

            def test_rolled_back_between_tests(self):
                self.assertEqual(Book.objects.count(), 0)
                Book.objects.create(title="U", pages=1, author=self.ann)

        self.assertPassed(run(Case), 2)
        self.assertNoTables()

    def test_transaction_test_case_attribute(self):
        # Flush leaves unmanaged tables alone: the tables are made for each
        # test, so no row leaks into the next one.
        class Case(TransactionTestCase):
            available_apps = ["relations_across_databases"]
            databases = DATABASES
            installed_models = [Country, Author]

            def test_one(self):
                self.assertEqual(Author.objects.count(), 0)
                Author.objects.create(name="Ann", country=None)

            def test_two(self):
                self.assertEqual(Author.objects.count(), 0)
                Author.objects.create(name="Bob", country=None)

        self.assertPassed(run(Case), 2)
        self.assertNoTables()

    def test_decorator_and_context_manager(self):
        @installed_models(Country, Author)
        class Case(TestCase):
            databases = DATABASES

            def test_class_decorator(self):
                Author.objects.create(name="Ann", country=None)
                self.assertEqual(Author.objects.count(), 1)

            @installed_models(Book)
            def test_method_decorator(self):
                ann = Author.objects.create(name="Ann", country=None)
                Book.objects.create(title="T", pages=1, author=ann)
                self.assertEqual(ann.books.count(), 1)

        self.assertPassed(run(Case), 2)
        self.assertNoTables()
        with installed_models(Country):
            Country.objects.create(name="Chad")
            self.assertEqual(Country.objects.using("b").count(), 1)
        self.assertNoTables()

    def test_tables_dropped_when_the_test_fails(self):
        class Case(TestCase):
            databases = DATABASES
            installed_models = [Country]

            def test_fails(self):
                Country.objects.create(name="Chad")
                self.fail("on purpose")

        result = run(Case)
        self.assertEqual(len(result.failures), 1)
        self.assertNoTables()

    @isolate_apps("relations_across_databases")
    def test_model_built_in_a_test(self):
        class Gadget(models.Model):
            name = models.CharField(max_length=10)

            class Meta:
                app_label = "relations_across_databases"
                db_connection = "a"

        with installed_models(Gadget):
            Gadget.objects.create(name="g")
            self.assertIn(Gadget._meta.db_table, tables("a"))
            self.assertEqual(Gadget.objects.get().name, "g")
        self.assertNotIn(Gadget._meta.db_table, tables("a"))

    def test_unknown_database_changes_nothing(self):
        @isolate_apps("relations_across_databases")
        def build():
            class Stray(models.Model):
                class Meta:
                    app_label = "relations_across_databases"
                    db_connection = "nowhere"

            return Stray

        Stray = build()
        with self.assertRaisesMessage(Exception, "nowhere"):
            with installed_models(Country, Stray):
                pass
        self.assertNoTables()
