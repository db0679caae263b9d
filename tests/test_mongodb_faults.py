"""The MongoDB driver through what a replica set does during a failover.

The server (``tests.mongodb_server.fault_uri``) is the single-node replica
set ``secantus`` with test commands on, reached through a
``replicaSet=secantus`` URI. Faults are its ``failCommand`` fail points,
armed with pymongo (synchronously, before the call or from a thread):
"not primary" and "node is recovering" answers, a reply whose write
concern failed after the write ran (an unknown outcome), a dropped
connection and a slow primary. Each test switches them off at cleanup.
Fail points fire ``{"times": N}`` (after ``"skip"``) or always: the test
server has no ``activationProbability`` (it would read such a mode as
"always on"), so the concurrent test draws the faults at random itself.

The driver's reactor is the real one: retries wait ``retry_backoff`` and
reconnections take real time.
"""

import os
import random
import time

import pymongo
from twisted.internet import defer, reactor, task, threads
from twisted.trial import unittest

from marconi_tx import config, errors
from marconi_tx.storage.mongodb import batches
from marconi_tx.storage.mongodb.driver import BACKGROUND_PAUSE, MongoDriver
from tests.http_support import ApiClient
from tests.mongodb_server import (
    REPLICA_SET,
    URI_ENV,
    accepts_fail_points,
    dedicated_server,
    fault_database_uri,
    fault_uri,
)

QUEUE = "faults"
#: The commands the driver sends that a fault can hit.
COMMANDS = ("insert", "find", "update", "delete", "findAndModify")
#: Fail point data of each fault kind (``failCommands`` is added).
FAULTS = {
    "NotWritablePrimary": {"errorCode": 10107, "errorLabels": ["RetryableWriteError"]},
    "InterruptedDueToReplStateChange": {"errorCode": 11602},
    "PrimarySteppedDown": {"errorCode": 189},
    "ShutdownInProgress": {"errorCode": 91},
    "closeConnection": {"closeConnection": True},
    # The write runs, then its reply says replication failed: the driver
    # cannot know whether it happened.
    "writeConcernError": {"writeConcernError": {
        "code": 91, "codeName": "ShutdownInProgress",
        "errmsg": "Replication is being shut down"}},
}


def settings(**overrides):
    """``config.mongodb`` for fault tests: short waits, a small pool."""
    values = {"pool_size": 2, "operation_timeout": 4, "retry_backoff": 0.05,
              "max_retries": 5, **overrides}
    return config.load(overrides=[("drivers:storage:mongodb", name, str(value))
                                  for name, value in values.items()]).mongodb


class FailPoints:
    """``failCommand`` on the server of ``uri``, through its own pymongo
    client (sync: each call blocks its thread for one round trip)."""

    def __init__(self, uri):
        self.client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)

    def arm(self, fault, commands=COMMANDS, mode="alwaysOn", **extra):
        """Arm the fault kind ``fault`` (a ``FAULTS`` key, or fail point
        data) for ``commands``, for ``mode`` (``{"times": N}``...)."""
        data = dict(FAULTS[fault]) if isinstance(fault, str) else dict(fault)
        self.client.admin.command("configureFailPoint", "failCommand", mode=mode,
                                  data={"failCommands": list(commands), **data, **extra})

    def off(self):
        self.client.admin.command("configureFailPoint", "failCommand", mode="off")

    def close(self):
        try:
            self.off()
        finally:
            self.client.close()


class FaultCase(unittest.TestCase):
    """An opened driver (``self.driver``, ``settings()`` with ``overrides``)
    on a fresh database of the fault server, and its fail points
    (``self.faults``), off again at cleanup."""

    overrides: dict = {}

    async def setUp(self):
        self.uri = fault_database_uri(self)
        self.assertIn(f"replicaSet={REPLICA_SET}", self.uri)
        self.faults = FailPoints(self.uri)
        self.addCleanup(self.faults.close)
        self.driver = MongoDriver(self.uri, reactor, settings(**self.overrides))
        await self.driver.open()
        self.addCleanup(self.driver.close)
        await self.driver.queues.create(None, QUEUE)

    async def outcome(self, d):
        """(True, result) or (False, the StorageUnavailable); any other
        exception fails the test."""
        try:
            return True, await d
        except errors.StorageUnavailable as e:
            return False, e

    async def listed(self, queue=QUEUE):
        """Every message of ``queue``, claimed or not, paging to the end."""
        found, marker = [], None
        while True:
            page = await self.driver.messages.list(None, queue, marker=marker, limit=20,
                                                   echo=True, include_claimed=True)
            if not page:
                return found
            found += page
            marker = page[-1].id

    async def drained(self):
        """Wait for the driver's background clean-ups (a failed claim's
        release, a failed post's abort) to end."""
        while self.driver._background:
            await defer.DeferredList(list(self.driver._background))


