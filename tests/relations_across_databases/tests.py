"""
Relations across databases, tested differentially: the same operations run
with every model on one database and with the models split across two (each
relation crossing), and must give the same results.
"""

import re
from contextlib import ExitStack
from decimal import Decimal

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import NotSupportedError, connections, models, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    FilteredRelation,
    JSONField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.binding import override_bindings
from django.db.models.ddl import drop_models, install_models
from django.db.models.expressions import RawSQL
from django.test import TestCase, TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps

from .models import (
    MODELS,
    Author,
    Book,
    Chapter,
    Country,
    Loan,
    Note,
    Pick,
    Profile,
    Review,
    Section,
    Shelf,
    Tag,
)

APP = "relations_across_databases"
ONE_DATABASE = {APP: "a"}
# Every relation crosses: Author -> Country, Profile -> Author, Book -> Author
# (twice), Chapter -> Book, and Tag.books (its through table lives with Tag).
SPLIT = {
    f"{APP}.Country": "b",
    f"{APP}.Author": "a",
    f"{APP}.Profile": "b",
    f"{APP}.Book": "b",
    f"{APP}.Chapter": "a",
    f"{APP}.Tag": "a",
    f"{APP}.Note": "b",
    f"{APP}.Loan": "a",
    f"{APP}.Review": "a",
    f"{APP}.Pick": "b",
    f"{APP}.Section": "a",
    f"{APP}.Shelf": "b",
}
# Only Book is bound: the other models aren't, and live on default.
ONE_BOUND = {f"{APP}.Book": "b"}


def seed():
    """The same rows, with the same ids, wherever the tables are."""
    france, peru = (
        Country.objects.create(name="France"),
        Country.objects.create(name="Peru"),
    )
    Country.objects.create(name="Chad")  # No author.
    ann = Author.objects.create(name="Ann", country=france)
    bob = Author.objects.create(name="Bob", country=peru)
    cid = Author.objects.create(name="Cid", country=None)
    Author.objects.create(name="Dee", country=france)
    Profile.objects.create(author=ann, bio="poet")
    Profile.objects.create(author=cid, bio="critic")
    books = [
        Book.objects.create(title="Alpha", pages=120, author=ann, editor=bob),
        Book.objects.create(title="Beta", pages=340, author=ann, editor=None),
        Book.objects.create(title="Gamma", pages=90, author=bob, editor=ann),
        Book.objects.create(title="Delta", pages=500, author=cid, editor=cid),
        Book.objects.create(title="Epsilon", pages=210, author=bob, editor=None),
    ]
    for book, numbers in zip(books, [[1, 2, 3], [1], [1, 2], [], [1, 2, 3, 4]]):
        for number in numbers:
            Chapter.objects.create(
                book=book, number=number, title=None if number == 2 else f"c{number}"
            )
    poetry, prose, rare = (
        Tag.objects.create(name=n) for n in ["poetry", "prose", "rare"]
    )
    Note.objects.create(content_object=books[0], text="n1")
    Note.objects.create(content_object=ann, text="n2")
    Note.objects.create(content_object=books[2], text="n3")
    Note.objects.create(content_object=books[0], text="n4")
    Loan.objects.create(book=books[2])
    Review.objects.create(book=books[4], author=cid)
    Pick.objects.create(author=cid, book=books[4])
    poetry.books.add(books[0], books[2])
    prose.books.add(books[1], books[2], books[4])
    rare.books.add(books[3])
    fiction = Section.objects.create(name="fiction")
    crime = Section.objects.create(name="crime", parent=fiction)
    Section.objects.create(name="poems")
    Shelf.objects.create(section=fiction, label=None)
    Shelf.objects.create(section=crime, label={"color": "red"})


def ids(queryset):
    return sorted(obj.pk for obj in queryset)


