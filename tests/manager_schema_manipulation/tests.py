import doctest
import io
import os
import re
import sqlite3
import tempfile
from unittest import mock, skipUnless

from django.core import management
from django.db import DatabaseError, IntegrityError, connections, models, transaction
from django.db.models import crossdb, ddl, tenancy
from django.db.models.binding import override_bindings
from django.db.models.ddl import (
    BoundStatement,
    SchemaError,
    drop_models,
    install_models,
    run_statements,
)
from django.db.transaction import TransactionManagementError
from django.test import TransactionTestCase, skipIfDBFeature, skipUnlessDBFeature
from django.test.utils import isolate_apps, override_settings
from django.utils.connection import ConnectionDoesNotExist

from .models import DA, PA, PB, PC, QA, QB, QC, QD

ALL_MODELS = [DA, PA, PB, PC, QA, QB, QC, QD]


def tables(alias):
    return set(connections[alias].introspection.table_names())


def quoted(name):
    """name quoted as the test databases quote it."""
    return connections["q"].ops.quote_name(name)


class SchemaTestCase(TransactionTestCase):
    """Each test starts and ends with none of the app's tables."""

    available_apps = ["manager_schema_manipulation"]
    databases = "__all__"

    def setUp(self):
        drop_models(ALL_MODELS, missing_ok=True)

    def tearDown(self):
        drop_models(ALL_MODELS, missing_ok=True)
        super().tearDown()


class NarrativeTests(SchemaTestCase):
    def test_schema(self):
        if connections["q"].vendor == "mysql":
            self.skipTest("The narrative shows the SQL of PostgreSQL and SQLite.")
        result = doctest.testfile(
            os.path.join(os.path.dirname(__file__), "schema.txt"),
            module_relative=False,
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        )
        self.assertGreater(result.attempted, 0)
        self.assertEqual(result.failed, 0, "ddl.txt: see the doctest output above")


class BoundStatementTests(SchemaTestCase):
    def test_api(self):
        statement = BoundStatement("SELECT %s", [1], connections["q"])
        self.assertEqual(repr(statement), "BoundStatement('SELECT %s')")
        self.assertEqual(str(statement), "SELECT %s")
        self.assertEqual(statement.params, (1,))
        self.assertIs(statement.connection, connections["q"])
        self.assertEqual(statement, BoundStatement("SELECT %s", (1,), connections["q"]))
        self.assertNotEqual(
            statement, BoundStatement("SELECT %s", [1], connections["p"])
        )
        self.assertNotEqual(
            statement, BoundStatement("SELECT %s", [2], connections["q"])
        )
        self.assertEqual(
            len({statement, BoundStatement("SELECT %s", [1], connections["q"])}), 1
        )
        statement.execute()


