"""
Management commands that default to the "default" database follow the
bindings instead when the user doesn't name a database: dumpdata and
loaddata (each model from and to its own database), flush, sqlflush,
sqlsequencereset, createsuperuser and changepassword. A --database the user
names means exactly that database.

The round trip is differential: a dump of the same objects is the same
whether the models share one database or are split across two, and loading
it into fresh tables puts every object back where it was.
"""

import json
import os
import tempfile
from io import StringIO
from unittest import mock

from django.contrib.auth.management.commands import changepassword
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connections
from django.db.models.binding import override_bindings
from django.db.models.ddl import drop_models, install_models
from django.test import TransactionTestCase
from model_binding.models import Artist, Vehicle, Widget
from relations_across_databases.models import MODELS, Author, Book, Country
from relations_across_databases.tests import (
    APP,
    ONE_DATABASE,
    SPLIT,
    seed,
    where_tables_are,
)


def table_rows(bindings):
    """
    Every row of every table of the app, read with SQL from the database the
    bindings put the table on: {(alias, table): sorted rows}.
    """
    rows = {}
    tables = {model._meta.db_table: model for model in MODELS}
    tables.update(
        (field.m2m_db_table(), model)
        for model in MODELS
        for field in model._meta.local_many_to_many
    )
    placed = where_tables_are(bindings)
    for table, model in tables.items():
        connection = connections[placed[model]]
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM %s" % connection.ops.quote_name(table))
            rows[placed[model], table] = sorted(cursor.fetchall())
    return rows


def count(alias, model):
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM %s" % connection.ops.quote_name(model._meta.db_table)
        )
        return cursor.fetchone()[0]


class CommandsTestCase(TransactionTestCase):
    available_apps = [APP, "django.contrib.contenttypes", "django.contrib.auth"]
    databases = {"default", "a", "b"}

    def installed(self, bindings):
        """Install the app's tables where bindings put them, for this test."""
        override = override_bindings(bindings)
        override.__enter__()
        self.addCleanup(override.__exit__, None, None, None)
        install_models(MODELS)
        self.addCleanup(drop_models, MODELS)

    def fixture_file(self, text):
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as file:
            file.write(text)
        self.addCleanup(os.remove, path)
        return path


