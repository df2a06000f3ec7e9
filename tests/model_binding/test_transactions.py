"""
django.db.transaction over several databases: every argument form, atomic
blocks spanning databases, on_commit ordering and partial commits. These
tests commit for real, so they are TransactionTestCases.
"""

import threading

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models.binding import override_bindings
from django.db.transaction import PartialCommitError
from django.test import TransactionTestCase, override_settings
from django.utils.connection import ConnectionDoesNotExist

from .models import Artist, Part, Vehicle, Widget

APPS = ["django.contrib.contenttypes", "django.contrib.auth", "model_binding"]
ALL = ["default", "a", "b", "p", "q"]


class MultiDatabaseTestCase(TransactionTestCase):
    available_apps = APPS
    databases = set(ALL)

    def tearDown(self):
        for alias in ALL:
            connection = connections[alias]
            if not connection.get_autocommit():
                connection.rollback()
                connection.set_autocommit(True)
        super().tearDown()

    def names(self):
        return (
            sorted(Artist.objects.values_list("name", flat=True)),
            sorted(Widget.objects.values_list("code", flat=True)),
        )


class ArgumentFormTests(MultiDatabaseTestCase):
    def test_every_form_of_using(self):
        forms = [
            "b",
            connections["b"],
            ["a", "b"],
            ("a", connections["b"]),
            connections,
            ["b", "b", connections["b"]],
        ]
        for using in forms:
            with self.subTest(using=using):
                transaction.set_autocommit(False, using=using)
                Widget.objects.create(code=f"w{len(Widget.objects.all())}", weight=1)
                transaction.commit(using=using)
                transaction.set_autocommit(True, using=using)
        self.assertEqual(Widget.objects.count(), len(forms))

    def test_get_functions_return_a_dict_for_several(self):
        self.assertEqual(
            transaction.get_autocommit(connections), dict.fromkeys(ALL, True)
        )
        self.assertIs(transaction.get_autocommit("a"), True)
        with transaction.atomic(using=["b", "a"]):
            self.assertEqual(
                transaction.get_rollback(["b", "a"]), {"b": False, "a": False}
            )
            sids = transaction.savepoint(["a", "b"])
            self.assertEqual(list(sids), ["a", "b"])
            Artist.objects.create(name="Temp")
            Widget.objects.create(code="temp", weight=1)
            transaction.savepoint_rollback(sids, ["a", "b"])
            transaction.savepoint_commit(sids, ["a", "b"])
            transaction.clean_savepoints(["a", "b"])
        self.assertEqual(self.names(), ([], []))

    def test_commit_and_rollback_only_what_is_named(self):
        transaction.set_autocommit(False, using=connections)
        Artist.objects.create(name="Joan Miro")
        Widget.objects.create(code="lost", weight=1)
        Vehicle.objects.create(make="Fiat", model="500", year=1957)
        transaction.commit("a")
        transaction.rollback(connections)
        transaction.set_autocommit(True, using=connections)
        self.assertEqual(self.names(), (["Joan Miro"], []))
        self.assertEqual(Vehicle.objects.count(), 0)

    def test_unknown_alias_touches_nothing(self):
        transaction.set_autocommit(False, using=["a", "b"])
        Artist.objects.create(name="Pending")
        msg = "The connection 'nope' doesn't exist."
        for function in (transaction.commit, transaction.rollback):
            with self.assertRaisesMessage(ConnectionDoesNotExist, msg):
                function(["a", "nope"])
        # As with Atomic, the aliases are looked up when the block is entered.
        block = transaction.atomic(using=["a", "nope"])
        with self.assertRaisesMessage(ConnectionDoesNotExist, msg):
            with block:
                Artist.objects.create(name="Never")
        with self.assertRaisesMessage(ConnectionDoesNotExist, msg):
            transaction.set_autocommit(True, using=["a", "nope"])
        # Nothing was committed, and autocommit is still off on 'a'.
        self.assertIs(transaction.get_autocommit("a"), False)
        transaction.rollback("a")
        self.assertEqual(self.names(), ([], []))

    def test_save_without_transaction_commits_only_its_database(self):
        transaction.set_autocommit(False, using=["default", "b"])
        Artist.objects.create(name="Committed")
        Widget.objects.create(code="pending", weight=1)
        transaction.rollback(connections)
        self.assertEqual(self.names(), (["Committed"], []))


