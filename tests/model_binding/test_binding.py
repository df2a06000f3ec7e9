"""
Meta.db_connection and DATABASE_BINDINGS: every ORM path sends a bound model
to its database. Each test checks where the rows physically are by querying
every database explicitly.
"""

import asyncio
import datetime
import io
import json
import os
import tempfile
import threading
from contextlib import contextmanager
from unittest import mock

from django.conf import settings
from django.contrib.admin import ModelAdmin, site
from django.core import checks, management, serializers
from django.core.exceptions import ImproperlyConfigured
from django.db import binding_state, connections, models, router, transaction
from django.db.models.binding import override_bindings, route
from django.db.models.signals import post_save
from django.db.utils import ConnectionDoesNotExist
from django.test import RequestFactory, SimpleTestCase, TestCase, TransactionTestCase
from django.test.utils import extend_sys_path, isolate_apps, override_settings

from .models import (
    Album,
    Artist,
    Bolt,
    Genre,
    Ledger,
    LivingArtist,
    Painter,
    Vehicle,
    Widget,
)

ALIASES = ["default", "a", "b"]


def where(model, **lookup):
    """
    The aliases of the databases holding rows of model matching lookup (exact
    values of concrete fields), read with SQL: routing has no say.
    """
    found = []
    for alias in ALIASES:
        connection = connections[alias]
        if model._meta.db_table not in connection.introspection.table_names():
            continue
        qn = connection.ops.quote_name
        conditions, params = [], []
        for name, value in lookup.items():
            field = model._meta.pk if name == "pk" else model._meta.get_field(name)
            conditions.append(f"{qn(field.column)} = %s")
            params.append(field.get_db_prep_value(value, connection))
        sql = f"SELECT 1 FROM {qn(model._meta.db_table)}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.fetchone():
                found.append(alias)
    return found


class BindingTests(TestCase):
    databases = {"default", "a", "b"}

    def test_meta(self):
        self.assertEqual(Artist._meta.db_connection, "a")
        self.assertEqual(Widget._meta.db_connection, "b")
        self.assertIsNone(Vehicle._meta.db_connection)
        self.assertIs(Artist._meta.connection, connections["a"])
        self.assertIs(Widget._meta.connection, connections["b"])
        self.assertIs(Vehicle._meta.connection, connections["default"])

    def test_inheritance(self):
        self.assertEqual(LivingArtist._meta.db_connection, "a")
        self.assertEqual(Painter._meta.db_connection, "a")
        self.assertEqual(Bolt._meta.db_connection, "b")
        through = Genre.albums.through
        self.assertEqual(through._meta.db_connection, "a")

    def test_database_bindings_setting_wins_over_meta(self):
        self.assertEqual(Ledger._meta.db_connection, "b")
        Ledger.objects.create(entry="x")
        self.assertEqual(where(Ledger, entry="x"), ["b"])

    @override_settings(DATABASE_BINDINGS={"model_binding": "b"})
    def test_app_entry_binds_every_model(self):
        self.assertEqual(Vehicle._meta.db_connection, "b")
        self.assertEqual(Artist._meta.db_connection, "b")

    @override_settings(
        DATABASE_BINDINGS={"model_binding": "b", "model_binding.Artist": "a"}
    )
    def test_model_entry_wins_over_app_entry(self):
        self.assertEqual(Artist._meta.db_connection, "a")
        self.assertEqual(Widget._meta.db_connection, "b")

    def test_tables_are_created_only_in_their_database(self):
        tables = {
            alias: connections[alias].introspection.table_names() for alias in ALIASES
        }
        self.assertIn(Artist._meta.db_table, tables["a"])
        self.assertNotIn(Artist._meta.db_table, tables["default"])
        self.assertNotIn(Artist._meta.db_table, tables["b"])
        self.assertIn(Genre.albums.through._meta.db_table, tables["a"])
        self.assertIn(Widget._meta.db_table, tables["b"])
        self.assertNotIn(Widget._meta.db_table, tables["a"])
        self.assertIn(Bolt._meta.db_table, tables["b"])
        self.assertIn(Vehicle._meta.db_table, tables["default"])

    def test_allow_migrate(self):
        for alias in ALIASES:
            self.assertIs(router.allow_migrate_model(alias, Artist), alias == "a")
            self.assertIs(router.allow_migrate_model(alias, Painter), alias == "a")
            self.assertIs(
                router.allow_migrate(alias, "model_binding", model_name="widget"),
                alias == "b",
            )
        self.assertIs(router.allow_migrate_model("b", Vehicle), True)

    def test_routing(self):
        self.assertEqual(router.db_for_read(Artist), "a")
        self.assertEqual(router.db_for_write(Widget), "b")
        self.assertEqual(router.db_for_write(Vehicle), "default")

    def test_binding_changed_at_run_time(self):
        # What routing cached for a model, its proxy and its child is
        # forgotten when the model's binding changes.
        family = [Artist, LivingArtist, Painter]
        for model in family:
            self.assertEqual(route(model, "default"), "a")
            self.assertEqual(router.db_for_read(model), "a")
        Artist._meta.db_connection = "b"
        try:
            for model in family:
                with self.subTest(model=model):
                    self.assertEqual(route(model, "default"), "b")
                    self.assertEqual(router.db_for_read(model), "b")
                    self.assertEqual(model.objects.using("default").db, "b")
        finally:
            Artist._meta.db_connection = "a"
        for model in family:
            self.assertEqual(route(model, "default"), "a")


