"""ASGI config for tenants_site: serve it with uvicorn tenants_site.asgi:application."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tenants_site.settings")

application = get_asgi_application()
