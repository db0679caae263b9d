"""The catalog stores (pools, flavors, catalog): the conformance suite on a
sqlite file, the MongoDB-wire server and the memory driver; sqlite's schema
upgrade to version 3; MongoDB's indexes and outages."""

import sqlite3

from bson.int64 import Int64
from pymongo.errors import DuplicateKeyError
from twisted.internet import task
from twisted.trial import unittest

from marconi_tx import errors
from marconi_tx.storage.mongodb.driver import MongoDriver
from marconi_tx.storage.sqlite import schema
from marconi_tx.storage.sqlite.driver import SqliteDriver
from marconi_tx.testing import MemoryDriver
from tests.clock_reactor import ClockReactor
from tests.mongodb_server import dedicated_server, fresh_database_uri, with_database
from tests.pool_store_conformance import URI, PoolStoreConformanceMixin
from tests.storage_conformance import START
from tests.test_storage_mongodb import settings


class SqlitePoolStoreTests(PoolStoreConformanceMixin, unittest.TestCase):
    """The suite on a fresh sqlite file; the second daemon is a second
    driver on the same file."""

    def make_driver(self, clock):
        self.path = self.mktemp()
        return SqliteDriver(self.path, ClockReactor(clock))

    def make_second_driver(self, clock):
        return SqliteDriver(self.path, ClockReactor(clock))


class SqliteGroupCommitPoolStoreTests(SqlitePoolStoreTests):
    """The suite with group commit on, as the daemon runs it: writes of one
    turn share a transaction."""

    def make_driver(self, clock):
        self.path = self.mktemp()
        return SqliteDriver(self.path, ClockReactor(clock), group_commit=True)

    def make_second_driver(self, clock):
        return SqliteDriver(self.path, ClockReactor(clock), group_commit=True)


class MongoPoolStoreTests(PoolStoreConformanceMixin, unittest.TestCase):
    """The suite on a fresh database of the MongoDB-wire server; the second
    daemon is a second driver (its own connection pool) on it."""

    def make_driver(self, clock):
        self.uri = fresh_database_uri(self)
        return MongoDriver(self.uri, clock, settings())

    def make_second_driver(self, clock):
        return MongoDriver(self.uri, clock, settings())


class MongoPoolStoreEngineTests(unittest.TestCase):
    """What the MongoDB catalog store leaves to the engine: its unique
    indexes, and the types it hands back."""

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.driver = MongoDriver(fresh_database_uri(self), self.clock, settings())
        d = self.driver.open()
        d.addCallback(lambda _: self.addCleanup(self.driver.close))
        return d

    async def test_unique_indexes(self):
        """open creates unique indexes on pool numbers and on catalog
        (project, queue), the None project included: a second document for
        either is refused by the engine itself."""
        db = self.driver.db
        await self.driver.pools.create("a", URI, 1)
        await self.driver.catalog.insert(None, "q", "a")
        await self.assertFailure(
            db.pools.insert_one({"_id": "b", "u": URI, "w": 1, "f": None, "o": "{}",
                                 "n": Int64(1)}), DuplicateKeyError)
        await self.assertFailure(db.catalog.insert_one({"p": None, "q": "q", "pool": "b"}),
                                 DuplicateKeyError)
        info = await db.catalog.index_information()
        self.assertEqual([tuple(k) for k in info["pool_entries"]["key"].items()],
                         [("pool", 1), ("p", 1), ("q", 1)])

    async def test_results_are_plain_python(self):
        """Numbers and weights are plain ints (no bson.Int64) and entries
        plain tuples of str or None."""
        made = await self.driver.pools.create("a", URI, 2 ** 32 - 1)
        for pool in (made, await self.driver.pools.get("a"),
                     (await self.driver.pools.list())[0]):
            self.assertEqual((type(pool.number), type(pool.weight)), (int, int))
        self.assertEqual(made.weight, 2 ** 32 - 1)
        await self.driver.catalog.insert(None, "q", "a")
        [entry] = await self.driver.catalog.entries("a")
        self.assertEqual((type(entry), entry), (tuple, (None, "q")))


class MongoPoolStoreOutageTests(unittest.TestCase):
    """The catalog store on a dedicated server that stops."""

    async def test_calls_fail_as_unavailable(self):
        """With the server down, pool, flavor and catalog calls fail with
        StorageUnavailable once operation_timeout has passed."""
        server = dedicated_server(self)
        clock = task.Clock()
        clock.advance(START)
        timeouts = settings(operation_timeout=1, connect_timeout=1)
        driver = MongoDriver(with_database(server.uri, "outage"), clock, timeouts)
        self.addCleanup(driver.close)
        await driver.open()
        await driver.pools.create("a", URI, 1)
        server.stop()
        calls = [driver.pools.get("a"), driver.pools.create("b", URI, 1),
                 driver.flavors.list(), driver.catalog.lookup(None, "q"),
                 driver.catalog.insert(None, "q", "a"), driver.catalog.entries("a")]
        clock.advance(timeouts.operation_timeout)
        for d in calls:
            await self.assertFailure(d, errors.StorageUnavailable)


