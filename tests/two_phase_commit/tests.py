"""
Two-phase commit: atomic(using=[...], two_phase=True), the decision log and
recovery, on real servers. The crash tests run the bank-transfer workload
(worker.py) in a child process, kill it or stop a server at each step of the
protocol, run recovery and check that no money was made or lost.
"""

import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from unittest import mock, skipIf, skipUnless

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import (
    DatabaseError,
    IntegrityError,
    NotSupportedError,
    connections,
    transaction,
    twophase,
)
from django.db.models import F
from django.test import SimpleTestCase, TransactionTestCase, override_settings

from .models import Account, Transfer


@contextmanager
def on_protocol_step(hook):
    """Call hook(step, alias) at each step of the two-phase commit protocol."""

    def receiver(sender, step, alias, **kwargs):
        hook(step, alias)

    twophase.protocol_step.connect(receiver)
    try:
        yield
    finally:
        twophase.protocol_step.disconnect(receiver)


WORKER = Path(__file__).with_name("worker.py")
VENDOR = connections["a"].vendor
# The backends with two-phase commit (the servers the tests start allow it).
SUPPORTED = VENDOR in ("postgresql", "mysql")
POSTGRESQL = VENDOR == "postgresql"

# Every step of the protocol with a transfer between 'a' and 'b', and whether
# the transfer has committed once the worker dies there.
STEPS = [
    ("prepare", "a", False),  # before prepare
    ("prepared", "a", False),  # after 1 of 2 prepared
    ("prepare", "b", False),
    ("prepared", "b", False),  # after all prepared
    ("decided", "default", True),  # after the decision is logged
    ("committed", "a", True),  # after 1 of 2 committed
    ("committed", "b", True),  # after all committed, before forgetting
]
# The same with 'a' as the coordinator (TRANSACTION_COORDINATOR="a"), the
# last agent: only 'b' is prepared, the decision is written in the
# transaction of 'a', which commits in one phase.
LAST_AGENT_STEPS = [
    ("prepare", "b", False),
    ("prepared", "b", False),  # after all others prepared
    ("decide", "a", False),  # the decision written, not committed
    ("decided", "a", True),  # 'a' committed, and the decision with it
    ("committed", "b", True),  # after all committed, before forgetting
]
# Where the last agent applies: the coordinator commits all of its
# transaction, DDL included, at once (MySQL commits DDL implicitly).
LAST_AGENT = POSTGRESQL


def in_doubt(alias):
    """Our prepared transactions on database alias."""
    return twophase.in_doubt(connections[alias])


class BankTestCase(TransactionTestCase):
    available_apps = ["two_phase_commit"]
    databases = {"default", "a", "b"}

    def setUp(self):
        Account.objects.using("a").create(name="alice", balance=1000)
        Account.objects.using("b").create(name="bob", balance=1000)
        for alias in ("default", "a"):
            log = connections[alias]
            if SUPPORTED and twophase.LOG_TABLE in log.introspection.table_names():
                # The decision log outlives the flush between tests: start
                # with no abort record of an earlier test.
                twophase.DecisionLog(log).decision_qs.all().delete()

    def tearDown(self):
        for alias in ("a", "b"):
            connections[alias].close()
        if SUPPORTED:
            # Leftover prepared transactions keep the test databases from
            # being dropped.
            transaction.recover(using=["a", "b"], min_age=0)
        super().tearDown()

    def transfer(self, amount, key=None, to="b"):
        """The body of a transfer, inside a block over 'a' and to ('b')."""
        key = key or uuid.uuid4()
        Account.objects.using("a").filter(name="alice").update(
            balance=F("balance") - amount
        )
        Transfer.objects.using("a").create(key=key, amount=-amount)
        Account.objects.using(to).filter(name="bob").update(
            balance=F("balance") + amount
        )
        Transfer.objects.using(to).create(key=key, amount=amount)

    def balances(self):
        return (
            Account.objects.using("a").get(name="alice").balance,
            Account.objects.using("b").get(name="bob").balance,
        )

    def kill_at_each_step(self, steps, coordinator="default"):
        """SIGKILL the worker at each of steps of its second transfer."""
        for step, alias, committed in steps:
            with self.subTest(step=step, alias=alias):
                result = run_worker(3, at=(step, alias, 1), coordinator=coordinator)
                self.assertEqual(result.returncode, -signal.SIGKILL, result.stderr)
                self.assertEqual(result.stdout.split("\n")[0], "done 0")
                transaction.recover(using=["a", "b"], min_age=0)
                applied = self.assertConsistent()
                self.assertEqual(applied, 2 if committed else 1)
                Transfer.objects.using("a").all().delete()
                Transfer.objects.using("b").all().delete()
                Account.objects.using("a").update(balance=1000)
                Account.objects.using("b").update(balance=1000)

    def kill_at_random_times(self, coordinator="default"):
        """SIGKILL the worker at random times (MULTIDB_CRASH_RUNS times)."""
        for run in range(int(os.environ.get("MULTIDB_CRASH_RUNS", 5))):
            with self.subTest(run=run):
                worker = start_worker(1000, coordinator=coordinator)
                self.assertEqual(worker.stdout.readline(), "done 0\n")
                time.sleep(random.uniform(0, 0.3))
                worker.kill()
                worker.communicate()
                transaction.recover(using=["a", "b"], min_age=0)
                self.assertGreater(self.assertConsistent(), 0)

    def assertFailureAtEachStepRollsBack(self, steps):
        """An error raised at each of steps rolls back everything."""
        for step, alias, _ in steps:
            with self.subTest(step=step, alias=alias):

                def hook(at, where):
                    if (at, where) == (step, alias):
                        raise DatabaseError("simulated failure")

                with on_protocol_step(hook):
                    with self.assertRaisesMessage(DatabaseError, "simulated failure"):
                        with transaction.atomic(using=["a", "b"], two_phase=True):
                            self.transfer(5)
                self.assertEqual(self.assertConsistent(), 0)
                self.assertEqual(twophase.aborted(), {})
                for name in ("a", "b"):
                    self.assertIs(connections[name].get_autocommit(), True)
                    self.assertIs(connections[name].in_atomic_block, False)

    def assertConsistent(self):
        """
        No money made or lost, every transfer on both sides or on neither, no
        prepared transaction or decision left. Return how many transfers
        were applied.
        """
        self.assertEqual(in_doubt("a") + in_doubt("b"), [])
        # Decisions carried out are forgotten in batches.
        twophase.forget_finished()
        self.assertEqual(twophase.decisions(), {})
        alice, bob = self.balances()
        self.assertEqual(alice + bob, 2000)
        sides = {
            alias: dict(Transfer.objects.using(alias).values_list("key", "amount"))
            for alias in ("a", "b")
        }
        self.assertEqual(sides["a"].keys(), sides["b"].keys())
        for key, amount in sides["a"].items():
            self.assertEqual(sides["b"][key], -amount)
        self.assertEqual(alice, 1000 + sum(sides["a"].values()))
        return len(sides["a"])


