"""
examples/tenants, a database per tenant, served for real: its load test
(loadtest.py) runs uvicorn with two workers on a Unix socket, sends
thousands of concurrent requests to 20 tenants while the tenant command adds
5 and removes 3, then checks every note against the tenants' databases, the
failures, and what the idle server holds open: SQLite files with the SQLite
settings, sessions on the throwaway PostgreSQL server with the PostgreSQL
settings (a database per tenant on the server of 'default').
"""

import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from unittest import skipUnless

import django
import httpx
from django.db import connection
from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parents[2]
# Where the Django under test is (./django, or another tree).
DJANGO_HOME = Path(django.__file__).resolve().parents[1]
PROJECT = ROOT / "examples" / "tenants"


@skipUnless(
    connection.vendor in {"sqlite", "postgresql"},
    "the example runs on SQLite files or on PostgreSQL",
)
class TenantsExampleTests(SimpleTestCase):
    def test_load(self):
        env = {**os.environ, "PYTHONPATH": str(DJANGO_HOME)}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        command = [sys.executable, "loadtest.py", "--tenants", "20", "--workers", "2"]
        command.append("--no-rates")
        if connection.vendor == "postgresql":
            # Two sessions per request (the tenant's and the lookup of the
            # tenant on 'default'): stay within the server's connections.
            command += [
                "--db",
                "postgres",
                "--pg-host",
                connection.settings_dict["HOST"],
            ]
            command += ["--requests", "1500", "--concurrency", "30"]
            idle = "sessions the idle server holds on its databases: 0 before, 0 after"
        else:
            command += ["--requests", "2000"]
            idle = "database files the idle server holds open: 0 before, 0 after"
        result = subprocess.run(
            command,
            cwd=PROJECT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(idle, result.stdout)
        self.assertTrue(result.stdout.rstrip().endswith("OK"), result.stdout)


@skipUnless(
    connection.vendor == "sqlite",
    "the example's tenants are SQLite files here, whatever the test settings",
)
class TenantsExampleIsolationTests(SimpleTestCase):
    """
    The example served by uvicorn on SQLite files: under a prefix (the ASGI
    root_path behind a proxy, or FORCE_SCRIPT_NAME), with streaming bodies,
    and with views that refuse to serve a tenant outside its override.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        sys.path.insert(0, str(PROJECT))
        cls.addClassCleanup(sys.path.remove, str(PROJECT))
        import loadtest

        cls.loadtest = loadtest

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.env = {
            **os.environ,
            "PYTHONPATH": str(DJANGO_HOME),
            "TENANTS_DIR": os.path.join(self.tmp, "tenants"),
            "TENANTS_DEFAULT_DB": os.path.join(self.tmp, "default.sqlite3"),
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.loadtest.manage(self.env, "installmodels", "notes")
        self.loadtest.manage(self.env, "tenant", "add", "alpha", "beta")

    @contextmanager
    def serve(self, *options, **env):
        socket_path = os.path.join(self.tmp, "server.sock")
        server = self.loadtest.start_server(
            {**self.env, **env}, socket_path, 1, *options
        )
        try:
            transport = httpx.HTTPTransport(uds=socket_path)
            with httpx.Client(transport=transport, base_url="http://tenants") as c:
                yield c
        finally:
            self.loadtest.stop_server(server)

    def post(self, client, url):
        token = uuid.uuid4().hex
        response = client.post(url, data={"token": token})
        self.assertEqual(response.status_code, 201, response.text)
        return token, response.json()["database"]

    def check_prefixed(self, client, prefix):
        token, database = self.post(client, f"{prefix}/t/beta/notes/")
        self.assertEqual(database, "tenant_beta")
        listed = client.get(f"{prefix}/t/alpha/notes/").json()["tokens"]
        self.assertNotIn(token, listed)
        self.assertEqual(client.get(f"{prefix}/notes/").json()["tokens"], [])
        found = client.get(f"{prefix}/t/beta/notes/{token}/").json()
        self.assertEqual(found["database"], "tenant_beta")
        self.assertEqual(
            client.get(f"{prefix}/t/alpha/notes/{token}/").status_code, 404
        )

    def test_behind_a_proxy_with_root_path(self):
        # The proxy strips /app and uvicorn passes it on as the root_path.
        with self.serve("--root-path", "/app") as client:
            self.check_prefixed(client, "")

    def test_force_script_name(self):
        with self.serve(TENANTS_SCRIPT_NAME="/app") as client:
            self.check_prefixed(client, "/app")

    def test_streaming_bodies_are_read_in_the_tenant(self):
        with self.serve() as client:
            alpha = [self.post(client, "/t/alpha/notes/")[0] for _ in range(60)]
            self.post(client, "/t/beta/notes/")
            self.post(client, "/notes/")
            for url in ["stream", "astream", "export"]:
                with self.subTest(url=url):
                    response = client.get(f"/t/alpha/notes/{url}/")
                    self.assertEqual(response.status_code, 200)
                    expected = "".join(f"{token} tenant_alpha\n" for token in alpha)
                    self.assertEqual(response.text, expected)

    def run_django(self, code):
        return subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=PROJECT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def test_tenant_view_without_its_override_is_refused(self):
        code = (
            "from django.test import RequestFactory\n"
            "from notes import views\n"
            "from tenants_site.tenancy import NotInTenant\n"
            "for view in [views.notes, views.stream]:\n"
            "    try:\n"
            "        view(RequestFactory().get('/'), tenant='alpha')\n"
            "    except NotInTenant as exc:\n"
            "        print('refused:', exc)\n"
        )
        result = self.run_django(code)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.count("refused: A view of tenant 'alpha'"), 2)

    def test_tenant_names_are_checked_whole(self):
        for name in ["x\n", "x/y", "Alpha", ""]:
            with self.subTest(name=name):
                result = subprocess.run(
                    [sys.executable, "manage.py", "tenant", "add", name],
                    cwd=PROJECT,
                    env=self.env,
                    capture_output=True,
                    text=True,
                )
                self.assertEqual(result.returncode, 1)
                self.assertIn("isn't a tenant name", result.stderr)
        self.assertEqual(
            sorted(os.listdir(self.env["TENANTS_DIR"])),
            ["alpha.sqlite3", "beta.sqlite3"],
        )