def reads():
    """Operations that only read: name -> callable returning a plain value."""
    qn = connections["default"].ops.quote_name
    return {
        "forward fk": lambda: [
            (b.title, b.author.name) for b in Book.objects.order_by("id")
        ],
        "forward fk null": lambda: [
            b.editor and b.editor.name for b in Book.objects.order_by("id")
        ],
        "two forward hops": lambda: [
            c.book.author.name for c in Chapter.objects.order_by("id")
        ],
        "reverse fk": lambda: [
            sorted(a.books.values_list("title", flat=True))
            for a in Author.objects.order_by("id")
        ],
        "reverse fk count": lambda: [
            (a.books.count(), a.edited.exists()) for a in Author.objects.order_by("id")
        ],
        "one-to-one both ways": lambda: [
            (p.author.name, p.author.profile.bio)
            for p in Profile.objects.order_by("id")
        ],
        "missing reverse one-to-one": lambda: [
            hasattr(a, "profile") for a in Author.objects.order_by("id")
        ],
        "m2m forward": lambda: [
            sorted(t.title for t in tag.books.all())
            for tag in Tag.objects.order_by("id")
        ],
        "m2m reverse": lambda: [
            sorted(t.name for t in b.tags.all()) for b in Book.objects.order_by("id")
        ],
        "m2m count": lambda: [b.tags.count() for b in Book.objects.order_by("id")],
        "prefetch forward and reverse": lambda: [
            (b.author.name, sorted(c.number for c in b.chapters.all()))
            for b in Book.objects.prefetch_related("author", "chapters").order_by("id")
        ],
        "prefetch m2m both ways": lambda: [
            [
                sorted(b.title for b in t.books.all())
                for t in Tag.objects.prefetch_related("books").order_by("id")
            ],
            [
                sorted(t.name for t in b.tags.all())
                for b in Book.objects.prefetch_related("tags").order_by("id")
            ],
        ],
        "prefetch chained": lambda: [
            [
                (b.title, sorted(c.number for c in b.chapters.all()))
                for b in sorted(a.books.all(), key=lambda b: b.pk)
            ]
            for a in Author.objects.prefetch_related("books__chapters").order_by("id")
        ],
        "in a queryset on its model's database": lambda: [
            # Model forms' querysets: using(None) is the database of a bound
            # model.
            ids(Book.objects.filter(author__in=Author.objects.using(None))),
            ids(
                Chapter.objects.filter(
                    book__in=Book.objects.using(None).filter(pages__gt=100)
                )
            ),
        ],
        "two tables of one database in a row, ordered": lambda: [
            # Section's Meta.ordering joins a table of its own.
            ids(Shelf.objects.filter(section__children__name="crime")),
            ids(Shelf.objects.filter(section__children__isnull=True)),
            list(
                Shelf.objects.values_list("pk", "section__children__name").order_by(
                    "pk", "section__children__pk"
                )
            ),
        ],
        "json null and sql null": lambda: [
            ids(Section.objects.filter(shelves__label__isnull=True)),
            ids(Section.objects.filter(shelves__label=None)),
            ids(Section.objects.filter(shelves__label__color="red")),
            list(
                Section.objects.values_list("pk", "shelves__label").order_by(
                    "pk", "shelves__pk"
                )
            ),
        ],
        "two tables of one database in a row": lambda: [
            ids(Country.objects.filter(authors__reviews__book__pages__gt=100)),
            ids(Country.objects.filter(authors__books__title__startswith="A")),
            ids(Review.objects.filter(book__notes__text__in=["n1", "n3"])),
            ids(Chapter.objects.filter(book__picks__author__name="Cid")),
            ids(Tag.objects.exclude(books__picks__isnull=False)),
            ids(Book.objects.filter(author__reviews__book__title="Epsilon")),
            list(
                Book.objects.filter(author__reviews__isnull=False)
                .values_list("title", "author__name", "author__reviews__book_id")
                .order_by("pk")
            ),
            list(
                Chapter.objects.values_list("book__title", "book__picks__author_id")
                .filter(number=1)
                .order_by("pk")
            ),
            list(
                Book.objects.values_list("title", "author__profile__bio").order_by("pk")
            ),
        ],
        "select_related": lambda: [
            (c.book.title, c.book.author.name, c.book.editor and c.book.editor.name)
            for c in Chapter.objects.select_related(
                "book__author", "book__editor"
            ).order_by("id")
        ],
        "select_related reverse one-to-one": lambda: [
            getattr(getattr(a, "profile", None), "bio", None)
            for a in Author.objects.select_related("profile").order_by("id")
        ],
        # Filters through relations.
        "filter forward": lambda: ids(Book.objects.filter(author__name="Ann")),
        "filter two hops": lambda: ids(
            Book.objects.filter(author__country__name="Peru")
        ),
        "filter forward pk": lambda: ids(Book.objects.filter(author__pk=2)),
        "exclude forward": lambda: ids(Book.objects.exclude(author__name="Ann")),
        "exclude nullable forward": lambda: ids(
            Book.objects.exclude(editor__name="Ann")
        ),
        "filter nullable forward": lambda: ids(Book.objects.filter(editor__name="Cid")),
        "forward isnull": lambda: ids(Book.objects.filter(editor__isnull=True)),
        "forward field isnull": lambda: ids(
            Book.objects.filter(editor__name__isnull=True)
        ),
        "exclude forward field isnull": lambda: ids(
            Book.objects.exclude(editor__name__isnull=True)
        ),
        "filter reverse": lambda: ids(Author.objects.filter(books__pages__gt=300)),
        "filter reverse same row": lambda: ids(
            Author.objects.filter(books__pages__gt=100, books__title__startswith="E")
        ),
        "filter reverse chained": lambda: ids(
            Author.objects.filter(books__pages__gt=100).filter(
                books__title__startswith="G"
            )
        ),
        "exclude reverse": lambda: ids(Author.objects.exclude(books__pages__gt=300)),
        "exclude reverse two conditions": lambda: ids(
            Author.objects.exclude(books__pages__gt=100, books__title__startswith="A")
        ),
        "reverse isnull": lambda: ids(Author.objects.filter(books__isnull=True)),
        "reverse not isnull": lambda: ids(
            Author.objects.filter(books__isnull=False).distinct()
        ),
        "reverse field isnull": lambda: ids(
            Book.objects.filter(chapters__title__isnull=True).distinct()
        ),
        "exclude reverse field isnull": lambda: ids(
            Book.objects.exclude(chapters__title__isnull=True)
        ),
        "reverse two hops": lambda: ids(
            Author.objects.filter(books__chapters__number=4).distinct()
        ),
        "reverse instance": lambda: ids(
            Author.objects.filter(books=Book.objects.get(title="Gamma"))
        ),
        "reverse one-to-one": lambda: ids(Author.objects.filter(profile__bio="critic")),
        "reverse one-to-one isnull": lambda: ids(
            Author.objects.filter(profile__isnull=True)
        ),
        "m2m filter": lambda: ids(Book.objects.filter(tags__name="prose")),
        "m2m exclude": lambda: ids(Book.objects.exclude(tags__name="prose")),
        "m2m isnull": lambda: ids(Book.objects.filter(tags__isnull=True)),
        "m2m instance": lambda: ids(
            Book.objects.filter(tags=Tag.objects.get(name="rare"))
        ),
        "m2m in": lambda: ids(
            Book.objects.filter(
                tags__in=Tag.objects.filter(name__in=["poetry", "rare"])
            ).distinct()
        ),
        "m2m reverse filter": lambda: ids(
            Tag.objects.filter(books__author__name="Bob").distinct()
        ),
        "m2m reverse two hops": lambda: ids(
            Tag.objects.filter(books__chapters__number=3).distinct()
        ),
        "q or": lambda: ids(
            Book.objects.filter(Q(author__name="Cid") | Q(pages__lt=100))
        ),
        "q not": lambda: ids(Book.objects.filter(~Q(author__country__name="France"))),
        "q nested": lambda: ids(
            Author.objects.filter(
                Q(books__pages__gt=300) | (Q(country__name="Peru") & ~Q(name="Bob"))
            ).distinct()
        ),
        "q or on one relation": lambda: ids(
            Author.objects.filter(
                Q(books__pages__gt=300) | Q(books__title="Gamma")
            ).distinct()
        ),
        # Joins that had once been refused: the other database's rows are
        # joined in (django.db.models.sql.remote).
        "ordering annotations and expressions across": lambda: [
            list(Book.objects.order_by("author__name", "id").values_list("id")),
            list(
                Book.objects.annotate(n=F("author__name"))
                .order_by("id")
                .values_list("n", flat=True)
            ),
            list(
                Author.objects.annotate(n=Count("books"))
                .order_by("id")
                .values_list("n", flat=True)
            ),
            ids(Book.objects.filter(author__name=F("title"))),
            ids(Book.objects.filter(title__gt=F("author__name"))),
        ],
        "grouped by the key of another database's table": lambda: [
            (b.title, b.author.name, b.n)
            for b in Book.objects.select_related("author")
            .annotate(n=Count("chapters"))
            .order_by("id")
        ],
        "two tables of the other database in a row": lambda: [
            sorted(
                Author.objects.filter(books__title="Alpha").values_list(
                    "name", "books__notes__text"
                ),
                key=str,
            ),
            sorted(
                Author.objects.filter(name="Ann").values_list(
                    "books__title", "books__notes__text"
                ),
                key=str,
            ),
        ],
        "select_related objects used further": lambda: [
            (b.author.name, b.author.books.count(), str(b.author.country))
            for b in Book.objects.select_related("author__country").order_by("id")
        ],
        "subqueries and unions of other databases": lambda: [
            sorted(
                Book.objects.values_list("title", flat=True).union(
                    Country.objects.values_list("name", flat=True),
                    Author.objects.values_list("name", flat=True),
                )
            ),
            ids(
                Author.objects.filter(
                    Exists(Book.objects.filter(author=OuterRef("pk"), pages__gt=100))
                )
            ),
            list(
                Author.objects.annotate(
                    first=Subquery(
                        Book.objects.filter(author=OuterRef("pk"))
                        .order_by("title")
                        .values("title")[:1]
                    )
                )
                .order_by("id")
                .values_list("first", flat=True)
            ),
            # MariaDB and MySQL don't take a sliced subquery after IN.
            (
                ids(Book.objects.filter(author__in=Author.objects.order_by("id")[:1]))
                if connections["default"].features.allow_sliced_subqueries_with_in
                else None
            ),
        ],
        "same related row under | and ~": lambda: [
            ids(
                Author.objects.filter(
                    Q(books__pages__gt=300)
                    | (Q(country__name="Peru") & ~Q(books__title="Gamma"))
                )
            ),
            ids(
                Author.objects.filter(
                    Q(books__pages__gt=300) & (Q(books__title="Gamma") | Q(name="Ann"))
                )
            ),
        ],
        "values of multi-valued relations and distinct": lambda: [
            sorted(Author.objects.values_list("id", "books__title"), key=str),
            sorted(Book.objects.values_list("author__name", flat=True), key=str),
            sorted(
                Book.objects.values_list("author__name", flat=True).distinct(), key=str
            ),
            sorted(
                Book.objects.values("author__name")
                .annotate(n=Count("id"))
                .values_list("author__name", "n"),
                key=str,
            ),
            sorted(
                Book.objects.annotate(n=Count("id")).values_list("author__name", "n"),
                key=str,
            ),
        ],
        "in querysets of other databases": lambda: [
            ids(
                Book.objects.filter(
                    author__country__in=Country.objects.filter(name="Peru")
                )
            ),
            ids(
                Country.objects.filter(
                    pk__in=Author.objects.filter(name="Ann").values("country_id")
                )
            ),
            ids(
                Country.objects.exclude(
                    pk__in=Author.objects.values_list("country", flat=True)
                )
            ),
            ids(Chapter.objects.filter(book_id__in=Book.objects.filter(pages__gt=200))),
        ],
        "in queryset of the other side": lambda: ids(
            Book.objects.filter(
                author__in=Author.objects.filter(name__in=["Bob", "Cid"])
            )
        ),
        "values through foreign keys": lambda: list(
            Book.objects.order_by("id").values_list(
                "title", "author__name", "author__country__name", "editor__name"
            )
        ),
        "values dicts and flat": lambda: [
            list(Chapter.objects.order_by("id").values("number", "book__title")),
            list(
                Book.objects.filter(author__country__name="France")
                .order_by("id")
                .values_list("author__name", flat=True)
            ),
            list(Book.objects.order_by("id").values_list("author__id", flat=True)),
            list(Author.objects.order_by("id").values_list("profile__bio", flat=True)),
        ],
        "generic foreign key": lambda: [
            (n.text, type(n.content_object).__name__, n.content_object.pk)
            for n in Note.objects.order_by("id")
        ],
        "prefetch generic foreign key": lambda: [
            (n.text, type(n.content_object).__name__, n.content_object.pk)
            for n in Note.objects.prefetch_related("content_object").order_by("id")
        ],
        "generic relation": lambda: [
            sorted(n.text for n in b.notes.all()) for b in Book.objects.order_by("id")
        ],
        "prefetch generic relation": lambda: [
            sorted(n.text for n in a.notes.all())
            for a in Author.objects.prefetch_related("notes").order_by("id")
        ],
        "filter generic relation": lambda: [
            ids(Book.objects.filter(notes__text__in=["n1", "n3"]).distinct()),
            ids(Author.objects.filter(notes__isnull=True)),
            ids(Book.objects.exclude(notes__text="n4")),
            # Joined with a condition that only says its SQL.
            ids(Author.objects.exclude(notes_by_sql__text="n4")),
            ids(Author.objects.filter(notes_by_sql__text__gt="").distinct()),
        ],
        "count exists get": lambda: [
            Book.objects.filter(author__country__name="France").count(),
            Book.objects.filter(tags__name="rare").exists(),
            Book.objects.filter(author__name="Ann", tags__name="poetry").exists(),
            Book.objects.get(author__name="Cid").title,
            Author.objects.filter(books__tags__name="poetry").distinct().count(),
        ],
        "columns named in SQL text or join conditions": lambda: [
            sorted(
                Book.objects.filter(author__name__in=["Ann", "Cid"])
                .annotate(n=RawSQL(f"LENGTH({qn(APP + '_author')}.{qn('name')})", []))
                .values_list("title", "n")
            ),
            sorted(
                Book.objects.filter(pages__gt=0)
                .extra(select={"who": f"{qn(APP + '_author')}.{qn('name')}"})
                .filter(author__name__gt="")
                .values_list("title", "who")
            ),
            sorted(
                Author.objects.annotate(
                    long_books=FilteredRelation(
                        "books", condition=Q(books__pages__gt=F("pk"))
                    )
                )
                .filter(long_books__isnull=False)
                .values_list("name", "long_books__title")
            ),
            sorted(
                Book.objects.filter(
                    author__name__in=["Ann", "Dee"], notes__text__startswith="n"
                ).values_list("title", "author__country__name", "notes__text")
            ),
        ],
        "conditions on two tables inside expressions": lambda: [
            # A condition on one table whose When() tests another is no
            # condition on that table alone.
            ids(
                Book.objects.filter(
                    editor__name__gt=Case(
                        When(author__name__gt="B", then=Value("")),
                        default=Value("Z"),
                    )
                )
            ),
            ids(
                Book.objects.filter(
                    pages__gt=Case(
                        When(author__name__gt="B", then=Value(5)),
                        default=Value(10000),
                    )
                )
            ),
            ids(
                Book.objects.filter(
                    author__name__gt=Case(
                        When(pages__gt=100, then=Value("")), default=Value("Z")
                    )
                )
            ),
            sorted(
                Book.objects.annotate(
                    c=Case(
                        When(author__name__gt="B", then=F("pages")), default=Value(0)
                    )
                )
                .filter(c__gt=5)
                .values_list("title", "c")
            ),
            ids(
                Book.objects.filter(
                    author__name__gt=Case(
                        When(
                            Q(Exists(Loan.objects.filter(book=OuterRef("pk")))),
                            then=Value(""),
                        ),
                        default=Value("Z"),
                    )
                )
            ),
        ],
        "annotation of own relations": lambda: sorted(
            Author.objects.filter(country__name="France").values_list("name", flat=True)
        ),
        "queryset reused later": reused_queryset,
    }