class BadInputTests(BankTestCase):
    """Each is refused before anything is written."""

    def assertUnchanged(self):
        self.assertEqual(self.balances(), (1000, 1000))
        self.assertEqual(Transfer.objects.using("a").count(), 0)

    @skipIf(SUPPORTED, "needs a backend without two-phase commit")
    def test_backend_without_two_phase_commit(self):
        vendor = connections["a"].display_name
        message = f"Database 'a' can't take part in a two-phase commit: the {vendor}"
        with self.assertRaisesMessage(NotSupportedError, message):
            with transaction.atomic(using=["a", "b"], two_phase=True):
                self.transfer(5)
        self.assertUnchanged()

    @skipUnless(SUPPORTED, "needs a backend with two-phase commit")
    def test_alias_given_twice(self):
        message = "Database 'a' is given more than once to a two-phase atomic block."
        with self.assertRaisesMessage(ValueError, message):
            with transaction.atomic(using=["a", "b", connections["a"]], two_phase=True):
                self.transfer(5)
        self.assertUnchanged()

    @skipUnless(SUPPORTED, "needs a backend with two-phase commit")
    def test_databases_from_an_iterator(self):
        with transaction.atomic(using=iter(["a", "b"]), two_phase=True):
            self.transfer(5)
        self.assertEqual(self.assertConsistent(), 1)

    def test_not_databases(self):
        for using in (b"ab", 5, ["a", None]):
            with self.subTest(using=using):
                with self.assertRaisesMessage(TypeError, "using must name databases"):
                    transaction.atomic(using=using, two_phase=True)
        self.assertUnchanged()

    @skipUnless(SUPPORTED, "needs a backend with two-phase commit")
    def test_nested_in_an_ordinary_block(self):
        message = (
            "Database 'b' can't be the participant of a two-phase commit while "
            "it's inside a transaction: a two-phase block must be the outermost "
            "block on each of its databases."
        )
        for outer in (["b"], ["b", "a"]):
            with self.subTest(outer=outer):
                with transaction.atomic(using=outer):
                    Account.objects.using("b").update(balance=0)
                    with self.assertRaisesMessage(NotSupportedError, message):
                        with transaction.atomic(using=["b", "a"], two_phase=True):
                            self.transfer(5)
                    transaction.set_rollback(True, using=outer)
                self.assertUnchanged()

    @skipUnless(SUPPORTED, "needs a backend with two-phase commit")
    def test_nested_in_a_two_phase_block(self):
        with self.assertRaisesMessage(NotSupportedError, "Database 'a' can't be"):
            with transaction.atomic(using=["a", "b"], two_phase=True):
                self.transfer(5)
                with transaction.atomic(using=["a", "b"], two_phase=True):
                    pass
        self.assertUnchanged()

    @skipUnless(SUPPORTED, "needs a backend with two-phase commit")
    def test_coordinator_not_configured(self):
        for value, shown in [("nowhere", "'nowhere'"), (None, "None"), (5, "5")]:
            with self.subTest(value=value):
                message = f"TRANSACTION_COORDINATOR refers to {shown}, which isn't"
                with override_settings(TRANSACTION_COORDINATOR=value):
                    with self.assertRaisesMessage(ImproperlyConfigured, message):
                        with transaction.atomic(using=["a", "b"], two_phase=True):
                            self.transfer(5)
                    with self.assertRaisesMessage(ImproperlyConfigured, message):
                        transaction.recover(using=["a", "b"])
                self.assertUnchanged()

    @skipUnless(VENDOR == "mysql", "MySQL's implicit commits")
    def test_ddl_in_the_block(self):
        with self.assertRaisesMessage(DatabaseError, "XAER_RMFAIL"):
            with transaction.atomic(using=["a", "b"], two_phase=True):
                self.transfer(5)
                with connections["b"].cursor() as cursor:
                    cursor.execute("CREATE TABLE two_phase_commit_extra (id int)")
        self.assertNotIn(
            "two_phase_commit_extra", connections["b"].introspection.table_names()
        )
        self.assertEqual(self.assertConsistent(), 0)

    @skipUnless(VENDOR == "mysql", "XA on the coordinator")
    @override_settings(TRANSACTION_COORDINATOR="a")
    def test_mysql_coordinator_taking_part(self):
        message = (
            "Database 'a' can't be both the coordinator (TRANSACTION_COORDINATOR) "
            "and a participant of a two-phase commit on %s: choose another "
            "coordinator." % connections["a"].display_name
        )
        with self.assertRaisesMessage(NotSupportedError, message):
            with transaction.atomic(using=["a", "b"], two_phase=True):
                self.transfer(5)
        self.assertUnchanged()

    @skipUnless(POSTGRESQL, "PostgreSQL's max_prepared_transactions")
    def test_max_prepared_transactions_zero(self):
        restart_server(1, "-c max_prepared_transactions=0", mode="fast")
        try:
            message = (
                "Database 'b' can't take part in a two-phase commit: its server "
                "has max_prepared_transactions = 0."
            )
            with self.assertRaisesMessage(NotSupportedError, message):
                with transaction.atomic(using=["a", "b"], two_phase=True):
                    self.transfer(5)
            self.assertUnchanged()
        finally:
            restart_server(1, mode="fast")
        # The restarted server takes part again.
        with transaction.atomic(using=["a", "b"], two_phase=True):
            self.transfer(5)
        self.assertEqual(self.assertConsistent(), 1)