class InstallTests(SchemaTestCase):
    def test_install_runs_on_the_model_database_only(self):
        executed, pending = QA.objects.install()
        self.assertEqual(pending, [])
        self.assertEqual({s.connection.alias for s in executed}, {"q"})
        for alias in connections:
            self.assertIs(QA._meta.db_table in tables(alias), alias == "q")
        executed, pending = DA.objects.install()
        self.assertIn(DA._meta.db_table, tables("default"))

    def test_second_install_is_refused_and_changes_nothing(self):
        QA.objects.install()
        QA.objects.create(name="kept")
        msg = "Table 'manager_schema_manipulation_qa' already exists in database 'q'."
        with self.assertRaisesMessage(SchemaError, msg):
            QA.objects.install()
        self.assertEqual(QA.objects.get().name, "kept")
        self.assertEqual(QA.objects.install(exists_ok=True), ([], []))

    @skipUnlessDBFeature("can_rollback_ddl")
    def test_install_inside_a_transaction(self):
        with transaction.atomic(using="q"):
            QA.objects.install()
            QA.objects.create(name="inside")
        self.assertEqual(QA.objects.get().name, "inside")
        with self.assertRaises(ValueError):
            with transaction.atomic(using="q"):
                QB.objects.install()
                raise ValueError
        self.assertNotIn(QB._meta.db_table, tables("q"))

    @skipIfDBFeature("can_rollback_ddl")
    def test_inside_a_transaction_is_refused(self):
        msg = (
            "Executing DDL statements while in a transaction on databases that "
            "can't perform a rollback is prohibited."
        )
        with transaction.atomic(using="q"):
            with self.assertRaisesMessage(TransactionManagementError, msg):
                QA.objects.install()
            with self.assertRaisesMessage(TransactionManagementError, msg):
                install_models([QA])
        self.assertNotIn(QA._meta.db_table, tables("q"))
        QA.objects.install()
        with transaction.atomic(using="q"):
            with self.assertRaisesMessage(TransactionManagementError, msg):
                QA.objects.drop()
        self.assertIn(QA._meta.db_table, tables("q"))

    def test_sql_only_runs_nothing(self):
        executed, pending = QD.objects.install(sql_only=True)
        self.assertTrue(
            executed[0].sql.startswith(f"CREATE TABLE {quoted(QD._meta.db_table)}")
        )
        self.assertTrue(pending)
        self.assertNotIn(QD._meta.db_table, tables("q"))

    def test_pending_foreign_keys_complete_a_cycle(self):
        pending = [s for model in (PA, PB, PC) for s in model.objects.install()[1]]
        # SQLite accepts a foreign key to a table that doesn't exist yet.
        self.assertEqual(len(pending), 0 if connections["p"].vendor == "sqlite" else 1)
        for statement in pending:
            statement.execute()
        a = PA.objects.create(name="a")
        a.c = PC.objects.create(name="c", b=PB.objects.create(name="b", a=a))
        a.save()
        with self.assertRaises(IntegrityError):
            with transaction.atomic(using="p"):
                PA.objects.create(name="dangling", c_id=9999)
        self.assertQuerySetEqual(PA.objects.values_list("name", flat=True), ["a"])

    def test_db_manager_of_a_bound_model_installs_on_its_database(self):
        QA.objects.db_manager("p").install()
        self.assertIn(QA._meta.db_table, tables("q"))
        self.assertNotIn(QA._meta.db_table, tables("p"))
        QA.objects.db_manager("p").drop()
        self.assertNotIn(QA._meta.db_table, tables("q"))

    def test_override_bindings_installs_elsewhere(self):
        with override_bindings({"manager_schema_manipulation.QA": "p"}):
            QA.objects.install()
            self.assertIn(QA._meta.db_table, tables("p"))
            self.assertNotIn(QA._meta.db_table, tables("q"))
            QA.objects.drop()
        self.assertNotIn(QA._meta.db_table, tables("p"))

    def test_initial_data(self):
        QA.objects.install(initial_data=True)
        self.assertEqual(
            list(QA.objects.order_by("pk").values_list("name", flat=True)),
            ["initial", "data"],
        )
        QB.objects.install()  # Deleting QAs cascades to QB.
        QA.objects.all().delete()
        self.assertEqual(QA.objects.load_initial_data(), 2)
        self.assertEqual(QA.objects.count(), 2)


class DropTests(SchemaTestCase):
    def test_drop_removes_foreign_keys_pointing_at_the_table_first(self):
        install_models([QA, QB])
        statements = QA.objects.drop()
        sql = [s.sql for s in statements]
        if connections["q"].vendor == "sqlite":
            # SQLite can't drop a constraint; dropping the table is enough.
            self.assertEqual(len(sql), 1)
        else:
            self.assertEqual(len(sql), 2)
            self.assertIn(f"ALTER TABLE {quoted(QB._meta.db_table)} DROP", sql[0])
            # QB no longer depends on QA.
            QB.objects.create(name="orphan", a_id=12345)
        self.assertTrue(sql[-1].startswith(f"DROP TABLE {quoted(QA._meta.db_table)}"))
        self.assertEqual(tables("q") & {QA._meta.db_table}, set())

    def test_drop_missing(self):
        msg = "Table 'manager_schema_manipulation_qa' doesn't exist in database 'q'."
        with self.assertRaisesMessage(SchemaError, msg):
            QA.objects.drop()
        self.assertEqual(QA.objects.drop(missing_ok=True), [])

    def test_drop_sql_only(self):
        QA.objects.install()
        statements = QA.objects.drop(sql_only=True)
        self.assertEqual(len(statements), 1)
        self.assertIn(QA._meta.db_table, tables("q"))


