"""
Schema manipulations.

A model's manager creates and drops the model's table in the model's
database. These models are unmanaged, so that neither migrate nor the test
runner creates their tables: the tests install them.
"""

from django.db import models


# The default database.
class DA(models.Model):
    name = models.CharField(max_length=20)

    class Meta:
        managed = False

    def __str__(self):
        return self.name


# Database 'p', with the cycle PA -> PC -> PB -> PA in the dependency graph.
class PA(models.Model):
    name = models.CharField(max_length=20)
    c = models.ForeignKey("PC", models.SET_NULL, null=True)

    class Meta:
        db_connection = "p"
        managed = False

    def __str__(self):
        return self.name


class PB(models.Model):
    name = models.CharField(max_length=20)
    a = models.ForeignKey(PA, models.CASCADE)

    class Meta:
        db_connection = "p"
        managed = False

    def __str__(self):
        return self.name


class PC(models.Model):
    name = models.CharField(max_length=20)
    b = models.ForeignKey(PB, models.CASCADE)

    class Meta:
        db_connection = "p"
        managed = False

    def __str__(self):
        return self.name


# Database 'q'.
class QA(models.Model):
    name = models.CharField(max_length=20)

    class Meta:
        db_connection = "q"
        managed = False

    def __str__(self):
        return self.name


class QB(models.Model):
    name = models.CharField(max_length=20)
    a = models.ForeignKey(QA, models.CASCADE)

    class Meta:
        db_connection = "q"
        managed = False

    def __str__(self):
        return self.name


# Many-to-many.
class QC(models.Model):
    name = models.CharField(max_length=20)

    class Meta:
        db_connection = "q"
        managed = False

    def __str__(self):
        return self.name


class QD(models.Model):
    name = models.CharField(max_length=20)
    qcs = models.ManyToManyField(QC)

    class Meta:
        db_connection = "q"
        managed = False

    def __str__(self):
        return self.name