def reused_queryset():
    # The keys are read when the queryset is evaluated, not when it's built.
    queryset = Book.objects.filter(author__name="Dee")
    before = ids(queryset)
    Book.objects.create(title="Zeta", pages=10, author=Author.objects.get(name="Dee"))
    return before, ids(queryset), ids(queryset.all())


def writes():
    """Operations that write, run in order: name -> callable."""

    def assign():
        book = Book.objects.get(title="Alpha")
        book.author = Author.objects.get(name="Dee")
        book.editor = None
        book.save()
        book = Book.objects.get(title="Alpha")
        return book.author.name, book.editor

    def generic_writes():
        book = Book.objects.get(title="Beta")
        book.notes.create(text="n5")
        note = Note.objects.get(text="n2")
        note.content_object = book
        note.save()
        return sorted(n.text for n in book.notes.all()), ids(Note.objects.all())

    def reverse_create():
        author = Author.objects.get(name="Cid")
        book = author.books.create(title="Eta", pages=77)
        return book.author.name, ids(author.books.all())

    def m2m_writes():
        rare = Tag.objects.get(name="rare")
        alpha, beta = Book.objects.get(title="Alpha"), Book.objects.get(title="Beta")
        rare.books.add(alpha)
        after_add = ids(rare.books.all())
        beta.tags.add(rare)
        rare.books.remove(Book.objects.get(title="Delta"))
        after_remove = ids(rare.books.all())
        alpha.tags.set([Tag.objects.get(name="prose")])
        after_set = sorted(t.name for t in alpha.tags.all())
        beta.tags.clear()
        return after_add, after_remove, after_set, ids(beta.tags.all())

    def update():
        updated = Book.objects.filter(author__country__name="Peru").update(pages=1)
        return updated, ids(Book.objects.filter(pages=1))

    def delete_filtered():
        deleted = Chapter.objects.filter(book__title="Epsilon", number__gt=2).delete()
        return deleted, ids(Chapter.objects.all())

    def many_keys():
        # More keys than crossdb.MANY_KEYS: one array or JSON parameter.
        authors = Author.objects.bulk_create(
            Author(name=f"Many {i}") for i in range(250)
        )
        authors = list(Author.objects.filter(name__startswith="Many"))
        Book.objects.bulk_create(
            Book(title=f"Many {i}", pages=i, author=author)
            for i, author in enumerate(authors)
        )
        return (
            ids(Book.objects.filter(author__name__startswith="Many")),
            ids(Author.objects.filter(books__pages__lt=200, name__startswith="Many")),
            Book.objects.exclude(author__name__startswith="Many").count(),
            [
                b.author.name
                for b in Book.objects.filter(title__startswith="Many")
                .select_related("author")
                .order_by("id")
            ],
            [
                len(a.books.all())
                for a in Author.objects.prefetch_related("books").order_by("id")
            ],
        )

    def remaining():
        return [ids(model._base_manager.all()) for model in MODELS] + [
            sorted(Tag.books.through.objects.values_list("tag_id", "book_id"))
        ]

    def delete_cascading():
        # CASCADE to books, their chapters and tags, and the profile;
        # SET_NULL on the books Ann edited.
        deleted = Author.objects.get(name="Ann").delete()
        return deleted, remaining(), ids(Book.objects.filter(editor__isnull=True))

    def delete_queryset_set_null():
        deleted = Country.objects.filter(name="Peru").delete()
        return deleted, remaining(), ids(Author.objects.filter(country__isnull=True))

    def delete_protected_or_restricted():
        refused = []
        for title in ["Gamma", "Epsilon"]:
            try:
                Book.objects.get(title=title).delete()
            except (models.ProtectedError, models.RestrictedError) as error:
                refused.append(
                    (type(error).__name__, sorted(o.pk for o in error.args[1]))
                )
        try:
            Book.objects.filter(title__in=["Gamma", "Delta"]).delete()
        except models.ProtectedError as error:
            refused.append(type(error).__name__)
        return refused, remaining()

    def delete_setting_defaults():
        deleted = Author.objects.get(name="Cid").delete()
        Book.objects.get(title="Epsilon").delete()
        return (
            deleted,
            list(Pick.objects.values_list("author_id", "book_id")),
            remaining(),
        )

    def delete_fails_all_or_nothing():
        def refuse(sender, **kwargs):
            raise RuntimeError("refused")

        models.signals.post_delete.connect(refuse, sender=Chapter)
        try:
            Author.objects.get(name="Ann").delete()
        except RuntimeError:
            pass
        finally:
            models.signals.post_delete.disconnect(refuse, sender=Chapter)
        return remaining()

    return {
        "many keys": many_keys,
        "assign": assign,
        "reverse create": reverse_create,
        "generic writes": generic_writes,
        "m2m writes": m2m_writes,
        "update through a relation": update,
        "delete through a relation": delete_filtered,
        "protected and restricted deletes change nothing": (
            delete_protected_or_restricted
        ),
        "delete that fails changes nothing": delete_fails_all_or_nothing,
        "delete setting defaults": delete_setting_defaults,
        "delete cascading": delete_cascading,
        "delete setting null": delete_queryset_set_null,
    }


