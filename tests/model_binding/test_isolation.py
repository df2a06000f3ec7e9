"""
A database per tenant keeps tenants apart however code runs: tasks that
outlive an override, generators and streams, instances loaded under another
tenant's bindings, and databases removed while other threads use them.
"""

import asyncio
import os
import tempfile
import threading
from unittest import mock

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import binding_state, connections, transaction
from django.db.backends.signals import connection_created
from django.db.models.binding import override_bindings
from django.db.models.tenancy import add_database, remove_database
from django.db.transaction import TransactionManagementError
from django.test import SimpleTestCase, TestCase, TransactionTestCase
from django.utils.connection import ConnectionDoesNotExist

from .models import Album, Artist, Genre, Vehicle
from .test_connections import read_t

SQLITE = "django.db.backends.sqlite3"
VEHICLE_ON_A = {"model_binding.Vehicle": "a"}
VEHICLE_ON_B = {"model_binding.Vehicle": "b"}


def where_rows(alias, column, model):
    """The values of column of model's table on alias, read without routing."""
    qn = connections[alias].ops.quote_name
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(column)} FROM {qn(model._meta.db_table)} "
            f"ORDER BY {qn(model._meta.pk.column)}"
        )
        return cursor.fetchall()


def makes(alias):
    """The makes of the vehicles on alias, read without routing."""
    return sorted(make for (make,) in where_rows(alias, "make", Vehicle))


class TasksKeepTheirOverrideTests(TransactionTestCase):
    """
    A task created inside an override writes where the override says, even
    when it runs after the block has ended, whatever other tasks do then.
    """

    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def run_late_task(self, other_override):
        async def main():
            with override_bindings(VEHICLE_ON_A):

                async def late():
                    # Let the block end (and another tenant's begin) first.
                    await ended.wait()
                    await Vehicle.objects.acreate(make="late", model="x", year=1)
                    return Vehicle._meta.db_connection

                task = asyncio.create_task(late())
            ended = asyncio.Event()

            async def other_tenant():
                with override_bindings(VEHICLE_ON_B):
                    ended.set()
                    await task

            if other_override:
                await other_tenant()
            else:
                ended.set()
            return await task

        return asyncio.run(main())

    def test_alone(self):
        self.assertEqual(self.run_late_task(other_override=False), "a")
        self.assertEqual(makes("a"), ["late"])
        self.assertEqual(makes("default") + makes("b"), [])

    def test_while_another_tenant_is_served(self):
        self.assertEqual(self.run_late_task(other_override=True), "a")
        self.assertEqual(makes("a"), ["late"])
        self.assertEqual(makes("default") + makes("b"), [])
        # Nothing leaked into what the process caches without an override.
        self.assertIsNone(Vehicle._meta.db_connection)
        self.assertIsNone(binding_state.resolved[Vehicle._meta])


class SharedOverrideTests(TransactionTestCase):
    """One override_bindings() serves many contexts at once."""

    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def test_instance_entered_by_overlapping_threads(self):
        shared = override_bindings(VEHICLE_ON_A)
        both_inside = threading.Barrier(2)
        first_left = threading.Event()
        seen = {}

        def first():
            with shared:
                both_inside.wait(5)
            first_left.set()
            seen["first"] = Vehicle._meta.db_connection

        def second():
            with shared:
                both_inside.wait(5)
                first_left.wait(5)
                seen["second inside"] = Vehicle._meta.db_connection
            seen["second"] = Vehicle._meta.db_connection

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(seen, {"first": None, "second inside": "a", "second": None})

    def test_nested_same_instance(self):
        shared = override_bindings(VEHICLE_ON_A)
        with override_bindings(VEHICLE_ON_B):
            with shared:
                with shared:
                    self.assertEqual(Vehicle._meta.db_connection, "a")
                self.assertEqual(Vehicle._meta.db_connection, "a")
            self.assertEqual(Vehicle._meta.db_connection, "b")
        self.assertIsNone(Vehicle._meta.db_connection)

    def test_async_callables_that_arent_async_def(self):
        def count():
            try:
                return Vehicle.objects.count(), Vehicle._meta.db_connection
            finally:
                # This thread's session, as the end of a request closes it.
                connections.close_all()

        class View:
            async def __call__(self):
                return await sync_to_async(count)()

        marked = View()
        markcoroutinefunction(marked)
        Vehicle.objects.using("a").create(make="a-car", model="x", year=1)
        for function in [sync_to_async(count), marked]:
            with self.subTest(function=function):
                decorated = override_bindings(VEHICLE_ON_A)(function)
                self.assertEqual(asyncio.run(decorated()), (1, "a"))


