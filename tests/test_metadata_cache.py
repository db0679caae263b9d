"""The queue metadata cache of v2's posts and claims (``MetadataCache``),
over a sqlite file and over MongoDB (whose reads answer later)."""

from twisted.trial import unittest

from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.transport.http.metadata_cache import MetadataCache
from tests.http_support import new_clock


class MetadataCacheMixin:
    async def setUp(self):
        self.clock = new_clock()
        self.driver = self.make_driver(self.clock)
        await self.driver.open()
        self.addCleanup(self.driver.close)
        await self.driver.queues.create("p", "q", {"_default_message_ttl": 100})

    async def read(self, cache, queue="q"):
        value = cache.get("p", queue, self.clock.seconds())  # a dict, or a Deferred of one
        return value if isinstance(value, dict) else await value

    async def change(self, metadata):
        await self.driver.queues.set_metadata("p", "q", metadata)

    async def test_kept_for_the_window(self):
        """A read is answered from memory, without waiting, until the window
        ends; then storage is read again."""
        cache = MetadataCache(self.driver, 2.0)
        self.assertEqual(await self.read(cache), {"_default_message_ttl": 100})
        await self.change({"_default_message_ttl": 200})
        self.assertEqual(cache.get("p", "q", self.clock.seconds()),
                         {"_default_message_ttl": 100})
        self.clock.advance(2)
        self.assertEqual(await self.read(cache), {"_default_message_ttl": 200})

    async def test_missing_queue_is_empty(self):
        """A queue that does not exist has no metadata: {}."""
        self.assertEqual(await self.read(MetadataCache(self.driver, 1.0), "nothing"), {})

    async def test_forget(self):
        """After ``forget`` the next read goes to storage."""
        cache = MetadataCache(self.driver, 60.0)
        await self.read(cache)
        await self.change({"_default_message_ttl": 300})
        cache.forget("p", "q")
        self.assertEqual(await self.read(cache), {"_default_message_ttl": 300})

    async def test_read_in_flight_during_forget_is_not_kept(self):
        """A read started before a ``forget`` may answer the old value, but
        that value is not kept for later reads."""
        cache = MetadataCache(self.driver, 60.0)
        pending = cache.get("p", "q", self.clock.seconds())
        cache.forget("p", "q")
        await self.change({"_default_message_ttl": 400})
        if not isinstance(pending, dict):
            await pending
        self.assertEqual(await self.read(cache), {"_default_message_ttl": 400})

    async def test_zero_seconds_reads_every_time(self):
        """With 0 seconds every read goes to storage."""
        cache = MetadataCache(self.driver, 0.0)
        await self.read(cache)
        await self.change({"_default_message_ttl": 500})
        self.assertEqual(await self.read(cache), {"_default_message_ttl": 500})

    async def test_bounded(self):
        """At most ``max_kept`` queues are kept: past it the cache starts
        again, and answers stay right."""
        cache = MetadataCache(self.driver, 60.0, max_kept=3)
        for i in range(10):
            self.assertEqual(await self.read(cache, f"q{i}"), {})
            self.assertLessEqual(len(cache._kept), 3)
        self.assertEqual(await self.read(cache), {"_default_message_ttl": 100})


class MetadataCacheOnSqliteTests(MetadataCacheMixin, unittest.TestCase):
    def make_driver(self, clock):
        return SqliteDriver(self.mktemp() + ".db", clock)


class MetadataCacheOnMongoTests(MetadataCacheMixin, unittest.TestCase):
    def make_driver(self, clock):
        from marconi_tx import config
        from marconi_tx.storage.mongodb.driver import MongoDriver
        from tests.mongodb_server import fresh_database_uri

        return MongoDriver(fresh_database_uri(self), clock, config.load().mongodb)