@skipUnless(SUPPORTED, "needs a backend with two-phase commit")
class ProtocolTests(BankTestCase):
    def test_branch_moves_only_as_the_protocol_says(self):
        # An active branch can't be committed, a rolled back one can't be
        # prepared: refused before any statement reaches the database.
        from django.test.utils import CaptureQueriesContext

        connection = connections["a"]
        branch = twophase.Participant(connection, None, twophase.new_txid())
        self.assertEqual(branch.state, "active")
        with CaptureQueriesContext(connection) as queries:
            with self.assertRaisesMessage(
                transaction.TransactionManagementError,
                f"The branch of two-phase transaction {branch.txid} on database "
                f"'a' can't go from active to committed.",
            ):
                branch.commit_prepared()
            connection.set_autocommit(False)
            try:
                branch.begin()
                branch.abort()
            finally:
                connection.rollback()
                connection.set_autocommit(True)
            self.assertEqual(branch.state, "rolled back")
            with self.assertRaisesMessage(
                transaction.TransactionManagementError,
                "can't go from rolled back to prepared.",
            ):
                branch.prepare()
        self.assertFalse(any("PREPARE" in q["sql"] for q in queries.captured_queries))
        self.assertEqual(in_doubt("a"), [])
        # The last agent is never prepared.
        agent = twophase.LastAgent(connection, None, twophase.new_txid())
        with self.assertRaisesMessage(
            transaction.TransactionManagementError,
            f"The branch of two-phase transaction {agent.txid} on database 'a' "
            f"can't go from active to prepared.",
        ):
            agent.prepare()

    def test_commit(self):
        with transaction.atomic(using=["a", "b"], two_phase=True):
            self.transfer(5)
        self.assertEqual(self.balances(), (995, 1005))
        self.assertEqual(self.assertConsistent(), 1)

    def test_decorator_and_reuse(self):
        @transaction.atomic(using=["a", "b"], two_phase=True)
        def move(amount):
            self.transfer(amount)

        move(5)
        move(7)
        self.assertEqual(self.balances(), (988, 1012))
        self.assertEqual(self.assertConsistent(), 2)

    def test_exception_rolls_back_everywhere(self):
        with self.assertRaises(ZeroDivisionError):
            with transaction.atomic(using=["a", "b"], two_phase=True):
                self.transfer(5)
                1 / 0
        self.assertEqual(self.assertConsistent(), 0)

    def test_set_rollback_rolls_back_everywhere(self):
        with transaction.atomic(using=["a", "b"], two_phase=True):
            self.transfer(5)
            transaction.set_rollback(True, using="b")
        self.assertEqual(self.assertConsistent(), 0)

    def test_inner_blocks_nest(self):
        with transaction.atomic(using=["a", "b"], two_phase=True):
            self.transfer(5)
            with self.assertRaises(IntegrityError):
                with transaction.atomic(using="b"):
                    Account.objects.using("b").create(name="bob", balance=1)
            with transaction.atomic(using=["a", "b"]):
                self.transfer(1)
        self.assertEqual(self.balances(), (994, 1006))
        self.assertEqual(self.assertConsistent(), 2)

    @skipUnless(POSTGRESQL, "a failed PostgreSQL transaction")
    def test_failed_transaction_is_not_prepared(self):
        # PREPARE TRANSACTION on a failed transaction answers ROLLBACK
        # without raising: 'a' must not commit alone.
        with self.assertRaisesMessage(
            DatabaseError, "The transaction on database 'b' failed and can't be"
        ):
            with transaction.atomic(using=["a", "b"], two_phase=True):
                self.transfer(5)
                try:
                    with connections["b"].cursor() as cursor:
                        cursor.execute("SELECT 1 / 0")
                except DatabaseError:
                    pass
        self.assertEqual(self.assertConsistent(), 0)

    def test_failure_before_the_decision_rolls_back(self):
        self.assertFailureAtEachStepRollsBack(STEPS[:4])

    def test_failure_after_the_decision_commits(self):
        # The session of 'b' dies after the decision: the block has committed
        # and must not raise; recovery finishes 'b'.
        def hook(step, alias):
            if step == "decided":
                terminate_session("b")

        with on_protocol_step(hook):
            with self.assertLogs("django.db.transaction", "ERROR") as logs:
                with transaction.atomic(using=["a", "b"], two_phase=True):
                    self.transfer(5)
        self.assertIn("on database 'b' failed", logs.output[0])
        self.assertIn("recover_transactions will finish it", logs.output[0])
        connections["b"].close()
        self.assertEqual(len(in_doubt("b")), 1)
        self.assertEqual(len(twophase.decisions()), 1)
        report = transaction.recover(using=["a", "b"], min_age=3600)
        self.assertEqual([entry.action for entry in report], ["Committed"])
        self.assertEqual(self.balances(), (995, 1005))
        self.assertEqual(self.assertConsistent(), 1)

    def test_on_commit_runs_once_after_the_decision(self):
        calls = []

        def callback(name):
            calls.append((name, len(twophase.decisions()), len(in_doubt("b"))))

        with transaction.atomic(using=["a", "b"], two_phase=True):
            self.transfer(5)
            transaction.on_commit(lambda: callback("a"), using="a")
            transaction.on_commit(lambda: callback("both"), using=["a", "b"])
            transaction.on_commit(lambda: callback("b"), using="b")
            self.assertEqual(calls, [])
        # In the order registered, after phase two (the decision is
        # forgotten with the next batch).
        self.assertEqual(calls, [("a", 1, 0), ("both", 1, 0), ("b", 1, 0)])

    def test_decisions_are_forgotten_in_batches(self):
        with mock.patch.object(twophase, "FORGET_BATCH", 3):
            for count in (1, 2, 0, 1):
                with transaction.atomic(using=["a", "b"], two_phase=True):
                    self.transfer(1)
                self.assertEqual(len(twophase.decisions()), count)
        # recover() forgets what this process keeps for its next batch.
        self.assertEqual(transaction.recover(using=["a", "b"]), [])
        self.assertEqual(twophase.decisions(), {})
        self.assertEqual(self.assertConsistent(), 4)

    def test_on_commit_does_not_run_on_rollback(self):
        calls = []
        with self.assertRaises(ZeroDivisionError):
            with transaction.atomic(using=["a", "b"], two_phase=True):
                transaction.on_commit(lambda: calls.append(1), using="a")
                1 / 0
        self.assertEqual(calls, [])

    def test_decision_log_created_on_first_use(self):
        coordinator = connections["default"]
        with coordinator.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {twophase.LOG_TABLE}")
        twophase.DecisionLog._ready.clear()
        self.assertEqual(twophase.decisions(), {})
        with transaction.atomic(using=["a", "b"], two_phase=True):
            self.transfer(5)
        self.assertIn(twophase.LOG_TABLE, coordinator.introspection.table_names())
        self.assertEqual(self.assertConsistent(), 1)


