"""
The admin and contrib.auth with users on one database and orders on another.
"""

from io import StringIO

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import connections
from django.test import TestCase

from .models import Order, Product


class ShopTests(TestCase):
    databases = {"default", "users", "orders"}

    @classmethod
    def setUpTestData(cls):
        cls.root = User.objects.create_superuser("root", "root@example.com", "pw")
        cls.ann = User.objects.create_user("ann", password="pw", is_staff=True)
        cls.order = Order.objects.create(customer=cls.ann, total=5)

    def setUp(self):
        self.client.force_login(self.root)

    def test_rows_live_on_their_databases(self):
        tables = {
            alias: connections[alias].introspection.table_names()
            for alias in self.databases
        }
        self.assertIn("auth_user", tables["users"])
        self.assertNotIn("auth_user", tables["orders"])
        self.assertIn("shop_order", tables["orders"])
        self.assertNotIn("shop_order", tables["users"])
        self.assertEqual(self.order._state.db, "orders")
        self.assertEqual(self.order.customer, self.ann)
        self.assertEqual(list(self.ann.orders.all()), [self.order])

    def test_foreign_key_constraints_only_within_a_database(self):
        def references(table):
            connection = connections["orders"]
            with connection.cursor() as cursor:
                constraints = connection.introspection.get_constraints(cursor, table)
            return sorted(
                c["foreign_key"][0] for c in constraints.values() if c["foreign_key"]
            )

        # Order.customer points to "users": no constraint; the many-to-many
        # table's keys stay within "orders".
        self.assertEqual(references("shop_order"), [])
        self.assertEqual(
            references("shop_order_products"), ["shop_order", "shop_product"]
        )

    def test_createsuperuser_finds_the_users_database(self):
        # --database defaults to "default"; the user model lives on "users".
        call_command(
            "createsuperuser",
            interactive=False,
            username="boss",
            email="boss@example.com",
            stdout=StringIO(),
        )
        self.assertIs(User.objects.get(username="boss").is_superuser, True)
        with connections["users"].cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM auth_user WHERE username = %s", ["boss"]
            )
            self.assertEqual(cursor.fetchone(), (1,))

    def test_permissions_through_groups(self):
        clerks = Group.objects.create(name="clerks")
        clerks.permissions.add(
            *Permission.objects.filter(content_type__app_label="shop")
        )
        ann = User.objects.get(username="ann")
        ann.groups.add(clerks)
        ann = User.objects.get(username="ann")
        self.assertIs(ann.has_perm("shop.change_order"), True)
        self.assertIs(ann.has_perm("auth.view_user"), False)

    def test_admin_pages(self):
        for url in [
            "/admin/",
            "/admin/shop/order/",
            f"/admin/shop/order/?customer__id__exact={self.ann.pk}",
            "/admin/shop/order/?q=ann",
            f"/admin/shop/order/{self.order.pk}/change/",
            "/admin/shop/order/add/",
            "/admin/auth/user/",
            f"/admin/auth/user/{self.ann.pk}/change/",
            f"/admin/auth/user/{self.ann.pk}/delete/",
        ]:
            with self.subTest(url=url):
                self.assertEqual(self.client.get(url).status_code, 200)

    def test_admin_add_change_delete(self):
        book = Product.objects.create(name="book", price=3)
        response = self.client.post(
            "/admin/shop/order/add/",
            {"customer": self.ann.pk, "total": 7, "products": [book.pk]},
        )
        self.assertEqual(response.status_code, 302)
        added = Order.objects.get(total=7)
        self.assertEqual(list(added.products.all()), [book])
        response = self.client.post(
            f"/admin/shop/order/{added.pk}/change/",
            {"customer": self.ann.pk, "total": 9, "note": "gift"},
        )
        self.assertEqual(response.status_code, 302)
        self.assertEqual(Order.objects.get(pk=added.pk).note, "gift")
        response = self.client.post(
            f"/admin/shop/order/{added.pk}/delete/", {"post": "yes"}
        )
        self.assertEqual(response.status_code, 302)
        self.assertIs(Order.objects.filter(pk=added.pk).exists(), False)
        # The admin logged each action on default, for a user on "users".
        self.assertEqual(
            list(self.root.logentry_set.values_list("action_flag", flat=True)),
            [3, 2, 1],
        )
        self.assertContains(self.client.get("/admin/"), "Order")

    def test_deleting_a_user_deletes_their_orders(self):
        LogEntry.objects.create(
            user=self.ann, content_type_id=1, object_repr="x", action_flag=1
        )
        self.ann.delete()
        self.assertIs(Order.objects.exists(), False)
        self.assertIs(LogEntry.objects.filter(object_repr="x").exists(), False)
