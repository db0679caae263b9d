"""``marconi_tx.testing``: the in-memory driver passes the storage and job
conformance suites and the HTTP API suite, and the stub server serves the
real API to clients."""

from twisted.internet import task
from twisted.trial import unittest

from marconi_tx import config, errors
from marconi_tx.client import BadRequest, ClaimNotFound, ServiceUnavailable
from marconi_tx.testing import MemoryDriver, StubServer
from tests.http_v1_1_tests import HttpV1_1Mixin
from tests.http_v1_tests import HttpV1Mixin
from tests.http_v2_tests import HttpV2Mixin
from tests.storage_conformance import START, StorageConformanceMixin
from tests.test_line_storage import JobConformanceMixin


class MemoryConformanceTests(StorageConformanceMixin, unittest.TestCase):
    """The storage conformance suite on a MemoryDriver (one process: the
    tests of two daemons sharing a database are skipped)."""

    def make_driver(self, clock):
        return MemoryDriver(clock)


class MemoryJobTests(JobConformanceMixin, unittest.TestCase):
    """The line protocol's job rules on a MemoryDriver."""

    def make_driver(self, clock):
        return MemoryDriver(clock)


class HttpV1OnMemoryTests(HttpV1Mixin, unittest.TestCase):
    """The HTTP API v1 suite over a MemoryDriver: what a StubServer serves
    answers as the daemon does."""

    def make_driver(self, clock):
        return MemoryDriver(clock)


class HttpV1_1OnMemoryTests(HttpV1_1Mixin, unittest.TestCase):
    """The HTTP API v1.1 suite over a MemoryDriver."""

    waits = False  # every answer is there before the request returns

    def make_driver(self, clock):
        return MemoryDriver(clock)


class HttpV2OnMemoryTests(HttpV2Mixin, unittest.TestCase):
    """The HTTP API v2 suite over a MemoryDriver (lazy queues, pop, purge,
    delays, dead-letter moves)."""

    waits = False

    def make_driver(self, clock):
        return MemoryDriver(clock)


class MemoryDriverTests(unittest.TestCase):
    """What only the in-memory driver promises."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.driver = MemoryDriver(self.clock)

    async def test_closed_driver_is_unavailable_and_keeps_data(self):
        """Before open and after close every call fails with
        StorageUnavailable and is_alive is False; reopened, the data is
        still there."""
        await self.assertFailure(self.driver.queues.create(None, "q"),
                                 errors.StorageUnavailable)
        await self.driver.open()
        await self.driver.queues.create(None, "q")
        [mid] = await self.driver.messages.post(None, "q", [{"ttl": 60, "body": 1}])
        await self.driver.close()
        self.assertIs(await self.driver.is_alive(), False)
        await self.assertFailure(self.driver.messages.get(None, "q", mid),
                                 errors.StorageUnavailable)
        await self.assertFailure(self.driver.gc(), errors.StorageUnavailable)
        await self.driver.open()
        self.assertIs(await self.driver.is_alive(), True)
        self.assertEqual((await self.driver.messages.get(None, "q", mid)).body, 1)

    async def test_bodies_and_metadata_are_copies(self):
        """Changing a posted body, a body read back or metadata given or
        read changes nothing stored."""
        await self.driver.open()
        metadata, body = {"k": [1]}, {"list": [1]}
        await self.driver.queues.create(None, "q", metadata)
        [mid] = await self.driver.messages.post(None, "q", [{"ttl": 60, "body": body}])
        metadata["k"].append(2)
        body["list"].append(2)
        (await self.driver.messages.get(None, "q", mid)).body["list"].append(3)
        (await self.driver.queues.get_metadata(None, "q"))["k"].append(3)
        self.assertEqual((await self.driver.messages.get(None, "q", mid)).body, {"list": [1]})
        self.assertEqual(await self.driver.queues.get_metadata(None, "q"), {"k": [1]})


class StubServerTests(unittest.TestCase):
    """The real API over a MemoryDriver, through clients of the stub server."""

    def setUp(self):
        self.server = StubServer()
        self.client = self.server.client()

    async def test_round_trip(self):
        """A client creates a queue, posts, lists, claims and deletes the
        claimed messages; the queue is then empty."""
        queue = await self.client.create_queue("jobs")
        await queue.post_messages([{"ttl": 300, "body": {"n": n}} for n in range(3)])
        listed = await self.server.client().queue("jobs").messages().collect()
        self.assertEqual([m.body for m in listed], [{"n": n} for n in range(3)])
        claim = await queue.claim(limit=2, ttl=60, grace=60)
        self.assertEqual([m.body for m in claim.messages], [{"n": 0}, {"n": 1}])
        for message in claim.messages:
            await message.delete()
        rest = await queue.claim(limit=10)
        self.assertEqual([m.body for m in rest.messages], [{"n": 2}])
        await rest.messages[0].delete()
        self.assertEqual((await queue.stats())["messages"]["total"], 0)

    async def test_claim_expires_when_clock_advances(self):
        """A claim holds its message until its ttl has passed on the
        server's clock; then the claim is gone and the message claimable."""
        queue = await self.client.create_queue("jobs")
        await queue.post_messages([{"ttl": 300, "body": "work"}])
        claim = await queue.claim(ttl=60)
        self.server.clock.advance(59)
        self.assertFalse(await queue.claim())
        self.assertEqual((await queue.get_claim(claim.id)).age, 59)
        self.server.clock.advance(1)
        await self.assertFailure(queue.get_claim(claim.id), ClaimNotFound)
        again = await queue.claim()
        self.assertEqual([m.body for m in again.messages], ["work"])

    async def test_closed_storage_answers_503(self):
        """With the driver closed, the health check reports the storage
        down and calls fail with ServiceUnavailable (after the client's
        retries, slept on the server's clock)."""
        await self.server.driver.close()
        self.assertIs(await self.client.health(), False)
        await self.assertFailure(self.server.client(retries=0).create_queue("q"),
                                 ServiceUnavailable)

    async def test_settings_and_driver_given(self):
        """A StubServer serves the driver and applies the settings it is
        given (here a claim limit of 2)."""
        clock = task.Clock()
        driver = MemoryDriver(clock)
        await driver.open()
        settings = config.load(overrides=[("limits:transport", "max_messages_per_claim", "2")])
        server = StubServer(driver, clock, settings)
        queue = await server.client(project="p1").create_queue("given")
        self.assertIs(await driver.queues.exists("p1", "given"), True)
        await queue.post_messages([{"ttl": 60, "body": n} for n in range(3)])
        await self.assertFailure(queue.claim(limit=3), BadRequest)
        self.assertEqual(len(await queue.claim(limit=2)), 2)
