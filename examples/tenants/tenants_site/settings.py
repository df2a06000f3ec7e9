"""
A database per tenant: the notes app lives in one SQLite file per tenant
(TENANTS_DIR/<name>.sqlite3). TenantMiddleware picks the tenant from the
path (/t/<name>/...), adds its database to the process on first use and
binds the notes app to it for the request with override_bindings().
Requests outside /t/ use the notes table of the default database.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-insecure-tenants-example-not-for-production"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = ["notes"]

MIDDLEWARE = ["tenants_site.middleware.TenantMiddleware"]

ROOT_URLCONF = "tenants_site.urls"
ASGI_APPLICATION = "tenants_site.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TENANTS_DEFAULT_DB", BASE_DIR / "default.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}

# Where the tenants' databases are: a tenant exists while its file does.
TENANTS_DIR = Path(os.environ.get("TENANTS_DIR", BASE_DIR / "tenants"))

# With TENANTS_PG_HOST (a host or a socket directory), the default database
# and one database per tenant (tenant_<name>) are on that PostgreSQL server
# instead: a tenant exists while its database does.
if os.environ.get("TENANTS_PG_HOST"):
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ["TENANTS_PG_HOST"],
        "PORT": os.environ.get("TENANTS_PG_PORT", ""),
        "USER": os.environ.get("TENANTS_PG_USER", "postgres"),
        "NAME": os.environ.get("TENANTS_PG_DEFAULT", "tenants"),
    }

# Served under a prefix without a proxy that passes it as the ASGI root_path.
if os.environ.get("TENANTS_SCRIPT_NAME"):
    FORCE_SCRIPT_NAME = os.environ["TENANTS_SCRIPT_NAME"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# With TENANTS_SINGLE=<name>, serve that tenant only, at / instead of
# /t/<name>/, bound in the settings: no middleware, no override (loadtest.py
# compares the two).
if os.environ.get("TENANTS_SINGLE"):
    _name = os.environ["TENANTS_SINGLE"]
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        DATABASES["tenant"] = {**DATABASES["default"], "NAME": f"tenant_{_name}"}
    else:
        DATABASES["tenant"] = {
            **DATABASES["default"],
            "NAME": TENANTS_DIR / f"{_name}.sqlite3",
        }
    DATABASE_BINDINGS = {"notes": "tenant"}
    MIDDLEWARE = []