class GeneratorTests(TestCase):
    """override_bindings() as a decorator holds for each step of a generator."""

    databases = {"default", "a", "b"}

    def test_generator_iterated_later(self):
        log = []

        @override_bindings(VEHICLE_ON_B)
        def generator():
            try:
                for step in range(3):
                    sent = yield step, Vehicle._meta.db_connection
                    log.append(("sent", sent, Vehicle._meta.db_connection))
                return "done"
            finally:
                log.append(("finally", Vehicle._meta.db_connection))

        self.assertEqual(list(generator()), [(0, "b"), (1, "b"), (2, "b")])
        self.assertEqual(log[-1], ("finally", "b"))
        # send(), the return value, and the caller's bindings in between.
        log.clear()
        gen = generator()
        self.assertEqual(next(gen), (0, "b"))
        self.assertIsNone(Vehicle._meta.db_connection)
        self.assertEqual(gen.send("x"), (1, "b"))
        self.assertEqual(log, [("sent", "x", "b")])
        with override_bindings(VEHICLE_ON_A):
            self.assertEqual(gen.send("y"), (2, "b"))
            self.assertEqual(Vehicle._meta.db_connection, "a")
        with self.assertRaises(StopIteration) as stop:
            gen.send("z")
        self.assertEqual(stop.exception.value, "done")
        self.assertIsNone(Vehicle._meta.db_connection)

    def test_generator_closed_or_thrown_into(self):
        seen = []

        @override_bindings(VEHICLE_ON_B)
        def generator():
            try:
                yield 1
            except KeyError:
                seen.append(("caught", Vehicle._meta.db_connection))
                yield 2
            finally:
                seen.append(("finally", Vehicle._meta.db_connection))

        gen = generator()
        next(gen)
        self.assertEqual(gen.throw(KeyError("k")), 2)
        gen.close()
        self.assertEqual(seen, [("caught", "b"), ("finally", "b")])
        gen = generator()
        next(gen)
        with self.assertRaises(ValueError):
            gen.throw(ValueError("not caught"))
        self.assertIsNone(Vehicle._meta.db_connection)

    def test_generator_queries(self):
        Vehicle.objects.using("b").create(make="b-car", model="x", year=1)
        Vehicle.objects.using("default").create(make="default-car", model="x", year=1)

        @override_bindings(VEHICLE_ON_B)
        def cars():
            for vehicle in Vehicle.objects.all():
                yield vehicle.make

        self.assertEqual(list(cars()), ["b-car"])

    def test_override_held_across_yields_inside(self):
        @override_bindings(VEHICLE_ON_A)
        def generator():
            yield Vehicle._meta.db_connection
            with override_bindings(VEHICLE_ON_B):
                yield Vehicle._meta.db_connection
                yield Vehicle._meta.db_connection
            yield Vehicle._meta.db_connection

        seen = []
        for value in generator():
            seen.append((value, Vehicle._meta.db_connection))
        self.assertEqual(seen, [("a", None), ("b", None), ("b", None), ("a", None)])

    def test_generator_outliving_its_database(self):
        # Its steps fail rather than leave the override, and so does its
        # cleanup.
        Vehicle.objects.using("default").create(make="default-car", model="x", year=1)
        connections.add("gone", {"ENGINE": SQLITE, "NAME": ":memory:"})
        self.addCleanup(
            lambda: "gone" in connections.settings and connections.remove("gone")
        )
        seen = []

        @override_bindings({"model_binding.Vehicle": "gone"})
        def generator():
            try:
                yield Vehicle._meta.db_connection
                seen.append(list(Vehicle.objects.values_list("make", flat=True)))
            finally:
                seen.append(list(Vehicle.objects.values_list("make", flat=True)))

        for finish in (next, lambda gen: gen.close()):
            with self.subTest(finish=finish):
                gen = generator()
                self.assertEqual(next(gen), "gone")
                connections.remove("gone")
                with self.assertRaises(ConnectionDoesNotExist):
                    finish(gen)
                self.assertEqual(seen, [])
                connections.add("gone", {"ENGINE": SQLITE, "NAME": ":memory:"})

    def test_async_generator(self):
        seen = []

        @override_bindings(VEHICLE_ON_B)
        async def generator():
            try:
                for step in range(2):
                    await asyncio.sleep(0)
                    sent = yield step, Vehicle._meta.db_connection
                    seen.append(sent)
            finally:
                seen.append(("finally", Vehicle._meta.db_connection))

        async def main():
            items = [item async for item in generator()]
            gen = generator()
            first = await gen.asend(None)
            between = Vehicle._meta.db_connection
            await gen.aclose()
            return items, first, between

        items, first, between = asyncio.run(main())
        self.assertEqual(items, [(0, "b"), (1, "b")])
        self.assertEqual(first, (0, "b"))
        self.assertIsNone(between)
        self.assertEqual(seen, [None, None, ("finally", "b"), ("finally", "b")])


