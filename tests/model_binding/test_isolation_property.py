"""
Tenant isolation as a property: many tenants served concurrently, in every
way code runs, while tenants are added and removed, and every row read or
written belongs to the tenant of the request that reads or writes it.

Each tenant has a database of its own (an SQLite file, or a database of the
PostgreSQL server of 'default') holding the vehicles table; a request binds
Vehicle to its tenant's database with override_bindings(), as a tenant
middleware does, and every row it writes has its tenant's name as make. The
operations checked are counted and printed.
"""

import asyncio
import os
import random
import tempfile
import time
from unittest import mock

from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.db.models.binding import override_bindings
from django.test import TransactionTestCase
from django.utils.connection import ConnectionDoesNotExist

from .models import Vehicle

TENANTS = 24
ADDED = 6
REMOVED = 4
REQUESTS = 2400
CONCURRENCY = 64
# What the test measured, printed at the end of a pytest run (conftest.py).
REPORTS = []


class ForeignRow(AssertionError):
    pass


def bindings(alias):
    return {"model_binding.Vehicle": alias}


def close(alias):
    """Close this thread's connection to alias, as the end of a request does."""
    if alias in connections.settings:
        connections[alias].close()


class Tenants:
    """The tenants' databases: created, added to the process, removed."""

    def __init__(self, directory):
        self.directory = directory
        self.vendor = connections["default"].vendor
        self.created = []

    def settings(self, name):
        if self.vendor == "postgresql":
            return {**connections["default"].settings_dict, "NAME": f"iso_{name}"}
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(self.directory, f"{name}.sqlite3"),
            "OPTIONS": {"timeout": 30},
        }

    def create(self, name):
        alias = f"tenant_{name}"
        if self.vendor == "postgresql":
            connection = connections["default"]
            with connection.cursor() as cursor:
                cursor.execute(
                    "CREATE DATABASE %s" % connection.ops.quote_name(f"iso_{name}")
                )
        self.created.append(name)
        connections.add(alias, self.settings(name))
        with override_bindings(bindings(alias)):
            Vehicle.objects.install()
        close(alias)
        return alias

    def rows(self, name):
        """Every (make, model) in tenant name's database, read without routing."""
        alias = "check_" + name
        connections.add(alias, self.settings(name))
        try:
            with connections[alias].cursor() as cursor:
                table = connections[alias].ops.quote_name(Vehicle._meta.db_table)
                cursor.execute(f"SELECT make, model FROM {table}")
                return cursor.fetchall()
        finally:
            connections.remove(alias)

    def drop_all(self):
        if self.vendor != "postgresql":
            return
        connection = connections["default"]
        for name in self.created:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DROP DATABASE IF EXISTS %s WITH (FORCE)"
                    % connection.ops.quote_name(f"iso_{name}")
                )


