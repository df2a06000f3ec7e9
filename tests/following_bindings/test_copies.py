"""
Without the "*" entry of DATABASE_BINDINGS, migrate --all-databases installs
the tables of the models that nothing binds on every database, bound ones
included (multidb.W001 says so). Those copies must not break anything:

- a copy's foreign key to a model bound to another database gets no
  constraint, since the related table isn't there;
- code that names an instance's database for an unbound related model
  (ContentType.objects.db_manager(obj._state.db), as reusable apps do) reads
  and writes the rows that the bound model's relations read, on the unbound
  model's own database, not the copy.
"""

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connections
from django.db.migrations.state import ProjectState
from django.db.models import crossdb
from django.db.models.binding import override_bindings
from django.test import TransactionTestCase
from model_binding.models import Part, Vehicle, Widget
from relations_across_databases.models import Author, Book, Chapter, Country, Loan, Note
from relations_across_databases.tests import APP

from .test_commands import CommandsTestCase, count


def foreign_keys(alias, table):
    """{column: referenced table} of table's foreign key constraints on alias."""
    connection = connections[alias]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        constraint["columns"][0]: constraint["foreign_key"][0]
        for constraint in constraints.values()
        if constraint["foreign_key"]
    }


class CopyConstraintTests(TransactionTestCase):
    available_apps = ["model_binding", APP]
    databases = {"default", "a", "b"}

    def create(self, alias, *models):
        with connections[alias].schema_editor() as editor:
            for model in models:
                editor.create_model(model)
        self.addCleanup(self.drop, alias, models)

    def drop(self, alias, models):
        with connections[alias].schema_editor() as editor:
            for model in reversed(models):
                editor.delete_model(model)

    def test_copy_has_no_constraint_to_a_table_bound_elsewhere(self):
        # Book and Chapter aren't bound: their tables on 'a' are copies.
        # Author is bound to default, where Book lives too.
        with override_bindings({f"{APP}.Author": "default"}):
            self.assertIsNone(Book._meta.db_connection)
            self.create("a", Book, Chapter)
            self.create("default", Country, Author, Book)
        book = Book._meta.db_table
        author = Author._meta.db_table
        self.assertEqual(foreign_keys("a", book), {})
        self.assertEqual(foreign_keys("a", Chapter._meta.db_table), {"book_id": book})
        self.assertEqual(
            foreign_keys("default", book), {"author_id": author, "editor_id": author}
        )
        # Outside a schema editor, the field is as it was.
        self.assertIsNone(crossdb.editing_alias())
        with override_bindings({f"{APP}.Author": "default"}):
            self.assertIs(Book._meta.get_field("author").db_constraint, True)

    def test_copy_has_no_constraint_to_an_unbound_table_read_elsewhere(self):
        # Chapter, bound to 'a', relates to Book, which isn't bound: a query
        # of books naming 'a' reads them on default (as create_permissions()
        # reads content types, then writes permissions to a copy). Loan's
        # copy on 'a' refers to them there.
        with override_bindings({f"{APP}.Chapter": "a"}):
            self.create("a", Country, Author, Book, Loan)
        self.assertEqual(foreign_keys("a", Loan._meta.db_table), {})
        self.assertEqual(
            foreign_keys("a", Book._meta.db_table),
            {"author_id": Author._meta.db_table, "editor_id": Author._meta.db_table},
        )

    def test_install_builds_copies_the_same_way(self):
        with override_bindings({f"{APP}.Author": "default"}):
            Book.objects.db_manager("a").install()
            self.addCleanup(Book.objects.db_manager("a").drop)
            executed, pending = Book.objects.db_manager("default").install(
                sql_only=True
            )
        self.assertEqual(foreign_keys("a", Book._meta.db_table), {})
        # The statements built for 'a' aren't reused for default.
        sql = " ".join(statement.sql for statement in executed + pending)
        self.assertIn("REFERENCES", sql)

    def test_constraint_to_a_table_bound_to_the_same_database(self):
        # Part and Widget are bound to 'b'.
        self.assertEqual(
            foreign_keys("b", Part._meta.db_table),
            {"widget_id": Widget._meta.db_table},
        )


class NamedDatabaseTests(CommandsTestCase):
    """
    ContentType isn't bound; Note, bound to 'a' here, relates to it. The
    content type that Note's relation reads is the one that code naming a
    note's database finds.
    """

    def setUp(self):
        self.installed({APP: "a"})
        ContentType.objects.clear_cache()
        self.addCleanup(ContentType.objects.clear_cache)

    def test_unbound_model_named_with_a_bound_instance_database(self):
        ann = Author.objects.create(name="Ann")
        self.assertEqual(ann._state.db, "a")
        # The idiom of reusable apps: related rows on the instance's database.
        ct = ContentType.objects.db_manager(ann._state.db).get_for_model(Author)
        self.assertEqual(ct._state.db, "default")
        note = Note.objects.create(content_type=ct, object_id=ann.pk, text="hi")
        self.assertEqual(Note.objects.get(pk=note.pk).content_type, ct)
        self.assertEqual(note.content_object, ann)
        # Rows are written on default, not in the copy of the table on 'a'.
        copied = count("a", ContentType)
        ContentType.objects.db_manager("a").create(app_label=APP, model="other")
        self.assertTrue(ContentType.objects.filter(model="other").exists())
        self.assertEqual(count("a", ContentType), copied)

    def test_unbound_model_that_bound_models_dont_relate_to(self):
        # Nothing bound to 'a' relates to Vehicle: the database named, as
        # upstream.
        Vehicle.objects.using("a").create(make="Fiat", model="500", year=1957)
        self.assertEqual(
            [alias for alias in ["default", "a"] if count(alias, Vehicle)], ["a"]
        )
        Vehicle.objects.using("a").delete()

    def test_migrations_use_the_database_named(self):
        # A historical model changes the tables of the database it's given.
        state = ProjectState.from_apps(apps)
        historical = state.apps.get_model("contenttypes", "ContentType")
        with override_bindings({APP: "a"}):
            self.assertEqual(historical.objects.using("a").db, "a")
            self.assertEqual(ContentType.objects.using("a").db, "default")
            self.assertEqual(ContentType.objects.using("b").db, "b")