@skipUnless(LAST_AGENT, "the coordinator as the last agent")
@override_settings(TRANSACTION_COORDINATOR="a")
class LastAgentTests(BankTestCase):
    """The coordinator 'a' takes part: it's the last agent."""

    def test_commit_prepares_only_the_others(self):
        steps = []
        seen = {}

        def hook(step, alias):
            steps.append((step, alias))
            if step == "decide":
                # The decision is in the transaction of 'a', not committed.
                seen["inside"] = twophase.DecisionLog(connections["a"]).entries()
                other = connections.create_connection("a")
                table = other.ops.quote_name(twophase.LOG_TABLE)
                try:
                    with other.cursor() as cursor:
                        cursor.execute(f"SELECT txid FROM {table}")
                        seen["outside"] = cursor.fetchall()
                finally:
                    other.close()

        with on_protocol_step(hook):
            with transaction.atomic(using=["a", "b"], two_phase=True):
                self.transfer(5)
        self.assertEqual(steps, [(step, alias) for step, alias, _ in LAST_AGENT_STEPS])
        self.assertEqual(list(seen["inside"].values()), [["a", "b"]])
        self.assertEqual(seen["outside"], [])
        self.assertEqual(self.balances(), (995, 1005))
        self.assertEqual(self.assertConsistent(), 1)
        self.assertEqual(twophase.decisions(connections["default"]), {})

    def test_exception_and_set_rollback_roll_back_everywhere(self):
        with self.assertRaises(ZeroDivisionError):
            with transaction.atomic(using=["b", "a"], two_phase=True):
                self.transfer(5)
                1 / 0
        with transaction.atomic(using=["b", "a"], two_phase=True):
            self.transfer(5)
            transaction.set_rollback(True, using="a")
        self.assertEqual(self.assertConsistent(), 0)

    def test_failure_before_the_decision_is_committed_rolls_back(self):
        self.assertFailureAtEachStepRollsBack(LAST_AGENT_STEPS[:3])

    def test_failure_after_the_decision_commits(self):
        def hook(step, alias):
            if (step, alias) == ("decided", "a"):
                terminate_session("b")

        with on_protocol_step(hook):
            with self.assertLogs("django.db.transaction", "ERROR") as logs:
                with transaction.atomic(using=["a", "b"], two_phase=True):
                    self.transfer(5)
        self.assertIn("on database 'b' failed", logs.output[0])
        connections["b"].close()
        self.assertEqual(len(in_doubt("b")), 1)
        report = transaction.recover(using=["a", "b"], min_age=3600)
        self.assertEqual([entry.action for entry in report], ["Committed"])
        self.assertEqual(self.assertConsistent(), 1)

    def test_commit_of_the_last_agent_fails(self):
        # The session of 'a' dies before its commit: the decision went with
        # it, the log says so (the abort is recorded), 'b' is rolled back.
        def hook(step, alias):
            if (step, alias) == ("decide", "a"):
                terminate_session("a")

        with on_protocol_step(hook):
            message = "on database 'a' failed: nothing was committed."
            with self.assertRaisesMessage(twophase.TransactionAborted, message):
                with transaction.atomic(using=["a", "b"], two_phase=True):
                    self.transfer(5)
        self.assertEqual(self.assertConsistent(), 0)
        self.assertEqual(len(twophase.aborted()), 1)

    def test_on_commit_runs_once_after_the_decision(self):
        calls = []

        def callback(name):
            calls.append((name, len(twophase.decisions()), len(in_doubt("b"))))

        with transaction.atomic(using=["a", "b"], two_phase=True):
            self.transfer(5)
            transaction.on_commit(lambda: callback("b"), using="b")
            transaction.on_commit(lambda: callback("a"), using="a")
        self.assertEqual(calls, [("b", 1, 0), ("a", 1, 0)])

    def test_recovery_aborts_a_stalled_prepare(self):
        # Recovery rolls back 'b' while it's being prepared and records the
        # abort: the decision written in the transaction of 'a' then
        # conflicts with it and everything rolls back.
        stalled = StalledPrepareTests.run_with_recovery_during_prepare
        with self.assertRaisesMessage(DatabaseError, "Recovery rolled back"):
            with self.assertLogs("django.db.transaction", "WARNING"):
                stalled(self, min_age=0, at=("prepared", "b"))
        self.assertEqual([e.action for e in self.reports[0]], ["Rolled back"])
        self.assertEqual(self.assertConsistent(), 0)
        self.assertEqual(len(twophase.aborted()), 1)

    def test_recovery_leaves_a_young_transaction(self):
        stalled = StalledPrepareTests.run_with_recovery_during_prepare
        report = stalled(self, min_age=3600, at=("prepared", "b"))
        self.assertEqual([entry.action for entry in report], ["Left"])
        self.assertEqual(self.assertConsistent(), 1)

    def test_kill_at_each_step(self):
        self.kill_at_each_step(LAST_AGENT_STEPS, coordinator="a")

    def test_kill_at_random_times(self):
        self.kill_at_random_times(coordinator="a")


