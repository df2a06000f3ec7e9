from django.conf import settings
from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=50)
    price = models.IntegerField()

    def __str__(self):
        return self.name


class Order(models.Model):
    # The user model lives on "users", orders on "orders".
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="orders"
    )
    products = models.ManyToManyField(Product, blank=True)
    total = models.IntegerField()
    note = models.CharField(max_length=50, blank=True)

    def __str__(self):
        return f"Order {self.pk} of {self.customer}"