class InstancesStayWithTheirDatabaseTests(TestCase):
    """
    An instance loaded under one tenant's bindings is never saved, deleted,
    refreshed or related to under another's.
    """

    databases = {"default", "a", "b"}
    TENANT_B = {"model_binding": "b"}

    def setUp(self):
        with override_bindings(self.TENANT_B):
            Artist.objects.install()
            Album.objects.install()
            Genre.objects.install()
        self.a_artist = Artist.objects.create(name="a's artist")
        self.a_album = Album.objects.create(artist=self.a_artist, title="a's album")
        with override_bindings(self.TENANT_B):
            self.b_artist = Artist.objects.create(pk=self.a_artist.pk, name="b's")
            self.b_album = Album.objects.create(
                pk=self.a_album.pk, artist=self.b_artist, title="b's album"
            )

    def names(self, alias):
        """The artists' names on alias, read without routing."""
        return [name for (name,) in where_rows(alias, "name", Artist)]

    def assertUnchanged(self):
        self.assertEqual(self.names("a"), ["a's artist"])
        self.assertEqual(self.names("b"), ["b's"])
        with override_bindings(self.TENANT_B):
            self.assertEqual(
                list(Album.objects.values_list("title", "artist")),
                [("b's album", self.b_artist.pk)],
            )
        self.assertEqual(
            list(Album.objects.values_list("title", "artist")),
            [("a's album", self.a_artist.pk)],
        )

    def test_save_delete_refresh(self):
        self.a_artist.name = "overwritten"
        msg = (
            "Cannot save <Artist: overwritten>: it was loaded from the database "
            "'a', but model_binding.Artist is bound to 'b' now"
        )
        with override_bindings(self.TENANT_B):
            with self.assertRaisesMessage(ValueError, msg):
                self.a_artist.save()
            with self.assertRaisesMessage(ValueError, "Cannot save"):
                self.a_artist.save(using="b")
            with self.assertRaisesMessage(ValueError, "Cannot save"):
                self.a_artist.save(update_fields=["name"])
            with self.assertRaisesMessage(ValueError, "Cannot delete"):
                self.a_artist.delete()
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                self.a_artist.refresh_from_db()
        self.assertUnchanged()
        self.assertEqual(self.a_artist._state.db, "a")
        # Back under its own bindings, it works as usual.
        self.a_artist.refresh_from_db()
        self.assertEqual(self.a_artist.name, "a's artist")

    def test_async_save(self):
        self.a_artist.name = "overwritten"

        async def save():
            with override_bindings(self.TENANT_B):
                await self.a_artist.asave()

        with self.assertRaisesMessage(ValueError, "Cannot save"):
            asyncio.run(save())
        self.assertUnchanged()

    def test_related_managers_and_descriptors(self):
        with override_bindings(self.TENANT_B):
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                list(self.a_artist.albums.all())
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                self.a_artist.albums.create(title="foreign")
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                self.a_artist.albums.add(self.b_album)
            self.a_album._state.fields_cache.clear()
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                self.a_album.artist
            genre = Genre.objects.create(name="b's genre")
            # Refused by upstream's own check of the value's database, which
            # breaks the transaction it runs in.
            with self.assertRaisesMessage(ValueError, 'value is on database "a"'):
                with transaction.atomic(using="b"):
                    genre.albums.add(self.a_album)
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                self.a_album.genres.add(genre)
            self.assertEqual(list(genre.albums.all()), [])
        self.assertUnchanged()

    def test_bulk_update_and_refresh_from_a_queryset(self):
        self.a_artist.name = "overwritten"
        with override_bindings(self.TENANT_B):
            with self.assertRaisesMessage(ValueError, "Cannot update <Artist"):
                Artist.objects.bulk_update([self.a_artist], ["name"])
            with self.assertRaisesMessage(ValueError, "Cannot refresh <Artist"):
                self.a_artist.refresh_from_db(
                    from_queryset=Artist.objects.select_for_update()
                )
        self.assertEqual(self.a_artist._state.db, "a")
        self.assertUnchanged()

    def test_new_instance_related_to_another_tenants(self):
        draft = Album(artist=self.a_artist, title="draft")
        with override_bindings(self.TENANT_B):
            with self.assertRaisesMessage(ValueError, "Cannot relate to <Artist"):
                draft.save()
            with self.assertRaisesMessage(ValueError, "Cannot relate to <Artist"):
                Album.objects.bulk_create([draft])
            # Refused from the assignment on.
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                Album(artist=self.a_artist, title="x")
        self.assertUnchanged()

    def test_copy_on_purpose(self):
        copy = Artist.objects.create(name="to copy")
        with override_bindings(self.TENANT_B):
            copy.save(force_insert=True)
            self.assertEqual(copy._state.db, "b")
            # A new instance follows the current bindings.
            Artist.objects.create(name="new on b")
        self.assertEqual(sorted(self.names("b")), ["b's", "new on b", "to copy"])
        self.assertEqual(self.names("a"), ["a's artist", "to copy"])

    def test_unbound_models_keep_upstream_behavior(self):
        # Routed, not bound: saved where the instance came from, or named.
        vehicle = Vehicle.objects.create(make="m", model="x", year=1)
        vehicle.save(using="b")
        vehicle.year = 2
        vehicle.save()
        self.assertEqual(makes("b"), ["m"])
        self.assertEqual(Vehicle.objects.using("b").get().year, 2)


