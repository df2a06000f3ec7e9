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


MODELS = [Country, Author, Profile, Book, Chapter, Tag, Note]
