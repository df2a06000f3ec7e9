#!/usr/bin/env python3
"""
The main job: build the drop-in ./django (scripts/series/vendor.py), then take a
guided tour of the fork on its embedded default, SQLite. A small project is
written to a temporary directory (removed at the end): three databases
('default', 'a', 'b'), an app bound in its models, one bound in the
settings, one whose tables are made by its managers. Each step prints the
code it runs, as you would type it, then what it gives and the database(s)
its queries went to.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
import textwrap
import traceback
from contextlib import ExitStack
from pathlib import Path

from _common import ROOT, ScriptError, run_main
from series.vendor import vendor

MODELS = {
    "music": """
from django.db import models


class Artist(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        db_connection = "a"  # Every query of Artist goes to 'a'.

    def __str__(self):
        return self.name


class Album(models.Model):  # Not bound: on 'default'.
    title = models.CharField(max_length=100)
    artist = models.ForeignKey(Artist, models.CASCADE)  # Across databases.
""",
    "shop": """
from django.db import models


class Order(models.Model):  # Bound by DATABASE_BINDINGS = {"shop": "b"}.
    album = models.ForeignKey("music.Album", models.PROTECT)
    quantity = models.PositiveIntegerField(default=1)
""",
    "catalog": """
from django.db import models


# No migrations: their managers make their tables, a foreign key cycle
# included.
class Author(models.Model):
    name = models.CharField(max_length=50)
    favourite = models.ForeignKey(
        "Book", models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        db_connection = "b"
        managed = False


class Book(models.Model):
    title = models.CharField(max_length=50)
    author = models.ForeignKey(Author, models.CASCADE)
    pages = models.IntegerField(null=True)

    class Meta:
        db_connection = "b"
        managed = False
""",
}

SETTINGS = """\
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "default.sqlite3"},
    "a": {"ENGINE": "django.db.backends.sqlite3", "NAME": "a.sqlite3"},
    "b": {"ENGINE": "django.db.backends.sqlite3", "NAME": "b.sqlite3"},
}
DATABASE_BINDINGS = {"shop": "b", "*": "default"}  # "*": whatever else.
INSTALLED_APPS = ["django.contrib.contenttypes", "music", "shop", "catalog"]"""


class Tour:
    """Runs steps in one namespace, printing each as an interactive session."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        # Steps that raised what they shouldn't have, or didn't raise.
        self.problems: list[str] = []

    def section(self, title: str, text: str = "") -> None:
        print(f"\n== {title}")
        if text:
            print(textwrap.fill(" ".join(text.split()), 79))

    def step(self, code: str, raises: str | None = None) -> None:
        """Run code; raises names the exception it's meant to end with."""
        code = textwrap.dedent(code).strip()
        lines = code.splitlines()
        print(f">>> {lines[0]}")
        for line in lines[1:]:
            print(f"... {line}")
        if len(lines) > 1 and lines[-1].startswith(" "):
            print("...")
        from django.db import connections
        from django.test.utils import CaptureQueriesContext

        captured = {}
        with ExitStack() as stack:
            for alias in list(connections):
                captured[alias] = stack.enter_context(
                    CaptureQueriesContext(connections[alias])
                )
            try:
                # As the interactive interpreter: one statement after the
                # other, the value of each expression shown.
                for statement in ast.parse(code).body:
                    if isinstance(statement, ast.Expr):
                        expression = ast.Expression(statement.value)
                        value = eval(
                            compile(expression, "<demo>", "eval"), self.namespace
                        )
                        if value is not None:
                            print(repr(value))
                    else:
                        module = ast.Module([statement], type_ignores=[])
                        exec(compile(module, "<demo>", "exec"), self.namespace)
            except Exception as exc:
                last = traceback.extract_tb(exc.__traceback__)[-1]
                print("Traceback (most recent call last):")
                print(f"  ... {Path(last.filename).name}, line {last.lineno}")
                print(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
                if type(exc).__name__ != raises:
                    self.problems.append(f"{lines[0]}: {type(exc).__name__}: {exc}")
            else:
                if raises:
                    self.problems.append(f"{lines[0]}: didn't raise {raises}")
        went = [
            f"'{alias}' ({len(context)})"
            for alias, context in captured.items()
            if len(context)
        ]
        if went:
            print(f"    # queries: {', '.join(went)}")


def write_project(directory: Path) -> None:
    for app, source in MODELS.items():
        package = directory / app
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "models.py").write_text(source.lstrip())
    (directory / "catalog" / "migrations").mkdir()
    (directory / "catalog" / "migrations" / "__init__.py").write_text("")