class DumpLoadTests(CommandsTestCase):
    def round_trip(self, bindings):
        """
        Dump the seeded app, load the dump into fresh tables, and return the
        dump and the rows before and after.
        """
        self.installed(bindings)
        seed()
        before = table_rows(bindings)
        dump = StringIO()
        call_command("dumpdata", APP, stdout=dump)
        drop_models(MODELS)
        install_models(MODELS)
        self.assertEqual(sum(map(len, table_rows(bindings).values())), 0)
        out = StringIO()
        call_command("loaddata", self.fixture_file(dump.getvalue()), stdout=out)
        objects = json.loads(dump.getvalue())
        self.assertEqual(
            out.getvalue().strip(),
            f"Installed {len(objects)} object(s) from 1 fixture(s)",
        )
        return objects, before, table_rows(bindings)

    def test_round_trip_on_one_database(self):
        objects, before, after = self.round_trip(ONE_DATABASE)
        self.assertEqual(len(objects), 3 + 4 + 2 + 5 + 10 + 3 + 4 + 1 + 1 + 1 + 3 + 2)
        self.assertEqual(after, before)

    def test_round_trip_split_across_databases(self):
        on_one_database = json.loads(self.dump_of(ONE_DATABASE))
        objects, before, after = self.round_trip(SPLIT)
        # Every object came back where it was...
        self.assertEqual(after, before)
        self.assertEqual({alias for alias, table in after}, {"a", "b"})
        # ...and the dump is the one of the same objects on one database.
        self.assertEqual(objects, on_one_database)

    def dump_of(self, bindings):
        with override_bindings(bindings):
            install_models(MODELS)
            try:
                seed()
                dump = StringIO()
                call_command("dumpdata", APP, stdout=dump)
                return dump.getvalue()
            finally:
                drop_models(MODELS)

    def test_dumpdata_database_means_that_database(self):
        self.installed(SPLIT)
        seed()
        dump = StringIO()
        call_command("dumpdata", APP, database="b", stdout=dump)
        models = {obj["model"] for obj in json.loads(dump.getvalue())}
        self.assertEqual(
            models,
            {
                f"{APP}.{model}"
                for model in ["country", "profile", "book", "note", "pick", "shelf"]
            },
        )

    def test_loaddata_database_means_that_database(self):
        self.installed(SPLIT)
        fixture = self.fixture_file(
            json.dumps(
                [
                    {"model": f"{APP}.country", "pk": 1, "fields": {"name": "Peru"}},
                    {
                        "model": f"{APP}.author",
                        "pk": 1,
                        "fields": {"name": "Ann", "country": 1},
                    },
                ]
            )
        )
        out = StringIO()
        call_command("loaddata", fixture, database="b", stdout=out)
        # Author lives on 'a': not loaded, and 'a' is untouched.
        self.assertIn("Installed 1 object(s) (of 2) from 1 fixture(s)", out.getvalue())
        self.assertEqual((count("b", Country), count("a", Author)), (1, 0))
        self.assertEqual(Country.objects.get().name, "Peru")
        # Without --database each object goes to its model's database.
        out = StringIO()
        call_command("loaddata", fixture, stdout=out)
        self.assertIn("Installed 2 object(s) from 1 fixture(s)", out.getvalue())
        self.assertEqual((count("b", Country), count("a", Author)), (1, 1))
        self.assertEqual(Author.objects.get().country.name, "Peru")

    def test_loaddata_database_skips_natural_keys_of_other_databases(self):
        # auth bound to 'a': loading into 'default' skips the group and the
        # user, whose groups, named by natural key, aren't looked for there.
        fixture = self.fixture_file(
            json.dumps(
                [
                    {"model": "auth.group", "pk": 1, "fields": {"name": "editors"}},
                    {
                        "model": "auth.user",
                        "pk": 1,
                        "fields": {
                            "username": "ann",
                            "password": "!",
                            "groups": [["editors"]],
                        },
                    },
                ]
            )
        )
        with override_bindings({"auth": "a"}):
            out = StringIO()
            call_command("loaddata", fixture, database="default", stdout=out)
            self.assertIn("Installed 0 object(s) (of 2)", out.getvalue())
            call_command("loaddata", fixture, database="a", verbosity=0)
            self.assertEqual(
                list(User.objects.values_list("username", "groups__name")),
                [("ann", "editors")],
            )
        self.assertEqual(
            (Group.objects.using("default").count(), Group.objects.using("a").count()),
            (0, 1),
        )

    def test_failed_load_changes_no_database(self):
        self.installed(SPLIT)
        fixture = self.fixture_file(
            json.dumps(
                [
                    {"model": f"{APP}.country", "pk": 1, "fields": {"name": "Peru"}},
                    {"model": f"{APP}.author", "pk": 1, "fields": {"name": "Ann"}},
                    {
                        "model": f"{APP}.book",
                        "pk": 1,
                        "fields": {"title": "T", "pages": None, "author": 1},
                    },
                ]
            )
        )
        with self.assertRaisesMessage(Exception, "Could not load"):
            call_command("loaddata", fixture, verbosity=0)
        self.assertEqual(
            (count("b", Country), count("a", Author), count("b", Book)), (0, 0, 0)
        )
        for alias in self.databases:
            self.assertFalse(connections[alias].in_atomic_block, alias)


class FlushTests(TransactionTestCase):
    """
    The managed models of the model_binding app: Artist on 'a', Widget
    on 'b', Vehicle on default (flush leaves unmanaged tables alone).
    """

    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def setUp(self):
        Artist.objects.create(name="Ann")
        Widget.objects.create(code="w1", weight=1)
        Vehicle.objects.create(make="Fiat", model="500", year=1957)

    def counts(self):
        return count("default", Vehicle), count("a", Artist), count("b", Widget)

    def test_flush_empties_every_bound_database(self):
        call_command("flush", interactive=False, verbosity=0)
        self.assertEqual(self.counts(), (0, 0, 0))

    def test_flush_database_means_that_database(self):
        call_command("flush", database="a", interactive=False, verbosity=0)
        self.assertEqual(self.counts(), (1, 0, 1))

    def test_flush_asks_for_each_database(self):
        prompts = []
        answers = iter(["no", "yes", "no"])

        def answer(prompt):
            prompts.append(prompt)
            return next(answers)

        out = StringIO()
        with mock.patch("builtins.input", answer):
            call_command("flush", stdout=out)
        # default and 'b' kept their rows, 'a' was flushed.
        self.assertEqual(out.getvalue().count("Flush cancelled."), 2)
        self.assertEqual(self.counts(), (1, 0, 1))
        names = [connections[alias].settings_dict["NAME"] for alias in "ab"]
        self.assertIn(f'"{names[0]}" database', prompts[1])
        self.assertIn(f'"{names[1]}" database', prompts[2])

    def test_sqlflush_names_each_database(self):
        out = StringIO()
        call_command("sqlflush", stdout=out)
        sql = out.getvalue()
        lines = sql.splitlines()
        for alias in ["default", "a", "b"]:
            self.assertIn(f"-- Database '{alias}'", lines)
        section = sql.split("-- Database 'a'")[1].split("-- Database 'b'")[0]
        self.assertIn(Artist._meta.db_table, section)
        self.assertNotIn(Widget._meta.db_table, section)
        # With --database, that database alone, as upstream prints it.
        out = StringIO()
        call_command("sqlflush", database="b", stdout=out)
        self.assertNotIn("-- Database", out.getvalue())
        self.assertIn(Widget._meta.db_table, out.getvalue())
        self.assertNotIn(Artist._meta.db_table, out.getvalue())

    def test_sqlsequencereset_follows_bindings(self):
        out, err = StringIO(), StringIO()
        call_command("sqlsequencereset", "model_binding", stdout=out, stderr=err)
        if connections["a"].vendor == "sqlite":
            # SQLite's sequences need no reset statements.
            self.assertEqual(err.getvalue().strip(), "No sequences found.")
            return
        sql = out.getvalue()
        sections = {
            alias: sql.split(f"-- Database '{alias}'")[1].split("-- Database")[0]
            for alias in ["default", "a", "b"]
        }
        self.assertIn(f'"{Vehicle._meta.db_table}"', sections["default"])
        self.assertIn(f'"{Artist._meta.db_table}"', sections["a"])
        self.assertIn(f'"{Widget._meta.db_table}"', sections["b"])
        self.assertNotIn(f'"{Widget._meta.db_table}"', sections["a"])
        out = StringIO()
        call_command("sqlsequencereset", "model_binding", database="a", stdout=out)
        self.assertNotIn("-- Database", out.getvalue())
        self.assertIn(f'"{Widget._meta.db_table}"', out.getvalue())