class RetryPolicyTests(unittest.SynchronousTestCase):
    """Which failures the driver runs a call again after, how often and
    when (``MongoDriver.retried`` on a Clock; no server involved)."""

    def test_transient_failures(self):
        """What a failover raises is transient (connection failures, the
        retryable-writes codes, the RetryableWriteError label, a write
        concern error with such a code, through gatherResults); a
        duplicate key, another server error or a bug is not."""
        from pymongo.errors import (
            AutoReconnect,
            BulkWriteError,
            DuplicateKeyError,
            NotPrimaryError,
            OperationFailure,
        )
        from twisted.internet.error import ConnectionLost
        from twisted.python.failure import Failure

        from marconi_tx.storage.mongodb.driver import transient

        def first_error(error):
            return defer.FirstError(Failure(error), 0)

        for error in (AutoReconnect("gone"), NotPrimaryError("not primary"),
                      ConnectionLost(), OperationFailure("x", 10107),
                      OperationFailure("x", 189), OperationFailure("x", 91),
                      OperationFailure("x", 2, {"errorLabels": ["RetryableWriteError"]}),
                      BulkWriteError({"writeConcernErrors": [{"code": 91}], "writeErrors": []}),
                      first_error(AutoReconnect("gone"))):
            self.assertTrue(transient(error), error)
        for error in (DuplicateKeyError("dup", 11000), OperationFailure("x", 2),
                      OperationFailure("x", 50),
                      BulkWriteError({"writeErrors": [{"code": 11000}]}),
                      BulkWriteError({"writeConcernErrors": [{"code": 91}],
                                      "writeErrors": [{"code": 11000}]}),
                      ValueError("bug"), errors.QueueDoesNotExist("q"),
                      first_error(ValueError("bug"))):
            self.assertFalse(transient(error), error)

    def test_a_read_failed_before_the_first_write_only(self):
        """storage_call_unless_run runs a call again after a read's
        transient failure (read_first: NotRun), not after the same failure
        of a write; a NotRun it gives up on, or one no retry wraps, is
        answered as the failure it carries: StorageUnavailable."""
        from pymongo.errors import AutoReconnect

        from marconi_tx.storage.mongodb.driver import read_first, storage_call_unless_run

        clock = task.Clock()
        driver = MongoDriver("mongodb://127.0.0.1:1/q", clock,
                             settings(retry_backoff=1, max_retries=2))
        attempts = []

        async def failing():
            raise AutoReconnect("gone")

        class Controller:
            def __init__(self):
                self.driver = driver

            @storage_call_unless_run
            async def change(self, read_fails):
                attempts.append(clock.seconds())
                if read_fails(len(attempts)):
                    await read_first(failing())
                await failing()  # the write

        d = Controller().change(lambda n: n == 1)
        clock.pump([1] * 5)
        self.failureResultOf(d, errors.StorageUnavailable)
        self.assertEqual(attempts, [0, 1])  # again after the read, not after the write
        del attempts[:]
        d = Controller().change(lambda n: True)
        clock.pump([1] * 10)
        self.failureResultOf(d, errors.StorageUnavailable)
        self.assertEqual(len(attempts), 3)  # max_retries spent
        self.failureResultOf(driver.call(read_first(failing())), errors.StorageUnavailable)

    def attempts(self, failures, **overrides):
        """A driver on a Clock, and a call of it failing transiently
        ``failures`` times before answering "done"; (clock, Deferred, the
        times of its attempts)."""
        from pymongo.errors import AutoReconnect

        clock = task.Clock()
        driver = MongoDriver("mongodb://127.0.0.1:1/q", clock, settings(**overrides))
        times = []

        async def operation():
            times.append(clock.seconds())
            if len(times) <= failures:
                raise AutoReconnect("gone")
            return "done"

        return clock, driver.retried(operation), times

    def test_backoff_doubles_until_an_answer(self):
        """Each retry waits retry_backoff, doubled each time, on the
        driver's reactor; the answer of the attempt that succeeds is the
        call's."""
        clock, d, times = self.attempts(3, retry_backoff=0.5, max_retries=5)
        clock.pump([0.25] * 20)
        self.assertEqual(self.successResultOf(d), "done")
        self.assertEqual(times, [0, 0.5, 1.5, 3.5])

    def test_retries_are_bounded(self):
        """After max_retries retries the transient failure is
        StorageUnavailable; 0 retries means a single attempt."""
        clock, d, times = self.attempts(10, retry_backoff=0.1, max_retries=2)
        clock.pump([0.1] * 10)
        self.failureResultOf(d, errors.StorageUnavailable)
        self.assertEqual(len(times), 3)
        clock, d, times = self.attempts(1, max_retries=0)
        self.failureResultOf(d, errors.StorageUnavailable)
        self.assertEqual(len(times), 1)

    def test_retries_stop_at_the_timeout(self):
        """All attempts share operation_timeout: a call still failing when
        it ends is StorageUnavailable then, whatever retries were left."""
        clock, d, times = self.attempts(100, retry_backoff=0.4, max_retries=50,
                                        operation_timeout=1)
        clock.advance(0.9)
        self.assertNoResult(d)
        clock.advance(0.1)
        self.failureResultOf(d, errors.StorageUnavailable)
        self.assertEqual(len(times), 2)  # at 0 and 0.4; the next was due at 1.2


