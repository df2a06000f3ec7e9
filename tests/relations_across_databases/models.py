"""
Related models whose databases the tests choose with DATABASE_BINDINGS: all
on one database, or each relation crossing from one database to another.

The models are unmanaged: each test installs their tables where the bindings
of that test put them (install_models()), so a query sent to the wrong
database finds no table instead of an empty one.
"""

from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models


class Note(models.Model):
    """A note on any object (contenttypes stays on default)."""

    content_type = models.ForeignKey(ContentType, models.CASCADE)
    object_id = models.PositiveIntegerField()
    content_object = GenericForeignKey()
    text = models.CharField(max_length=50)

    class Meta:
        managed = False


class ContentTypeIs:
    """
    A join condition that only says its SQL, as a relation's may (such as
    django-taggit's); added to a subquery's WHERE clause by exclude().
    """

    contains_aggregate = False
    contains_over_clause = False

    def __init__(self, alias, model):
        self.alias, self.model = alias, model

    def relabel_aliases(self, change_map):
        self.alias = change_map.get(self.alias, self.alias)

    def clone(self):
        return type(self)(self.alias, self.model)

    def as_sql(self, compiler, connection):
        qn = compiler.quote_name_unless_alias
        content_type = ContentType.objects.get_for_model(self.model)
        return f"{qn(self.alias)}.{qn('content_type_id')} = %s", [content_type.pk]


class NotesBySQL(GenericRelation):
    def get_extra_restriction(self, alias, remote_alias):
        return ContentTypeIs(remote_alias, self.model)


class Country(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        managed = False


class Author(models.Model):
    name = models.CharField(max_length=50)
    country = models.ForeignKey(
        Country, models.SET_NULL, null=True, related_name="authors"
    )
    notes = GenericRelation(Note)
    notes_by_sql = NotesBySQL(Note)

    class Meta:
        managed = False


class Profile(models.Model):
    author = models.OneToOneField(Author, models.CASCADE, related_name="profile")
    bio = models.CharField(max_length=100)

    class Meta:
        managed = False


class Book(models.Model):
    title = models.CharField(max_length=100)
    pages = models.IntegerField()
    author = models.ForeignKey(Author, models.CASCADE, related_name="books")
    editor = models.ForeignKey(
        Author, models.SET_NULL, null=True, related_name="edited"
    )
    notes = GenericRelation(Note)

    class Meta:
        managed = False


class Chapter(models.Model):
    book = models.ForeignKey(Book, models.CASCADE, related_name="chapters")
    number = models.IntegerField()
    title = models.CharField(max_length=100, null=True)

    class Meta:
        managed = False


class Tag(models.Model):
    name = models.CharField(max_length=50)
    books = models.ManyToManyField(Book, related_name="tags")

    class Meta:
        managed = False


class Loan(models.Model):
    book = models.ForeignKey(Book, models.PROTECT, related_name="loans")

    class Meta:
        managed = False


class Review(models.Model):
    book = models.ForeignKey(Book, models.RESTRICT, related_name="reviews")
    author = models.ForeignKey(Author, models.CASCADE, related_name="reviews")

    class Meta:
        managed = False


def first_book():
    return Book.objects.order_by("pk").first()


class Pick(models.Model):
    # Author "Dee" is created fourth.
    author = models.ForeignKey(
        Author, models.SET_DEFAULT, default=4, related_name="picks"
    )
    book = models.ForeignKey(Book, models.SET(first_book), related_name="picks")

    class Meta:
        managed = False


class Section(models.Model):
    name = models.CharField(max_length=50)
    parent = models.ForeignKey(
        "self", models.CASCADE, null=True, related_name="children"
    )

    class Meta:
        managed = False
        # A join of its own: a read of sections joins their parents.
        ordering = ["parent__name", "pk"]


class Shelf(models.Model):
    section = models.ForeignKey(Section, models.CASCADE, related_name="shelves")
    # SQL NULL, JSON null and JSON values.
    label = models.JSONField(null=True)
    weight = models.FloatField(null=True)
    price = models.DecimalField(max_digits=6, decimal_places=2, null=True)

    class Meta:
        managed = False


MODELS = [
    Country,
    Author,
    Profile,
    Book,
    Chapter,
    Tag,
    Note,
    Loan,
    Review,
    Pick,
    Section,
    Shelf,
]
