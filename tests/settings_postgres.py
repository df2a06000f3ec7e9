"""
Settings for the fork's tests on PostgreSQL: 'default' and 'a' on one server,
'b' on another, so that multi-database tests span two real servers.

scripts/servers/pgcluster.py starts the throwaway servers and sets MULTIDB_PGHOSTS.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from settings_sqlite import *  # NOQA: F401, F403

hosts = os.environ.get("MULTIDB_PGHOSTS", "").split(os.pathsep)
if not hosts[0]:
    raise ImproperlyConfigured(
        "MULTIDB_PGHOSTS is not set: run the tests through "
        "scripts/servers/pgcluster.py (or tox -e postgres), which starts "
        "throwaway PostgreSQL servers."
    )


def server(index, name):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": hosts[index % len(hosts)],
        "USER": "postgres",
        "NAME": name,
        # A leftover prepared transaction holds its locks: fail, don't hang.
        "OPTIONS": {"options": "-c lock_timeout=20s"},
    }


DATABASES = {
    "default": server(0, "multidb_default"),
    "a": server(0, "multidb_a"),
    "b": server(1, "multidb_b"),
    "p": server(0, "multidb_p"),
    "q": server(1, "multidb_q"),
}
