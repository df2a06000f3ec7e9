"""
A bank: an account on each database and the transfers between them. Neither
model is bound, so both have a table on every database.
"""

from django.db import models


class Account(models.Model):
    name = models.CharField(max_length=20, unique=True)
    balance = models.IntegerField()

    def __str__(self):
        return f"{self.name}: {self.balance}"


class Transfer(models.Model):
    """One side of a transfer; both sides share the key."""

    key = models.UUIDField(unique=True)
    amount = models.IntegerField()