class FaultServerTests(unittest.TestCase):
    """Which server the fault tests use (``tests.mongodb_server``)."""

    def override(self, uri):
        """Set ``MARCONI_TEST_MONGODB_URI`` to ``uri`` for this test."""
        previous = os.environ.get(URI_ENV)
        os.environ[URI_ENV] = uri
        self.addCleanup(lambda: os.environ.pop(URI_ENV) if previous is None
                        else os.environ.__setitem__(URI_ENV, previous))

    def test_own_server_needs_test_commands(self):
        """A server named by MARCONI_TEST_MONGODB_URI without test commands
        makes the fault tests skip (nothing else does); one with them is
        used as given."""
        self.override(dedicated_server(self).uri)
        self.assertRaises(unittest.SkipTest, fault_uri)
        with_fail_points = dedicated_server(self, replica_set=True, test_commands=True)
        self.override(with_fail_points.uri)
        self.assertEqual(fault_uri(), with_fail_points.uri)

    def test_harness_server_is_a_replica_set_with_fail_points(self):
        """Without the variable, the harness's own fault server answers as
        the primary of the replica set ``secantus`` and runs
        configureFailPoint."""
        if os.environ.get(URI_ENV):
            raise unittest.SkipTest(f"{URI_ENV} is set: the harness starts no server")
        uri = fault_uri()
        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
        self.addCleanup(client.close)
        hello = client.admin.command("hello")
        self.assertEqual((hello["setName"], hello["isWritablePrimary"]), (REPLICA_SET, True))
        self.assertTrue(accepts_fail_points(uri))


