"""Subscription storage: the conformance suite on a sqlite file, the
MongoDB-wire server and the memory driver; sqlite's schema upgrade."""

import sqlite3

from twisted.internet import task
from twisted.trial import unittest

from marconi_tx.storage.mongodb.driver import MongoDriver
from marconi_tx.storage.sqlite import schema
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.testing import MemoryDriver
from tests.clock_reactor import ClockReactor
from tests.mongodb_server import fresh_database_uri
from tests.storage_conformance import START
from tests.subscription_conformance import HOOK, QUEUE, SubscriptionConformanceMixin
from tests.test_storage_mongodb import settings


class SqliteSubscriptionTests(SubscriptionConformanceMixin, unittest.TestCase):
    """The suite on a fresh sqlite file."""

    def make_driver(self, clock):
        return SqliteDriver(self.mktemp(), ClockReactor(clock))


class MongoSubscriptionTests(SubscriptionConformanceMixin, unittest.TestCase):
    """The suite on a fresh database of the MongoDB-wire server."""

    def make_driver(self, clock):
        return MongoDriver(fresh_database_uri(self), clock, settings())


class MemorySubscriptionTests(SubscriptionConformanceMixin, unittest.TestCase):
    """The suite on the testing MemoryDriver."""

    def make_driver(self, clock):
        return MemoryDriver(clock)


class SchemaUpgradeTests(unittest.TestCase):
    """A version 1 file (before subscriptions) is upgraded with its data,
    and then holds subscriptions."""

    async def test_version_1_file_gains_subscriptions(self):
        """Opening a version 1 file makes it the current version: its queue and
        messages kept, message ids going on, subscriptions working, and a new
        subscription's cursor after the existing messages."""
        path = self.mktemp()
        db = sqlite3.connect(path, isolation_level=None)
        for statement in schema.statements(schema.VERSION_1):
            db.execute(statement)
        db.execute("PRAGMA user_version=1")
        db.execute("INSERT INTO queues (project, name, metadata, created) "
                   "VALUES ('p', ?, '{}', ?)", (QUEUE, START))
        db.execute("INSERT INTO messages (queue_id, body, ttl, created, expires, priority, "
                   "available_at) VALUES (1, '7', 300, ?, ?, 1024, ?)",
                   (START, START + 300, START))
        db.close()
        clock = task.Clock()
        clock.advance(START)
        driver = SqliteDriver(path, clock)
        await driver.open()
        self.addCleanup(driver.close)
        check = sqlite3.connect(path)
        self.assertEqual(check.execute("PRAGMA user_version").fetchone()[0], schema.VERSION)
        check.close()
        self.assertEqual([m.body for m in await driver.messages.list("p", QUEUE)], [7])
        sid, created = await driver.subscriptions.create("p", QUEUE, HOOK, 60, {})
        self.assertTrue(created)
        self.assertEqual((await driver.subscriptions.get("p", QUEUE, sid)).cursor, 1)
        self.assertEqual(await driver.messages.post("p", QUEUE, [{"ttl": 60, "body": 8}]),
                         ["2"])