@skipUnless(SUPPORTED, "needs a backend with two-phase commit")
class RecoveryTests(BankTestCase):
    def leave_prepared(self):
        """Leave one transfer prepared on both databases, undecided."""
        result = run_worker(1, at=("prepared", "b", 0))
        self.assertEqual(result.returncode, -signal.SIGKILL)
        self.assertEqual(len(in_doubt("a")), 1)
        self.assertEqual(len(in_doubt("b")), 1)

    def test_decision_log_missing_on_the_coordinator(self):
        # The coordinator lost its log (or TRANSACTION_COORDINATOR moved):
        # recovery recreates it to record its aborts.
        self.leave_prepared()
        log = connections["default"]
        with log.cursor() as cursor:
            cursor.execute(f"DROP TABLE {log.ops.quote_name(twophase.LOG_TABLE)}")
        twophase.DecisionLog._ready.clear()
        report = transaction.recover(using=["a", "b"], min_age=0)
        self.assertEqual(
            [entry.action for entry in report], ["Rolled back", "Rolled back"]
        )
        self.assertEqual(self.assertConsistent(), 0)
        self.assertEqual(len(twophase.aborted()), 1)

    def test_young_transactions_are_left_alone(self):
        self.leave_prepared()
        report = transaction.recover(using=["a", "b"], min_age=3600)
        self.assertEqual([entry.action for entry in report], ["Left", "Left"])
        self.assertIn("younger than min_age", str(report[0]))
        self.assertEqual(len(in_doubt("a")), 1)
        report = transaction.recover(using=["a", "b"], min_age=0)
        self.assertEqual(
            [(entry.action, entry.alias) for entry in report],
            [("Rolled back", "a"), ("Rolled back", "b")],
        )
        self.assertEqual(self.assertConsistent(), 0)

    def test_dry_run_and_command(self):
        self.leave_prepared()
        out = io.StringIO()
        databases = ["--database", "a", "--database", "b"]
        call_command(
            "recover_transactions", *databases, "--dry-run", "--min-age=0", stdout=out
        )
        self.assertIn("Would have rolled back djmdb_", out.getvalue())
        self.assertIn("on database 'b'", out.getvalue())
        self.assertIn("2 in-doubt transaction(s) found (dry run).", out.getvalue())
        self.assertEqual(len(in_doubt("a")), 1)
        out = io.StringIO()
        call_command("recover_transactions", *databases, "--min-age=0", stdout=out)
        self.assertIn("Rolled back djmdb_", out.getvalue())
        self.assertEqual(self.assertConsistent(), 0)
        out = io.StringIO()
        call_command("recover_transactions", *databases, stdout=out)
        self.assertEqual(out.getvalue(), "0 in-doubt transaction(s) found.\n")

    @skipUnless(POSTGRESQL, "stops a PostgreSQL server with pg_ctl")
    def test_unreachable_database_is_skipped(self):
        result = run_worker(1, at=("decided", "default", 0))
        self.assertEqual(result.returncode, -signal.SIGKILL)
        stop_server(1)
        try:
            with self.assertLogs("django.db.transaction", "WARNING") as logs:
                report = transaction.recover(using=["a", "b"], min_age=0)
        finally:
            start_server(1)
        self.assertIn("Recovery skipped database 'b'", logs.output[0])
        # 'a' is settled; the decision waits for 'b'.
        self.assertEqual([(e.action, e.alias) for e in report], [("Committed", "a")])
        self.assertEqual(len(twophase.decisions()), 1)
        transaction.recover(using=["a", "b"], min_age=0)
        self.assertEqual(self.assertConsistent(), 1)

    @skipUnless(VENDOR == "mysql", "MariaDB's XA sessions")
    def test_transaction_of_a_live_session_is_left_alone(self):
        # MariaDB refuses to finish a prepared XA transaction whose session is
        # alive (XAER_NOTA): recovery reports it and leaves it to its owner,
        # but it has recorded the abort, so the owner can't decide to commit
        # any more: the block rolls back and raises.
        worker = start_worker(1, at=("prepared", "b", 0), action="pause")
        self.assertEqual(worker.stdout.readline(), "paused\n")
        report = transaction.recover(using=["a", "b"], min_age=0)
        self.assertEqual(
            [(e.action, e.alias) for e in report], [("Left", "a"), ("Left", "b")]
        )
        self.assertIn("XAER_NOTA", report[0].reason)
        worker.stdin.write("\n")
        worker.stdin.flush()
        out, err = worker.communicate(timeout=60)
        self.assertEqual(worker.returncode, 0, err)
        self.assertTrue(out.startswith("failed 0: Recovery rolled back"), out)
        self.assertEqual(self.assertConsistent(), 0)
        self.assertEqual(len(twophase.aborted()), 1)

    def test_foreign_prepared_transactions_are_left_alone(self):
        prepare_foreign_transaction("b", "someone_else")
        try:
            self.assertEqual(transaction.recover(using=["a", "b"], min_age=0), [])
            with connections["b"].cursor() as cursor:
                if POSTGRESQL:
                    cursor.execute("SELECT gid FROM pg_prepared_xacts")
                    gids = [row[0] for row in cursor.fetchall()]
                else:
                    cursor.execute("XA RECOVER")
                    gids = [bytes(row[3]).decode() for row in cursor.fetchall()]
            self.assertEqual(gids, ["someone_else"])
        finally:
            finish_foreign_transaction("b", "someone_else")


