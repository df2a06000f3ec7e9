"""
Read replicas (django.db.replicas): a database "r" with the replica
"r_replica", added at run time. On SQLite the replica is the same file, a
replica that never lags; on PostgreSQL it's a real hot standby of the first
server (scripts/servers/pgcluster.py --standbys 1), streaming its WAL.
"""

import contextvars
import os
import pickle
import tempfile
import threading
import time
import uuid
from unittest import mock

from django.core.exceptions import ImproperlyConfigured
from django.db import (
    OperationalError,
    connection,
    connections,
    models,
    replicas,
    transaction,
)
from django.db.models.expressions import RawSQL
from django.db.replicas import check_replicas, positions
from django.http import HttpResponse, HttpResponseRedirect
from django.test import Client, SimpleTestCase, TransactionTestCase, override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps
from django.urls import path

SQLITE = "django.db.backends.sqlite3"
MIDDLEWARE = ["django.middleware.replicas.ReadYourWritesMiddleware"]
# The model of the current test, for the views.
current = {}


def add_account(request):
    current["model"].objects.create(name="ann")
    return HttpResponseRedirect("/count/")


def count_accounts(request):
    return HttpResponse(str(current["model"].objects.count()))


urlpatterns = [path("add/", add_account), path("count/", count_accounts)]


def in_a_new_context(function):
    """Run function in a context of its own, as a new request or task is."""
    return contextvars.Context().run(function)


def database_settings(directory):
    """The settings of 'r' and of its replica, and how to remove 'r'."""
    if connection.vendor == "sqlite":
        path = os.path.join(directory, "r.sqlite3")
        return {"ENGINE": SQLITE, "NAME": path}, {"ENGINE": SQLITE, "NAME": path}
    standbys = os.environ.get("MULTIDB_PG_STANDBYS")
    if not standbys:
        raise ImproperlyConfigured(
            "The replica tests need a standby of the first server: run them "
            "through scripts/servers/pgcluster.py --standbys 1."
        )
    primary = dict(connections["default"].settings_dict, TEST={})
    primary["NAME"] = f"multidb_r_{uuid.uuid4().hex[:8]}"
    replica = dict(primary, HOST=standbys.split(os.pathsep)[0])
    return primary, replica


