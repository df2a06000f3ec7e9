def pytest_report_header(config):
    """Say which databases and drivers the run uses."""
    from django.conf import settings
    from django.db import connections

    lines = []
    for alias in connections:
        connection = connections[alias]
        driver = connection.Database
        name = driver.__name__.split(".")[0]
        version = getattr(driver, "__version__", "")
        if connection.vendor == "sqlite":
            name, version = "SQLite", driver.sqlite_version
        lines.append(f"{alias}={connection.vendor} ({name} {version})".rstrip())
    return [f"settings: {settings.SETTINGS_MODULE}; databases: " + ", ".join(lines)]


def pytest_sessionstart(session):
    """
    Stop at once, in one line, when a configured MariaDB/MySQL server can't
    be reached, instead of an error per test.
    """
    import pytest
    from django.db import connections

    for alias in connections:
        connection = connections[alias]
        if connection.vendor != "mysql":
            continue
        # With the driver: pytest-django doesn't allow queries yet.
        params = connection.get_connection_params()
        params.pop("database", None)
        params.pop("db", None)
        try:
            connection.Database.connect(**params).close()
        except connection.Database.Error as exc:
            settings = connection.settings_dict
            where = settings["HOST"] or "localhost"
            if not where.startswith("/"):
                where += f":{settings['PORT'] or 3306}"
            raise pytest.UsageError(
                f"Can't reach the MariaDB/MySQL server of {alias!r} at {where} as "
                f"{settings['USER']!r} ({exc}): set MULTIDB_MYSQL_HOST (a host or a "
                f"socket path), MULTIDB_MYSQL_PORT, MULTIDB_MYSQL_USER and "
                f"MULTIDB_MYSQL_PASSWORD for a running server, or run the tests "
                f"through scripts/servers/mariadbserver.py (tox -e mariadb does), "
                f"which starts a throwaway one."
            )
        return


def pytest_terminal_summary(terminalreporter):
    """Print what tests measured (e.g. the rows the isolation test checked)."""
    from model_binding.test_isolation_property import REPORTS

    for line in REPORTS:
        terminalreporter.write_line(line)