def where_tables_are(bindings):
    placed = {}
    for model in MODELS:
        label = f"{APP}.{model.__name__}"
        placed[model] = bindings.get(label) or bindings.get(APP) or "default"
    return placed


def tables_only_from(alias, bindings, misplaced):
    """
    An execute wrapper recording in misplaced each statement on alias that
    reads or writes a table of another database.
    """
    qn = connections[alias].ops.quote_name
    elsewhere = [
        re.compile(
            rf"\b(FROM|JOIN|UPDATE|INTO)\s+{re.escape(qn(model._meta.db_table))}"
        )
        for model, placed in where_tables_are(bindings).items()
        if placed != alias
    ]

    def wrapper(execute, sql, params, many, context):
        if any(pattern.search(sql) for pattern in elsewhere):
            misplaced.append((alias, sql))
        return execute(sql, params, many, context)

    return wrapper


class DifferentialTests(TransactionTestCase):
    # Not TestCase: PostgreSQL can't drop a table with deferred constraint
    # checks pending in the same transaction.
    available_apps = [APP]
    databases = {"default", "a", "b"}

    def run_operations(self, bindings):
        # override_bindings(), not override_settings(): what crosses
        # databases changes within one context only.
        with override_bindings(bindings):
            install_models(MODELS)
            try:
                # Each table is where the bindings say, and only there.
                for model, alias in where_tables_are(bindings).items():
                    for other in self.databases:
                        tables = connections[other].introspection.table_names()
                        self.assertEqual(
                            model._meta.db_table in tables, other == alias, model
                        )
                seed()
                # JSON null, which dumpdata can't tell from SQL NULL.
                Shelf.objects.create(
                    section=Section.objects.get(name="poems"),
                    label=Value(None, JSONField()),
                )
                results = {}
                with ExitStack() as stack:
                    # No statement names a table of another database.
                    misplaced = []
                    for alias in self.databases:
                        stack.enter_context(
                            connections[alias].execute_wrapper(
                                tables_only_from(alias, bindings, misplaced)
                            )
                        )
                    for name, operation in {**reads(), **writes()}.items():
                        try:
                            results[name] = operation()
                        except Exception as exc:  # Reported by the comparison.
                            results[name] = f"{type(exc).__name__}: {exc}"
                self.assertEqual(misplaced, [])
                return results
            finally:
                drop_models(MODELS)

    def assertSameResults(self, bindings):
        expected = self.run_operations(ONE_DATABASE)
        got = self.run_operations(bindings)
        for name, result in expected.items():
            with self.subTest(operation=name):
                self.assertNotIsInstance(result, str, result)
                self.assertEqual(got[name], result)

    def test_split_across_two_databases(self):
        self.assertSameResults(SPLIT)

    def test_one_model_bound(self):
        self.assertSameResults(ONE_BOUND)