class OneFaultTests(FaultCase):
    """One fault (``{"times": 1}``) of each kind on each command the driver
    sends, armed before each call of a post, a read, a claim (create, get,
    update, release) and its messages' deletion: every call that is safe
    to repeat succeeds (it was retried), with the right result; a pop,
    which is not repeated, succeeds or answers StorageUnavailable; nothing
    else is ever raised."""

    async def faulted(self, fault, command, call):
        """``call()`` with ``fault`` armed once on ``command`` (off after,
        if the call sent no such command)."""
        self.faults.arm(fault, [command], mode={"times": 1})
        try:
            return await call()
        finally:
            self.faults.off()

    async def round(self, fault, command):
        """The calls, each with the fault armed, and their results."""
        tag = f"{fault}-{command}"
        d = self.driver

        def faulted(call):
            return self.faulted(fault, command, call)

        ids = await faulted(lambda: d.messages.post(
            None, QUEUE, [{"ttl": 300, "body": {"tag": tag, "n": n}} for n in range(3)]))
        self.assertEqual(len(ids), 3)
        listed = await faulted(lambda: d.messages.bulk_get(None, QUEUE, ids))
        self.assertEqual([m.body for m in listed],
                         [{"tag": tag, "n": n} for n in range(3)], tag)
        claim = await faulted(lambda: d.claims.create(None, QUEUE, 300, 60, 2))
        self.assertEqual([m.id for m in claim.messages], ids[:2], tag)
        renewed = await faulted(lambda: d.claims.get(None, QUEUE, claim.id))
        self.assertEqual([m.id for m in renewed.messages], ids[:2], tag)
        await faulted(lambda: d.claims.update(None, QUEUE, claim.id, 200))
        await faulted(lambda: d.messages.delete(None, QUEUE, ids[0], claim.id))
        await faulted(lambda: d.claims.delete(None, QUEUE, claim.id))
        await faulted(lambda: d.messages.delete(None, QUEUE, ids[1]))
        ok, popped = await self.outcome(faulted(lambda: d.messages.pop(None, QUEUE, 1)))
        remaining = await self.listed()
        # Two messages deleted; the third popped, or still there if the pop
        # failed: never both, never twice.
        left = [m.body["n"] for m in remaining if m.body["tag"] == tag]
        if ok:
            self.assertEqual([m.body["n"] for m in popped], [2], tag)
            self.assertEqual(left, [], tag)
        else:
            self.assertEqual(left, [2], tag)
        for message in remaining:
            await d.messages.delete(None, QUEUE, message.id)

    async def each_command(self, fault):
        for command in COMMANDS:
            await self.round(fault, command)

    def test_not_writable_primary(self):
        """NotWritablePrimary (10107, RetryableWriteError): retried."""
        return self.each_command("NotWritablePrimary")

    async def test_other_failover_codes(self):
        """The other codes of a primary stepping down or shutting down
        (InterruptedDueToReplStateChange 11602, PrimarySteppedDown 189,
        ShutdownInProgress 91), one command each in turn: retried."""
        kinds = ("InterruptedDueToReplStateChange", "PrimarySteppedDown",
                 "ShutdownInProgress")
        for n, command in enumerate(COMMANDS):
            await self.round(kinds[n % len(kinds)], command)

    def test_dropped_connection(self):
        """A connection dropped by the server (txmongo's AutoReconnect):
        retried on a new connection."""
        return self.each_command("closeConnection")

    def test_write_concern_error(self):
        """A write that ran but whose reply reports a failed write concern:
        retried without duplicating a post or losing a claim's messages
        (the round's counts would show either)."""
        return self.each_command("writeConcernError")


class LineStateChangeTests(FaultCase):
    """The line protocol's state changes, which are not run again after a
    write with an unknown outcome, through one fault on a read or a write."""

    async def put(self, n=1, queue=QUEUE):
        return [await self.driver.jobs.put(None, queue, f"job {i}", 300, 10, 0, 60)
                for i in range(n)]

    async def test_failed_reads_are_run_again(self):
        """A fault on the read of a reserve, a release, a bury, a kick and a
        delete (before their first write) runs the call again: each
        succeeds with its usual result."""
        jobs = self.driver.jobs
        for fault in ("NotWritablePrimary", "closeConnection", "PrimarySteppedDown"):
            [first, second] = await self.put(2)
            self.faults.arm(fault, ["find"], mode={"times": 1})
            job = await jobs.reserve(None, [QUEUE])
            self.assertEqual(job.id, first, fault)
            self.faults.arm(fault, ["find"], mode={"times": 1})
            self.assertTrue(await jobs.release(None, first, job.claim_id, 5, 0), fault)
            job = await jobs.reserve(None, [QUEUE])
            self.assertEqual((job.id, job.priority), (first, 5), fault)
            self.faults.arm(fault, ["find"], mode={"times": 1})
            self.assertTrue(await jobs.bury(None, first, job.claim_id, 7), fault)
            self.faults.arm(fault, ["find"], mode={"times": 1})
            self.assertEqual(await jobs.kick(None, QUEUE, 10), 1, fault)
            self.faults.arm(fault, ["find"], mode={"times": 1})
            self.assertIsNotNone(await jobs.delete(None, second), fault)
            self.faults.off()
            self.assertEqual([m.id for m in await self.listed()], [str(first)], fault)
            await self.driver.messages.delete(None, QUEUE, str(first))

    async def test_failed_writes_are_not_run_again(self):
        """A fault on a reserve's write answers StorageUnavailable at once
        (the write may have run: it is not run again), or, when the write
        ran and txmongo does not see its failed write concern, the
        reservation: one job held at most, and it is the one answered."""
        for fault in ("NotWritablePrimary", "closeConnection", "PrimarySteppedDown",
                      "writeConcernError"):
            await self.put(2, queue=fault)
            self.faults.arm(fault, ["findAndModify"], mode={"times": 1})
            ok, job = await self.outcome(self.driver.jobs.reserve(None, [fault]))
            self.faults.off()
            held = [m.id for m in await self.listed(fault) if m.claimed]
            if ok:
                self.assertEqual(held, [str(job.id)], fault)
            else:
                self.assertLessEqual(len(held), 1, fault)