class ColumnTests(SchemaTestCase):
    def columns(self):
        with connections["q"].cursor() as cursor:
            return [
                c.name
                for c in connections["q"].introspection.get_table_description(
                    cursor, QB._meta.db_table
                )
            ]

    def test_drop_and_add_column(self):
        install_models([QA, QB])
        executed = QB.objects.drop_column("name")
        self.assertTrue(executed)
        self.assertEqual({s.connection.alias for s in executed}, {"q"})
        self.assertNotIn("name", self.columns())
        msg = (
            "Column 'name' of 'manager_schema_manipulation_qb' doesn't exist in "
            "database 'q'."
        )
        with self.assertRaisesMessage(SchemaError, msg):
            QB.objects.drop_column("name")
        executed = QB.objects.add_column(QB._meta.get_field("name"))
        self.assertTrue(executed)
        self.assertIn("name", self.columns())
        msg = (
            "Column 'name' of 'manager_schema_manipulation_qb' already exists in "
            "database 'q'."
        )
        with self.assertRaisesMessage(SchemaError, msg):
            QB.objects.add_column("name")
        QB.objects.create(name="works", a=QA.objects.create(name="a"))

    def test_foreign_key_column(self):
        install_models([QA, QB])
        QB.objects.drop_column("a")
        self.assertNotIn("a_id", self.columns())
        QB.objects.add_column("a")
        self.assertIn("a_id", self.columns())

    def test_sql_only(self):
        install_models([QA, QB])
        statements = QB.objects.drop_column("name", sql_only=True)
        self.assertTrue(statements)
        self.assertIn("name", self.columns())

    def test_sql_only_returns_what_runs(self):
        # On SQLite, dropping a foreign key's column remakes the table.
        install_models([QA, QB])
        for column, field in (("name", "name"), ("a_id", "a")):
            with self.subTest(field=field):
                planned = QB.objects.drop_column(field, sql_only=True)
                self.assertIn(column, self.columns())
                self.assertEqual(QB.objects.drop_column(field), planned)
                self.assertNotIn(column, self.columns())
                planned = QB.objects.add_column(field, sql_only=True)
                self.assertNotIn(column, self.columns())
                self.assertEqual(QB.objects.add_column(field), planned)
                self.assertIn(column, self.columns())

    def test_add_not_null_column_to_a_table_with_rows(self):
        install_models([QA, QB])
        QB.objects.drop_column("name")
        # A row written without the model, which has the column still.
        qa = QA.objects.create(name="a")
        with connections["q"].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quoted(QB._meta.db_table)} ({quoted('a_id')}) "
                f"VALUES (%s)",
                [qa.pk],
            )
        before = self.columns()
        msg = (
            "Column 'name' can't be added to 'manager_schema_manipulation_qb' in "
            "database 'q': it's NOT NULL without a default, and the table has "
            "rows, which would have no value for it. Give "
            "manager_schema_manipulation.QB.name a default or db_default, or "
            "null=True, then add it. Nothing was changed."
        )
        with self.assertRaisesMessage(SchemaError, msg):
            QB.objects.add_column("name")
        self.assertEqual(self.columns(), before)
        self.assertIs(connections["q"].in_atomic_block, False)
        # Empty, the table takes the column.
        with connections["q"].cursor() as cursor:
            cursor.execute(f"DELETE FROM {quoted(QB._meta.db_table)}")
        QB.objects.add_column("name")
        self.assertIn("name", self.columns())

    def test_unknown_field(self):
        QA.objects.install()
        with self.assertRaisesMessage(Exception, "QA has no field named 'nope'"):
            QA.objects.add_column("nope")


class UnmanagedIndexTests(SchemaTestCase):
    def test_indexes_of_an_unmanaged_model_are_created(self):
        # Migrations leave unmanaged models alone; install() is a request.
        install_models([QA, QB])
        with connections["q"].cursor() as cursor:
            constraints = connections["q"].introspection.get_constraints(
                cursor, QB._meta.db_table
            )
        indexed = [c["columns"] for c in constraints.values() if c["index"]]
        self.assertIn(["a_id"], indexed)


