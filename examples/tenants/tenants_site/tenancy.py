"""
Tenants: their databases, added to the process on first use.

A tenant's database is a SQLite file (TENANTS_DIR/<name>.sqlite3) or, when
the default database is on PostgreSQL, a database of that server
(tenant_<name>). A tenant exists while its database does.
"""

import re
import threading
from functools import wraps

from asgiref.sync import iscoroutinefunction
from django.apps import apps
from django.conf import settings
from django.db import connections
from django.db.models.tenancy import add_database, remove_database

# The apps each tenant has its own tables of.
TENANT_APPS = ["notes"]

_name_re = re.compile(r"[a-z0-9]{1,40}")
_lock = threading.Lock()


def check_name(name):
    if not _name_re.fullmatch(name):
        raise ValueError(
            f"{name!r} isn't a tenant name: use 1 to 40 lowercase letters and digits."
        )


def alias(name):
    return f"tenant_{name}"


def path(name):
    return settings.TENANTS_DIR / f"{name}.sqlite3"


def on_postgresql():
    return connections["default"].vendor == "postgresql"


def database(name):
    if on_postgresql():
        return {**settings.DATABASES["default"], "NAME": alias(name)}
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path(name)),
        "OPTIONS": {"timeout": 20},
    }


def exists(name):
    if on_postgresql():
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [alias(name)]
            )
            return cursor.fetchone() is not None
    return path(name).exists()


def _server_execute(statement, name):
    """Run CREATE or DROP DATABASE on the tenant name's database."""
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute(statement % connection.ops.quote_name(alias(name)))


def create(name):
    """Create the database of a new tenant (run by the tenant command)."""
    check_name(name)
    if exists(name):
        raise ValueError(f"The tenant {name!r} exists already.")
    if on_postgresql():
        _server_execute("CREATE DATABASE %s", name)
    else:
        settings.TENANTS_DIR.mkdir(parents=True, exist_ok=True)
    add_database(alias(name), database(name), TENANT_APPS)
    # This process doesn't serve it.
    remove_database(alias(name), TENANT_APPS, drop=False)


def delete(name):
    """
    Delete a tenant's database (run by the tenant command). On PostgreSQL,
    the sessions the servers hold on it are ended.
    """
    check_name(name)
    if not exists(name):
        raise ValueError(f"There's no tenant {name!r}.")
    if on_postgresql():
        _server_execute("DROP DATABASE %s WITH (FORCE)", name)
    else:
        path(name).unlink()


def known(name):
    """
    The alias of tenant name's database if this process has it already and,
    on SQLite, its file is still there; else None. No query: callable from
    async code (on PostgreSQL, a dropped tenant shows when its database
    can't be reached, see TenantMiddleware.process_exception()).
    """
    key = alias(name)
    if key not in connections.settings:
        return None
    if not on_postgresql() and not path(name).exists():
        return None
    return key


def connect(name):
    """
    Return the alias of tenant name's database, added to this process on
    first use, or None if there's no such tenant (any more).
    """
    if not _name_re.fullmatch(name):
        return None
    key = alias(name)
    if not exists(name):
        if key in connections.settings:
            forget(name)
        return None
    if key not in connections.settings:
        with _lock:
            if key not in connections.settings:
                add_database(key, database(name), TENANT_APPS, exists_ok=True)
    return key


def forget(name):
    """Remove a deleted tenant's database from this process."""
    with _lock:
        if alias(name) in connections.settings:
            remove_database(alias(name), TENANT_APPS, drop=False)


class NotInTenant(Exception):
    """A tenant's view ran without its tenant's bindings."""


def serving(name):
    """
    Raise NotInTenant unless the tenant apps are bound to tenant name's
    database in the current context.
    """
    expected = alias(name)
    for label in TENANT_APPS:
        for model in apps.get_app_config(label).get_models():
            if model._meta.db_connection != expected:
                raise NotInTenant(
                    f"A view of tenant {name!r} ran with {model._meta.label} "
                    f"bound to {model._meta.db_connection!r}, not {expected!r}: "
                    f"refused rather than served from another database."
                )


def tenant_view(view):
    """
    Decorate a view that serves /t/<tenant>/... (sync or async): it runs only
    in the override of the tenant its URL names, never on another database.
    """
    if iscoroutinefunction(view):

        @wraps(view)
        async def inner(request, *args, tenant=None, **kwargs):
            if tenant is not None:
                serving(tenant)
            return await view(request, *args, tenant=tenant, **kwargs)

    else:

        @wraps(view)
        def inner(request, *args, tenant=None, **kwargs):
            if tenant is not None:
                serving(tenant)
            return view(request, *args, tenant=tenant, **kwargs)

    return inner