class MultiAtomicTests(MultiDatabaseTestCase):
    def test_commits_all(self):
        with transaction.atomic(using=["a", "b"]):
            Artist.objects.create(name="Klee")
            Widget.objects.create(code="w1", weight=1)
            self.assertIs(connections["a"].in_atomic_block, True)
            self.assertIs(connections["b"].in_atomic_block, True)
            self.assertIs(connections["default"].in_atomic_block, False)
        self.assertEqual(self.names(), (["Klee"], ["w1"]))

    def test_exception_rolls_back_all(self):
        with self.assertRaisesMessage(ValueError, "boom"):
            with transaction.atomic(using=["a", "b"]):
                Artist.objects.create(name="Klee")
                Widget.objects.create(code="w1", weight=1)
                raise ValueError("boom")
        self.assertEqual(self.names(), ([], []))

    def test_decorator_and_positional_argument(self):
        @transaction.atomic(["a", "b"])
        def transfer(fail):
            Artist.objects.create(name="Klee")
            Widget.objects.create(code="w1", weight=1)
            if fail:
                raise ValueError

        with self.assertRaises(ValueError):
            transfer(True)
        self.assertEqual(self.names(), ([], []))
        transfer(False)
        self.assertEqual(self.names(), (["Klee"], ["w1"]))

    def test_set_rollback_on_one_rolls_back_all(self):
        with transaction.atomic(using=["a", "b"]):
            Artist.objects.create(name="Klee")
            Widget.objects.create(code="w1", weight=1)
            transaction.set_rollback(True, using="b")
        self.assertEqual(self.names(), ([], []))

    def test_multi_inside_single(self):
        with transaction.atomic(using="a"):
            Artist.objects.create(name="Outer")
            with self.assertRaises(ValueError):
                with transaction.atomic(using=["a", "b"]):
                    Artist.objects.create(name="Inner")
                    Widget.objects.create(code="inner", weight=1)
                    raise ValueError
            with transaction.atomic(using=["a", "b"]):
                Widget.objects.create(code="kept", weight=1)
        self.assertEqual(self.names(), (["Outer"], ["kept"]))

    def test_single_inside_multi_and_overlapping_sets(self):
        with transaction.atomic(using=["a", "b"]):
            with self.assertRaises(ValueError):
                with transaction.atomic(using="b"):
                    Widget.objects.create(code="inner", weight=1)
                    raise ValueError
            with transaction.atomic(using=["b", "default"]):
                Widget.objects.create(code="overlap", weight=1)
                Vehicle.objects.create(make="VW", model="Beetle", year=1938)
            Artist.objects.create(name="Klee")
        self.assertEqual(self.names(), (["Klee"], ["overlap"]))
        self.assertEqual(Vehicle.objects.count(), 1)

    def test_nested_failure_rolls_back_outer_when_not_caught(self):
        with self.assertRaises(ValueError):
            with transaction.atomic(using=["a", "b"]):
                Artist.objects.create(name="Outer")
                with transaction.atomic(using=["a", "b"]):
                    Widget.objects.create(code="inner", weight=1)
                    raise ValueError
        self.assertEqual(self.names(), ([], []))

    def test_savepoint_false(self):
        with transaction.atomic(using=["a", "b"]):
            with self.assertRaises(ValueError):
                with transaction.atomic(using=["a", "b"], savepoint=False):
                    Artist.objects.create(name="Doomed")
                    raise ValueError
            # Without a savepoint, the outer block is marked for rollback.
            self.assertEqual(
                transaction.get_rollback(["a", "b"]), {"a": True, "b": True}
            )
        self.assertEqual(self.names(), ([], []))

    def test_durable(self):
        with transaction.atomic(using=["a", "b"], durable=True):
            Artist.objects.create(name="Durable")
        msg = "A durable atomic block cannot be nested within another atomic block."
        with transaction.atomic(using="b"):
            with self.assertRaisesMessage(RuntimeError, msg):
                with transaction.atomic(using=["a", "b"], durable=True):
                    pass
        # The failed enter left 'a' untouched.
        self.assertIs(connections["a"].in_atomic_block, False)
        self.assertEqual(self.names(), (["Durable"], []))

    def test_all_connections(self):
        with transaction.atomic(using=connections):
            for alias in ALL:
                self.assertIs(connections[alias].in_atomic_block, True)
        for alias in ALL:
            self.assertIs(connections[alias].in_atomic_block, False)

    def test_threads_are_isolated(self):
        barrier = threading.Barrier(2, timeout=10)
        errors = []

        def work(name, fail):
            try:
                with transaction.atomic(using=["a", "b"]):
                    Artist.objects.create(name=name)
                    Widget.objects.create(code=name, weight=1)
                    barrier.wait()
                    if fail:
                        raise ValueError
            except ValueError:
                pass
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=work, args=("t1", False)),
            threading.Thread(target=work, args=("t2", True)),
        ]
        if connections["a"].vendor == "sqlite":
            # In-memory SQLite test databases are shared by the threads and
            # lock as a whole: run them one after the other.
            barrier = threading.Barrier(1)
            for thread in threads:
                thread.start()
                thread.join()
        else:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.names(), (["t1"], ["t1"]))


