"""Settings for the fork's tests on SQLite (test databases live in memory)."""

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3"},
    "a": {"ENGINE": "django.db.backends.sqlite3"},
    "b": {"ENGINE": "django.db.backends.sqlite3"},
    "p": {"ENGINE": "django.db.backends.sqlite3"},
    "q": {"ENGINE": "django.db.backends.sqlite3"},
}

# Binds a model without editing it: takes precedence over Meta.db_connection.
DATABASE_BINDINGS = {"model_binding.Ledger": "b"}

# The tests keep unbound models on every database on purpose (upstream's
# behaviour beside bound models), which multidb.W001 warns about.
SILENCED_SYSTEM_CHECKS = ["multidb.W001"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "model_binding",
    "manager_schema_manipulation",
    "two_phase_commit",
    "relations_across_databases",
]

SECRET_KEY = "django_multidb_tests_secret_key"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

USE_TZ = False
