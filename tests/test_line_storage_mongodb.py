"""``IJobController`` on MongoDB: the job conformance suite against a real
MongoDB-wire server (``tests.mongodb_server``), what only this driver has
(races between two daemons, the batch protocol), and the line endpoint
over MongoDB with a real beanstalkd client.

The driver's reactor is a ``task.Clock`` (its time and its timeouts); txmongo's
network I/O runs on the real reactor.
"""

import greenstalk
from twisted.internet import defer, reactor, task, threads
from twisted.trial import unittest

from marconi_tx import config
from marconi_tx.storage.mongodb import batches
from marconi_tx.storage.mongodb.driver import MongoDriver
from marconi_tx.storage.mongodb.schema import marker
from marconi_tx.storage.records import Job
from marconi_tx.transport.line import make_factory
from tests.mongodb_server import fresh_database_uri
from tests.test_line_storage import START, TTL, TUBE, JobConformanceMixin
from tests.test_storage_mongodb import settings


class MongoJobTests(JobConformanceMixin, unittest.TestCase):
    """The job rules on a fresh MongoDB database per test."""

    def make_driver(self, clock):
        self.uri = fresh_database_uri(self)
        return MongoDriver(self.uri, clock, settings())

    async def second_driver(self):
        """Another daemon: its own connection pool on the same database."""
        other = MongoDriver(self.uri, self.clock, settings())
        await other.open()
        self.addCleanup(other.close)
        return other

    async def test_two_daemons_never_reserve_one_job_twice(self):
        """Consumers of two daemons reserving at once each get a different
        job, and none is handed out twice."""
        other = await self.second_driver()
        ids = [await self.put() for _ in range(3)]
        taken = await defer.gatherResults(
            [driver.jobs.reserve(None, [TUBE])
             for driver in (self.driver, other, self.driver, other)])
        won = [job.id for job in taken if job is not None]
        self.assertEqual(sorted(won), ids)
        self.assertEqual(taken.count(None), 1)

    async def test_reserve_job_races_reserve(self):
        """reserve_job and reserve on one job from two daemons: exactly one
        wins."""
        other = await self.second_driver()
        job_id = await self.put()
        taken = await defer.gatherResults(
            [self.jobs.reserve_job(None, job_id), other.jobs.reserve(None, [TUBE])])
        self.assertEqual(len([job for job in taken if job is not None]), 1)

    async def test_stale_claim_cannot_touch_a_new_reservation(self):
        """After a reservation timed out and the job was reserved again, the
        old claim id can neither touch, release, bury nor delete it."""
        job_id = await self.put(ttr=5)
        old = await self.jobs.reserve(None, [TUBE])
        self.clock.advance(5)
        new = await self.jobs.reserve(None, [TUBE])
        self.assertEqual(new.id, job_id)
        self.assertFalse(await self.jobs.touch(None, job_id, old.claim_id))
        self.assertFalse(await self.jobs.release(None, job_id, old.claim_id, 1, 0))
        self.assertFalse(await self.jobs.bury(None, job_id, old.claim_id, 1))
        self.assertIsNone(await self.jobs.delete(None, job_id, old.claim_id))
        self.assertEqual((await self.jobs.peek(None, job_id)).claim_id, new.claim_id)

    async def test_unpublished_batch_is_no_job(self):
        """A job of a batch registered but not committed is invisible to
        peek, reserve and counts until it commits."""
        await self.driver.queues.create(None, TUBE)
        first = await batches.reserve(self.driver, 1)
        qid = await batches.register(self.driver, None, TUBE, first, first, "t0k3n",
                                     START + 60, START + TTL)
        await self.driver.db.messages.insert_many([{
            "_id": marker(first), "q": qid, "b": "1", "t": TTL, "c": START, "e": START + TTL,
            "cc": 0, "ce": 0, "pr": 1, "av": START, "bu": False}])
        self.assertIsNone(await self.jobs.peek(None, first))
        self.assertIsNone(await self.jobs.reserve(None, [TUBE]))
        self.assertEqual((await self.jobs.counts(None, TUBE)).ready, 0)
        self.assertTrue(await batches.commit(self.driver, {"_id": qid}, "t0k3n"))
        self.assertEqual((await self.jobs.reserve(None, [TUBE])).id, first)

    async def test_job_of_a_deleted_queue_is_gone(self):
        """Deleting the queue deletes its jobs; a re-created queue of the
        same name starts empty."""
        job_id = await self.put()
        await self.driver.queues.delete(None, TUBE)
        await self.driver.queues.create(None, TUBE)
        self.assertIsNone(await self.jobs.peek(None, job_id))
        self.assertIsNone(await self.jobs.reserve(None, [TUBE]))

    async def test_results_are_plain_python(self):
        """Jobs are ``Job`` records carrying plain ints, never bson.Int64."""
        job_id = await self.put(priority=2**32 - 1, ttr=2**31)
        job = await self.jobs.reserve(None, [TUBE])
        self.assertIsInstance(job, Job)
        for key in ("id", "priority", "ttr", "claim_expires", "reserves", "created"):
            self.assertIs(type(getattr(job, key)), int, key)
        self.assertIs(type(job_id), int)
        self.assertIs(type(await self.jobs.next_change(None, [TUBE])), int)


class MongoLineEndpointTests(unittest.TestCase):
    """The line endpoint over MongoDB, with greenstalk on a loopback port."""

    def setUp(self):
        self.driver = MongoDriver(fresh_database_uri(self), reactor, settings())
        d = self.driver.open()
        d.addCallback(lambda _: self.addCleanup(self.driver.close))
        d.addCallback(lambda _: self.listen())
        return d

    def listen(self):
        self.factory = make_factory(self.driver, config.load(), reactor)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.stop)
        self.address = ("127.0.0.1", self.port.getHost().port)

    async def stop(self):
        """Stop listening and wait until every connection gave its
        reservations back (before the driver closes)."""
        await self.port.stopListening()
        for protocol in list(self.factory.connections):
            protocol.transport.loseConnection()
        for _ in range(200):
            if not self.factory.connections:
                return
            await task.deferLater(reactor, 0.01, lambda: None)

    def test_put_reserve_delete(self):
        """Jobs put over TCP are reserved in priority order; delete removes
        one (a second delete is NOT_FOUND) and a released one is a message
        the HTTP side lists, with the priority release gave it."""
        def scenario():
            with greenstalk.Client(self.address, use="work", watch="work") as c:
                low = c.put("low", priority=10)
                high = c.put("high", priority=1)
                first = c.reserve(timeout=1)
                c.delete(first)
                second = c.reserve(timeout=1)
                c.release(second, priority=7)
                with self.assertRaises(greenstalk.NotFoundError):
                    c.delete(first)
                self.low = low
                return (first.id, first.body, second.id), (high, "high", low)

        d = threads.deferToThread(scenario)
        d.addCallback(lambda result: self.assertEqual(*result))

        async def check_storage(_):
            listed = await self.driver.messages.list(None, "work", echo=True)
            self.assertEqual(len(listed), 1)
            self.assertEqual((listed[0].id, listed[0].priority), (str(self.low), 7))
        d.addCallback(lambda r: defer.ensureDeferred(check_storage(r)))
        return d