class BuiltStatementsTests(SchemaTestCase):
    """
    A model's statements are built once per backend and state of the model,
    then reused: installing the same models in many databases (a database
    per tenant) doesn't build them again.
    """

    def setUp(self):
        super().setUp()
        ddl._built.clear()
        ddl._built_sets.clear()

    def sql(self, statements):
        return [statement.sql for statement in statements]

    def test_installs_in_two_databases_build_once(self):
        # 'p' and 'default' are on the same server with every backend here.
        installed = {}
        for alias in ("p", "default"):
            with override_bindings({"manager_schema_manipulation": alias}):
                installed[alias] = install_models([QA, QB])[alias]
                self.assertEqual(QB.objects.count(), 0)
                drop_models([QA, QB])
        self.assertEqual(self.sql(installed["default"]), self.sql(installed["p"]))
        self.assertEqual({s.connection.alias for s in installed["p"]}, {"p"})
        self.assertEqual((len(ddl._built[QA]), len(ddl._built[QB])), (1, 1))
        self.assertEqual(len(ddl._built_sets), 1)
        # Another server may differ (its version, its settings): on
        # PostgreSQL, 'q' is on another server than 'p'.
        other = ddl._backend_key(connections["q"])
        same = other == ddl._backend_key(connections["p"])
        install_models([QA, QB])
        self.assertEqual(len(ddl._built_sets), 1 if same else 2)

    def test_a_changed_model_is_built_again(self):
        first, _ = QA.objects.install(sql_only=True)
        table = QA._meta.db_table
        try:
            QA._meta.db_table = "renamed_qa"
            renamed, _ = QA.objects.install(sql_only=True)
        finally:
            QA._meta.db_table = table
        self.assertIn(quoted("renamed_qa"), renamed[0].sql)
        self.assertEqual(
            self.sql(QA.objects.install(sql_only=True)[0]), self.sql(first)
        )
        with override_settings(DEFAULT_INDEX_TABLESPACE="elsewhere"):
            QA.objects.install(sql_only=True)
        self.assertEqual(len(ddl._built[QA]), 3)

    def test_a_field_added_at_run_time(self):
        @isolate_apps("manager_schema_manipulation")
        def make_model():
            class Grows(models.Model):
                name = models.CharField(max_length=20)

                class Meta:
                    db_connection = "q"
                    managed = False

            return Grows

        Grows = make_model()
        before, _ = Grows.objects.install(sql_only=True)
        Grows.add_to_class("extra", models.IntegerField(null=True))
        after, _ = Grows.objects.install(sql_only=True)
        self.assertNotIn(quoted("extra"), " ".join(self.sql(before)))
        self.assertIn(quoted("extra"), " ".join(self.sql(after)))

    def test_statements_go_to_their_table(self):
        @isolate_apps("manager_schema_manipulation")
        def make_model():
            class Tag(models.Model):
                class Meta:
                    db_connection = "q"

            class Tagged(models.Model):
                title = models.CharField(
                    max_length=20, db_default="50% 'off'", db_comment="The title"
                )
                tags = models.ManyToManyField(Tag, related_name="+")
                others = models.ManyToManyField(Tag, related_name="+")

                class Meta:
                    db_connection = "q"
                    db_table_comment = "Tagged things"

            return Tag, Tagged

        Tag, Tagged = make_model()
        connection = connections["q"]
        main, *throughs = ddl.create_table_sql(Tagged, connection)
        names = [Tagged._meta.db_table] + [
            field.m2m_db_table() for field in Tagged._meta.local_many_to_many
        ]
        self.assertEqual(
            [table.model._meta.db_table for table in [main, *throughs]], names
        )
        self.assertEqual(len(throughs), 2)

        def first_table(sql):
            found = [(sql.find(quoted(name)), name) for name in names]
            return min((at, name) for at, name in found if at >= 0)[1]

        for table, name in zip([main, *throughs], names):
            with self.subTest(table=name):
                self.assertTrue(
                    table.create[0].sql.startswith(f"CREATE TABLE {quoted(name)}")
                )
                for statement in table.statements():
                    self.assertEqual(first_table(statement.sql), name, statement.sql)
        if connection.features.supports_comments:
            self.assertIn("Tagged things", " ".join(self.sql(main.create)))
        # The default, with its quote and percent sign, was quoted by the
        # backend: the table gives it back.
        install_models([Tag, Tagged])
        try:
            self.assertEqual(Tagged.objects.create().title, "50% 'off'")
            Tagged.objects.get().tags.add(Tag.objects.create())
            self.assertEqual(Tagged.objects.get().tags.count(), 1)
        finally:
            drop_models([Tag, Tagged])

    def test_a_relation_that_starts_crossing_databases(self):
        def references(statements):
            return any("REFERENCES" in sql for sql in self.sql(statements))

        QA.objects.install()
        self.assertTrue(references(QB.objects.install(sql_only=True)[0]))
        with override_bindings({"manager_schema_manipulation.QB": "p"}):
            crossing, _ = QB.objects.install(sql_only=True)
        self.assertFalse(references(crossing))
        self.assertTrue(references(QB.objects.install(sql_only=True)[0]))


