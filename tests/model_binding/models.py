"""
Using multiple database connections.

Models can say which database they use (Meta.db_connection), and everything
Django does with them goes there; models that don't say are routed as usual.
"""

from django.db import models


class Artist(models.Model):
    name = models.CharField(max_length=100)
    alive = models.BooleanField(default=True)
    born = models.DateField(null=True)

    class Meta:
        db_connection = "a"
        ordering = ["id"]

    def __str__(self):
        return self.name


class Widget(models.Model):
    code = models.CharField(max_length=10, unique=True)
    weight = models.IntegerField()
    made = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_connection = "b"
        ordering = ["id"]

    def __str__(self):
        return self.code


# But they don't have to.
class Vehicle(models.Model):
    make = models.CharField(max_length=20)
    model = models.CharField(max_length=20)
    year = models.IntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.year} {self.make} {self.model}"


class Album(models.Model):
    artist = models.ForeignKey(Artist, models.CASCADE, related_name="albums")
    title = models.CharField(max_length=100)
    released = models.DateField(null=True)

    class Meta:
        db_connection = "a"
        order_with_respect_to = "artist"

    def __str__(self):
        return self.title


class Genre(models.Model):
    name = models.CharField(max_length=50)
    albums = models.ManyToManyField(Album, related_name="genres")

    class Meta:
        db_connection = "a"
        ordering = ["id"]

    def __str__(self):
        return self.name


# A proxy and a multi-table inheritance child live with their concrete model.
class LivingArtist(Artist):
    class Meta:
        proxy = True


class Painter(Artist):
    style = models.CharField(max_length=50)


# Children of an abstract model inherit its binding.
class Stock(models.Model):
    quantity = models.IntegerField(default=0)

    class Meta:
        abstract = True
        db_connection = "b"


class Bolt(Stock):
    size = models.IntegerField()


# DATABASE_BINDINGS (see the test settings) moves this one to 'b'.
class Ledger(models.Model):
    entry = models.CharField(max_length=50)

    class Meta:
        db_connection = "a"


class Part(models.Model):
    widget = models.ForeignKey(Widget, models.CASCADE)

    class Meta:
        db_connection = "b"
