"""
Bad input, tried as a hostile user would: every probe gets a clear error and
changes nothing (rows, tables, open transactions, configuration).
"""

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models, router, transaction
from django.db.models import binding
from django.test import SimpleTestCase, TransactionTestCase
from django.test.utils import isolate_apps, override_settings
from django.utils.connection import ConnectionDoesNotExist

from .models import Artist, Ledger, Vehicle, Widget
from .test_transactions import MultiDatabaseTestCase

ALL = ["default", "a", "b", "p", "q"]


def check_ids(**kwargs):
    return [error.id for error in binding.check_database_bindings(**kwargs)]


class MalformedBindingsTests(SimpleTestCase):
    malformed = {
        "a list": (["model_binding"], "must be a dict", "list"),
        "a str": ("model_binding", "must be a dict", "str"),
        "a non-str key": ({5: "a"}, "has the key 5", None),
        "an empty key": ({"": "a"}, "has the key ''", None),
        "a dict value": ({"model_binding": {"a": 1}}, "{'a': 1}", None),
        "an empty value": ({"model_binding": ""}, "to ''", None),
        "a None value": ({"model_binding.Vehicle": None}, "to None", None),
        "a list value": ({"model_binding": ["a"]}, "to ['a']", None),
    }

    def test_each_is_a_check_error_and_a_clear_runtime_error(self):
        for case, (value, text, _) in self.malformed.items():
            with self.subTest(case), override_settings(DATABASE_BINDINGS=value):
                errors = binding.check_database_bindings()
                self.assertEqual([e.id for e in errors], ["multidb.E007"], errors)
                self.assertIn(text, errors[0].msg)
                # The model checks don't crash; E007 says what's wrong.
                self.assertEqual(
                    [e for e in Vehicle.check() if e.id.startswith("multidb")], []
                )
                # Models don't silently route to 'default' by half a setting.
                with self.assertRaisesMessage(ImproperlyConfigured, text):
                    router.db_for_write(Vehicle)
                with self.assertRaisesMessage(ImproperlyConfigured, text):
                    Artist._meta.db_connection
        # Once the setting is back, bindings are whole again.
        self.assertEqual(Artist._meta.db_connection, "a")
        self.assertEqual(Ledger._meta.db_connection, "b")
        self.assertIsNone(Vehicle._meta.db_connection)

    def test_a_good_entry_next_to_a_bad_one_binds_nothing(self):
        value = {"model_binding.Vehicle": "b", "model_binding": None}
        with override_settings(DATABASE_BINDINGS=value):
            with self.assertRaises(ImproperlyConfigured):
                Vehicle._meta.db_connection
            with self.assertRaises(ImproperlyConfigured):
                Vehicle._meta.db_connection
        self.assertIsNone(Vehicle._meta.db_connection)

    @isolate_apps("model_binding")
    def test_empty_meta_db_connection(self):
        class Empty(models.Model):
            class Meta:
                app_label = "model_binding"
                db_connection = ""

        errors = [e for e in Empty.check() if e.id.startswith("multidb")]
        self.assertEqual([e.id for e in errors], ["multidb.E007"])
        self.assertIn("Meta.db_connection is empty", errors[0].msg)

    @isolate_apps("model_binding")
    def test_non_str_meta_db_connection(self):
        for value in [5, b"a", ["a"]]:
            with self.subTest(value=value):
                with self.assertRaisesMessage(TypeError, "must be a database alias"):

                    class Bad(models.Model):
                        class Meta:
                            app_label = "model_binding"
                            db_connection = value

    def test_checks_of_the_real_settings_pass(self):
        errors = checks.run_checks(tags=[checks.Tags.models])
        # The tests keep unbound models on every database on purpose.
        errors = [e for e in errors if e.id != "multidb.W001"]
        self.assertEqual([e for e in errors if e.id.startswith("multidb")], [])
        self.assertEqual(Widget._meta.db_connection, "b")

    def test_unknown_labels_still_e005(self):
        with override_settings(DATABASE_BINDINGS={"nope": "a", 7: "a"}):
            self.assertEqual(check_ids(), ["multidb.E007", "multidb.E005"])