class ReplicaTestCase(TransactionTestCase):
    available_apps = ["model_binding"]
    databases = {"default"}

    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.addCleanup(replicas.reset)
        primary, replica = database_settings(directory.name)
        allowed = mock.patch.object(
            type(self), "databases", {*self.databases, "r", "r_replica"}
        )
        allowed.start()
        self.addCleanup(allowed.stop)
        if connection.vendor == "postgresql":
            self.create_database(primary["NAME"])
        connections.add("r_replica", replica)
        self.addCleanup(connections.remove, "r_replica")
        connections.add("r", {**primary, "REPLICAS": ["r_replica"]})
        self.addCleanup(connections.remove, "r")

        class Account(models.Model):
            name = models.CharField(max_length=20)

            class Meta:
                app_label = "model_binding"
                db_connection = "r"

        self.Account = current["model"] = Account
        with connections["r"].schema_editor() as editor:
            editor.create_model(Account)
        self.addCleanup(self.drop_table)
        self.wait_for_replay()

    def create_database(self, name):
        quoted = connection.ops.quote_name(name)
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {quoted}")

        def drop():
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quoted}")

        self.addCleanup(drop)

    def drop_table(self):
        for alias in ("r", "r_replica"):
            connections[alias].close()
        if connection.vendor != "postgresql":
            with connections["r"].schema_editor() as editor:
                editor.delete_model(self.Account)

    def wait_for_replay(self, received=False):
        """
        Until the standby replayed (with received: received) what the primary
        wrote so far, up to the position the fork reads after a commit.
        """
        if connection.vendor != "postgresql":
            return
        if received:
            sql = "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn"
        else:
            sql = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"
        with connections["r"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()")
            [lsn] = cursor.fetchone()
        deadline = time.monotonic() + 10
        replica = connections["r_replica"]
        while True:
            try:
                # Until then, the database may not be there on the standby.
                with replica.cursor() as cursor:
                    cursor.execute(sql, [lsn])
                    if cursor.fetchone()[0]:
                        return
            except OperationalError:
                replica.close()
            self.assertLess(time.monotonic(), deadline, "the standby lags")
            time.sleep(0.01)

    def served_by(self, function):
        """Which of 'r' and 'r_replica' ran the queries of function, and its result."""
        with CaptureQueriesContext(connections["r"]) as on_primary:
            with CaptureQueriesContext(connections["r_replica"]) as on_replica:
                result = function()
        served = set()
        if any("account" in query["sql"] for query in on_primary.captured_queries):
            served.add("r")
        if any("account" in query["sql"] for query in on_replica.captured_queries):
            served.add("r_replica")
        return served, result

    def pause_replay(self):
        with connections["r_replica"].cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_pause()")

        def resume():
            with connections["r_replica"].cursor() as cursor:
                cursor.execute("SELECT pg_wal_replay_resume()")

        self.addCleanup(resume)
        return resume


@isolate_apps("model_binding")
class ReplicaTests(ReplicaTestCase):
    def test_reads_go_to_the_replica(self):
        served, count = in_a_new_context(
            lambda: self.served_by(lambda: self.Account.objects.count())
        )
        self.assertEqual(served, {"r_replica"})
        self.assertEqual(count, 0)
        served, _ = in_a_new_context(
            lambda: self.served_by(lambda: list(self.Account.objects.all()))
        )
        self.assertEqual(served, {"r_replica"})

    def test_querysets_that_name_the_database_or_write_read_it(self):
        self.Account.objects.create(name="ann")
        self.wait_for_replay()
        cases = {
            "using()": lambda: self.Account.objects.using("r").count(),
            "get_or_create()": lambda: self.Account.objects.get_or_create(name="ann")[
                1
            ],
            "delete()": lambda: self.Account.objects.filter(name="bob").delete(),
        }
        for name, operation in cases.items():
            with self.subTest(name):
                served, _ = in_a_new_context(lambda: self.served_by(operation))
                self.assertEqual(served, {"r"})

    def test_instances_read_from_a_replica_belong_to_the_database(self):
        self.Account.objects.create(name="ann")
        self.wait_for_replay()

        def read_and_save():
            account = self.Account.objects.get()
            account.name = "bob"
            account.save()
            return account

        served, account = in_a_new_context(lambda: self.served_by(read_and_save))
        self.assertEqual(served, {"r", "r_replica"})
        self.assertEqual(account._state.db, "r")
        # Pickled (e.g. cached), an instance is read again by routing.
        fresh = in_a_new_context(self.Account.objects.get)
        self.assertIsNot(type(fresh._state.db), str)
        state = pickle.loads(pickle.dumps(fresh._state))
        self.assertEqual((type(state.db), state.db), (str, "r"))
        with transaction.atomic(using="r"):
            self.assertEqual(self.Account.objects.get().name, "bob")

    def test_atomic_blocks_and_locks_read_the_database(self):
        def in_atomic():
            with transaction.atomic(using="r"):
                return self.Account.objects.count()

        served, _ = in_a_new_context(lambda: self.served_by(in_atomic))
        self.assertEqual(served, {"r"})
        if connections["r"].features.has_select_for_update:

            def locked():
                with transaction.atomic(using="r"):
                    return list(self.Account.objects.select_for_update())

            served, _ = in_a_new_context(lambda: self.served_by(locked))
            self.assertEqual(served, {"r"})

    def test_a_context_reads_its_own_writes(self):
        def write_then_read():
            self.Account.objects.create(name="ann")
            return self.served_by(lambda: self.Account.objects.count())

        served, count = in_a_new_context(write_then_read)
        self.assertEqual(count, 1)
        if connection.vendor != "postgresql":
            # No WAL position to wait for: the database serves the reads.
            self.assertEqual(served, {"r"})
        # Another context didn't write: a replica serves it.
        self.wait_for_replay()
        served, count = in_a_new_context(
            lambda: self.served_by(lambda: self.Account.objects.count())
        )
        self.assertEqual((served, count), ({"r_replica"}, 1))

    def test_writes_in_atomic_blocks_are_seen_after_commit(self):
        def write_then_read():
            with transaction.atomic(using="r"):
                self.Account.objects.create(name="ann")
                self.Account.objects.create(name="bob")
            return self.served_by(lambda: self.Account.objects.count())

        served, count = in_a_new_context(write_then_read)
        self.assertEqual(count, 2)

        def rolled_back_then_read():
            try:
                with transaction.atomic(using="r"):
                    self.Account.objects.create(name="cid")
                    raise ValueError
            except ValueError:
                pass
            return positions.get()

        # A rolled back block leaves nothing to wait for.
        self.assertIsNone(in_a_new_context(rolled_back_then_read))

    def test_writes_stay_tracked_after_an_execute_wrapper(self):
        # The thread's first connection is made inside an execute_wrapper()
        # block, which removes the last wrapper when it ends.
        if connection.vendor == "postgresql":
            self.pause_replay()
        found = []

        def in_a_thread():
            try:
                with connections["r"].execute_wrapper(
                    lambda execute, *args: execute(*args)
                ):
                    self.Account.objects.using("r").count()
                found.append(list(connections["r"].execute_wrappers))
                found.append(
                    self.served_by(
                        lambda: (
                            self.Account.objects.create(name="ann"),
                            self.Account.objects.count(),
                        )[1]
                    )
                )
            finally:
                connections.close_all()

        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        wrappers, (served, count) = found
        self.assertEqual((wrappers, count), ([replicas.track_writes], 1))
        if connection.vendor != "postgresql":
            self.assertEqual(served, {"r"})

    def test_on_commit_callbacks_read_the_blocks_writes(self):
        if connection.vendor == "postgresql":
            self.pause_replay()
        seen = []

        def write():
            with transaction.atomic(using="r"):
                # Registered before the block writes.
                transaction.on_commit(
                    lambda: seen.append(self.served_by(self.Account.objects.count)),
                    using="r",
                )
                self.Account.objects.create(name="ann")

        in_a_new_context(write)
        [(served, count)] = seen
        self.assertEqual(count, 1)
        if connection.vendor != "postgresql":
            self.assertEqual(served, {"r"})

    def test_transactions_without_atomic_read_the_database(self):
        def write_then_read():
            transaction.set_autocommit(False, using="r")
            try:
                self.Account.objects.bulk_create(
                    [self.Account(name="ann"), self.Account(name="bob")]
                )
                # Not committed yet: only the database has the rows.
                before = self.served_by(self.Account.objects.count)
                transaction.commit(using="r")
                after = self.served_by(self.Account.objects.count)
                transaction.commit(using="r")
            finally:
                transaction.set_autocommit(True, using="r")
            return before, after

        before, after = in_a_new_context(write_then_read)
        self.assertEqual(before, ({"r"}, 2))
        self.assertEqual(after, ({"r"}, 2))

    @override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE)
    def test_the_next_request_reads_the_write(self):
        client = Client()
        # Each request in a context of its own, as servers give them.
        response = in_a_new_context(lambda: client.post("/add/"))
        self.assertIn("multidb_positions", response.cookies)
        served, response = in_a_new_context(
            lambda: self.served_by(lambda: client.get("/count/"))
        )
        self.assertEqual(response.content, b"1")
        if connection.vendor != "postgresql":
            self.assertEqual(served, {"r"})
        # A cookie that isn't the middleware's is ignored.
        client.cookies["multidb_positions"] = '{"r": "primary"}'
        served, response = in_a_new_context(
            lambda: self.served_by(lambda: client.get("/count/"))
        )
        self.assertEqual((served, response.content), ({"r_replica"}, b"1"))

    def test_a_replica_that_cant_be_reached_is_left_out(self):
        primary = dict(connections.settings["r"])
        del primary["REPLICAS"]
        gone = dict(primary)
        if connection.vendor == "sqlite":
            gone["NAME"] = "/nonexistent/directory/r.sqlite3"
        else:
            gone["HOST"] = "/nonexistent/directory"
        allowed = mock.patch.object(
            type(self), "databases", {*self.databases, "r_gone"}
        )
        allowed.start()
        self.addCleanup(allowed.stop)
        connections.add("r_gone", gone)
        self.addCleanup(connections.remove, "r_gone")
        connections.remove("r")
        connections.add("r", {**primary, "REPLICAS": ["r_gone"]})
        with self.assertLogs("django.db.replicas", "WARNING") as logs:
            served, count = in_a_new_context(
                lambda: self.served_by(lambda: self.Account.objects.count())
            )
        self.assertEqual((served, count), ({"r"}, 0))
        self.assertIn("The replica 'r_gone' of 'r' is left out", logs.output[0])
        # Left out for a while: no second attempt, no second warning.
        with self.assertNoLogs("django.db.replicas", "WARNING"):
            self.assertEqual(in_a_new_context(self.Account.objects.count), 0)


