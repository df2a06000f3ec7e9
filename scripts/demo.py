#!/usr/bin/env python3
"""
The main job: build the drop-in ./django (scripts/vendor.py) and show the
fork's features at work on its embedded default, SQLite, with three
databases ('default', 'a', 'b') in a temporary directory that is removed at
the end. Each feature of the series adds a section here as it lands.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import ROOT, run_main
from vendor import vendor


def show(expression: str, namespace: dict) -> None:
    """Print an expression and what it gives, like an interactive session."""
    print(f">>> {expression}")
    try:
        value = eval(expression, namespace)
    except Exception as exc:
        print(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    else:
        if value is not None:
            print(repr(value))


def configure(directory: Path) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={
            alias: {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(directory / f"{alias}.sqlite3"),
            }
            for alias in ("default", "a", "b")
        },
        INSTALLED_APPS=["django.contrib.contenttypes"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()


def section(title: str) -> None:
    print(f"\n== {title}")


def demo_version(namespace: dict) -> None:
    section("Version: the fork says what it is")
    show("django.get_version()", namespace)
    show("django.VERSION", namespace)


def demo_connections(namespace: dict) -> None:
    section("Connections: a missing alias is a clear configuration error")
    show("list(connections)", namespace)
    show("connections['missing']", namespace)
    show("issubclass(ConnectionDoesNotExist, ImproperlyConfigured)", namespace)
    show("ContentType.objects.using('nope').count()", namespace)


def demo_binding(namespace: dict) -> None:
    section("Binding: Meta.db_connection sends a model to its database")
    from django.db import connections, models

    class Artist(models.Model):
        name = models.CharField(max_length=100)

        class Meta:
            app_label = "contenttypes"
            db_connection = "a"

    class Vehicle(models.Model):
        make = models.CharField(max_length=20)

        class Meta:
            app_label = "contenttypes"

    for model in (Artist, Vehicle):
        with model._meta.connection.schema_editor() as editor:
            editor.create_model(model)
    namespace.update(Artist=Artist, Vehicle=Vehicle)
    show("Artist._meta.db_connection, Vehicle._meta.db_connection", namespace)
    show("Artist.objects.create(name='Paul Klee')._state.db", namespace)
    show("Vehicle.objects.create(make='Chevy')._state.db", namespace)
    show("Artist.objects.all().db, Artist.objects.count()", namespace)
    namespace["tables"] = lambda alias: connections[alias].introspection.table_names()
    show("'contenttypes_artist' in tables('a')", namespace)
    show("'contenttypes_artist' in tables('default')", namespace)
    section("Connections added while the process runs")
    show(
        "connections.add('tenant', {'ENGINE': 'django.db.backends.sqlite3', "
        "'NAME': ':memory:'})",
        namespace,
    )
    show("connections['tenant'].vendor", namespace)
    show("connections.remove('tenant')", namespace)
    show("connections['tenant']", namespace)


def demo_transactions(namespace: dict) -> None:
    section("Transactions: one atomic block over several databases")
    from django.db import transaction

    namespace["transaction"] = transaction
    Artist, Vehicle = namespace["Artist"], namespace["Vehicle"]
    with transaction.atomic(using=["default", "a"]):
        Artist.objects.create(name="Joan Miro")
        Vehicle.objects.create(make="Fiat")
    try:
        with transaction.atomic(using=["default", "a"]):
            Artist.objects.create(name="Nobody")
            Vehicle.objects.create(make="Nothing")
            raise ValueError("rolled back on both databases")
    except ValueError:
        pass
    show("Artist.objects.filter(name__in=['Joan Miro', 'Nobody']).count()", namespace)
    show("Vehicle.objects.filter(make__in=['Fiat', 'Nothing']).count()", namespace)
    show("transaction.get_autocommit(connections)", namespace)
    show("transaction.commit(['a', 'nope'])", namespace)
    # Two-phase commit needs PostgreSQL or MariaDB/MySQL: SQLite is refused
    # before anything is written (tox -e postgres and -e mariadb test it).
    show(
        "transaction.atomic(using=['default', 'a'], two_phase=True).__enter__()",
        namespace,
    )


def demo_commands(namespace: dict, directory: Path) -> None:
    section("Commands follow the bindings: a dump of both databases, loaded back")
    from io import StringIO

    from django.core.management import call_command
    from django.test.utils import override_settings

    def dump() -> str:
        out = StringIO()
        call_command(
            "dumpdata", "contenttypes.Artist", "contenttypes.Vehicle", stdout=out
        )
        return out.getvalue()

    fixture = directory / "backup.json"
    namespace.update(dump=dump, call_command=call_command, fixture=fixture)
    show("fixture.write_text(dump()) and len(dump().split('\"pk\"')) - 1", namespace)
    show(
        "Artist.objects.all().delete()[0], Vehicle.objects.all().delete()[0]", namespace
    )
    show("call_command('loaddata', str(fixture))", namespace)
    show("Artist.objects.count(), Vehicle.objects.count()", namespace)
    section("ATOMIC_BOUND_DATABASES: atomic() without using covers bound databases")
    Artist = namespace["Artist"]
    for setting in (False, True):
        with override_settings(ATOMIC_BOUND_DATABASES=setting):
            try:
                with namespace["transaction"].atomic():
                    Artist.objects.create(name=f"Written with the setting {setting}")
                    raise ValueError("roll back")
            except ValueError:
                pass
    show(
        "list(Artist.objects.filter(name__startswith='Written')"
        ".values_list('name', flat=True))",
        namespace,
    )


def demo_schema(namespace: dict) -> None:
    section("Schema work from the manager: install() with a foreign key cycle")
    from django.db import models
    from django.db.models.schema import drop_models

    class Author(models.Model):
        name = models.CharField(max_length=50)
        favourite = models.ForeignKey("Book", models.SET_NULL, null=True)

        class Meta:
            app_label = "contenttypes"
            db_connection = "b"
            managed = False

    class Book(models.Model):
        title = models.CharField(max_length=50)
        author = models.ForeignKey(Author, models.CASCADE)

        class Meta:
            app_label = "contenttypes"
            db_connection = "b"
            managed = False

    namespace.update(Author=Author, Book=Book, drop_models=drop_models)
    show("Author.objects.install()", namespace)
    show("Book.objects.install()", namespace)
    show("Author.objects.install()", namespace)
    namespace["author"] = Author.objects.create(name="Ursula")
    show(
        "Book.objects.create(title='Earthsea', author=author).author.name",
        namespace,
    )
    show("drop_models([Author, Book])", namespace)


def main() -> int:
    argparse.ArgumentParser(description=__doc__).parse_args()
    vendor()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="multidb-demo-") as tmp:
        configure(Path(tmp))
        import django
        from django.contrib.contenttypes.models import ContentType
        from django.core.exceptions import ImproperlyConfigured
        from django.db import connections
        from django.utils.connection import ConnectionDoesNotExist

        namespace = {
            "django": django,
            "connections": connections,
            "ContentType": ContentType,
            "ConnectionDoesNotExist": ConnectionDoesNotExist,
            "ImproperlyConfigured": ImproperlyConfigured,
        }
        print(f"\nDjango from {Path(django.__file__).parent}, SQLite files in {tmp}")
        demo_version(namespace)
        demo_connections(namespace)
        demo_binding(namespace)
        demo_transactions(namespace)
        demo_commands(namespace, Path(tmp))
        demo_schema(namespace)
        connections.close_all()
    print("\nDemo finished.")
    return 0


if __name__ == "__main__":
    run_main(main)
