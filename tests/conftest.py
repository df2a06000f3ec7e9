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