class SplitTestCase(TestCase):
    """The models split across two databases (SPLIT), their tables installed."""

    databases = {"default", "a", "b"}

    def setUp(self):
        override = override_settings(DATABASE_BINDINGS=SPLIT)
        override.enable()
        self.addCleanup(override.disable)
        install_models(MODELS)


class RowsReadTests(SplitTestCase):
    def test_only_the_columns_used_are_read(self):
        seed()
        with CaptureQueriesContext(connections["a"]) as on_a:
            with CaptureQueriesContext(connections["b"]) as on_b:
                found = ids(Book.objects.filter(author__name="Ann", pages__gt=0))
        self.assertEqual(
            found, ids(Book.objects.filter(author=Author.objects.get(name="Ann")))
        )
        # The authors' rows are read on 'a' with the condition on their name;
        # the query on 'b' joins their keys and doesn't test it again.
        [read] = on_a.captured_queries
        self.assertIn('"name"', read["sql"])
        [query] = on_b.captured_queries
        self.assertNotIn('"name"', query["sql"])
        self.assertIn('"pages"', query["sql"])

    def test_tables_in_a_row_on_one_database_are_read_by_one_query(self):
        seed()
        with CaptureQueriesContext(connections["a"]) as on_a:
            with CaptureQueriesContext(connections["b"]) as on_b:
                found = list(
                    Book.objects.filter(
                        author__reviews__book__title="Epsilon"
                    ).values_list("title", "author__name", "author__reviews__id")
                )
        self.assertEqual(found, [("Delta", "Cid", Review.objects.get().pk)])
        # The authors and their reviews, on 'a', are read together; the
        # query on 'b' joins them to the books twice.
        self.assertEqual(len(on_a.captured_queries), 1, on_a.captured_queries)
        self.assertIn("JOIN", on_a.captured_queries[0]["sql"])
        self.assertEqual(len(on_b.captured_queries), 1, on_b.captured_queries)


