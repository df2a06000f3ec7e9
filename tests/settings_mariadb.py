"""
Settings for the two-phase commit and schema tests on MariaDB/MySQL: every
alias is a database of the server at MULTIDB_MYSQL_HOST (a host, or the path
of a socket; default 127.0.0.1, port 3306, user root, empty password).
scripts/servers/mariadbserver.py starts a throwaway server and sets it. Django
creates the test databases and drops them afterwards; nothing left on the
server is used.
"""

import os

from settings_sqlite import *  # NOQA: F401, F403


def server(name):
    return {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ.get("MULTIDB_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MULTIDB_MYSQL_PORT", "3306"),
        "USER": os.environ.get("MULTIDB_MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("MULTIDB_MYSQL_PASSWORD", ""),
        "NAME": name,
        # A leftover prepared XA transaction holds its locks: fail, don't hang.
        "OPTIONS": {"init_command": "SET SESSION lock_wait_timeout = 20"},
        "TEST": {"CHARSET": "utf8mb4"},
    }


DATABASES = {
    alias: server(f"multidb_{alias}") for alias in ("default", "a", "b", "p", "q")
}