@isolate_apps("model_binding")
class ReadYourWritesTests(ReplicaTestCase):
    """A standby that replays nothing for a while (PostgreSQL only)."""

    def setUp(self):
        if connection.vendor != "postgresql":
            self.skipTest("SQLite has no standby to pause.")
        super().setUp()

    def test_reads_wait_for_the_replica_to_replay_the_write(self):
        resume = self.pause_replay()

        def write_then_read():
            self.Account.objects.create(name="ann")
            return self.served_by(lambda: self.Account.objects.count())

        served, count = in_a_new_context(write_then_read)
        self.assertEqual((served, count), ({"r"}, 1))
        resume()
        self.wait_for_replay()
        # Once replayed, the replica serves the context again.
        context = contextvars.Context()
        context.run(self.Account.objects.create, name="bob")
        self.wait_for_replay()
        # Not trusting the replay position read a moment ago.
        with mock.patch("django.db.replicas.REPLICA_CHECK_INTERVAL", 0):
            served, count = context.run(
                lambda: self.served_by(lambda: self.Account.objects.count())
            )
        self.assertEqual((served, count), ({"r_replica"}, 2))

    @override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE)
    def test_the_next_request_waits_for_the_replica(self):
        self.pause_replay()
        client = Client()
        in_a_new_context(lambda: client.post("/add/"))
        served, response = in_a_new_context(
            lambda: self.served_by(lambda: client.get("/count/"))
        )
        self.assertEqual((served, response.content), ({"r"}, b"1"))
        # Without the cookie, the next request reads the paused standby.
        client.cookies.clear()
        served, response = in_a_new_context(
            lambda: self.served_by(lambda: client.get("/count/"))
        )
        self.assertEqual((served, response.content), ({"r_replica"}, b"0"))

    def test_asynchronous_commits(self):
        # With synchronous_commit off, a commit returns before its WAL is
        # written: the position to wait for is where it was inserted.
        settings_dict = dict(connections.settings["r"])
        connections.remove("r")
        connections.add(
            "r",
            {**settings_dict, "OPTIONS": {"options": "-c synchronous_commit=off"}},
        )

        def write_then_read(number):
            self.Account.objects.create(name=f"n{number}")
            return self.Account.objects.filter(name=f"n{number}").exists()

        found = [in_a_new_context(lambda: write_then_read(n)) for n in range(30)]
        self.assertEqual(found, [True] * 30)

    def end_replica_session(self):
        """End the session of this thread's connection to the replica."""
        replica = connections["r_replica"]
        in_a_new_context(self.Account.objects.count)
        with replica.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            [pid] = cursor.fetchone()
        killer = connections.create_connection("r_replica")
        try:
            with killer.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            killer.close()

    def test_a_replica_session_that_ends_runs_the_query_elsewhere(self):
        # As when a standby ends it for a conflict with recovery.
        self.end_replica_session()
        with self.assertNoLogs("django.db.replicas", "WARNING"):
            served = in_a_new_context(
                lambda: self.served_by(self.Account.objects.count)
            )
        # Tried on the replica, served by the database; the replica stays in.
        self.assertEqual(served, ({"r", "r_replica"}, 0))
        self.assertEqual(
            in_a_new_context(lambda: self.served_by(self.Account.objects.count)),
            ({"r_replica"}, 0),
        )

    def test_a_replica_session_that_ends_before_the_position_check(self):
        self.end_replica_session()

        def write_then_read():
            self.Account.objects.create(name="ann")
            return self.served_by(self.Account.objects.count)

        with self.assertNoLogs("django.db.replicas", "WARNING"):
            served = in_a_new_context(write_then_read)
        # The check failed, the database served the read, the replica stays.
        self.assertEqual(served, ({"r"}, 1))
        self.assertNotIn("r_replica", replicas._down)

    def test_a_replica_that_breaks_and_cant_be_reached_is_left_out(self):
        self.end_replica_session()
        settings_dict = connections["r_replica"].settings_dict
        self.addCleanup(settings_dict.__setitem__, "HOST", settings_dict["HOST"])
        settings_dict["HOST"] = "/nonexistent/directory"
        with self.assertLogs("django.db.replicas", "WARNING") as logs:
            served = in_a_new_context(
                lambda: self.served_by(self.Account.objects.count)
            )
        self.assertEqual(served, ({"r", "r_replica"}, 0))
        self.assertIn("The replica 'r_replica' of 'r' is left out", logs.output[0])
        # Left out for a while: read from the database, not said again.
        with self.assertNoLogs("django.db.replicas", "WARNING"):
            with CaptureQueriesContext(connections["r"]) as on_primary:
                self.assertEqual(in_a_new_context(self.Account.objects.count), 0)
        self.assertEqual(len(on_primary.captured_queries), 1)

    def test_iterator_follows_the_replica_disable_server_side_cursors(self):
        # As for a standby behind a transaction pooler, unlike its database.
        settings_dict = dict(connections.settings["r_replica"])
        connections.remove("r_replica")
        connections.add(
            "r_replica", {**settings_dict, "DISABLE_SERVER_SIDE_CURSORS": True}
        )
        in_a_new_context(
            lambda: self.Account.objects.bulk_create(
                self.Account(name=name) for name in ["ann", "bob"]
            )
        )
        self.wait_for_replay()

        def iterate():
            rows = self.Account.objects.order_by("name").iterator(chunk_size=1)
            first = next(rows).name
            with connections["r_replica"].cursor() as cursor:
                cursor.execute("SELECT count(*) FROM pg_cursors")
                [cursors] = cursor.fetchone()
            return [first, *(row.name for row in rows)], cursors

        served, (names, cursors) = in_a_new_context(lambda: self.served_by(iterate))
        self.assertEqual(served, {"r_replica"})
        self.assertEqual(names, ["ann", "bob"])
        self.assertEqual(cursors, 0)

    def test_statements_that_arent_strings_are_writes(self):
        if connection.Database.__name__ == "psycopg":
            from psycopg import sql
        else:
            from psycopg2 import sql
        self.pause_replay()
        statement = sql.SQL("INSERT INTO {} (name) VALUES ('ann')").format(
            sql.Identifier(self.Account._meta.db_table)
        )

        def write_then_read():
            with connections["r"].cursor() as cursor:
                cursor.execute(statement)
            return self.served_by(self.Account.objects.count)

        self.assertEqual(in_a_new_context(write_then_read), ({"r"}, 1))

    def test_without_the_position_the_read_is_stale(self):
        # What the position prevents: the same write and read, with the
        # position forgotten, read the paused standby.
        self.pause_replay()

        def write_forget_then_read():
            self.Account.objects.create(name="ann")
            positions.set(None)
            return self.served_by(lambda: self.Account.objects.count())

        served, count = in_a_new_context(write_forget_then_read)
        self.assertEqual((served, count), ({"r_replica"}, 0))

    def configure(self, **extra):
        """Configure 'r' again, with extra settings."""
        settings_dict = dict(connections.settings["r"])
        connections.remove("r")
        connections.add("r", {**settings_dict, **extra})

    def test_reads_wait_up_to_replica_wait(self):
        self.configure(REPLICA_WAIT=5)
        resume = self.pause_replay()

        def write_then_read():
            self.Account.objects.create(name="ann")
            # Replay resumes 0.3 s after the write, however long it took.
            threading.Timer(0.3, in_a_new_context, [resume]).start()
            started = time.monotonic()
            served = self.served_by(self.Account.objects.count)
            return served, time.monotonic() - started

        try:
            served, waited = in_a_new_context(write_then_read)
        finally:
            connections.close_all()
        self.assertEqual(served, ({"r_replica"}, 1))
        self.assertGreater(waited, 0.2)
        self.assertLess(waited, 5)

    def test_reads_wait_no_longer_than_replica_wait(self):
        self.configure(REPLICA_WAIT=0.2)
        self.pause_replay()

        def write_then_read():
            self.Account.objects.create(name="ann")
            started = time.monotonic()
            served = self.served_by(self.Account.objects.count)
            return served, time.monotonic() - started

        served, waited = in_a_new_context(write_then_read)
        self.assertEqual(served, ({"r"}, 1))
        self.assertGreaterEqual(waited, 0.2)

    @mock.patch("django.db.replicas.REPLICA_LAG_INTERVAL", 0)
    def test_a_replica_that_lags_more_than_replica_max_lag_is_left_out(self):
        self.configure(REPLICA_MAX_LAG=0.1)
        resume = self.pause_replay()
        # Another context's write, which this one needn't see.
        in_a_new_context(lambda: self.Account.objects.create(name="ann"))
        # Received, not replayed, and 0.3 s later: 0.3 s behind.
        self.wait_for_replay(received=True)
        time.sleep(0.3)
        with self.assertLogs("django.db.replicas", "WARNING") as logs:
            served = self.served_by(self.Account.objects.count)
        self.assertEqual(served, ({"r"}, 1))
        self.assertIn(
            "The replica 'r_replica' of 'r' is left out while it lags more than "
            "0.1s behind",
            logs.output[0],
        )
        # Said once.
        with self.assertNoLogs("django.db.replicas", "WARNING"):
            self.assertEqual(self.served_by(self.Account.objects.count), ({"r"}, 1))
        resume()
        self.wait_for_replay()
        self.assertEqual(self.served_by(self.Account.objects.count), ({"r_replica"}, 1))

    def test_a_query_the_replica_cancels_runs_on_the_database(self):
        in_a_new_context(lambda: self.Account.objects.create(name="ann"))
        self.wait_for_replay()
        with connections["r_replica"].cursor() as cursor:
            cursor.execute("SET statement_timeout = 50")
        slow = self.Account.objects.annotate(slept=RawSQL("pg_sleep(0.2)", []))
        with self.assertNoLogs("django.db.replicas", "WARNING"):
            served = in_a_new_context(lambda: self.served_by(lambda: len(slow)))
        # Tried on the replica, served by the database; the replica stays in.
        self.assertEqual(served, ({"r", "r_replica"}, 1))
        with connections["r_replica"].cursor() as cursor:
            cursor.execute("RESET statement_timeout")
        self.assertEqual(
            in_a_new_context(lambda: self.served_by(self.Account.objects.count)),
            ({"r_replica"}, 1),
        )

    def test_other_threads_have_their_own_context(self):
        self.pause_replay()
        self.Account.objects.create(name="ann")
        seen = []

        def read():
            try:
                seen.append(self.served_by(self.Account.objects.count))
            finally:
                connections.close_all()

        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
        self.assertEqual(seen, [({"r_replica"}, 0)])


