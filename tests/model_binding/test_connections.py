"""
connections.add() and remove() while the process runs: validation, open
transactions, other threads, and races with readers of the settings.
"""

import os
import sqlite3
import tempfile
import threading
from unittest import mock

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.transaction import TransactionManagementError
from django.db.utils import ConnectionHandler
from django.test import SimpleTestCase, TransactionTestCase
from django.utils.connection import ConnectionDoesNotExist

from .models import Artist, Widget

SQLITE = "django.db.backends.sqlite3"


def sqlite_file(directory, name, rows):
    """Create an SQLite database file with a table t holding rows."""
    path = os.path.join(directory, name)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (v TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [(row,) for row in rows])
    return path


def read_t(alias):
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT v FROM t ORDER BY v")
        return [row[0] for row in cursor.fetchall()]


class AddValidationTests(SimpleTestCase):
    def assertNothingAdded(self, before):
        self.assertEqual(list(connections), before)
        # The handler still works for every configured alias.
        self.assertEqual([c.alias for c in connections.all()], before)
        connections.close_all()

    def test_alias_must_be_a_non_empty_str(self):
        before = list(connections)
        for alias in [None, 5, ("t",), b"t", ""]:
            with self.subTest(alias=alias):
                msg = f"A database alias must be a non-empty string, not {alias!r}."
                with self.assertRaisesMessage(TypeError, msg):
                    connections.add(alias, {"ENGINE": SQLITE})
                self.assertNothingAdded(before)

    def test_reserved_aliases(self):
        before = list(connections)
        for alias in ["__class__", "_storage", "_data"]:
            with self.subTest(alias=alias):
                msg = f"The database alias '{alias}' is reserved"
                with self.assertRaisesMessage(ValueError, msg):
                    connections.add(alias, {"ENGINE": SQLITE})
                self.assertNothingAdded(before)
                with self.assertRaises(ConnectionDoesNotExist):
                    connections[alias]

    def test_settings_must_be_a_dict(self):
        before = list(connections)
        msg = "The settings of database 't' must be a dict like an entry of "
        for value in [None, "sqlite", [("ENGINE", SQLITE)]]:
            with self.subTest(value=value):
                with self.assertRaisesMessage(TypeError, msg):
                    connections.add("t", value)
                self.assertNothingAdded(before)

    def test_engine_must_be_importable(self):
        before = list(connections)
        with self.assertRaisesMessage(ImproperlyConfigured, "isn't an available"):
            connections.add("t", {"ENGINE": "no.such.backend"})
        self.assertNothingAdded(before)
        # The alias is free: a correct add() works, and so does remove().
        connections.add("t", {"ENGINE": SQLITE, "NAME": ":memory:"})
        try:
            self.assertEqual(connections["t"].vendor, "sqlite")
        finally:
            connections.remove("t")
        self.assertNothingAdded(before)

    def test_existing_alias(self):
        with self.assertRaisesMessage(ValueError, "The connection 'a' already exists."):
            connections.add("a", {"ENGINE": SQLITE})
        self.assertIs(connections.settings["a"], connections["a"].settings_dict)

    def test_remove_unknown_or_default(self):
        msg = "The connection 'missing' doesn't exist. Configured connections: "
        with self.assertRaisesMessage(ConnectionDoesNotExist, msg):
            connections.remove("missing")
        with self.assertRaisesMessage(ValueError, "can't be removed"):
            connections.remove(DEFAULT_DB_ALIAS)

    def test_remove_an_alias_whose_backend_fails_to_load(self):
        # remove() doesn't open a connection only to close it.
        handler = ConnectionHandler(
            {
                DEFAULT_DB_ALIAS: {"ENGINE": "django.db.backends.dummy"},
                "bad": {"ENGINE": "no.such.backend"},
            }
        )
        handler.remove("bad")
        self.assertEqual(list(handler), [DEFAULT_DB_ALIAS])

    def test_settings_are_replaced_not_changed(self):
        # Readers iterating over the settings never see them change size.
        before = connections.settings
        connections.add("t", {"ENGINE": SQLITE, "NAME": ":memory:"})
        try:
            self.assertNotIn("t", before)
            self.assertIn("t", connections.settings)
        finally:
            connections.remove("t")
        self.assertNotIn("t", connections.settings)

    def test_add_races_readers(self):
        # A thread closing every connection in a loop while aliases come and
        # go used to fail with "dictionary changed size during iteration".
        errors = []
        stop = threading.Event()

        def reader():
            try:
                while not stop.is_set():
                    connections.close_all()
                    list(connections.settings.items())
            except Exception as exc:  # pragma: no cover - the failure case
                errors.append(exc)

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for index in range(2000):
                connections.add(f"race{index}", {"ENGINE": SQLITE})
                if index % 2:
                    connections.remove(f"race{index}")
        finally:
            stop.set()
            thread.join()
            for index in range(0, 2000, 2):
                connections.remove(f"race{index}")
        self.assertEqual(errors, [])
        self.assertFalse(any(alias.startswith("race") for alias in connections))