class MemoryPoolStoreTests(PoolStoreConformanceMixin, unittest.TestCase):
    """The suite on the testing MemoryDriver."""

    def make_driver(self, clock):
        return MemoryDriver(clock)


class SchemaUpgradeTests(unittest.TestCase):
    """A version 2 file (before pools) is upgraded to version 3 with its
    data, and then holds the catalog."""

    async def test_version_2_file_gains_the_catalog(self):
        """Opening a version 2 file makes it version 3: its queues and
        subscriptions kept, pools numbered from 1, the catalog working."""
        path = self.mktemp()
        db = sqlite3.connect(path, isolation_level=None)
        for script in schema.UPGRADES[:2]:
            for statement in schema.statements(script):
                db.execute(statement)
        db.execute("PRAGMA user_version=2")
        db.execute("INSERT INTO queues (project, name, metadata, created) "
                   "VALUES ('p', 'q', '{\"k\":1}', ?)", (START,))
        db.close()
        clock = task.Clock()
        clock.advance(START)
        driver = SqliteDriver(path, clock)
        await driver.open()
        self.addCleanup(driver.close)
        check = sqlite3.connect(path)
        self.assertEqual(check.execute("PRAGMA user_version").fetchone()[0], 3)
        check.close()
        self.assertEqual(await driver.queues.get_metadata("p", "q"), {"k": 1})
        self.assertEqual((await driver.pools.create("a", URI, 1)).number, 1)
        self.assertEqual(await driver.catalog.insert("p", "q", "a"), "a")

    def test_version_3_can_be_applied_again(self):
        """Running version 3's statements on a version 3 database changes
        nothing: an upgrade interrupted after some statements by another
        process's is harmless, and the pool counter is not reset."""
        db = sqlite3.connect(":memory:", isolation_level=None)
        for script in schema.UPGRADES:
            for statement in schema.statements(script):
                db.execute(statement)
        db.execute("UPDATE pool_numbers SET last=7")
        for statement in schema.statements(schema.VERSION_3):
            db.execute(statement)
        self.assertEqual(db.execute("SELECT id, last FROM pool_numbers").fetchall(), [(1, 7)])
        db.close()

    def test_one_entry_per_queue_of_the_none_project(self):
        """The catalog's primary key holds for the None project (stored as
        ''): a second row for the same queue is refused by the engine."""
        db = sqlite3.connect(":memory:", isolation_level=None)
        for script in schema.UPGRADES:
            for statement in schema.statements(script):
                db.execute(statement)
        db.execute("INSERT INTO catalog (project, queue, pool) VALUES ('', 'q', 'a')")
        self.assertRaises(sqlite3.IntegrityError, db.execute,
                          "INSERT INTO catalog (project, queue, pool) VALUES ('', 'q', 'b')")
        db.close()


class SqliteCatalogPlanTests(unittest.TestCase):
    """The catalog's statements search indexes: their cost is what they
    find, whatever the number of queues and pools."""

    async def test_statements_search_indexes(self):
        """Every read, update and delete that lookup, insert, entries (with
        and without a marker), remove_pool, a flavor's pool listing and a
        flavor's delete run on the catalog and pools searches an index,
        scanning no table and sorting nothing."""
        clock = task.Clock()
        driver = SqliteDriver(":memory:", clock)
        await driver.open()
        self.addCleanup(driver.close)
        await driver.pools.create("a", URI, 1, flavor="gold")
        run = []
        driver.db.set_trace_callback(run.append)
        await driver.catalog.lookup("p", "q")
        await driver.catalog.insert("p", "q", "a")
        await driver.catalog.entries("a")
        await driver.catalog.entries("a", marker=(None, "q"))
        await driver.catalog.remove_pool("a")
        await driver.pools.list(flavor="gold")
        await driver.flavors.delete("gold")
        driver.db.set_trace_callback(None)
        statements = [sql for sql in run if (" catalog " in sql or " pools " in sql)
                      and not sql.startswith("INSERT")]
        self.assertGreaterEqual(len(statements), 7)
        for sql in statements:
            plan = " ".join(row[-1] for row in driver.db.execute("EXPLAIN QUERY PLAN " + sql))
            self.assertIn("SEARCH", plan, sql)
            self.assertNotIn("SCAN", plan, sql)
            self.assertNotIn("TEMP B-TREE", plan, sql)