class RemoveWhileOtherThreadsUseTests(TransactionTestCase):
    """
    connections.remove() and remove_database() never strand a transaction of
    another thread.
    """

    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        allowed = mock.patch.object(
            type(self), "databases", {*self.databases, "t", "u"}
        )
        allowed.start()
        self.addCleanup(allowed.stop)
        self.path = os.path.join(self.directory.name, "t.sqlite3")
        connections.add("t", {"ENGINE": SQLITE, "NAME": self.path})
        with connections["t"].cursor() as cursor:
            cursor.execute("CREATE TABLE t (v TEXT)")
        self.addCleanup(self.remove_t)

    def remove_t(self):
        if "t" in connections.settings:
            connections.remove("t")

    def hold_transaction(self, release_after=None):
        """Start a thread inside atomic(using="t") until released."""
        inside, release = threading.Event(), threading.Event()
        outcome = []

        def work():
            try:
                with transaction.atomic(using="t"):
                    with connections["t"].cursor() as cursor:
                        cursor.execute("INSERT INTO t VALUES (%s)", ["held"])
                    inside.set()
                    release.wait(release_after or 30)
                outcome.append("committed")
            except Exception as exc:
                outcome.append(repr(exc))
            finally:
                connections.close_all()

        thread = threading.Thread(target=work, name="holder")
        thread.start()
        inside.wait(10)
        return thread, release, outcome

    def rows(self):
        import sqlite3

        with sqlite3.connect(self.path) as db:
            return [row[0] for row in db.execute("SELECT v FROM t")]

    def test_remove_is_refused(self):
        thread, release, outcome = self.hold_transaction()
        msg = (
            "The connection 't' can't be removed while a transaction is open on "
            "it in other threads ('holder')"
        )
        with self.assertRaisesMessage(TransactionManagementError, msg):
            connections.remove("t")
        with self.assertRaisesMessage(TransactionManagementError, msg):
            remove_database("t", ["model_binding"])
        self.assertIn("t", connections.settings)
        release.set()
        thread.join()
        self.assertEqual(outcome, ["committed"])
        self.assertEqual(self.rows(), ["held"])
        connections.remove("t")
        self.assertNotIn("t", connections.settings)

    def test_remove_waits_for_a_timeout(self):
        thread, release, outcome = self.hold_transaction(release_after=0.3)
        connections.remove("t", timeout=20)
        thread.join()
        self.assertEqual(outcome, ["committed"])
        self.assertEqual(self.rows(), ["held"])
        self.assertNotIn("t", connections.settings)
        # The file isn't locked by a stranded transaction.
        connections.add("t", {"ENGINE": SQLITE, "NAME": self.path})
        with connections["t"].cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (%s)", ["after"])
        self.assertEqual(sorted(self.rows()), ["after", "held"])

    def enter_while_removed(self, then):
        """
        A thread enters atomic(using="t") and, while it connects (before its
        block has begun), "t" is removed and then(); return how the thread
        fared.
        """
        connections["t"].close()
        connecting, go_on = threading.Event(), threading.Event()
        outcome = []

        def pause(sender, connection, **kwargs):
            if connection.alias == "t" and threading.current_thread().name == "late":
                connecting.set()
                go_on.wait(10)

        def work():
            try:
                with transaction.atomic(using="t"):
                    with connections["t"].cursor() as cursor:
                        cursor.execute("INSERT INTO t VALUES (%s)", ["late"])
                outcome.append("committed")
            except Exception as exc:
                outcome.append(type(exc).__name__)
            finally:
                connections.close_all()

        connection_created.connect(pause)
        self.addCleanup(connection_created.disconnect, pause)
        thread = threading.Thread(target=work, name="late")
        thread.start()
        self.assertTrue(connecting.wait(10))
        connections.remove("t")
        then()
        go_on.set()
        thread.join()
        return outcome

    def test_block_entered_while_removed(self):
        self.assertEqual(
            self.enter_while_removed(lambda: None), ["ConnectionDoesNotExist"]
        )
        self.assertEqual(self.rows(), [])

    def test_block_entered_while_removed_and_added_again(self):
        other = os.path.join(self.directory.name, "other.sqlite3")

        def add_again():
            connections.add("t", {"ENGINE": SQLITE, "NAME": other})
            with connections["t"].cursor() as cursor:
                cursor.execute("CREATE TABLE t (v TEXT)")

        self.assertEqual(
            self.enter_while_removed(add_again), ["ConnectionDoesNotExist"]
        )
        self.assertEqual(self.rows(), [])
        self.assertEqual(read_t("t"), [])

    def test_remove_database_input(self):
        with self.assertRaisesMessage(ValueError, "The 'default' database can't be"):
            remove_database("default", ["model_binding"])
        self.assertIn(
            Vehicle._meta.db_table, connections["default"].introspection.table_names()
        )
        # Labels given by an iterator are read once, for the tables and the
        # bindings alike.
        path = os.path.join(self.directory.name, "u.sqlite3")
        add_database("u", {"ENGINE": SQLITE, "NAME": path}, iter(["model_binding"]))
        self.assertIn(
            Vehicle._meta.db_table, connections["u"].introspection.table_names()
        )
        remove_database("u", (label for label in ["model_binding"]))
        self.assertNotIn("u", connections.settings)
        self.assertIn(
            Vehicle._meta.db_table, connections["default"].introspection.table_names()
        )
        import sqlite3

        with sqlite3.connect(path) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
        self.assertNotIn(Vehicle._meta.db_table, tables)

    def test_block_begun_before_the_removal_ends(self):
        # The alias is removed while a thread is in a block on it (the block
        # began between remove()'s check and the removal): it still commits.
        with transaction.atomic(using="t"):
            with connections["t"].cursor() as cursor:
                cursor.execute("INSERT INTO t VALUES (%s)", ["mine"])
            settings = dict(connections.settings)
            del settings["t"]
            connections.settings, saved = settings, connections.settings
        self.assertEqual(self.rows(), ["mine"])
        connections.settings = saved
        connections["t"].close()