class ReadWriteTests(TestCase):
    databases = {"default", "a", "b"}

    @classmethod
    def setUpTestData(cls):
        cls.klee = Artist.objects.create(name="Paul Klee", alive=False)
        cls.miro = Artist.objects.create(
            name="Joan Miro", born=datetime.date(1893, 4, 20)
        )
        cls.album = Album.objects.create(artist=cls.klee, title="Twittering Machine")

    def test_save_insert_and_update(self):
        artist = Artist(name="Pablo Picasso")
        artist.save()
        self.assertEqual(artist._state.db, "a")
        self.assertEqual(where(Artist, name="Pablo Picasso"), ["a"])
        artist.name = "Picasso"
        artist.save()
        self.assertEqual(where(Artist, name="Picasso"), ["a"])
        vehicle = Vehicle.objects.create(make="Chevy", model="Camaro", year=1966)
        self.assertEqual(where(Vehicle, pk=vehicle.pk), ["default"])
        widget = Widget.objects.create(code="100x2r", weight=1000)
        self.assertEqual(where(Widget, pk=widget.pk), ["b"])

    def test_reads(self):
        self.assertEqual(list(Artist.objects.all()), [self.klee, self.miro])
        self.assertEqual(Artist.objects.all().db, "a")
        self.assertEqual(Artist.objects.filter(alive=False).get(), self.klee)
        self.assertEqual(Artist.objects.exclude(alive=False).get(), self.miro)
        self.assertEqual(Artist.objects.get(name="Joan Miro"), self.miro)
        self.assertEqual(Artist.objects.count(), 2)
        self.assertIs(Artist.objects.filter(name="Paul Klee").exists(), True)
        self.assertEqual(Artist.objects.first(), self.klee)
        self.assertEqual(Artist.objects.latest("pk"), self.miro)

    def test_aggregate_annotate_values(self):
        self.assertEqual(Artist.objects.aggregate(n=models.Count("pk")), {"n": 2})
        annotated = Artist.objects.annotate(n=models.Count("albums")).get(
            pk=self.klee.pk
        )
        self.assertEqual(annotated.n, 1)
        self.assertEqual(
            list(Artist.objects.values_list("name", flat=True)),
            ["Paul Klee", "Joan Miro"],
        )
        self.assertEqual(
            list(Artist.objects.filter(pk=self.klee.pk).values("name")),
            [{"name": "Paul Klee"}],
        )

    def test_dates_in_bulk_iterator_raw(self):
        self.assertEqual(
            list(Artist.objects.dates("born", "year")), [datetime.date(1893, 1, 1)]
        )
        Widget.objects.create(code="dt", weight=1)
        self.assertEqual(len(Widget.objects.datetimes("made", "year")), 1)
        self.assertEqual(
            Artist.objects.in_bulk([self.klee.pk]), {self.klee.pk: self.klee}
        )
        self.assertEqual(list(Artist.objects.iterator()), [self.klee, self.miro])
        raw = Artist.objects.raw(
            f"SELECT * FROM {Artist._meta.db_table} WHERE name = %s", ["Paul Klee"]
        )
        self.assertEqual(raw.db, "a")
        self.assertEqual(list(raw), [self.klee])

    def test_create_helpers(self):
        artist, created = Artist.objects.get_or_create(name="Miro Again")
        self.assertIs(created, True)
        self.assertEqual(where(Artist, name="Miro Again"), ["a"])
        artist, created = Artist.objects.update_or_create(
            name="Miro Again", defaults={"alive": False}
        )
        self.assertIs(created, False)
        self.assertEqual(where(Artist, name="Miro Again", alive=False), ["a"])
        Widget.objects.bulk_create(
            [Widget(code="w1", weight=1), Widget(code="w2", weight=2)]
        )
        self.assertEqual(where(Widget, code="w2"), ["b"])
        widgets = list(Widget.objects.all())
        for widget in widgets:
            widget.weight = 7
        Widget.objects.bulk_update(widgets, ["weight"])
        self.assertEqual(Widget.objects.using("b").filter(weight=7).count(), 2)

    def test_update_and_delete_with_cascade(self):
        Artist.objects.filter(pk=self.miro.pk).update(alive=False)
        self.assertEqual(where(Artist, pk=self.miro.pk, alive=False), ["a"])
        self.klee.delete()
        self.assertEqual(where(Artist, pk=self.klee.pk), [])
        self.assertEqual(where(Album, pk=self.album.pk), [])
        deleted, _ = Artist.objects.filter(pk=self.miro.pk).delete()
        self.assertEqual(deleted, 1)

    def test_refresh_from_db(self):
        Artist.objects.filter(pk=self.klee.pk).update(name="Klee")
        artist = Artist(pk=self.klee.pk)
        artist.refresh_from_db()
        self.assertEqual(artist.name, "Klee")
        self.assertEqual(artist._state.db, "a")

    def test_related_managers(self):
        album = self.klee.albums.create(title="Ad Parnassum")
        self.assertEqual(where(Album, pk=album.pk), ["a"])
        self.assertEqual(list(self.klee.albums.all()), [self.album, album])
        fetched = Album.objects.get(pk=album.pk)
        self.assertEqual(fetched.artist, self.klee)
        self.assertEqual(fetched.artist._state.db, "a")

    def test_many_to_many(self):
        jazz = Genre.objects.create(name="Jazz")
        other = Album.objects.create(artist=self.miro, title="Constellations")
        jazz.albums.add(self.album, other)
        through = Genre.albums.through
        self.assertEqual(where(through, genre=jazz.pk), ["a"])
        self.assertEqual(list(self.album.genres.all()), [jazz])
        jazz.albums.remove(other)
        self.assertEqual(list(jazz.albums.all()), [self.album])
        jazz.albums.set([other])
        self.assertEqual(list(jazz.albums.all()), [other])
        jazz.albums.clear()
        self.assertEqual(where(through, genre=jazz.pk), [])

    def test_prefetch_and_select_related(self):
        with self.assertNumQueries(2, using="a"):
            artists = list(Artist.objects.prefetch_related("albums"))
            self.assertEqual(list(artists[0].albums.all()), [self.album])
        with self.assertNumQueries(1, using="a"):
            album = Album.objects.select_related("artist").get(pk=self.album.pk)
            self.assertEqual(album.artist.name, "Paul Klee")

    def test_select_for_update(self):
        with transaction.atomic(using="a"):
            artist = Artist.objects.select_for_update().get(pk=self.klee.pk)
        self.assertEqual(artist, self.klee)

    def test_order_with_respect_to(self):
        second = Album.objects.create(artist=self.klee, title="Senecio")
        self.assertEqual(list(self.klee.get_album_order()), [self.album.pk, second.pk])
        self.klee.set_album_order([second.pk, self.album.pk])
        self.assertEqual(list(self.klee.get_album_order()), [second.pk, self.album.pk])
        self.assertEqual(second.get_next_in_order(), self.album)

    def test_get_next_and_previous_by_field(self):
        first = Widget.objects.create(code="first", weight=1)
        second = Widget.objects.create(code="second", weight=2)
        Widget.objects.filter(pk=first.pk).update(made=datetime.datetime(2000, 1, 1))
        first.refresh_from_db()
        self.assertEqual(first.get_next_by_made(), second)
        self.assertEqual(second.get_previous_by_made(), first)

    def test_signals_using(self):
        seen = []

        def receiver(sender, instance, using, **kwargs):
            seen.append(using)

        post_save.connect(receiver, sender=Widget)
        try:
            Widget.objects.create(code="sig", weight=1)
        finally:
            post_save.disconnect(receiver, sender=Widget)
        self.assertEqual(seen, ["b"])

    def test_serializers(self):
        data = serializers.serialize("json", Artist.objects.all())
        Artist.objects.all().delete()
        for obj in serializers.deserialize("json", data):
            obj.save()
        self.assertEqual(where(Artist, name="Paul Klee"), ["a"])

    def test_dumpdata_and_loaddata(self):
        out = io.StringIO()
        management.call_command(
            "dumpdata", "model_binding.Artist", database="a", stdout=out
        )
        dumped = json.loads(out.getvalue())
        self.assertEqual(
            {obj["fields"]["name"] for obj in dumped}, {"Paul Klee", "Joan Miro"}
        )
        # Without --database, each model from its database.
        out = io.StringIO()
        management.call_command("dumpdata", "model_binding", stdout=out)
        self.assertIn("Paul Klee", out.getvalue())
        out = io.StringIO()
        management.call_command(
            "dumpdata", "model_binding", database="default", stdout=out
        )
        self.assertNotIn("Paul Klee", out.getvalue())

    def test_loaddata_puts_bound_objects_only_in_their_database(self):
        fixture = [
            {
                "model": "model_binding.artist",
                "pk": 99,
                "fields": {"name": "From a fixture", "alive": True, "born": None},
            }
        ]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "artists.json")
            with open(path, "w") as f:
                json.dump(fixture, f)
            management.call_command("loaddata", path, database="default", verbosity=0)
            self.assertEqual(where(Artist, pk=99), [])
            management.call_command("loaddata", path, database="a", verbosity=0)
            self.assertEqual(where(Artist, pk=99), ["a"])

    def test_explicit_using_wins(self):
        # The escape hatch for copying data between databases.
        artist = Artist(name="Copied")
        artist.save(using="a")
        self.assertEqual(artist._state.db, "a")
        widget = Widget.objects.using("b").create(code="c1", weight=1)
        self.assertEqual(where(Widget, pk=widget.pk), ["b"])
        self.assertEqual(Artist.objects.db_manager("a").count(), 3)

    def test_instance_read_elsewhere_is_saved_to_its_binding(self):
        vehicle = Vehicle.objects.using("b").create(make="Fiat", model="500", year=1957)
        self.assertEqual(vehicle._state.db, "b")
        # An unbound model follows the instance hint, as upstream.
        vehicle.year = 1958
        vehicle.save()
        self.assertEqual(where(Vehicle, year=1958), ["b"])

    def test_cross_database_relation_is_refused(self):
        genre = Genre.objects.create(name="Blues")
        stranger = Album(pk=self.album.pk, title="Stranger")
        stranger._state.db = "b"
        msg = 'Cannot add "<Album: Stranger>": instance is on database "a", value is'
        with self.assertRaisesMessage(ValueError, msg):
            genre.albums.add(stranger)

    def test_admin_changelist_queryset(self):
        request = RequestFactory().get("/")
        queryset = ModelAdmin(Artist, site).get_queryset(request)
        self.assertEqual(queryset.db, "a")
        self.assertEqual(list(queryset), [self.klee, self.miro])

    def test_proxy_and_multi_table_child(self):
        painter = Painter.objects.create(name="Kandinsky", style="abstract")
        self.assertEqual(where(Painter, pk=painter.pk), ["a"])
        self.assertEqual(where(Artist, pk=painter.pk), ["a"])
        self.assertEqual(LivingArtist.objects.filter(alive=True).count(), 2)
        bolt = Bolt.objects.create(size=3)
        self.assertEqual(where(Bolt, pk=bolt.pk), ["b"])