class OnCommitTests(MultiDatabaseTestCase):
    def test_callbacks_run_after_every_database_committed_in_order(self):
        calls = []

        def record(label):
            # Both databases have committed when any callback runs.
            calls.append(
                (
                    label,
                    connections["a"].in_atomic_block,
                    connections["b"].in_atomic_block,
                )
            )

        with transaction.atomic(using=["a", "b"]):
            transaction.on_commit(lambda: record("b1"), using="b")
            transaction.on_commit(lambda: record("a1"), using="a")
            transaction.on_commit(lambda: record("ab"), using=["a", "b"])
            transaction.on_commit(lambda: record("b2"), using="b")
            self.assertEqual(calls, [])
        self.assertEqual(
            calls,
            [
                ("b1", False, False),
                ("a1", False, False),
                ("ab", False, False),
                ("b2", False, False),
            ],
        )

    def test_no_callback_after_rollback(self):
        calls = []
        with self.assertRaises(ValueError):
            with transaction.atomic(using=["a", "b"]):
                transaction.on_commit(lambda: calls.append("a"), using="a")
                transaction.on_commit(lambda: calls.append("ab"), using=["a", "b"])
                raise ValueError
        self.assertEqual(calls, [])

    def test_callback_of_a_rolled_back_savepoint_is_dropped(self):
        calls = []
        with transaction.atomic(using=["a", "b"]):
            transaction.on_commit(lambda: calls.append("kept"), using="a")
            with self.assertRaises(ValueError):
                with transaction.atomic(using="b"):
                    transaction.on_commit(lambda: calls.append("dropped"), using="b")
                    raise ValueError
        self.assertEqual(calls, ["kept"])

    def test_on_commit_several_outside_a_block(self):
        calls = []
        transaction.on_commit(lambda: calls.append("now"), using=["a", "b"])
        self.assertEqual(calls, ["now"])
        with transaction.atomic(using="a"):
            with transaction.atomic(using="b"):
                transaction.on_commit(lambda: calls.append("both"), using=["a", "b"])
            self.assertEqual(calls, ["now"])
        self.assertEqual(calls, ["now", "both"])

    def test_callback_must_be_callable(self):
        with self.assertRaisesMessage(TypeError, "callback must be a callable"):
            transaction.on_commit(None, using=["a", "b"])


class PartialCommitTests(MultiDatabaseTestCase):
    def test_failure_committing_the_second_database(self):
        calls = []
        msg = (
            "Committing database 'b' failed after 'a' committed (%s); 'b' rolled "
            "back. The databases are no longer consistent with each other."
        )
        with self.assertRaises(PartialCommitError) as caught:
            with transaction.atomic(using=["a", "b"]):
                Artist.objects.create(name="Committed")
                # Foreign keys are checked at commit: this one fails then.
                Part.objects.create(widget_id=999)
                transaction.on_commit(lambda: calls.append("ab"), using=["a", "b"])
        error = caught.exception
        self.assertIsInstance(error, DatabaseError)
        self.assertIsInstance(error.__cause__, IntegrityError)
        self.assertEqual(error.committed, ["a"])
        self.assertEqual(error.rolled_back, ["b"])
        self.assertEqual(str(error), msg % error.__cause__)
        self.assertEqual(self.names(), (["Committed"], []))
        self.assertEqual(Part.objects.count(), 0)
        self.assertEqual(calls, [])
        for alias in ALL:
            self.assertIs(connections[alias].in_atomic_block, False)
            self.assertIs(connections[alias].get_autocommit(), True)

    def test_failure_committing_the_first_database_is_not_partial(self):
        with self.assertRaises(IntegrityError):
            with transaction.atomic(using=["b", "a"]):
                Part.objects.create(widget_id=999)
                Artist.objects.create(name="Rolled back")
        self.assertEqual(self.names(), ([], []))


def failing_view(request):
    Artist.objects.create(name="From a view")
    Widget.objects.create(code="view", weight=1)
    raise ValueError("view failed")