class BadAliasTests(SimpleTestCase):
    def test_aliases_of_internal_attributes(self):
        for alias in ["__class__", "_storage", "__dict__", "settings"]:
            with self.subTest(alias=alias):
                with self.assertRaises(ConnectionDoesNotExist):
                    connections[alias]

    def test_non_str_aliases(self):
        for alias in [None, 5, b"a"]:
            with self.subTest(alias=alias):
                with self.assertRaises(ConnectionDoesNotExist):
                    connections[alias]


class HostileNamesTests(TransactionTestCase):
    available_apps = ["model_binding"]
    databases = set(ALL)

    def test_unicode_and_quotes_in_runtime_aliases(self):
        names = ["tenant-ü", "o'brien", 'dq"x', "semi;colon", "back\\slash"]
        for alias in names:
            with self.subTest(alias=alias):
                connections.add(alias, {"ENGINE": "django.db.backends.sqlite3"})
                try:
                    self.assertIn(alias, connections)
                    self.assertEqual(connections[alias].alias, alias)
                finally:
                    connections.remove(alias)
                self.assertNotIn(alias, connections)
        self.assertEqual(list(connections), ALL)
        # Nothing is left open anywhere.
        for alias in ALL:
            self.assertFalse(connections[alias].in_atomic_block)
        self.assertTrue(transaction.get_autocommit("default"))


class TransactionArgumentTests(MultiDatabaseTestCase):
    def assertNothingOpen(self):
        for alias in ALL:
            self.assertFalse(connections[alias].in_atomic_block, alias)
            self.assertTrue(transaction.get_autocommit(alias), alias)

    def test_empty_list(self):
        msg = "using names no database"
        with self.assertRaisesMessage(ValueError, msg):
            transaction.atomic(using=[])
        with self.assertRaisesMessage(ValueError, msg):
            transaction.on_commit(lambda: None, using=[])
        for function in (transaction.commit, transaction.rollback):
            with self.assertRaisesMessage(ValueError, msg):
                function(using=[])
        self.assertNothingOpen()

    def test_not_databases(self):
        for using in [b"a", 5, [b"a"], ["a", None], [5]]:
            with self.subTest(using=using):
                with self.assertRaisesMessage(TypeError, "using must"):
                    with transaction.atomic(using=using):
                        Widget.objects.create(code="never", weight=1)
                with self.assertRaisesMessage(TypeError, "using must"):
                    transaction.commit(using=using)
        self.assertEqual(Widget.objects.count(), 0)
        self.assertNothingOpen()

    def test_commit_checks_every_database_before_acting(self):
        transaction.set_autocommit(False, using="b")
        Widget.objects.create(code="pending", weight=1)
        msg = "This is forbidden when an 'atomic' block is active."
        with transaction.atomic():
            for function in (transaction.commit, transaction.rollback):
                with self.assertRaisesMessage(
                    transaction.TransactionManagementError, msg
                ):
                    function(using=["b", "default"])
            with self.assertRaisesMessage(transaction.TransactionManagementError, msg):
                transaction.set_autocommit(True, using=["b", "default"])
        # 'b' wasn't committed: rolling it back loses the row.
        transaction.rollback(using="b")
        transaction.set_autocommit(True, using="b")
        self.assertEqual(Widget.objects.count(), 0)
        self.assertNothingOpen()

    def test_savepoint_ids(self):
        with transaction.atomic(using=["a", "b"]):
            sids = transaction.savepoint(["a", "b"])
            Widget.objects.create(code="kept", weight=1)
            with self.assertRaisesMessage(ValueError, "no savepoint id for database"):
                transaction.savepoint_rollback({}, using=["a"])
            with self.assertRaisesMessage(ValueError, "'b'"):
                transaction.savepoint_rollback({"a": sids["a"]}, using=["a", "b"])
            with self.assertRaisesMessage(TypeError, "dict of savepoint ids"):
                transaction.savepoint_commit(sids["a"], using=["a", "b"])
            transaction.savepoint_commit(sids, using=["a", "b"])
        self.assertEqual(Widget.objects.count(), 1)
        self.assertNothingOpen()

    def test_unknown_alias_is_looked_up_on_entry(self):
        block = transaction.atomic(using=["b", "nope"])
        with self.assertRaisesMessage(ConnectionDoesNotExist, "'nope'"):
            with block:
                Widget.objects.create(code="never", weight=1)
        self.assertEqual(Widget.objects.count(), 0)
        self.assertNothingOpen()