class UnknownOutcomeTests(FaultCase):
    """Writes that ran on the server but answered as failed: the retry
    must find out what the first attempt did."""

    async def test_post_committed_then_failed_is_not_duplicated(self):
        """A post whose commit ran but reported failure is answered with
        the markers it published: the messages exist once, and the ids the
        client got are theirs."""
        self.faults.arm("writeConcernError", ["update"], mode={"times": 1})
        ids = await self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": "once"}] * 2)
        self.faults.off()
        listed = await self.listed()
        self.assertEqual([m.id for m in listed], ids)

    async def test_post_inserted_then_failed_is_not_duplicated(self):
        """A post whose insert ran but reported failure is not published
        twice: the first attempt's batch is aborted (never visible), the
        retry's is the post's."""
        self.faults.arm("writeConcernError", ["insert"], mode={"times": 1})
        ids = await self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": "once"}] * 2)
        self.faults.off()
        self.assertEqual([m.id for m in await self.listed()], ids)
        await self.driver.gc()  # deletes the aborted batch's messages
        self.assertEqual([m.id for m in await self.listed()], ids)

    async def test_claim_tagged_then_failed_keeps_its_messages(self):
        """A claim whose tagging update ran but reported failure returns
        the messages it tagged, within its limit, and leaves none held by
        a claim nobody got."""
        await self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": n}
                                                      for n in range(5)])
        self.faults.arm("writeConcernError", ["update"], mode={"times": 1})
        claim = await self.driver.claims.create(None, QUEUE, 300, 60, 3)
        self.faults.off()
        self.assertEqual([m.body for m in claim.messages], [0, 1, 2])
        held = [m for m in await self.listed() if m.claim_id is not None]
        self.assertEqual({m.claim_id for m in held}, {claim.id})
        self.assertEqual(len(held), 3)

    async def test_queue_created_then_failed_reports_created(self):
        """A queue creation whose insert ran but reported failure answers
        "created" (the retry recognises its own record), not "existed"."""
        self.faults.arm("writeConcernError", ["insert"], mode={"times": 1})
        self.assertIs(await self.driver.queues.create(None, "fresh"), True)
        self.faults.off()
        self.assertIs(await self.driver.queues.create(None, "fresh"), False)

    async def test_subscription_created_then_failed_reports_created(self):
        """The same for a subscription (the first insert, skipped, is its
        queue's creation)."""
        self.faults.arm("writeConcernError", ["insert"], mode={"skip": 1, "times": 1})
        sid, created = await self.driver.subscriptions.create(
            None, QUEUE, "http://example.com/hook", 3600, {})
        self.faults.off()
        self.assertIs(created, True)
        self.assertEqual((await self.driver.subscriptions.get(None, QUEUE, sid)).id, sid)


class FailedClaimTests(FaultCase):
    """A claim that fails for good after tagging messages."""

    # A pending window (2 x 5 + 1 s) far longer than the test's waits: what
    # frees the messages here is the release tried again, not the window.
    overrides = {"operation_timeout": 5}

    async def test_failed_claim_is_released_once_the_storage_is_back(self):
        """A claim whose messages were tagged, and whose later writes and
        releases all fail, answers StorageUnavailable; its release is tried
        again while the fault lasts, and its messages are free again within
        about a second of the fault's end: not when the pending window, nor
        the claim's ttl (300 s), would have ended."""
        await self.driver.messages.post(None, QUEUE, [{"ttl": 600, "body": n}
                                                      for n in range(3)])
        # The first update (the tagging) runs; every later one fails, at
        # once (MaxTimeMSExpired is not retried).
        self.faults.arm({"errorCode": 50}, ["update"], mode={"skip": 1, "times": 1000})
        with self.assertRaises(errors.StorageUnavailable):
            await self.driver.claims.create(None, QUEUE, 300, 60, 3)
        await task.deferLater(reactor, 2 * BACKGROUND_PAUSE)  # releases failing meanwhile
        self.assertTrue(all(m.claimed for m in await self.listed()))
        self.faults.off()
        await task.deferLater(reactor, BACKGROUND_PAUSE + 1)
        claim = await self.driver.claims.create(None, QUEUE, 300, 60, 3)
        self.assertEqual([m.body for m in claim.messages], [0, 1, 2])