class Load:
    def __init__(self, tenants):
        self.tenants = tenants
        self.active = []
        self.checked = 0
        self.written = {}
        self.refused = 0
        self.gone = 0
        # Instances shared by every request, as in a process-wide cache.
        self.cache = []
        self.in_flight = {}
        self.late = set()

    def check(self, tenant, rows):
        for make in rows:
            self.checked += 1
            if make != tenant:
                raise ForeignRow(
                    f"A request of tenant {tenant!r} saw a row of {make!r}."
                )

    def wrote(self, tenant, vehicle, alias):
        self.checked += 1
        if vehicle._state.db != alias or vehicle.make != tenant:
            raise ForeignRow(
                f"A request of tenant {tenant!r} wrote {vehicle.make!r} to "
                f"{vehicle._state.db!r}."
            )
        self.written.setdefault(tenant, []).append(vehicle.model)

    # The operations, each run in tenant's override.

    async def async_view(self, tenant, alias, number):
        vehicle = await Vehicle.objects.acreate(
            make=tenant, model=f"async-{number}", year=number
        )
        self.wrote(tenant, vehicle, alias)
        self.check(tenant, [v.make async for v in Vehicle.objects.all()[:40]])
        found = await Vehicle.objects.aget(pk=vehicle.pk)
        self.check(tenant, [found.make])
        self.cache.append(found)

    def sync_view(self, tenant, alias, number):
        try:
            with transaction.atomic(using=Vehicle):
                vehicle = Vehicle.objects.create(
                    make=tenant, model=f"sync-{number}", year=number
                )
                self.check(tenant, Vehicle.objects.values_list("make", flat=True))
            self.wrote(tenant, vehicle, alias)
        finally:
            close(alias)

    async def spawn(self, tenant, alias, number):
        async def later():
            await asyncio.sleep(random.random() / 50)
            await self.async_view(tenant, alias, number)

        task = asyncio.create_task(later())
        self.late.add(task)
        self.in_flight[tenant] += 1
        task.add_done_callback(lambda _: self.finished(tenant))

    async def stream(self, tenant, alias, number):
        @override_bindings(bindings(alias))
        def rows():
            for vehicle in Vehicle.objects.all()[:40]:
                yield vehicle.make

        @override_bindings(bindings(alias))
        async def arows():
            async for vehicle in Vehicle.objects.all()[:40]:
                yield vehicle.make

        return rows(), arows()

    async def cached(self, tenant, alias, number):
        if not self.cache:
            return
        vehicle = random.choice(self.cache)
        vehicle.year += 1
        if vehicle.make == tenant:
            await vehicle.asave(update_fields=["year"])
            self.check(tenant, [vehicle.make])
        else:
            try:
                await vehicle.asave()
            except ValueError:
                self.refused += 1
            else:
                raise ForeignRow(
                    f"A request of tenant {tenant!r} saved {vehicle.make!r}'s "
                    f"instance to {vehicle._state.db!r}."
                )

    def start(self, tenant, number):
        """
        Schedule a request to tenant. It counts in self.in_flight from now,
        not from when the task first runs: a tenant is removed once every
        request sent its way while it was active has ended.
        """
        self.in_flight[tenant] = self.in_flight.get(tenant, 0) + 1
        return asyncio.create_task(self.request(tenant, number))

    def finished(self, tenant):
        self.in_flight[tenant] -= 1

    async def request(self, tenant, number):
        alias = f"tenant_{tenant}"
        streams = ()
        try:
            with override_bindings(bindings(alias)):
                kind = number % 6
                if kind == 0:
                    await self.async_view(tenant, alias, number)
                elif kind in (1, 2):
                    await sync_to_async(self.sync_view, thread_sensitive=kind == 1)(
                        tenant, alias, number
                    )
                elif kind == 3:
                    await self.spawn(tenant, alias, number)
                elif kind == 4:
                    streams = await self.stream(tenant, alias, number)
                else:
                    await self.cached(tenant, alias, number)
            # Bodies served after the request's block has ended.
            if streams:
                rows, arows = streams
                self.check(tenant, await sync_to_async(list)(rows))
                self.check(tenant, [make async for make in arows])
        except ConnectionDoesNotExist:
            # Only a removed tenant's requests may find no database.
            if alias in connections.settings:
                raise
            self.gone += 1
        finally:
            await sync_to_async(close)(alias)
            self.finished(tenant)

    def add_tenant(self, name):
        try:
            self.tenants.create(name)
        finally:
            # This thread's session on 'default' (PostgreSQL's CREATE DATABASE).
            close("default")

    async def change_tenants(self):
        for n in range(ADDED):
            await asyncio.sleep(0.05)
            name = f"new{n}"
            await sync_to_async(self.add_tenant)(name)
            self.active.append(name)
        for name in self.active[:REMOVED]:
            self.active.remove(name)
            while self.in_flight.get(name):
                await asyncio.sleep(0.01)
            await sync_to_async(connections.remove)(f"tenant_{name}", timeout=30)
            # A request that still comes for it finds no database.
            await self.start(name, 0)

    async def run(self):
        self.active = [f"t{n}" for n in range(TENANTS)]
        changer = asyncio.create_task(self.change_tenants())
        pending = set()
        for number in range(REQUESTS):
            pending.add(self.start(random.choice(self.active), number))
            if len(pending) >= CONCURRENCY:
                done, pending = await asyncio.wait(
                    pending, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
        await asyncio.gather(*pending, changer)
        await asyncio.gather(*self.late)


class TenantIsolationPropertyTests(TransactionTestCase):
    available_apps = ["model_binding"]
    databases = {"default", "a", "b"}

    def test_no_request_reaches_another_tenants_rows(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        # The test framework lets a test use the databases it declares.
        names = [f"t{n}" for n in range(TENANTS)] + [f"new{n}" for n in range(ADDED)]
        aliases = {prefix + name for name in names for prefix in ("tenant_", "check_")}
        allowed = mock.patch.object(
            type(self), "databases", {*self.databases, *aliases}
        )
        allowed.start()
        self.addCleanup(allowed.stop)
        tenants = Tenants(directory.name)
        self.addCleanup(tenants.drop_all)
        for n in range(TENANTS):
            tenants.create(f"t{n}")
        self.addCleanup(self.remove_tenants)
        load = Load(tenants)
        random.seed(2312)
        start = time.perf_counter()
        asyncio.run(load.run())
        elapsed = time.perf_counter() - start
        # Every tenant's database holds its own rows and every row written to
        # it, removed tenants' too; the default database holds none.
        for name in tenants.created:
            rows = tenants.rows(name)
            load.check(name, [make for make, _ in rows])
            self.assertCountEqual(
                [model for _, model in rows], load.written.get(name, [])
            )
        self.assertEqual(Vehicle.objects.using("default").count(), 0)
        self.assertGreater(load.refused, 0)
        self.assertEqual(load.gone, REMOVED)
        report = (
            f"Tenant isolation ({connections['default'].vendor}): {load.checked} "
            f"rows checked in {REQUESTS} requests to {TENANTS}+{ADDED}-{REMOVED} "
            f"tenants in {elapsed:.1f} s; {load.refused} saves of another "
            f"tenant's cached instance refused; 0 foreign rows."
        )
        REPORTS.append(report)
        print(f"\n{report}")

    def remove_tenants(self):
        for alias in list(connections.settings):
            if alias.startswith("tenant_"):
                connections.remove(alias)