@skipUnless(SUPPORTED, "needs a backend with two-phase commit")
class CrashTests(BankTestCase):
    """SIGKILL the worker at each step, then recover."""

    def test_kill_at_each_step(self):
        self.kill_at_each_step(STEPS)

    def test_kill_at_random_times(self):
        self.kill_at_random_times()


@skipUnless(SUPPORTED, "needs a backend with two-phase commit")
class ConcurrentRecoveryTests(BankTestCase):
    def test_recovery_while_transfers_run(self):
        # With min_age far above the duration of a transfer (even on a busy
        # machine), recovery never touches a transfer in flight.
        worker = start_worker(300)
        runs = 0
        while worker.poll() is None:
            transaction.recover(using=["a", "b"], min_age=60)
            runs += 1
        out, err = worker.communicate()
        self.assertEqual(worker.returncode, 0, err)
        self.assertEqual(out.count("done"), 300, out)
        self.assertGreater(runs, 1)
        transaction.recover(using=["a", "b"], min_age=0)
        self.assertEqual(self.assertConsistent(), 300)


@skipUnless(SUPPORTED, "needs a backend with two-phase commit")
class StalledPrepareTests(BankTestCase):
    """
    Recovery runs while a block's prepare phase stalls: the decision log lets
    exactly one of commit and abort win, whatever min_age says.
    """

    def run_with_recovery_during_prepare(self, min_age, stall=0.0, at=("prepare", "b")):
        stalled = threading.Event()
        recovered = threading.Event()
        self.reports = reports = []

        def hook(step, alias):
            if (step, alias) == at:
                stalled.set()
                recovered.wait(30)
                time.sleep(stall)

        def recovery():
            stalled.wait(30)
            time.sleep(stall)
            try:
                reports.append(transaction.recover(using=["a", "b"], min_age=min_age))
            finally:
                connections.close_all()
                recovered.set()

        thread = threading.Thread(target=recovery)
        thread.start()
        with on_protocol_step(hook):
            try:
                with transaction.atomic(using=["a", "b"], two_phase=True):
                    self.transfer(5)
            finally:
                thread.join()
        return reports[0]

    def test_recovery_aborts_first_and_the_block_raises(self):
        message = "before its commit was decided: nothing was committed."
        with self.assertRaisesMessage(DatabaseError, message):
            with self.assertLogs("django.db.transaction", "WARNING"):
                self.run_with_recovery_during_prepare(min_age=0)
        # Recovery recorded the abort and rolled back 'a', prepared (MariaDB
        # leaves that to the live session that owns it); the block then
        # rolled back what was left.
        action = "Rolled back" if POSTGRESQL else "Left"
        self.assertEqual([e.action for e in self.reports[0]], [action])
        self.assertEqual(self.balances(), (1000, 1000))
        self.assertEqual(self.assertConsistent(), 0)
        # The abort is recorded: no later decision to commit can win.
        self.assertEqual(len(twophase.aborted()), 1)
        # A second recovery has nothing to do and forgets nothing it needs.
        self.assertEqual(transaction.recover(using=["a", "b"], min_age=0), [])
        self.assertEqual(len(twophase.aborted()), 1)

    def test_min_age_is_only_a_speed_knob(self):
        # min_age=1 with a prepare stalled beyond it: the same outcome.
        with self.assertRaisesMessage(DatabaseError, "Recovery rolled back"):
            with self.assertLogs("django.db.transaction", "WARNING"):
                self.run_with_recovery_during_prepare(min_age=1, stall=1.2)
        self.assertEqual(self.assertConsistent(), 0)

    def test_young_transaction_is_left_and_commits(self):
        # Recovery with a large min_age leaves the block alone: it commits.
        report = self.run_with_recovery_during_prepare(min_age=3600)
        self.assertEqual([entry.action for entry in report], ["Left"])
        self.assertEqual(self.balances(), (995, 1005))
        self.assertEqual(self.assertConsistent(), 1)
        self.assertEqual(twophase.aborted(), {})

    def test_old_abort_records_are_forgotten(self):
        with self.assertRaisesMessage(DatabaseError, "Recovery rolled back"):
            with self.assertLogs("django.db.transaction", "WARNING"):
                self.run_with_recovery_during_prepare(min_age=0)
        (txid,) = twophase.aborted()
        with mock.patch.object(twophase, "ABORT_RECORD_LIFETIME", -1):
            transaction.recover(using=["a", "b"], min_age=0)
        self.assertEqual(twophase.aborted(), {})

    def test_negative_min_age_is_refused(self):
        for value in (-1, -0.5, float("nan")):
            with self.subTest(value=value):
                with self.assertRaisesMessage(ValueError, "min_age must be"):
                    transaction.recover(using=["a", "b"], min_age=value)
        with self.assertRaisesMessage(TypeError, "min_age must be"):
            transaction.recover(using=["a", "b"], min_age="5")
        with self.assertRaisesMessage(CommandError, "--min-age: '-1'"):
            call_command("recover_transactions", "--min-age=-1")


@skipUnless(SUPPORTED, "needs a backend with two-phase commit")
class SharedBlockTests(BankTestCase):
    def test_one_decorated_function_in_eight_threads(self):
        @transaction.atomic(using=["a", "b"], two_phase=True)
        def move(amount):
            self.transfer(amount)

        errors = []

        def work():
            try:
                for _ in range(5):
                    move(1)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(self.balances(), (960, 1040))
        self.assertEqual(self.assertConsistent(), 40)