class ExplicitDatabaseTests(TestCase):
    """
    A bound model stays on its database when code names another one, as
    reusable apps do with using=instance._state.db; override_bindings()
    moves it for a while.
    """

    databases = {"default", "a", "b"}

    def test_bound_model_named_elsewhere_stays_on_its_database(self):
        artist = Artist.objects.using("b").create(name="Hopper")
        self.assertEqual(artist._state.db, "a")
        self.assertEqual(where(Artist, name="Hopper"), ["a"])
        artist.name = "Edward Hopper"
        artist.save(using="b")
        self.assertEqual(where(Artist, name="Edward Hopper"), ["a"])
        manager = Artist.objects.db_manager("b")
        self.assertEqual(manager.filter(name="Edward Hopper").count(), 1)
        qn = connections["a"].ops.quote_name
        raw = Artist.objects.raw(
            f"SELECT * FROM {qn(Artist._meta.db_table)} WHERE {qn('name')} = %s",
            ["Edward Hopper"],
            using="b",
        )
        self.assertEqual([a.pk for a in raw], [artist.pk])
        artist.refresh_from_db(using="b")
        artist.delete(using="b")
        self.assertEqual(where(Artist, name="Edward Hopper"), [])

    def test_unbound_model_goes_where_named(self):
        Vehicle.objects.using("b").create(make="Fiat", model="500", year=1957)
        self.assertEqual(where(Vehicle, make="Fiat"), ["b"])

    def test_override_bindings_copies_rows_to_another_database(self):
        Artist.objects.create(name="Klee")
        artists = list(Artist.objects.all())
        with override_bindings({"model_binding.Artist": "b"}):
            self.assertEqual(Artist._meta.db_connection, "b")
            Artist.objects.install()
            Artist.objects.bulk_create(artists)
            self.assertEqual(
                list(Artist.objects.values_list("name", flat=True)), ["Klee"]
            )
        self.assertEqual(Artist._meta.db_connection, "a")
        self.assertEqual(where(Artist, name="Klee"), ["a", "b"])
        with override_bindings({"model_binding": "b"}):
            Artist.objects.drop()
        self.assertEqual(where(Artist, name="Klee"), ["a"])

    def test_override_bindings_scope(self):
        seen = []
        with override_bindings({"model_binding": "b"}):
            with override_bindings({"model_binding.Artist": "default"}):
                self.assertEqual(Artist._meta.db_connection, "default")
                self.assertEqual(Widget._meta.db_connection, "b")
                # Another thread doesn't see this context's override.
                thread = threading.Thread(
                    target=lambda: seen.append(Artist._meta.db_connection)
                )
                thread.start()
                thread.join()
            self.assertEqual(Artist._meta.db_connection, "b")
            with self.assertRaises(ZeroDivisionError):
                with override_bindings({"model_binding.Artist": "a"}):
                    1 / 0
            self.assertEqual(Artist._meta.db_connection, "b")
        self.assertEqual(seen, ["a"])
        self.assertEqual(Artist._meta.db_connection, "a")
        self.assertEqual(Vehicle._meta.db_connection, None)

    def test_override_bindings_in_concurrent_tasks(self):
        async def bound_to(alias):
            with override_bindings({"model_binding.Vehicle": alias}):
                await asyncio.sleep(0.01)
                return Vehicle._meta.db_connection

        async def both():
            return await asyncio.gather(bound_to("a"), bound_to("b"))

        self.assertEqual(asyncio.run(both()), ["a", "b"])
        self.assertIsNone(Vehicle._meta.db_connection)

    def test_override_bindings_bad_input(self):
        cases = [
            (
                {"model_binding": "nowhere"},
                ConnectionDoesNotExist,
                "The connection 'nowhere' doesn't exist.",
            ),
            (
                {"no_such_app": "a"},
                ImproperlyConfigured,
                "override_bindings() refers to 'no_such_app', which isn't an "
                "installed app label or 'app_label.ModelName'.",
            ),
            (
                ["model_binding"],
                ImproperlyConfigured,
                "override_bindings() must be a dict",
            ),
            (
                {"model_binding.Artist": 3},
                ImproperlyConfigured,
                "a binding must name a database alias",
            ),
        ]
        for bindings, exception, message in cases:
            with self.subTest(bindings=bindings):
                with self.assertRaisesMessage(exception, message):
                    with override_bindings(bindings):
                        self.fail("The override was entered.")
                self.assertEqual(Artist._meta.db_connection, "a")
                self.assertIsNone(Vehicle._meta.db_connection)