class AllAtOnceTests(SchemaTestCase):
    def test_install_models_in_any_order_with_cycles(self):
        result = install_models(list(reversed(ALL_MODELS)))
        self.assertEqual(sorted(result), ["default", "p", "q"])
        for model in ALL_MODELS:
            self.assertIn(
                model._meta.db_table, tables(model._meta.db_connection or "default")
            )
        a = PA.objects.create(name="a")
        a.c = PC.objects.create(name="c", b=PB.objects.create(name="b", a=a))
        a.save()
        QD.objects.create(name="d").qcs.add(QC.objects.create(name="c"))
        with self.assertRaisesMessage(SchemaError, "already exist in database"):
            install_models([QA])
        self.assertEqual(
            install_models(ALL_MODELS, exists_ok=True),
            {"default": [], "p": [], "q": []},
        )
        result = drop_models(ALL_MODELS)
        for model in ALL_MODELS:
            self.assertNotIn(
                model._meta.db_table, tables(model._meta.db_connection or "default")
            )

    def failing_statements(self):
        connection = connections["q"]
        return [
            BoundStatement(
                f"CREATE TABLE {quoted('multidb_tmp')} ({quoted('id')} integer)",
                None,
                connection,
            ),
            BoundStatement("THIS IS NOT SQL", None, connection),
        ]

    @skipUnlessDBFeature("can_rollback_ddl")
    def test_failure_leaves_the_database_as_it_was(self):
        with self.assertRaises(DatabaseError):
            run_statements(connections["q"], self.failing_statements())
        self.assertNotIn("multidb_tmp", tables("q"))

    @skipIfDBFeature("can_rollback_ddl")
    def test_failure_lists_what_ran(self):
        statements = self.failing_statements()
        msg = (
            f"THIS IS NOT SQL failed on database 'q' (...). "
            f"{connections['q'].display_name} can't roll back DDL; what ran:\n"
            f"  {statements[0]}"
        )
        try:
            with self.assertRaises(SchemaError) as caught:
                run_statements(connections["q"], statements)
            self.assertEqual(re.sub(r"\(\(.*\)\)", "(...)", str(caught.exception)), msg)
            self.assertIn("multidb_tmp", tables("q"))
        finally:
            with connections["q"].cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {quoted('multidb_tmp')}")

    def test_management_commands(self):
        out = io.StringIO()
        management.call_command(
            "sqlinstall", "manager_schema_manipulation.QA", stdout=out
        )
        self.assertIn("-- Database 'q'", out.getvalue())
        self.assertIn(f"CREATE TABLE {quoted(QA._meta.db_table)}", out.getvalue())
        self.assertNotIn(QA._meta.db_table, tables("q"))
        out = io.StringIO()
        management.call_command(
            "installmodels", "manager_schema_manipulation", stdout=out
        )
        self.assertIn("statement(s) on database 'p'", out.getvalue())
        self.assertIn(PA._meta.db_table, tables("p"))
        # sqlinstall only prints: tables that exist make no difference.
        out = io.StringIO()
        management.call_command(
            "sqlinstall", "manager_schema_manipulation.PA", stdout=out
        )
        self.assertIn(f"CREATE TABLE {quoted(PA._meta.db_table)}", out.getvalue())
        with self.assertRaisesMessage(
            management.CommandError, "No installed app with label 'nope'"
        ):
            management.call_command("sqlinstall", "nope")