class ValuesReadTests(SplitTestCase):
    def test_decimals_with_more_places_than_declared(self):
        # SQLite stores a decimal with the places it's given, which its
        # aggregates see; PostgreSQL rounds it to the declared places.
        seed()
        Shelf.objects.update(price=Value(Decimal("1.004")))
        # What the shelves' database answers alone: 2.008 on SQLite.
        expected = Shelf.objects.aggregate(total=Sum("price"))
        self.assertEqual(
            Section.objects.aggregate(total=Sum("shelves__price")), expected
        )
        tops = [
            Shelf.objects.filter(pk=shelf.pk).aggregate(top=Max("price"))["top"]
            for shelf in Shelf.objects.order_by("section_id")
        ]
        found = (
            Section.objects.filter(shelves__isnull=False)
            .annotate(top=Max("shelves__price"))
            .order_by("pk")
        )
        self.assertEqual([section.top for section in found], tops)

    def test_infinite_floats(self):
        # SQLite reads JSON without Infinity.
        seed()
        Shelf.objects.update(weight=float("inf"))
        Shelf.objects.filter(section__name="crime").update(weight=float("-inf"))
        self.assertEqual(
            list(
                Section.objects.filter(shelves__weight__gt=0)
                .values_list("name", "shelves__weight")
                .order_by("pk")
            ),
            [("fiction", float("inf"))],
        )
        self.assertEqual(
            list(Section.objects.filter(shelves__weight__lt=0).values_list("name")),
            [("crime",)],
        )