class OverrideBindingsIsolationTests(TransactionTestCase):
    """
    override_bindings() belongs to its context: asyncio tasks, the threads
    sync_to_async() runs ORM calls in, and threads started by hand.
    """

    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def test_public_name(self):
        from django.db import override_bindings as public

        self.assertIs(public, override_bindings)

    def test_concurrent_tasks_write_to_their_own_database(self):
        from asgiref.sync import sync_to_async

        seen = []

        async def tenant(number):
            alias = "ab"[number % 2]
            with override_bindings({"model_binding.Vehicle": alias}):
                for step in range(3):
                    # Every await lets the other tasks run.
                    await Vehicle.objects.acreate(
                        make=alias, model=f"{number}-{step}", year=number
                    )
                    await asyncio.sleep(0)
                    seen.append((alias, Vehicle._meta.db_connection))
                makes = [v.make async for v in Vehicle.objects.filter(year=number)]
            seen.append((None, Vehicle._meta.db_connection))
            return alias, makes

        async def load():
            try:
                return await asyncio.gather(*(tenant(n) for n in range(40)))
            finally:
                await sync_to_async(connections.close_all)()

        for alias, makes in asyncio.run(load()):
            self.assertEqual(makes, [alias] * 3)
        self.assertEqual([(a, b) for a, b in seen if a != b], [])
        for alias in ("a", "b"):
            rows = Vehicle.objects.using(alias).values_list("make", flat=True)
            self.assertEqual(sorted(set(rows)), [alias])
            self.assertEqual(len(rows), 60)
        self.assertEqual(Vehicle.objects.using("default").count(), 0)
        self.assertIsNone(Vehicle._meta.db_connection)

    def test_decorated_async_function(self):
        @override_bindings({"model_binding.Vehicle": "b"})
        async def bound():
            await asyncio.sleep(0)
            return Vehicle._meta.db_connection

        async def unbound():
            await asyncio.sleep(0)
            return Vehicle._meta.db_connection

        async def both():
            return await asyncio.gather(bound(), unbound(), bound())

        self.assertEqual(asyncio.run(both()), ["b", None, "b"])
        self.assertIsNone(Vehicle._meta.db_connection)

    def test_decorated_function_calls_itself(self):
        @override_bindings({"model_binding.Vehicle": "a"})
        def depth(n):
            if n:
                return depth(n - 1) + [Vehicle._meta.db_connection]
            return [Vehicle._meta.db_connection]

        self.assertEqual(depth(3), ["a"] * 4)
        self.assertIsNone(Vehicle._meta.db_connection)

    def test_many_different_overrides_keep_a_bounded_cache(self):
        # One override per tenant: what relations resolve to under each is
        # cached, within bounds.
        import itertools

        from django.apps import apps
        from django.db.models import crossdb

        names = sorted(
            model._meta.label
            for model in apps.get_app_config("model_binding").get_models()
        )[:10]
        entries = [
            {label: alias for label in subset}
            for alias in ("default", "a", "b")
            for size in (1, 2, 3)
            for subset in itertools.combinations(names, size)
        ]
        self.assertGreater(len(entries), 300)
        for bindings in entries:
            with override_bindings(bindings):
                crossdb.possible()
            self.assertLessEqual(len(binding_state.relation_caches), 256)

    def test_thread_started_by_hand(self):
        import contextvars

        seen = {}
        with override_bindings({"model_binding.Vehicle": "a"}):
            plain = threading.Thread(
                target=lambda: seen.setdefault("plain", Vehicle._meta.db_connection)
            )
            context = contextvars.copy_context()
            passed = threading.Thread(
                target=context.run,
                args=(lambda: seen.setdefault("passed", Vehicle._meta.db_connection),),
            )
            for thread in (plain, passed):
                thread.start()
                thread.join()
        self.assertEqual(seen, {"plain": None, "passed": "a"})