def configure(directory: Path) -> None:
    import django
    from django.conf import settings

    namespace: dict = {}
    exec(SETTINGS, namespace)
    for database in namespace["DATABASES"].values():
        database["NAME"] = str(directory / database["NAME"])
    settings.configure(
        DATABASES=namespace["DATABASES"],
        DATABASE_BINDINGS=namespace["DATABASE_BINDINGS"],
        INSTALLED_APPS=namespace["INSTALLED_APPS"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()


def tour_project(tour: Tour, directory: Path) -> None:
    tour.section(
        "The project",
        f"""Written to {directory}. settings.py has three SQLite databases and
        binds the shop app to 'b'; music binds Artist in its model; catalog's
        tables are made by its managers.""",
    )
    print(textwrap.indent(SETTINGS, "    "))
    for app, source in MODELS.items():
        print(f"\n    # {app}/models.py")
        print(textwrap.indent(source.strip(), "    "))
    tour.step("import django; django.get_version()")
    tour.step("django.VERSION")


def tour_migrate(tour: Tour) -> None:
    tour.section(
        "migrate follows the bindings",
        """makemigrations, then migrate --all-databases: each model's table is
        created on its own database only (contenttypes included: the "*"
        entry binds it to 'default').""",
    )
    tour.step("from django.core.management import call_command")
    tour.step("call_command('makemigrations', 'music', 'shop', verbosity=0)")
    tour.step("call_command('migrate', all_databases=True, verbosity=0)")
    tour.step(
        """
        from django.db import connections
        def tables(alias):
            names = connections[alias].introspection.table_names()
            return [n for n in names if not n.startswith("django_migrations")]
        """
    )
    tour.step("tables('default'), tables('a'), tables('b')")


def tour_checks(tour: Tour) -> None:
    tour.section(
        "The system checks",
        """A binding to a database that isn't configured is reported by
        manage.py check, before any query runs; so is a malformed setting.""",
    )
    tour.step("from django.core import checks")
    tour.step("from django.test.utils import override_settings")
    tour.step("checks.run_checks()")
    tour.step(
        """
        with override_settings(DATABASE_BINDINGS={"shop": "archive"}):
            for error in checks.run_checks():
                print(error.id, error.msg)
        """
    )
    tour.step(
        """
        with override_settings(DATABASE_BINDINGS={"shop": ["b"]}):
            for error in checks.run_checks():
                print(error.id, error.msg)
        """
    )


def tour_queries(tour: Tour) -> None:
    tour.section(
        "Reads and writes go where the model lives",
        """No router: Artist's queries go to 'a', Album's to 'default',
        Order's to 'b'. The binding wins even over a database the code names,
        so that reusable apps passing using= find bound models where they
        are.""",
    )
    tour.step("from music.models import Album, Artist")
    tour.step("from shop.models import Order")
    tour.step("nina = Artist.objects.create(name='Nina Simone')")
    tour.step("pastel = Album.objects.create(title='Pastel Blues', artist=nina)")
    tour.step("order = Order.objects.create(album=pastel, quantity=2)")
    tour.step("nina._state.db, pastel._state.db, order._state.db")
    tour.step(
        "Artist.objects.using('default').count()  # On 'a': Artist is bound there."
    )


def tour_relations(tour: Tour) -> None:
    tour.section(
        "Relations across databases",
        """A foreign key to a model on another database works as on one
        database: following it runs a query on the other database, and a query
        through it (a filter, an ordering, an annotation) reads the rows it
        needs from the other database and joins them in.""",
    )
    tour.step("Album.objects.get(title='Pastel Blues').artist.name")
    tour.step("nina.album_set.count()")
    tour.step("Order.objects.get().album.artist.name")
    tour.step("Album.objects.filter(artist__name='Nina Simone').count()")
    tour.step(
        "[(a.title, a.artist.name) for a in Album.objects.select_related('artist')]"
    )
    tour.step("Album.objects.values('title', 'artist__name').first()")
    tour.step("Album.objects.order_by('artist__name').first().title")
    tour.step("from django.db.models import Count")
    tour.step("Artist.objects.annotate(n=Count('album')).values_list('name', 'n')")


def tour_transactions(tour: Tour) -> None:
    tour.section(
        "Transactions across databases",
        """atomic(), commit(), rollback(), set_autocommit() and on_commit() take
        one alias, a list of them, or connections (all of them).""",
    )
    tour.step("from django.db import transaction")
    tour.step(
        """
        try:
            with transaction.atomic(using=["default", "a"]):
                simone = Artist.objects.create(name="Nobody")
                Album.objects.create(title="Nothing", artist=simone)
                raise ValueError("changed my mind")
        except ValueError as exc:
            print("rolled back on both:", exc)
        """
    )
    tour.step(
        "Artist.objects.filter(name='Nobody').count(), "
        "Album.objects.filter(title='Nothing').count()"
    )
    tour.step(
        """
        with transaction.atomic(using=["default", "a"]):
            Album.objects.create(title="Wild Is the Wind", artist=nina)
            transaction.on_commit(
                lambda: print("committed on both"), using=["default", "a"]
            )
        """
    )
    tour.step("transaction.get_autocommit(connections)")
    tour.step("transaction.commit(['a', 'nope'])", raises="ConnectionDoesNotExist")
    tour.section(
        "Two-phase commit",
        """atomic(two_phase=True) prepares every database, writes its decision
        in a log, then commits; recovery finishes what a crash left. On
        PostgreSQL the coordinator's own database takes part as the last
        agent (never prepared, one round trip fewer). SQLite can't prepare a
        transaction: the block is refused before anything is written (tox -e
        postgres and -e mariadb run it for real).""",
    )
    tour.step("connections['a'].features.supports_two_phase_commit")
    tour.step(
        """
        with transaction.atomic(using=["default", "a"], two_phase=True):
            Artist.objects.create(name="Never written")
        """,
        raises="NotSupportedError",
    )
    tour.step("Artist.objects.filter(name='Never written').exists()")
    tour.section(
        "ATOMIC_BOUND_DATABASES",
        """With the setting on, atomic() without using covers every database a
        model is bound to, not only 'default'.""",
    )
    tour.step(
        """
        with override_settings(ATOMIC_BOUND_DATABASES=True):
            try:
                with transaction.atomic():
                    Artist.objects.create(name="Not kept")
                    raise ValueError
            except ValueError:
                pass
        """
    )
    tour.step("Artist.objects.filter(name='Not kept').exists()")


def tour_commands(tour: Tour, directory: Path) -> None:
    tour.section(
        "dumpdata and loaddata follow the bindings",
        """One fixture of three databases; every row goes back to the
        database its model is bound to.""",
    )
    fixture = directory / "backup.json"
    tour.step(f"fixture = {str(fixture)!r}")
    tour.step("call_command('dumpdata', 'music', 'shop', output=fixture, verbosity=0)")
    tour.step("Order.objects.all().delete(); Album.objects.all().delete()")
    tour.step("Artist.objects.all().delete()")
    tour.step("call_command('loaddata', fixture, verbosity=0)")
    tour.step("Artist.objects.count(), Album.objects.count(), Order.objects.count()")


def tour_schema(tour: Tour) -> None:
    tour.section(
        "Schema work from the manager",
        """install() creates a model's table on its database and returns
        (executed, pending): statements that need a table that doesn't exist
        yet (here, the foreign key of a cycle) wait. sqlinstall and
        installmodels do the same from the command line.""",
    )
    tour.step("from catalog.models import Author, Book")
    tour.step("executed, pending = Author.objects.install()")
    tour.step("[str(s)[:60] for s in executed], [str(s)[:60] for s in pending]")
    tour.step("Book.objects.install()[0][0].connection.alias")
    tour.step("Author.objects.install()", raises="SchemaError")
    tour.step("Book.objects.drop_column('pages')")
    tour.step("[str(s) for s in Book.objects.add_column('pages', sql_only=True)]")
    tour.step("Book.objects.add_column('pages')")
    tour.step(
        """
        ursula = Author.objects.create(name="Ursula K. Le Guin")
        Book.objects.create(title="Earthsea", author=ursula, pages=183).pages
        """
    )
    tour.step("call_command('sqlinstall', 'catalog.Book')")


def tour_moving(tour: Tour) -> None:
    tour.section(
        "Moving an app to another database",
        """override_bindings() moves a binding for the current context (a
        ContextVar: each thread and asyncio task has its own): here, to copy
        the artists to 'b' before changing the setting.""",
    )
    tour.step("from django.db import override_bindings")
    tour.step("artists = list(Artist.objects.all())")
    tour.step(
        """
        with override_bindings({"music.Artist": "b"}):
            Artist.objects.install()
            Artist.objects.bulk_create(artists)
        """
    )
    tour.step("Artist.objects.using('b').count()  # Still 'a': the binding wins.")
    tour.step(
        """
        with override_bindings({"music.Artist": "b"}):
            print(Artist.objects.count(), Artist.objects.db)
        """
    )


def tour_tenants(tour: Tour, directory: Path) -> None:
    tour.section(
        "A database per tenant",
        """add_database() configures a database while the process runs and
        creates the tables of the apps it gets; a middleware then serves each
        request inside override_bindings() (examples/tenants serves it with
        uvicorn).""",
    )
    tour.step(f"tenant_file = {str(directory / 'acme.sqlite3')!r}")
    tour.step("from django.db.models.tenancy import add_database, remove_database")
    tour.step(
        """
        add_database(
            "tenant_acme",
            {"ENGINE": "django.db.backends.sqlite3", "NAME": tenant_file},
            ["shop"],
        )
        """
    )
    tour.step(
        """
        with override_bindings({"shop": "tenant_acme"}):
            Order.objects.create(album=Album.objects.first(), quantity=7)
            print(Order.objects.count(), "order for acme")
        """
    )
    tour.step("Order.objects.count()  # The other orders, on 'b'.")
    tour.step("remove_database('tenant_acme', ['shop'])")
    tour.step("connections['tenant_acme']", raises="ConnectionDoesNotExist")


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    vendor()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="multidb-demo-") as tmp:
        directory = Path(tmp)
        write_project(directory)
        sys.path.insert(0, tmp)
        configure(directory)
        tour = Tour({})
        tour_project(tour, directory)
        tour_migrate(tour)
        tour_checks(tour)
        tour_queries(tour)
        tour_relations(tour)
        tour_transactions(tour)
        tour_commands(tour, directory)
        tour_schema(tour)
        tour_moving(tour)
        tour_tenants(tour, directory)
        from django.db import connections

        connections.close_all()
    if tour.problems:
        raise ScriptError("steps of the tour went wrong:\n" + "\n".join(tour.problems))
    print("\nThe tour is over; its databases are gone.")
    return 0


if __name__ == "__main__":
    run_main(main)