class AtomicRequestsTests(MultiDatabaseTestCase):
    def test_several_databases_share_one_block(self):
        from django.core.handlers.base import BaseHandler

        for alias in ("a", "b"):
            connections.settings[alias]["ATOMIC_REQUESTS"] = True
        try:
            view = BaseHandler().make_view_atomic(failing_view)
        finally:
            for alias in ("a", "b"):
                connections.settings[alias]["ATOMIC_REQUESTS"] = False
        with self.assertRaisesMessage(ValueError, "view failed"):
            view(None)
        self.assertEqual(self.names(), ([], []))


class SharedBlockTests(MultiDatabaseTestCase):
    def test_shared_block_across_threads_is_all_or_nothing(self):
        # One decorated function shared by 8 threads: the block must look up
        # its connections in the thread that enters it.
        @transaction.atomic(using=["a", "b"])
        def pair(name, roll_back):
            Artist.objects.create(name=name)
            Widget.objects.create(code=name, weight=1)
            if roll_back:
                transaction.set_rollback(True, using="b")

        errors = []

        def work(index):
            try:
                for step in range(10):
                    pair(f"t{index}-{step}", roll_back=step % 2)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        concurrent = connections["a"].vendor != "sqlite"
        for thread in threads:
            thread.start()
            if not concurrent:
                # In-memory SQLite test databases lock as a whole.
                thread.join()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        artists, widgets = self.names()
        self.assertEqual(artists, widgets)
        expected = sorted(f"t{i}-{step}" for i in range(8) for step in (0, 2, 4, 6, 8))
        self.assertEqual(artists, expected)


class OnCommitWithoutUsingTests(MultiDatabaseTestCase):
    def test_belongs_to_the_innermost_multi_database_block(self):
        calls = []
        with transaction.atomic(using=["a", "b"]):
            Artist.objects.create(name="Joan Miro")
            transaction.on_commit(lambda: calls.append(self.names()))
            self.assertEqual(calls, [])
            Widget.objects.create(code="w", weight=1)
        self.assertEqual(calls, [(["Joan Miro"], ["w"])])

    def test_not_called_when_the_block_rolls_back(self):
        calls = []
        with self.assertRaises(ValueError):
            with transaction.atomic(using=["a", "b"]):
                transaction.on_commit(lambda: calls.append(1))
                raise ValueError
        transaction.on_commit(lambda: calls.append(2))
        self.assertEqual(calls, [2])

    def test_nested_blocks_wait_for_the_outermost(self):
        calls = []
        with transaction.atomic(using=["a", "p"]):
            with transaction.atomic(using=["a", "b"]):
                transaction.on_commit(lambda: calls.append("inner"))
            self.assertEqual(calls, [])
        self.assertEqual(calls, ["inner"])

    def test_default_block_inside_keeps_upstream_behaviour(self):
        calls = []
        with transaction.atomic(using=["a", "b"]):
            with self.assertRaises(ValueError):
                with transaction.atomic():
                    transaction.on_commit(lambda: calls.append("default"))
                    raise ValueError
            transaction.on_commit(lambda: calls.append("block"))
        self.assertEqual(calls, ["block"])

    def test_other_threads_are_not_affected(self):
        calls = []
        with transaction.atomic(using=["a", "b"]):
            thread = threading.Thread(
                target=lambda: transaction.on_commit(lambda: calls.append("thread"))
            )
            thread.start()
            thread.join()
            # Outside any block in its thread: called at once, as upstream.
            self.assertEqual(calls, ["thread"])
        self.assertEqual(calls, ["thread"])


class ModelsNameTheirDatabasesTests(TransactionTestCase):
    """Wherever transaction functions take using, a model class names its database."""

    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def test_atomic_over_the_databases_of_models(self):
        with self.assertRaises(ZeroDivisionError):
            with transaction.atomic(using=[Artist, Widget]):
                Artist.objects.create(name="Klee")
                Widget.objects.create(code="w1", weight=1)
                1 / 0
        self.assertEqual((Artist.objects.count(), Widget.objects.count()), (0, 0))
        with transaction.atomic(using=[Artist, Widget]):
            Artist.objects.create(name="Klee")
            Widget.objects.create(code="w1", weight=1)
        self.assertEqual((Artist.objects.count(), Widget.objects.count()), (1, 1))

    def test_one_model(self):
        with transaction.atomic(using=Artist):
            self.assertIs(connections["a"].in_atomic_block, True)
            self.assertIs(connections["default"].in_atomic_block, False)
            called = []
            transaction.on_commit(lambda: called.append(1), using=Artist)
        self.assertEqual(called, [1])
        self.assertIs(transaction.get_autocommit(using=Vehicle), True)
        self.assertEqual(transaction.get_connection(Widget), connections["b"])

    def test_not_a_model(self):
        msg = (
            "using must name databases: an alias (a str), a connection, a model "
            "class, an iterable of them, or django.db.connections, not <class 'int'>."
        )
        with self.assertRaisesMessage(TypeError, msg):
            transaction.commit(using=int)
        with self.assertRaisesMessage(TypeError, msg):
            with transaction.atomic(using=[Artist, int]):
                pass
        self.assertIs(connections["a"].in_atomic_block, False)