class RuntimeConnectionTests(TestCase):
    databases = {"default", "a"}

    def test_model_bound_to_an_alias_added_later(self):
        @isolate_apps("model_binding")
        def make_model():
            class Late(models.Model):
                class Meta:
                    app_label = "model_binding"
                    db_connection = "late"

            return Late

        Late = make_model()
        errors = Late.check()
        self.assertEqual([error.id for error in errors], ["multidb.E001"])
        connections.add(
            "late", {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        )
        # The test framework lets a test use the databases it declares.
        allowed = mock.patch.object(type(self), "databases", {*self.databases, "late"})
        try:
            allowed.start()
            self.assertEqual(Late.check(), [])
            self.assertIs(Late._meta.connection, connections["late"])
            with connections["late"].schema_editor() as editor:
                editor.create_model(Late)
            Late.objects.create()
            self.assertEqual(Late.objects.count(), 1)
        finally:
            allowed.stop()
            connections.remove("late")
        with self.assertRaisesMessage(
            Exception, "The connection 'late' doesn't exist."
        ):
            Late.objects.count()

    def test_add_existing_alias_is_refused(self):
        with self.assertRaisesMessage(ValueError, "The connection 'a' already exists."):
            connections.add("a", {"ENGINE": "django.db.backends.sqlite3"})
        self.assertEqual(list(connections), ["default", "a", "b", "p", "q"])


@isolate_apps("model_binding")
class CheckTests(SimpleTestCase):
    def test_unknown_alias(self):
        class Nowhere(models.Model):
            class Meta:
                db_connection = "missing"

        self.assertEqual(
            Nowhere.check(),
            [
                checks.Error(
                    "model_binding.Nowhere is bound to the database 'missing', "
                    "which isn't configured. Configured connections: 'default', "
                    "'a', 'b', 'p', 'q'.",
                    hint=(
                        "Add 'missing' to DATABASES (or with connections.add() "
                        "before the model is used), or change the binding."
                    ),
                    obj=Nowhere,
                    id="multidb.E001",
                )
            ],
        )

    def test_relation_across_databases(self):
        class InA(models.Model):
            class Meta:
                db_connection = "a"

        class InB(models.Model):
            to_a = models.ForeignKey(InA, models.CASCADE)
            many = models.ManyToManyField(InA, related_name="+")

            class Meta:
                db_connection = "b"

        # Relations may cross databases (see tests/relations_across_databases).
        self.assertEqual(InB.check(), [])

    def test_ordering_across_databases(self):
        # auth.Permission orders by its content type's app_label: on another
        # database, the ordering joins the content types' rows (sql.remote).
        from django.contrib.auth.models import Permission

        def binding_errors():
            return [e for e in Permission.check() if e.id.startswith("multidb")]

        with override_settings(DATABASE_BINDINGS={"auth": "a"}):
            self.assertEqual(binding_errors(), [])

    def test_through_model_on_a_third_database(self):
        class Right(models.Model):
            class Meta:
                db_connection = "b"

        class Link(models.Model):
            owner = models.ForeignKey("Owner", models.CASCADE)
            right = models.ForeignKey(Right, models.CASCADE)

            class Meta:
                db_connection = "p"

        class Owner(models.Model):
            rights = models.ManyToManyField(Right, through=Link)

            class Meta:
                db_connection = "a"

        field = Owner._meta.get_field("rights")
        self.assertEqual(
            Owner.check(),
            [
                checks.Error(
                    "model_binding.Owner.rights has its through model "
                    "model_binding.Link on the database 'p', which holds "
                    "neither model_binding.Owner ('a') nor "
                    "model_binding.Right ('b').",
                    hint=(
                        "Bind model_binding.Link to the database of one of "
                        "the two models."
                    ),
                    obj=field,
                    id="multidb.E008",
                )
            ],
        )

    def test_multi_table_child_bound_elsewhere(self):
        class Parent(models.Model):
            class Meta:
                db_connection = "a"

        class Child(Parent):
            class Meta:
                db_connection = "b"

        self.assertEqual(Child._meta.db_connection, "a")
        self.assertEqual([error.id for error in Child.check()], ["multidb.E003"])

    def test_multi_table_child_bound_where_its_parent_is_routed(self):
        # An unbound parent lives where the routers put it: default here.
        class Parent(models.Model):
            pass

        class Child(Parent):
            class Meta:
                db_connection = "default"

        class Proxy(Parent):
            class Meta:
                proxy = True
                db_connection = "default"

        self.assertIsNone(Child._meta.db_connection)
        self.assertEqual(Child.check(), [])
        self.assertEqual(Proxy.check(), [])

        class Elsewhere(Parent):
            class Meta:
                db_connection = "a"

        self.assertEqual([error.id for error in Elsewhere.check()], ["multidb.E003"])

    def test_proxy_with_its_own_binding(self):
        class Concrete(models.Model):
            pass

        class Proxy(Concrete):
            class Meta:
                proxy = True
                db_connection = "b"

        self.assertIsNone(Proxy._meta.db_connection)
        self.assertEqual([error.id for error in Proxy.check()], ["multidb.E004"])

    def test_db_connection_must_be_a_string(self):
        msg = "Bad.Meta.db_connection must be a database alias (a string), not int."
        with self.assertRaisesMessage(TypeError, msg):

            class Bad(models.Model):
                class Meta:
                    db_connection = 1

    def test_unbound_apps_copied_to_bound_databases(self):
        from django.db.models.binding import check_unbound_apps

        warnings = check_unbound_apps()
        self.assertEqual([warning.id for warning in warnings], ["multidb.W001"])
        # runtests.py installs more apps than pytest's settings.
        self.assertTrue(
            warnings[0].msg.startswith("These apps aren't bound to a database: "),
            warnings[0].msg,
        )
        for label in ["'auth'", "'contenttypes'", "'two_phase_commit'"]:
            self.assertIn(label, warnings[0].msg)
        self.assertIn(
            ". migrate --all-databases creates a copy of their tables on 'a', 'b'",
            warnings[0].msg,
        )
        self.assertTrue(
            warnings[0].msg.endswith(" too, where other models are bound."),
            warnings[0].msg,
        )
        self.assertEqual(
            warnings[0].hint,
            'Add the "*" entry to DATABASE_BINDINGS to bind every model that '
            'nothing else binds, e.g. {"*": "default"}, or bind these apps.',
        )
        with override_settings(
            DATABASE_BINDINGS={**settings.DATABASE_BINDINGS, "*": "default"}
        ):
            self.assertEqual(check_unbound_apps(), [])

    def test_unbound_apps_the_routers_keep_off_bound_databases(self):
        from django.db.models.binding import check_unbound_apps

        class Router:
            def allow_migrate(self, db, app_label, **hints):
                return db == "default" or app_label not in {"auth", "contenttypes"}

        with override_settings(DATABASE_ROUTERS=[Router()]):
            (warning,) = check_unbound_apps()
        self.assertNotIn("'auth'", warning.msg)
        self.assertNotIn("'contenttypes'", warning.msg)
        with override_settings(
            DATABASE_ROUTERS=[Router()],
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        ):
            self.assertEqual(check_unbound_apps(), [])

    @override_settings(DATABASE_BINDINGS={"no_such_app": "a", "auth.Nope": "a"})
    def test_database_bindings_names_unknown_labels(self):
        from django.db.models.binding import check_database_bindings

        self.assertEqual(
            [error.id for error in check_database_bindings()],
            ["multidb.E005", "multidb.E005"],
        )


APPS = ["django.contrib.contenttypes", "django.contrib.auth", "model_binding"]


@contextmanager
def fresh_databases(test_case, aliases):
    """
    Add in-memory SQLite databases that test_case may use for a while, then
    remove them.
    """
    for alias in aliases:
        connections.add(
            alias, {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        )
    # The test framework lets a test use the databases it declares.
    allowed = mock.patch.object(
        type(test_case), "databases", {*test_case.databases, *aliases}
    )
    allowed.start()
    try:
        yield
    finally:
        allowed.stop()
        for alias in aliases:
            connections.remove(alias)


class MigrationTests(TransactionTestCase):
    available_apps = APPS
    databases = {"default", "a", "b"}

    def test_makemigrations_then_migrations_run_only_on_the_bound_database(self):
        with tempfile.TemporaryDirectory() as tmp, extend_sys_path(tmp):
            package = os.path.join(tmp, "multidb_migrations_tmp")
            os.mkdir(package)
            open(os.path.join(package, "__init__.py"), "w").close()
            modules = {"model_binding": "multidb_migrations_tmp"}
            with override_settings(MIGRATION_MODULES=modules):
                management.call_command("makemigrations", "model_binding", verbosity=0)
                with open(os.path.join(package, "0001_initial.py")) as f:
                    migration = f.read()
                # Upstream Django can load the migration: no binding in it.
                # (Formatted by black when it's on PATH: either quotes.)
                self.assertRegex(migration, r"""name=["']Artist["']""")
                self.assertNotIn("db_connection", migration)
                sql = {}
                for alias in ALIASES:
                    out = io.StringIO()
                    management.call_command(
                        "sqlmigrate",
                        "model_binding",
                        "0001",
                        database=alias,
                        stdout=out,
                    )
                    sql[alias] = out.getvalue()
        for alias in ALIASES:
            with self.subTest(alias=alias):
                self.assertIs("model_binding_artist" in sql[alias], alias == "a")
                self.assertIs("model_binding_widget" in sql[alias], alias == "b")
                self.assertIn("model_binding_vehicle", sql[alias])

    def test_binding_stays_out_of_migrations(self):
        from django.db.migrations.state import ModelState

        state = ModelState.from_model(Artist)
        self.assertNotIn("db_connection", state.options)
        out = io.StringIO()
        management.call_command(
            "makemigrations",
            "model_binding",
            dry_run=True,
            verbosity=3,
            stdout=out,
        )
        self.assertIn("name='Artist'", out.getvalue())
        self.assertNotIn("db_connection", out.getvalue())


class MigrateTests(TransactionTestCase):
    available_apps = APPS
    databases = {"default", "a", "b"}

    def test_migrate_creates_bound_tables_only_in_their_database(self):
        fresh = ["fresh1", "fresh2"]
        with fresh_databases(self, fresh):
            with tempfile.TemporaryDirectory() as tmp, extend_sys_path(tmp):
                package = os.path.join(tmp, "multidb_migrations_migrate")
                os.mkdir(package)
                open(os.path.join(package, "__init__.py"), "w").close()
                with override_settings(
                    MIGRATION_MODULES={"model_binding": "multidb_migrations_migrate"},
                    DATABASE_BINDINGS={"model_binding": "fresh1"},
                ):
                    management.call_command(
                        "makemigrations", "model_binding", verbosity=0
                    )
                    for alias in fresh:
                        management.call_command("migrate", database=alias, verbosity=0)
                    tables = {
                        alias: set(connections[alias].introspection.table_names())
                        for alias in fresh
                    }
        app_tables = {
            model._meta.db_table
            for model in (Artist, Widget, Vehicle, Album, Genre, Painter, Bolt)
        }
        self.assertEqual(app_tables - tables["fresh1"], set())
        self.assertEqual(app_tables & tables["fresh2"], set())
        self.assertIn("django_content_type", tables["fresh2"])


class MigrateAllDatabasesTests(TransactionTestCase):
    available_apps = APPS
    databases = {"default", "a", "b", "p", "q"}

    def test_migrate_all_databases_with_a_binding_for_every_other_app(self):
        # "*" binds the apps nothing else binds: each fresh database gets
        # its apps' tables and no other (upstream puts them everywhere).
        fresh = ["fresh1", "fresh2"]
        out = io.StringIO()
        with fresh_databases(self, fresh):
            with override_settings(
                DATABASE_BINDINGS={"model_binding": "fresh1", "*": "fresh2"}
            ):
                self.assertEqual(Vehicle._meta.db_connection, "fresh1")
                self.assertEqual(checks.run_checks(tags=["models"]), [])
                from django.contrib.auth.models import Permission, User

                self.assertEqual(User._meta.db_connection, "fresh2")
                self.assertFalse(router.allow_migrate_model("default", Permission))
                self.assertFalse(
                    router.allow_migrate("default", "auth", model_name="gone")
                )
                self.assertTrue(router.allow_migrate("fresh2", "auth"))
                management.call_command(
                    "migrate", all_databases=True, run_syncdb=True, stdout=out
                )
                tables = {
                    alias: set(connections[alias].introspection.table_names())
                    for alias in fresh
                }
                self.assertEqual(User.objects.count(), 0)
        headings = [
            line for line in out.getvalue().splitlines() if line.startswith("Database")
        ]
        self.assertEqual(
            headings, [f"Database '{alias}':" for alias in [*connections, *fresh]]
        )
        app_tables = {
            model._meta.db_table
            for model in Artist._meta.app_config.get_models(include_auto_created=True)
        }
        # runtests.py runs contrib apps without migrations: no
        # django_migrations table there.
        self.assertEqual(tables["fresh1"] - {"django_migrations"}, app_tables)
        self.assertEqual(
            {
                table
                for table in tables["fresh2"] - {"django_migrations"}
                if not table.startswith("auth_")
            },
            {"django_content_type"},
        )
        self.assertIn("auth_user", tables["fresh2"])

    def test_all_databases_leaves_read_replicas_out(self):
        # They replay what their database is migrated to.
        memory = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        connections.add("replica1", memory)
        self.addCleanup(connections.remove, "replica1")
        connections.add("fresh1", {**memory, "REPLICAS": ["replica1"]})
        self.addCleanup(connections.remove, "fresh1")
        with mock.patch.object(
            type(self), "databases", {*self.databases, "fresh1", "replica1"}
        ):
            out = io.StringIO()
            management.call_command(
                "migrate", all_databases=True, plan=True, stdout=out
            )
        headings = [
            line for line in out.getvalue().splitlines() if line.startswith("Database")
        ]
        self.assertIn("Database 'fresh1':", headings)
        self.assertNotIn("Database 'replica1':", headings)

    def test_all_databases_excludes_database(self):
        with self.assertRaises(management.CommandError) as caught:
            management.call_command("migrate", "--all-databases", "--database=a")
        self.assertIn("not allowed with argument", str(caught.exception))