class RefusalTests(SplitTestCase):
    def setUp(self):
        super().setUp()
        seed()

    def assertRefused(self, queryset, message):
        """queryset() raises NotSupportedError before any query runs."""
        with self.assertNumQueries(0, using="a"), self.assertNumQueries(0, using="b"):
            with self.assertRaisesMessage(NotSupportedError, message):
                list(queryset())

    def test_extra_table_of_another_database_refused(self):
        self.assertRefused(
            lambda: Book.objects.extra(
                tables=["relations_across_databases_author"],
                where=["relations_across_databases_author.id = author_id"],
            ),
            "extra(tables=...) names relations_across_databases_author, the table "
            "of relations_across_databases.Author, which lives on the database "
            "'a': a query on 'b' can't read it.",
        )
        # A table of the query's database may be named.
        self.assertEqual(
            len(Book.objects.extra(tables=["relations_across_databases_note"])),
            Book.objects.count() * Note.objects.count(),
        )

    def test_sql_of_a_query_on_another_database_than_default(self):
        # str(query) compiles on default; the query runs on 'b', where Book
        # is, and nothing is read to show it.
        with self.assertNumQueries(0, using="a"), self.assertNumQueries(0, using="b"):
            sql = str(Book.objects.filter(title="Alpha").query)
        self.assertIn('FROM "relations_across_databases_book"', sql)

    def test_joins_after_installed_apps_changed(self):
        # A query while the apps are others fills the caches of where tables
        # are; they don't outlive the change.
        with self.settings(INSTALLED_APPS=["django.contrib.contenttypes"]):
            with isolate_apps("django.contrib.contenttypes"):
                # Defining a model clears them.
                meta = type("Meta", (), {"app_label": "contenttypes"})
                type("Defined", (models.Model,), {"__module__": __name__, "Meta": meta})
            ContentType.objects.count()
        self.assertEqual(
            ids(Book.objects.filter(author__name="Ann")),
            sorted(
                Book.objects.filter(
                    author__in=list(Author.objects.filter(name="Ann"))
                ).values_list("pk", flat=True)
            ),
        )

    def test_select_for_update_of_another_database_refused(self):
        msg = (
            "select_for_update() can't lock rows of "
            "relations_across_databases.Author, which live on the database 'a', "
            "in a query on 'b'."
        )
        refused = [
            lambda: Book.objects.select_for_update().filter(author__name="Ann"),
            lambda: Book.objects.select_for_update(of=("author",)).filter(
                author__name="Ann"
            ),
        ]
        anns = Book.objects.filter(author__name="Ann").count()
        with transaction.atomic(using=["a", "b"]):
            for queryset in refused:
                with self.subTest(queryset=queryset):
                    if connections["b"].features.has_select_for_update:
                        self.assertRefused(queryset, msg)
                    else:
                        # Where select_for_update() locks nothing (SQLite).
                        self.assertEqual(len(queryset()), anns)
            # Locking only the rows of the query's own database works.
            self.assertEqual(
                len(
                    Book.objects.select_for_update(of=("self",)).filter(
                        author__name="Ann"
                    )
                ),
                anns,
            )

    def test_no_constraint_across_databases(self):
        for alias, model, field in [("b", Book, "author"), ("a", Chapter, "book")]:
            with connections[alias].cursor() as cursor:
                constraints = connections[alias].introspection.get_constraints(
                    cursor, model._meta.db_table
                )
            column = model._meta.get_field(field).column
            kinds = [
                (c["foreign_key"], c["index"])
                for c in constraints.values()
                if c["columns"] == [column]
            ]
            self.assertIn((None, True), kinds)
            self.assertNotIn(True, [bool(fk) for fk, _ in kinds])

    def test_constraint_within_one_database(self):
        with override_settings(DATABASE_BINDINGS=ONE_DATABASE):
            self.assertIs(Book._meta.get_field("author").db_constraint, True)
        self.assertIs(Book._meta.get_field("author").db_constraint, False)

    def test_migrations_keep_the_declared_constraint(self):
        _, _, _, kwargs = Book._meta.get_field("author").deconstruct()
        self.assertNotIn("db_constraint", kwargs)