class BadInputTests(SimpleTestCase):
    def test_add_refuses_bad_settings_before_changing_anything(self):
        before = list(connections)
        cases = [
            ("x\x00", {"ENGINE": SQLITE}, ValueError, "has a control character"),
            ("x\n", {"ENGINE": SQLITE}, ValueError, "has a control character"),
            (
                "t",
                {"ENGINE": SQLITE, "OPTIONS": None},
                ImproperlyConfigured,
                "The setting OPTIONS of database 't' must be a dict, not None.",
            ),
            (
                "t",
                {"ENGINE": SQLITE, "NAME": 5},
                ImproperlyConfigured,
                "The setting NAME of database 't' must be a string or a path, not 5.",
            ),
            (
                "t",
                {"ENGINE": SQLITE, "TEST": None},
                ImproperlyConfigured,
                "The setting TEST of database 't' must be a dict, not None.",
            ),
            (
                "t",
                {"ENGINE": SQLITE, "AUTOCOMMIT": "yes"},
                ImproperlyConfigured,
                "must be True or False",
            ),
        ]
        for alias, settings_dict, exception, message in cases:
            with self.subTest(alias=alias, settings=settings_dict):
                with self.assertRaisesMessage(exception, message):
                    connections.add(alias, settings_dict)
                self.assertEqual(list(connections), before)

    def test_atomic_refuses_mappings_and_sets(self):
        for using in [{"a": 1}, {"a", "b"}, frozenset(["a"])]:
            with self.subTest(using=using):
                with self.assertRaisesMessage(
                    TypeError, "must name databases in order"
                ):
                    with transaction.atomic(using=using):
                        self.fail("The block was entered.")
                self.assertFalse(connections["a"].in_atomic_block)

    def test_remove_takes_one_alias(self):
        for alias in [["a"], ("a",), None]:
            with self.subTest(alias=alias):
                with self.assertRaisesMessage(
                    TypeError, "remove() takes the alias of one database"
                ):
                    connections.remove(alias)
        self.assertIn("a", connections.settings)
        with self.assertRaises(ConnectionDoesNotExist):
            connections.remove("missing")


class GenericRelationTests(TestCase):
    """A generic foreign key of an instance of one tenant reads nothing in another's."""

    databases = {"default", "a", "b"}
    TENANT_A = {"relations_across_databases": "a"}
    TENANT_B = {"relations_across_databases": "b"}

    def test_stale_generic_foreign_key(self):
        from relations_across_databases.models import Author, Country, Note

        notes, authors = {}, {}
        for tenant in (self.TENANT_A, self.TENANT_B):
            alias = tenant["relations_across_databases"]
            with override_bindings(tenant):
                for model in (Country, Author, Note):
                    model.objects.install()
                authors[alias] = Author.objects.create(pk=1, name=f"{alias}'s")
                notes[alias] = Note.objects.create(
                    content_object=authors[alias], text="note"
                )
        with override_bindings(self.TENANT_A):
            a_note = Note.objects.get()
        with override_bindings(self.TENANT_B):
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                a_note.content_object
            with self.assertRaisesMessage(ValueError, "loaded from the database 'a'"):
                Note(content_object=authors["a"], text="x")
            self.assertEqual(Note.objects.count(), 1)
        with override_bindings(self.TENANT_A):
            self.assertEqual(a_note.content_object.name, "a's")