class RemoveTests(TransactionTestCase):
    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        # The test framework lets a test use the databases it declares.
        allowed = mock.patch.object(type(self), "databases", {*self.databases, "t"})
        allowed.start()
        self.addCleanup(allowed.stop)
        self.addCleanup(self.remove_t)

    def remove_t(self):
        if "t" in connections.settings:
            connections["t"].close()
            connections.remove("t")

    def test_remove_inside_a_multi_database_block_is_refused(self):
        connections.add(
            "t", {"ENGINE": SQLITE, "NAME": sqlite_file(self.directory.name, "t", [])}
        )
        msg = "The connection 't' can't be removed while a transaction is open on it"
        with transaction.atomic(using=["b", "t"]):
            Widget.objects.create(code="w", weight=1)
            with self.assertRaisesMessage(TransactionManagementError, msg):
                connections.remove("t")
            # Still configured and usable inside the block.
            self.assertEqual(read_t("t"), [])
        # The block committed normally: both databases left their transaction.
        self.assertFalse(connections["b"].in_atomic_block)
        self.assertFalse(connections["t"].in_atomic_block)
        self.assertEqual(Widget.objects.count(), 1)
        connections.remove("t")
        self.assertNotIn("t", connections)

    def test_remove_with_autocommit_off_is_refused(self):
        connections.add("t", {"ENGINE": SQLITE, "NAME": ":memory:"})
        transaction.set_autocommit(False, using="t")
        with self.assertRaisesMessage(TransactionManagementError, "can't be removed"):
            connections.remove("t")
        transaction.rollback(using="t")
        transaction.set_autocommit(True, using="t")
        connections.remove("t")
        self.assertNotIn("t", connections)

    def test_inside_a_single_block_too(self):
        with transaction.atomic(using="a"):
            Artist.objects.create(name="Paul Klee")
            with self.assertRaisesMessage(TransactionManagementError, "'a'"):
                connections.remove("a")
        self.assertEqual(Artist.objects.count(), 1)
        self.assertIn("a", connections)

    def test_other_threads_see_new_settings(self):
        first = sqlite_file(self.directory.name, "first", ["old"])
        second = sqlite_file(self.directory.name, "second", ["new"])
        connections.add("t", {"ENGINE": SQLITE, "NAME": first})
        seen = []
        step = threading.Event()
        done = threading.Event()

        def worker():
            try:
                seen.append(read_t("t"))
                step.set()
                done.wait(10)
                seen.append(read_t("t"))
            finally:
                connections.close_all()

        thread = threading.Thread(target=worker)
        thread.start()
        step.wait(10)
        connections.remove("t")
        connections.add("t", {"ENGINE": SQLITE, "NAME": second})
        done.set()
        thread.join()
        self.assertEqual(seen, [["old"], ["new"]])
        self.assertEqual(read_t("t"), ["new"])

    def remove_while_connected(self, then):
        """
        Remove 't' while another thread is connected to it, then call
        then(connection) in that thread and return what it returns.
        """
        ready = threading.Event()
        removed = threading.Event()
        result = []

        def worker():
            connection = connections["t"]
            connection.ensure_connection()
            ready.set()
            removed.wait(10)
            try:
                result.append(then(connection))
            finally:
                connections.close_all()

        thread = threading.Thread(target=worker)
        thread.start()
        ready.wait(10)
        connections.remove("t")
        removed.set()
        thread.join()
        return result[0]

    def test_removed_alias_raises_in_other_threads(self):
        connections.add("t", {"ENGINE": SQLITE, "NAME": ":memory:"})

        def use_again(connection):
            try:
                connections["t"]
            except ConnectionDoesNotExist as exc:
                return str(exc)

        message = self.remove_while_connected(use_again)
        self.assertIn("The connection 't' doesn't exist.", message)

    def test_other_threads_close_their_connection_to_a_removed_alias(self):
        # A database file: SQLite keeps in-memory databases open.
        name = sqlite_file(self.directory.name, "t", [])
        connections.add("t", {"ENGINE": SQLITE, "NAME": name})

        def end_request(connection):
            connections.close_all()
            return connection.connection, hasattr(connections._connections, "t")

        self.assertEqual(self.remove_while_connected(end_request), (None, False))
