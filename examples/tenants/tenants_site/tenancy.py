"""Tenants: their databases, added to the process on first use."""

import re
import threading

from django.conf import settings
from django.db import connections
from django.db.models.schema import add_database, remove_database

# The apps each tenant has its own tables of.
TENANT_APPS = ["notes"]

_name_re = re.compile(r"^[a-z0-9]{1,40}$")
_lock = threading.Lock()


def check_name(name):
    if not _name_re.match(name):
        raise ValueError(
            f"{name!r} isn't a tenant name: use 1 to 40 lowercase letters and digits."
        )


def alias(name):
    return f"tenant_{name}"


def path(name):
    return settings.TENANTS_DIR / f"{name}.sqlite3"


def database(name):
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path(name)),
        "OPTIONS": {"timeout": 20},
    }


def create(name):
    """Create the database of a new tenant (run by the tenant command)."""
    check_name(name)
    if path(name).exists():
        raise ValueError(f"The tenant {name!r} exists already.")
    settings.TENANTS_DIR.mkdir(parents=True, exist_ok=True)
    add_database(alias(name), database(name), TENANT_APPS)
    # This process doesn't serve it.
    remove_database(alias(name), TENANT_APPS, drop=False)


def delete(name):
    """Delete a tenant's database (run by the tenant command)."""
    check_name(name)
    if not path(name).exists():
        raise ValueError(f"There's no tenant {name!r}.")
    path(name).unlink()


def connect(name):
    """
    Return the alias of tenant name's database, added to this process on
    first use, or None if there's no such tenant (any more).
    """
    if not _name_re.match(name):
        return None
    key = alias(name)
    if not path(name).exists():
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