@skipUnless(SUPPORTED, "needs a backend with two-phase commit")
class HostileAliasTests(BankTestCase):
    """
    The alias names the prepared transaction: ids reach the server through
    the driver's quoting, never pasted into SQL.
    """

    hostile = [
        "\\'; CREATE TABLE pwned (i int); --",
        "o'brien\\",
        'dq"; CREATE TABLE pwned (i int); --',
        "tenant-ü-ß",
    ]

    def add_alias(self, alias, **options):
        settings_dict = {**connections["b"].settings_dict}
        if options:
            settings_dict["OPTIONS"] = {**settings_dict["OPTIONS"], **options}
        connections.add(alias, settings_dict)
        allowed = mock.patch.object(type(self), "databases", {*self.databases, alias})
        allowed.start()
        self.addCleanup(allowed.stop)
        self.addCleanup(connections.remove, alias)
        self.addCleanup(lambda: connections[alias].close())

    def test_hostile_aliases(self):
        options = {}
        if POSTGRESQL:
            # Backslashes are escapes in string literals with this off.
            options = {"options": "-c standard_conforming_strings=off"}
        for alias in self.hostile:
            with self.subTest(alias=alias):
                self.add_alias(alias, **options)
                with transaction.atomic(using=["a", alias], two_phase=True):
                    self.transfer(5, to=alias)
                tables = connections[alias].introspection.table_names()
                self.assertNotIn("pwned", tables)
                twophase.forget_finished()
                self.assertEqual(twophase.decisions(), {})
                # A transaction left prepared under that alias is recovered.
                result = run_worker(1, at=("prepared", "b", 0))
                self.assertEqual(result.returncode, -signal.SIGKILL, result.stderr)
                transaction.recover(using=["a", "b", alias], min_age=0)
                self.assertEqual(in_doubt(alias) + in_doubt("a") + in_doubt("b"), [])
        self.assertNotIn("pwned", connections["b"].introspection.table_names())
        self.assertEqual(self.assertConsistent(), len(self.hostile))

    def test_alias_too_long_for_a_transaction_id(self):
        limit = 199 - len(twophase.new_txid()) - 1 if POSTGRESQL else 64
        alias = "x" * (limit + 1)
        self.add_alias(alias)
        message = f"Database '{alias}' can't take part in a two-phase commit"
        with self.assertRaisesMessage(NotSupportedError, message):
            with transaction.atomic(using=["a", alias], two_phase=True):
                self.transfer(5, to=alias)
        self.assertEqual(self.balances(), (1000, 1000))
        self.assertEqual(self.assertConsistent(), 0)
        # The longest alias that fits works.
        alias = "y" * limit
        self.add_alias(alias)
        with transaction.atomic(using=["a", alias], two_phase=True):
            self.transfer(5, to=alias)
        self.assertEqual(self.assertConsistent(), 1)


@skipUnless(POSTGRESQL, "stops a PostgreSQL server with pg_ctl")
class ServerStopTests(BankTestCase):
    """Stop the server of 'b' (pg_ctl stop -m immediate) mid-protocol."""

    def stop_server_at(self, step, alias, transfers, coordinator="default", index=1):
        worker = start_worker(
            transfers, at=(step, alias, 0), action="pause", coordinator=coordinator
        )
        self.assertEqual(worker.stdout.readline(), "paused\n")
        restart_server(index)
        worker.stdin.write("\n")
        worker.stdin.flush()
        out, err = worker.communicate(timeout=60)
        self.assertEqual(worker.returncode, 0, err)
        transaction.recover(using=["a", "b"], min_age=0)
        return out, err

    def test_before_the_decision(self):
        out, _ = self.stop_server_at("prepared", "a", transfers=2)
        self.assertTrue(out.startswith("failed 0"), out)
        self.assertIn("done 1", out)
        self.assertEqual(self.assertConsistent(), 1)

    def test_after_the_decision(self):
        # The transfer has committed: the block returns normally and recovery
        # finishes 'b' (until then, the prepared transaction keeps its locks).
        out, err = self.stop_server_at("decided", "default", transfers=1)
        self.assertEqual(out, "done 0\n")
        self.assertIn("on database 'b' failed", err)
        self.assertEqual(self.assertConsistent(), 1)

    @override_settings(TRANSACTION_COORDINATOR="a")
    def test_last_agent_before_the_decision(self):
        out, _ = self.stop_server_at("prepare", "b", transfers=2, coordinator="a")
        self.assertTrue(out.startswith("failed 0"), out)
        self.assertIn("done 1", out)
        self.assertEqual(self.assertConsistent(), 1)

    @override_settings(TRANSACTION_COORDINATOR="a")
    def test_last_agent_after_the_decision(self):
        out, err = self.stop_server_at("decided", "a", transfers=1, coordinator="a")
        self.assertEqual(out, "done 0\n")
        self.assertIn("on database 'b' failed", err)
        self.assertEqual(self.assertConsistent(), 1)

    @override_settings(TRANSACTION_COORDINATOR="a")
    def test_last_agent_server_stops_before_its_commit(self):
        # The server of 'a' (and of the decision) restarts before 'a'
        # commits: the commit fails, the log then says it didn't commit.
        out, err = self.stop_server_at(
            "decide", "a", transfers=2, coordinator="a", index=0
        )
        self.assertIn("failed 0: Committing two-phase transaction", out)
        self.assertIn("nothing was committed", out)
        self.assertIn("done 1", out)
        self.assertEqual(self.assertConsistent(), 1)

    @override_settings(TRANSACTION_COORDINATOR="a")
    def test_last_agent_server_down_at_its_commit(self):
        # The server of 'a' is down when 'a' commits: whether the transfer
        # committed can't be told until it's back; recovery then settles it.
        worker = start_worker(1, at=("decide", "a", 0), action="pause", coordinator="a")
        self.assertEqual(worker.stdout.readline(), "paused\n")
        stop_server(0)
        try:
            worker.stdin.write("\n")
            worker.stdin.flush()
            out, err = worker.communicate(timeout=60)
        finally:
            start_server(0)
        self.assertEqual(worker.returncode, 0, err)
        self.assertIn("whether it committed can't be told", out)
        self.assertEqual(len(in_doubt("b")), 1)
        transaction.recover(using=["a", "b"], min_age=0)
        self.assertEqual(self.assertConsistent(), 0)