class LastingFaultTests(FaultCase):
    """A fault that outlasts the retries: StorageUnavailable, in bounded
    time; the driver works again once it ends."""

    overrides = {"operation_timeout": 3}

    async def test_every_call_unavailable_then_recovers(self):
        """With every command answered NotWritablePrimary, each kind of
        call fails with StorageUnavailable within operation_timeout (plus
        slack), and no other exception; once the primary is back, the same
        calls succeed."""
        ids = await self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": 1}] * 2)

        def calls():
            return {
                "post": lambda: self.driver.messages.post(None, QUEUE, [{"ttl": 300,
                                                                         "body": 2}]),
                "list": lambda: self.driver.messages.list(None, QUEUE),
                "get": lambda: self.driver.messages.get(None, QUEUE, ids[0]),
                "stats": lambda: self.driver.queues.stats(None, QUEUE),
                "claim": lambda: self.driver.claims.create(None, QUEUE, 60, 60, 1),
                "delete": lambda: self.driver.messages.delete(None, QUEUE, ids[1]),
                "pop": lambda: self.driver.messages.pop(None, QUEUE, 1),
                "create queue": lambda: self.driver.queues.create(None, "other"),
            }

        self.faults.arm("NotWritablePrimary")
        for name, call in calls().items():
            started = time.monotonic()
            ok, _ = await self.outcome(call())
            self.assertFalse(ok, name)
            self.assertLess(time.monotonic() - started, 3 + 1, name)
        self.faults.off()
        for call in calls().values():
            await call()
        self.assertIs(await self.driver.is_alive(), True)


class SlowPrimaryTests(FaultCase):
    """A primary slower than operation_timeout: StorageUnavailable at the
    timeout, and the driver recovers after."""

    overrides = {"operation_timeout": 1}

    async def test_slow_primary_then_recovery(self):
        """A find blocked for 2.5 s (operation_timeout 1 s) fails with
        StorageUnavailable after about 1 s; a post whose commit is blocked
        too; afterwards every call succeeds again, and the post's messages
        exist at most once."""
        await self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": "first"}])
        self.faults.arm({"blockConnection": True, "blockTimeMS": 2500}, ["find"],
                        mode={"times": 1})
        started = time.monotonic()
        with self.assertRaises(errors.StorageUnavailable):
            await self.driver.messages.list(None, QUEUE)
        self.assertLess(time.monotonic() - started, 1.5)

        self.faults.arm({"blockConnection": True, "blockTimeMS": 2500}, ["update"],
                        mode={"times": 1})
        started = time.monotonic()
        with self.assertRaises(errors.StorageUnavailable):
            await self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": "slow"}])
        self.assertLess(time.monotonic() - started, 1.5)
        self.faults.off()

        deadline = time.monotonic() + 10
        while True:
            ok, listed = await self.outcome(self.listed())
            if ok or time.monotonic() > deadline:
                break
        self.assertTrue(ok, "the driver did not recover within 10 s")
        bodies = [m.body for m in listed]
        self.assertEqual(bodies[0], "first")
        self.assertLessEqual(bodies.count("slow"), 1)
        ids = await self.driver.messages.post(None, QUEUE, [{"ttl": 300, "body": "after"}])
        self.assertEqual((await self.driver.messages.get(None, QUEUE, ids[0])).body, "after")