@transaction.atomic
def create_pair(fail):
    """Decorated when the module is imported, before any setting changes."""
    Artist.objects.create(name="Klee")
    Widget.objects.create(code="w1", weight=1)
    if fail:
        raise ZeroDivisionError


class AtomicBoundDatabasesTests(TransactionTestCase):
    """
    ATOMIC_BOUND_DATABASES: atomic() without using, as reusable apps write
    it, covers default and every database that models are bound to.
    """

    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def counts(self):
        return Vehicle.objects.count(), Artist.objects.count(), Widget.objects.count()

    def write_and_fail(self):
        with self.assertRaises(ZeroDivisionError):
            with transaction.atomic():
                Vehicle.objects.create(make="Fiat", model="500", year=1957)
                Artist.objects.create(name="Klee")
                Widget.objects.create(code="w1", weight=1)
                1 / 0

    def test_off_by_default(self):
        # Upstream's behavior: the block is on default only, so the bound
        # models' rows were committed on their own.
        self.write_and_fail()
        self.assertEqual(self.counts(), (0, 1, 1))

    @override_settings(ATOMIC_BOUND_DATABASES=True)
    def test_block_covers_bound_databases(self):
        self.write_and_fail()
        self.assertEqual(self.counts(), (0, 0, 0))
        for alias in self.databases:
            self.assertIs(connections[alias].in_atomic_block, False, alias)
        with transaction.atomic():
            for alias in ["default", "a", "b"]:
                self.assertIs(connections[alias].in_atomic_block, True, alias)
            Artist.objects.create(name="Klee")
        self.assertEqual(self.counts(), (0, 1, 0))
        # A database named explicitly is that database alone.
        with transaction.atomic(using="default"):
            self.assertIs(connections["a"].in_atomic_block, False)

    @override_settings(ATOMIC_BOUND_DATABASES=True)
    def test_bare_decorator(self):
        with self.assertRaises(ZeroDivisionError):
            create_pair(fail=True)
        self.assertEqual(self.counts(), (0, 0, 0))
        create_pair(fail=False)
        self.assertEqual(self.counts(), (0, 1, 1))

    @override_settings(ATOMIC_BOUND_DATABASES=True)
    def test_nested_blocks_and_set_rollback(self):
        with transaction.atomic():
            Artist.objects.create(name="Kept")
            with self.assertRaises(ZeroDivisionError):
                with transaction.atomic():
                    Widget.objects.create(code="gone", weight=1)
                    Artist.objects.create(name="Gone")
                    1 / 0
            Widget.objects.create(code="kept", weight=1)
        self.assertEqual(self.names(), (["Kept"], ["kept"]))
        with transaction.atomic():
            Widget.objects.create(code="w2", weight=2)
            transaction.set_rollback(True)
        self.assertEqual(self.names(), (["Kept"], ["kept"]))

    def names(self):
        return (
            sorted(Artist.objects.values_list("name", flat=True)),
            sorted(Widget.objects.values_list("code", flat=True)),
        )

    @override_settings(ATOMIC_BOUND_DATABASES=True)
    def test_on_commit_waits_for_every_database(self):
        called = []
        with transaction.atomic():
            Widget.objects.create(code="w1", weight=1)
            transaction.on_commit(lambda: called.append(Widget.objects.count()))
            self.assertEqual(called, [])
        self.assertEqual(called, [1])
        with self.assertRaises(ZeroDivisionError):
            with transaction.atomic():
                transaction.on_commit(lambda: called.append("rolled back"))
                1 / 0
        self.assertEqual(called, [1])

    @override_settings(ATOMIC_BOUND_DATABASES=True, DATABASE_BINDINGS={})
    def test_without_bindings(self):
        # Meta.db_connection still binds Artist and Widget; with every
        # binding gone, the block is upstream's, on default.
        with override_bindings({"model_binding": "default"}):
            with transaction.atomic():
                self.assertIs(connections["default"].in_atomic_block, True)
                self.assertIs(connections["a"].in_atomic_block, False)
