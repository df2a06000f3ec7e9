import doctest
import os

import django
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import ConnectionHandler
from django.test import SimpleTestCase, TestCase, TransactionTestCase
from django.utils.connection import ConnectionDoesNotExist
from django.utils.version import MULTIDB_RELEASE, get_main_version


def run_doctest_file(testcase, name):
    """Run a narrative doctest next to this module, inside testcase."""
    result = doctest.testfile(
        os.path.join(os.path.dirname(__file__), name),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    testcase.assertGreater(result.attempted, 0)
    testcase.assertEqual(result.failed, 0, f"{name}: see the doctest output above")


class NarrativeTests(TestCase):
    databases = "__all__"

    def test_connections(self):
        run_doctest_file(self, "connections.txt")

    def test_binding(self):
        run_doctest_file(self, "binding.txt")


class TransactionNarrativeTests(TransactionTestCase):
    available_apps = ["django.contrib.contenttypes", "model_binding"]
    databases = "__all__"

    def test_transactions(self):
        run_doctest_file(self, "transactions.txt")


class ConnectionDoesNotExistTests(SimpleTestCase):
    msg = (
        "The connection 'missing' doesn't exist. "
        "Configured connections: 'default', 'a', 'b', 'p', 'q'."
    )

    def test_message_lists_configured_aliases(self):
        with self.assertRaisesMessage(ConnectionDoesNotExist, self.msg):
            connections["missing"]

    def test_is_improperly_configured(self):
        self.assertTrue(issubclass(ConnectionDoesNotExist, ImproperlyConfigured))
        with self.assertRaisesMessage(ImproperlyConfigured, self.msg):
            connections["missing"]

    def test_queryset_using_missing_alias(self):
        with self.assertRaisesMessage(ConnectionDoesNotExist, self.msg):
            User.objects.using("missing").count()

    def test_configured_aliases_are_quoted_in_settings_order(self):
        handler = ConnectionHandler(
            {
                "z": {"ENGINE": "django.db.backends.dummy"},
                DEFAULT_DB_ALIAS: {"ENGINE": "django.db.backends.dummy"},
                "o'brien": {"ENGINE": "django.db.backends.dummy"},
            }
        )
        msg = (
            "The connection 'x' doesn't exist. "
            "Configured connections: 'z', 'default', 'o'brien'."
        )
        with self.assertRaisesMessage(ConnectionDoesNotExist, msg):
            handler["x"]

    def test_configured_alias_still_works(self):
        self.assertEqual(connections["b"].alias, "b")


class VersionTests(SimpleTestCase):
    def test_local_version_label(self):
        # A final release: X.Y[.Z] and the label.
        label = "+multidb.%d" % MULTIDB_RELEASE
        self.assertEqual(django.get_version(), get_main_version() + label)
        self.assertEqual(django.get_version(django.VERSION), django.get_version())
        self.assertEqual(django.__version__, django.get_version())
        # Another release's version has no label.
        other = (*django.VERSION[:2], django.VERSION[2] + 1, "final", 0)
        self.assertNotIn("multidb", django.get_version(other))