class RefusalTests(SchemaTestCase):
    """Each refusal comes before anything runs, and changes nothing."""

    def assertConnectionClean(self, alias="q"):
        connection = connections[alias]
        self.assertFalse(connection.in_atomic_block)
        self.assertTrue(connection.get_autocommit())

    def test_drop_primary_key_column(self):
        install_models([QA, QB])
        before = tables("q")
        msg = "manager_schema_manipulation.QA.id is the primary key"
        with self.assertRaisesMessage(SchemaError, msg):
            QA.objects.drop_column("id")
        with self.assertRaisesMessage(SchemaError, msg):
            QA.objects.drop_column("id", sql_only=True)
        self.assertEqual(tables("q"), before)
        self.assertConnectionClean()
        # QB's foreign key to QA is still there.
        with connections["q"].cursor() as cursor:
            constraints = connections["q"].introspection.get_constraints(
                cursor, QB._meta.db_table
            )
        self.assertTrue(any(c["foreign_key"] for c in constraints.values()))
        # Writes after the refusal are committed, not lost on close.
        a = QA.objects.create(name="one")
        QB.objects.create(name="two", a=a)
        connections["q"].close()
        self.assertEqual((QA.objects.count(), QB.objects.count()), (1, 1))

    @isolate_apps("manager_schema_manipulation")
    def test_drop_column_another_table_refers_to(self):
        class Code(models.Model):
            code = models.CharField(max_length=5, unique=True)

            class Meta:
                app_label = "manager_schema_manipulation"
                db_connection = "q"

        class Use(models.Model):
            code = models.ForeignKey(Code, models.CASCADE, to_field="code")

            class Meta:
                app_label = "manager_schema_manipulation"
                db_connection = "q"

        install_models([Code, Use])
        self.addCleanup(drop_models, [Code, Use], missing_ok=True)
        msg = "manager_schema_manipulation.Use.code refers to"
        with self.assertRaisesMessage(SchemaError, msg):
            Code.objects.drop_column("code")
        self.assertConnectionClean()
        Use.objects.create(code=Code.objects.create(code="x"))
        self.assertEqual(Use.objects.get().code_id, "x")

    @skipUnless(connections["q"].vendor == "sqlite", "SQLite's schema editor")
    def test_failed_schema_editor_leaves_the_connection_as_it_was(self):
        # A table the models don't know refers to a column that is dropped:
        # SQLite's schema editor fails while it exits, when it checks foreign
        # keys, and leaves its transaction open and foreign keys off.
        install_models([QA, QB])
        with connections["q"].cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE {quoted('multidb_ext')} (x varchar(20) REFERENCES "
                f"{quoted(QB._meta.db_table)} ({quoted('name')}))"
            )
        self.addCleanup(self.drop_ext)
        with self.assertRaisesMessage(DatabaseError, "foreign key mismatch"):
            QB.objects.drop_column("name")
        self.assertIn("name", ColumnTests.columns(self))
        self.assertConnectionClean()
        # Nor does the failed editor decide the next tables' constraints.
        self.assertIsNone(crossdb.editing_alias())
        with connections["q"].cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys")
            self.assertEqual(cursor.fetchone()[0], 1)
        a = QA.objects.create(name="one")
        QA.objects.create(name="two")
        connections["q"].close()
        self.assertEqual(QA.objects.filter(pk__gte=a.pk).count(), 2)

    def drop_ext(self):
        with connections["q"].cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {quoted('multidb_ext')}")

    def test_models_without_a_table_of_their_own(self):
        @isolate_apps("manager_schema_manipulation")
        def make_models():
            class Base(models.Model):
                class Meta:
                    abstract = True
                    app_label = "manager_schema_manipulation"

            class Proxy(QA):
                class Meta:
                    proxy = True
                    app_label = "manager_schema_manipulation"

            class Stray(models.Model):
                class Meta:
                    app_label = "not_installed_anywhere"
                    db_connection = "q"

            return Base, Proxy, Stray

        Base, Proxy, Stray = make_models()
        before = {alias: tables(alias) for alias in ("default", "p", "q")}
        cases = [
            (Base, "manager_schema_manipulation.Base is abstract"),
            (Proxy, "manager_schema_manipulation.Proxy is a proxy model"),
            (Stray, "belongs to the app 'not_installed_anywhere', which isn't"),
        ]
        for model, msg in cases:
            with self.subTest(model=model):
                for call in (
                    lambda: install_models([QA, model]),
                    lambda: install_models([model, QA], sql_only=True),
                    lambda: drop_models([QA, model], missing_ok=True),
                    lambda: ddl.install(model),
                ):
                    with self.assertRaisesMessage(SchemaError, msg):
                        call()
        with override_settings(AUTH_USER_MODEL="manager_schema_manipulation.QA"):
            from django.contrib.auth.models import User

            with self.assertRaisesMessage(SchemaError, "has been swapped for"):
                install_models([QA, User])
        with self.assertRaisesMessage(TypeError, "isn't a model"):
            install_models([QA, "manager_schema_manipulation.QA"])
        self.assertEqual(
            {alias: tables(alias) for alias in ("default", "p", "q")}, before
        )

    def test_add_column_of_a_field_not_on_the_model(self):
        QA.objects.install()
        field = models.CharField(max_length=5)
        with self.assertRaisesMessage(ValueError, "isn't a field of"):
            QA.objects.add_column(field)
        with self.assertRaisesMessage(ValueError, "isn't a field of"):
            QA.objects.add_column(QB._meta.get_field("name"))
        self.assertConnectionClean()

    @skipUnless(connections["q"].vendor == "postgresql", "PostgreSQL's CASCADE")
    def test_second_order_injection_in_drop(self):
        # A table whose name, read back by drop(), would end the quoted name
        # and run SQL of its own.
        from django.db.backends.postgresql.psycopg_any import sql

        QA.objects.install()
        hostile = 'x" DROP CONSTRAINT IF EXISTS "nope"; DROP TABLE victim; --'
        connection = connections["q"]
        connection.ensure_connection()
        raw = connection.connection
        statements = [
            sql.SQL("CREATE TABLE victim (i int)"),
            sql.SQL("CREATE TABLE {} (a int REFERENCES {} (id))").format(
                sql.Identifier(hostile), sql.Identifier(QA._meta.db_table)
            ),
        ]
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement.as_string(raw))

        def cleanup():
            with connection.cursor() as cursor:
                for name in (hostile, "victim"):
                    cursor.execute(
                        sql.SQL("DROP TABLE IF EXISTS {}")
                        .format(sql.Identifier(name))
                        .as_string(raw)
                    )

        try:
            with self.assertRaisesMessage(SchemaError, "can't be quoted safely"):
                QA.objects.drop()
            self.assertTrue({"victim", hostile, QA._meta.db_table} <= tables("q"))
            self.assertConnectionClean()
        finally:
            # Before tearDown, which drops QA too.
            cleanup()


