"""
The bank-transfer workload of the two-phase commit tests, run as a child
process so that it can be killed at any point:

    python worker.py TRANSFERS

moves money from alice's account on database 'a' to bob's on 'b', one
two-phase transaction per transfer. The environment gives the databases
(MULTIDB_WORKER_DATABASES, JSON) and, optionally, a step of the protocol
(MULTIDB_WORKER_AT="step alias transfer") at which the worker kills itself
with SIGKILL (MULTIDB_WORKER_ACTION=kill) or says "paused" and waits for a
line on its standard input (MULTIDB_WORKER_ACTION=pause).
MULTIDB_WORKER_COORDINATOR sets TRANSACTION_COORDINATOR ('default' unless
set; 'a' makes 'a' the last agent). A transfer that fails is reported and the
loop goes on.
"""

import json
import os
import random
import signal
import sys
import uuid

import django
from django.conf import settings


def main(transfers: int) -> None:
    settings.configure(
        DATABASES=json.loads(os.environ["MULTIDB_WORKER_DATABASES"]),
        INSTALLED_APPS=["two_phase_commit"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=False,
        TRANSACTION_COORDINATOR=os.environ.get("MULTIDB_WORKER_COORDINATOR", "default"),
        LOGGING={
            "version": 1,
            "handlers": {"stderr": {"class": "logging.StreamHandler"}},
            "loggers": {"django.db.transaction": {"handlers": ["stderr"]}},
        },
    )
    django.setup()
    from django.db import DatabaseError, connections, transaction, twophase
    from django.db.models import F

    from two_phase_commit.models import Account, Transfer

    at = os.environ.get("MULTIDB_WORKER_AT", "").split()
    action = os.environ.get("MULTIDB_WORKER_ACTION", "kill")
    current = [0]

    def hook(sender: object, step: str, alias: str, **kwargs: object) -> None:
        if at == [step, alias, str(current[0])]:
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            print("paused", flush=True)
            sys.stdin.readline()

    twophase.protocol_step.connect(hook)
    for number in range(transfers):
        current[0] = number
        key, amount = uuid.uuid4(), random.randint(1, 10)
        try:
            with transaction.atomic(using=["a", "b"], two_phase=True):
                alice = Account.objects.using("a").filter(name="alice")
                alice.update(balance=F("balance") - amount)
                Transfer.objects.using("a").create(key=key, amount=-amount)
                bob = Account.objects.using("b").filter(name="bob")
                bob.update(balance=F("balance") + amount)
                Transfer.objects.using("b").create(key=key, amount=amount)
        except DatabaseError as exc:
            print(f"failed {number}: {exc}", flush=True)
            for alias in ("a", "b"):
                connections[alias].close()
        else:
            print(f"done {number}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