class UserCommandTests(CommandsTestCase):
    """auth moved to 'a' for the test: its tables exist on every database."""

    def setUp(self):
        from django.contrib.auth.models import User

        override = override_bindings({"auth": "a"})
        override.__enter__()
        self.addCleanup(override.__exit__, None, None, None)
        # changepassword reads the user model when it's first imported,
        # maybe while another test swapped it.
        patch = mock.patch.object(changepassword, "UserModel", User)
        patch.start()
        self.addCleanup(patch.stop)

    def users(self, alias):
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT username, is_superuser FROM auth_user")
            return cursor.fetchall()

    def test_createsuperuser_and_changepassword(self):
        from django.contrib.auth.models import User

        with mock.patch.dict(os.environ, {"DJANGO_SUPERUSER_PASSWORD": "s3cret!x"}):
            call_command(
                "createsuperuser",
                interactive=False,
                username="root",
                email="root@example.com",
                verbosity=0,
            )
        self.assertEqual(self.users("a"), [("root", True)])
        self.assertEqual(self.users("default"), [])
        with mock.patch.object(
            changepassword.Command, "_get_pass", return_value="n3w-pass!"
        ):
            out = StringIO()
            call_command("changepassword", "root", stdout=out)
        self.assertIn("Password changed successfully for user 'root'", out.getvalue())
        self.assertTrue(User.objects.get(username="root").check_password("n3w-pass!"))

    def test_bound_user_model_stays_on_its_database(self):
        # As with using(), a bound model stays on its database whatever
        # --database says: the user is found and changed on 'a'.
        from django.contrib.auth.models import User

        User.objects.create_user("ann", password="old-pass")
        with mock.patch.object(
            changepassword.Command, "_get_pass", return_value="n3w-pass!"
        ):
            call_command("changepassword", "ann", database="default", stdout=StringIO())
        self.assertTrue(User.objects.get(username="ann").check_password("n3w-pass!"))
        self.assertEqual(self.users("default"), [])


class MigrateAllDatabasesTests(TransactionTestCase):
    available_apps = ["model_binding", APP]
    databases = {"default", "a", "b", "p", "q"}

    def test_migrated_databases(self):
        out = StringIO()
        call_command("migrate", all_databases=True, stdout=out)
        lines = out.getvalue().splitlines()
        self.assertEqual(
            [line for line in lines if line.startswith("Database")],
            [f"Database '{alias}':" for alias in connections],
        )
        self.assertEqual(
            lines.count("  No migrations to apply."), len(list(connections))
        )

    def test_order_follows_relations(self):
        from django.db.models.crossdb import dependency_order

        with override_bindings({APP: "a", f"{APP}.Country": "b"}):
            # Author ('a') refers to Country ('b') and Note ('a') to
            # ContentType (default).
            self.assertEqual(dependency_order(["a", "b"]), ["b", "a"])
            self.assertEqual(
                dependency_order(["a", "b", "default"]), ["b", "default", "a"]
            )
        with override_bindings(SPLIT):
            # A cycle: Author ('a') refers to Country ('b'), Profile ('b') to
            # Author. The order given decides.
            self.assertEqual(dependency_order(["a", "b"]), ["a", "b"])
            self.assertEqual(dependency_order(["b", "a"]), ["b", "a"])