class TenantTestCase(TransactionTestCase):
    """A test that adds the database 'tenant', an SQLite file."""

    available_apps = ["manager_schema_manipulation"]
    databases = {"default", "q"}

    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.path = os.path.join(directory.name, "tenant.sqlite3")
        self.settings = {"ENGINE": "django.db.backends.sqlite3", "NAME": self.path}
        # The test framework lets a test use the databases it declares.
        allowed = mock.patch.object(
            type(self), "databases", {*self.databases, "tenant"}
        )
        allowed.start()
        self.addCleanup(allowed.stop)

    def tearDown(self):
        if "tenant" in connections.settings:
            connections.remove("tenant")
        super().tearDown()

    def file_tables(self):
        with sqlite3.connect(self.path) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            # Not SQLite's own (sqlite_sequence).
            return {row[0] for row in rows if not row[0].startswith("sqlite_")}


class TenantDatabaseTests(TenantTestCase):
    """add_database() and remove_database(): a database per tenant."""

    def test_add_use_and_remove(self):
        app = "manager_schema_manipulation"
        statements = tenancy.add_database("tenant", self.settings, [app])
        self.assertEqual(list(statements), ["tenant"])
        self.assertLessEqual({m._meta.db_table for m in ALL_MODELS}, self.file_tables())
        with override_bindings({app: "tenant"}):
            QA.objects.create(name="only here")
        with sqlite3.connect(self.path) as db:
            rows = db.execute(f"SELECT name FROM {quoted(QA._meta.db_table)}")
            self.assertEqual(list(rows), [("only here",)])
        self.assertNotIn(QA._meta.db_table, tables("q"))
        tenancy.remove_database("tenant", [app])
        self.assertEqual(self.file_tables(), set())
        with self.assertRaisesMessage(ConnectionDoesNotExist, "'tenant' doesn't"):
            connections["tenant"]

    def test_add_again_after_a_restart(self):
        # A process that starts adds the tenants it serves, whose tables exist.
        app = "manager_schema_manipulation"
        tenancy.add_database("tenant", self.settings, [app])
        with override_bindings({app: "tenant"}):
            QA.objects.create(name="kept")
        tenancy.remove_database("tenant", [app], drop=False)
        with self.assertRaisesMessage(SchemaError, "already exist in database"):
            tenancy.add_database("tenant", self.settings, [app])
        self.assertNotIn("tenant", connections.settings)
        self.assertEqual(
            tenancy.add_database("tenant", self.settings, [app], exists_ok=True),
            {"tenant": []},
        )
        with override_bindings({app: "tenant"}):
            self.assertEqual([qa.name for qa in QA.objects.all()], ["kept"])

    def test_unknown_app_changes_nothing(self):
        msg = "'nope' isn't the label of an installed app"
        with self.assertRaisesMessage(SchemaError, msg):
            tenancy.add_database("tenant", self.settings, ["nope"])
        self.assertNotIn("tenant", connections.settings)
        self.assertFalse(os.path.exists(self.path))
        with self.assertRaisesMessage(TypeError, "not a string"):
            tenancy.add_database("tenant", self.settings, "manager_schema_manipulation")
        self.assertNotIn("tenant", connections.settings)

    def test_existing_alias_changes_nothing(self):
        msg = "The connection 'q' already exists."
        with self.assertRaisesMessage(ValueError, msg):
            tenancy.add_database("q", self.settings, ["manager_schema_manipulation"])
        self.assertFalse(os.path.exists(self.path))
        self.assertNotIn(QA._meta.db_table, tables("q"))

    def test_failed_install_removes_the_alias(self):
        with sqlite3.connect(self.path) as db:
            db.execute(f"CREATE TABLE {quoted(QA._meta.db_table)} (x int)")
        msg = "already exist in database 'tenant'."
        with self.assertRaisesMessage(SchemaError, msg):
            tenancy.add_database(
                "tenant", self.settings, ["manager_schema_manipulation"]
            )
        self.assertNotIn("tenant", connections.settings)
        self.assertEqual(self.file_tables(), {QA._meta.db_table})

    def test_remove_with_an_open_transaction_changes_nothing(self):
        app = "manager_schema_manipulation"
        tenancy.add_database("tenant", self.settings, [app])
        before = self.file_tables()
        msg = (
            "The database 'tenant' can't be removed while a transaction is open "
            "on it: commit or roll it back first. Nothing was changed."
        )
        with transaction.atomic(using="tenant"):
            with self.assertRaisesMessage(TransactionManagementError, msg):
                tenancy.remove_database("tenant", [app])
        self.assertEqual(self.file_tables(), before)
        self.assertIn("tenant", connections.settings)
        with self.assertRaisesMessage(ConnectionDoesNotExist, "'elsewhere' doesn't"):
            tenancy.remove_database("elsewhere", [app])


class TenantMigrateTests(TenantTestCase):
    available_apps = None

    # runtests.py turns the migrations of contrib apps off.
    @override_settings(MIGRATION_MODULES={})
    def test_migrate(self):
        # Content types go with auth (permissions refer to them).
        apps = ["contenttypes", "auth"]
        tenancy.add_database("tenant", self.settings, apps, migrate=True)
        self.assertIn("django_content_type", self.file_tables())
        self.assertIn("auth_permission", self.file_tables())
        with override_bindings(dict.fromkeys(apps, "tenant")):
            from django.contrib.contenttypes.models import ContentType

            qa = ContentType.objects.get_for_model(QA)
            count = ContentType.objects.count()
        with sqlite3.connect(self.path) as db:
            rows = list(db.execute("SELECT id, model FROM django_content_type"))
        self.assertIn((qa.pk, "qa"), rows)
        self.assertEqual(len(rows), count)