class ConcurrentFaultTests(FaultCase):
    """Producers and consumers at work while faults of every kind come and
    go (armed from a thread, ``{"times": N}``)."""

    overrides = {"pool_size": 4, "operation_timeout": 2}

    async def test_acknowledged_messages_survive_and_claims_stay_disjoint(self):
        """Every message acknowledged as posted is afterwards found exactly
        once (claimed, or still queued), a message that failed to post at
        most once; no message was handed to two claims; once a failed
        claim's provisional hold has passed, no message is held by a claim
        nobody got; every call either succeeded or answered
        StorageUnavailable."""
        rng = random.Random(20261206)
        acked, failed = {}, set()  # body tag -> message id; tags not acked
        claims = []
        outcomes = {"post": [0, 0], "claim": [0, 0]}
        running = [True]

        async def produce(producer):
            for batch in range(12):
                tags = [f"{producer}.{batch}.{n}" for n in range(3)]
                ok, ids = await self.outcome(self.driver.messages.post(
                    None, QUEUE, [{"ttl": 600, "body": tag} for tag in tags]))
                outcomes["post"][not ok] += 1
                if ok:
                    acked.update(zip(tags, ids))
                else:
                    failed.update(tags)

        async def consume():
            while running[0]:
                ok, claim = await self.outcome(
                    self.driver.claims.create(None, QUEUE, 600, 60, 4))
                outcomes["claim"][not ok] += 1
                if ok and claim is not None:
                    claims.append(claim)
                await task.deferLater(reactor, 0.01)

        def inject():
            # Runs in a thread: pymongo blocks it, not the reactor.
            faults = FailPoints(self.uri)
            try:
                while running[0]:
                    kind = rng.choice(list(FAULTS))
                    commands = rng.sample(COMMANDS, 2)
                    faults.arm(kind, commands, mode={"times": rng.randint(1, 3)})
                    time.sleep(0.3)
            finally:
                faults.close()

        injector = threads.deferToThread(inject)
        consumers = [defer.ensureDeferred(consume()) for _ in range(3)]
        await defer.gatherResults([defer.ensureDeferred(produce(p)) for p in range(4)])
        running[0] = False
        await injector
        await defer.gatherResults(consumers)
        self.faults.off()
        await self.drained()
        # The provisional hold of a claim that failed (claims.py) ends.
        window = batches.pending_window(self.driver.settings.operation_timeout)
        await task.deferLater(reactor, window + 1)

        # Posts and claims both succeeded and failed (a run where the faults
        # never hit would prove nothing).
        self.assertTrue(all(ok and failed for ok, failed in outcomes.values()), outcomes)
        listed = await self.listed()
        found = {}
        for message in listed:
            found.setdefault(message.body, []).append(message.id)
        for tag, mid in acked.items():
            self.assertEqual(found.get(tag), [mid], tag)
        for tag in failed:
            self.assertLessEqual(len(found.get(tag, [])), 1, tag)
        self.assertEqual(set(found), set(acked) | (set(found) & failed))

        handed = [m.id for claim in claims for m in claim.messages]
        self.assertEqual(len(handed), len(set(handed)), "a message was in two claims")
        given = {claim.id for claim in claims}
        held = {m.id: m.claim_id for m in listed if m.claimed}
        self.assertEqual({cid for cid in held.values()} - given, set(),
                         "messages held by a claim nobody got")
        self.assertEqual(set(held), set(handed))


class HttpFaultTests(FaultCase):
    """The HTTP API over the MongoDB driver during faults (StubTreq)."""

    overrides = {"operation_timeout": 2}

    async def test_fault_answers_503_with_retry_after(self):
        """A lasting fault answers 503 with Retry-After and a JSON error on
        every API version; a single one is retried and answered as usual."""
        api = ApiClient(self.driver, waits=True)
        self.faults.arm("NotWritablePrimary")
        for version in ("v1", "v1.1", "v2"):
            answer = await api.get(f"/{version}/queues/{QUEUE}/messages?echo=true",
                                   project="p")
            self.assertEqual(answer.code, 503, (version, answer.body))
            self.assertTrue(answer.headers["retry-after"].isdigit(), version)
            self.assertEqual(answer.json["title"], "Service temporarily unavailable")
        self.faults.off()
        self.faults.arm("closeConnection", ["insert"], mode={"times": 1})
        answer = await api.post(f"/v2/queues/{QUEUE}/messages",
                                {"messages": [{"ttl": 300, "body": {"n": 1}}]}, project="p")
        self.assertEqual(answer.code, 201, answer.body)
        listed = await api.get(f"/v2/queues/{QUEUE}/messages?echo=true", project="p")
        self.assertEqual([m["body"] for m in listed.json["messages"]], [{"n": 1}])