def worker_environment(at=None, action="kill", coordinator="default"):
    databases = {
        alias: {
            key: connections[alias].settings_dict[key]
            for key in ("ENGINE", "NAME", "HOST", "PORT", "USER", "PASSWORD", "OPTIONS")
        }
        for alias in ("default", "a", "b")
    }
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(path for path in sys.path if path),
        MULTIDB_WORKER_DATABASES=json.dumps(databases),
        MULTIDB_WORKER_ACTION=action,
        MULTIDB_WORKER_COORDINATOR=coordinator,
    )
    if at:
        env["MULTIDB_WORKER_AT"] = " ".join(map(str, at))
    return env


def run_worker(transfers, at=None, coordinator="default"):
    return subprocess.run(
        [sys.executable, str(WORKER), str(transfers)],
        env=worker_environment(at, coordinator=coordinator),
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_worker(transfers, at=None, action="kill", coordinator="default"):
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(transfers)],
        env=worker_environment(at, action, coordinator),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pg_ctl(*args):
    """
    Run pg_ctl as the owner of the throwaway servers
    (scripts/servers/pgcluster.py).
    """
    command = [os.path.join(os.environ["MULTIDB_PG_BINDIR"], "pg_ctl"), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def stop_server(index, mode="immediate"):
    """Stop a throwaway server, abruptly by default."""
    data = os.environ["MULTIDB_PGDATA"].split(os.pathsep)[index]
    pg_ctl("stop", "--pgdata", data, "-m", mode, "--wait")


def start_server(index, options=""):
    data = os.environ["MULTIDB_PGDATA"].split(os.pathsep)[index]
    log = os.path.join(os.path.dirname(data), "server.log")
    pg_ctl("start", "--pgdata", data, "--wait", "--log", log, "--options", options)
    connections.close_all()


def restart_server(index, options="", mode="immediate"):
    """
    Stop a throwaway server (abruptly by default) and start it again. A
    server started with max_prepared_transactions = 0 can't replay prepared
    transactions: stop it cleanly (mode="fast") before.
    """
    stop_server(index, mode)
    start_server(index, options)


def terminate_session(alias):
    """End the server session of connection alias from another session."""
    other = connections.create_connection(alias)
    try:
        with other.cursor() as cursor:
            if POSTGRESQL:
                pid = connections[alias].connection.info.backend_pid
                cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])
                assert cursor.fetchone()[0] is True
            else:
                thread_id = connections[alias].connection.thread_id()
                cursor.execute("KILL CONNECTION %s", [thread_id])
                # KILL returns before the session has ended (and let go of
                # its prepared transaction): wait for it, as PostgreSQL does.
                deadline = time.monotonic() + 10
                while True:
                    cursor.execute(
                        "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                        "WHERE ID = %s",
                        [thread_id],
                    )
                    if not cursor.fetchone()[0]:
                        break
                    assert time.monotonic() < deadline, "the session didn't end"
                    time.sleep(0.01)
    finally:
        other.close()


def prepare_foreign_transaction(alias, gid):
    """Leave a prepared transaction that isn't ours on database alias."""
    other = connections.create_connection(alias)
    try:
        with other.cursor() as cursor:
            insert = "INSERT INTO two_phase_commit_account VALUES (99, 'x', 1)"
            if POSTGRESQL:
                cursor.execute("BEGIN")
                cursor.execute(insert)
                cursor.execute(f"PREPARE TRANSACTION '{gid}'")
            else:
                cursor.execute(f"XA START '{gid}'")
                cursor.execute(insert)
                cursor.execute(f"XA END '{gid}'")
                cursor.execute(f"XA PREPARE '{gid}'")
    finally:
        other.close()


def finish_foreign_transaction(alias, gid):
    with connections[alias].cursor() as cursor:
        if POSTGRESQL:
            cursor.execute(f"ROLLBACK PREPARED '{gid}'")
        else:
            cursor.execute(f"XA ROLLBACK '{gid}'")


def run_checks():
    # The tests keep unbound models on every database on purpose.
    return [error for error in checks.run_checks() if error.id != "multidb.W001"]


class CoordinatorCheckTests(SimpleTestCase):
    def test_unknown_coordinator(self):
        with override_settings(TRANSACTION_COORDINATOR="nowhere"):
            errors = run_checks()
        self.assertEqual([error.id for error in errors], ["multidb.E006"])
        self.assertEqual(
            errors[0].msg,
            "TRANSACTION_COORDINATOR refers to 'nowhere', which isn't a "
            "configured database.",
        )
        self.assertIn("'default', 'a', 'b'", errors[0].hint)
        self.assertEqual(run_checks(), [])

    def test_malformed_coordinator(self):
        for value, shown in [(None, "None"), (["a"], "['a']"), ("", "''")]:
            with self.subTest(value=value):
                with override_settings(TRANSACTION_COORDINATOR=value):
                    errors = run_checks()
                self.assertEqual([error.id for error in errors], ["multidb.E006"])
                self.assertEqual(
                    errors[0].msg,
                    f"TRANSACTION_COORDINATOR refers to {shown}, which isn't a "
                    f"configured database.",
                )