class GenericRelationTests(SplitTestCase):
    def setUp(self):
        super().setUp()
        # Content types live on default only: "b" has the table, emptied, so
        # reading them from "b" would find nothing.
        ContentType.objects.using("b").all().delete()
        ContentType.objects.clear_cache()
        self.addCleanup(ContentType.objects.clear_cache)

    def test_unbound_target_of_a_bound_model(self):
        group = Group.objects.create(name="readers")
        note = Note.objects.create(content_object=group, text="on a group")
        self.assertEqual(note._state.db, "b")
        note = Note.objects.get(pk=note.pk)
        self.assertEqual(note.content_object, group)
        self.assertEqual(
            Note.objects.prefetch_related("content_object").get().content_object,
            group,
        )

    def test_generic_relation_manager(self):
        author = Author.objects.create(name="Ann")
        author.notes.create(text="first")
        self.assertEqual([n.text for n in author.notes.all()], ["first"])
        self.assertEqual(list(Author.objects.filter(notes__text="first")), [author])
        author.delete()
        self.assertIs(Note.objects.exists(), False)


class NoRelationAcrossDatabases:
    def allow_relation(self, obj1, obj2, **hints):
        return obj1._state.db == obj2._state.db


class RouterTests(TestCase):
    databases = {"default", "a", "b"}

    def setUp(self):
        override = override_bindings(SPLIT)
        override.__enter__()
        self.addCleanup(override.__exit__, None, None, None)
        install_models(MODELS)
        self.author = Author.objects.create(name="Ann")

    def test_relation_across_databases_allowed(self):
        book = Book.objects.create(title="Alpha", pages=1, author=self.author)
        self.assertEqual(Book.objects.get().author, self.author)
        self.assertEqual(book._state.db, "b")

    @override_settings(DATABASE_ROUTERS=[NoRelationAcrossDatabases()])
    def test_router_has_the_last_word(self):
        msg = 'Cannot assign "<Author: Author object (1)>": the current database router'
        with self.assertRaisesMessage(ValueError, msg):
            Book(title="Alpha", pages=1, author=self.author)
        self.assertIs(Book.objects.exists(), False)