class ReplicaSettingsTests(SimpleTestCase):
    def assertError(self, databases, message):
        with mock.patch.object(connections, "settings", databases):
            errors = check_replicas()
        self.assertEqual([error.id for error in errors], ["multidb.E010"])
        self.assertIn(message, errors[0].msg)

    def test_bad_replicas(self):
        base = {"default": {"ENGINE": SQLITE}, "r": {"ENGINE": SQLITE}}
        cases = [
            ({"REPLICAS": "r"}, "must be a list of database aliases, not 'r'"),
            ({"REPLICAS": ["x"]}, "lists 'x', which isn't configured"),
            ({"REPLICAS": ["p"]}, "lists the database itself"),
            ({"REPLICAS": ["default"]}, "lists 'default'"),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                self.assertError({**base, "p": {"ENGINE": SQLITE, **extra}}, message)
        self.assertError(
            {
                **base,
                "p": {"ENGINE": SQLITE, "REPLICAS": ["r"]},
                "q": {"ENGINE": SQLITE, "REPLICAS": ["r"]},
            },
            "lists 'r', a replica of 'p' too",
        )
        self.assertError(
            {
                **base,
                "p": {"ENGINE": "django.db.backends.postgresql", "REPLICAS": ["r"]},
            },
            "lists 'r', which has another ENGINE",
        )

    def test_replica_mirroring_another_database(self):
        self.assertError(
            {
                "default": {"ENGINE": SQLITE},
                "p": {"ENGINE": SQLITE, "REPLICAS": ["r"]},
                "r": {"ENGINE": SQLITE, "TEST": {"MIRROR": "default"}},
            },
            "lists 'r', which is a test mirror of 'default'",
        )

    def test_binding_to_a_replica(self):
        databases = {
            "default": {"ENGINE": SQLITE},
            "p": {"ENGINE": SQLITE, "REPLICAS": ["r"]},
            "r": {"ENGINE": SQLITE, "TEST": {"MIRROR": "p"}},
        }
        with override_settings(DATABASE_BINDINGS={"auth": "r"}):
            self.assertError(
                databases,
                "Models are bound to the database 'r', a replica of 'p': their "
                "writes would go to the replica.",
            )
        with override_settings(DATABASE_BINDINGS={"auth": "p"}):
            with mock.patch.object(connections, "settings", databases):
                self.assertEqual(check_replicas(), [])
        # A malformed setting is multidb.E007's to report.
        with override_settings(DATABASE_BINDINGS={"auth": ["r"]}):
            with mock.patch.object(connections, "settings", databases):
                self.assertEqual(check_replicas(), [])
            self.assertEqual(check_replicas(), [])

    def test_bad_limits(self):
        base = {
            "default": {"ENGINE": SQLITE},
            "r": {"ENGINE": SQLITE},
        }
        for name, value in [
            ("REPLICA_WAIT", "1"),
            ("REPLICA_WAIT", -1),
            ("REPLICA_MAX_LAG", float("nan")),
            ("REPLICA_MAX_LAG", True),
        ]:
            with self.subTest(name=name, value=value):
                self.assertError(
                    {**base, "p": {"ENGINE": SQLITE, "REPLICAS": ["r"], name: value}},
                    f"The {name} setting of database 'p' must be a number of "
                    f"seconds, not {value!r}.",
                )
        self.assertError(
            {**base, "p": {"ENGINE": SQLITE, "REPLICAS": ["r"], "REPLICA_MAX_LAG": 5}},
            "The REPLICA_MAX_LAG setting of database 'p' needs PostgreSQL",
        )

    def test_added_at_run_time(self):
        before = list(connections)
        msg = (
            "The setting REPLICAS of database 'x' must be a list of database "
            "aliases, not 'r'."
        )
        with self.assertRaisesMessage(ImproperlyConfigured, msg):
            connections.add("x", {"ENGINE": SQLITE, "REPLICAS": "r"})
        self.assertEqual(list(connections), before)
        msg = (
            "The setting REPLICA_WAIT of database 'x' must be a number of "
            "seconds, not '1'."
        )
        with self.assertRaisesMessage(ImproperlyConfigured, msg):
            connections.add("x", {"ENGINE": SQLITE, "REPLICA_WAIT": "1"})
        self.assertEqual(list(connections), before)

    def test_good_replicas(self):
        databases = {
            "default": {"ENGINE": SQLITE},
            "p": {"ENGINE": SQLITE, "REPLICAS": ["r"]},
            "r": {"ENGINE": SQLITE},
        }
        with mock.patch.object(connections, "settings", databases):
            self.assertEqual(check_replicas(), [])
